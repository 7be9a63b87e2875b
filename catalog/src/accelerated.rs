//! Acceleration: a source's tables held in memory as Arrow (`accelerate = true`), as
//! Spice.ai accelerates datasets, for sources whose data is files Amar can see change
//! (files, drop folders, SQLite, snapshots).
//!
//! An [`Accelerated`] table wraps the source's own. Its first scan reads the table
//! whole into memory; later scans read memory while the source reports the same
//! [`data_version`](amar_connectors::Source::data_version). When the version moves (a
//! new snapshot, a file taken into a drop folder, a file changed) the next scan reads
//! the table again and swaps the new copy in at once: a query sees the old copy or
//! the new one, never a mix, and queries running on the old copy finish on it.
//!
//! The copy counts against the engine's memory limit (a reservation in its pool,
//! named `accelerated <schema>.<table>`). When it does not fit, or the source cannot
//! tell its version, the table is read from the source as if not accelerated, and
//! `amar.sources` says why.

use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use amar_connectors::Source;
use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::Constraints;
use datafusion::datasource::{MemTable, TableType};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{ExecutionPlan, collect_partitioned};

/// A table of an accelerated source.
#[derive(Debug)]
pub struct Accelerated {
    /// `schema.table`, for the reservation's name and messages.
    name: String,
    inner: Arc<dyn TableProvider>,
    source: Arc<dyn Source>,
    held: Mutex<State>,
    /// One scan reads the table into memory; others wait for it.
    loading: tokio::sync::Mutex<()>,
}

#[derive(Debug, Default)]
struct State {
    copy: Option<Held>,
    /// Why the table is read from the source instead (with the version that was
    /// tried, so that a copy that did not fit is not tried again until it changes).
    refused: Option<(Option<String>, String)>,
}

#[derive(Debug)]
struct Held {
    version: String,
    table: Arc<MemTable>,
    rows: usize,
    bytes: usize,
    loaded_at: SystemTime,
    _reservation: MemoryReservation,
}

/// What `amar.sources` shows of one accelerated table.
#[derive(Debug, Clone)]
pub struct Acceleration {
    pub table: String,
    /// Held in memory now: rows, bytes and when it was read.
    pub held: Option<(usize, usize, SystemTime)>,
    /// Why it is read from the source instead.
    pub refused: Option<String>,
}

impl Accelerated {
    pub fn new(name: String, inner: Arc<dyn TableProvider>, source: Arc<dyn Source>) -> Self {
        Accelerated {
            name,
            inner,
            source,
            held: Mutex::new(State::default()),
            loading: tokio::sync::Mutex::new(()),
        }
    }

    /// The accelerated table behind a provider, if it is one.
    pub fn of(table: &dyn TableProvider) -> Option<&Accelerated> {
        table.downcast_ref::<Accelerated>()
    }

    pub fn status(&self) -> Acceleration {
        let state = self.held.lock().unwrap_or_else(|e| e.into_inner());
        Acceleration {
            table: self.name.clone(),
            held: state.copy.as_ref().map(|h| (h.rows, h.bytes, h.loaded_at)),
            refused: state.refused.as_ref().map(|(_, why)| why.clone()),
        }
    }

    /// The copy for `version`, if held.
    fn current(&self, version: &str) -> Option<Arc<MemTable>> {
        let state = self.held.lock().unwrap_or_else(|e| e.into_inner());
        state
            .copy
            .as_ref()
            .filter(|h| h.version == version)
            .map(|h| h.table.clone())
    }

    fn refused_for(&self, version: &Option<String>) -> bool {
        let state = self.held.lock().unwrap_or_else(|e| e.into_inner());
        state.refused.as_ref().is_some_and(|(v, _)| v == version)
    }

    fn refuse(&self, version: Option<String>, why: String) {
        tracing::warn!(table = %self.name, "not accelerated: {why}");
        let mut state = self.held.lock().unwrap_or_else(|e| e.into_inner());
        state.copy = None;
        state.refused = Some((version, why));
    }

    /// The in-memory copy of the table as it is now, read if need be; `None` when
    /// the table is to be read from the source.
    async fn copy(&self, state: &dyn Session) -> Result<Option<Arc<MemTable>>> {
        let version = self.source.data_version();
        let Some(version) = version else {
            if !self.refused_for(&None) {
                self.refuse(
                    None,
                    "the source cannot tell when its data changes".to_string(),
                );
            }
            return Ok(None);
        };
        if let Some(table) = self.current(&version) {
            return Ok(Some(table));
        }
        if self.refused_for(&Some(version.clone())) {
            return Ok(None);
        }
        let _turn = self.loading.lock().await;
        if let Some(table) = self.current(&version) {
            return Ok(Some(table));
        }
        let plan = self.inner.scan(state, None, &[], None).await?;
        let mut partitions = collect_partitioned(plan, state.task_ctx()).await?;
        if partitions.is_empty() {
            partitions.push(vec![]);
        }
        let batches: Vec<&RecordBatch> = partitions.iter().flatten().collect();
        let rows = batches.iter().map(|b| b.num_rows()).sum();
        let bytes = batches.iter().map(|b| b.get_array_memory_size()).sum();
        let reservation = MemoryConsumer::new(format!("accelerated {}", self.name))
            .register(&state.runtime_env().memory_pool);
        if let Err(e) = reservation.try_grow(bytes) {
            self.refuse(
                Some(version),
                format!("{bytes} bytes do not fit in the memory limit ({e})"),
            );
            return Ok(None);
        }
        let table = Arc::new(
            MemTable::try_new(self.inner.schema(), partitions)?
                .with_constraints(self.inner.constraints().cloned().unwrap_or_default()),
        );
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        held.refused = None;
        // The old copy (and its reservation) goes when the last query on it ends.
        held.copy = Some(Held {
            version,
            table: table.clone(),
            rows,
            bytes,
            loaded_at: SystemTime::now(),
            _reservation: reservation,
        });
        tracing::info!(table = %self.name, rows, bytes, "accelerated: held in memory");
        Ok(Some(table))
    }
}

#[async_trait]
impl TableProvider for Accelerated {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn constraints(&self) -> Option<&Constraints> {
        self.inner.constraints()
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Memory applies none of them and the source some: either way the engine
        // filters again above the scan.
        Ok(filters
            .iter()
            .map(|_| TableProviderFilterPushDown::Inexact)
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        match self.copy(state).await? {
            Some(table) => table.scan(state, projection, filters, limit).await,
            None => {
                // The filters the source takes (the engine applies all of them again
                // above this scan: they are Inexact here).
                let refs: Vec<&Expr> = filters.iter().collect();
                let taken: Vec<Expr> = self
                    .inner
                    .supports_filters_pushdown(&refs)?
                    .into_iter()
                    .zip(filters)
                    .filter(|(how, _)| *how != TableProviderFilterPushDown::Unsupported)
                    .map(|(_, f)| f.clone())
                    .collect();
                self.inner.scan(state, projection, &taken, limit).await
            }
        }
    }
}
