//! Errors as clients see them: a SQLSTATE and a message, whichever front end reports it.
//!
//! [`SqlError::from_datafusion`] is the one place that classifies engine errors; the
//! pgwire front end sends the code as is and the Flight front end maps it to a gRPC
//! status (see `SqlError::grpc_code`), so a mistake gets the same code and text
//! through both.

use std::fmt;

use amar_connectors::ConnectorError;
use amar_policies::PolicyError;
use datafusion::arrow::error::ArrowError;
use datafusion::error::DataFusionError;
use datafusion::sql::sqlparser::parser::ParserError;

/// SQLSTATE codes Amar uses (PostgreSQL Appendix A).
pub mod code {
    pub const SUCCESSFUL_COMPLETION: &str = "00000";
    pub const CONNECTION_EXCEPTION: &str = "08000";
    pub const CONNECTION_FAILURE: &str = "08006";
    pub const UNABLE_TO_CONNECT: &str = "08001";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
    pub const DATA_EXCEPTION: &str = "22000";
    pub const NUMERIC_VALUE_OUT_OF_RANGE: &str = "22003";
    pub const DATETIME_FIELD_OVERFLOW: &str = "22008";
    pub const DIVISION_BY_ZERO: &str = "22012";
    pub const INVALID_PARAMETER_VALUE: &str = "22023";
    pub const INVALID_TEXT_REPRESENTATION: &str = "22P02";
    pub const INVALID_BINARY_REPRESENTATION: &str = "22P03";
    pub const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
    pub const INVALID_TRANSACTION_STATE: &str = "25000";
    pub const READ_ONLY_SQL_TRANSACTION: &str = "25006";
    pub const IN_FAILED_SQL_TRANSACTION: &str = "25P02";
    pub const INVALID_AUTHORIZATION: &str = "28000";
    pub const INVALID_PASSWORD: &str = "28P01";
    pub const INVALID_SQL_STATEMENT_NAME: &str = "26000";
    pub const INVALID_CURSOR_NAME: &str = "34000";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const UNDEFINED_COLUMN: &str = "42703";
    pub const UNDEFINED_FUNCTION: &str = "42883";
    pub const UNDEFINED_TABLE: &str = "42P01";
    pub const UNDEFINED_SCHEMA: &str = "3F000";
    pub const UNDEFINED_OBJECT: &str = "42704";
    pub const AMBIGUOUS_COLUMN: &str = "42702";
    pub const DATATYPE_MISMATCH: &str = "42804";
    pub const UNDEFINED_PARAMETER: &str = "42P02";
    pub const INDETERMINATE_DATATYPE: &str = "42P18";
    pub const PROGRAM_LIMIT_EXCEEDED: &str = "54000";
    /// PostgreSQL's "stack depth limit exceeded".
    pub const STATEMENT_TOO_COMPLEX: &str = "54001";
    pub const OUT_OF_MEMORY: &str = "53200";
    pub const INSUFFICIENT_RESOURCES: &str = "53000";
    pub const TOO_MANY_CONNECTIONS: &str = "53300";
    pub const QUERY_CANCELED: &str = "57014";
    pub const PROTOCOL_VIOLATION: &str = "08P01";
    pub const INTERNAL_ERROR: &str = "XX000";
    /// SQL/MED's class for errors of a foreign source.
    pub const FDW_ERROR: &str = "HV000";

    /// The code among these that reads `code`, for an error a library reported
    /// with its code as text.
    pub fn known(code: &str) -> Option<&'static str> {
        [
            FEATURE_NOT_SUPPORTED,
            DATA_EXCEPTION,
            NUMERIC_VALUE_OUT_OF_RANGE,
            DATETIME_FIELD_OVERFLOW,
            DIVISION_BY_ZERO,
            INVALID_PARAMETER_VALUE,
            INVALID_TEXT_REPRESENTATION,
            INVALID_BINARY_REPRESENTATION,
            CHARACTER_NOT_IN_REPERTOIRE,
            SYNTAX_ERROR,
            DATATYPE_MISMATCH,
            UNDEFINED_PARAMETER,
            INDETERMINATE_DATATYPE,
            PROGRAM_LIMIT_EXCEEDED,
            PROTOCOL_VIOLATION,
            INTERNAL_ERROR,
        ]
        .into_iter()
        .find(|c| *c == code)
    }
}

/// An error with its SQLSTATE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqlError {
    pub code: &'static str,
    pub message: String,
    pub detail: Option<String>,
    pub hint: Option<String>,
}

impl fmt::Display for SqlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SqlError {}

impl SqlError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            detail: None,
            hint: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Carries this error through DataFusion (from a function or table provider)
    /// with its code intact.
    pub fn into_datafusion(self) -> DataFusionError {
        DataFusionError::External(Box::new(self))
    }

    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(code::SYNTAX_ERROR, message)
    }

    pub fn not_supported(message: impl Into<String>) -> Self {
        Self::new(code::FEATURE_NOT_SUPPORTED, message)
    }

    /// Classifies an engine error.
    pub fn from_datafusion(error: &DataFusionError) -> Self {
        match error {
            DataFusionError::Context(_, inner) | DataFusionError::Diagnostic(_, inner) => {
                return Self::from_datafusion(inner);
            }
            DataFusionError::Shared(inner) => return Self::from_datafusion(inner),
            DataFusionError::Collection(errors) if !errors.is_empty() => {
                return Self::from_datafusion(&errors[0]);
            }
            DataFusionError::External(inner) => {
                if let Some(e) = inner.downcast_ref::<SqlError>() {
                    return e.clone();
                }
                if let Some(e) = inner.downcast_ref::<ConnectorError>() {
                    return Self::from_connector(e);
                }
                if let Some(amar_catalog::CatalogError::Value { code, message }) =
                    inner.downcast_ref::<amar_catalog::CatalogError>()
                {
                    return Self::new(code, message.clone());
                }
                if let Some(e) = inner.downcast_ref::<PolicyError>() {
                    // Denied objects, and filters that cannot be built (which grant
                    // nothing), are both 42501.
                    return Self::new(code::INSUFFICIENT_PRIVILEGE, e.to_string());
                }
                if let Some(e) = inner.downcast_ref::<DataFusionError>() {
                    return Self::from_datafusion(e);
                }
                if let Some(e) = inner.downcast_ref::<ArrowError>() {
                    return Self::from_arrow(e);
                }
            }
            DataFusionError::ArrowError(e, _) => return Self::from_arrow(e),
            _ => {}
        }
        let message = clean(&error.strip_backtrace());
        let code = match error {
            DataFusionError::SQL(e, _) => {
                return Self::syntax(match e.as_ref() {
                    ParserError::ParserError(m) | ParserError::TokenizerError(m) => {
                        syntax_message(m)
                    }
                    ParserError::RecursionLimitExceeded => {
                        return super::depth::too_deep(super::sql::RECURSION_LIMIT);
                    }
                });
            }
            DataFusionError::SchemaError(e, _) => {
                use datafusion::common::SchemaError;
                match e.as_ref() {
                    SchemaError::FieldNotFound { field, .. } => {
                        return Self::new(
                            code::UNDEFINED_COLUMN,
                            format!("column \"{}\" does not exist", field.name),
                        );
                    }
                    SchemaError::AmbiguousReference { field } => {
                        return Self::new(
                            code::AMBIGUOUS_COLUMN,
                            format!("column reference \"{}\" is ambiguous", field.name),
                        );
                    }
                    _ => code::SYNTAX_ERROR,
                }
            }
            DataFusionError::Plan(m) => return Self::from_plan_message(m),
            DataFusionError::NotImplemented(_) => code::FEATURE_NOT_SUPPORTED,
            DataFusionError::ResourcesExhausted(_) => code::OUT_OF_MEMORY,
            DataFusionError::Configuration(_) => code::INVALID_PARAMETER_VALUE,
            DataFusionError::Execution(m) if m.contains("not found") && m.contains("table") => {
                code::UNDEFINED_TABLE
            }
            DataFusionError::Execution(m)
                if m.contains("placeholder") || m.contains("parameter") =>
            {
                code::UNDEFINED_PARAMETER
            }
            DataFusionError::Execution(_) => code::DATA_EXCEPTION,
            _ => code::INTERNAL_ERROR,
        };
        Self::new(code, message)
    }

    fn from_plan_message(m: &str) -> Self {
        let message = clean(m);
        // DataFusion's planner speaks in sentences, not codes; these are the ones
        // clients act on.
        if let Some(name) = quoted_after(m, "table '").filter(|_| m.contains("not found")) {
            let name = name.strip_prefix("amar.").unwrap_or(&name).to_string();
            return Self::new(
                code::UNDEFINED_TABLE,
                format!("relation \"{name}\" does not exist"),
            );
        }
        if m.contains("unrecognized configuration parameter") {
            return Self::new(code::UNDEFINED_OBJECT, message);
        }
        if m.contains("Invalid function") || m.contains("not found") && m.contains("function") {
            return Self::new(code::UNDEFINED_FUNCTION, message);
        }
        if m.contains("No field named") {
            return Self::new(code::UNDEFINED_COLUMN, message);
        }
        if m.contains("DDL not supported")
            || m.contains("DML not supported")
            || m.contains("Statement not supported")
        {
            return Self::new(
                code::READ_ONLY_SQL_TRANSACTION,
                "cannot change data or definitions: Amar serves its sources read-only",
            );
        }
        if m.contains("Cannot infer common argument type")
            || m.contains("Cannot coerce")
            || m.contains("No function matches")
            || m.contains("does not support")
        {
            return Self::new(code::DATATYPE_MISMATCH, message);
        }
        if m.contains("placeholder") || m.contains("Placeholder") {
            return Self::new(code::INDETERMINATE_DATATYPE, message);
        }
        if m.contains("schema") && m.contains("not found") {
            return Self::new(code::UNDEFINED_SCHEMA, message);
        }
        Self::new(code::SYNTAX_ERROR, message)
    }

    fn from_arrow(e: &ArrowError) -> Self {
        let message = clean(&e.to_string());
        let code = match e {
            ArrowError::DivideByZero => {
                return Self::new(code::DIVISION_BY_ZERO, "division by zero");
            }
            ArrowError::CastError(m) | ArrowError::ParseError(m) => {
                if m.contains("overflow") || m.contains("too large") || m.contains("out of range") {
                    code::NUMERIC_VALUE_OUT_OF_RANGE
                } else {
                    code::INVALID_TEXT_REPRESENTATION
                }
            }
            ArrowError::ArithmeticOverflow(_) => code::NUMERIC_VALUE_OUT_OF_RANGE,
            ArrowError::ComputeError(m) if m.contains("Overflow") || m.contains("overflow") => {
                code::NUMERIC_VALUE_OUT_OF_RANGE
            }
            ArrowError::MemoryError(_) => code::OUT_OF_MEMORY,
            ArrowError::ExternalError(inner) => {
                if let Some(amar_catalog::CatalogError::Value { code, message }) =
                    inner.downcast_ref::<amar_catalog::CatalogError>()
                {
                    return Self::new(code, message.clone());
                }
                if let Some(e) = inner.downcast_ref::<DataFusionError>() {
                    return Self::from_datafusion(e);
                }
                if let Some(e) = inner.downcast_ref::<ConnectorError>() {
                    return Self::from_connector(e);
                }
                if let Some(e) = inner.downcast_ref::<SqlError>() {
                    return e.clone();
                }
                code::DATA_EXCEPTION
            }
            _ => code::DATA_EXCEPTION,
        };
        Self::new(code, message)
    }

    fn from_connector(e: &ConnectorError) -> Self {
        // A PostgreSQL source's own SQLSTATE (22P02 for a value it cannot read, 57014
        // for its statement timeout…), passed on as postgres_fdw passes it.
        if let ConnectorError::Remote {
            code: Some(remote), ..
        } = e
            && let Some(remote) = interned_sqlstate(remote)
        {
            return Self::new(remote, e.to_string());
        }
        let code = match e {
            ConnectorError::SqliteOpen { .. } | ConnectorError::Path { .. } => {
                code::UNABLE_TO_CONNECT
            }
            ConnectorError::Sqlite { .. } | ConnectorError::Other { .. } => {
                code::CONNECTION_EXCEPTION
            }
            ConnectorError::Value { .. } => code::DATA_EXCEPTION,
            ConnectorError::Unavailable { .. } => code::CONNECTION_FAILURE,
            ConnectorError::Remote { .. } | ConnectorError::Plugin { .. } => code::FDW_ERROR,
            ConnectorError::Unsupported { .. } => code::FEATURE_NOT_SUPPORTED,
            ConnectorError::DataFusion(inner) => return Self::from_datafusion(inner),
        };
        Self::new(code, e.to_string())
    }

    /// The gRPC status code for the Flight front end.
    pub fn grpc_code(&self) -> i32 {
        // tonic::Code values, kept numeric so this module needs no gRPC crate.
        const INVALID_ARGUMENT: i32 = 3;
        const NOT_FOUND: i32 = 5;
        const PERMISSION_DENIED: i32 = 7;
        const RESOURCE_EXHAUSTED: i32 = 8;
        const FAILED_PRECONDITION: i32 = 9;
        const UNIMPLEMENTED: i32 = 12;
        const INTERNAL: i32 = 13;
        const UNAVAILABLE: i32 = 14;
        const UNAUTHENTICATED: i32 = 16;
        const CANCELLED: i32 = 1;
        match self.code {
            code::UNDEFINED_TABLE
            | code::UNDEFINED_COLUMN
            | code::UNDEFINED_FUNCTION
            | code::UNDEFINED_SCHEMA
            | code::UNDEFINED_OBJECT => NOT_FOUND,
            code::INSUFFICIENT_PRIVILEGE => PERMISSION_DENIED,
            code::INVALID_PASSWORD | code::INVALID_AUTHORIZATION => UNAUTHENTICATED,
            code::FEATURE_NOT_SUPPORTED => UNIMPLEMENTED,
            code::OUT_OF_MEMORY
            | code::TOO_MANY_CONNECTIONS
            | code::PROGRAM_LIMIT_EXCEEDED
            | code::STATEMENT_TOO_COMPLEX => RESOURCE_EXHAUSTED,
            code::QUERY_CANCELED => CANCELLED,
            code::READ_ONLY_SQL_TRANSACTION | code::IN_FAILED_SQL_TRANSACTION => {
                FAILED_PRECONDITION
            }
            c if c.starts_with("08") => UNAVAILABLE,
            c if c.starts_with("XX") => INTERNAL,
            _ => INVALID_ARGUMENT,
        }
    }
}

impl From<DataFusionError> for SqlError {
    fn from(e: DataFusionError) -> Self {
        SqlError::from_datafusion(&e)
    }
}

/// Removes DataFusion's prefixes ("Error during planning: ") and trailing noise.
fn clean(message: &str) -> String {
    let mut m = message.trim();
    for prefix in [
        "Error during planning: ",
        "Execution error: ",
        "This feature is not implemented: ",
        "Schema error: ",
        "SQL error: ",
        "Arrow error: ",
        "External error: ",
        "Invalid argument error: ",
        "Cast error: ",
        "Parser error: ",
        "Compute error: ",
    ] {
        while let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
        }
    }
    m.to_string()
}

fn syntax_message(m: &str) -> String {
    let m = clean(m);
    match m.split_once(", found: ") {
        Some((_, found)) => {
            let token = found.split(" at ").next().unwrap_or(found).trim();
            format!("syntax error at or near \"{token}\" ({m})")
        }
        None => format!("syntax error: {m}"),
    }
}

fn quoted_after(m: &str, marker: &str) -> Option<String> {
    let start = m.find(marker)? + marker.len();
    let end = m[start..].find('\'')?;
    Some(m[start..start + end].to_string())
}

/// A source's SQLSTATE as a `&'static str`: five digits or capital letters, each
/// distinct code kept once. A source sending ever new codes gets HV000 after the
/// first thousand, so it cannot grow the server's memory.
fn interned_sqlstate(code: &str) -> Option<&'static str> {
    static SEEN: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());
    let valid = code.len() == 5
        && code
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase());
    if !valid {
        return None;
    }
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(known) = seen.iter().find(|c| **c == code) {
        return Some(known);
    }
    if seen.len() >= 1000 {
        return None;
    }
    let leaked: &'static str = Box::leak(code.to_string().into_boxed_str());
    seen.push(leaked);
    Some(leaked)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_not_found_is_42p01_with_postgres_wording() {
        let e = DataFusionError::Plan("table 'amar.public.nope' not found".into());
        let s = SqlError::from_datafusion(&e);
        assert_eq!(s.code, code::UNDEFINED_TABLE);
        assert_eq!(s.message, "relation \"public.nope\" does not exist");
    }

    #[test]
    fn wrapped_errors_keep_their_code() {
        let inner = SqlError::new(code::DATETIME_FIELD_OVERFLOW, "bad day");
        let e = DataFusionError::Context("x".into(), Box::new(inner.clone().into_datafusion()));
        assert_eq!(SqlError::from_datafusion(&e), inner);
        let e = DataFusionError::ArrowError(Box::new(ArrowError::DivideByZero), None);
        assert_eq!(SqlError::from_datafusion(&e).code, code::DIVISION_BY_ZERO);
    }

    #[test]
    fn a_postgresql_source_keeps_its_sqlstate() {
        let remote = |code: Option<&str>| {
            SqlError::from_datafusion(&DataFusionError::External(Box::new(
                ConnectorError::Remote {
                    source_name: "pensions".into(),
                    message: "invalid input syntax for type uuid: \"x\"".into(),
                    code: code.map(str::to_string),
                },
            )))
        };
        let e = remote(Some("22P02"));
        assert_eq!(e.code, "22P02");
        assert!(
            e.message.contains("pensions") && e.message.contains("uuid"),
            "{e}"
        );
        assert_eq!(remote(Some("22p02")).code, code::FDW_ERROR);
        assert_eq!(remote(Some("22P0")).code, code::FDW_ERROR);
        assert_eq!(remote(None).code, code::FDW_ERROR);
    }
}
