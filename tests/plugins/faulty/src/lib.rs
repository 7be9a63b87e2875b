//! A connector plugin that fails on purpose, so that Amar's tests can check what a
//! broken plugin does to the server: nothing but a clear error.
//!
//! Option `fail` chooses how: `open` (the entry point returns an error),
//! `open-panic`, `scan-panic` (panics planning a scan), `read-panic` (sends one
//! batch, then panics producing the next) or `none`. Its one table, `numbers`, has
//! a column `n` with 1, 2, 3.

use std::sync::Arc;

use amar_plugin_sdk::datafusion::arrow::array::Int64Array;
use amar_plugin_sdk::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use amar_plugin_sdk::datafusion::arrow::record_batch::RecordBatch;
use amar_plugin_sdk::datafusion::catalog::streaming::StreamingTable;
use amar_plugin_sdk::datafusion::catalog::{
    MemorySchemaProvider, SchemaProvider, Session, TableProvider,
};
use amar_plugin_sdk::datafusion::common::Result;
use amar_plugin_sdk::datafusion::datasource::TableType;
use amar_plugin_sdk::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use amar_plugin_sdk::datafusion::logical_expr::Expr;
use amar_plugin_sdk::datafusion::physical_plan::ExecutionPlan;
use amar_plugin_sdk::datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use amar_plugin_sdk::datafusion::physical_plan::streaming::PartitionStream;
use amar_plugin_sdk::{OptionKind, OptionSpec, Options, Plugin, PluginInfo, export_plugin};
use async_trait::async_trait;
use futures::StreamExt;

pub struct Faulty;

impl Plugin for Faulty {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "faulty".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "fails on purpose, for tests".to_string(),
            options: vec![OptionSpec::new(
                "fail",
                OptionKind::String,
                true,
                "open, open-panic, scan-panic, read-panic or none",
            )],
        }
    }

    fn open(_source: &str, options: &Options) -> Result<Arc<dyn SchemaProvider>, String> {
        let fail = options.string("fail").unwrap_or("none").to_string();
        match fail.as_str() {
            "open" => return Err("the department's archive server refused the login".into()),
            "open-panic" => panic!("opening exploded"),
            "none" | "scan-panic" | "read-panic" => {}
            other => return Err(format!("fail = \"{other}\" is not a way to fail")),
        }
        let schema: SchemaRef =
            Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let numbers = Numbers {
            schema: schema.clone(),
            panic_reading: fail == "read-panic",
        };
        let table = Faultable {
            inner: StreamingTable::try_new(schema, vec![Arc::new(numbers)])
                .map_err(|e| e.to_string())?,
            panic_scanning: fail == "scan-panic",
        };
        let provider = MemorySchemaProvider::new();
        provider
            .register_table("numbers".into(), Arc::new(table))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(provider))
    }
}

#[derive(Debug)]
struct Faultable {
    inner: StreamingTable,
    panic_scanning: bool,
}

#[async_trait]
impl TableProvider for Faultable {
    fn schema(&self) -> SchemaRef {
        self.inner.schema()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if self.panic_scanning {
            panic!("scan exploded");
        }
        self.inner.scan(state, projection, filters, limit).await
    }
}

#[derive(Debug)]
struct Numbers {
    schema: SchemaRef,
    panic_reading: bool,
}

impl PartitionStream for Numbers {
    fn schema(&self) -> &SchemaRef {
        &self.schema
    }

    fn execute(&self, _ctx: Arc<TaskContext>) -> SendableRecordBatchStream {
        let schema = self.schema.clone();
        let panic_reading = self.panic_reading;
        let batches = futures::stream::iter(0..2).map(move |i| {
            if i == 1 {
                if panic_reading {
                    panic!("reading exploded");
                }
                return Ok(RecordBatch::new_empty(schema.clone()));
            }
            Ok(RecordBatch::try_new(
                schema.clone(),
                vec![Arc::new(Int64Array::from(vec![1, 2, 3]))],
            )?)
        });
        Box::pin(RecordBatchStreamAdapter::new(self.schema.clone(), batches))
    }
}

export_plugin!(Faulty);
