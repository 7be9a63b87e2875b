//! Jalali and Persian SQL functions.
//!
//! Calendar:
//! - `jalali_year`, `jalali_month`, `jalali_day`, `jalali_quarter`, `jalali_week`
//!   (weeks start on Saturday; week 1 holds 1 Farvardin), `jalali_weekday` (Saturday 1
//!   … Friday 7), `jalali_month_name` (in Persian) of a date, timestamp or date text;
//! - `jalali_format(ts, 'yyyy/MM/dd')` (tokens `yyyy yy MMMM MM M dd d EEEE Q HH H mm ss`);
//! - `jalali_to_date('1403/12/30')`: a Jalali date (Latin, Persian or Arabic-Indic
//!   digits; `/` or `-`) to a date, and SQLSTATE 22008 for a day that does not exist;
//! - `jalali_trunc('month', ts)`: the first day of the Jalali year, quarter, month or
//!   week, as a date, for GROUP BY; `jalali_period('quarter', ts)`: period keys
//!   `1403`, `1403Q4`, `1403-07`, `1403-W05`. The fiscal year is the Jalali year.
//!
//! A `timestamptz` becomes a Jalali date in Asia/Tehran local time (+04:30 in summer
//! until 2022, +03:30 since); a timestamp without time zone and a date are taken as they
//! are. Days convert through a table of the Gregorian date of each Nowruz from 1200 to
//! 1700 built from icu_calendar (which matches the University of Tehran's Calendar
//! Center on every day of 1206–1498), so a conversion is a binary search and some
//! arithmetic; outside the table icu_calendar answers directly (both in [`crate::jalali`]).
//!
//! Text:
//! - `to_persian_digits`, `to_latin_digits`;
//! - `fa_normalize(text)`: Arabic ي ى ك to Persian ی ک, Arabic-Indic digits to Persian,
//!   harakat (fathatan … sukun, superscript alef) and tatweel removed, every kind of
//!   space one space, every zero-width non-joiner variant one ZWNJ and none beside a
//!   space, trimmed: names typed in different systems become equal;
//! - `fa_fold(text)`: a key for search and joins: `fa_normalize`, then no ZWNJ, no
//!   spaces, no hamza marks, ۀ هٔ ة folded to ه, أ إ آ ٱ to ا, ؤ to و, ئ to ی, digits
//!   Latin, Latin letters lower-case.

mod temporal;
mod text;

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Date32Builder, Int32Builder, StringBuilder,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

use crate::error::CatalogError;
use crate::jalali::{JalaliDate, JalaliError, quarter, to_days, week, weekday0};
use temporal::{jalali_of, locals, temporal};
use text::{latin_digits, persian_digits};

pub use text::{fa_fold, fa_normalize};

/// SQLSTATE for a date that does not exist or is out of range.
const DATETIME_FIELD_OVERFLOW: &str = "22008";
/// SQLSTATE for text that is not a date, or an unknown unit.
const INVALID_PARAMETER: &str = "22023";

pub const MONTH_NAMES: [&str; 12] = [
    "فروردین",
    "اردیبهشت",
    "خرداد",
    "تیر",
    "مرداد",
    "شهریور",
    "مهر",
    "آبان",
    "آذر",
    "دی",
    "بهمن",
    "اسفند",
];

pub const WEEKDAY_NAMES: [&str; 7] = [
    "شنبه",
    "یکشنبه",
    "دوشنبه",
    "سه‌شنبه",
    "چهارشنبه",
    "پنجشنبه",
    "جمعه",
];

fn value_error(code: &'static str, message: impl Into<String>) -> DataFusionError {
    DataFusionError::External(Box::new(CatalogError::Value {
        code,
        message: message.into(),
    }))
}

// ---------------------------------------------------------------------------------
// The functions.

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Kind {
    Year,
    Month,
    Day,
    Quarter,
    Week,
    Weekday,
    MonthName,
    Format,
    ToDate,
    Trunc,
    Period,
    PersianDigits,
    LatinDigits,
    Normalize,
    Fold,
}

impl Kind {
    const ALL: [(Kind, &'static str); 15] = [
        (Kind::Year, "jalali_year"),
        (Kind::Month, "jalali_month"),
        (Kind::Day, "jalali_day"),
        (Kind::Quarter, "jalali_quarter"),
        (Kind::Week, "jalali_week"),
        (Kind::Weekday, "jalali_weekday"),
        (Kind::MonthName, "jalali_month_name"),
        (Kind::Format, "jalali_format"),
        (Kind::ToDate, "jalali_to_date"),
        (Kind::Trunc, "jalali_trunc"),
        (Kind::Period, "jalali_period"),
        (Kind::PersianDigits, "to_persian_digits"),
        (Kind::LatinDigits, "to_latin_digits"),
        (Kind::Normalize, "fa_normalize"),
        (Kind::Fold, "fa_fold"),
    ];

    fn arity(self) -> usize {
        match self {
            Kind::Format | Kind::Trunc | Kind::Period => 2,
            _ => 1,
        }
    }
}

#[derive(Debug)]
struct PersianFunction {
    kind: Kind,
    name: &'static str,
    signature: Signature,
}

impl PartialEq for PersianFunction {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
    }
}

impl Eq for PersianFunction {}

impl Hash for PersianFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.kind.hash(state);
    }
}

/// Every Jalali and Persian function, to register in a session.
pub fn functions() -> Vec<ScalarUDF> {
    Kind::ALL
        .iter()
        .map(|(kind, name)| {
            ScalarUDF::new_from_impl(PersianFunction {
                kind: *kind,
                name,
                signature: Signature::any(kind.arity(), Volatility::Immutable),
            })
        })
        .collect()
}

fn text_arg(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Null
    )
}

impl ScalarUDFImpl for PersianFunction {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let wrong = |what: &str| {
            Err(DataFusionError::Plan(format!(
                "{}({}): {what}",
                self.name,
                args.iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        };
        match self.kind {
            Kind::Year
            | Kind::Month
            | Kind::Day
            | Kind::Quarter
            | Kind::Week
            | Kind::Weekday
            | Kind::MonthName => {
                if !temporal(&args[0]) {
                    return wrong("takes a date, timestamp or date text");
                }
            }
            Kind::Format => {
                if !temporal(&args[0]) || !text_arg(&args[1]) {
                    return wrong("takes a date or timestamp and a pattern text");
                }
            }
            Kind::Trunc | Kind::Period => {
                if !text_arg(&args[0]) || !temporal(&args[1]) {
                    return wrong(
                        "takes a unit ('year', 'quarter', 'month' or 'week') and a date or timestamp",
                    );
                }
            }
            Kind::ToDate
            | Kind::PersianDigits
            | Kind::LatinDigits
            | Kind::Normalize
            | Kind::Fold => {
                if !text_arg(&args[0]) {
                    return wrong("takes text");
                }
            }
        }
        Ok(match self.kind {
            Kind::Year | Kind::Month | Kind::Day | Kind::Quarter | Kind::Week | Kind::Weekday => {
                DataType::Int32
            }
            Kind::ToDate | Kind::Trunc => DataType::Date32,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let scalar = args
            .args
            .iter()
            .all(|a| matches!(a, ColumnarValue::Scalar(_)));
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out = self.compute(&arrays, args.number_rows)?;
        if scalar {
            Ok(ColumnarValue::Scalar(
                datafusion::scalar::ScalarValue::try_from_array(&out, 0)?,
            ))
        } else {
            Ok(ColumnarValue::Array(out))
        }
    }
}

/// Text values of a column, as `&str` per row.
fn strings(array: &ArrayRef) -> Result<ArrayRef> {
    Ok(datafusion::arrow::compute::cast(array, &DataType::Utf8)?)
}

impl PersianFunction {
    fn compute(&self, arrays: &[ArrayRef], rows: usize) -> Result<ArrayRef> {
        match self.kind {
            Kind::Year | Kind::Month | Kind::Day | Kind::Quarter | Kind::Week | Kind::Weekday => {
                let mut out = Int32Builder::with_capacity(rows);
                for local in locals(&arrays[0])? {
                    match local {
                        None => out.append_null(),
                        Some((days, _)) => {
                            let d = jalali_of(days)?;
                            out.append_value(match self.kind {
                                Kind::Year => d.year,
                                Kind::Month => i32::from(d.month),
                                Kind::Day => i32::from(d.day),
                                Kind::Quarter => i32::from(quarter(d.month)),
                                Kind::Week => week(days, &d)
                                    .map_err(|e| value_error(DATETIME_FIELD_OVERFLOW, e.0))?,
                                _ => weekday0(days) + 1,
                            });
                        }
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            Kind::MonthName => {
                let mut out = StringBuilder::with_capacity(rows, rows * 12);
                for local in locals(&arrays[0])? {
                    match local {
                        None => out.append_null(),
                        Some((days, _)) => {
                            out.append_value(MONTH_NAMES[jalali_of(days)?.month as usize - 1])
                        }
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            Kind::Format => {
                let patterns = strings(&arrays[1])?;
                let patterns = patterns.as_string::<i32>();
                let mut out = StringBuilder::with_capacity(rows, rows * 12);
                for (i, local) in locals(&arrays[0])?.into_iter().enumerate() {
                    match local {
                        Some((days, secs)) if !patterns.is_null(i) => {
                            let d = jalali_of(days)?;
                            out.append_value(format(&d, days, secs, patterns.value(i)));
                        }
                        _ => out.append_null(),
                    }
                }
                Ok(Arc::new(out.finish()))
            }
            Kind::Trunc | Kind::Period => {
                let units = strings(&arrays[0])?;
                let units = units.as_string::<i32>();
                let locals = locals(&arrays[1])?;
                let mut dates = Date32Builder::with_capacity(rows);
                let mut keys = StringBuilder::with_capacity(rows, rows * 8);
                for (i, local) in locals.into_iter().enumerate() {
                    let (Some((days, _)), false) = (local, units.is_null(i)) else {
                        dates.append_null();
                        keys.append_null();
                        continue;
                    };
                    let d = jalali_of(days)?;
                    let unit = units.value(i).trim().to_ascii_lowercase();
                    let overflow = |e: JalaliError| value_error(DATETIME_FIELD_OVERFLOW, e.0);
                    let (start, key) = match unit.as_str() {
                        "year" => (
                            to_days(d.year, 1, 1).map_err(overflow)?,
                            format!("{}", d.year),
                        ),
                        "quarter" => {
                            let q = quarter(d.month);
                            (
                                to_days(d.year, (q - 1) * 3 + 1, 1).map_err(overflow)?,
                                format!("{}Q{q}", d.year),
                            )
                        }
                        "month" => (
                            to_days(d.year, d.month, 1).map_err(overflow)?,
                            format!("{}-{:02}", d.year, d.month),
                        ),
                        "week" => (
                            days - weekday0(days),
                            format!("{}-W{:02}", d.year, week(days, &d).map_err(overflow)?),
                        ),
                        other => {
                            return Err(value_error(
                                INVALID_PARAMETER,
                                format!(
                                    "{}: unit \"{other}\" is not one of year, quarter, month, week",
                                    self.name
                                ),
                            ));
                        }
                    };
                    dates.append_value(start);
                    keys.append_value(key);
                }
                if self.kind == Kind::Trunc {
                    Ok(Arc::new(dates.finish()))
                } else {
                    Ok(Arc::new(keys.finish()))
                }
            }
            Kind::ToDate => {
                let texts = strings(&arrays[0])?;
                let texts = texts.as_string::<i32>();
                let mut out = Date32Builder::with_capacity(rows);
                for i in 0..rows {
                    if texts.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    out.append_value(parse_jalali(texts.value(i))?);
                }
                Ok(Arc::new(out.finish()))
            }
            Kind::PersianDigits | Kind::LatinDigits | Kind::Normalize | Kind::Fold => {
                let texts = strings(&arrays[0])?;
                let texts = texts.as_string::<i32>();
                let mut out = StringBuilder::with_capacity(rows, texts.value_data().len());
                for i in 0..rows {
                    if texts.is_null(i) {
                        out.append_null();
                        continue;
                    }
                    let t = texts.value(i);
                    out.append_value(match self.kind {
                        Kind::PersianDigits => persian_digits(t),
                        Kind::LatinDigits => latin_digits(t),
                        Kind::Normalize => fa_normalize(t),
                        _ => fa_fold(t),
                    });
                }
                Ok(Arc::new(out.finish()))
            }
        }
    }
}

/// `jalali_format`'s patterns; unknown letters are copied as they are.
fn format(d: &JalaliDate, days: i32, secs: u32, pattern: &str) -> String {
    const TOKENS: [&str; 13] = [
        "yyyy", "MMMM", "EEEE", "yy", "MM", "dd", "HH", "mm", "ss", "M", "d", "H", "Q",
    ];
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut rest = pattern;
    'outer: while !rest.is_empty() {
        for token in TOKENS {
            if let Some(after) = rest.strip_prefix(token) {
                use std::fmt::Write;
                let _ = match token {
                    "yyyy" => write!(out, "{:04}", d.year),
                    "yy" => write!(out, "{:02}", d.year.rem_euclid(100)),
                    "MMMM" => write!(out, "{}", MONTH_NAMES[d.month as usize - 1]),
                    "MM" => write!(out, "{:02}", d.month),
                    "M" => write!(out, "{}", d.month),
                    "dd" => write!(out, "{:02}", d.day),
                    "d" => write!(out, "{}", d.day),
                    "EEEE" => write!(out, "{}", WEEKDAY_NAMES[weekday0(days) as usize]),
                    "Q" => write!(out, "{}", quarter(d.month)),
                    "HH" => write!(out, "{:02}", secs / 3600),
                    "H" => write!(out, "{}", secs / 3600),
                    "mm" => write!(out, "{:02}", secs / 60 % 60),
                    _ => write!(out, "{:02}", secs % 60),
                };
                rest = after;
                continue 'outer;
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `1403/12/30`, `1403-1-5`, `۱۴۰۳/۱۲/۳۰` → the day; anything else a clear error.
fn parse_jalali(text: &str) -> Result<i32> {
    let latin = latin_digits(text.trim());
    let parts: Vec<&str> = latin.split(['/', '-']).collect();
    let invalid = || {
        value_error(
            INVALID_PARAMETER,
            format!("invalid Jalali date \"{text}\": write year/month/day, e.g. 1403/12/30"),
        )
    };
    if parts.len() != 3 {
        return Err(invalid());
    }
    let year: i32 = parts[0].parse().map_err(|_| invalid())?;
    let month: u8 = parts[1].parse().map_err(|_| invalid())?;
    let day: u8 = parts[2].parse().map_err(|_| invalid())?;
    to_days(year, month, day).map_err(|e| value_error(DATETIME_FIELD_OVERFLOW, e.0))
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::jalali::{EPOCH_CE, from_days};

    fn days(y: i32, m: u32, d: u32) -> i32 {
        chrono::Datelike::num_days_from_ce(&NaiveDate::from_ymd_opt(y, m, d).unwrap()) - EPOCH_CE
    }

    #[test]
    fn formats_and_parses() {
        let day = days(2025, 3, 20);
        let d = from_days(day).unwrap();
        assert_eq!(
            format(&d, day, 3600 * 9 + 5 * 60 + 7, "yyyy/MM/dd HH:mm:ss"),
            "1403/12/30 09:05:07"
        );
        assert_eq!(
            format(&d, day, 0, "d MMMM yyyy، EEEE، فصل Q"),
            "30 اسفند 1403، پنجشنبه، فصل 4"
        );
        assert_eq!(parse_jalali("1403/12/30").unwrap(), day);
        assert_eq!(parse_jalali("۱۴۰۳/۱۲/۳۰").unwrap(), day);
        assert_eq!(parse_jalali("1403-12-30").unwrap(), day);
        assert!(parse_jalali("1404/12/30").is_err());
        assert!(parse_jalali("1404/12").is_err());
        assert!(parse_jalali("salam").is_err());
    }
}
