//! PostgreSQL's `pg_catalog`, as clients expect it.
//!
//! datafusion-pg-catalog provides the tables and most functions; this module adds
//! what our users' tools still miss.

use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::error::Result;
use datafusion::logical_expr::{ColumnarValue, Volatility, create_udf};
use datafusion::prelude::SessionContext;
use datafusion::scalar::ScalarValue;

use crate::AmarCatalog;

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

/// Adds Amar's pg_catalog extensions to a context already set up by
/// `datafusion_pg_catalog::setup_pg_catalog`.
pub fn install(ctx: &SessionContext, _catalog: Arc<AmarCatalog>) -> Result<()> {
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
    Ok(())
}
