//! The statements DBeaver sends when it connects and browses a schema (with
//! pgjdbc), run through the extended-free simple protocol as DBeaver's metadata reads
//! do, with what their answers must show of the demo.

use tokio_postgres::SimpleQueryMessage;

use crate::support::admin;

async fn rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("DBeaver's query failed: {e:?}\n{sql}"));
    messages
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn column(rows: &[Vec<Option<String>>], i: usize) -> Vec<String> {
    rows.iter()
        .filter_map(|r| r.get(i).cloned().flatten())
        .collect()
}

#[tokio::test]
async fn dbeaver_connects_and_browses_the_insurance_schema() {
    let client = admin().await;
    for sql in [
        "SET extra_float_digits = 3",
        "SET application_name = 'PostgreSQL JDBC Driver'",
        "SET application_name = 'DBeaver 25.1.5 - Main <amar>'",
    ] {
        rows(&client, sql).await;
    }
    let who = rows(&client, "SELECT current_schema(),session_user").await;
    assert_eq!(who, vec![vec![Some("public".into()), Some("admin".into())]]);

    let namespaces = rows(
        &client,
        "SELECT n.oid,n.*,d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=n.oid AND d.objsubid=0 AND d.classoid='pg_namespace'::regclass ORDER BY nspname",
    )
    .await;
    let insurance = namespaces
        .iter()
        .find(|r| r.get(2).cloned().flatten().as_deref() == Some("insurance"))
        .expect("the insurance schema is listed");
    let insurance_oid = insurance[0].clone().unwrap();

    let array_type = rows(
        &client,
        "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid   FROM pg_catalog.pg_type   LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r           from pg_namespace as ns           join ( select s.r, (current_schemas(false))[s.r] as nspname                    from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r          using ( nspname )        ) as sp     ON sp.nspoid = typnamespace  WHERE pg_type.oid = 1034  ORDER BY sp.r, pg_type.oid DESC",
    )
    .await;
    assert_eq!(
        array_type[0][0].as_deref(),
        Some("t"),
        "1034 (aclitem[]) is an array: {array_type:?}"
    );

    for sql in [
        "SELECT n.nspname = ANY(current_schemas(true)), n.nspname, t.typname FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON t.typnamespace = n.oid WHERE t.oid = 1034",
        "SHOW search_path",
        "SELECT * FROM pg_catalog.pg_settings where name='standard_conforming_strings'",
        "SELECT version()",
        "SELECT * FROM pg_catalog.pg_enum WHERE 1<>1 LIMIT 1",
        "SELECT reltype FROM pg_catalog.pg_class WHERE 1<>1 LIMIT 1",
        "SELECT t.oid,t.*,c.relkind,format_type(nullif(t.typbasetype, 0), t.typtypmod) as base_type_name, d.description FROM pg_catalog.pg_type t LEFT OUTER JOIN pg_catalog.pg_type et ON et.oid=t.typelem LEFT OUTER JOIN pg_catalog.pg_class c ON c.oid=t.typrelid LEFT OUTER JOIN pg_catalog.pg_description d ON t.oid=d.objoid WHERE t.typname IS NOT NULL AND (c.relkind IS NULL OR c.relkind = 'c') AND (et.typcategory IS NULL OR et.typcategory <> 'C')",
    ] {
        rows(&client, sql).await;
    }
    let database = rows(
        &client,
        "SELECT db.oid,db.* FROM pg_catalog.pg_database db WHERE datname='amar'",
    )
    .await;
    assert_eq!(database.len(), 1);

    let tables = rows(
        &client,
        &format!(
            "SELECT c.oid,c.*,d.description,pg_catalog.pg_get_expr(c.relpartbound, c.oid) as partition_expr,  pg_catalog.pg_get_partkeydef(c.oid) as partition_key \
             FROM pg_catalog.pg_class c \
             LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_class'::regclass \
             WHERE c.relnamespace={insurance_oid} AND c.relkind not in ('i','I','c')"
        ),
    )
    .await;
    // c.oid, then c.* (oid, relname, …).
    let names = column(&tables, 2);
    assert!(
        names.contains(&"contributions".to_string()) && names.len() == 6,
        "{names:?}"
    );
    let contributions_oid = tables
        .iter()
        .find(|r| r[2].as_deref() == Some("contributions"))
        .and_then(|r| r[0].clone())
        .unwrap();

    let indexes = rows(
        &client,
        &format!(
            "SELECT i.*,i.indkey as keys,c.relname,c.relnamespace,c.relam,c.reltablespace,tc.relname as tabrelname,dsc.description,pg_catalog.pg_get_expr(i.indpred, i.indrelid) as pred_expr,pg_catalog.pg_get_expr(i.indexprs, i.indrelid, true) as expr,pg_catalog.pg_relation_size(i.indexrelid) as index_rel_size,pg_catalog.pg_stat_get_numscans(i.indexrelid) as index_num_scans FROM pg_catalog.pg_index i \
             INNER JOIN pg_catalog.pg_class c ON c.oid=i.indexrelid \
             INNER JOIN pg_catalog.pg_class tc ON tc.oid=i.indrelid \
             LEFT OUTER JOIN pg_catalog.pg_description dsc ON i.indexrelid=dsc.objoid \
             WHERE  i.indrelid={contributions_oid} ORDER BY tabrelname, c.relname"
        ),
    )
    .await;
    assert_eq!(indexes.len(), 1, "{indexes:?}");
    assert!(
        indexes[0].contains(&Some("contributions_pkey".to_string())),
        "{indexes:?}"
    );

    let constraints = rows(
        &client,
        &format!(
            "SELECT c.oid,c.*,t.relname as tabrelname,rt.relnamespace as refnamespace,d.description, case when c.contype='c' then \"substring\"(pg_get_constraintdef(c.oid), 7) else null end consrc_copy \
             FROM pg_catalog.pg_constraint c \
             INNER JOIN pg_catalog.pg_class t ON t.oid=c.conrelid \
             LEFT OUTER JOIN pg_catalog.pg_class rt ON rt.oid=c.confrelid \
             LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid=c.oid AND d.objsubid=0 AND d.classoid='pg_constraint'::regclass \
             WHERE c.conrelid={contributions_oid} \
             ORDER BY c.oid"
        ),
    )
    .await;
    assert_eq!(constraints.len(), 1, "{constraints:?}");
    assert!(constraints[0].contains(&Some("contributions_pkey".to_string())));
    assert!(constraints[0].contains(&Some("p".to_string())));
}
