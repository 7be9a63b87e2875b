//! Indicator views computed once per version of the data under them.
//!
//! Reading `indicators.<id>` runs the indicator's plan with the reader's row filters
//! on the tables under it (the policy layer inlines it; see [`super::views`]). What
//! that gives depends on three things only: the plan as inlined (which carries the
//! reader's row filters and the form, as computed or disclosure-controlled), the
//! session's time zone, and the data the plan reads. So the rows are computed once
//! and kept while every source the plan reads stays at the same
//! [`data_version`](amar_connectors::Source::data_version), checked at every
//! execution (a prepared statement's too): readers whose row filters make the same
//! plan (all of one province's staff; every public reader) read the kept rows, and a
//! reader with other filters gets rows of their own. Plans are compared whole
//! (`LogicalPlan` equality), not by their text. The user's own SQL on top (filters,
//! aggregates, joins) runs on those rows.
//!
//! Not kept, computed at each read as before: a view over a live database (it cannot
//! say when its rows change, and a live indicator shows them as they are), a view
//! whose plan calls a function that is not immutable (`now()`, `random()`), a view
//! read under EXPLAIN (which shows the indicator's own plan), and one whose rows were
//! too large to keep. Kept rows are bounded: [`KEPT_BYTES`] in all, none larger than
//! [`ENTRY_BYTES`], each reserved in the engine's memory pool; the least recently
//! read go first.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::TableReference;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryPool, MemoryReservation};
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, Volatility};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, Partitioning,
    PlanProperties,
};
use futures::{Stream, StreamExt};

use super::{DataStamp, INDICATORS_SCHEMA, Statistics};

/// All kept rows together stay under this.
pub const KEPT_BYTES: usize = 256 << 20;
/// A view's rows larger than this are not kept.
pub const ENTRY_BYTES: usize = 64 << 20;

/// How indicator views were read since the start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeptCounts {
    /// Read from kept rows.
    pub kept: u64,
    /// Computed (and kept, when they could be).
    pub computed: u64,
}

/// What kept rows are kept for: one reader's form of one view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct ViewKey {
    id: String,
    suppressed: bool,
    /// The definition as inlined for the reader (their row filters in it).
    plan: LogicalPlan,
}

#[derive(Debug, Default)]
pub(super) struct KeptViews {
    entries: Mutex<Entries>,
    /// Views whose rows were too large to keep: read as defined from then on.
    too_big: Mutex<HashSet<ViewKey>>,
    kept: AtomicU64,
    computed: AtomicU64,
}

/// How many views may be remembered as too large (then the list starts again).
const TOO_BIG_REMEMBERED: usize = 256;

#[derive(Debug, Default)]
struct Entries {
    /// By view and the session's time zone.
    map: HashMap<(ViewKey, Option<String>), Entry>,
    bytes: usize,
    clock: u64,
}

#[derive(Debug)]
struct Entry {
    stamp: DataStamp,
    schema: SchemaRef,
    batches: Vec<RecordBatch>,
    /// The rows' memory, held in the engine's pool while they are kept.
    reservation: MemoryReservation,
    used: u64,
}

impl KeptViews {
    pub(super) fn counts(&self) -> KeptCounts {
        KeptCounts {
            kept: self.kept.load(Ordering::Relaxed),
            computed: self.computed.load(Ordering::Relaxed),
        }
    }

    /// The rows kept under `key`, if computed from data at `stamp`.
    fn get(
        &self,
        key: &(ViewKey, Option<String>),
        stamp: &DataStamp,
    ) -> Option<(SchemaRef, Vec<RecordBatch>)> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let clock = entries.clock;
        let entry = entries.map.get_mut(key)?;
        if entry.stamp != *stamp {
            return None;
        }
        entry.used = clock;
        Some((entry.schema.clone(), entry.batches.clone()))
    }

    fn is_too_big(&self, key: &ViewKey) -> bool {
        self.too_big
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(key)
    }

    fn too_big(&self, key: &ViewKey) {
        let mut too_big = self.too_big.lock().unwrap_or_else(|e| e.into_inner());
        if too_big.len() >= TOO_BIG_REMEMBERED {
            too_big.clear();
        }
        too_big.insert(key.clone());
    }

    /// Keeps `batches` under `key`, their memory reserved in `pool`; a result
    /// larger than [`ENTRY_BYTES`] or than the pool can hold is not kept.
    fn put(
        &self,
        key: (ViewKey, Option<String>),
        stamp: DataStamp,
        schema: SchemaRef,
        batches: Vec<RecordBatch>,
        pool: &Arc<dyn MemoryPool>,
    ) {
        let bytes: usize = batches.iter().map(|b| b.get_array_memory_size()).sum();
        if bytes > ENTRY_BYTES {
            self.too_big(&key.0);
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.clock += 1;
        let used = entries.clock;
        if let Some(old) = entries.map.remove(&key) {
            entries.bytes -= old.reservation.size();
        }
        while entries.bytes + bytes > KEPT_BYTES {
            let Some(oldest) = entries
                .map
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            if let Some(gone) = entries.map.remove(&oldest) {
                entries.bytes -= gone.reservation.size();
            }
        }
        let reservation =
            MemoryConsumer::new(format!("kept indicator view {}", key.0.id)).register(pool);
        if reservation.try_grow(bytes).is_err() {
            return;
        }
        entries.bytes += bytes;
        entries.map.insert(
            key,
            Entry {
                stamp,
                schema,
                batches,
                reservation,
                used,
            },
        );
    }
}

/// Whether every function `plan` calls gives the same answer for the same arguments.
fn immutable(plan: &LogicalPlan) -> bool {
    let mut changing = false;
    let _ = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                let volatility = match e {
                    Expr::ScalarFunction(f) => Some(f.func.signature().volatility),
                    Expr::AggregateFunction(f) => Some(f.func.signature().volatility),
                    Expr::WindowFunction(f) => Some(f.fun.signature().volatility),
                    _ => None,
                };
                if volatility.is_some_and(|v| v != Volatility::Immutable) {
                    changing = true;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })?;
        Ok(if changing {
            TreeNodeRecursion::Stop
        } else {
            TreeNodeRecursion::Continue
        })
    });
    !changing
}

impl Statistics {
    /// `plan`, indicator `id`'s view as one reader reads it (inlined with their row
    /// filters), as a scan of rows kept for it, where it can be kept; otherwise
    /// `plan` as it is. See the module docs.
    pub(super) fn kept_view(
        self: &Arc<Self>,
        id: &str,
        suppressed: bool,
        plan: LogicalPlan,
    ) -> Result<LogicalPlan> {
        if !immutable(&plan) {
            return Ok(plan);
        }
        // What the plan reads, nested indicators inlined: its version decides.
        let reads = super::tables_read(&plan);
        if self.stamp_of(std::slice::from_ref(&reads), false).live() {
            return Ok(plan);
        }
        let key = ViewKey {
            id: id.to_string(),
            suppressed,
            plan,
        };
        if self.kept_views.is_too_big(&key) {
            return Ok(key.plan);
        }
        let schema: SchemaRef = Arc::new(key.plan.schema().as_arrow().clone());
        let view = KeptView {
            statistics: self.clone(),
            key,
            reads,
            schema,
        };
        LogicalPlanBuilder::scan(
            TableReference::partial(INDICATORS_SCHEMA, id),
            datafusion::datasource::provider_as_source(Arc::new(view)),
            None,
        )?
        .build()
    }
}

/// One reader's form of an indicator view, served from kept rows.
#[derive(Debug)]
struct KeptView {
    statistics: Arc<Statistics>,
    key: ViewKey,
    /// The tables the plan reads, whose sources' versions stamp its rows.
    reads: BTreeSet<String>,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for KeptView {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        // Jalali and timestamp functions read the session's time zone.
        let key = (
            self.key.clone(),
            state.config_options().execution.time_zone.clone(),
        );
        // The version now, at each execution: a prepared statement's plan outlives
        // the data it was planned over.
        let stamp = self
            .statistics
            .stamp_of(std::slice::from_ref(&self.reads), false);
        let views = &self.statistics.kept_views;
        let keep = if stamp.live() {
            None
        } else if let Some((schema, batches)) = views.get(&key, &stamp) {
            views.kept.fetch_add(1, Ordering::Relaxed);
            return Ok(MemorySourceConfig::try_new_exec(
                &[batches],
                schema,
                projection.cloned(),
            )?);
        } else {
            Some(Arc::new(Keep {
                statistics: self.statistics.clone(),
                key,
                stamp,
            }))
        };
        views.computed.fetch_add(1, Ordering::Relaxed);
        let mut input = state.create_physical_plan(&self.key.plan).await?;
        if input.output_partitioning().partition_count() != 1 {
            input = Arc::new(CoalescePartitionsExec::new(input));
        }
        let full = input.schema();
        let schema = match projection {
            Some(p) => Arc::new(full.project(p)?),
            None => full,
        };
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Ok(Arc::new(KeepExec {
            id: self.key.id.clone(),
            input,
            projection: projection.cloned(),
            schema,
            properties: Arc::new(properties),
            keep,
        }))
    }
}

/// Where computed rows go when they are complete.
#[derive(Debug)]
struct Keep {
    statistics: Arc<Statistics>,
    key: (ViewKey, Option<String>),
    stamp: DataStamp,
}

/// Computes an indicator view for one reader and keeps its rows when the
/// computation completes (not when it fails or the reader stops early).
#[derive(Debug)]
struct KeepExec {
    id: String,
    /// The view's plan, planned on its own (one partition); hidden from the
    /// statement's optimiser, which has nothing to add to it.
    input: Arc<dyn ExecutionPlan>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Where the rows go when complete; `None` when they cannot be kept (a source
    /// under the view cannot say its data's version now).
    keep: Option<Arc<Keep>>,
}

impl DisplayAs for KeepExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match self.keep {
            Some(_) => write!(f, "KeepExec: indicator={}, computed and kept", self.id),
            None => write!(f, "KeepExec: indicator={}, computed", self.id),
        }
    }
}

impl ExecutionPlan for KeepExec {
    fn name(&self) -> &'static str {
        "KeepExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    amar_plugin_sdk::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        if partition != 0 {
            return Err(DataFusionError::Internal(format!(
                "KeepExec has one partition, asked for {partition}"
            )));
        }
        Ok(Box::pin(Keeping {
            pool: context.memory_pool().clone(),
            input: self.input.execute(0, context)?,
            seen: self.keep.as_ref().map(|_| (vec![], 0)),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            keep: self.keep.clone(),
        }))
    }
}

/// The view's rows on their way to the reader, a copy of each kept until the end.
struct Keeping {
    input: SendableRecordBatchStream,
    pool: Arc<dyn MemoryPool>,
    /// The rows so far and their size; `None` once they cannot be kept.
    seen: Option<(Vec<RecordBatch>, usize)>,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
    keep: Option<Arc<Keep>>,
}

impl Stream for Keeping {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        match ready!(this.input.poll_next_unpin(cx)) {
            Some(Ok(batch)) => {
                if let Some((rows, bytes)) = &mut this.seen {
                    *bytes += batch.get_array_memory_size();
                    if *bytes > ENTRY_BYTES {
                        this.seen = None;
                        if let Some(keep) = &this.keep {
                            keep.statistics.kept_views.too_big(&keep.key.0);
                        }
                    } else {
                        rows.push(batch.clone());
                    }
                }
                let out = match &this.projection {
                    Some(p) => batch.project(p).map_err(DataFusionError::from),
                    None => Ok(batch),
                };
                Poll::Ready(Some(out))
            }
            Some(Err(e)) => {
                this.seen = None;
                Poll::Ready(Some(Err(e)))
            }
            None => {
                if let (Some((rows, _)), Some(keep)) = (this.seen.take(), &this.keep) {
                    keep.statistics.kept_views.put(
                        keep.key.clone(),
                        keep.stamp.clone(),
                        this.input.schema(),
                        rows,
                        &this.pool,
                    );
                }
                Poll::Ready(None)
            }
        }
    }
}

impl RecordBatchStream for Keeping {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::execution::memory_pool::{GreedyMemoryPool, UnboundedMemoryPool};

    fn batch(rows: usize) -> (SchemaRef, RecordBatch) {
        let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Int64, false)]));
        let values = Int64Array::from_iter_values(0..rows as i64);
        let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(values)]).unwrap();
        (schema, batch)
    }

    fn stamp(version: &str) -> DataStamp {
        DataStamp {
            sources: vec![("s".into(), Some(version.into()))],
            rules: 0,
        }
    }

    fn key(id: &str) -> (ViewKey, Option<String>) {
        let plan = LogicalPlanBuilder::empty(false).build().unwrap();
        (
            ViewKey {
                id: id.into(),
                suppressed: false,
                plan,
            },
            None,
        )
    }

    fn pool() -> Arc<dyn MemoryPool> {
        Arc::new(UnboundedMemoryPool::default())
    }

    #[test]
    fn rows_are_served_only_for_the_view_and_data_they_were_computed_from() {
        let views = KeptViews::default();
        let (schema, b) = batch(3);
        views.put(key("k"), stamp("1"), schema, vec![b], &pool());
        assert!(views.get(&key("k"), &stamp("1")).is_some());
        assert!(views.get(&key("k"), &stamp("2")).is_none());
        assert!(views.get(&key("other"), &stamp("1")).is_none());
        let (mut suppressed, tz) = key("k");
        suppressed.suppressed = true;
        assert!(views.get(&(suppressed, tz), &stamp("1")).is_none());
        let (same, _) = key("k");
        assert!(
            views
                .get(&(same, Some("Asia/Tehran".into())), &stamp("1"))
                .is_none()
        );
    }

    #[test]
    fn the_least_recently_read_go_first_and_large_results_are_not_kept() {
        let views = KeptViews::default();
        let pool = pool();
        // Each about 16 MB: sixteen fill the bound.
        let (schema, b) = batch(2 << 20);
        let each = b.get_array_memory_size();
        let fit = KEPT_BYTES / each;
        for i in 0..fit {
            views.put(
                key(&format!("k{i}")),
                stamp("1"),
                schema.clone(),
                vec![b.clone()],
                &pool,
            );
        }
        assert!(
            views.get(&key("k0"), &stamp("1")).is_some(),
            "read: now the newest"
        );
        views.put(
            key("new"),
            stamp("1"),
            schema.clone(),
            vec![b.clone()],
            &pool,
        );
        assert!(views.get(&key("k0"), &stamp("1")).is_some());
        assert!(
            views.get(&key("k1"), &stamp("1")).is_none(),
            "the oldest went"
        );
        assert!(views.entries.lock().unwrap().bytes <= KEPT_BYTES);
        assert_eq!(pool.reserved(), views.entries.lock().unwrap().bytes);
        let (schema, big) = batch(ENTRY_BYTES / 8 + 1);
        views.put(key("big"), stamp("1"), schema, vec![big], &pool);
        assert!(views.get(&key("big"), &stamp("1")).is_none());
        assert!(
            views.is_too_big(&key("big").0),
            "read as defined from now on"
        );
    }

    #[test]
    fn rows_the_memory_pool_cannot_hold_are_not_kept() {
        let views = KeptViews::default();
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(1024));
        let (schema, b) = batch(10_000);
        views.put(key("k"), stamp("1"), schema, vec![b], &pool);
        assert!(views.get(&key("k"), &stamp("1")).is_none());
        assert_eq!(pool.reserved(), 0);
    }
}
