//! Reading dates and times from any temporal (or date-text) column: each row as a
//! local day and second of the day, a `timestamptz` in Asia/Tehran local time.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Offset, TimeZone, Timelike};
use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::datatypes::{
    DataType, Date32Type, Date64Type, TimeUnit, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType,
};
use datafusion::error::{DataFusionError, Result};

use super::{DATETIME_FIELD_OVERFLOW, INVALID_PARAMETER, value_error};
use crate::jalali::{EPOCH_CE, JalaliDate, from_days};

/// A local day and second of the day.
type Local = (i32, u32);

fn tehran_local(utc: NaiveDateTime, memo: &mut Option<(i64, i32)>) -> NaiveDateTime {
    // The offset is the same within an hour: look it up once per hour seen.
    let hour = utc.and_utc().timestamp().div_euclid(3600);
    let offset = match memo {
        Some((h, o)) if *h == hour => *o,
        _ => {
            let o = chrono_tz::Asia::Tehran
                .offset_from_utc_datetime(&utc)
                .fix()
                .local_minus_utc();
            *memo = Some((hour, o));
            o
        }
    };
    utc + chrono::Duration::seconds(i64::from(offset))
}

fn split(t: NaiveDateTime) -> Local {
    (
        chrono::Datelike::num_days_from_ce(&t.date()) - EPOCH_CE,
        t.num_seconds_from_midnight(),
    )
}

/// Each row of a temporal (or date-text) argument as a local day and time.
pub(super) fn locals(array: &ArrayRef) -> Result<Vec<Option<Local>>> {
    let n = array.len();
    let mut out = Vec::with_capacity(n);
    let mut memo = None;
    macro_rules! timestamps {
        ($t:ty, $tz:expr, $to_naive:expr) => {{
            let a = array.as_primitive::<$t>();
            for i in 0..n {
                if a.is_null(i) {
                    out.push(None);
                    continue;
                }
                let naive: Option<NaiveDateTime> = $to_naive(a.value(i));
                let naive = naive.ok_or_else(|| {
                    value_error(DATETIME_FIELD_OVERFLOW, "timestamp out of range")
                })?;
                let local = if $tz {
                    tehran_local(naive, &mut memo)
                } else {
                    naive
                };
                out.push(Some(split(local)));
            }
        }};
    }
    match array.data_type() {
        DataType::Date32 => {
            let a = array.as_primitive::<Date32Type>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| (a.value(i), 0)));
            }
        }
        DataType::Date64 => {
            let a = array.as_primitive::<Date64Type>();
            for i in 0..n {
                out.push((!a.is_null(i)).then(|| {
                    let ms = a.value(i);
                    (
                        ms.div_euclid(86_400_000) as i32,
                        (ms.rem_euclid(86_400_000) / 1000) as u32,
                    )
                }));
            }
        }
        DataType::Timestamp(unit, tz) => {
            let tz = tz.is_some();
            match unit {
                TimeUnit::Second => timestamps!(TimestampSecondType, tz, |v: i64| {
                    DateTime::from_timestamp(v, 0).map(|t| t.naive_utc())
                }),
                TimeUnit::Millisecond => {
                    timestamps!(TimestampMillisecondType, tz, |v: i64| {
                        DateTime::from_timestamp_millis(v).map(|t| t.naive_utc())
                    })
                }
                TimeUnit::Microsecond => {
                    timestamps!(TimestampMicrosecondType, tz, |v: i64| {
                        DateTime::from_timestamp_micros(v).map(|t| t.naive_utc())
                    })
                }
                TimeUnit::Nanosecond => timestamps!(TimestampNanosecondType, tz, |v: i64| {
                    Some(DateTime::from_timestamp_nanos(v).naive_utc())
                }),
            }
        }
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
            let strings = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
            let a = strings.as_string::<i32>();
            for i in 0..n {
                if a.is_null(i) {
                    out.push(None);
                    continue;
                }
                let text = a.value(i).trim();
                let parsed = NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(|d| d.and_time(chrono::NaiveTime::MIN))
                    .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S%.f"))
                    .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f"))
                    .map_err(|_| {
                        value_error(
                            INVALID_PARAMETER,
                            format!(
                                "invalid input syntax for type date: \"{text}\" (write YYYY-MM-DD; for a Jalali date use jalali_to_date)"
                            ),
                        )
                    })?;
                out.push(Some(split(parsed)));
            }
        }
        DataType::Null => out.resize(n, None),
        other => {
            return Err(DataFusionError::Plan(format!(
                "a Jalali function takes a date, timestamp or date text, not {other}"
            )));
        }
    }
    Ok(out)
}

pub(super) fn temporal(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Date32
            | DataType::Date64
            | DataType::Timestamp(_, _)
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
            | DataType::Null
    )
}

pub(super) fn jalali_of(days: i32) -> Result<JalaliDate> {
    from_days(days).map_err(|e| value_error(DATETIME_FIELD_OVERFLOW, e.0))
}
