//! PostgreSQL's `pg_catalog`, as clients expect it.
//!
//! datafusion-pg-catalog provides the tables and most functions. This module closes
//! the gaps our users' tools meet: the sources' primary keys in `pg_constraint`,
//! `pg_index` and `pg_class` (so `\d`, JDBC `getPrimaryKeys`, SQLAlchemy and Metabase
//! see them), comments through `pg_description`, `col_description` and
//! `obj_description`, `numeric(p,s)` in `pg_attribute`, `pg_get_indexdef`,
//! `to_regtype` (psycopg's type loading) and a PostgreSQL-shaped `version()`.

pub mod compat;
mod directory;
mod functions;
mod information_schema;
mod privileges;
mod tables;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Int32Type};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

pub use directory::{OidDirectory, TableInfo, quote_ident};
use tables::{Computed, Context, PgAttribute, PgClass, PgConstraint, PgDescription, PgIndex};
pub use tables::{CursorCatalog, CursorRow, SessionCursors};

use crate::{AmarCatalog, DATABASE};

/// The PostgreSQL version Amar reports; the emulated catalog follows PostgreSQL 16.
pub const SERVER_VERSION: &str = "16.4";
pub const SERVER_VERSION_NUM: &str = "160004";

/// What `version()` returns: PostgreSQL's shape (pgAdmin and Metabase parse it), with
/// Amar's own name and version inside.
pub fn version_string() -> String {
    format!(
        "PostgreSQL {SERVER_VERSION} (Amar {}) on {}-linux, compiled by rustc, 64-bit",
        env!("CARGO_PKG_VERSION"),
        std::env::consts::ARCH
    )
}

/// The crate's pg_catalog with our tables in front.
#[derive(Debug)]
pub struct PgCatalog {
    context: Context,
    /// pg_type is static: one converted copy serves every query.
    pg_type: std::sync::OnceLock<Arc<Computed<tables::PgType>>>,
}

#[async_trait]
impl SchemaProvider for PgCatalog {
    fn table_names(&self) -> Vec<String> {
        let mut names = self.context.inner.table_names();
        names.push("pg_cursors".to_string());
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let context = self.context.clone();
        let lower = name.to_ascii_lowercase();
        let inner_schema = |table: &str| {
            let inner = self.context.inner.clone();
            let table = table.to_string();
            async move {
                inner
                    .table(&table)
                    .await?
                    .map(|t| t.schema())
                    .ok_or_else(|| {
                        DataFusionError::Internal(format!("pg_catalog.{table} is missing"))
                    })
            }
        };
        Ok(Some(match lower.as_str() {
            "pg_class" => Arc::new(Computed(PgClass {
                schema: tables::extended_schema(
                    &inner_schema("pg_class").await?,
                    &tables::pg_class_extra(),
                ),
                context,
            })),
            "pg_statistic_ext" => {
                // PostgreSQL's stxkind is "char"[]; `'d' = any(stxkind)` (psql's \d) needs a list.
                let inner = inner_schema("pg_statistic_ext").await?;
                let text_array = DataType::List(Arc::new(
                    datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true),
                ));
                let fields: Vec<_> = inner
                    .fields()
                    .iter()
                    .map(|f| {
                        if f.name() == "stxkind" {
                            datafusion::arrow::datatypes::Field::new(
                                "stxkind",
                                text_array.clone(),
                                true,
                            )
                        } else {
                            f.as_ref().clone()
                        }
                    })
                    .collect();
                Arc::new(Computed(tables::Empty {
                    schema: Arc::new(datafusion::arrow::datatypes::Schema::new(fields)),
                }))
            }
            "pg_attribute" => Arc::new(Computed(PgAttribute {
                schema: inner_schema("pg_attribute").await?,
                context,
            })),
            "pg_description" => Arc::new(Computed(PgDescription {
                schema: inner_schema("pg_description").await?,
                context,
            })),
            "pg_type" => {
                let schema = tables::PgType::table_schema(&inner_schema("pg_type").await?);
                self.pg_type
                    .get_or_init(|| {
                        Arc::new(Computed(tables::PgType {
                            schema,
                            context,
                            cache: tokio::sync::OnceCell::new(),
                        }))
                    })
                    .clone()
            }
            "pg_namespace" => Arc::new(Computed(tables::Filtered {
                schema: inner_schema("pg_namespace").await?,
                context,
                table: "pg_namespace",
                schema_column: "nspname",
                table_column: None,
            })),
            "pg_tables" => Arc::new(Computed(tables::Filtered {
                schema: inner_schema("pg_tables").await?,
                context,
                table: "pg_tables",
                schema_column: "schemaname",
                table_column: Some("tablename"),
            })),
            "pg_settings" => Arc::new(Computed(compat::PgSettings {
                schema: inner_schema("pg_settings").await?,
            })),
            "pg_cursors" => Arc::new(Computed(tables::PgCursors {
                schema: tables::PgCursors::table_schema(),
            })),
            "pg_constraint" => Arc::new(Computed(PgConstraint {
                schema: PgConstraint::table_schema(),
                context,
            })),
            "pg_index" => Arc::new(Computed(PgIndex {
                schema: PgIndex::table_schema(),
                context,
            })),
            _ => return self.context.inner.table(name).await,
        }))
    }

    fn table_exist(&self, name: &str) -> bool {
        name.eq_ignore_ascii_case("pg_cursors") || self.context.inner.table_exist(name)
    }
}

/// The catalog functions that answer differently per user (comments, index and
/// constraint definitions, privileges), for a session whose user sees what
/// `visibility` allows: registered in each session in place of the base ones.
pub fn session_functions(
    directory: Arc<OidDirectory>,
    visibility: Arc<dyn crate::visible::Visibility>,
) -> Vec<datafusion::logical_expr::ScalarUDF> {
    let mut all = functions::directory_functions(directory.clone(), Some(visibility.clone()));
    all.extend(privileges::privilege_functions(Some((
        directory, visibility,
    ))));
    all
}

/// Adds Amar's pg_catalog extensions to a context already set up by
/// `datafusion_pg_catalog::setup_pg_catalog`.
pub async fn install(ctx: &SessionContext, catalog: Arc<AmarCatalog>) -> Result<Arc<OidDirectory>> {
    let database = ctx.catalog(DATABASE).ok_or_else(|| {
        DataFusionError::Internal(format!("catalog {DATABASE} is not registered"))
    })?;
    let inner = database
        .schema("pg_catalog")
        .ok_or_else(|| DataFusionError::Internal("pg_catalog is not set up".into()))?;
    let directory = Arc::new(OidDirectory::new(catalog));
    let context = Context {
        inner: inner.clone(),
        directory: directory.clone(),
    };
    database.register_schema(
        "pg_catalog",
        Arc::new(PgCatalog {
            context,
            pg_type: std::sync::OnceLock::new(),
        }),
    )?;

    // Assign every table its OID now, so OIDs do not depend on which client asks first.
    let state = ctx.state();
    directory.refresh(&state, inner.as_ref()).await?;

    for f in functions::directory_functions(directory.clone(), None) {
        ctx.register_udf(f);
    }
    ctx.register_udf(functions::to_regtype(type_oids(ctx).await?));
    for name in ["pg_type_is_visible", "pg_function_is_visible"] {
        // Every type and function Amar has lives in pg_catalog, which is always visible.
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))))),
        ));
    }
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        functions::ExpandArray::default(),
    ));
    if let Some(inner) = ctx.state().scalar_functions().get("format_type").cloned() {
        ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
            functions::FormatType::new(inner),
        ));
    }
    for f in privileges::privilege_functions(None) {
        ctx.register_udf(f);
    }
    ctx.register_udf(privileges::format_function());
    ctx.register_udf(functions::pg_size_pretty());
    for f in compat::functions() {
        ctx.register_udf(f);
    }
    for f in compat::signature_functions(compat::function_signatures(ctx).await?) {
        ctx.register_udf(f);
    }
    for name in ["pg_table_size", "pg_indexes_size"] {
        // Sizes on disk are the sources' business; unknown here.
        ctx.register_udf(create_udf(
            name,
            vec![DataType::Int64],
            DataType::Int64,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Int64(None)))),
        ));
    }
    ctx.register_udf(privileges::to_regclass(directory.clone()));
    for f in crate::persian::functions() {
        ctx.register_udf(f);
    }
    // Amar publishes nothing by logical replication; psql asks with the OID quoted.
    ctx.register_udf(datafusion::logical_expr::ScalarUDF::new_from_impl(
        functions::Constant::boolean("pg_relation_is_publishable", false),
    ));
    information_schema::install(ctx).await?;
    let version = version_string();
    ctx.register_udf(create_udf(
        "version",
        vec![],
        DataType::Utf8,
        Volatility::Stable,
        Arc::new(move |_| {
            Ok(ColumnarValue::Scalar(ScalarValue::Utf8(Some(
                version.clone(),
            ))))
        }),
    ));
    Ok(directory)
}

/// `typname → oid` from the static `pg_type`.
async fn type_oids(ctx: &SessionContext) -> Result<HashMap<String, i32>> {
    let batches = ctx
        .sql("SELECT oid, typname FROM pg_catalog.pg_type")
        .await?
        .collect()
        .await?;
    let mut types = HashMap::new();
    for batch in batches {
        let oids = batch.column(0).as_primitive::<Int32Type>();
        let names = datafusion::arrow::compute::cast(batch.column(1), &DataType::Utf8)?;
        let names = names.as_string::<i32>();
        for i in 0..batch.num_rows() {
            if !oids.is_null(i) && !names.is_null(i) {
                types.insert(names.value(i).to_string(), oids.value(i));
            }
        }
    }
    Ok(types)
}
