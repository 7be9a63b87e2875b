//! Values sent to PostgreSQL as a statement's parameters, not written into its text.
//!
//! A prepared statement wholly pushed to one PostgreSQL source keeps its `$n`
//! placeholders in the SQL that federation writes. The engine converts each
//! execution's values ([`Value::from_scalar`]) and starts the statement inside
//! [`with_values`]; the PostgreSQL executor takes them from there ([`values_for`])
//! and sends them with the statement, in text format. The plan is optimised and
//! unparsed to SQL once for all executions ([`Parameterised`]), and no value ever
//! travels as SQL text.
//!
//! Strings are sent with the type `unknown`, so PostgreSQL gives each the type its
//! place asks for, as it types a quoted literal (a `uuid` or enum column compares
//! with it as it would with `'…'`); every other value carries its own type.

use std::error::Error;
use std::sync::{Arc, Mutex, OnceLock};

use bytes::{BufMut, BytesMut};
use chrono::Datelike;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::{Expr, LogicalPlan};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion_federation::sql::SQLExecutor;
use futures::StreamExt;
use tokio_postgres::types::{Format, IsNull, ToSql, Type, to_sql_checked};

/// The name the PostgreSQL executor reports, by which [`accepts`] knows it.
pub const POSTGRES_EXECUTOR: &str = "amar:postgres";

/// One parameter: its PostgreSQL type and its text (`None` for NULL).
#[derive(Debug, Clone, PartialEq)]
pub struct Value {
    ty: Type,
    text: Option<String>,
}

impl Value {
    /// The parameter for a bound value, or `None` for a type not sent this way
    /// (lists, binary, intervals…: those are bound as literals instead).
    pub fn from_scalar(value: &ScalarValue) -> Option<Value> {
        use ScalarValue as S;
        let typed = |ty: Type, text: Option<String>| Some(Value { ty, text });
        let shown = |v: &dyn std::fmt::Display| Some(v.to_string());
        match value {
            S::Null => typed(Type::UNKNOWN, None),
            S::Boolean(v) => typed(Type::BOOL, v.map(|b| b.to_string())),
            S::Int8(v) => typed(Type::INT2, v.and_then(|x| shown(&x))),
            S::Int16(v) => typed(Type::INT2, v.and_then(|x| shown(&x))),
            S::UInt8(v) => typed(Type::INT2, v.and_then(|x| shown(&x))),
            S::Int32(v) => typed(Type::INT4, v.and_then(|x| shown(&x))),
            S::UInt16(v) => typed(Type::INT4, v.and_then(|x| shown(&x))),
            S::Int64(v) => typed(Type::INT8, v.and_then(|x| shown(&x))),
            S::UInt32(v) => typed(Type::INT8, v.and_then(|x| shown(&x))),
            S::UInt64(v) => typed(Type::NUMERIC, v.and_then(|x| shown(&x))),
            S::Float32(v) => typed(Type::FLOAT4, v.map(|x| float(f64::from(x)))),
            S::Float64(v) => typed(Type::FLOAT8, v.map(float)),
            S::Decimal128(..) | S::Decimal256(..) => {
                let text = (!value.is_null()).then(|| value.to_string());
                typed(Type::NUMERIC, text)
            }
            S::Utf8(v) | S::Utf8View(v) | S::LargeUtf8(v) => {
                if v.as_deref().is_some_and(|s| s.contains('\0')) {
                    // PostgreSQL refuses NUL in text; the literal path reports it.
                    return None;
                }
                typed(Type::UNKNOWN, v.clone())
            }
            S::Date32(v) => {
                let text = match v {
                    Some(days) => {
                        let date = chrono::NaiveDate::from_num_days_from_ce_opt(
                            days.checked_add(719_163)?,
                        )?;
                        if !ORDINARY_YEARS.contains(&date.year()) {
                            return None;
                        }
                        Some(date.format("%Y-%m-%d").to_string())
                    }
                    None => None,
                };
                typed(Type::DATE, text)
            }
            S::TimestampSecond(v, zone) => timestamp(v.map(|s| (s, 0)), zone.is_some()),
            S::TimestampMillisecond(v, zone) => timestamp(
                v.map(|ms| (ms.div_euclid(1_000), ms.rem_euclid(1_000) * 1_000_000)),
                zone.is_some(),
            ),
            S::TimestampMicrosecond(v, zone) => timestamp(
                v.map(|us| (us.div_euclid(1_000_000), us.rem_euclid(1_000_000) * 1_000)),
                zone.is_some(),
            ),
            S::TimestampNanosecond(v, zone) => timestamp(
                v.map(|ns| (ns.div_euclid(1_000_000_000), ns.rem_euclid(1_000_000_000))),
                zone.is_some(),
            ),
            _ => None,
        }
    }

    /// The parameters for a list of values, or `None` if any is not sent this way.
    pub fn all<'a>(values: impl IntoIterator<Item = &'a ScalarValue>) -> Option<Arc<[Value]>> {
        values.into_iter().map(Value::from_scalar).collect()
    }

    /// The type the statement declares for this parameter.
    pub fn ty(&self) -> &Type {
        &self.ty
    }
}

/// Years written the same way by chrono and PostgreSQL (PostgreSQL writes years
/// before 1 as `… BC`, chrono as negative numbers); others are bound as literals.
const ORDINARY_YEARS: std::ops::RangeInclusive<i32> = 1..=9999;

/// A float as PostgreSQL reads it back exactly (Rust's shortest round-trip form).
fn float(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        format!("{x:?}")
    }
}

/// A timestamp from seconds and nanoseconds since the epoch: `timestamptz` (in UTC)
/// when Arrow's type carries a zone, `timestamp` otherwise.
fn timestamp(value: Option<(i64, i64)>, zoned: bool) -> Option<Value> {
    let ty = if zoned {
        Type::TIMESTAMPTZ
    } else {
        Type::TIMESTAMP
    };
    let text = match value {
        None => None,
        Some((seconds, nanos)) => {
            let at = chrono::DateTime::from_timestamp(seconds, u32::try_from(nanos).ok()?)?;
            let mut text = at.naive_utc().format("%Y-%m-%d %H:%M:%S%.f").to_string();
            if at.naive_utc().format("%Y").to_string().starts_with('-') {
                // PostgreSQL writes years before 1 as `… BC`; leave those to literals.
                return None;
            }
            if zoned {
                text.push_str("+00");
            }
            Some(text)
        }
    };
    Some(Value { ty, text })
}

impl ToSql for Value {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match &self.text {
            Some(text) => {
                out.put_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// The values of the statement being started, and the SQL the executor was given.
struct Bound {
    values: Arc<[Value]>,
    sql: Mutex<Option<String>>,
}

tokio::task_local! {
    static BOUND: Arc<Bound>;
}

/// Runs `f` (which starts an execution plan) with `values` for its `$1…$n`;
/// returns what `f` returned and the SQL the PostgreSQL executor was given, if any.
pub fn with_values<R>(values: Arc<[Value]>, f: impl FnOnce() -> R) -> (R, Option<String>) {
    let bound = Arc::new(Bound {
        values,
        sql: Mutex::new(None),
    });
    let result = BOUND.sync_scope(bound.clone(), f);
    let sql = bound.sql.lock().unwrap_or_else(|e| e.into_inner()).take();
    (result, sql)
}

/// For the executor sending `sql`: the values of the statement being started, if
/// it was started by [`with_values`] (which is told the SQL).
pub fn values_for(sql: &str) -> Option<Arc<[Value]>> {
    BOUND
        .try_with(|bound| {
            *bound.sql.lock().unwrap_or_else(|e| e.into_inner()) = Some(sql.to_string());
            bound.values.clone()
        })
        .ok()
}

/// A statement wholly pushed to one PostgreSQL source whose values go as
/// parameters. Its first execution runs federation's execution plan, which writes
/// the SQL (placeholders kept); later ones hand that SQL straight to the source's
/// executor, so the plan is neither rewritten nor unparsed again.
pub struct Parameterised {
    first: Arc<dyn ExecutionPlan>,
    executor: Arc<dyn SQLExecutor>,
    schema: SchemaRef,
    count: usize,
    sql: OnceLock<String>,
}

impl std::fmt::Debug for Parameterised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Parameterised")
            .field("count", &self.count)
            .field("sql", &self.sql.get())
            .finish_non_exhaustive()
    }
}

impl Parameterised {
    /// For the plan inside a federated node and the execution plan federation made
    /// of it; `None` unless its values can go as parameters ([`accepts`],
    /// [`parameter_count`]).
    pub fn new(plan: &LogicalPlan, first: Arc<dyn ExecutionPlan>) -> Option<Parameterised> {
        if !accepts(plan) {
            return None;
        }
        let count = parameter_count(plan)?;
        let executor = executor_of(plan)?;
        Some(Parameterised {
            schema: first.schema(),
            first,
            executor,
            count,
            sql: OnceLock::new(),
        })
    }

    /// How many values an execution takes.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Starts the statement with `values` (as many as [`Self::count`]).
    pub fn execute(
        &self,
        values: Arc<[Value]>,
        task: impl FnOnce() -> Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        if let Some(sql) = self.sql.get() {
            let (stream, _) = with_values(values, || {
                self.executor.execute(sql, self.schema.clone(), &[])
            });
            // What federation's plan does to every batch: the node's exact types.
            let schema = self.schema.clone();
            let cast = stream?.map(move |batch| {
                batch.and_then(|b| {
                    datafusion_federation::schema_cast::record_convert::try_cast_to(
                        b,
                        schema.clone(),
                    )
                    .map_err(|e| DataFusionError::External(Box::new(e)))
                })
            });
            return Ok(Box::pin(RecordBatchStreamAdapter::new(
                self.schema.clone(),
                cast,
            )));
        }
        let (stream, sql) = with_values(values, || self.first.execute(0, task()));
        if let (Ok(_), Some(sql)) = (&stream, sql) {
            let _ = self.sql.set(sql);
        }
        stream
    }
}

/// The executor of the tables `plan` reads (one source's: federation put them in
/// one node).
fn executor_of(plan: &LogicalPlan) -> Option<Arc<dyn SQLExecutor>> {
    let mut found = None;
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(Some(federated)) = datafusion_federation::get_table_source(&scan.source)
            && let Some(sql) = (federated.as_ref() as &dyn std::any::Any)
                .downcast_ref::<datafusion_federation::sql::SQLTableSource>()
        {
            found = Some(sql.provider.executor.clone());
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}

/// Whether `plan` (a statement wholly pushed to one source, its placeholders kept)
/// can take its values as parameters: every table it reads is served by the
/// PostgreSQL executor, and every placeholder stands in a filter or join condition,
/// where PostgreSQL can tell a string parameter's type from its place.
pub fn accepts(plan: &LogicalPlan) -> bool {
    let mut scans = 0usize;
    let mut ours = 0usize;
    let mut placeholders = 0usize;
    let mut in_conditions = 0usize;
    let count = |expr: &Expr| {
        let mut n = 0usize;
        let _ = expr.apply(|e| {
            if matches!(e, Expr::Placeholder(_)) {
                n += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        });
        n
    };
    let walked = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(scan) => {
                scans += 1;
                if is_postgres(&scan.source) {
                    ours += 1;
                }
                // Filters pushed into the scan are written as its WHERE.
                for filter in &scan.filters {
                    let n = count(filter);
                    placeholders += n;
                    in_conditions += n;
                }
            }
            LogicalPlan::Filter(filter) => {
                let n = count(&filter.predicate);
                placeholders += n;
                in_conditions += n;
            }
            LogicalPlan::Join(join) => {
                for (left, right) in &join.on {
                    let n = count(left) + count(right);
                    placeholders += n;
                    in_conditions += n;
                }
                if let Some(condition) = &join.filter {
                    let n = count(condition);
                    placeholders += n;
                    in_conditions += n;
                }
            }
            other => {
                for expr in other.expressions() {
                    placeholders += count(&expr);
                }
            }
        }
        Ok(TreeNodeRecursion::Continue)
    });
    walked.is_ok() && scans > 0 && scans == ours && placeholders == in_conditions
}

/// How many values the SQL written from `plan` takes: `n` when its placeholders are
/// exactly `$1…$n` (each at least once), `None` otherwise (an optimisation that
/// dropped one would leave PostgreSQL a parameter it cannot type).
pub fn parameter_count(plan: &LogicalPlan) -> Option<usize> {
    let mut seen = std::collections::BTreeSet::new();
    let mut valid = true;
    let walked = plan.apply_with_subqueries(|node| {
        node.apply_expressions(|expr| {
            expr.apply(|e| {
                if let Expr::Placeholder(p) = e {
                    match p.id.strip_prefix('$').and_then(|n| n.parse::<usize>().ok()) {
                        Some(n) if n >= 1 => {
                            seen.insert(n);
                        }
                        _ => valid = false,
                    }
                }
                Ok(TreeNodeRecursion::Continue)
            })
        })
    });
    let n = seen.len();
    (walked.is_ok() && valid && seen.iter().copied().eq(1..=n)).then_some(n)
}

/// Whether a scan's table is one the PostgreSQL executor serves.
fn is_postgres(source: &Arc<dyn datafusion::logical_expr::TableSource>) -> bool {
    let Ok(Some(federated)) = datafusion_federation::get_table_source(source) else {
        return false;
    };
    (federated.as_ref() as &dyn std::any::Any)
        .downcast_ref::<datafusion_federation::sql::SQLTableSource>()
        .is_some_and(|sql| sql.provider.executor.name() == POSTGRES_EXECUTOR)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(value: ScalarValue) -> Option<String> {
        Value::from_scalar(&value)
            .expect("sent as a parameter")
            .text
    }

    #[test]
    fn values_are_written_as_postgresql_reads_them() {
        assert_eq!(text(ScalarValue::Int32(Some(-7))), Some("-7".into()));
        assert_eq!(text(ScalarValue::Float64(Some(0.1))), Some("0.1".into()));
        assert_eq!(
            text(ScalarValue::Float64(Some(1e300))),
            Some("1e300".into())
        );
        assert_eq!(
            text(ScalarValue::Float64(Some(f64::NEG_INFINITY))),
            Some("-Infinity".into())
        );
        assert_eq!(
            text(ScalarValue::Decimal128(Some(-12345), 10, 2)),
            Some("-123.45".into())
        );
        assert_eq!(
            text(ScalarValue::Date32(Some(0))),
            Some("1970-01-01".into())
        );
        assert_eq!(
            text(ScalarValue::Date32(Some(-1))),
            Some("1969-12-31".into())
        );
        assert_eq!(
            text(ScalarValue::TimestampMicrosecond(Some(-1), None)),
            Some("1969-12-31 23:59:59.999999".into())
        );
        assert_eq!(
            text(ScalarValue::TimestampSecond(
                Some(86_400),
                Some("UTC".into())
            )),
            Some("1970-01-02 00:00:00+00".into())
        );
        assert_eq!(
            text(ScalarValue::Utf8(Some("x' OR 1=1 --".into()))),
            Some("x' OR 1=1 --".into())
        );
        assert_eq!(text(ScalarValue::Int64(None)), None);
        assert_eq!(
            Value::from_scalar(&ScalarValue::Utf8(Some("a".into()))).map(|v| v.ty),
            Some(Type::UNKNOWN)
        );
    }

    #[test]
    fn values_postgresql_could_not_read_are_left_to_literals() {
        assert!(Value::from_scalar(&ScalarValue::Utf8(Some("a\0b".into()))).is_none());
        assert!(Value::from_scalar(&ScalarValue::Binary(Some(vec![1]))).is_none());
        assert!(Value::all(&[ScalarValue::Int64(Some(1)), ScalarValue::Binary(None)]).is_none());
    }

    #[test]
    fn values_reach_only_what_runs_inside_the_scope() {
        assert!(values_for("SELECT 1").is_none());
        let values = Value::all(&[ScalarValue::Int64(Some(1))]).unwrap();
        let (seen, sql) = with_values(values.clone(), || values_for("SELECT $1"));
        assert_eq!(seen.as_deref(), Some(&values[..]));
        assert_eq!(sql.as_deref(), Some("SELECT $1"));
        assert!(values_for("SELECT 1").is_none());
    }
}
