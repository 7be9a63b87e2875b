//! Which OID names which object, and what Amar knows about each user table that
//! PostgreSQL keeps in its catalog (primary keys, comments, numeric precision).
//!
//! datafusion-pg-catalog assigns OIDs to schemas and tables as its `pg_class` and
//! `pg_namespace` are read, and keeps them stable. We read those two tables (at start
//! and whenever one of our catalog tables is scanned) and keep the mapping here, so
//! that our additions (`pg_constraint`, `pg_index`, `pg_description`, and functions
//! such as `col_description`) use the same OIDs as the crate's tables. Index and
//! constraint OIDs are derived from their table's OID by fixed offsets, so they are
//! stable too.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::common::Constraint;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::collect;

use crate::AmarCatalog;

/// A primary key's index OID is its table's OID plus this.
pub const INDEX_OID_OFFSET: i32 = 1_000_000_000;
/// A primary key constraint's OID is its table's OID plus this.
pub const CONSTRAINT_OID_OFFSET: i32 = 1_100_000_000;

/// What pg_catalog needs to know of one user table.
#[derive(Debug, Clone, Default)]
pub struct TableInfo {
    pub schema: String,
    pub name: String,
    pub oid: i32,
    pub namespace_oid: i32,
    /// Primary-key columns as (attnum, name), in key order.
    pub primary_key: Vec<(i16, String)>,
    pub comment: Option<String>,
    /// Column comments as (attnum, comment).
    pub column_comments: Vec<(i16, String)>,
    /// `atttypmod` for numeric columns with a known precision and scale, by attnum.
    pub numeric_typmods: Vec<(i16, i32)>,
    /// Column names in attnum order.
    pub column_names: Vec<String>,
    /// A view's defining query, where the source has one.
    pub definition: Option<String>,
}

impl TableInfo {
    pub fn index_oid(&self) -> i32 {
        self.oid + INDEX_OID_OFFSET
    }

    pub fn constraint_oid(&self) -> i32 {
        self.oid + CONSTRAINT_OID_OFFSET
    }

    pub fn index_name(&self) -> String {
        format!("{}_pkey", self.name)
    }

    fn quoted_columns(&self) -> String {
        self.primary_key
            .iter()
            .map(|(_, c)| quote_ident(c))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `pg_get_indexdef` of the primary key's index.
    pub fn index_definition(&self) -> String {
        format!(
            "CREATE UNIQUE INDEX {} ON {}.{} USING btree ({})",
            quote_ident(&self.index_name()),
            quote_ident(&self.schema),
            quote_ident(&self.name),
            self.quoted_columns()
        )
    }

    /// `pg_get_constraintdef` of the primary key.
    pub fn constraint_definition(&self) -> String {
        format!("PRIMARY KEY ({})", self.quoted_columns())
    }
}

/// An identifier as PostgreSQL prints it: bare when it can be, quoted otherwise.
pub fn quote_ident(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[derive(Debug, Default)]
struct Maps {
    /// Every relation pg_class lists, by (schema, name).
    relations: HashMap<(String, String), i32>,
    /// Schema names by namespace OID.
    namespaces: HashMap<i32, String>,
    tables: HashMap<i32, Arc<TableInfo>>,
    by_index: HashMap<i32, Arc<TableInfo>>,
    by_constraint: HashMap<i32, Arc<TableInfo>>,
}

/// The shared directory of OIDs and user-table facts.
#[derive(Debug)]
pub struct OidDirectory {
    catalog: Arc<AmarCatalog>,
    maps: RwLock<Maps>,
}

impl OidDirectory {
    pub fn new(catalog: Arc<AmarCatalog>) -> Self {
        Self {
            catalog,
            maps: RwLock::new(Maps::default()),
        }
    }

    /// Re-reads OIDs from the crate's `pg_class` and `pg_namespace` and table facts
    /// from the catalog.
    pub async fn refresh(
        &self,
        state: &dyn Session,
        pg_catalog: &dyn SchemaProvider,
    ) -> Result<()> {
        let classes = read_int_and_names(
            state,
            pg_catalog,
            "pg_class",
            &["oid", "relname", "relnamespace"],
        )
        .await?;
        let namespaces =
            read_int_and_names(state, pg_catalog, "pg_namespace", &["oid", "nspname"]).await?;
        let namespace_names: HashMap<i32, String> = namespaces
            .into_iter()
            .map(|(oid, names, _)| (oid, names))
            .collect();
        let mut maps = Maps {
            namespaces: namespace_names.clone(),
            ..Maps::default()
        };
        for (oid, name, ns) in &classes {
            if let Some(schema) = ns.and_then(|ns| namespace_names.get(&ns)) {
                maps.relations.insert((schema.clone(), name.clone()), *oid);
            }
        }
        for source in self.catalog.sources() {
            let schema = source.source().name().to_string();
            for table in source.entries() {
                let Some((oid, _, ns)) = classes.iter().find(|(_, name, ns)| {
                    name == &table.name && namespace_names.get(&ns.unwrap_or(-1)) == Some(&schema)
                }) else {
                    continue;
                };
                let arrow = table.provider.schema();
                let primary_key = table
                    .provider
                    .constraints()
                    .and_then(|c| {
                        c.iter().find_map(|c| match c {
                            Constraint::PrimaryKey(columns) => Some(columns.clone()),
                            _ => None,
                        })
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| {
                        arrow
                            .fields()
                            .get(i)
                            .map(|f| ((i + 1) as i16, f.name().clone()))
                    })
                    .collect();
                let column_comments = arrow
                    .fields()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| {
                        f.metadata()
                            .get(amar_connectors::COMMENT_KEY)
                            .map(|c| ((i + 1) as i16, c.clone()))
                    })
                    .collect();
                let numeric_typmods = arrow
                    .fields()
                    .iter()
                    .enumerate()
                    .filter_map(|(i, f)| match f.data_type() {
                        DataType::Decimal128(p, s) if *s >= 0 => {
                            Some(((i + 1) as i16, ((*p as i32) << 16 | *s as i32) + 4))
                        }
                        _ => None,
                    })
                    .collect();
                let info = Arc::new(TableInfo {
                    schema: schema.clone(),
                    name: table.name.clone(),
                    oid: *oid,
                    namespace_oid: ns.unwrap_or(0),
                    primary_key,
                    comment: table.comment.clone(),
                    column_comments,
                    numeric_typmods,
                    column_names: arrow.fields().iter().map(|f| f.name().clone()).collect(),
                    definition: table.provider.get_table_definition().map(str::to_string),
                });
                if !info.primary_key.is_empty() {
                    maps.by_index.insert(info.index_oid(), info.clone());
                    maps.by_constraint
                        .insert(info.constraint_oid(), info.clone());
                }
                maps.tables.insert(*oid, info);
            }
        }
        *self.maps.write().unwrap_or_else(|e| e.into_inner()) = maps;
        Ok(())
    }

    /// Every user table, in OID order.
    pub fn tables(&self) -> Vec<Arc<TableInfo>> {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let mut tables: Vec<_> = maps.tables.values().cloned().collect();
        tables.sort_by_key(|t| t.oid);
        tables
    }

    /// The OID of `schema.name`, as `'schema.name'::regclass` finds it; an
    /// unqualified name is looked up in pg_catalog, then public.
    pub fn relation(&self, schema: Option<&str>, name: &str) -> Option<i32> {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        let lookup = |s: &str| {
            maps.relations
                .get(&(s.to_string(), name.to_string()))
                .copied()
        };
        match schema {
            Some(s) => lookup(s),
            None => lookup("pg_catalog").or_else(|| lookup(crate::DEFAULT_SCHEMA)),
        }
    }

    /// The tables of a schema of the `amar` database.
    pub fn schema_tables(&self, schema: &str) -> Vec<String> {
        self.catalog
            .provider()
            .schema(schema)
            .map(|s| s.table_names())
            .unwrap_or_default()
    }

    /// The schema a namespace OID names.
    pub fn namespace(&self, oid: i32) -> Option<String> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .namespaces
            .get(&oid)
            .cloned()
    }

    pub fn table(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .tables
            .get(&oid)
            .cloned()
    }

    pub fn by_index(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_index
            .get(&oid)
            .cloned()
    }

    pub fn by_constraint(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.maps
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .by_constraint
            .get(&oid)
            .cloned()
    }
}

/// Reads `oid`, a name and optionally a second OID column from a pg_catalog table.
async fn read_int_and_names(
    state: &dyn Session,
    pg_catalog: &dyn SchemaProvider,
    table: &str,
    columns: &[&str],
) -> Result<Vec<(i32, String, Option<i32>)>> {
    let provider = pg_catalog
        .table(table)
        .await?
        .ok_or_else(|| DataFusionError::Internal(format!("pg_catalog.{table} is missing")))?;
    let schema = provider.schema();
    let projection: Vec<usize> = columns
        .iter()
        .map(|c| schema.index_of(c))
        .collect::<std::result::Result<_, _>>()?;
    let plan = provider.scan(state, Some(&projection), &[], None).await?;
    let batches = collect(plan, state.task_ctx()).await?;
    let mut out = vec![];
    for batch in batches {
        let oids = batch.column(0).as_primitive::<Int32Type>();
        let names = batch.column(1).as_string::<i32>();
        let extra = (batch.num_columns() > 2).then(|| batch.column(2).as_primitive::<Int32Type>());
        for i in 0..batch.num_rows() {
            if oids.is_null(i) || names.is_null(i) {
                continue;
            }
            out.push((
                oids.value(i),
                names.value(i).to_string(),
                extra.and_then(|e| (!e.is_null(i)).then(|| e.value(i))),
            ));
        }
    }
    Ok(out)
}
