//! Arrow record batches to DataRow messages, in PostgreSQL's text and binary formats.
//!
//! The common column types are encoded here, column-wise (one downcast per column per
//! batch, not per value) and exactly as PostgreSQL prints them: timestamps without a
//! trailing `.000000`, `timestamptz` with the session's offset, numerics of any
//! precision DataFusion carries (not only the 28 digits rust_decimal holds), floats in
//! PostgreSQL's shortest form. Every other type (lists, intervals, pg_catalog's oid
//! aliases…) goes through arrow-pg's encoder, into the same row buffer.

use std::sync::Arc;

use arrow_pg::datatypes::arrow_schema_to_pg_fields;
use arrow_pg::encoder::{Encoder, encode_value};
use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, Offset, TimeZone};
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Date32Array, Decimal128Array, Float32Array,
    Float64Array, Int16Array, Int32Array, Int64Array, LargeStringArray, StringArray,
    StringViewArray,
};
use datafusion::arrow::datatypes::{
    DataType, Field, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::arrow::record_batch::RecordBatch;
use pgwire::api::Type;
use pgwire::api::portal::Format;
use pgwire::api::results::{FieldFormat, FieldInfo};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::data::DataRow;
use pgwire::types::ToSqlText;
use pgwire::types::format::FormatOptions;
use postgres_types::ToSql;

use super::errors::to_pgwire;
use crate::engine::{Session, SqlError, code};

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const PG_EPOCH_DAYS: i32 = 10_957;
const PG_EPOCH_MICROS: i64 = PG_EPOCH_DAYS as i64 * 86_400_000_000;

enum Column<'a> {
    Bool(&'a BooleanArray),
    Int16(&'a Int16Array),
    Int32(&'a Int32Array),
    Int64(&'a Int64Array),
    Float32(&'a Float32Array),
    Float64(&'a Float64Array),
    /// Values, scale, and whether the type is PostgreSQL's unconstrained `numeric`
    /// (precision 38, as the sources read it), shown at each value's own scale.
    Decimal(&'a Decimal128Array, i8, bool),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Date(&'a Date32Array),
    /// Microseconds since 1970, and the zone to show it in (for timestamptz).
    Timestamp(Vec<Option<i64>>, Option<chrono_tz::Tz>),
    Other(&'a ArrayRef, &'a Field),
}

/// How a session's settings shape text output.
pub fn format_options(session: &Session) -> Arc<FormatOptions> {
    let settings = session.settings();
    let mut options = FormatOptions::default();
    options.date_style = settings
        .get("DateStyle")
        .unwrap_or_else(|_| "ISO, MDY".into());
    options.interval_style = settings
        .get("IntervalStyle")
        .unwrap_or_else(|_| "postgres".into());
    options.bytea_output = settings
        .get("bytea_output")
        .unwrap_or_else(|_| "hex".into());
    options.time_zone = settings.time_zone();
    options.extra_float_digits = settings
        .get("extra_float_digits")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Arc::new(options)
}

/// Checks a Bind's result formats against the column count (a malformed list would
/// otherwise index past its end).
fn check_formats(format: &Format, columns: usize) -> PgWireResult<()> {
    if let Format::Individual(codes) = format
        && codes.len() != columns
    {
        return Err(to_pgwire(SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            ),
        )));
    }
    if let Format::Individual(codes) = format
        && codes.iter().any(|c| *c != 0 && *c != 1)
    {
        return Err(to_pgwire(SqlError::new(
            code::PROTOCOL_VIOLATION,
            "unsupported format code",
        )));
    }
    Ok(())
}

/// The RowDescription of a result schema.
///
/// pg_catalog columns such as `pg_class.relnamespace` are plain `oid` in PostgreSQL;
/// datafusion-pg-catalog tags them `regnamespace`, `regclass`… so that name
/// comparisons resolve, and arrow-pg would report that tag as the column's type.
/// Drivers read reg* columns as text (psycopg gives `'16394'`, not `16394`), which
/// breaks their joins on OIDs, so they go out as `oid`, their PostgreSQL type.
pub fn fields_for(
    schema: &datafusion::arrow::datatypes::Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    check_formats(format, schema.fields().len())?;
    let fields = arrow_schema_to_pg_fields(schema, format, options).map_err(|e| {
        to_pgwire(SqlError::not_supported(format!(
            "a result column has a type the wire protocol cannot carry: {e}"
        )))
    })?;
    Ok(fields
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let is_reg = matches!(
                *f.datatype(),
                Type::REGCLASS
                    | Type::REGNAMESPACE
                    | Type::REGTYPE
                    | Type::REGPROC
                    | Type::REGROLE
                    | Type::REGPROCEDURE
                    | Type::REGOPER
                    | Type::REGOPERATOR
                    | Type::REGCONFIG
                    | Type::REGDICTIONARY
                    | Type::REGCOLLATION
            );
            // numeric(p,s) carries its precision and scale as PostgreSQL's type
            // modifier (drivers' getPrecision/DecimalSize read it); precision 38
            // is the unconstrained numeric.
            let f = match schema.fields().get(i).map(|x| x.data_type()) {
                Some(DataType::Decimal128(p, s)) if *p < 38 && *s >= 0 => {
                    let typmod = ((*p as i32) << 16 | *s as i32) + 4;
                    f.with_type_modifier(typmod)
                }
                _ => f,
            };
            if is_reg {
                FieldInfo::new(
                    f.name().to_string(),
                    f.table_id(),
                    f.column_id(),
                    Type::OID,
                    f.format(),
                )
                .with_format_options(f.format_options().clone())
            } else {
                f
            }
        })
        .collect())
}

fn micros(array: &ArrayRef, unit: &TimeUnit) -> Vec<Option<i64>> {
    match unit {
        TimeUnit::Second => array
            .as_primitive::<TimestampSecondType>()
            .iter()
            .map(|v| v.and_then(|v| v.checked_mul(1_000_000)))
            .collect(),
        TimeUnit::Millisecond => array
            .as_primitive::<TimestampMillisecondType>()
            .iter()
            .map(|v| v.and_then(|v| v.checked_mul(1_000)))
            .collect(),
        TimeUnit::Microsecond => array
            .as_primitive::<TimestampMicrosecondType>()
            .iter()
            .collect(),
        TimeUnit::Nanosecond => array
            .as_primitive::<TimestampNanosecondType>()
            .iter()
            .map(|v| v.map(|v| v.div_euclid(1_000)))
            .collect(),
    }
}

impl<'a> Column<'a> {
    fn new(array: &'a ArrayRef, field: &'a Field) -> Column<'a> {
        match array.data_type() {
            DataType::Boolean => Column::Bool(array.as_boolean()),
            DataType::Int16 => Column::Int16(array.as_primitive()),
            // Also pg_catalog's oid columns (tagged with an oid-alias kind): sent as oid.
            DataType::Int32 => Column::Int32(array.as_primitive()),
            DataType::Int64 => Column::Int64(array.as_primitive()),
            DataType::Float32 => Column::Float32(array.as_primitive()),
            DataType::Float64 => Column::Float64(array.as_primitive()),
            DataType::Decimal128(precision, scale) => {
                Column::Decimal(array.as_primitive(), *scale, *precision == 38)
            }
            DataType::Utf8 if field.metadata().is_empty() => Column::Utf8(array.as_string()),
            DataType::LargeUtf8 => Column::LargeUtf8(array.as_string()),
            DataType::Utf8View => Column::Utf8View(array.as_string_view()),
            DataType::Date32 => Column::Date(array.as_primitive()),
            DataType::Timestamp(unit, tz) => {
                let zone = match tz {
                    Some(tz) => match tz.parse::<chrono_tz::Tz>() {
                        Ok(zone) => Some(zone),
                        // Offsets like +03:30 are not names; arrow-pg handles those.
                        Err(_) => return Column::Other(array, field),
                    },
                    None => None,
                };
                Column::Timestamp(micros(array, unit), zone)
            }
            _ => Column::Other(array, field),
        }
    }
}

/// Encodes every row of `batch` for these result fields.
pub fn encode_batch(
    fields: &Arc<Vec<FieldInfo>>,
    batch: &RecordBatch,
) -> Vec<PgWireResult<DataRow>> {
    let schema = batch.schema();
    let columns: Vec<Column<'_>> = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(a, f)| Column::new(a, f))
        .collect();
    let mut rows = Vec::with_capacity(batch.num_rows());
    let mut row = RowBuffer {
        buffer: BytesMut::with_capacity(batch.num_rows() * 16 * columns.len().max(1)),
    };
    for r in 0..batch.num_rows() {
        for (column, field) in columns.iter().zip(fields.iter()) {
            if let Err(e) = row.value(column, r, field) {
                rows.push(Err(e));
                return rows;
            }
        }
        // Rows share one allocation: split() hands this row's bytes over and keeps the
        // rest of the capacity for the next.
        rows.push(Ok(DataRow::new(row.buffer.split(), fields.len() as i16)));
    }
    rows
}

struct RowBuffer {
    buffer: BytesMut,
}

impl RowBuffer {
    fn null(&mut self) {
        self.buffer.put_i32(-1);
    }

    /// Writes a length-prefixed value produced by `write`.
    fn with_len(&mut self, write: impl FnOnce(&mut BytesMut)) {
        let at = self.buffer.len();
        self.buffer.put_i32(0);
        write(&mut self.buffer);
        let len = (self.buffer.len() - at - 4) as i32;
        self.buffer[at..at + 4].copy_from_slice(&len.to_be_bytes());
    }

    fn text(&mut self, s: &str) {
        self.buffer.put_i32(s.len() as i32);
        self.buffer.put_slice(s.as_bytes());
    }

    fn value(&mut self, column: &Column<'_>, r: usize, field: &FieldInfo) -> PgWireResult<()> {
        let binary = field.format() == FieldFormat::Binary;
        macro_rules! null_check {
            ($array:expr) => {
                if $array.is_null(r) {
                    self.null();
                    return Ok(());
                }
            };
        }
        match column {
            Column::Bool(a) => {
                null_check!(a);
                let v = a.value(r);
                if binary {
                    self.buffer.put_i32(1);
                    self.buffer.put_u8(v as u8);
                } else {
                    self.text(if v { "t" } else { "f" });
                }
            }
            Column::Int16(a) => {
                null_check!(a);
                if binary {
                    self.buffer.put_i32(2);
                    self.buffer.put_i16(a.value(r));
                } else {
                    self.text(itoa::Buffer::new().format(a.value(r)));
                }
            }
            Column::Int32(a) => {
                null_check!(a);
                if binary {
                    self.buffer.put_i32(4);
                    self.buffer.put_i32(a.value(r));
                } else {
                    self.text(itoa::Buffer::new().format(a.value(r)));
                }
            }
            Column::Int64(a) => {
                null_check!(a);
                if binary {
                    self.buffer.put_i32(8);
                    self.buffer.put_i64(a.value(r));
                } else {
                    self.text(itoa::Buffer::new().format(a.value(r)));
                }
            }
            Column::Float32(a) => {
                null_check!(a);
                if binary {
                    self.buffer.put_i32(4);
                    self.buffer.put_f32(a.value(r));
                } else {
                    self.text(&float_text(a.value(r) as f64, true));
                }
            }
            Column::Float64(a) => {
                null_check!(a);
                if binary {
                    self.buffer.put_i32(8);
                    self.buffer.put_f64(a.value(r));
                } else {
                    self.text(&float_text(a.value(r), false));
                }
            }
            Column::Decimal(a, scale, unconstrained) => {
                null_check!(a);
                let (v, scale) = if *unconstrained {
                    natural_scale(a.value(r), *scale)
                } else {
                    (a.value(r), *scale)
                };
                if binary {
                    self.with_len(|b| numeric_binary(b, v, scale));
                } else {
                    self.text(&decimal_text(v, scale));
                }
            }
            Column::Utf8(a) => {
                null_check!(a);
                self.text(a.value(r));
            }
            Column::LargeUtf8(a) => {
                null_check!(a);
                self.text(a.value(r));
            }
            Column::Utf8View(a) => {
                null_check!(a);
                self.text(a.value(r));
            }
            Column::Date(a) => {
                null_check!(a);
                let days = a.value(r);
                if binary {
                    self.buffer.put_i32(4);
                    self.buffer.put_i32(days.saturating_sub(PG_EPOCH_DAYS));
                } else {
                    self.text(&date_text(days));
                }
            }
            Column::Timestamp(values, zone) => {
                let Some(us) = values[r] else {
                    self.null();
                    return Ok(());
                };
                if binary {
                    self.buffer.put_i32(8);
                    self.buffer.put_i64(us.saturating_sub(PG_EPOCH_MICROS));
                } else {
                    let text = timestamp_text(us, zone.as_ref()).ok_or_else(|| {
                        PgWireError::UserError(Box::new(ErrorInfo::new(
                            "ERROR".into(),
                            "22008".into(),
                            "timestamp out of range".into(),
                        )))
                    })?;
                    self.text(&text);
                }
            }
            Column::Other(array, arrow_field) => {
                encode_value(self, array, r, arrow_field, field)?;
            }
        }
        Ok(())
    }
}

/// arrow-pg writes the types we do not handle through this.
impl Encoder for RowBuffer {
    type Item = ();

    fn encode_field<T>(&mut self, value: &T, pg_field: &FieldInfo) -> PgWireResult<()>
    where
        T: ToSql + ToSqlText + Sized,
    {
        let at = self.buffer.len();
        self.buffer.put_i32(-1);
        let is_null = if pg_field.format() == FieldFormat::Text {
            value.to_sql_text(
                pg_field.datatype(),
                &mut self.buffer,
                pg_field.format_options(),
            )?
        } else {
            value.to_sql(pg_field.datatype(), &mut self.buffer)?
        };
        if let postgres_types::IsNull::No = is_null {
            let len = (self.buffer.len() - at - 4) as i32;
            self.buffer[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    fn take_row(&mut self) {}
}

/// PostgreSQL's float output with extra_float_digits ≥ 1: the shortest text that
/// reads back to the same value, in exponent form outside [1e-4, 1e15) (float8) or
/// [1e-4, 1e6) (float4).
pub fn float_text(v: f64, single: bool) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let abs = v.abs();
    let upper = if single { 1e6 } else { 1e15 };
    if v == 0.0 || (1e-4..upper).contains(&abs) {
        if single {
            return format!("{}", v as f32);
        }
        return format!("{v}");
    }
    let s = if single {
        format!("{:e}", v as f32)
    } else {
        format!("{v:e}")
    };
    // Rust writes 1.5e-5; PostgreSQL writes 1.5e-05 and 1e+20.
    match s.split_once('e') {
        Some((mantissa, exp)) => {
            let (sign, digits) = match exp.strip_prefix('-') {
                Some(d) => ('-', d),
                None => ('+', exp),
            };
            format!("{mantissa}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

/// An i128 with `scale` decimal places, exactly.
/// An unconstrained numeric's value at its own scale: `2641247000.0000000000` is
/// `2641247000`, as PostgreSQL prints it.
fn natural_scale(mut v: i128, mut scale: i8) -> (i128, i8) {
    while scale > 0 && v % 10 == 0 {
        v /= 10;
        scale -= 1;
    }
    (v, scale)
}

pub fn decimal_text(v: i128, scale: i8) -> String {
    if scale <= 0 {
        let mut s = v.to_string();
        if scale < 0 && v != 0 {
            s.extend(std::iter::repeat_n('0', (-scale) as usize));
        }
        return s;
    }
    let scale = scale as usize;
    let digits = v.unsigned_abs().to_string();
    let digits = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits
    };
    let (int, frac) = digits.split_at(digits.len() - scale);
    format!("{}{int}.{frac}", if v < 0 { "-" } else { "" })
}

/// PostgreSQL's binary `numeric`: base-10000 digits with weight, sign and scale.
fn numeric_binary(buf: &mut BytesMut, v: i128, scale: i8) {
    let dscale = scale.max(0) as i16;
    let negative = v < 0;
    // Work on |v| × 10^k so that the point falls on a base-10000 boundary.
    let mut magnitude = v.unsigned_abs();
    let mut frac_digits = scale.max(0) as u32;
    if scale < 0 {
        magnitude *= 10u128.pow((-scale) as u32);
    }
    let pad = (4 - frac_digits % 4) % 4;
    magnitude *= 10u128.pow(pad);
    frac_digits += pad;
    let mut groups = vec![];
    while magnitude > 0 {
        groups.push((magnitude % 10_000) as i16);
        magnitude /= 10_000;
    }
    groups.reverse();
    let frac_groups = (frac_digits / 4) as i16;
    let mut weight = groups.len() as i16 - frac_groups - 1;
    // Trailing zero groups are implied by dscale; leading ones by weight.
    while groups.last() == Some(&0) {
        groups.pop();
    }
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    if groups.is_empty() {
        weight = 0;
    }
    buf.put_i16(groups.len() as i16);
    buf.put_i16(weight);
    buf.put_u16(if negative && !groups.is_empty() {
        0x4000
    } else {
        0x0000
    });
    buf.put_i16(dscale);
    for g in groups {
        buf.put_i16(g);
    }
}

fn date_text(days: i32) -> String {
    match NaiveDate::from_num_days_from_ce_opt(days.saturating_add(719_163)) {
        Some(d) => iso_date(d),
        None => days.to_string(),
    }
}

fn iso_date(d: NaiveDate) -> String {
    use chrono::Datelike;
    if d.year() > 0 {
        d.format("%Y-%m-%d").to_string()
    } else {
        // PostgreSQL counts no year 0: 1 BC is year 0 in chrono.
        format!("{:04}-{:02}-{:02} BC", 1 - d.year(), d.month(), d.day())
    }
}

/// `YYYY-MM-DD HH:MM:SS[.ffffff]` with trailing zeros of the fraction dropped, and for
/// a zone its offset (`+03:30`, `+00`).
pub fn timestamp_text(us: i64, zone: Option<&chrono_tz::Tz>) -> Option<String> {
    let utc = DateTime::from_timestamp_micros(us)?;
    let (naive, offset_secs) = match zone {
        Some(tz) => {
            let local = tz.from_utc_datetime(&utc.naive_utc());
            (
                local.naive_local(),
                Some(local.offset().fix().local_minus_utc()),
            )
        }
        None => (utc.naive_utc(), None),
    };
    let mut s = format!("{} {}", iso_date(naive.date()), naive.format("%H:%M:%S"));
    let micros = naive.and_utc().timestamp_subsec_micros();
    if micros > 0 {
        let frac = format!("{micros:06}");
        s.push('.');
        s.push_str(frac.trim_end_matches('0'));
    }
    if let Some(offset) = offset_secs {
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.abs();
        let (h, m, sec) = (abs / 3600, abs / 60 % 60, abs % 60);
        s.push_str(&format!("{sign}{h:02}"));
        if m != 0 || sec != 0 {
            s.push_str(&format!(":{m:02}"));
        }
        if sec != 0 {
            s.push_str(&format!(":{sec:02}"));
        }
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_postgres_prints_them() {
        assert_eq!(float_text(0.1, false), "0.1");
        assert_eq!(float_text(1e20, false), "1e+20");
        assert_eq!(float_text(1.5e-5, false), "1.5e-05");
        assert_eq!(float_text(123456.0, false), "123456");
        assert_eq!(float_text(f64::NAN, false), "NaN");
        assert_eq!(float_text(f64::NEG_INFINITY, false), "-Infinity");
        assert_eq!(float_text(0.1f32 as f64, true), "0.1");
        assert_eq!(float_text(1234567.0, true), "1.234567e+06");
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal_text(12345, 2), "123.45");
        assert_eq!(decimal_text(-5, 3), "-0.005");
        assert_eq!(decimal_text(7, 0), "7");
        assert_eq!(
            decimal_text(i128::MAX, 10),
            "17014118346046923173168730371.5884105727"
        );
    }

    fn numeric(v: i128, scale: i8) -> Vec<i16> {
        let mut b = BytesMut::new();
        numeric_binary(&mut b, v, scale);
        b.chunks(2)
            .map(|c| i16::from_be_bytes([c[0], c[1]]))
            .collect()
    }

    #[test]
    fn numeric_binary_matches_postgres() {
        // 123.45: digits [123, 4500], weight 0, positive, dscale 2.
        assert_eq!(numeric(12345, 2), vec![2, 0, 0, 2, 123, 4500]);
        // -1000000: one digit group 100 at weight 1.
        assert_eq!(numeric(-1_000_000, 0), vec![1, 1, 0x4000, 0, 100]);
        // 0.0001: digit 1 at weight -1.
        assert_eq!(numeric(1, 4), vec![1, -1, 0, 4, 1]);
        // zero
        assert_eq!(numeric(0, 2), vec![0, 0, 0, 2]);
    }

    #[test]
    fn timestamps_drop_empty_fractions_and_show_offsets() {
        let us = 1_710_923_400_000_000; // 2024-03-20 08:30:00 UTC
        assert_eq!(timestamp_text(us, None).unwrap(), "2024-03-20 08:30:00");
        assert_eq!(
            timestamp_text(us + 500_000, None).unwrap(),
            "2024-03-20 08:30:00.5"
        );
        let tehran: chrono_tz::Tz = "Asia/Tehran".parse().unwrap();
        assert_eq!(
            timestamp_text(us, Some(&tehran)).unwrap(),
            "2024-03-20 12:00:00+03:30"
        );
        assert_eq!(
            timestamp_text(us, Some(&chrono_tz::UTC)).unwrap(),
            "2024-03-20 08:30:00+00"
        );
        assert_eq!(date_text(19_802), "2024-03-20");
    }
}
