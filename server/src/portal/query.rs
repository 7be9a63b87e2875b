//! A page's SQL, run in the visitor's engine session by the one statement path
//! (prepare, bind, run: what a pgwire client's extended protocol does), so that the
//! policy, row filters, masks, disclosure control and the audit hold for pages as
//! they do for SQL. Values a page takes from its URL reach the SQL only as bound
//! parameters, never as text.

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Float64Type, Int32Type, Int64Type, TimeUnit};
use datafusion::common::{ParamValues, ScalarValue};
use futures::TryStreamExt;

use crate::engine::{Accept, Outcome, Session, SqlError, Transaction, code};

/// One value of an answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Text(String),
    Int(i64),
    Num(f64),
    Bool(bool),
    Time(DateTime<Utc>),
}

impl Value {
    pub fn text(&self) -> Option<&str> {
        match self {
            Value::Text(t) => Some(t),
            _ => None,
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Num(n) if n.is_finite() => Some(*n),
            _ => None,
        }
    }

    /// The value as plain text, as a CSV file or JSON string carries it (NULL empty).
    pub fn plain(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Text(t) => t.clone(),
            Value::Int(i) => i.to_string(),
            Value::Num(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Time(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        }
    }
}

/// A query's answer: its columns and rows.
#[derive(Debug, Clone, Default)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

impl Table {
    /// The index of `column`.
    pub fn col(&self, column: &str) -> Option<usize> {
        self.columns.iter().position(|c| c == column)
    }

    /// `row`'s value of `column` (NULL when there is no such column).
    pub fn get<'a>(&self, row: &'a [Value], column: &str) -> &'a Value {
        static NULL: Value = Value::Null;
        self.col(column).and_then(|i| row.get(i)).unwrap_or(&NULL)
    }

    /// `row`'s text of `column`, if it is text.
    pub fn text<'a>(&self, row: &'a [Value], column: &str) -> Option<&'a str> {
        self.get(row, column).text()
    }
}

/// A parameter of a page's SQL.
#[derive(Debug, Clone)]
pub enum Param {
    Text(String),
}

/// Runs `sql` (one query, `$1…` bound to `params`) in `session`. The audit log
/// records it as any client's statement.
pub async fn run(session: &Session, sql: &str, params: &[Param]) -> Result<Table, SqlError> {
    let prepared = session
        .prepare(sql, Accept::Queries)
        .await?
        .ok_or_else(|| SqlError::syntax("a page's query is empty"))?;
    let values: Vec<ScalarValue> = params
        .iter()
        .map(|p| match p {
            Param::Text(t) => ScalarValue::Utf8(Some(t.clone())),
        })
        .collect();
    let outcome = session
        .run_prepared(&prepared, Transaction::Idle, |types| {
            if types.len() != values.len() {
                return Err(SqlError::new(
                    code::PROTOCOL_VIOLATION,
                    format!(
                        "a page's query takes {} parameters, {} given",
                        types.len(),
                        values.len()
                    ),
                ));
            }
            if values.is_empty() {
                return Ok(None);
            }
            Ok(Some(ParamValues::List(
                values.iter().cloned().map(Into::into).collect(),
            )))
        })
        .await?;
    let Outcome::Rows { stream, .. } = outcome else {
        return Err(SqlError::new(
            code::INTERNAL_ERROR,
            "a page's query returned no rows",
        ));
    };
    let schema = stream.schema();
    let batches: Vec<RecordBatch> = stream
        .try_collect()
        .await
        .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
    let mut table = Table {
        columns: schema.fields().iter().map(|f| f.name().clone()).collect(),
        rows: vec![],
    };
    for batch in &batches {
        let columns: Vec<&ArrayRef> = batch.columns().iter().collect();
        for i in 0..batch.num_rows() {
            table
                .rows
                .push(columns.iter().map(|c| value(c.as_ref(), i)).collect());
        }
    }
    Ok(table)
}

/// The value at `i` of `array`, for display.
fn value(array: &dyn Array, i: usize) -> Value {
    if array.is_null(i) {
        return Value::Null;
    }
    match array.data_type() {
        DataType::Utf8 => Value::Text(array.as_string::<i32>().value(i).to_string()),
        DataType::LargeUtf8 => Value::Text(array.as_string::<i64>().value(i).to_string()),
        DataType::Utf8View => Value::Text(array.as_string_view().value(i).to_string()),
        DataType::Int64 => Value::Int(array.as_primitive::<Int64Type>().value(i)),
        DataType::Int32 => Value::Int(array.as_primitive::<Int32Type>().value(i) as i64),
        DataType::Float64 => Value::Num(array.as_primitive::<Float64Type>().value(i)),
        DataType::Boolean => Value::Bool(array.as_boolean().value(i)),
        DataType::Timestamp(TimeUnit::Microsecond, _) => {
            let micros = array
                .as_primitive::<datafusion::arrow::datatypes::TimestampMicrosecondType>()
                .value(i);
            DateTime::from_timestamp_micros(micros).map_or(Value::Null, Value::Time)
        }
        _ => {
            // Other types (smaller integers, decimals, dates) as Arrow writes them.
            let options = datafusion::arrow::util::display::FormatOptions::default();
            match datafusion::arrow::util::display::ArrayFormatter::try_new(array, &options) {
                Ok(f) => {
                    let text = f.value(i).to_string();
                    match text.parse::<f64>() {
                        Ok(n) if array.data_type().is_numeric() => Value::Num(n),
                        _ => Value::Text(text),
                    }
                }
                Err(_) => Value::Null,
            }
        }
    }
}
