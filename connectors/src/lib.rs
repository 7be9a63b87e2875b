//! Amar's connectors: how a department's data becomes DataFusion tables.
//!
//! This crate owns the source contract ([`Source`]): a source is opened from its typed
//! `[[source]]` config ([`SourceConfig`]), lists its tables, hands DataFusion a
//! [`TableProvider`](datafusion::catalog::TableProvider) for each, declares what it can
//! push down ([`Pushdown`]) and reports its health. Built-in connectors live here
//! (SQLite; files: Parquet, CSV, JSON; drop folders of CSV, Parquet and Excel; PostgreSQL and MySQL/MariaDB, whose
//! queries are federated: whole sub-plans go to the database as SQL). Plugins,
//! shared libraries built with `amar-plugin-sdk` and loaded at run time, are one
//! more kind of source ([`plugin`]), so nothing above this crate knows which kind it got.
//!
//! It does not own names users see (the catalog crate maps sources to schemas), nor
//! access rules, nor sockets. Data leaves it only as Arrow record batches, streamed:
//! no connector holds a whole result in memory.

pub mod bound;
pub mod config;
pub mod database;
pub mod drop;
pub mod error;
pub mod files;
pub mod lookup;
pub mod open;
pub mod plugin;
mod quoting;
pub mod snapshot;
pub mod source;
pub mod sqlite;

pub use config::{
    DatabaseOptions, Dialect, DropOptions, FileFormat, FilesOptions, Mode, PluginOptions,
    SourceConfig, SourceKind, SqliteOptions,
};
pub use database::DatabaseSource;
pub use drop::DropSource;
pub use error::ConnectorError;
pub use open::open_source;
pub use plugin::{PluginLibrary, PluginSource};
pub use snapshot::SnapshotSource;
pub use source::{Health, Pushdown, Source, SourceTable};

/// Arrow field metadata key under which a connector records a column's comment
/// (shown by `col_description` and psql's `\d+`).
pub const COMMENT_KEY: &str = "amar.comment";
