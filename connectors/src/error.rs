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
    /// The source's server does not answer or dropped the connection (SQLSTATE 08006).
    #[error("source \"{source_name}\" is unavailable: {message}")]
    Unavailable {
        source_name: String,
        message: String,
    },
    /// The source's server refused a statement Amar sent it; `code` is the
    /// SQLSTATE it gave, where it speaks PostgreSQL's (HV000 otherwise).
    #[error("source \"{source_name}\" refused the query: {message}")]
    Remote {
        source_name: String,
        message: String,
        code: Option<String>,
    },
    /// Something this source cannot do (SQLSTATE 0A000).
    #[error("source \"{source_name}\": {message}")]
    Unsupported {
        source_name: String,
        message: String,
    },
    /// A plugin failed (or panicked) serving the source (SQLSTATE HV000).
    #[error("source \"{source_name}\" (plugin \"{plugin}\"): {message}")]
    Plugin {
        source_name: String,
        plugin: String,
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

/// An error a PostgreSQL source returned, with its SQLSTATE; [`crate::database`]
/// turns it into [`ConnectorError::Remote`] (or `Unavailable`) with the source's name.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub code: String,
    pub message: String,
}
