//! A database source's lifecycle: opening it, its connection pool (made on first use,
//! a failure reported, not kept), listing and loading its tables with their primary
//! keys, and the probe that tells whether the server takes connections now.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::{Constraint, Constraints, TableReference};
use datafusion::sql::unparser::dialect::PostgreSqlDialect;
use datafusion_table_providers_common::UnsupportedTypeAction;
use datafusion_table_providers_common::sql::db_connection_pool::DbConnectionPool;
use datafusion_table_providers_common::sql::db_connection_pool::dbconnection::{
    DbConnection, get_schema, get_tables, query_arrow,
};
use datafusion_table_providers_common::sql::sql_provider_datafusion::SqlTable;
use datafusion_table_providers_mysql::pool::MySQLConnectionPool;
use datafusion_table_providers_mysql::sql_table::MySQLTable;
use datafusion_table_providers_postgres::pool::PostgresConnectionPool;
use futures::TryStreamExt;
use secrecy::SecretString;

use crate::config::{DatabaseOptions, Dialect, Mode};
use crate::error::{ConnectorError, Result};
use crate::source::Health;

use super::executor::Warm;
use super::{DatabaseSource, Pool, Traffic, unavailable};

/// A literal for SQL text (both dialects accept standard single quotes).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace('\\', "\\\\"))
}

impl DatabaseSource {
    /// Opens the source. A server that does not answer yet is not an error here:
    /// the source starts unhealthy, with no tables, and heals on a later refresh.
    pub async fn open(name: &str, dialect: Dialect, mode: Mode, options: DatabaseOptions) -> Self {
        let source = DatabaseSource {
            name: name.to_string(),
            dialect,
            mode,
            warm: Arc::new(Warm::new(options.pool_size)),
            options,
            pool: tokio::sync::Mutex::new(None),
            health: Mutex::new(None),
            skipped: Mutex::new(vec![]),
            traffic: Arc::new(Traffic::default()),
        };
        if let Err(e) = source.pool().await {
            tracing::warn!(source = %source.name, "{e}; the source starts unavailable and is retried");
        }
        source
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub fn traffic(&self) -> &Arc<Traffic> {
        &self.traffic
    }

    /// What could not be loaded (unsupported column types, tables that failed).
    pub fn skipped(&self) -> Vec<String> {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn params(&self) -> HashMap<String, SecretString> {
        let o = &self.options;
        let mut p: HashMap<String, String> = HashMap::new();
        p.insert("host".into(), o.host.clone());
        p.insert("user".into(), o.user.clone());
        p.insert("db".into(), o.database.clone());
        if let Some(pass) = &o.password {
            p.insert("pass".into(), pass.clone());
        }
        p.insert("sslmode".into(), o.sslmode.clone());
        if let Some(ca) = &o.sslrootcert {
            p.insert("sslrootcert".into(), ca.display().to_string());
        }
        match self.dialect {
            Dialect::Postgres => {
                p.insert("port".into(), o.port.to_string());
                p.insert("connection_pool_size".into(), o.pool_size.to_string());
                p.insert("application_name".into(), "amar".into());
                p.insert(
                    "connect_timeout".into(),
                    o.connect_timeout.as_secs().max(1).to_string(),
                );
            }
            Dialect::Mysql => {
                p.insert("tcp_port".into(), o.port.to_string());
                p.insert("pool_min".into(), "0".into());
                p.insert("pool_max".into(), o.pool_size.to_string());
            }
        }
        p.into_iter()
            .map(|(k, v)| (k, SecretString::from(v)))
            .collect()
    }

    /// The pool, made on first use; a failure is reported, not kept.
    pub(super) async fn pool(&self) -> Result<Pool> {
        let mut slot = self.pool.lock().await;
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let started = Instant::now();
        let params = self.params();
        let timeout = self.options.connect_timeout;
        let made = match self.dialect {
            Dialect::Postgres => tokio::time::timeout(timeout, PostgresConnectionPool::new(params))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|p| {
                    // Types without an Arrow mapping arrive as their text form
                    // rather than failing the table.
                    Pool::Postgres(Arc::new(
                        p.with_unsupported_type_action(UnsupportedTypeAction::String),
                    ))
                }),
            Dialect::Mysql => tokio::time::timeout(timeout, MySQLConnectionPool::new(params))
                .await
                .map_err(|_| format!("no answer within {timeout:?}"))
                .and_then(|r| r.map_err(|e| e.to_string()))
                .map(|p| Pool::Mysql(Arc::new(p))),
        };
        match made {
            Ok(pool) => {
                *slot = Some(pool.clone());
                self.set_health(Health::ok(started.elapsed()));
                Ok(pool)
            }
            Err(message) => {
                let e = unavailable(&self.name, format!("cannot connect: {message}"));
                self.set_health(Health::failed(e.to_string(), started.elapsed()));
                Err(e)
            }
        }
    }

    pub(super) fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Some(health);
    }

    /// The remote schema (PostgreSQL) or database (MySQL) whose tables are shown.
    fn remote_schema(&self) -> String {
        match self.dialect {
            Dialect::Postgres => self
                .options
                .schema
                .clone()
                .unwrap_or_else(|| "public".to_string()),
            Dialect::Mysql => self.options.database.clone(),
        }
    }

    /// A pooled connection, waiting at most the connect timeout.
    async fn connect<T: 'static, P: 'static, D>(
        &self,
        pool: &D,
    ) -> Result<Box<dyn DbConnection<T, P>>>
    where
        D: DbConnectionPool<T, P> + ?Sized,
    {
        tokio::time::timeout(self.options.connect_timeout, pool.connect())
            .await
            .map_err(|_| unavailable(&self.name, "no connection within the connect timeout"))?
            .map_err(|e| unavailable(&self.name, e))
    }

    pub(super) async fn table_names(&self, pool: &Pool) -> Result<Vec<String>> {
        let schema = self.remote_schema();
        let names = match pool {
            Pool::Postgres(p) => get_tables(self.connect(p.as_ref()).await?, &schema).await,
            Pool::Mysql(p) => get_tables(self.connect(p.as_ref()).await?, &schema).await,
        }
        .map_err(|e| unavailable(&self.name, format!("cannot list tables: {e}")))?;
        let mut names: Vec<String> = match &self.options.tables {
            Some(only) => names.into_iter().filter(|n| only.contains(n)).collect(),
            None => names,
        };
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// Column names of the table's primary key, in key order.
    async fn primary_key(&self, pool: &Pool, table: &str) -> Vec<String> {
        let (schema, table_literal) = (quote_literal(&self.remote_schema()), quote_literal(table));
        let sql = match self.dialect {
            Dialect::Postgres => format!(
                "SELECT a.attname::text FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = {schema} AND c.relname = {table_literal} \
                 ORDER BY k.ord"
            ),
            Dialect::Mysql => format!(
                "SELECT CAST(COLUMN_NAME AS CHAR) AS name FROM information_schema.KEY_COLUMN_USAGE \
                 WHERE TABLE_SCHEMA = {schema} AND TABLE_NAME = {table_literal} \
                 AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION"
            ),
        };
        let result = match pool {
            Pool::Postgres(p) => match self.connect(p.as_ref()).await {
                Ok(conn) => query_arrow(conn, sql, None)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
            Pool::Mysql(p) => match self.connect(p.as_ref()).await {
                Ok(conn) => query_arrow(conn, sql, None)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            },
        };
        let stream = match result {
            Ok(s) => s,
            Err(e) => {
                tracing::debug!(source = %self.name, table, "primary key not read: {e}");
                return vec![];
            }
        };
        let batches: Vec<_> = match stream.try_collect().await {
            Ok(b) => b,
            Err(e) => {
                tracing::debug!(source = %self.name, table, "primary key not read: {e}");
                return vec![];
            }
        };
        let mut out = vec![];
        for batch in batches {
            if batch.num_columns() == 0 {
                continue;
            }
            let Ok(names) = cast(batch.column(0), &DataType::Utf8) else {
                continue;
            };
            let names = names.as_string::<i32>();
            for i in 0..names.len() {
                if names.is_valid(i) {
                    out.push(names.value(i).to_string());
                }
            }
        }
        out
    }

    pub(super) async fn load_table(
        &self,
        pool: &Pool,
        table: &str,
    ) -> Result<Arc<dyn TableProvider>> {
        let remote = match self.dialect {
            Dialect::Postgres => TableReference::partial(self.remote_schema(), table),
            Dialect::Mysql => TableReference::bare(table),
        };
        let key = self.primary_key(pool, table).await;
        let failed = |e: &dyn std::fmt::Display| ConnectorError::Other {
            source_name: self.name.clone(),
            message: format!("table \"{table}\": {e}"),
        };
        match pool {
            Pool::Postgres(p) => {
                let conn = self.connect(p.as_ref()).await?;
                let schema = get_schema(conn, &remote).await.map_err(|e| failed(&e))?;
                let dyn_pool: Arc<datafusion_table_providers_postgres::DynPostgresConnectionPool> =
                    p.clone();
                let constraints = constraints_for(&schema, &key);
                let inner = Arc::new(
                    SqlTable::new_with_schema("postgres", &dyn_pool, schema, remote.clone())
                        .with_dialect(Arc::new(PostgreSqlDialect {}))
                        .with_constraints(constraints),
                );
                Ok(self.federate(inner.clone(), inner, remote, Some(p.clone())))
            }
            Pool::Mysql(p) => {
                let inner = Arc::new(
                    MySQLTable::new(p, remote.clone())
                        .await
                        .map_err(|e| failed(&e))?,
                );
                Ok(self.federate(inner.clone(), inner, remote, None))
            }
        }
    }
    /// A cheap check that the server takes connections now.
    pub(super) fn probe(&self) -> Probe {
        let pool = self.pool.try_lock().ok().and_then(|p| p.clone());
        Probe(pool)
    }
}

/// Primary keys as DataFusion constraints (by column index).
fn constraints_for(schema: &SchemaRef, key: &[String]) -> Constraints {
    let indices: Option<Vec<usize>> = key.iter().map(|c| schema.index_of(c).ok()).collect();
    match indices {
        Some(i) if !i.is_empty() => Constraints::new_unverified(vec![Constraint::PrimaryKey(i)]),
        _ => Constraints::default(),
    }
}

#[derive(Clone)]
pub(super) struct Probe(pub(super) Option<Pool>);

impl Probe {
    pub(super) async fn check(&self) -> std::result::Result<(), String> {
        match &self.0 {
            Some(Pool::Postgres(p)) => p.connect().await.map(|_| ()).map_err(|e| e.to_string()),
            Some(Pool::Mysql(p)) => p.connect().await.map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}
