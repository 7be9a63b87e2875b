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

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::{Constraint, Constraints, TableReference};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{PhysicalExpr, SendableRecordBatchStream};
use datafusion::sql::unparser::dialect::{Dialect, PostgreSqlDialect};
use datafusion_federation::FederatedTableProviderAdaptor;
use datafusion_federation::sql::{
    AstAnalyzer, LogicalOptimizer, RemoteTableRef, SQLExecutor, SQLFederationProvider,
    SQLTableSource,
};
use datafusion_table_providers_common::UnsupportedTypeAction;
use datafusion_table_providers_common::sql::db_connection_pool::DbConnectionPool;
use datafusion_table_providers_common::sql::db_connection_pool::dbconnection::{
    DbConnection, get_schema, get_tables, query_arrow,
};
use datafusion_table_providers_common::sql::sql_provider_datafusion::SqlTable;
use datafusion_table_providers_mysql::pool::MySQLConnectionPool;
use datafusion_table_providers_mysql::sql_table::MySQLTable;
use datafusion_table_providers_postgres::arrow_sql_gen::rows_to_arrow;
use datafusion_table_providers_postgres::conn::PostgresConnection;
use datafusion_table_providers_postgres::pool::PostgresConnectionPool;
use futures::{StreamExt, TryStreamExt};
use secrecy::SecretString;

use crate::config::{DatabaseOptions, Mode};
use crate::error::{ConnectorError, Result};
use crate::source::{Health, Pushdown, Source, SourceTable};

/// Which database server a source talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Postgres,
    Mysql,
}

impl Engine {
    pub fn as_str(&self) -> &'static str {
        match self {
            Engine::Postgres => "postgres",
            Engine::Mysql => "mysql",
        }
    }
}

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
    engine: Engine,
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
            .field("engine", &self.engine)
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

/// A literal for SQL text (both dialects accept standard single quotes).
fn quote_literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''").replace('\\', "\\\\"))
}

impl DatabaseSource {
    /// Opens the source. A server that does not answer yet is not an error here:
    /// the source starts unhealthy, with no tables, and heals on a later refresh.
    pub async fn open(name: &str, engine: Engine, mode: Mode, options: DatabaseOptions) -> Self {
        let source = DatabaseSource {
            name: name.to_string(),
            engine,
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

    pub fn engine(&self) -> Engine {
        self.engine
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
        match self.engine {
            Engine::Postgres => {
                p.insert("port".into(), o.port.to_string());
                p.insert("connection_pool_size".into(), o.pool_size.to_string());
                p.insert("application_name".into(), "amar".into());
                p.insert(
                    "connect_timeout".into(),
                    o.connect_timeout.as_secs().max(1).to_string(),
                );
            }
            Engine::Mysql => {
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
    async fn pool(&self) -> Result<Pool> {
        let mut slot = self.pool.lock().await;
        if let Some(pool) = slot.as_ref() {
            return Ok(pool.clone());
        }
        let started = Instant::now();
        let params = self.params();
        let timeout = self.options.connect_timeout;
        let made = match self.engine {
            Engine::Postgres => tokio::time::timeout(timeout, PostgresConnectionPool::new(params))
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
            Engine::Mysql => tokio::time::timeout(timeout, MySQLConnectionPool::new(params))
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

    fn set_health(&self, health: Health) {
        *self.health.lock().unwrap_or_else(|e| e.into_inner()) = Some(health);
    }

    /// The remote schema (PostgreSQL) or database (MySQL) whose tables are shown.
    fn remote_schema(&self) -> String {
        match self.engine {
            Engine::Postgres => self
                .options
                .schema
                .clone()
                .unwrap_or_else(|| "public".to_string()),
            Engine::Mysql => self.options.database.clone(),
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

    async fn table_names(&self, pool: &Pool) -> Result<Vec<String>> {
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
        let sql = match self.engine {
            Engine::Postgres => format!(
                "SELECT a.attname::text FROM pg_catalog.pg_index i \
                 JOIN pg_catalog.pg_class c ON c.oid = i.indrelid \
                 JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
                 JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisprimary AND n.nspname = {schema} AND c.relname = {table_literal} \
                 ORDER BY k.ord"
            ),
            Engine::Mysql => format!(
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

    async fn load_table(&self, pool: &Pool, table: &str) -> Result<Arc<dyn TableProvider>> {
        let remote = match self.engine {
            Engine::Postgres => TableReference::partial(self.remote_schema(), table),
            Engine::Mysql => TableReference::bare(table),
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

    /// The provider DataFusion sees: federation hands whole sub-plans to the
    /// executor; without it, `fallback` scans with filter and limit pushdown.
    ///
    /// With `postgres`, statements go straight to the pool in one round trip
    /// (see [`Named::execute`]); otherwise through `executor`.
    fn federate(
        &self,
        executor: Arc<dyn SQLExecutor>,
        fallback: Arc<dyn TableProvider>,
        remote: TableReference,
        postgres: Option<Arc<PostgresConnectionPool>>,
    ) -> Arc<dyn TableProvider> {
        let schema = fallback.schema();
        let executor = Arc::new(Named {
            source: self.name.clone(),
            engine: self.engine,
            inner: executor,
            traffic: self.traffic.clone(),
            connect_timeout: self.options.connect_timeout,
            probe: self.probe(),
            postgres,
            warm: self.warm.clone(),
        });
        let provider = Arc::new(SQLFederationProvider::new(executor));
        let source = Arc::new(SQLTableSource::new_with_schema(
            provider,
            RemoteTableRef::from(remote),
            schema,
        ));
        Arc::new(FederatedTableProviderAdaptor::new_with_provider(
            source, fallback,
        ))
    }

    /// A cheap check that the server takes connections now.
    fn probe(&self) -> Probe {
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
struct Probe(Option<Pool>);

impl Probe {
    async fn check(&self) -> std::result::Result<(), String> {
        match &self.0 {
            Some(Pool::Postgres(p)) => p.connect().await.map(|_| ()).map_err(|e| e.to_string()),
            Some(Pool::Mysql(p)) => p.connect().await.map(|_| ()).map_err(|e| e.to_string()),
            None => Ok(()),
        }
    }
}

/// Words in a driver's message that mean the connection, not the statement, failed.
fn is_connection_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "connection",
        "connect",
        "closed",
        "broken pipe",
        "timed out",
        "timeout",
        "reset by peer",
        "unexpected eof",
        "io error",
        "driver error",
    ]
    .iter()
    .any(|w| m.contains(w))
}

/// Turns any error from a source into one that names it.
pub fn name_error(source: &str, e: DataFusionError) -> DataFusionError {
    if let DataFusionError::External(inner) = &e {
        if inner.downcast_ref::<ConnectorError>().is_some() {
            return e;
        }
        // The source's own SQLSTATE, as postgres_fdw reports it; a connection
        // failure or a server shutting down (08…, 57P0…) is the source being away.
        if let Some(remote) = inner.downcast_ref::<crate::error::RemoteError>() {
            let (source_name, message) = (source.to_string(), remote.message.clone());
            let named = if remote.code.starts_with("08") || remote.code.starts_with("57P0") {
                ConnectorError::Unavailable {
                    source_name,
                    message,
                }
            } else {
                ConnectorError::Remote {
                    source_name,
                    message,
                    code: Some(remote.code.clone()),
                }
            };
            return DataFusionError::External(Box::new(named));
        }
    }
    let message = e.to_string();
    let named = if is_connection_failure(&message) {
        ConnectorError::Unavailable {
            source_name: source.to_string(),
            message,
        }
    } else {
        ConnectorError::Remote {
            source_name: source.to_string(),
            message,
            code: None,
        }
    };
    DataFusionError::External(Box::new(named))
}

/// The executor federation calls: the table's own, with the source's name on every
/// error, a bounded wait for a dead server, and traffic counted.
struct Named {
    source: String,
    engine: Engine,
    inner: Arc<dyn SQLExecutor>,
    traffic: Arc<Traffic>,
    connect_timeout: Duration,
    probe: Probe,
    /// A PostgreSQL source's pool, which statements are sent to directly.
    postgres: Option<Arc<PostgresConnectionPool>>,
    /// The source's connections kept between statements.
    warm: Arc<Warm>,
}

/// A connection checked out of a PostgreSQL source's pool.
type PgConn = Box<
    dyn DbConnection<
            bb8::PooledConnection<
                'static,
                datafusion_table_providers_postgres::pool::ConnectionManager,
            >,
            &'static (dyn tokio_postgres::types::ToSql + Sync),
        >,
>;

/// Connections of a PostgreSQL source kept for its next statements.
///
/// The pool checks every connection it hands out with an empty query: a round trip
/// to the server before every statement, as long as the point query itself. A
/// connection that has just answered a statement needs no such check, so up to a
/// few (half the pool, at most four) are kept here after their statement, each for
/// at most [`Warm::FOR`]; one whose socket has closed is never reused. They still
/// count against the pool's size, and go back to it when they are not reused.
pub(crate) struct Warm {
    kept: Mutex<Vec<(PgConn, Instant)>>,
    most: usize,
}

impl Warm {
    const FOR: Duration = Duration::from_secs(30);

    fn new(pool_size: u32) -> Warm {
        Warm {
            kept: Mutex::new(Vec::new()),
            most: (pool_size as usize / 2).min(4),
        }
    }

    fn is_open(conn: &PgConn) -> bool {
        conn.as_any()
            .downcast_ref::<PostgresConnection>()
            .is_some_and(|c| !c.conn.is_closed())
    }

    /// The most recently used connection still fit to use, if any.
    fn take(&self) -> Option<PgConn> {
        let mut stale = Vec::new();
        let found = {
            let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
            loop {
                match kept.pop() {
                    Some((conn, at)) if at.elapsed() < Self::FOR && Self::is_open(&conn) => {
                        break Some(conn);
                    }
                    Some((conn, _)) => stale.push(conn),
                    None => break None,
                }
            }
        };
        // Back to the pool (outside the lock), which checks them before reuse.
        drop(stale);
        found
    }

    /// Keeps a connection whose statement is done, or returns it to the pool.
    fn keep(&self, conn: PgConn) {
        if !Self::is_open(&conn) {
            return;
        }
        let mut kept = self.kept.lock().unwrap_or_else(|e| e.into_inner());
        if kept.len() < self.most {
            kept.push((conn, Instant::now()));
        }
    }
}

/// Holds a connection while its rows are read; then it is kept for the next
/// statement if every row was read (a connection dropped mid-result goes back to
/// the pool, which checks it).
struct Lease {
    conn: Option<PgConn>,
    warm: Arc<Warm>,
    done: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.done
        {
            self.warm.keep(conn);
        }
    }
}

/// A driver error with the server's own message (the driver's says only "db error").
fn postgres_error(e: &tokio_postgres::Error) -> DataFusionError {
    match e.as_db_error() {
        Some(db) => DataFusionError::External(Box::new(crate::error::RemoteError {
            code: db.code().code().to_string(),
            message: db.to_string(),
        })),
        None => DataFusionError::Execution(e.to_string()),
    }
}

/// A statement's rows from a PostgreSQL pool, as record batches of `schema`, with
/// `values` for its `$1…$n` (see [`crate::bound`]).
///
/// One pooled connection (its checkout waits at most `timeout`), and one round trip:
/// parse, bind, describe and execute go out together (`query_typed_raw`), where the
/// table provider's own path prepares first and a separate probe checks the server,
/// three round trips more for a point query. The connection is held until the
/// stream ends or is dropped.
fn postgres_batches(
    pool: Arc<PostgresConnectionPool>,
    warm: Arc<Warm>,
    sql: String,
    values: Arc<[crate::bound::Value]>,
    schema: SchemaRef,
    source: String,
    timeout: Duration,
) -> impl futures::Stream<Item = DfResult<RecordBatch>> + Send {
    use tokio_postgres::types::ToSql;
    const ROWS_PER_BATCH: usize = 4_000;
    let remote = |e: &dyn std::fmt::Display| DataFusionError::Execution(e.to_string());
    let opened = async move {
        let warmed = warm.take();
        let conn = match warmed {
            Some(conn) => conn,
            None => match tokio::time::timeout(timeout, pool.connect()).await {
                Ok(Ok(conn)) => conn,
                Ok(Err(e)) => {
                    return Err(DataFusionError::External(Box::new(unavailable(&source, e))));
                }
                Err(_) => {
                    return Err(DataFusionError::External(Box::new(unavailable(
                        &source,
                        format!("no connection within {timeout:?}"),
                    ))));
                }
            },
        };
        let client = conn
            .as_any()
            .downcast_ref::<PostgresConnection>()
            .ok_or_else(|| DataFusionError::Internal("not a PostgreSQL connection".into()))?;
        let params = values
            .iter()
            .map(|v| (v as &(dyn ToSql + Sync), v.ty().clone()));
        let rows = client
            .conn
            .query_typed_raw(&sql, params)
            .await
            .map_err(|e| postgres_error(&e))?;
        let lease = Lease {
            conn: Some(conn),
            warm,
            done: false,
        };
        Ok((lease, rows))
    };
    futures::stream::once(opened)
        .map_ok(move |(lease, rows)| {
            let projected = Some(schema.clone());
            // The rows, then a marker that they were all read; the lease is
            // dropped with the stream (the connection kept or given back).
            let lease = Arc::new(Mutex::new(lease));
            let finished = lease.clone();
            let batches = rows.chunks(ROWS_PER_BATCH).map(move |chunk| {
                let _held = &lease;
                let chunk = chunk
                    .into_iter()
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| postgres_error(&e))?;
                rows_to_arrow(&chunk, &projected)
                    .map(Some)
                    .map_err(|e| remote(&e))
            });
            batches.chain(futures::stream::once(async move {
                finished.lock().unwrap_or_else(|e| e.into_inner()).done = true;
                Ok(None)
            }))
        })
        .try_flatten()
        .try_filter_map(|batch| async move { Ok(batch) })
}

#[async_trait]
impl SQLExecutor for Named {
    /// [`bound::POSTGRES_EXECUTOR`] for a PostgreSQL source, which takes a
    /// statement's values as parameters; the table's own name otherwise.
    fn name(&self) -> &str {
        match self.postgres {
            Some(_) => crate::bound::POSTGRES_EXECUTOR,
            None => self.inner.name(),
        }
    }

    fn compute_context(&self) -> Option<String> {
        self.inner.compute_context()
    }

    fn dialect(&self) -> Arc<dyn Dialect> {
        self.inner.dialect()
    }

    fn logical_optimizer(&self) -> Option<LogicalOptimizer> {
        self.inner.logical_optimizer()
    }

    /// The table's own rewrite, then [`quoting::quote`]: every statement's literals
    /// and names in a form the database reads back exactly.
    fn ast_analyzer(&self) -> Option<AstAnalyzer> {
        let mut inner = self.inner.ast_analyzer();
        let (engine, source) = (self.engine, self.source.clone());
        Some(Box::new(move |statement| {
            let statement = match inner.as_mut() {
                Some(rewrite) => rewrite(statement)?,
                None => statement,
            };
            crate::quoting::quote(statement, engine, &source)
        }))
    }

    fn execute(
        &self,
        query: &str,
        schema: SchemaRef,
        filters: &[Arc<dyn PhysicalExpr>],
    ) -> DfResult<SendableRecordBatchStream> {
        // The MySQL driver strips every double quote from the statement text,
        // which would silently change a string constant: refuse instead.
        if self.engine == Engine::Mysql && query.contains('"') {
            return Err(DataFusionError::External(Box::new(
                ConnectorError::Unsupported {
                    source_name: self.source.clone(),
                    message:
                        "a double quote (\") in a value sent to a MySQL source is not supported"
                            .to_string(),
                },
            )));
        }
        self.traffic.statements.fetch_add(1, Ordering::Relaxed);
        *self
            .traffic
            .last_sql
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(query.to_string());
        tracing::debug!(source = %self.source, sql = %query, "sent to source");
        let source = self.source.clone();
        let traffic = self.traffic.clone();
        let timeout = self.connect_timeout;
        // Values for `$1…$n`, when the engine started this statement with them.
        let values = crate::bound::values_for(query);
        let batches = if let Some(pool) = &self.postgres {
            postgres_batches(
                pool.clone(),
                self.warm.clone(),
                query.to_string(),
                values.unwrap_or_else(|| Arc::from([])),
                schema.clone(),
                source.clone(),
                timeout,
            )
            .boxed()
        } else if values.is_some() {
            return Err(DataFusionError::Internal(format!(
                "source {}: statement parameters reached an executor that does not take them",
                self.source
            )));
        } else {
            let inner = self.inner.execute(query, schema.clone(), filters)?;
            let probe = self.probe.clone();
            let check_source = source.clone();
            futures::stream::once(async move {
                match tokio::time::timeout(timeout, probe.check()).await {
                    Ok(Ok(())) => Ok(inner),
                    Ok(Err(e)) => Err(DataFusionError::External(Box::new(unavailable(
                        &check_source,
                        e,
                    )))),
                    Err(_) => Err(DataFusionError::External(Box::new(unavailable(
                        &check_source,
                        format!("no connection within {timeout:?}"),
                    )))),
                }
            })
            .try_flatten()
            .boxed()
        };
        let stream = batches.map(move |batch| match batch {
            Ok(batch) => {
                traffic
                    .rows
                    .fetch_add(batch.num_rows() as u64, Ordering::Relaxed);
                Ok(batch)
            }
            Err(e) => Err(name_error(&source, e)),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }

    async fn statistics(&self, plan: &LogicalPlan) -> DfResult<datafusion::common::Statistics> {
        self.inner.statistics(plan).await
    }

    async fn table_names(&self) -> DfResult<Vec<String>> {
        self.inner.table_names().await
    }

    async fn get_table_schema(&self, table_name: &str) -> DfResult<SchemaRef> {
        self.inner.get_table_schema(table_name).await
    }
}

#[async_trait]
impl Source for DatabaseSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        self.engine.as_str()
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
