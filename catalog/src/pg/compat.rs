//! PostgreSQL functions BI tools and drivers call on connect and on their first
//! screens, which DataFusion and datafusion-pg-catalog lack: settings as functions
//! (`current_setting`, and `pg_settings` for the session), server facts
//! (`pg_is_in_recovery`, `txid_current`, `pg_postmaster_start_time`,
//! `inet_server_addr`), JSON construction (`json_build_object` and friends),
//! `quote_literal`, `pg_typeof`, and the escape-character translation that lets
//! `LIKE … ESCAPE '/'` run on DataFusion's backslash-only LIKE.

use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{ScalarValue, exec_err};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility, create_udf,
};

/// A session's run-time parameters, as `SHOW` sees them.
pub trait SettingsCatalog: Send + Sync {
    /// (name, setting, description) of every parameter, in `SHOW ALL`'s order.
    fn list(&self) -> Vec<(String, String, String)>;
    /// One parameter's value; `None` for a name the server does not know.
    fn get(&self, name: &str) -> Option<String>;
}

/// The settings of the session a query runs in, as a DataFusion config extension.
#[derive(Clone)]
pub struct SessionSettings(pub Arc<dyn SettingsCatalog>);

fn text_of(value: &ColumnarValue, row: usize) -> Result<Option<String>> {
    Ok(match value {
        ColumnarValue::Scalar(s) => match s {
            ScalarValue::Utf8(v) | ScalarValue::LargeUtf8(v) | ScalarValue::Utf8View(v) => {
                v.clone()
            }
            ScalarValue::Null => None,
            other => Some(other.to_string()),
        },
        ColumnarValue::Array(a) => {
            if a.is_null(row) {
                None
            } else {
                match a.data_type() {
                    DataType::Utf8 => Some(a.as_string::<i32>().value(row).to_string()),
                    DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row).to_string()),
                    DataType::Utf8View => Some(a.as_string_view().value(row).to_string()),
                    _ => Some(ScalarValue::try_from_array(a, row)?.to_string()),
                }
            }
        }
    })
}

fn rows_of(args: &[ColumnarValue], number_rows: usize) -> usize {
    if args.iter().any(|a| matches!(a, ColumnarValue::Array(_))) {
        number_rows
    } else {
        1
    }
}

fn text_result(args: &[ColumnarValue], values: Vec<Option<String>>) -> ColumnarValue {
    if args.iter().all(|a| matches!(a, ColumnarValue::Scalar(_))) && values.len() == 1 {
        return ColumnarValue::Scalar(ScalarValue::Utf8(values.into_iter().next().flatten()));
    }
    let mut out = StringBuilder::new();
    for v in values {
        out.append_option(v);
    }
    ColumnarValue::Array(Arc::new(out.finish()) as ArrayRef)
}

/// `current_setting(name [, missing_ok])`: a parameter's value as `SHOW` gives it;
/// an unknown name is an error (42704) unless `missing_ok`, then NULL.
#[derive(Debug)]
struct CurrentSetting {
    signature: Signature,
    settings: SettingsHandle,
}

#[derive(Clone)]
struct SettingsHandle(Arc<dyn SettingsCatalog>);

impl std::fmt::Debug for SettingsHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SettingsHandle")
    }
}

impl PartialEq for CurrentSetting {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.settings.0, &other.settings.0)
    }
}

impl Eq for CurrentSetting {}

impl Hash for CurrentSetting {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "current_setting".hash(state);
    }
}

impl ScalarUDFImpl for CurrentSetting {
    fn name(&self) -> &str {
        "current_setting"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = rows_of(&args.args, args.number_rows);
        let mut values = Vec::with_capacity(rows);
        for row in 0..rows {
            let Some(name) = text_of(&args.args[0], row)? else {
                values.push(None);
                continue;
            };
            let missing_ok = match args.args.get(1) {
                Some(v) => text_of(v, row)?.is_some_and(|b| b == "true"),
                None => false,
            };
            match self.settings.0.get(&name) {
                Some(v) => values.push(Some(v)),
                None if missing_ok => values.push(None),
                None => {
                    return Err(DataFusionError::External(Box::new(
                        crate::CatalogError::Value {
                            code: "42704",
                            message: format!("unrecognized configuration parameter \"{name}\""),
                        },
                    )));
                }
            }
        }
        Ok(text_result(&args.args, values))
    }
}

/// The functions that read one session's settings, registered in each session.
pub fn settings_functions(settings: Arc<dyn SettingsCatalog>) -> Vec<ScalarUDF> {
    use DataType::{Boolean, Utf8};
    vec![ScalarUDF::new_from_impl(CurrentSetting {
        signature: Signature::one_of(
            vec![
                TypeSignature::Exact(vec![Utf8]),
                TypeSignature::Exact(vec![Utf8, Boolean]),
            ],
            Volatility::Stable,
        ),
        settings: SettingsHandle(settings),
    })]
}

/// A number per call of `txid_current()`: Amar writes nothing, so its "transactions"
/// only need to be distinct and increasing, as clients that log them expect.
static NEXT_TXID: AtomicI64 = AtomicI64::new(1_000);

/// Facts about the server: recovery, transaction ids, start time, listen address.
/// `listen` is the address of the PostgreSQL front end, `None` when unknown or a
/// wildcard (PostgreSQL, too, answers NULL where there is no address to give).
pub fn server_functions(
    started: std::time::SystemTime,
    listen: Option<std::net::SocketAddr>,
) -> Vec<ScalarUDF> {
    let started_us = started
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0);
    let listen = listen.filter(|a| !a.ip().is_unspecified());
    let ip = listen.map(|a| a.ip().to_string());
    let port = listen.map(|a| a.port() as i32);
    vec![
        create_udf(
            "pg_is_in_recovery",
            vec![],
            DataType::Boolean,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(false))))),
        ),
        create_udf(
            "txid_current",
            vec![],
            DataType::Int64,
            Volatility::Volatile,
            Arc::new(|_| {
                Ok(ColumnarValue::Scalar(ScalarValue::Int64(Some(
                    NEXT_TXID.fetch_add(1, Ordering::Relaxed),
                ))))
            }),
        ),
        create_udf(
            "pg_postmaster_start_time",
            vec![],
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Volatility::Stable,
            Arc::new(move |_| {
                Ok(ColumnarValue::Scalar(ScalarValue::TimestampMicrosecond(
                    Some(started_us),
                    Some("UTC".into()),
                )))
            }),
        ),
        create_udf(
            "inet_server_addr",
            vec![],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(ip.clone())))),
        ),
        create_udf(
            "inet_server_port",
            vec![],
            DataType::Int32,
            Volatility::Stable,
            Arc::new(move |_| Ok(ColumnarValue::Scalar(ScalarValue::Int32(port)))),
        ),
        // Amar has no sequences: no column is serial (PostgreSQL's answer for a
        // column that is not).
        create_udf(
            "pg_get_serial_sequence",
            vec![DataType::Utf8, DataType::Utf8],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(|_| Ok(ColumnarValue::Scalar(ScalarValue::Utf8(None)))),
        ),
    ]
}

/// A function of any arguments returning text, computed row by row from the
/// arguments' scalar values.
struct RowText {
    name: &'static str,
    signature: Signature,
    compute: fn(&[ScalarValue], &[DataType]) -> Result<Option<String>>,
}

impl std::fmt::Debug for RowText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowText").field("name", &self.name).finish()
    }
}

impl PartialEq for RowText {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for RowText {}

impl Hash for RowText {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for RowText {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = rows_of(&args.args, args.number_rows);
        let types: Vec<DataType> = args
            .arg_fields
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let mut values = Vec::with_capacity(rows);
        let mut row_values = Vec::with_capacity(args.args.len());
        for row in 0..rows {
            row_values.clear();
            for a in &args.args {
                row_values.push(match a {
                    ColumnarValue::Scalar(s) => s.clone(),
                    ColumnarValue::Array(arr) => ScalarValue::try_from_array(arr, row)?,
                });
            }
            values.push((self.compute)(&row_values, &types)?);
        }
        Ok(text_result(&args.args, values))
    }
}

fn row_text(
    name: &'static str,
    signature: Signature,
    compute: fn(&[ScalarValue], &[DataType]) -> Result<Option<String>>,
) -> ScalarUDF {
    ScalarUDF::new_from_impl(RowText {
        name,
        signature,
        compute,
    })
}

/// Writes `s` as a JSON string.
fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Writes a value as PostgreSQL's `to_json` does: numbers and booleans bare, text
/// quoted, dates and times in ISO 8601, arrays as arrays, records as objects.
fn json_value(out: &mut String, v: &ScalarValue) -> Result<()> {
    if v.is_null() {
        out.push_str("null");
        return Ok(());
    }
    match v {
        ScalarValue::Boolean(Some(b)) => out.push_str(if *b { "true" } else { "false" }),
        ScalarValue::Int8(_)
        | ScalarValue::Int16(_)
        | ScalarValue::Int32(_)
        | ScalarValue::Int64(_)
        | ScalarValue::UInt8(_)
        | ScalarValue::UInt16(_)
        | ScalarValue::UInt32(_)
        | ScalarValue::UInt64(_)
        | ScalarValue::Decimal128(..)
        | ScalarValue::Decimal256(..) => out.push_str(&v.to_string()),
        ScalarValue::Float32(Some(f)) if f.is_finite() => out.push_str(&v.to_string()),
        ScalarValue::Float64(Some(f)) if f.is_finite() => out.push_str(&v.to_string()),
        ScalarValue::Float32(_) | ScalarValue::Float64(_) => json_string(out, &v.to_string()),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => json_string(out, s),
        ScalarValue::TimestampSecond(..)
        | ScalarValue::TimestampMillisecond(..)
        | ScalarValue::TimestampMicrosecond(..)
        | ScalarValue::TimestampNanosecond(..) => {
            // ScalarValue prints `2024-03-20T10:00:00` (and an offset when zoned).
            json_string(out, &v.to_string())
        }
        ScalarValue::List(list) => {
            let values = list.value(0);
            json_array(out, &values)?;
        }
        ScalarValue::LargeList(list) => json_array(out, &list.value(0))?,
        ScalarValue::FixedSizeList(list) => json_array(out, &list.value(0))?,
        ScalarValue::Struct(s) => {
            out.push('{');
            for (i, (field, column)) in s.fields().iter().zip(s.columns()).enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(out, field.name());
                out.push(':');
                json_value(out, &ScalarValue::try_from_array(column, 0)?)?;
            }
            out.push('}');
        }
        other => json_string(out, &other.to_string()),
    }
    Ok(())
}

fn json_array(out: &mut String, values: &ArrayRef) -> Result<()> {
    out.push('[');
    for i in 0..values.len() {
        if i > 0 {
            out.push(',');
        }
        json_value(out, &ScalarValue::try_from_array(values, i)?)?;
    }
    out.push(']');
    Ok(())
}

fn json_build_object(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    if !args.len().is_multiple_of(2) {
        return exec_err!("argument list must have even number of elements");
    }
    let mut out = String::from("{");
    for (i, pair) in args.chunks(2).enumerate() {
        if pair[0].is_null() {
            return exec_err!("null value not allowed for object key");
        }
        if i > 0 {
            out.push(',');
        }
        let key = match &pair[0] {
            ScalarValue::Utf8(Some(s))
            | ScalarValue::LargeUtf8(Some(s))
            | ScalarValue::Utf8View(Some(s)) => s.clone(),
            other => other.to_string(),
        };
        json_string(&mut out, &key);
        out.push(':');
        json_value(&mut out, &pair[1])?;
    }
    out.push('}');
    Ok(Some(out))
}

fn json_build_array(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    let mut out = String::from("[");
    for (i, v) in args.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        json_value(&mut out, v)?;
    }
    out.push(']');
    Ok(Some(out))
}

fn to_json(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    if args[0].is_null() {
        return Ok(None);
    }
    let mut out = String::new();
    json_value(&mut out, &args[0])?;
    Ok(Some(out))
}

/// PostgreSQL's `quote_literal`: `'it''s'`, with `E'…'` when a backslash is inside.
pub fn quote_literal_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    if s.contains('\\') {
        out.push('E');
    }
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

fn literal_text(v: &ScalarValue) -> Option<String> {
    match v {
        _ if v.is_null() => None,
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

fn quote_literal(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    Ok(literal_text(&args[0]).map(|s| quote_literal_text(&s)))
}

fn quote_nullable(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    Ok(Some(
        literal_text(&args[0])
            .map(|s| quote_literal_text(&s))
            .unwrap_or_else(|| "NULL".to_string()),
    ))
}

/// The PostgreSQL name of the type a value of `t` has over the wire.
pub fn postgres_type_name(t: &DataType) -> String {
    match t {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 | DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => "bigint".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double precision".into(),
        DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => "numeric".into(),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "bytea".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(_) | DataType::Time64(_) => "time without time zone".into(),
        DataType::Timestamp(_, None) => "timestamp without time zone".into(),
        DataType::Timestamp(_, Some(_)) => "timestamp with time zone".into(),
        DataType::Interval(_) | DataType::Duration(_) => "interval".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::FixedSizeList(f, _) => {
            format!("{}[]", postgres_type_name(f.data_type()))
        }
        DataType::Struct(_) => "record".into(),
        DataType::Dictionary(_, v) => postgres_type_name(v),
        _ => "unknown".into(),
    }
}

fn pg_typeof(_: &[ScalarValue], types: &[DataType]) -> Result<Option<String>> {
    Ok(Some(postgres_type_name(&types[0])))
}

/// `amar_like_escape(pattern, escape)`: a LIKE pattern written with another escape
/// character (`'pg/_%' ESCAPE '/'`, as SQLAlchemy 2.1 writes it), rewritten for
/// the backslash, the only escape DataFusion's LIKE takes. An empty escape means
/// none: every backslash becomes a literal one.
pub fn translate_like_pattern(pattern: &str, escape: &str) -> Result<String> {
    let mut esc = escape.chars();
    let escape_char = match (esc.next(), esc.next()) {
        (None, _) => None,
        (Some(c), None) => Some(c),
        _ => {
            return Err(DataFusionError::Execution(
                "invalid escape string: Escape string must be empty or one character.".into(),
            ));
        }
    };
    let mut out = String::with_capacity(pattern.len() + 4);
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        if Some(c) == escape_char {
            match chars.next() {
                Some(next) => {
                    out.push('\\');
                    out.push(next);
                }
                None => {
                    return Err(DataFusionError::Execution(
                        "LIKE pattern must not end with escape character".into(),
                    ));
                }
            }
        } else if c == '\\' {
            out.push_str("\\\\");
        } else {
            out.push(c);
        }
    }
    Ok(out)
}

fn like_escape(args: &[ScalarValue], _: &[DataType]) -> Result<Option<String>> {
    match (literal_text(&args[0]), literal_text(&args[1])) {
        (Some(p), Some(e)) => translate_like_pattern(&p, &e).map(Some),
        _ => Ok(None),
    }
}

/// The name Amar's rewrite gives the escape translation.
pub const LIKE_ESCAPE_FUNCTION: &str = "amar_like_escape";

/// The functions of this module that need nothing from the session.
pub fn functions() -> Vec<ScalarUDF> {
    let one = |volatility| Signature::any(1, volatility);
    let mut all = vec![];
    type Build = fn(&[ScalarValue], &[DataType]) -> Result<Option<String>>;
    let builders: [(&'static str, Build); 4] = [
        ("json_build_object", json_build_object),
        ("jsonb_build_object", json_build_object),
        ("json_build_array", json_build_array),
        ("jsonb_build_array", json_build_array),
    ];
    for (name, build) in builders {
        all.push(row_text(
            name,
            Signature::one_of(
                vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                Volatility::Immutable,
            ),
            build,
        ));
    }
    for name in ["to_json", "to_jsonb"] {
        all.push(row_text(name, one(Volatility::Immutable), to_json));
    }
    all.push(row_text(
        "quote_literal",
        one(Volatility::Immutable),
        quote_literal,
    ));
    all.push(row_text(
        "quote_nullable",
        one(Volatility::Immutable),
        quote_nullable,
    ));
    all.push(row_text("pg_typeof", one(Volatility::Immutable), pg_typeof));
    all.push(parse_ident());
    all.push(pg_encoding_to_char());
    all.push(row_text(
        LIKE_ESCAPE_FUNCTION,
        Signature::uniform(2, vec![DataType::Utf8], Volatility::Immutable),
        like_escape,
    ));
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_move_to_the_backslash() {
        assert_eq!(translate_like_pattern("pg/_%", "/").unwrap(), "pg\\_%");
        assert_eq!(translate_like_pattern("a//b", "/").unwrap(), "a\\/b");
        assert_eq!(translate_like_pattern("a\\b", "/").unwrap(), "a\\\\b");
        assert_eq!(translate_like_pattern("a\\b_", "").unwrap(), "a\\\\b_");
        assert!(translate_like_pattern("ab/", "/").is_err());
        assert!(translate_like_pattern("ab", "//").is_err());
    }

    #[test]
    fn json_is_built_as_postgres_builds_it() {
        let v = |s: &str| ScalarValue::Utf8(Some(s.into()));
        let obj = json_build_object(
            &[
                v("a"),
                ScalarValue::Int64(Some(1)),
                v("b"),
                v("x\"y"),
                v("c"),
                ScalarValue::Null,
            ],
            &[],
        )
        .unwrap()
        .unwrap();
        assert_eq!(obj, r#"{"a":1,"b":"x\"y","c":null}"#);
        assert!(json_build_object(&[v("a")], &[]).is_err());
        assert!(json_build_object(&[ScalarValue::Utf8(None), v("x")], &[]).is_err());
        assert_eq!(
            json_build_array(&[ScalarValue::Boolean(Some(true)), v("تهران")], &[])
                .unwrap()
                .unwrap(),
            r#"[true,"تهران"]"#
        );
        assert_eq!(
            to_json(&[ScalarValue::Float64(Some(f64::NAN))], &[])
                .unwrap()
                .unwrap(),
            r#""NaN""#
        );
    }

    #[test]
    fn literals_are_quoted_as_postgres_quotes_them() {
        assert_eq!(quote_literal_text("it's"), "'it''s'");
        assert_eq!(quote_literal_text("a\\b"), "E'a\\\\b'");
    }
}

/// `pg_settings`: the asking session's parameters, with the values `SHOW` gives
/// (the crate's view lists one constant row).
#[derive(Debug)]
pub struct PgSettings {
    pub schema: datafusion::arrow::datatypes::SchemaRef,
}

#[async_trait::async_trait]
impl crate::computed::CatalogRows for PgSettings {
    fn schema(&self) -> datafusion::arrow::datatypes::SchemaRef {
        self.schema.clone()
    }

    async fn rows(
        &self,
        state: &dyn datafusion::catalog::Session,
    ) -> Result<datafusion::arrow::record_batch::RecordBatch> {
        let settings = state
            .config()
            .get_extension::<SessionSettings>()
            .map(|s| s.0.list())
            .unwrap_or_default();
        let columns = self
            .schema
            .fields()
            .iter()
            .map(|field| -> Result<ArrayRef> {
                let value = |(name, setting, description): &(String, String, String)| match field
                    .name()
                    .as_str()
                {
                    "name" => Some(name.clone()),
                    "setting" | "reset_val" | "boot_val" => Some(setting.clone()),
                    "short_desc" => Some(description.clone()),
                    "category" => Some("Client Connection Defaults".to_string()),
                    "context" => Some("user".to_string()),
                    "vartype" => Some("string".to_string()),
                    "source" => Some("session".to_string()),
                    _ => None,
                };
                match field.data_type() {
                    DataType::Utf8 => {
                        let mut b = StringBuilder::new();
                        for row in &settings {
                            b.append_option(value(row));
                        }
                        Ok(Arc::new(b.finish()))
                    }
                    other => Ok(datafusion::arrow::array::new_null_array(
                        other,
                        settings.len(),
                    )),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(datafusion::arrow::record_batch::RecordBatch::try_new(
            self.schema.clone(),
            columns,
        )?)
    }
}

/// `pg_get_function_result(oid)` and `pg_get_function_arguments(oid)` (psql's
/// `\df`), from `pg_proc`: (result, arguments) by the function's OID.
pub async fn function_signatures(
    ctx: &datafusion::prelude::SessionContext,
) -> Result<std::collections::HashMap<i64, (String, String)>> {
    use std::collections::HashMap;
    let text = |a: &ArrayRef, i: usize| -> Result<Option<String>> {
        Ok(if a.is_null(i) {
            None
        } else {
            Some(ScalarValue::try_from_array(a, i)?.to_string())
        })
    };
    let mut types: HashMap<String, String> = HashMap::new();
    for batch in ctx
        .sql("SELECT CAST(oid AS BIGINT), format_type(oid, NULL) FROM pg_catalog.pg_type")
        .await?
        .collect()
        .await?
    {
        for i in 0..batch.num_rows() {
            if let (Some(oid), Some(name)) = (text(batch.column(0), i)?, text(batch.column(1), i)?)
            {
                types.insert(oid, name);
            }
        }
    }
    let mut out = HashMap::new();
    for batch in ctx
        .sql(
            "SELECT CAST(oid AS BIGINT), CAST(prorettype AS BIGINT), CAST(proargtypes AS TEXT), proretset FROM pg_catalog.pg_proc",
        )
        .await?
        .collect()
        .await?
    {
        for i in 0..batch.num_rows() {
            let (Some(oid), Some(ret)) = (text(batch.column(0), i)?, text(batch.column(1), i)?)
            else {
                continue;
            };
            let Ok(oid) = oid.parse::<i64>() else {
                continue;
            };
            let name = |t: &str| types.get(t).cloned().unwrap_or_else(|| t.to_string());
            let mut result = name(&ret);
            if text(batch.column(3), i)?.as_deref() == Some("true") {
                result = format!("SETOF {result}");
            }
            let args = text(batch.column(2), i)?
                .unwrap_or_default()
                .split_whitespace()
                .map(name)
                .collect::<Vec<_>>()
                .join(", ");
            out.insert(oid, (result, args));
        }
    }
    Ok(out)
}

/// The functions over [`function_signatures`]; NULL for an OID that is no function.
pub fn signature_functions(
    signatures: std::collections::HashMap<i64, (String, String)>,
) -> Vec<ScalarUDF> {
    let signatures = Arc::new(signatures);
    let make = |name: &str, pick: fn(&(String, String)) -> String| {
        let signatures = signatures.clone();
        create_udf(
            name,
            vec![DataType::Int64],
            DataType::Utf8,
            Volatility::Stable,
            Arc::new(move |args: &[ColumnarValue]| {
                let rows = match &args[0] {
                    ColumnarValue::Array(a) => a.len(),
                    ColumnarValue::Scalar(_) => 1,
                };
                let mut values = Vec::with_capacity(rows);
                for row in 0..rows {
                    let oid = match &args[0] {
                        ColumnarValue::Scalar(ScalarValue::Int64(v)) => *v,
                        ColumnarValue::Array(a) if !a.is_null(row) => Some(
                            a.as_primitive::<datafusion::arrow::datatypes::Int64Type>()
                                .value(row),
                        ),
                        _ => None,
                    };
                    values.push(oid.and_then(|o| signatures.get(&o)).map(pick));
                }
                Ok(text_result(args, values))
            }),
        )
    };
    vec![
        make("pg_get_function_result", |s| s.0.clone()),
        make("pg_get_function_arguments", |s| s.1.clone()),
        make("pg_get_function_identity_arguments", |s| s.1.clone()),
    ]
}

/// PostgreSQL's `parse_ident`: the parts of a qualified name, unquoted parts folded
/// to lower case, quoted ones kept as written (`"SomeSchema".someTable` is
/// `{SomeSchema,sometable}`). `None` for text that is no qualified name.
pub fn parse_ident_parts(text: &str) -> Option<Vec<String>> {
    let mut parts = vec![];
    let mut chars = text.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
            if part.is_empty() {
                return None;
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' || c.is_whitespace() {
                    break;
                }
                if !(c.is_alphanumeric() || c == '_' || c == '$') {
                    return None;
                }
                part.extend(c.to_lowercase());
                chars.next();
            }
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(parts),
            Some('.') => continue,
            Some(_) => return None,
        }
    }
}

/// `parse_ident(text [, strict])` over [`parse_ident_parts`]; text that is no
/// qualified name is PostgreSQL's error (22023).
pub fn parse_ident() -> ScalarUDF {
    use datafusion::arrow::array::{ListBuilder, StringBuilder as Strings};
    create_udf(
        "parse_ident",
        vec![DataType::Utf8],
        DataType::List(Arc::new(
            datafusion::arrow::datatypes::Field::new_list_field(DataType::Utf8, true),
        )),
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let rows = match &args[0] {
                ColumnarValue::Array(a) => a.len(),
                ColumnarValue::Scalar(_) => 1,
            };
            let mut out = ListBuilder::new(Strings::new());
            for row in 0..rows {
                match text_of(&args[0], row)? {
                    None => out.append_null(),
                    Some(text) => {
                        let Some(parts) = parse_ident_parts(&text) else {
                            return Err(DataFusionError::External(Box::new(
                                crate::CatalogError::Value {
                                    code: "22023",
                                    message: format!(
                                        "string is not a valid identifier: \"{text}\""
                                    ),
                                },
                            )));
                        };
                        for p in parts {
                            out.values().append_value(p);
                        }
                        out.append(true);
                    }
                }
            }
            let array: ArrayRef = Arc::new(out.finish());
            Ok(match &args[0] {
                ColumnarValue::Scalar(_) => {
                    ColumnarValue::Scalar(ScalarValue::try_from_array(&array, 0)?)
                }
                ColumnarValue::Array(_) => ColumnarValue::Array(array),
            })
        }),
    )
}

#[cfg(test)]
mod parse_ident_tests {
    use super::parse_ident_parts;

    #[test]
    fn names_fold_as_postgres_folds_them() {
        let p = |s: &str| parse_ident_parts(s);
        assert_eq!(
            p("\"SomeSchema\".someTable"),
            Some(vec!["SomeSchema".into(), "sometable".into()])
        );
        assert_eq!(p(" a . \"b\"\"c\" "), Some(vec!["a".into(), "b\"c".into()]));
        assert_eq!(p("a..b"), None);
        assert_eq!(p("a b"), None);
        assert_eq!(p("\"unterminated"), None);
    }
}

/// `pg_encoding_to_char(int)`: PostgreSQL's name of an encoding number (psql's `\l`
/// shows it). Amar speaks UTF8 only; the crate's answer, `UTF-8`, is not a name
/// PostgreSQL uses.
pub fn pg_encoding_to_char() -> ScalarUDF {
    const NAMES: &[(i64, &str)] = &[(0, "SQL_ASCII"), (6, "UTF8")];
    create_udf(
        "pg_encoding_to_char",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let name = |v: Option<i64>| {
                v.map(|v| {
                    NAMES
                        .iter()
                        .find(|(n, _)| *n == v)
                        .map(|(_, name)| name.to_string())
                        .unwrap_or_default()
                })
            };
            Ok(match &args[0] {
                ColumnarValue::Scalar(s) => {
                    let v = match s.cast_to(&DataType::Int64)? {
                        ScalarValue::Int64(v) => v,
                        _ => None,
                    };
                    ColumnarValue::Scalar(ScalarValue::Utf8(name(v)))
                }
                ColumnarValue::Array(a) => {
                    let a = datafusion::arrow::compute::cast(a, &DataType::Int64)?;
                    let a = a.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    let mut out = StringBuilder::new();
                    for v in a.iter() {
                        out.append_option(name(v));
                    }
                    ColumnarValue::Array(Arc::new(out.finish()))
                }
            })
        }),
    )
}
