//! Amar's access layer: who a person is and what they may see.
//!
//! This crate owns identity (users, roles, attributes such as `province_code`, and
//! their SCRAM-SHA-256 password verifiers in the users file), the casbin policy store
//! that decides who reads which tables, columns and rows ([`access`]), and the plan
//! rewrite that enforces those decisions on every table scan ([`enforce`]).
//!
//! It knows nothing of sockets or protocols: the server asks it "is this password
//! right for this verifier?" and "who is this user?", and speaks the wire itself.
//! Data enters as the users file (TOML) and leaves as typed [`User`] values.

pub mod access;
pub mod barrier;
pub mod enforce;
pub mod error;
pub mod identity;
pub mod mask;
pub mod scram;

pub use access::{
    ColumnRule, Mask, PolicyStatus, PolicyStore, SessionAccess, TableAccess, UserAccess,
};
pub use error::PolicyError;
pub use identity::{User, UserDirectory, UsersFile};
pub use scram::ScramVerifier;
