//! Live database sources: PostgreSQL and MySQL/MariaDB.
//!
//! Pools, type mapping and SQL generation come from datafusion-table-providers; the
//! whole-query pushdown from datafusion-federation: every part of a plan whose tables
//! all live in one database (filters, projections, limits, aggregates, sorts, joins)
//! is sent to it as one SQL statement in its dialect, and `EXPLAIN` shows that
//! statement. What Amar adds here: a source that is down at start still opens (its
//! tables appear when it heals), every error names the source and carries a
//! connection SQLSTATE, a query never waits longer than the connect timeout for a
//! dead server, and the rows each source sends are counted.

mod executor;
mod lifecycle;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use datafusion_table_providers_mysql::pool::MySQLConnectionPool;
use datafusion_table_providers_postgres::pool::PostgresConnectionPool;

use crate::config::{DatabaseOptions, Dialect, Mode};
use crate::error::{ConnectorError, Result};
use crate::source::{Health, Pushdown, Source, SourceTable};

use executor::Warm;
pub use executor::name_error;
use lifecycle::Probe;

#[derive(Clone)]
enum Pool {
    Postgres(Arc<PostgresConnectionPool>),
    Mysql(Arc<MySQLConnectionPool>),
}

/// What the source counts, shared with every table's executor.
#[derive(Debug, Default)]
pub struct Traffic {
    /// Statements sent to the source.
    pub statements: AtomicU64,
    /// Rows the source sent back.
    pub rows: AtomicU64,
    /// The last statement sent, for operators.
    pub last_sql: Mutex<Option<String>>,
}

/// A PostgreSQL or MySQL/MariaDB database as a source.
pub struct DatabaseSource {
    name: String,
    dialect: Dialect,
    mode: Mode,
    options: DatabaseOptions,
    pool: tokio::sync::Mutex<Option<Pool>>,
    health: Mutex<Option<Health>>,
    /// Tables or columns that could not be loaded, with why.
    skipped: Mutex<Vec<String>>,
    traffic: Arc<Traffic>,
    /// Connections kept between statements (PostgreSQL sources).
    warm: Arc<Warm>,
}

impl std::fmt::Debug for DatabaseSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseSource")
            .field("name", &self.name)
            .field("engine", &self.dialect)
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn unavailable(source: &str, message: impl std::fmt::Display) -> ConnectorError {
    ConnectorError::Unavailable {
        source_name: source.to_string(),
        message: message.to_string(),
    }
}

#[async_trait]
impl Source for DatabaseSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.dialect.as_str()
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown {
            projection: true,
            filters: true,
            limit: true,
            aggregates: true,
            sorts: true,
            joins: true,
        }
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        let pool = self.pool().await?;
        let names = self.table_names(&pool).await?;
        let mut tables = Vec::with_capacity(names.len());
        let mut skipped = vec![];
        for name in names {
            match self.load_table(&pool, &name).await {
                Ok(provider) => tables.push(SourceTable {
                    name: name.clone(),
                    provider,
                    comment: None,
                }),
                Err(e @ ConnectorError::Unavailable { .. }) => return Err(e),
                Err(e) => {
                    tracing::warn!(source = %self.name, "{e}; the table is skipped");
                    skipped.push(e.to_string());
                }
            }
        }
        *self.skipped.lock().unwrap_or_else(|e| e.into_inner()) = skipped;
        Ok(tables)
    }

    fn traffic(&self) -> Option<(u64, u64)> {
        Some((
            self.traffic.statements.load(Ordering::Relaxed),
            self.traffic.rows.load(Ordering::Relaxed),
        ))
    }

    fn skipped(&self) -> Vec<String> {
        DatabaseSource::skipped(self)
    }

    async fn health(&self) -> Health {
        let started = Instant::now();
        let timeout = self.options.connect_timeout;
        let health = match self.pool().await {
            Err(e) => Health::failed(e.to_string(), started.elapsed()),
            Ok(pool) => match tokio::time::timeout(timeout, Probe(Some(pool)).check()).await {
                Ok(Ok(())) => Health::ok(started.elapsed()),
                Ok(Err(e)) => {
                    Health::failed(unavailable(&self.name, e).to_string(), started.elapsed())
                }
                Err(_) => Health::failed(
                    unavailable(&self.name, format!("no connection within {timeout:?}"))
                        .to_string(),
                    started.elapsed(),
                ),
            },
        };
        self.set_health(health.clone());
        health
    }
}
