//! What names resolve to in Amar.
//!
//! This crate owns the one database users see, `amar`: each source as a schema
//! (`insurance.contributions`), the system tables under `amar.*` (`amar.sources`, …),
//! PostgreSQL's `pg_catalog` as clients expect it (built on datafusion-pg-catalog, with
//! the gaps our users meet closed: real primary keys, comments, `pg_get_indexdef`,
//! `version()`), the statistics catalog (indicators, glossary, validation rules and
//! the evaluation of units: [`statistics`]) and the Jalali and Persian SQL functions.
//!
//! It does not open sources (the connectors crate does), decide access (policies), or
//! speak any protocol (server). Sources enter as [`amar_connectors::Source`] values;
//! names leave as DataFusion [`CatalogProvider`](datafusion::catalog::CatalogProvider)s.

mod amar_catalog;
pub mod bounded;
pub mod computed;
pub mod error;
pub mod jalali;
pub mod persian;
pub mod pg;
pub mod probes;
pub mod releases;
pub mod rfc3339;
pub mod schema;
pub mod statistics;
pub mod system;
pub mod visible;

pub use amar_catalog::AmarCatalog;
pub use error::CatalogError;
pub use schema::SourceSchema;
pub mod accelerated;

/// The database name clients connect to and `current_database()` returns.
pub const DATABASE: &str = "amar";
/// The schema of Amar's own system tables.
pub const SYSTEM_SCHEMA: &str = "amar";
/// The schema clients fall back to when they name none.
pub const DEFAULT_SCHEMA: &str = "public";
