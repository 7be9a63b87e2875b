//! Panic guards around everything a plugin hands to Amar.
//!
//! `datafusion-ffi` calls the plugin's schema, tables, plans and streams from
//! `extern "C"` functions; a panic unwinding out of one of those aborts the whole
//! server. Each wrapper here runs the plugin's code under `catch_unwind` and turns a
//! panic into a DataFusion error naming the plugin and what it was doing.

use std::any::Any;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::datasource::TableType;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::{FutureExt, Stream};

/// The text of a panic's payload.
pub fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(s) = panic.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = panic.downcast_ref::<String>() {
        s.clone()
    } else {
        "a panic without a message".to_string()
    }
}

fn panicked(plugin: &str, doing: &str, panic: Box<dyn Any + Send>) -> DataFusionError {
    DataFusionError::Execution(format!(
        "plugin \"{plugin}\" panicked {doing}: {}",
        panic_message(&*panic)
    ))
}

/// Runs `f`, turning a panic into an error.
fn guarded<T>(plugin: &str, doing: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|p| Err(panicked(plugin, doing, p)))
}

/// The plugin's schema: its tables, guarded.
#[derive(Debug)]
pub(crate) struct GuardedSchema {
    plugin: Arc<str>,
    inner: Arc<dyn SchemaProvider>,
}

impl GuardedSchema {
    pub(crate) fn new(plugin: String, inner: Arc<dyn SchemaProvider>) -> Self {
        GuardedSchema {
            plugin: plugin.into(),
            inner,
        }
    }
}

#[async_trait]
impl SchemaProvider for GuardedSchema {
    fn table_names(&self) -> Vec<String> {
        // The C signature has no room for an error: a panic lists no tables, and
        // the panic hook has printed why.
        catch_unwind(AssertUnwindSafe(|| self.inner.table_names())).unwrap_or_default()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let found = AssertUnwindSafe(self.inner.table(name))
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(panicked(&self.plugin, "opening a table", p)))?;
        match found {
            None => Ok(None),
            Some(table) => Ok(Some(Arc::new(GuardedTable::new(
                self.plugin.clone(),
                table,
            )?))),
        }
    }

    fn table_exist(&self, name: &str) -> bool {
        catch_unwind(AssertUnwindSafe(|| self.inner.table_exist(name))).unwrap_or(false)
    }
}

/// One of the plugin's tables, guarded.
#[derive(Debug)]
struct GuardedTable {
    plugin: Arc<str>,
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
    table_type: TableType,
}

impl GuardedTable {
    fn new(plugin: Arc<str>, inner: Arc<dyn TableProvider>) -> Result<Self> {
        let (schema, table_type) = guarded(&plugin, "describing a table", || {
            Ok((inner.schema(), inner.table_type()))
        })?;
        Ok(GuardedTable {
            plugin,
            inner,
            schema,
            table_type,
        })
    }
}

#[async_trait]
impl TableProvider for GuardedTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        self.table_type
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        guarded(&self.plugin, "choosing filters", || {
            self.inner.supports_filters_pushdown(filters)
        })
    }

    fn statistics(&self) -> Option<Statistics> {
        catch_unwind(AssertUnwindSafe(|| self.inner.statistics()))
            .ok()
            .flatten()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let plan = AssertUnwindSafe(self.inner.scan(state, projection, filters, limit))
            .catch_unwind()
            .await
            .unwrap_or_else(|p| Err(panicked(&self.plugin, "planning a scan", p)))?;
        Ok(Arc::new(GuardedExec::new(self.plugin.clone(), plan)?))
    }
}

/// The plugin's scan plan, guarded. A leaf for Amar: the plugin's plan tree stays
/// inside the plugin, and its one-line description is this node's name, which is
/// all of it that crosses to `EXPLAIN`.
#[derive(Debug)]
struct GuardedExec {
    plugin: Arc<str>,
    inner: Arc<dyn ExecutionPlan>,
    name: String,
    properties: Arc<PlanProperties>,
}

/// A plan's one-line `EXPLAIN` text.
struct OneLine<'a>(&'a dyn ExecutionPlan);

impl fmt::Display for OneLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        self.0.fmt_as(DisplayFormatType::Default, f)
    }
}

impl GuardedExec {
    fn new(plugin: Arc<str>, inner: Arc<dyn ExecutionPlan>) -> Result<Self> {
        let (name, properties) = guarded(&plugin, "describing a scan", || {
            Ok((
                format!("{}", OneLine(inner.as_ref())),
                inner.properties().clone(),
            ))
        })?;
        Ok(GuardedExec {
            plugin,
            inner,
            name,
            properties,
        })
    }
}

impl DisplayAs for GuardedExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "{}", self.name)
    }
}

impl ExecutionPlan for GuardedExec {
    fn name(&self) -> &str {
        &self.name
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    crate::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let stream = guarded(&self.plugin, "starting a scan", || {
            self.inner.execute(partition, context)
        })?;
        Ok(Box::pin(GuardedStream {
            plugin: self.plugin.clone(),
            schema: self.properties.eq_properties.schema().clone(),
            inner: Some(stream),
        }))
    }
}

/// The plugin's record batches, guarded. After a panic the stream ends.
struct GuardedStream {
    plugin: Arc<str>,
    schema: SchemaRef,
    inner: Option<SendableRecordBatchStream>,
}

impl Stream for GuardedStream {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll_next(cx))) {
            Ok(poll) => poll,
            Err(p) => {
                self.inner = None;
                Poll::Ready(Some(Err(panicked(&self.plugin, "reading rows", p))))
            }
        }
    }
}

impl RecordBatchStream for GuardedStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::catalog::streaming::StreamingTable;
    use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
    use datafusion::physical_plan::streaming::PartitionStream;
    use datafusion::prelude::SessionContext;
    use futures::StreamExt;

    #[derive(Debug)]
    struct Exploding {
        schema: SchemaRef,
        when: &'static str,
    }

    impl PartitionStream for Exploding {
        fn schema(&self) -> &SchemaRef {
            &self.schema
        }

        fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
            if self.when == "execute" {
                panic!("execute exploded");
            }
            let schema = self.schema.clone();
            Box::pin(RecordBatchStreamAdapter::new(
                schema.clone(),
                futures::stream::iter(0..2).map(move |i| {
                    if i == 1 {
                        panic!("batch exploded");
                    }
                    Ok(RecordBatch::new_empty(schema.clone()))
                }),
            ))
        }
    }

    fn table(when: &'static str) -> GuardedTable {
        let schema: SchemaRef = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, true)]));
        let inner = StreamingTable::try_new(
            schema.clone(),
            vec![Arc::new(Exploding {
                schema: schema.clone(),
                when,
            })],
        )
        .unwrap();
        GuardedTable::new("test".into(), Arc::new(inner)).unwrap()
    }

    #[tokio::test]
    async fn panics_become_errors_naming_the_plugin_and_the_stream_ends() {
        let ctx = SessionContext::new();
        let state = ctx.state();
        let plan = table("execute")
            .scan(&state, None, &[], None)
            .await
            .unwrap();
        let e = plan.execute(0, ctx.task_ctx()).err().unwrap();
        assert_eq!(
            e.to_string(),
            "Execution error: plugin \"test\" panicked starting a scan: execute exploded"
        );

        let plan = table("poll").scan(&state, None, &[], None).await.unwrap();
        let mut stream = plan.execute(0, ctx.task_ctx()).unwrap();
        assert!(stream.next().await.unwrap().is_ok());
        let e = stream.next().await.unwrap().unwrap_err();
        assert!(
            e.to_string()
                .contains("panicked reading rows: batch exploded"),
            "{e}"
        );
        assert!(stream.next().await.is_none());
    }
}
