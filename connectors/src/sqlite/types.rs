//! SQLite declared column types to Arrow types, and SQLite values into Arrow builders.
//!
//! SQLite stores values by storage class, not by column type, so the declared type is a
//! promise the data may break. We map the declared type (SQLite's affinity rules plus
//! the common names departments use) and convert each value strictly: a value that does
//! not fit its column is an error naming the table and column, never a silent NULL or a
//! truncated number.
//!
//! | declared type                          | Arrow           | PostgreSQL |
//! |----------------------------------------|-----------------|------------|
//! | SMALLINT, INT2, TINYINT                | Int16           | int2       |
//! | INT4, MEDIUMINT                        | Int32           | int4       |
//! | INTEGER, INT, BIGINT, INT8, other *INT*| Int64           | int8       |
//! | REAL, DOUBLE, FLOAT, FLOAT8            | Float64         | float8     |
//! | FLOAT4                                 | Float32         | float4     |
//! | DECIMAL(p,s), NUMERIC(p,s)             | Decimal128(p,s) | numeric    |
//! | NUMERIC, DECIMAL without precision     | Decimal128(38,10)| numeric   |
//! | BOOLEAN, BOOL                          | Boolean         | bool       |
//! | DATE                                   | Date32          | date       |
//! | DATETIME, TIMESTAMP                    | Timestamp(µs)   | timestamp  |
//! | BLOB, no type                          | Binary / Utf8   | bytea/text |
//! | anything with CHAR, CLOB, TEXT         | Utf8            | text       |
//!
//! Dates are read from ISO-8601 text (`YYYY-MM-DD`) or Unix-day integers; timestamps
//! from ISO-8601 text or Unix-second integers.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BinaryBuilder, BooleanBuilder, Date32Builder, Decimal128Builder,
    Float32Builder, Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use rusqlite::types::ValueRef;

/// The Arrow type for a SQLite declared type.
pub fn arrow_type(declared: &str) -> DataType {
    let upper = declared.trim().to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or("").trim();
    match base {
        "SMALLINT" | "INT2" | "TINYINT" => DataType::Int16,
        "INT4" | "MEDIUMINT" => DataType::Int32,
        "FLOAT4" => DataType::Float32,
        "BOOLEAN" | "BOOL" => DataType::Boolean,
        "DATE" => DataType::Date32,
        "DATETIME" | "TIMESTAMP" => DataType::Timestamp(TimeUnit::Microsecond, None),
        "DECIMAL" | "NUMERIC" => decimal_type(&upper),
        _ if base.contains("INT") => DataType::Int64,
        _ if base.contains("CHAR") || base.contains("CLOB") || base.contains("TEXT") => {
            DataType::Utf8
        }
        "BLOB" => DataType::Binary,
        _ if base.contains("REAL") || base.contains("FLOA") || base.contains("DOUB") => {
            DataType::Float64
        }
        // No declared type, or one SQLite gives NUMERIC affinity we can't place: text
        // is the form every storage class converts to without loss.
        _ => DataType::Utf8,
    }
}

fn decimal_type(upper: &str) -> DataType {
    let args = upper
        .split_once('(')
        .and_then(|(_, rest)| rest.split_once(')'))
        .map(|(args, _)| args);
    let Some(args) = args else {
        return DataType::Decimal128(38, 10);
    };
    let mut parts = args.split(',').map(|p| p.trim().parse::<u8>());
    let precision = match parts.next() {
        Some(Ok(p)) if (1..=38).contains(&p) => p,
        _ => return DataType::Decimal128(38, 10),
    };
    let scale = match parts.next() {
        Some(Ok(s)) if s <= precision => s as i8,
        None => 0,
        _ => return DataType::Decimal128(38, 10),
    };
    DataType::Decimal128(precision, scale)
}

/// Builds one Arrow column from SQLite values.
pub enum ColumnBuilder {
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Decimal(Decimal128Builder, u8, i8),
    Boolean(BooleanBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    Utf8(StringBuilder),
    Binary(BinaryBuilder),
}

impl ColumnBuilder {
    pub fn new(data_type: &DataType, capacity: usize) -> Self {
        match data_type {
            DataType::Int16 => Self::Int16(Int16Builder::with_capacity(capacity)),
            DataType::Int32 => Self::Int32(Int32Builder::with_capacity(capacity)),
            DataType::Int64 => Self::Int64(Int64Builder::with_capacity(capacity)),
            DataType::Float32 => Self::Float32(Float32Builder::with_capacity(capacity)),
            DataType::Float64 => Self::Float64(Float64Builder::with_capacity(capacity)),
            DataType::Decimal128(p, s) => {
                Self::Decimal(Decimal128Builder::with_capacity(capacity), *p, *s)
            }
            DataType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(capacity)),
            DataType::Date32 => Self::Date(Date32Builder::with_capacity(capacity)),
            DataType::Timestamp(_, _) => {
                Self::Timestamp(TimestampMicrosecondBuilder::with_capacity(capacity))
            }
            DataType::Binary => Self::Binary(BinaryBuilder::with_capacity(capacity, 0)),
            _ => Self::Utf8(StringBuilder::with_capacity(capacity, capacity * 8)),
        }
    }

    /// Appends one value; the error says what the value was and why it does not fit.
    pub fn append(&mut self, value: ValueRef<'_>) -> Result<(), String> {
        if let ValueRef::Null = value {
            self.append_null();
            return Ok(());
        }
        match self {
            Self::Int16(b) => b.append_value(
                i16::try_from(integer(value)?).map_err(|_| out_of_range(value, "smallint"))?,
            ),
            Self::Int32(b) => b.append_value(
                i32::try_from(integer(value)?).map_err(|_| out_of_range(value, "integer"))?,
            ),
            Self::Int64(b) => b.append_value(integer(value)?),
            Self::Float32(b) => b.append_value(float(value)? as f32),
            Self::Float64(b) => b.append_value(float(value)?),
            Self::Decimal(b, p, s) => b.append_value(decimal(value, *p, *s)?),
            Self::Boolean(b) => b.append_value(boolean(value)?),
            Self::Date(b) => b.append_value(date(value)?),
            Self::Timestamp(b) => b.append_value(timestamp(value)?),
            Self::Utf8(b) => match value {
                ValueRef::Text(t) => b.append_value(
                    std::str::from_utf8(t)
                        .map_err(|_| "the text is not valid UTF-8".to_string())?,
                ),
                ValueRef::Integer(i) => b.append_value(i.to_string()),
                ValueRef::Real(f) => b.append_value(f.to_string()),
                ValueRef::Blob(_) => return Err("a BLOB value in a text column".to_string()),
                ValueRef::Null => b.append_null(),
            },
            Self::Binary(b) => match value {
                ValueRef::Blob(bytes) | ValueRef::Text(bytes) => b.append_value(bytes),
                other => return Err(format!("{} in a BLOB column", describe(other))),
            },
        }
        Ok(())
    }

    fn append_null(&mut self) {
        match self {
            Self::Int16(b) => b.append_null(),
            Self::Int32(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float32(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Decimal(b, _, _) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
            Self::Date(b) => b.append_null(),
            Self::Timestamp(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::Binary(b) => b.append_null(),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Self::Int16(b) => Arc::new(b.finish()),
            Self::Int32(b) => Arc::new(b.finish()),
            Self::Int64(b) => Arc::new(b.finish()),
            Self::Float32(b) => Arc::new(b.finish()),
            Self::Float64(b) => Arc::new(b.finish()),
            Self::Decimal(b, p, s) => Arc::new(
                b.finish()
                    .with_precision_and_scale(*p, *s)
                    .expect("precision and scale were validated when the type was mapped"),
            ),
            Self::Boolean(b) => Arc::new(b.finish()),
            Self::Date(b) => Arc::new(b.finish()),
            Self::Timestamp(b) => Arc::new(b.finish()),
            Self::Utf8(b) => Arc::new(b.finish()),
            Self::Binary(b) => Arc::new(b.finish()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::Int16(b) => b.len(),
            Self::Int32(b) => b.len(),
            Self::Int64(b) => b.len(),
            Self::Float32(b) => b.len(),
            Self::Float64(b) => b.len(),
            Self::Decimal(b, _, _) => b.len(),
            Self::Boolean(b) => b.len(),
            Self::Date(b) => b.len(),
            Self::Timestamp(b) => b.len(),
            Self::Utf8(b) => b.len(),
            Self::Binary(b) => b.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn describe(value: ValueRef<'_>) -> String {
    match value {
        ValueRef::Null => "NULL".to_string(),
        ValueRef::Integer(i) => format!("the integer {i}"),
        ValueRef::Real(f) => format!("the real {f}"),
        ValueRef::Text(t) => {
            let text = String::from_utf8_lossy(t);
            let short: String = text.chars().take(40).collect();
            format!("the text '{short}'")
        }
        ValueRef::Blob(b) => format!("a BLOB of {} bytes", b.len()),
    }
}

fn out_of_range(value: ValueRef<'_>, ty: &str) -> String {
    format!("{} is out of range for type {ty}", describe(value))
}

fn text(value: ValueRef<'_>) -> Option<&str> {
    match value {
        ValueRef::Text(t) => std::str::from_utf8(t).ok().map(str::trim),
        _ => None,
    }
}

fn integer(value: ValueRef<'_>) -> Result<i64, String> {
    match value {
        ValueRef::Integer(i) => Ok(i),
        ValueRef::Real(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        ValueRef::Text(_) => text(value)
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| format!("{} is not an integer", describe(value))),
        other => Err(format!("{} is not an integer", describe(other))),
    }
}

fn float(value: ValueRef<'_>) -> Result<f64, String> {
    match value {
        ValueRef::Real(f) => Ok(f),
        ValueRef::Integer(i) => Ok(i as f64),
        ValueRef::Text(_) => text(value)
            .and_then(|t| t.parse::<f64>().ok())
            .ok_or_else(|| format!("{} is not a number", describe(value))),
        other => Err(format!("{} is not a number", describe(other))),
    }
}

fn boolean(value: ValueRef<'_>) -> Result<bool, String> {
    match value {
        ValueRef::Integer(0) => Ok(false),
        ValueRef::Integer(1) => Ok(true),
        ValueRef::Text(_) => match text(value).map(str::to_ascii_lowercase).as_deref() {
            Some("true" | "t" | "1" | "yes") => Ok(true),
            Some("false" | "f" | "0" | "no") => Ok(false),
            _ => Err(format!("{} is not a boolean", describe(value))),
        },
        other => Err(format!("{} is not a boolean", describe(other))),
    }
}

/// A decimal value as an i128 with `scale` digits after the point; exact for text and
/// integers, and for reals rounded to the column's scale.
fn decimal(value: ValueRef<'_>, precision: u8, scale: i8) -> Result<i128, String> {
    let scaled = match value {
        ValueRef::Integer(i) => (i as i128).checked_mul(10i128.pow(scale as u32)),
        // A real is taken as the decimal it prints as (1.005, not 1.00499999…), rounded
        // half away from zero to the column's scale.
        ValueRef::Real(f) if f.is_finite() => parse_decimal_rounded(&format!("{f}"), scale),
        ValueRef::Text(_) => text(value).and_then(|t| parse_decimal(t, scale)),
        _ => None,
    }
    .ok_or_else(|| format!("{} is not a numeric value", describe(value)))?;
    if scaled.unsigned_abs() >= 10u128.pow(precision as u32) {
        return Err(out_of_range(
            value,
            &format!("numeric({precision},{scale})"),
        ));
    }
    Ok(scaled)
}

/// Parses `-123.4500` into an i128 with `scale` fractional digits; refuses to drop
/// non-zero digits beyond the scale.
pub fn parse_decimal(text: &str, scale: i8) -> Option<i128> {
    parse_decimal_with(text, scale, false)
}

/// Like [`parse_decimal`], but rounds extra digits half away from zero.
fn parse_decimal_rounded(text: &str, scale: i8) -> Option<i128> {
    parse_decimal_with(text, scale, true)
}

fn parse_decimal_with(text: &str, scale: i8, round: bool) -> Option<i128> {
    let (negative, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = digits.split_once('.').unwrap_or((digits, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.chars().all(|c| c.is_ascii_digit())
        || !frac_part.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let scale = scale.max(0) as usize;
    let (kept, dropped) = if frac_part.len() > scale {
        frac_part.split_at(scale)
    } else {
        (frac_part, "")
    };
    if !round && dropped.chars().any(|c| c != '0') {
        return None;
    }
    let mut value: i128 = 0;
    for c in int_part.chars().chain(kept.chars()) {
        value = value
            .checked_mul(10)?
            .checked_add((c as u8 - b'0') as i128)?;
    }
    for _ in kept.len()..scale {
        value = value.checked_mul(10)?;
    }
    if round && dropped.starts_with(['5', '6', '7', '8', '9']) {
        value = value.checked_add(1)?;
    }
    Some(if negative { -value } else { value })
}

const UNIX_EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date(value: ValueRef<'_>) -> Result<i32, String> {
    match value {
        ValueRef::Integer(days) => i32::try_from(days).map_err(|_| out_of_range(value, "date")),
        ValueRef::Text(_) => {
            let t = text(value).unwrap_or("");
            // Accept a date, or a timestamp whose time part is midnight-agnostic.
            let day = t.get(..10).unwrap_or(t);
            iso_date(day.as_bytes())
                .map(Ok)
                .unwrap_or_else(|| chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d"))
                .map(|d| {
                    use chrono::Datelike;
                    d.num_days_from_ce() - UNIX_EPOCH_DAYS_FROM_CE
                })
                .map_err(|_| format!("{} is not a date (YYYY-MM-DD)", describe(value)))
        }
        other => Err(format!("{} is not a date", describe(other))),
    }
}

fn timestamp(value: ValueRef<'_>) -> Result<i64, String> {
    match value {
        ValueRef::Integer(secs) => secs
            .checked_mul(1_000_000)
            .ok_or_else(|| out_of_range(value, "timestamp")),
        ValueRef::Real(secs) => Ok((secs * 1e6).round() as i64),
        ValueRef::Text(_) => {
            let t = text(value).unwrap_or("");
            let parsed = iso_timestamp(t.as_bytes()).or_else(|| timestamp_formats(t));
            parsed
                .map(|ts| ts.and_utc().timestamp_micros())
                .ok_or_else(|| {
                    format!(
                        "{} is not a timestamp (YYYY-MM-DD HH:MM:SS)",
                        describe(value)
                    )
                })
        }
        other => Err(format!("{} is not a timestamp", describe(other))),
    }
}

/// Every form a timestamp is read in, by chrono's format parser.
fn timestamp_formats(t: &str) -> Option<chrono::NaiveDateTime> {
    [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M",
    ]
    .iter()
    .find_map(|f| chrono::NaiveDateTime::parse_from_str(t, f).ok())
    .or_else(|| {
        chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
    })
}

/// `YYYY-MM-DD`, read straight from its bytes. It is how SQLite's date functions
/// write a date and how nearly every stored one looks; chrono's format parser reads
/// its format string again for every value, which was a quarter of a large scan's
/// time. Anything else is left to the format parser.
fn iso_date(b: &[u8]) -> Option<chrono::NaiveDate> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..])?);
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day)
}

/// `YYYY-MM-DD`, then `[ T]HH:MM`, then `:SS`, then `.` and one to nine digits:
/// the timestamp forms [`timestamp_formats`] reads, without a leap second.
fn iso_timestamp(b: &[u8]) -> Option<chrono::NaiveDateTime> {
    let date = iso_date(b.get(..10)?)?;
    if b.len() == 10 {
        return date.and_hms_opt(0, 0, 0);
    }
    if b.len() < 16 || !matches!(b[10], b' ' | b'T') || b[13] != b':' {
        return None;
    }
    let (hour, minute) = (digits(&b[11..13])?, digits(&b[14..16])?);
    let (second, nanos) = match &b[16..] {
        [] => (0, 0),
        [b':', s1, s2, fraction @ ..] => {
            let second = digits(&[*s1, *s2])?;
            let nanos = match fraction {
                [] => 0,
                [b'.', figures @ ..] if (1..=9).contains(&figures.len()) => {
                    digits(figures)? * 10u32.pow(9 - figures.len() as u32)
                }
                _ => return None,
            };
            (second, nanos)
        }
        _ => return None,
    };
    if second > 59 {
        return None;
    }
    date.and_hms_nano_opt(hour, minute, second, nanos)
}

/// ASCII digits as a number; `None` for anything else (no sign, no space).
fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, c| {
        c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_types_map_as_documented() {
        assert_eq!(arrow_type("INTEGER"), DataType::Int64);
        assert_eq!(arrow_type("smallint"), DataType::Int16);
        assert_eq!(arrow_type("INT4"), DataType::Int32);
        assert_eq!(arrow_type("NUMERIC(14, 2)"), DataType::Decimal128(14, 2));
        assert_eq!(arrow_type("DECIMAL(10)"), DataType::Decimal128(10, 0));
        assert_eq!(arrow_type("NUMERIC"), DataType::Decimal128(38, 10));
        assert_eq!(arrow_type("VARCHAR(40)"), DataType::Utf8);
        assert_eq!(arrow_type("DATE"), DataType::Date32);
        assert_eq!(
            arrow_type("TIMESTAMP"),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(arrow_type("BOOLEAN"), DataType::Boolean);
        assert_eq!(arrow_type("DOUBLE PRECISION"), DataType::Float64);
        assert_eq!(arrow_type(""), DataType::Utf8);
        assert_eq!(arrow_type("BLOB"), DataType::Binary);
    }

    #[test]
    fn decimals_are_exact_or_refused() {
        assert_eq!(parse_decimal("123.45", 2), Some(12345));
        assert_eq!(parse_decimal("-0.5", 2), Some(-50));
        assert_eq!(parse_decimal("7", 3), Some(7000));
        assert_eq!(parse_decimal("1.230", 2), Some(123));
        assert_eq!(parse_decimal("1.234", 2), None, "digits would be lost");
        assert_eq!(parse_decimal("abc", 2), None);
        assert_eq!(parse_decimal("", 2), None);
        assert!(
            decimal(ValueRef::Integer(1000), 3, 0).is_err(),
            "over precision"
        );
        assert_eq!(decimal(ValueRef::Real(1.005), 10, 2), Ok(101));
    }

    #[test]
    fn values_that_do_not_fit_are_errors() {
        let mut b = ColumnBuilder::new(&DataType::Int16, 4);
        assert!(b.append(ValueRef::Integer(70000)).is_err());
        assert!(b.append(ValueRef::Text(b"x")).is_err());
        let mut d = ColumnBuilder::new(&DataType::Date32, 4);
        assert!(d.append(ValueRef::Text(b"2024-02-30")).is_err());
        d.append(ValueRef::Text(b"1970-01-02")).unwrap();
        let mut t = ColumnBuilder::new(&DataType::Timestamp(TimeUnit::Microsecond, None), 1);
        t.append(ValueRef::Text(b"1970-01-01 00:00:01")).unwrap();
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn the_fast_date_readers_agree_with_chrono() {
        let cases = [
            "2024-02-29",
            "2023-02-29",
            "1999-12-31 23:59:59",
            "1999-12-31T23:59:59.5",
            "2000-01-01 00:00:00.123456789",
            "2000-01-01 00:00:00.1234567891",
            "2000-01-01 00:00:60",
            "2000-01-01 24:00:00",
            "2000-01-01 10:61",
            "2000-01-01 10:30",
            "2000-01-01T10:30",
            "2000-01-01 10:30:",
            "2000-01-01 10:30:00.",
            "2000-1-01",
            "+2000-01-01",
            "2000-01-01x",
            "２０００-01-01",
            "0000-01-01",
            "9999-12-31 23:59:59.999999",
        ];
        for case in cases {
            let b = case.as_bytes();
            let chrono_date = chrono::NaiveDate::parse_from_str(case, "%Y-%m-%d").ok();
            if let Some(fast) = iso_date(b) {
                assert_eq!(Some(fast), chrono_date, "{case}");
            }
            if b.len() == 10 && b.iter().all(|c| c.is_ascii_digit() || *c == b'-') {
                assert_eq!(iso_date(b), chrono_date, "{case}");
            }
            if let Some(fast) = iso_timestamp(b) {
                assert_eq!(Some(fast), timestamp_formats(case), "{case}");
            }
        }
        // The fast path takes the common forms itself.
        for case in [
            "1999-12-31 23:59:59",
            "2000-01-01T10:30",
            "2000-01-01 00:00:00.5",
        ] {
            assert!(iso_timestamp(case.as_bytes()).is_some(), "{case}");
        }
        let mut d = ColumnBuilder::new(&DataType::Date32, 2);
        d.append(ValueRef::Text(b"1970-01-02")).unwrap();
        assert!(d.append(ValueRef::Text(b"1970-02-30")).is_err());
        assert_eq!(d.len(), 1);
    }
}
