//! The one error type of the connectors crate.

use std::path::PathBuf;

use datafusion::error::DataFusionError;

/// What can go wrong while opening or reading a source. Every variant names the
/// source, so that a user who sees it knows which department's data failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("source \"{source_name}\": {path}: {message}")]
    Path {
        source_name: String,
        path: PathBuf,
        message: String,
    },
    #[error("source \"{source_name}\": cannot open SQLite database {path}: {message}")]
    SqliteOpen {
        source_name: String,
        path: PathBuf,
        message: String,
    },
    #[error("source \"{source_name}\": SQLite error: {message}")]
    Sqlite {
        source_name: String,
        message: String,
    },
    #[error("source \"{source_name}\", table \"{table}\", column \"{column}\": {message}")]
    Value {
        source_name: String,
        table: String,
        column: String,
        message: String,
    },
    #[error("source \"{source_name}\": {message}")]
    Other {
        source_name: String,
        message: String,
    },
    #[error(transparent)]
    DataFusion(#[from] DataFusionError),
}

impl ConnectorError {
    /// The form DataFusion carries to the front ends; the message keeps the source's name.
    pub fn into_datafusion(self) -> DataFusionError {
        match self {
            ConnectorError::DataFusion(e) => e,
            other => DataFusionError::External(Box::new(other)),
        }
    }
}

pub type Result<T, E = ConnectorError> = std::result::Result<T, E>;
