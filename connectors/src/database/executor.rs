//! Running SQL on a database source: the executor federation hands whole sub-plans to,
//! the PostgreSQL one-round-trip path and the connections kept warm between
//! statements, the record-batch streams, and errors named after their source.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::TableProvider;
use datafusion::common::TableReference;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{PhysicalExpr, SendableRecordBatchStream};
use datafusion::sql::unparser::dialect::Dialect as UnparserDialect;
use datafusion_federation::FederatedTableProviderAdaptor;
use datafusion_federation::sql::{
    AstAnalyzer, LogicalOptimizer, RemoteTableRef, SQLExecutor, SQLFederationProvider,
    SQLTableSource,
};
use datafusion_table_providers_common::sql::db_connection_pool::DbConnectionPool;
use datafusion_table_providers_common::sql::db_connection_pool::dbconnection::DbConnection;
use datafusion_table_providers_postgres::arrow_sql_gen::rows_to_arrow;
use datafusion_table_providers_postgres::conn::PostgresConnection;
use datafusion_table_providers_postgres::pool::PostgresConnectionPool;
use futures::{StreamExt, TryStreamExt};

use crate::config::Dialect;
use crate::error::{ConnectorError, Result};

use super::lifecycle::Probe;
use super::{DatabaseSource, Traffic, unavailable};

impl DatabaseSource {
    /// The provider DataFusion sees: federation hands whole sub-plans to the
    /// executor; without it, `fallback` scans with filter and limit pushdown.
    ///
    /// With `postgres`, statements go straight to the pool in one round trip
    /// (see [`Named::execute`]); otherwise through `executor`.
    pub(super) fn federate(
        &self,
        executor: Arc<dyn SQLExecutor>,
        fallback: Arc<dyn TableProvider>,
        remote: TableReference,
        postgres: Option<Arc<PostgresConnectionPool>>,
    ) -> Arc<dyn TableProvider> {
        let schema = fallback.schema();
        let executor = Arc::new(Named {
            source: self.name.clone(),
            dialect: self.dialect,
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
    dialect: Dialect,
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

    pub(super) fn new(pool_size: u32) -> Warm {
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

    fn dialect(&self) -> Arc<dyn UnparserDialect> {
        self.inner.dialect()
    }

    fn logical_optimizer(&self) -> Option<LogicalOptimizer> {
        self.inner.logical_optimizer()
    }

    /// The table's own rewrite, then [`quoting::quote`]: every statement's literals
    /// and names in a form the database reads back exactly.
    fn ast_analyzer(&self) -> Option<AstAnalyzer> {
        let mut inner = self.inner.ast_analyzer();
        let (dialect, source) = (self.dialect, self.source.clone());
        Some(Box::new(move |statement| {
            let statement = match inner.as_mut() {
                Some(rewrite) => rewrite(statement)?,
                None => statement,
            };
            crate::quoting::quote(statement, dialect, &source)
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
        if self.dialect == Dialect::Mysql && query.contains('"') {
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
