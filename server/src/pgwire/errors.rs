//! SQLSTATE errors on the wire: the one mapping from [`SqlError`] to pgwire's errors.

use pgwire::api::{ClientInfo, ErrorHandler};
use pgwire::error::{ErrorInfo, PgWireError};

use crate::engine::{SqlError, code};

/// An error as the client receives it, severity ERROR (FATAL for 28000).
pub fn to_pgwire(error: SqlError) -> PgWireError {
    PgWireError::UserError(Box::new(to_info(error)))
}

pub fn to_info(error: SqlError) -> ErrorInfo {
    // An authorization that no longer holds ends the connection, as in PostgreSQL.
    let severity = if error.code == code::INVALID_AUTHORIZATION {
        "FATAL"
    } else {
        "ERROR"
    };
    let mut info = ErrorInfo::new(severity.to_string(), error.code.to_string(), error.message);
    info.detail = error.detail;
    info.hint = error.hint;
    info
}

/// An engine error met while a response streams, as the client receives it.
pub fn stream_error(e: &datafusion::error::DataFusionError) -> PgWireError {
    PgWireError::UserError(Box::new(to_info(SqlError::from_datafusion(e))))
}

/// Logs what is sent, at a level matching its kind: user mistakes are not incidents.
pub struct LogErrors;

impl ErrorHandler for LogErrors {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        match error {
            PgWireError::UserError(info) if !info.code.starts_with("XX") => {
                tracing::debug!(addr = %client.socket_addr(), code = %info.code, "{}", info.message);
            }
            PgWireError::IoError(e) => {
                tracing::debug!(addr = %client.socket_addr(), "connection error: {e}");
            }
            other => {
                tracing::warn!(addr = %client.socket_addr(), "{other}");
            }
        }
    }
}
