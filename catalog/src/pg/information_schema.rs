//! `information_schema` as PostgreSQL defines it, as views over our pg_catalog.
//!
//! DataFusion's own information_schema names types the Arrow way (`Int64`) and lacks
//! the columns and views tools read (`udt_name`, `is_identity`, `table_constraints`,
//! `key_column_usage`). These views follow PostgreSQL's definitions for the columns
//! clients use, and because they read pg_catalog, they show exactly what pg_catalog
//! shows, to whoever asks.

use std::sync::Arc;

use datafusion::catalog::MemorySchemaProvider;
use datafusion::catalog::SchemaProvider;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;

use crate::DATABASE;

/// PostgreSQL's type names, as `information_schema.columns.data_type` spells them.
const DATA_TYPE: &str = "CASE t.typname \
    WHEN 'int2' THEN 'smallint' WHEN 'int4' THEN 'integer' WHEN 'int8' THEN 'bigint' \
    WHEN 'float4' THEN 'real' WHEN 'float8' THEN 'double precision' WHEN 'numeric' THEN 'numeric' \
    WHEN 'bool' THEN 'boolean' WHEN 'text' THEN 'text' WHEN 'varchar' THEN 'character varying' \
    WHEN 'bpchar' THEN 'character' WHEN 'date' THEN 'date' \
    WHEN 'timestamp' THEN 'timestamp without time zone' WHEN 'timestamptz' THEN 'timestamp with time zone' \
    WHEN 'time' THEN 'time without time zone' WHEN 'bytea' THEN 'bytea' WHEN 'interval' THEN 'interval' \
    WHEN 'json' THEN 'json' WHEN 'jsonb' THEN 'jsonb' WHEN 'uuid' THEN 'uuid' WHEN 'oid' THEN 'oid' \
    WHEN 'name' THEN 'name' WHEN 'char' THEN '\"char\"' \
    ELSE CASE WHEN substr(t.typname, 1, 1) = '_' THEN 'ARRAY' ELSE 'USER-DEFINED' END END";

fn views() -> Vec<(&'static str, String)> {
    let relations =
        "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace";
    vec![
        (
            "schemata",
            format!(
                "SELECT '{DATABASE}' AS catalog_name, nspname AS schema_name, 'postgres' AS schema_owner, \
                 CAST(NULL AS VARCHAR) AS default_character_set_catalog, \
                 CAST(NULL AS VARCHAR) AS default_character_set_schema, \
                 CAST(NULL AS VARCHAR) AS default_character_set_name, CAST(NULL AS VARCHAR) AS sql_path \
                 FROM pg_catalog.pg_namespace"
            ),
        ),
        (
            "tables",
            format!(
                "SELECT '{DATABASE}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 CASE c.relkind WHEN 'r' THEN 'BASE TABLE' WHEN 'p' THEN 'BASE TABLE' WHEN 'v' THEN 'VIEW' \
                   WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'f' THEN 'FOREIGN' END AS table_type, \
                 CAST(NULL AS VARCHAR) AS self_referencing_column_name, CAST(NULL AS VARCHAR) AS reference_generation, \
                 CAST(NULL AS VARCHAR) AS user_defined_type_catalog, CAST(NULL AS VARCHAR) AS user_defined_type_schema, \
                 CAST(NULL AS VARCHAR) AS user_defined_type_name, 'NO' AS is_insertable_into, 'NO' AS is_typed, \
                 CAST(NULL AS VARCHAR) AS commit_action \
                 {relations} WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            ),
        ),
        (
            "views",
            format!(
                "SELECT '{DATABASE}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 CAST(NULL AS VARCHAR) AS view_definition, 'NONE' AS check_option, 'NO' AS is_updatable, \
                 'NO' AS is_insertable_into, 'NO' AS is_trigger_updatable, 'NO' AS is_trigger_deletable, \
                 'NO' AS is_trigger_insertable_into \
                 {relations} WHERE c.relkind = 'v'"
            ),
        ),
        (
            "columns",
            format!(
                "SELECT '{DATABASE}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 a.attname AS column_name, CAST(a.attnum AS INT) AS ordinal_position, \
                 CAST(NULL AS VARCHAR) AS column_default, \
                 CASE WHEN a.attnotnull THEN 'NO' ELSE 'YES' END AS is_nullable, \
                 {DATA_TYPE} AS data_type, \
                 CAST(NULL AS INT) AS character_maximum_length, CAST(NULL AS INT) AS character_octet_length, \
                 CAST(CASE t.typname WHEN 'int2' THEN 16 WHEN 'int4' THEN 32 WHEN 'int8' THEN 64 \
                   WHEN 'float4' THEN 24 WHEN 'float8' THEN 53 \
                   WHEN 'numeric' THEN CASE WHEN a.atttypmod > 0 THEN (a.atttypmod - 4) / 65536 END END AS INT) AS numeric_precision, \
                 CAST(CASE WHEN t.typname IN ('int2', 'int4', 'int8', 'numeric') THEN 10 \
                   WHEN t.typname IN ('float4', 'float8') THEN 2 END AS INT) AS numeric_precision_radix, \
                 CAST(CASE WHEN t.typname IN ('int2', 'int4', 'int8') THEN 0 \
                   WHEN t.typname = 'numeric' AND a.atttypmod > 0 THEN (a.atttypmod - 4) % 65536 END AS INT) AS numeric_scale, \
                 CAST(CASE WHEN t.typname = 'date' THEN 0 \
                   WHEN t.typname IN ('timestamp', 'timestamptz', 'time') THEN 6 END AS INT) AS datetime_precision, \
                 CAST(NULL AS VARCHAR) AS interval_type, CAST(NULL AS INT) AS interval_precision, \
                 CAST(NULL AS VARCHAR) AS character_set_catalog, CAST(NULL AS VARCHAR) AS character_set_schema, \
                 CAST(NULL AS VARCHAR) AS character_set_name, CAST(NULL AS VARCHAR) AS collation_catalog, \
                 CAST(NULL AS VARCHAR) AS collation_schema, CAST(NULL AS VARCHAR) AS collation_name, \
                 CAST(NULL AS VARCHAR) AS domain_catalog, CAST(NULL AS VARCHAR) AS domain_schema, \
                 CAST(NULL AS VARCHAR) AS domain_name, '{DATABASE}' AS udt_catalog, 'pg_catalog' AS udt_schema, \
                 t.typname AS udt_name, CAST(NULL AS VARCHAR) AS scope_catalog, CAST(NULL AS VARCHAR) AS scope_schema, \
                 CAST(NULL AS VARCHAR) AS scope_name, CAST(NULL AS INT) AS maximum_cardinality, \
                 CAST(a.attnum AS VARCHAR) AS dtd_identifier, 'NO' AS is_self_referencing, 'NO' AS is_identity, \
                 CAST(NULL AS VARCHAR) AS identity_generation, CAST(NULL AS VARCHAR) AS identity_start, \
                 CAST(NULL AS VARCHAR) AS identity_increment, CAST(NULL AS VARCHAR) AS identity_maximum, \
                 CAST(NULL AS VARCHAR) AS identity_minimum, CAST(NULL AS VARCHAR) AS identity_cycle, \
                 'NEVER' AS is_generated, CAST(NULL AS VARCHAR) AS generation_expression, 'NO' AS is_updatable \
                 FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_catalog.pg_type t ON t.oid = a.atttypid \
                 WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
            ),
        ),
        (
            "table_constraints",
            format!(
                "SELECT '{DATABASE}' AS constraint_catalog, n.nspname AS constraint_schema, con.conname AS constraint_name, \
                 '{DATABASE}' AS table_catalog, n.nspname AS table_schema, c.relname AS table_name, \
                 CASE con.contype WHEN 'p' THEN 'PRIMARY KEY' WHEN 'u' THEN 'UNIQUE' WHEN 'f' THEN 'FOREIGN KEY' \
                   WHEN 'c' THEN 'CHECK' END AS constraint_type, \
                 'NO' AS is_deferrable, 'NO' AS initially_deferred, 'YES' AS enforced, \
                 CAST(NULL AS VARCHAR) AS nulls_distinct \
                 FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
            ),
        ),
        (
            "key_column_usage",
            format!(
                "SELECT '{DATABASE}' AS constraint_catalog, k.nspname AS constraint_schema, k.conname AS constraint_name, \
                 '{DATABASE}' AS table_catalog, k.nspname AS table_schema, k.relname AS table_name, \
                 a.attname AS column_name, CAST(k.ordinal_position AS INT) AS ordinal_position, \
                 CAST(NULL AS INT) AS position_in_unique_constraint \
                 FROM (SELECT n.nspname, c.relname, con.conname, con.conrelid, unnest(con.conkey) AS attnum, \
                         unnest(generate_series(1, array_length(con.conkey, 1))) AS ordinal_position \
                       FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_class c ON c.oid = con.conrelid \
                       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace) k \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.attnum"
            ),
        ),
        (
            "referential_constraints",
            "SELECT CAST(NULL AS VARCHAR) AS constraint_catalog, CAST(NULL AS VARCHAR) AS constraint_schema, \
             CAST(NULL AS VARCHAR) AS constraint_name, CAST(NULL AS VARCHAR) AS unique_constraint_catalog, \
             CAST(NULL AS VARCHAR) AS unique_constraint_schema, CAST(NULL AS VARCHAR) AS unique_constraint_name, \
             CAST(NULL AS VARCHAR) AS match_option, CAST(NULL AS VARCHAR) AS update_rule, \
             CAST(NULL AS VARCHAR) AS delete_rule WHERE false"
                .to_string(),
        ),
        (
            "constraint_column_usage",
            "SELECT CAST(NULL AS VARCHAR) AS table_catalog, CAST(NULL AS VARCHAR) AS table_schema, \
             CAST(NULL AS VARCHAR) AS table_name, CAST(NULL AS VARCHAR) AS column_name, \
             CAST(NULL AS VARCHAR) AS constraint_catalog, CAST(NULL AS VARCHAR) AS constraint_schema, \
             CAST(NULL AS VARCHAR) AS constraint_name WHERE false"
                .to_string(),
        ),
    ]
}

/// Registers the `information_schema` schema of the `amar` database. The session
/// must have DataFusion's own information_schema turned off.
pub async fn install(ctx: &SessionContext) -> Result<()> {
    let schema = Arc::new(MemorySchemaProvider::new());
    if let Some(database) = ctx.catalog(DATABASE) {
        database.register_schema("information_schema", schema.clone())?;
    }
    for (name, sql) in views() {
        let view = ctx.sql(&sql).await?.into_view();
        schema.register_table(name.to_string(), view)?;
    }
    Ok(())
}
