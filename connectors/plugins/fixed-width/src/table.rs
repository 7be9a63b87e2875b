//! One layout table as a DataFusion table: the files matching its pattern, read
//! line by line, only the columns a query needs, filtered as they are read.

use std::fmt;
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use amar_plugin_sdk::datafusion::arrow::array::{Array, BooleanArray};
use amar_plugin_sdk::datafusion::arrow::compute::filter_record_batch;
use amar_plugin_sdk::datafusion::arrow::datatypes::SchemaRef;
use amar_plugin_sdk::datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use amar_plugin_sdk::datafusion::catalog::{Session, TableProvider};
use amar_plugin_sdk::datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use amar_plugin_sdk::datafusion::common::{DFSchema, DataFusionError, Result};
use amar_plugin_sdk::datafusion::datasource::TableType;
use amar_plugin_sdk::datafusion::execution::{SendableRecordBatchStream, TaskContext};
use amar_plugin_sdk::datafusion::logical_expr::execution_props::ExecutionProps;
use amar_plugin_sdk::datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use amar_plugin_sdk::datafusion::logical_expr::utils::conjunction;
use amar_plugin_sdk::datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use amar_plugin_sdk::datafusion::physical_expr::{
    EquivalenceProperties, PhysicalExpr, create_physical_expr,
};
use amar_plugin_sdk::datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use amar_plugin_sdk::datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use amar_plugin_sdk::datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};
use async_trait::async_trait;

use crate::layout::Table;
use crate::values::Builder;

/// A layout table inside the source's folder.
#[derive(Debug)]
pub struct FixedWidthTable {
    dir: PathBuf,
    table: Arc<Table>,
    batch_rows: usize,
}

impl FixedWidthTable {
    pub fn new(dir: PathBuf, table: Table, batch_rows: usize) -> Self {
        FixedWidthTable {
            dir,
            table: Arc::new(table),
            batch_rows,
        }
    }

    /// The table's files now, in name order (exports arrive month by month).
    fn files(&self) -> Result<Vec<PathBuf>> {
        let pattern = glob::Pattern::new(&self.table.files)
            .map_err(|e| DataFusionError::Plan(e.to_string()))?;
        let entries = std::fs::read_dir(&self.dir).map_err(|e| {
            DataFusionError::Execution(format!("cannot list {}: {e}", self.dir.display()))
        })?;
        let mut files = vec![];
        for entry in entries {
            let entry = entry.map_err(|e| DataFusionError::Execution(e.to_string()))?;
            let name = entry.file_name();
            if let Some(name) = name.to_str()
                && pattern.matches(name)
                && entry.file_type().map(|t| t.is_file()).unwrap_or(false)
            {
                files.push(entry.path());
            }
        }
        files.sort();
        Ok(files)
    }
}

/// Filters the scan evaluates itself: comparisons and logic over columns and
/// constants. Anything with a function call is left to Amar.
fn evaluable(expr: &Expr) -> bool {
    let mut ok = true;
    let _ = expr.apply(|e| {
        ok &= matches!(
            e,
            Expr::Column(_)
                | Expr::Literal(..)
                | Expr::BinaryExpr(_)
                | Expr::Not(_)
                | Expr::IsNull(_)
                | Expr::IsNotNull(_)
                | Expr::IsTrue(_)
                | Expr::IsFalse(_)
                | Expr::Negative(_)
                | Expr::Between(_)
                | Expr::Like(_)
                | Expr::InList(_)
                | Expr::Cast(_)
                | Expr::TryCast(_)
        );
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

#[async_trait]
impl TableProvider for FixedWidthTable {
    fn schema(&self) -> SchemaRef {
        self.table.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if evaluable(f) {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let all = &self.table.schema;
        let output: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..all.fields().len()).collect(),
        };
        // What is read: the output columns, and the columns the filters use.
        let mut read = output.clone();
        for filter in filters {
            for column in filter.column_refs() {
                let i = all.index_of(&column.name)?;
                if !read.contains(&i) {
                    read.push(i);
                }
            }
        }
        let read_schema = Arc::new(all.project(&read)?);
        let predicate = match conjunction(filters.to_vec()) {
            None => None,
            Some(expr) => {
                let df_schema = DFSchema::try_from(read_schema.as_ref().clone())?;
                Some(create_physical_expr(
                    &expr,
                    &df_schema,
                    &ExecutionProps::new(),
                    &PhysicalPlanningContext::default(),
                )?)
            }
        };
        let files = self.files()?;
        let output_schema = Arc::new(all.project(&output)?);
        Ok(Arc::new(
            FixedWidthScan {
                table: self.table.clone(),
                files,
                read,
                read_schema,
                keep: (0..output.len()).collect(),
                output_schema: output_schema.clone(),
                predicate,
                filters: filters.iter().map(|f| f.to_string()).collect(),
                limit,
                batch_rows: self.batch_rows,
                properties: Arc::new(PlanProperties::new(
                    EquivalenceProperties::new(output_schema),
                    Partitioning::UnknownPartitioning(0),
                    EmissionType::Incremental,
                    Boundedness::Bounded,
                )),
            }
            .with_partitions(),
        ))
    }
}

/// Reads a table's files: one partition per file.
#[derive(Debug)]
struct FixedWidthScan {
    table: Arc<Table>,
    files: Vec<PathBuf>,
    /// Layout columns read, by index; the output columns come first.
    read: Vec<usize>,
    read_schema: SchemaRef,
    /// Positions in `read` of the output columns.
    keep: Vec<usize>,
    output_schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    /// The filters, as text for `EXPLAIN`.
    filters: Vec<String>,
    limit: Option<usize>,
    batch_rows: usize,
    properties: Arc<PlanProperties>,
}

impl FixedWidthScan {
    fn with_partitions(mut self) -> Self {
        let partitions = self.files.len().max(1);
        self.properties = Arc::new(
            self.properties
                .as_ref()
                .clone()
                .with_partitioning(Partitioning::UnknownPartitioning(partitions)),
        );
        self
    }
}

impl DisplayAs for FixedWidthScan {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let columns: Vec<&str> = self
            .output_schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(
            f,
            "FixedWidthScan: table={}, files={} ({}), columns=[{}]",
            self.table.name,
            self.table.files,
            self.files.len(),
            columns.join(", ")
        )?;
        if !self.filters.is_empty() {
            write!(f, ", filters=[{}]", self.filters.join(", "))?;
        }
        if let Some(limit) = self.limit {
            write!(f, ", limit={limit}")?;
        }
        Ok(())
    }
}

impl ExecutionPlan for FixedWidthScan {
    fn name(&self) -> &'static str {
        "FixedWidthScan"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    amar_plugin_sdk::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.output_schema.clone(), 2);
        let Some(file) = self.files.get(partition).cloned() else {
            // No files yet: an empty table.
            return Ok(builder.build());
        };
        let tx = builder.tx();
        let job = ReadJob {
            table: self.table.clone(),
            file,
            read: self.read.clone(),
            read_schema: self.read_schema.clone(),
            keep: self.keep.clone(),
            output_schema: self.output_schema.clone(),
            predicate: self.predicate.clone(),
            limit: self.limit,
            batch_rows: self.batch_rows,
        };
        builder.spawn_blocking(move || {
            let mut send = |batch| tx.blocking_send(batch).is_ok();
            if let Err(e) = job.run(&mut send) {
                send(Err(e));
            }
            Ok(())
        });
        Ok(builder.build())
    }
}

struct ReadJob {
    table: Arc<Table>,
    file: PathBuf,
    read: Vec<usize>,
    read_schema: SchemaRef,
    keep: Vec<usize>,
    output_schema: SchemaRef,
    predicate: Option<Arc<dyn PhysicalExpr>>,
    limit: Option<usize>,
    batch_rows: usize,
}

impl ReadJob {
    fn error(&self, line: usize, why: impl fmt::Display) -> DataFusionError {
        DataFusionError::Execution(format!("{}, line {line}: {why}", file_name(&self.file)))
    }

    /// Reads the file, sending batches until it ends, the limit is reached or the
    /// receiver is gone.
    fn run(&self, send: &mut dyn FnMut(Result<RecordBatch>) -> bool) -> Result<()> {
        let file = std::fs::File::open(&self.file)
            .map_err(|e| DataFusionError::Execution(format!("{}: {e}", self.file.display())))?;
        let mut reader = std::io::BufReader::with_capacity(1 << 20, file);
        let columns: Vec<_> = self.read.iter().map(|&i| &self.table.columns[i]).collect();
        let mut builders: Vec<Builder> = columns
            .iter()
            .map(|c| Builder::new(c.kind, self.batch_rows))
            .collect();
        let mut raw = Vec::with_capacity(256);
        let mut offsets: Vec<usize> = Vec::with_capacity(256);
        let mut line_no = 0usize;
        let mut rows = 0usize;
        let mut sent = 0usize;
        loop {
            raw.clear();
            let n = reader
                .read_until(b'\n', &mut raw)
                .map_err(|e| self.error(line_no + 1, e))?;
            if n == 0 {
                break;
            }
            line_no += 1;
            if line_no <= self.table.skip_lines {
                continue;
            }
            while matches!(raw.last(), Some(b'\n' | b'\r')) {
                raw.pop();
            }
            if raw.is_empty() {
                continue;
            }
            let line = self
                .table
                .encoding
                .decode_without_bom_handling_and_without_replacement(&raw)
                .ok_or_else(|| {
                    self.error(line_no, format!("not valid {}", self.table.encoding.name()))
                })?;
            // Widths count characters: find where each starts, unless it is all ASCII.
            let ascii = line.is_ascii();
            if !ascii {
                offsets.clear();
                offsets.extend(line.char_indices().map(|(i, _)| i));
                offsets.push(line.len());
            }
            let chars = if ascii { line.len() } else { offsets.len() - 1 };
            for (column, builder) in columns.iter().zip(builders.iter_mut()) {
                let start = column.offset.min(chars);
                let end = (column.offset + column.width).min(chars);
                let field = if ascii {
                    &line[start..end]
                } else {
                    &line[offsets[start]..offsets[end]]
                };
                builder
                    .push(field)
                    .map_err(|why| self.error(line_no, format!("column {}: {why}", column.name)))?;
            }
            rows += 1;
            if rows == self.batch_rows {
                let wanted = self.limit.map(|l| l - sent);
                let batch = self.batch(&mut builders, rows, wanted)?;
                rows = 0;
                sent += batch.num_rows();
                if !send(Ok(batch)) || self.limit.is_some_and(|l| sent >= l) {
                    return Ok(());
                }
            }
        }
        if rows > 0 {
            let wanted = self.limit.map(|l| l - sent);
            let batch = self.batch(&mut builders, rows, wanted)?;
            send(Ok(batch));
        }
        Ok(())
    }

    /// The rows collected so far, filtered, projected to the output columns and cut
    /// to at most `wanted` rows.
    fn batch(
        &self,
        builders: &mut [Builder],
        rows: usize,
        wanted: Option<usize>,
    ) -> Result<RecordBatch> {
        let arrays: Vec<_> = builders.iter_mut().map(Builder::finish).collect();
        let mut batch = RecordBatch::try_new_with_options(
            self.read_schema.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        if let Some(predicate) = &self.predicate {
            let keep = predicate.evaluate(&batch)?.into_array(batch.num_rows())?;
            let keep = keep
                .as_any()
                .downcast_ref::<BooleanArray>()
                .ok_or_else(|| DataFusionError::Internal("a filter that is not boolean".into()))?;
            batch = filter_record_batch(&batch, keep)?;
        }
        let batch = batch.project(&self.keep)?;
        let batch = RecordBatch::try_new_with_options(
            self.output_schema.clone(),
            batch.columns().to_vec(),
            &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
        )?;
        Ok(match wanted {
            Some(n) if n < batch.num_rows() => batch.slice(0, n),
            _ => batch,
        })
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}
