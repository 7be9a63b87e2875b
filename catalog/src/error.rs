//! The one error type of the catalog crate.

use amar_connectors::ConnectorError;
use datafusion::error::DataFusionError;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("source name \"{0}\" is used twice; each source is one schema")]
    DuplicateSource(String),
    #[error("source name \"{0}\" is reserved (it names a system schema)")]
    ReservedName(String),
    /// A value a function cannot take, with the SQLSTATE to report.
    #[error("{message}")]
    Value { code: &'static str, message: String },
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;
