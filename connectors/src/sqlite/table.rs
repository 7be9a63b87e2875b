//! One SQLite table as a DataFusion table, and the scan that streams it.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::{Constraints, DataFusionError, Result};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::EquivalenceProperties;
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchReceiverStreamBuilder;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
};

use super::filter;
use super::types::ColumnBuilder;
use crate::error::ConnectorError;

/// Rows per record batch sent from a scan.
const BATCH_ROWS: usize = 8192;

/// Tables with fewer rowids than this are read by one scan: splitting costs a
/// connection and a query per part, worth it only for large tables.
const PARTITION_MIN_ROWIDS: i64 = 100_000;

/// At most this many parallel range scans of one table.
const MAX_PARTITIONS: usize = 8;

/// What a SQLite object is, for scanning it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape {
    View,
    /// A table, with its span of rowids when it can be read in rowid ranges.
    Table {
        rowid_span: Option<i64>,
    },
}

/// A table (or view) of a SQLite source.
#[derive(Debug)]
pub struct SqliteTable {
    source_name: String,
    path: PathBuf,
    table: String,
    schema: SchemaRef,
    /// Which columns SQLite compares exactly as DataFusion does (see `filter`).
    pushable: Vec<bool>,
    constraints: Constraints,
    is_view: bool,
    /// The span of rowids when the table was opened; `None` when it cannot be
    /// scanned by rowid ranges (a view, a WITHOUT ROWID table, a column named rowid).
    rowid_span: Option<i64>,
}

impl SqliteTable {
    pub(crate) fn new(
        source_name: String,
        path: PathBuf,
        table: String,
        schema: SchemaRef,
        declared: Vec<String>,
        constraints: Constraints,
        shape: Shape,
    ) -> Self {
        let (is_view, rowid_span) = match shape {
            Shape::View => (true, None),
            Shape::Table { rowid_span } => (false, rowid_span),
        };
        let pushable = schema
            .fields()
            .iter()
            .zip(&declared)
            .map(|(f, declared)| match f.data_type() {
                // Untyped columns may hold any storage class: compare in DataFusion.
                DataType::Utf8 => {
                    let d = declared.to_ascii_uppercase();
                    d.contains("CHAR") || d.contains("CLOB") || d.contains("TEXT")
                }
                // Reals compare inexactly against a decimal literal.
                DataType::Decimal128(_, scale) => *scale == 0,
                DataType::Binary => false,
                _ => true,
            })
            .collect();
        Self {
            source_name,
            path,
            table,
            schema,
            pushable,
            constraints,
            is_view,
            rowid_span,
        }
    }

    fn is_pushable(&self, column: &str) -> bool {
        self.schema
            .index_of(column)
            .map(|i| self.pushable[i])
            .unwrap_or(false)
    }
}

#[async_trait]
impl TableProvider for SqliteTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        if self.is_view {
            TableType::View
        } else {
            TableType::Base
        }
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| {
                if filter::to_sql(f, &|c| self.is_pushable(c)).is_some() {
                    TableProviderFilterPushDown::Exact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let columns = if projected.fields().is_empty() {
            // count(*) and friends need rows, not columns.
            "1".to_string()
        } else {
            projected
                .fields()
                .iter()
                .map(|f| filter::quote_ident(f.name()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut sql = format!("SELECT {columns} FROM {}", filter::quote_ident(&self.table));
        let mut all_pushed = true;
        let mut predicates = vec![];
        for f in filters {
            match filter::to_sql(f, &|c| self.is_pushable(c)) {
                Some(p) => predicates.push(p),
                None => all_pushed = false,
            }
        }
        if !predicates.is_empty() {
            // In parentheses, so that a part's rowid range can be AND-ed on.
            sql.push_str(" WHERE (");
            sql.push_str(&predicates.join(" AND "));
            sql.push(')');
        }
        if let (Some(n), true) = (limit, all_pushed) {
            sql.push_str(&format!(" LIMIT {n}"));
        }
        // Parallel rowid ranges for large scans; not under a LIMIT (the first rows
        // should stay the first rows) nor for a lookup by the integer primary key.
        let by_key = self
            .constraints
            .iter()
            .any(|c| matches!(c, datafusion::common::Constraint::PrimaryKey(k) if k.len() == 1
                && matches!(self.schema.field(k[0]).data_type(), DataType::Int64)
                && filters.iter().any(|f| f.column_refs().iter().any(|col| col.name == *self.schema.field(k[0]).name()))));
        let partitions = match self.rowid_span {
            Some(span) if span >= PARTITION_MIN_ROWIDS && limit.is_none() && !by_key => state
                .config_options()
                .execution
                .target_partitions
                .clamp(1, MAX_PARTITIONS),
            _ => 1,
        };
        Ok(Arc::new(SqliteScanExec::new(
            self.source_name.clone(),
            self.path.clone(),
            self.table.clone(),
            sql,
            !predicates.is_empty(),
            partitions,
            projected,
        )))
    }
}

/// Runs one SELECT against SQLite and streams its rows as record batches.
#[derive(Debug)]
pub struct SqliteScanExec {
    source_name: String,
    path: PathBuf,
    table: String,
    sql: String,
    /// Whether `sql` has a WHERE clause already.
    has_where: bool,
    /// Parallel scans of rowid ranges (1: one scan of the whole SELECT).
    partitions: usize,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl SqliteScanExec {
    fn new(
        source_name: String,
        path: PathBuf,
        table: String,
        sql: String,
        has_where: bool,
        partitions: usize,
        schema: SchemaRef,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(schema.clone()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self {
            source_name,
            path,
            table,
            sql,
            has_where,
            partitions,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for SqliteScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        match t {
            DisplayFormatType::Default | DisplayFormatType::Verbose => {
                write!(
                    f,
                    "SqliteScanExec: source={}, sql={}",
                    self.source_name, self.sql
                )?;
                if self.partitions > 1 {
                    write!(f, ", rowid ranges={}", self.partitions)?;
                }
                Ok(())
            }
            DisplayFormatType::TreeRender => {
                write!(f, "source={}\nsql={}", self.source_name, self.sql)
            }
        }
    }
}

impl ExecutionPlan for SqliteScanExec {
    fn name(&self) -> &'static str {
        "SqliteScanExec"
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
        if partition >= self.partitions {
            return Err(DataFusionError::Internal(format!(
                "SqliteScanExec has {} partitions, asked for {partition}",
                self.partitions
            )));
        }
        // Two batches in flight: the reader stays one batch ahead of the client.
        let mut builder = RecordBatchReceiverStreamBuilder::new(self.schema.clone(), 2);
        let tx = builder.tx();
        let scan = ScanJob {
            source_name: self.source_name.clone(),
            path: self.path.clone(),
            table: self.table.clone(),
            sql: self.sql.clone(),
            has_where: self.has_where,
            part: (partition, self.partitions),
            schema: self.schema.clone(),
        };
        builder.spawn_blocking(move || scan.run(|batch| tx.blocking_send(Ok(batch)).is_ok()));
        Ok(builder.build())
    }
}

struct ScanJob {
    source_name: String,
    path: PathBuf,
    table: String,
    sql: String,
    has_where: bool,
    /// This scan's part, and how many parts the table is read in.
    part: (usize, usize),
    schema: SchemaRef,
}

impl ScanJob {
    /// The SELECT this part runs: the whole statement, or its rowid range. Every
    /// part reads the table's current rowid ends, so the ranges meet exactly.
    fn part_sql(&self, conn: &rusqlite::Connection) -> rusqlite::Result<Option<String>> {
        let (part, parts) = self.part;
        if parts == 1 {
            return Ok(Some(self.sql.clone()));
        }
        // Two subqueries, not `min(rowid), max(rowid)` in one: SQLite answers a lone
        // min or max from the b-tree's end, but both together by scanning every row.
        let table = super::filter::quote_ident(&self.table);
        let (lo, hi): (Option<i64>, Option<i64>) = conn.query_row(
            &format!("SELECT (SELECT min(rowid) FROM {table}), (SELECT max(rowid) FROM {table})"),
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            // An empty table: one part says so, the others have nothing to add.
            return Ok((part == 0).then(|| self.sql.clone()));
        };
        let span = i128::from(hi) - i128::from(lo) + 1;
        let bound = |k: usize| i128::from(lo) + span * k as i128 / parts as i128;
        let (start, end) = (bound(part), bound(part + 1));
        // The first and last parts are open-ended, so no row falls outside.
        let range = if part == 0 {
            format!("rowid < {end}")
        } else if part + 1 == parts {
            format!("rowid >= {start}")
        } else {
            format!("rowid >= {start} AND rowid < {end}")
        };
        let joiner = if self.has_where { " AND " } else { " WHERE " };
        Ok(Some(format!("{}{joiner}{range}", self.sql)))
    }

    /// Reads rows and hands batches to `send`; stops early when `send` says the
    /// receiver is gone (the query was cancelled or the client left).
    fn run(self, mut send: impl FnMut(RecordBatch) -> bool) -> Result<()> {
        let sqlite_err = |e: rusqlite::Error| {
            ConnectorError::Sqlite {
                source_name: self.source_name.clone(),
                message: e.to_string(),
            }
            .into_datafusion()
        };
        let conn = super::connect(&self.path).map_err(sqlite_err)?;
        let Some(sql) = self.part_sql(&conn).map_err(sqlite_err)? else {
            return Ok(());
        };
        let mut stmt = conn.prepare(&sql).map_err(sqlite_err)?;
        let mut rows = stmt.query([]).map_err(sqlite_err)?;
        let fields = self.schema.fields().clone();
        let new_builders = || -> Vec<ColumnBuilder> {
            fields
                .iter()
                .map(|f| ColumnBuilder::new(f.data_type(), BATCH_ROWS))
                .collect()
        };
        let mut builders = new_builders();
        let mut count = 0usize;
        let mut pending = 0usize;
        while let Some(row) = rows.next().map_err(sqlite_err)? {
            for (i, builder) in builders.iter_mut().enumerate() {
                let value = row.get_ref(i).map_err(sqlite_err)?;
                builder.append(value).map_err(|message| {
                    ConnectorError::Value {
                        source_name: self.source_name.clone(),
                        table: self.table.clone(),
                        column: fields[i].name().clone(),
                        message,
                    }
                    .into_datafusion()
                })?;
            }
            count += 1;
            pending += 1;
            if pending == BATCH_ROWS {
                let batch = self.finish(&mut builders, pending)?;
                pending = 0;
                if !send(batch) {
                    return Ok(());
                }
            }
        }
        if pending > 0 || count == 0 {
            let batch = self.finish(&mut builders, pending)?;
            if batch.num_rows() > 0 {
                send(batch);
            }
        }
        Ok(())
    }

    fn finish(&self, builders: &mut [ColumnBuilder], rows: usize) -> Result<RecordBatch> {
        let columns = builders.iter_mut().map(|b| b.finish()).collect();
        let options =
            datafusion::arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }
}
