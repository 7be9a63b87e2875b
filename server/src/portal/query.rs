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

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::engine::{
    Accept, CHANGED_RESULT, Outcome, Prepared, Session, SqlError, Transaction, code,
};

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

/// The pages' statements, prepared once per user and kept, as a client's driver
/// keeps its prepared statements: a page's queries are the same few texts, and
/// planning them (parsing, the policy's rewriting) is most of what a page costs
/// beyond the queries' own work. A kept statement is planned again by the engine
/// when its plan goes out of date: a policy reloaded, a release, a source's tables
/// replaced, or a change to the users file (a user's roles or attributes, which
/// decide their row filters, are read from it again, and the policy's generation
/// moves with it).
///
/// A statement prepared in one portal session runs in another of the same user:
/// the audit, the user's standing, timeouts and cancelling are the running
/// session's, and the policy's decisions are the user's as they are now, whichever
/// session asks. What else a plan takes from the session that prepared it (the
/// settings, such as the time zone) is the same in every portal session, because
/// they all start alike ([`super::signin::session`]) and no page changes a setting.
#[derive(Default)]
pub struct Statements {
    kept: Mutex<HashMap<(String, String), Arc<Prepared>>>,
}

/// At most this many statements are kept (pages have a few dozen texts per user);
/// past it, all are dropped and prepared again as they are used.
const KEPT_STATEMENTS: usize = 4096;

impl Statements {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(String, String), Arc<Prepared>>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn key(session: &Session, sql: &str) -> (String, String) {
        (session.user.name.clone(), sql.to_string())
    }

    /// `sql` prepared in `session`: kept for its user from before (`true`), or
    /// prepared now and kept.
    async fn prepared(
        &self,
        session: &Session,
        sql: &str,
    ) -> Result<(Arc<Prepared>, bool), SqlError> {
        if let Some(prepared) = self.lock().get(&Self::key(session, sql)) {
            return Ok((prepared.clone(), true));
        }
        let prepared = Arc::new(
            session
                .prepare(sql, Accept::Queries)
                .await?
                .ok_or_else(|| SqlError::syntax("a page's query is empty"))?,
        );
        let mut kept = self.lock();
        if kept.len() >= KEPT_STATEMENTS {
            kept.clear();
        }
        kept.insert(Self::key(session, sql), prepared.clone());
        Ok((prepared, false))
    }

    fn forget(&self, session: &Session, sql: &str) {
        self.lock().remove(&Self::key(session, sql));
    }
}

/// Runs `sql` (one query, `$1…` bound to `params`) in `session`, prepared once for
/// its user ([`Statements`]). The audit log records each run as any client's
/// statement.
pub async fn run(
    session: &Session,
    statements: &Statements,
    sql: &str,
    params: &[Param],
) -> Result<Table, SqlError> {
    let (prepared, kept) = statements.prepared(session, sql).await?;
    match run_prepared(session, &prepared, params).await {
        // Planned again, its columns changed (a policy withdrew one): prepared anew,
        // as a driver does when PostgreSQL says so.
        Err(e) if kept && e.message == CHANGED_RESULT => {
            statements.forget(session, sql);
            let (prepared, _) = statements.prepared(session, sql).await?;
            run_prepared(session, &prepared, params).await
        }
        answer => answer,
    }
}

async fn run_prepared(
    session: &Session,
    prepared: &Prepared,
    params: &[Param],
) -> Result<Table, SqlError> {
    let values: Vec<ScalarValue> = params
        .iter()
        .map(|p| match p {
            Param::Text(t) => ScalarValue::Utf8(Some(t.clone())),
        })
        .collect();
    let outcome = session
        .run_prepared(prepared, Transaction::Idle, |types| {
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
