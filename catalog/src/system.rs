//! The `amar` schema: Amar's own system tables.
//!
//! `amar.sources` lists every source with its kind, mode, health (checked when the
//! table is read), table count and what it pushes down. The server adds the tables
//! it owns (`amar.query_log`, `amar.policy_status`, …) with
//! [`SystemSchema::add_table`].

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::{DataFusionError, Result};

use crate::schema::SourceSchema;

const SOURCES: &str = "sources";

/// The `amar` system schema.
#[derive(Debug)]
pub struct SystemSchema {
    sources: Arc<dyn TableProvider>,
    /// Tables other parts of the server provide.
    others: RwLock<BTreeMap<String, Arc<dyn TableProvider>>>,
}

impl SystemSchema {
    pub fn new(sources: Vec<Arc<SourceSchema>>) -> Self {
        Self {
            sources: crate::computed::Computed::table(SourcesTable::new(sources)),
            others: RwLock::new(BTreeMap::new()),
        }
    }

    /// Adds (or replaces) a system table, e.g. the server's `query_log`.
    pub fn add_table(&self, name: &str, table: Arc<dyn TableProvider>) {
        self.others
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_string(), table);
    }

    fn other(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        self.others
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

#[async_trait]
impl SchemaProvider for SystemSchema {
    fn table_names(&self) -> Vec<String> {
        let mut names = vec![SOURCES.to_string()];
        names.extend(
            self.others
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .keys()
                .cloned(),
        );
        names.sort();
        names
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        Ok(match name {
            SOURCES => Some(self.sources.clone()),
            _ => self.other(name),
        })
    }

    fn table_exist(&self, name: &str) -> bool {
        name == SOURCES || self.other(name).is_some()
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create table \"{name}\" in the system schema \"amar\""
        )))
    }
}

/// `amar.sources`: one row per source.
/// `amar.sources.accelerated`: per table, in memory (rows, MB) or why not; NULL for a
/// source not accelerated.
fn describe_acceleration(tables: &[crate::accelerated::Acceleration]) -> Option<String> {
    if tables.is_empty() {
        return None;
    }
    let mut parts: Vec<String> = tables
        .iter()
        .map(|t| {
            let table = t.table.split_once('.').map_or(t.table.as_str(), |(_, t)| t);
            match (&t.held, &t.refused) {
                (Some((rows, bytes, _)), _) => format!(
                    "{table}: {rows} rows, {:.1} MB in memory",
                    *bytes as f64 / 1e6
                ),
                (None, Some(why)) => format!("{table}: read from the source ({why})"),
                (None, None) => format!("{table}: read into memory at its first query"),
            }
        })
        .collect();
    parts.sort();
    Some(parts.join("; "))
}

#[derive(Debug)]
pub struct SourcesTable {
    sources: Vec<Arc<SourceSchema>>,
    schema: SchemaRef,
}

impl SourcesTable {
    fn new(sources: Vec<Arc<SourceSchema>>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("kind", DataType::Utf8, false),
            Field::new("mode", DataType::Utf8, false),
            Field::new("healthy", DataType::Boolean, false),
            Field::new("health_message", DataType::Utf8, true),
            Field::new("latency_ms", DataType::Float64, false),
            Field::new(
                "checked_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("tables", DataType::Int64, false),
            Field::new("pushdown", DataType::Utf8, false),
            Field::new("statements_sent", DataType::Int64, true),
            Field::new("rows_received", DataType::Int64, true),
            Field::new("skipped", DataType::Utf8, true),
            Field::new(
                "last_snapshot",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                true,
            ),
            Field::new("snapshot_rows", DataType::Int64, true),
            Field::new("accelerated", DataType::Utf8, true),
        ]));
        Self { sources, schema }
    }

    async fn batch(&self) -> Result<RecordBatch> {
        let n = self.sources.len();
        let mut name = StringBuilder::with_capacity(n, n * 16);
        let mut kind = StringBuilder::with_capacity(n, n * 8);
        let mut mode = StringBuilder::with_capacity(n, n * 8);
        let mut healthy = BooleanBuilder::with_capacity(n);
        let mut message = StringBuilder::with_capacity(n, n * 16);
        let mut latency = Float64Builder::with_capacity(n);
        let mut checked = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut tables = Int64Builder::with_capacity(n);
        let mut pushdown = StringBuilder::with_capacity(n, n * 32);
        let mut statements = Int64Builder::with_capacity(n);
        let mut received = Int64Builder::with_capacity(n);
        let mut skipped = StringBuilder::with_capacity(n, n * 8);
        let mut last_snapshot = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut snapshot_rows = Int64Builder::with_capacity(n);
        let mut accelerated = StringBuilder::with_capacity(n, n * 32);
        for schema in &self.sources {
            accelerated.append_option(describe_acceleration(&schema.accelerations()));
            let source = schema.source();
            let health = source.health().await;
            name.append_value(source.name());
            kind.append_value(source.kind());
            mode.append_value(source.mode().as_str());
            healthy.append_value(health.ok);
            message.append_option(health.message.as_deref());
            latency.append_value(health.latency.as_secs_f64() * 1000.0);
            let micros = health
                .checked_at
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0);
            checked.append_value(micros);
            tables.append_value(schema.table_names().len() as i64);
            pushdown.append_value(source.pushdown().describe());
            let traffic = source.traffic();
            statements.append_option(traffic.map(|t| t.0 as i64));
            received.append_option(traffic.map(|t| t.1 as i64));
            let not_loaded = source.skipped();
            if not_loaded.is_empty() {
                skipped.append_null();
            } else {
                skipped.append_value(not_loaded.join("; "));
            }
            match source.snapshot() {
                Some((at, rows)) => {
                    last_snapshot.append_option(at.and_then(|t| {
                        t.duration_since(std::time::UNIX_EPOCH)
                            .ok()
                            .map(|d| d.as_micros() as i64)
                    }));
                    snapshot_rows.append_value(rows as i64);
                }
                None => {
                    last_snapshot.append_null();
                    snapshot_rows.append_null();
                }
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(name.finish()),
            Arc::new(kind.finish()),
            Arc::new(mode.finish()),
            Arc::new(healthy.finish()),
            Arc::new(message.finish()),
            Arc::new(latency.finish()),
            Arc::new(checked.finish()),
            Arc::new(tables.finish()),
            Arc::new(pushdown.finish()),
            Arc::new(statements.finish()),
            Arc::new(received.finish()),
            Arc::new(skipped.finish()),
            Arc::new(last_snapshot.finish()),
            Arc::new(snapshot_rows.finish()),
            Arc::new(accelerated.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[async_trait]
impl crate::computed::CatalogRows for SourcesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        self.batch().await
    }
}
