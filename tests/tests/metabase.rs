//! The statements Metabase's PostgreSQL driver sends while connecting and syncing,
//! verbatim (HoneySQL's output, parameters bound as pgjdbc binds them), and what
//! their answers must say about the demo.

use tokio_postgres::types::ToSql;

use crate::support::admin;

const PRIVILEGES: &str = "with table_privileges as (
 select
   NULL as role,
   t.schemaname as schema,
   t.objectname as table,
   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'update') as update,
   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'select') as select,
   pg_catalog.has_any_column_privilege(current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'insert') as insert,
   pg_catalog.has_table_privilege(     current_user, '\"' || replace(t.schemaname, '\"', '\"\"') || '\"' || '.' || '\"' || replace(t.objectname, '\"', '\"\"') || '\"',  'delete') as delete
 from (
   select schemaname, tablename as objectname from pg_catalog.pg_tables
   union
   select schemaname, viewname as objectname from pg_catalog.pg_views
   union
   select schemaname, matviewname as objectname from pg_catalog.pg_matviews
 ) t
 where t.schemaname !~ '^pg_'
   and t.schemaname <> 'information_schema'
   and pg_catalog.has_schema_privilege(current_user, t.schemaname, 'usage')
)
select t.*
from table_privileges t";

const TABLES: &str = "SELECT \"n\".\"nspname\" AS \"schema\", \"c\".\"relname\" AS \"name\", CASE \"c\".\"relkind\" WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS \"type\", \"d\".\"description\" AS \"description\", \"stat\".\"n_live_tup\" AS \"estimated_row_count\" FROM \"pg_catalog\".\"pg_class\" AS \"c\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"n\" ON \"c\".\"relnamespace\" = \"n\".\"oid\" LEFT JOIN \"pg_catalog\".\"pg_description\" AS \"d\" ON (\"c\".\"oid\" = \"d\".\"objoid\") AND (\"d\".\"objsubid\" = $1) AND (\"d\".\"classoid\" = 'pg_class'::regclass) LEFT JOIN \"pg_stat_user_tables\" AS \"stat\" ON (\"n\".\"nspname\" = \"stat\".\"schemaname\") AND (\"c\".\"relname\" = \"stat\".\"relname\") WHERE (\"c\".\"relnamespace\" = \"n\".\"oid\") AND (\"n\".\"nspname\" !~ $2) AND (\"n\".\"nspname\" <> $3) AND c.relkind in ('r', 'p', 'v', 'f', 'm') AND (\"n\".\"nspname\" IN ($4, $5, $6)) ORDER BY \"type\" ASC, \"schema\" ASC, \"name\" ASC";

const ENUMS: &str = "SELECT nspname, typname FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace WHERE t.oid IN (SELECT DISTINCT enumtypid FROM pg_enum e)";

const FIELDS: &str = "SELECT \"c\".\"column_name\" AS \"name\", CASE WHEN \"c\".\"udt_schema\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"c\".\"udt_name\") ELSE FORMAT('\"%s\".\"%s\"', \"c\".\"udt_schema\", \"c\".\"udt_name\") END AS \"database-type\", \"c\".\"ordinal_position\" - 1 AS \"database-position\", \"c\".\"table_schema\" AS \"table-schema\", \"c\".\"table_name\" AS \"table-name\", \"pk\".\"column_name\" IS NOT NULL AS \"pk?\", COL_DESCRIPTION(CAST(CAST(FORMAT('%I.%I', CAST(\"c\".\"table_schema\" AS TEXT), CAST(\"c\".\"table_name\" AS TEXT)) AS REGCLASS) AS OID), \"c\".\"ordinal_position\") AS \"field-comment\", ((\"column_default\" IS NULL) OR (LOWER(\"column_default\") = 'null')) AND (\"is_nullable\" = 'NO') AND NOT (((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO')) AS \"database-required\", ((\"column_default\" IS NOT NULL) AND (\"column_default\" LIKE '%nextval(%')) OR (\"is_identity\" <> 'NO') AS \"database-is-auto-increment\" FROM \"information_schema\".\"columns\" AS \"c\" LEFT JOIN (SELECT \"tc\".\"table_schema\", \"tc\".\"table_name\", \"kc\".\"column_name\" FROM \"information_schema\".\"table_constraints\" AS \"tc\" INNER JOIN \"information_schema\".\"key_column_usage\" AS \"kc\" ON (\"tc\".\"constraint_name\" = \"kc\".\"constraint_name\") AND (\"tc\".\"table_schema\" = \"kc\".\"table_schema\") AND (\"tc\".\"table_name\" = \"kc\".\"table_name\") WHERE \"tc\".\"constraint_type\" = 'PRIMARY KEY') AS \"pk\" ON (\"c\".\"table_schema\" = \"pk\".\"table_schema\") AND (\"c\".\"table_name\" = \"pk\".\"table_name\") AND (\"c\".\"column_name\" = \"pk\".\"column_name\") WHERE c.table_schema !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"table_schema\" IN ($1)) AND (\"c\".\"table_name\" IN ($2, $3))
UNION ALL
SELECT \"pa\".\"attname\" AS \"name\", CASE WHEN \"ptn\".\"nspname\" IN ('public', 'pg_catalog') THEN FORMAT('%s', \"pt\".\"typname\") ELSE FORMAT('\"%s\".\"%s\"', \"ptn\".\"nspname\", \"pt\".\"typname\") END AS \"database-type\", \"pa\".\"attnum\" - 1 AS \"database-position\", \"pn\".\"nspname\" AS \"table-schema\", \"pc\".\"relname\" AS \"table-name\", FALSE AS \"pk?\", NULL AS \"field-comment\", FALSE AS \"database-required\", FALSE AS \"database-is-auto-increment\" FROM \"pg_catalog\".\"pg_class\" AS \"pc\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"pn\" ON \"pn\".\"oid\" = \"pc\".\"relnamespace\" INNER JOIN \"pg_catalog\".\"pg_attribute\" AS \"pa\" ON \"pa\".\"attrelid\" = \"pc\".\"oid\" INNER JOIN \"pg_catalog\".\"pg_type\" AS \"pt\" ON \"pt\".\"oid\" = \"pa\".\"atttypid\" INNER JOIN \"pg_catalog\".\"pg_namespace\" AS \"ptn\" ON \"ptn\".\"oid\" = \"pt\".\"typnamespace\" WHERE (\"pc\".\"relkind\" = 'm') AND (\"pa\".\"attnum\" >= 1) AND (\"pn\".\"nspname\" IN ($4)) AND (\"pc\".\"relname\" IN ($5, $6)) ORDER BY \"table-schema\" ASC, \"table-name\" ASC, \"database-position\" ASC";

const FOREIGN_KEYS: &str = "SELECT \"fk_ns\".\"nspname\" AS \"fk-table-schema\", \"fk_table\".\"relname\" AS \"fk-table-name\", \"fk_column\".\"attname\" AS \"fk-column-name\", \"pk_ns\".\"nspname\" AS \"pk-table-schema\", \"pk_table\".\"relname\" AS \"pk-table-name\", \"pk_column\".\"attname\" AS \"pk-column-name\" FROM \"pg_constraint\" AS \"c\" INNER JOIN \"pg_class\" AS \"fk_table\" ON \"c\".\"conrelid\" = \"fk_table\".\"oid\" INNER JOIN \"pg_namespace\" AS \"fk_ns\" ON \"c\".\"connamespace\" = \"fk_ns\".\"oid\" INNER JOIN \"pg_attribute\" AS \"fk_column\" ON \"c\".\"conrelid\" = \"fk_column\".\"attrelid\" INNER JOIN \"pg_class\" AS \"pk_table\" ON \"c\".\"confrelid\" = \"pk_table\".\"oid\" INNER JOIN \"pg_namespace\" AS \"pk_ns\" ON \"pk_table\".\"relnamespace\" = \"pk_ns\".\"oid\" INNER JOIN \"pg_attribute\" AS \"pk_column\" ON \"c\".\"confrelid\" = \"pk_column\".\"attrelid\" WHERE fk_ns.nspname !~ '^information_schema|catalog_history|pg_' AND (\"c\".\"contype\" = 'f'::char) AND (\"fk_column\".\"attnum\" = ANY(c.conkey)) AND (\"pk_column\".\"attnum\" = ANY(c.confkey)) AND (\"fk_table\".\"relname\" IN ($1)) AND (\"fk_ns\".\"nspname\" IN ($2)) ORDER BY \"fk-table-schema\" ASC, \"fk-table-name\" ASC";

#[tokio::test]
async fn connection_setup_statements_are_accepted() {
    let client = admin().await;
    client
        .batch_execute(
            "SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ UNCOMMITTED",
        )
        .await
        .unwrap();
    let tz: String = client
        .simple_query("show timezone;")
        .await
        .unwrap()
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap();
    assert_eq!(tz, "Asia/Tehran");
    client
        .batch_execute("SET SESSION TIMEZONE TO 'UTC';")
        .await
        .unwrap();
    let row = client.query_one("SELECT 1", &[]).await.unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
}

#[tokio::test]
async fn table_privileges_cover_the_demo() {
    let client = admin().await;
    let rows = client.query(PRIVILEGES, &[]).await.unwrap();
    let contributions = rows
        .iter()
        .find(|r| {
            r.get::<_, Option<&str>>("schema") == Some("insurance")
                && r.get::<_, Option<&str>>("table") == Some("contributions")
        })
        .expect("insurance.contributions is listed");
    assert!(contributions.get::<_, bool>("select"), "admin may select");
    assert!(
        !contributions.get::<_, bool>("insert"),
        "sources are read-only"
    );
    assert!(
        rows.iter()
            .all(|r| !r.get::<_, &str>("schema").starts_with("pg_"))
    );
}

#[tokio::test]
async fn describe_database_lists_tables() {
    let client = admin().await;
    let params: [&(dyn ToSql + Sync); 6] = [
        &0i32,
        &"^pg_",
        &"information_schema",
        &"insurance",
        &"pension",
        &"health",
    ];
    let rows = client.query(TABLES, &params).await.unwrap();
    let names: Vec<(String, String, String)> = rows
        .iter()
        .map(|r| (r.get("schema"), r.get("name"), r.get("type")))
        .collect();
    assert!(
        names.contains(&("insurance".into(), "contributions".into(), "TABLE".into())),
        "{names:?}"
    );
    assert!(
        names.contains(&("pension".into(), "payments".into(), "TABLE".into())),
        "{names:?}"
    );
    assert!(
        names.contains(&("health".into(), "claims".into(), "TABLE".into())),
        "{names:?}"
    );
    assert_eq!(names.len(), 10, "{names:?}");
    let enums = client.query(ENUMS, &[]).await.unwrap();
    assert!(enums.is_empty());
}

#[tokio::test]
async fn describe_fields_reports_types_positions_and_keys() {
    let client = admin().await;
    let params: [&(dyn ToSql + Sync); 6] = [
        &"insurance",
        &"contributions",
        &"provinces",
        &"insurance",
        &"contributions",
        &"provinces",
    ];
    let rows = client.query(FIELDS, &params).await.unwrap();
    // ordinal_position - 1 is an integer, as in PostgreSQL.
    let fields: Vec<(String, String, i32, String, bool, bool)> = rows
        .iter()
        .map(|r| {
            (
                r.get("table-name"),
                r.get("name"),
                r.get("database-position"),
                r.get("database-type"),
                r.get("pk?"),
                r.get("database-required"),
            )
        })
        .collect();
    assert_eq!(fields.len(), 12 + 4, "{fields:?}");
    assert!(
        fields.contains(&(
            "contributions".into(),
            "id".into(),
            0,
            "int8".into(),
            true,
            true
        )),
        "{fields:?}"
    );
    assert!(
        fields.contains(&(
            "contributions".into(),
            "wage".into(),
            7,
            "numeric".into(),
            false,
            true
        )),
        "{fields:?}"
    );
    assert!(
        fields.contains(&(
            "contributions".into(),
            "paid_at".into(),
            10,
            "timestamp".into(),
            false,
            false
        )),
        "{fields:?}"
    );
    assert!(
        fields.contains(&(
            "provinces".into(),
            "code".into(),
            0,
            "int2".into(),
            true,
            true
        )),
        "{fields:?}"
    );
}

#[tokio::test]
async fn describe_fks_finds_none_and_the_probe_query_plans() {
    let client = admin().await;
    let params: [&(dyn ToSql + Sync); 2] = [&"contributions", &"insurance"];
    let rows = client.query(FOREIGN_KEYS, &params).await.unwrap();
    assert!(rows.is_empty());
    let rows = client
        .query(
            "SELECT TRUE AS \"_\" FROM \"insurance\".\"contributions\" WHERE 1 <> 1 LIMIT 0",
            &[],
        )
        .await
        .unwrap();
    assert!(rows.is_empty());
}
