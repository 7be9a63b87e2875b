//! Amar's access layer: who a person is and what they may see.
//!
//! This crate owns identity (users, roles, attributes such as `province_code`, and
//! their SCRAM-SHA-256 password verifiers in the users file). Later it also owns the
//! casbin policy store and the plan rewriter that enforces it.
//!
//! It knows nothing of sockets or protocols: the server asks it "is this password
//! right for this verifier?" and "who is this user?", and speaks the wire itself.
//! Data enters as the users file (TOML) and leaves as typed [`User`] values.

pub mod error;
pub mod identity;
pub mod scram;

pub use error::PolicyError;
pub use identity::{User, UserDirectory, UsersFile};
pub use scram::ScramVerifier;
