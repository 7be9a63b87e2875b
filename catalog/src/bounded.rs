//! Functions whose result can be far larger than their arguments, bounded.
//!
//! `repeat('x', 300000000)` is a dozen bytes of SQL and 300 MB of result, made
//! outside the query engine's memory pool (scalar functions allocate as they like,
//! and constant folding runs them while planning). Every function whose output size
//! is set by an argument's *value* rather than its size is wrapped here: before the
//! inner function runs, the size of its result is estimated from the arguments, and
//! a call that would make one value over [`MAX_VALUE_BYTES`] or one batch over
//! [`MAX_CALL_BYTES`] fails with 54000, as PostgreSQL's "requested length too large"
//! does. The wrapper keeps the function's name, signature and behaviour, so planning
//! and the SQL written for a federated source are unchanged.
//!
//! Concatenation (`concat`, `||`) is bounded too: its result is only the sum of its
//! arguments, but a recursive query that concatenates a value with itself doubles it
//! at every step.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, FieldRef, Int64Type, TimeUnit};
use datafusion::common::{Result, ScalarValue, exec_err};
use datafusion::error::DataFusionError;
use datafusion::execution::FunctionRegistry;
use datafusion::logical_expr::simplify::{ExprSimplifyResult, SimplifyContext};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, Expr, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF,
    ScalarUDFImpl, Signature,
};

/// The largest value one call may make (PostgreSQL's is 1 GB; ours is lower
/// because a server answers many users at once).
pub const MAX_VALUE_BYTES: u64 = 64 * 1024 * 1024;
/// The most one call may make over all the rows of a batch.
pub const MAX_CALL_BYTES: u64 = 256 * 1024 * 1024;

/// How a function's result size follows from its arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Growth {
    /// `repeat(text, n)`: the text n times.
    Repeat,
    /// `lpad(text, n [, fill])`, `rpad`: n characters.
    Pad,
    /// `replace(text, from, to)`: each match of `from` becomes `to`.
    Replace,
    /// `regexp_replace(text, pattern, replacement [, flags])`: a match may be empty,
    /// so at worst every position is replaced.
    RegexpReplace,
    /// `array_repeat(x, n)`, `array_resize(a, n [, fill])`: n elements.
    Elements,
    /// `range(start, stop [, step])`, `generate_series(…)` as scalar functions: the
    /// elements between start and stop.
    Series,
    /// `concat(…)`, `concat_ws(…)`, `||` of arrays: the sum of the arguments, which
    /// doubles at each step of a recursive query that concatenates a value with
    /// itself.
    Sum,
}

/// The functions bounded, by the name DataFusion registers them under.
const BOUNDED: &[(&str, Growth)] = &[
    ("repeat", Growth::Repeat),
    ("lpad", Growth::Pad),
    ("rpad", Growth::Pad),
    ("replace", Growth::Replace),
    ("regexp_replace", Growth::RegexpReplace),
    ("array_repeat", Growth::Elements),
    ("array_resize", Growth::Elements),
    ("range", Growth::Series),
    ("generate_series", Growth::Series),
    ("concat", Growth::Sum),
    ("concat_ws", Growth::Sum),
    ("array_concat", Growth::Sum),
    ("array_append", Growth::Sum),
    ("array_prepend", Growth::Sum),
];

/// The bounded forms of the registry's size-amplifying functions, to register in
/// their place.
pub fn functions(registry: &dyn FunctionRegistry) -> Vec<ScalarUDF> {
    BOUNDED
        .iter()
        .filter_map(|(name, growth)| {
            let inner = registry.udf(name).ok()?;
            Some(ScalarUDF::new_from_impl(Bounded {
                inner: inner.inner().clone(),
                growth: *growth,
            }))
        })
        .collect()
}

/// The bounded form of `udf`, if it is one of the functions bounded here and not
/// bounded yet. DataFusion builds some calls itself (`[1] || [2]` becomes
/// `array_concat` without asking the registry), so the engine's optimizer passes
/// every call through this.
pub fn bound(udf: &ScalarUDF) -> Option<ScalarUDF> {
    if udf.inner().as_ref().downcast_ref::<Bounded>().is_some() {
        return None;
    }
    let (_, growth) = BOUNDED.iter().find(|(name, _)| *name == udf.name())?;
    Some(ScalarUDF::new_from_impl(Bounded {
        inner: udf.inner().clone(),
        growth: *growth,
    }))
}

/// A function that refuses to make a result larger than the bounds.
#[derive(Debug)]
struct Bounded {
    inner: Arc<dyn ScalarUDFImpl>,
    growth: Growth,
}

impl PartialEq for Bounded {
    fn eq(&self, other: &Self) -> bool {
        self.growth == other.growth && self.inner.name() == other.inner.name()
    }
}

impl Eq for Bounded {}

impl std::hash::Hash for Bounded {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.inner.name().hash(state);
        self.growth.hash(state);
    }
}

impl ScalarUDFImpl for Bounded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn schema_name(&self, args: &[Expr]) -> Result<String> {
        self.inner.schema_name(args)
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn is_strict(&self) -> bool {
        self.inner.is_strict()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn simplify(&self, args: Vec<Expr>, info: &SimplifyContext) -> Result<ExprSimplifyResult> {
        // `concat` joins literal arguments while planning, without being invoked.
        if self.growth == Growth::Sum {
            let literal: u64 = args
                .iter()
                .map(|a| match a {
                    Expr::Literal(v, _) => scalar_len(v),
                    _ => 0,
                })
                .sum();
            if literal > MAX_VALUE_BYTES {
                return Err(too_large(
                    &format!("{}()", self.inner.name()),
                    literal,
                    literal,
                ));
            }
        }
        self.inner.simplify(args, info)
    }

    fn short_circuits(&self) -> bool {
        self.inner.short_circuits()
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (largest, total) = estimate(self.growth, &args.args, rows)?;
        if largest > MAX_VALUE_BYTES || total > MAX_CALL_BYTES {
            return Err(too_large(
                &format!("{}()", self.inner.name()),
                largest,
                total,
            ));
        }
        self.inner.invoke_with_args(args)
    }
}

fn too_large(name: &str, largest: u64, total: u64) -> DataFusionError {
    let mib = |b: u64| b.div_ceil(1024 * 1024);
    let message = if largest > MAX_VALUE_BYTES {
        format!(
            "requested length too large: {name} would make a value of {} MiB; one value may be at most {} MiB",
            mib(largest),
            mib(MAX_VALUE_BYTES)
        )
    } else {
        format!(
            "requested length too large: {name} would make {} MiB for one batch of rows; one call may make at most {} MiB",
            mib(total),
            mib(MAX_CALL_BYTES)
        )
    };
    // PostgreSQL's program_limit_exceeded, as its `repeat` reports it.
    DataFusionError::External(Box::new(crate::CatalogError::Value {
        code: "54000",
        message,
    }))
}

/// The largest value and the total bytes a call would make (upper bounds).
fn estimate(growth: Growth, args: &[ColumnarValue], rows: usize) -> Result<(u64, u64)> {
    let per_row: Box<dyn Fn(usize) -> u64> = match growth {
        Growth::Repeat => {
            let (text, n) = (lengths(args.first())?, ints(args.get(1))?);
            Box::new(move |i| text.at(i).saturating_mul(n.count(i)))
        }
        Growth::Pad => {
            // A character is at most 4 bytes in UTF-8.
            let n = ints(args.get(1))?;
            Box::new(move |i| n.count(i).saturating_mul(4))
        }
        Growth::Replace | Growth::RegexpReplace => {
            let text = lengths(args.first())?;
            let from = lengths(args.get(1))?;
            let to = lengths(args.get(2))?;
            let empty_matches = growth == Growth::RegexpReplace;
            Box::new(move |i| {
                let (t, f, r) = (text.at(i), from.at(i), to.at(i));
                let matches = if empty_matches || f == 0 {
                    t + 1
                } else {
                    t / f + 1
                };
                t.saturating_add(matches.saturating_mul(r))
            })
        }
        Growth::Elements => {
            let n = ints(args.get(1))?;
            Box::new(move |i| n.count(i).saturating_mul(16))
        }
        Growth::Sum => {
            let each = args
                .iter()
                .map(|a| lengths(Some(a)))
                .collect::<Result<Vec<_>>>()?;
            Box::new(move |i| each.iter().map(|l| l.at(i)).sum())
        }
        Growth::Series => {
            let (start, stop, step) = series_args(args)?;
            Box::new(move |i| {
                let (Some(a), Some(b)) = (start.value(i), stop.value(i)) else {
                    return 0;
                };
                let step = step.value(i).unwrap_or(1);
                if step == 0 {
                    return 0; // the function itself refuses a zero step
                }
                let span = (i128::from(b) - i128::from(a)) / i128::from(step);
                u64::try_from(span.max(0) + 1)
                    .unwrap_or(u64::MAX)
                    .saturating_mul(8)
            })
        }
    };
    let rows = if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) {
        1
    } else {
        rows
    };
    let (mut largest, mut total) = (0u64, 0u64);
    for i in 0..rows {
        let bytes = per_row(i);
        largest = largest.max(bytes);
        total = total.saturating_add(bytes);
        if total > MAX_CALL_BYTES {
            break;
        }
    }
    Ok((largest, total))
}

/// The `||` operator on text, bounded like the functions above: SQL's string
/// concatenation (NULL if either side is), checked before it allocates. DataFusion
/// evaluates `||` as an operator, which no function registry reaches, so the
/// engine's optimizer puts this function in its place (and back, in the SQL a
/// federated source receives).
pub fn string_concat() -> ScalarUDF {
    ScalarUDF::new_from_impl(StringConcat {
        signature: Signature::any(2, datafusion::logical_expr::Volatility::Immutable),
    })
}

/// The name [`string_concat`] is registered and shown under.
pub const STRING_CONCAT: &str = "amar_string_concat";

#[derive(Debug, PartialEq, Eq, Hash)]
struct StringConcat {
    signature: Signature,
}

/// Whether `||` of these types is text concatenation (not of lists or bytes).
pub fn is_text(t: &DataType) -> bool {
    matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
}

impl ScalarUDFImpl for StringConcat {
    fn name(&self) -> &str {
        STRING_CONCAT
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        Ok(if arg_types.contains(&DataType::Utf8View) {
            DataType::Utf8View
        } else if arg_types.contains(&DataType::LargeUtf8) {
            DataType::LargeUtf8
        } else {
            DataType::Utf8
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let (largest, total) = estimate(Growth::Sum, &args.args, rows)?;
        if largest > MAX_VALUE_BYTES || total > MAX_CALL_BYTES {
            return Err(too_large("the || operator", largest, total));
        }
        let to = args.return_field.data_type().clone();
        let [left, right] = args.args.as_slice() else {
            return exec_err!("|| takes two operands");
        };
        if let (ColumnarValue::Scalar(l), ColumnarValue::Scalar(r)) = (left, right) {
            let text = |v: &ScalarValue| match v {
                ScalarValue::Utf8(s) | ScalarValue::LargeUtf8(s) | ScalarValue::Utf8View(s) => {
                    s.clone()
                }
                _ => None,
            };
            let joined = match (text(l), text(r)) {
                (Some(a), Some(b)) => Some(a + &b),
                _ => None,
            };
            return Ok(ColumnarValue::Scalar(match to {
                DataType::Utf8View => ScalarValue::Utf8View(joined),
                DataType::LargeUtf8 => ScalarValue::LargeUtf8(joined),
                _ => ScalarValue::Utf8(joined),
            }));
        }
        let left = cast(&left.to_array(rows)?, &to)?;
        let right = cast(&right.to_array(rows)?, &to)?;
        Ok(ColumnarValue::Array(
            datafusion::arrow::compute::kernels::concat_elements::concat_elements_dyn(
                &left, &right,
            )?,
        ))
    }
}

/// Per-row byte lengths of a text argument (0 where NULL or absent).
enum Lengths {
    Each(Vec<u64>),
    All(u64),
}

impl Lengths {
    fn at(&self, i: usize) -> u64 {
        match self {
            Lengths::Each(v) => v.get(i).copied().unwrap_or(0),
            Lengths::All(n) => *n,
        }
    }
}

fn lengths(arg: Option<&ColumnarValue>) -> Result<Lengths> {
    Ok(match arg {
        None => Lengths::All(0),
        Some(ColumnarValue::Scalar(s)) => Lengths::All(scalar_len(s)),
        Some(ColumnarValue::Array(a)) => Lengths::Each(array_lengths(a)),
    })
}

/// The bytes of one value (text and bytes exactly, others as they are held).
fn scalar_len(s: &ScalarValue) -> u64 {
    match s {
        ScalarValue::Utf8(Some(t))
        | ScalarValue::LargeUtf8(Some(t))
        | ScalarValue::Utf8View(Some(t)) => t.len() as u64,
        ScalarValue::Binary(Some(b))
        | ScalarValue::LargeBinary(Some(b))
        | ScalarValue::BinaryView(Some(b)) => b.len() as u64,
        other => other.size() as u64,
    }
}

fn array_lengths(a: &ArrayRef) -> Vec<u64> {
    let len = |valid: bool, n: usize| if valid { n as u64 } else { 0 };
    match a.data_type() {
        DataType::Utf8 => {
            let s = a.as_string::<i32>();
            (0..s.len())
                .map(|i| len(s.is_valid(i), s.value(i).len()))
                .collect()
        }
        DataType::LargeUtf8 => {
            let s = a.as_string::<i64>();
            (0..s.len())
                .map(|i| len(s.is_valid(i), s.value(i).len()))
                .collect()
        }
        DataType::Utf8View => {
            let s = a.as_string_view();
            (0..s.len())
                .map(|i| len(s.is_valid(i), s.value(i).len()))
                .collect()
        }
        // Other types: as wide as their widest value could be.
        _ => {
            let width = (a.get_array_memory_size() / a.len().max(1)) as u64;
            vec![width; a.len()]
        }
    }
}

/// Per-row integer values of an argument; non-integers count as absent.
enum Ints {
    Each(Vec<Option<i64>>),
    All(Option<i64>),
}

impl Ints {
    fn value(&self, i: usize) -> Option<i64> {
        match self {
            Ints::Each(v) => v.get(i).copied().flatten(),
            Ints::All(n) => *n,
        }
    }

    /// A count (negative and NULL are none).
    fn count(&self, i: usize) -> u64 {
        self.value(i).map_or(0, |n| n.max(0) as u64)
    }
}

fn ints(arg: Option<&ColumnarValue>) -> Result<Ints> {
    Ok(match arg {
        None => Ints::All(None),
        Some(ColumnarValue::Scalar(s)) => Ints::All(scalar_i64(s)),
        Some(ColumnarValue::Array(a)) => Ints::Each(array_i64(a)?),
    })
}

fn scalar_i64(s: &ScalarValue) -> Option<i64> {
    if let ScalarValue::IntervalMonthDayNano(Some(v)) = s {
        return Some(interval_nanos(v.months, v.days, v.nanoseconds));
    }
    let array = s.to_array_of_size(1).ok()?;
    array_i64(&array).ok()?.first().copied().flatten()
}

fn array_i64(a: &ArrayRef) -> Result<Vec<Option<i64>>> {
    let as_i64 = match a.data_type() {
        DataType::Date32 | DataType::Date64 | DataType::Timestamp(..) => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Nanosecond, None))?,
            &DataType::Int64,
        )?,
        DataType::Interval(_) => {
            let v = cast(
                a,
                &DataType::Interval(datafusion::arrow::datatypes::IntervalUnit::MonthDayNano),
            )?;
            let v = v.as_primitive::<datafusion::arrow::datatypes::IntervalMonthDayNanoType>();
            return Ok((0..v.len())
                .map(|i| {
                    v.is_valid(i).then(|| {
                        let x = v.value(i);
                        interval_nanos(x.months, x.days, x.nanoseconds)
                    })
                })
                .collect());
        }
        t if t.is_integer() => cast(a, &DataType::Int64)?,
        _ => return Ok(vec![None; a.len()]),
    };
    let v = as_i64.as_primitive::<Int64Type>();
    Ok((0..v.len())
        .map(|i| v.is_valid(i).then(|| v.value(i)))
        .collect())
}

/// An interval's length in nanoseconds, a month taken as its shortest (28 days), so
/// that the count of steps is never under-estimated.
fn interval_nanos(months: i32, days: i32, nanos: i64) -> i64 {
    const DAY: i64 = 86_400_000_000_000;
    i64::from(months)
        .saturating_mul(28 * DAY)
        .saturating_add(i64::from(days).saturating_mul(DAY))
        .saturating_add(nanos)
}

/// `range(stop)`, `range(start, stop)`, `range(start, stop, step)`, with dates and
/// timestamps as nanoseconds (their steps are intervals, also in nanoseconds).
fn series_args(args: &[ColumnarValue]) -> Result<(Ints, Ints, Ints)> {
    match args.len() {
        1 => Ok((Ints::All(Some(0)), ints(args.first())?, Ints::All(Some(1)))),
        2 => Ok((ints(args.first())?, ints(args.get(1))?, Ints::All(Some(1)))),
        3 => Ok((ints(args.first())?, ints(args.get(1))?, ints(args.get(2))?)),
        n => exec_err!("range takes 1 to 3 arguments, not {n}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::SessionContext;

    async fn run(ctx: &SessionContext, sql: &str) -> Result<usize> {
        let batches = ctx.sql(sql).await?.collect().await?;
        Ok(batches.iter().map(|b| b.num_rows()).sum())
    }

    fn bounded_context() -> SessionContext {
        let ctx = SessionContext::new();
        for f in functions(&ctx.state()) {
            ctx.register_udf(f);
        }
        ctx.register_udf(string_concat());
        ctx
    }

    #[tokio::test]
    async fn amplifying_calls_over_the_bound_are_refused_before_they_allocate() {
        let ctx = bounded_context();
        for sql in [
            "SELECT repeat('x', 300000000)",
            "SELECT lpad('x', 100000000)",
            "SELECT rpad('x', 100000000, 'ab')",
            "SELECT replace(repeat('a', 1000000), 'a', repeat('b', 100))",
            "SELECT regexp_replace(repeat('a', 100000), '', repeat('b', 1000), 'g')",
            "SELECT array_repeat(1, 100000000)",
            "SELECT range(1, 1000000000)",
            "SELECT generate_series(1, 1000000000, 2)",
            "SELECT range(DATE '1970-01-01', DATE '2100-01-01', INTERVAL '1 second')",
            "SELECT repeat('x', n) FROM (VALUES (1), (60000000), (60000000), (60000000), (60000000), (60000000)) AS t(n)",
            "SELECT concat(repeat('x', 40000000), repeat('y', 40000000))",
            "SELECT amar_string_concat(repeat('x', 40000000), repeat('y', 40000000))",
        ] {
            let e = run(&ctx, sql).await.unwrap_err().to_string();
            assert!(e.contains("requested length too large"), "{sql}: {e}");
        }
    }

    #[tokio::test]
    async fn ordinary_calls_answer_as_before() {
        let ctx = bounded_context();
        for sql in [
            "SELECT repeat('ab', 3) = 'ababab'",
            "SELECT lpad('7', 3, '0') = '007'",
            "SELECT replace('a-b', '-', '+') = 'a+b'",
            "SELECT regexp_replace('aaa', 'a', 'b', 'g') = 'bbb'",
            "SELECT cardinality(range(1, 100000)) = 99999",
            "SELECT cardinality(generate_series(DATE '2024-01-01', DATE '2024-12-31', INTERVAL '1 day')) = 366",
            "SELECT repeat('x', NULL) IS NULL",
            "SELECT concat('a', NULL, 'b') = 'ab'",
            "SELECT amar_string_concat('a', 'b') = 'ab'",
            "SELECT amar_string_concat('a', NULL) IS NULL",
            "SELECT amar_string_concat(x, 'b') = 'ab' FROM (VALUES ('a')) AS t(x)",
            "SELECT cardinality(array_concat([1, 2], [3])) = 3",
        ] {
            let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
            let value = batches[0].column(0).as_boolean().value(0);
            assert!(value, "{sql}");
        }
    }
}
