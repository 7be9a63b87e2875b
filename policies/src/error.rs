//! The one error type of the policies crate.

use std::path::PathBuf;

/// What can go wrong while reading identity or policy files.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read the users file: {source}")]
    ReadUsers {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: cannot write the users file: {source}")]
    WriteUsers {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    InvalidUsers { path: PathBuf, message: String },
    #[error("user \"{0}\" already exists")]
    UserExists(String),
    #[error("user \"{0}\" does not exist")]
    UnknownUser(String),
    #[error("invalid user name \"{0}\": use letters, digits, '_', '-' or '.', at most 63 bytes")]
    InvalidUserName(String),
    #[error(
        "invalid attribute \"{0}\": expected KEY=VALUE with KEY made of letters, digits and '_'"
    )]
    InvalidAttribute(String),
    #[error("invalid SCRAM verifier: {0}")]
    InvalidVerifier(String),
    #[error("the password is empty")]
    EmptyPassword,
    #[error("{path}: cannot read the policy: {source}")]
    ReadPolicy {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    InvalidPolicy { path: PathBuf, message: String },
    /// Reading an object the policy does not allow (SQLSTATE 42501).
    #[error("permission denied for {0}")]
    PermissionDenied(String),
    /// A row filter that does not plan against its table.
    #[error("the row filter on {table} does not apply: {message}")]
    InvalidFilter { table: String, message: String },
}

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
