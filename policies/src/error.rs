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
}

pub type Result<T, E = PolicyError> = std::result::Result<T, E>;
