//! Reading one field's text as a typed value.
//!
//! Legacy exports pad with spaces, write numbers with leading zeros and implied
//! decimals, and sometimes use Persian or Arabic-Indic digits; a blank field, and
//! a date of all zeros, are NULL.

use std::sync::Arc;

use amar_plugin_sdk::datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Int64Builder, StringBuilder,
};

use crate::layout::{DECIMAL_PRECISION, Kind};

/// Collects one column's values for a batch.
pub enum Builder {
    Text(StringBuilder),
    Integer(Int64Builder),
    Decimal(Decimal128Builder, i8),
    Date(Date32Builder, bool),
    Boolean(BooleanBuilder),
}

impl Builder {
    pub fn new(kind: Kind, rows: usize) -> Self {
        match kind {
            Kind::Text => Builder::Text(StringBuilder::with_capacity(rows, rows * 16)),
            Kind::Integer => Builder::Integer(Int64Builder::with_capacity(rows)),
            Kind::Decimal(scale) => Builder::Decimal(
                Decimal128Builder::with_capacity(rows)
                    .with_precision_and_scale(DECIMAL_PRECISION, scale)
                    .expect("precision and scale were checked with the layout"),
                scale,
            ),
            Kind::Date => Builder::Date(Date32Builder::with_capacity(rows), false),
            Kind::JalaliDate => Builder::Date(Date32Builder::with_capacity(rows), true),
            Kind::Boolean => Builder::Boolean(BooleanBuilder::with_capacity(rows)),
        }
    }

    /// Appends the value of `field` (its raw text), or says why it is not one.
    pub fn push(&mut self, field: &str) -> Result<(), String> {
        let field = field.trim_matches(|c: char| c == ' ' || c == '\u{a0}' || c == '\t');
        if field.is_empty() {
            self.push_null();
            return Ok(());
        }
        match self {
            Builder::Text(b) => b.append_value(field),
            Builder::Integer(b) => b.append_value(integer(field)?),
            Builder::Decimal(b, scale) => b.append_value(decimal(field, *scale)?),
            Builder::Date(b, jalali) => match date(field, *jalali)? {
                Some(days) => b.append_value(days),
                None => b.append_null(),
            },
            Builder::Boolean(b) => b.append_value(boolean(field)?),
        }
        Ok(())
    }

    pub fn push_null(&mut self) {
        match self {
            Builder::Text(b) => b.append_null(),
            Builder::Integer(b) => b.append_null(),
            Builder::Decimal(b, _) => b.append_null(),
            Builder::Date(b, _) => b.append_null(),
            Builder::Boolean(b) => b.append_null(),
        }
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            Builder::Text(b) => Arc::new(b.finish()),
            Builder::Integer(b) => Arc::new(b.finish()),
            Builder::Decimal(b, _) => Arc::new(b.finish()),
            Builder::Date(b, _) => Arc::new(b.finish()),
            Builder::Boolean(b) => Arc::new(b.finish()),
        }
    }
}

/// The ASCII digit of a Latin, Persian (۰–۹) or Arabic-Indic (٠–٩) digit.
fn digit(c: char) -> Option<u8> {
    match c {
        '0'..='9' => Some(c as u8 - b'0'),
        '\u{06F0}'..='\u{06F9}' => Some((c as u32 - 0x06F0) as u8),
        '\u{0660}'..='\u{0669}' => Some((c as u32 - 0x0660) as u8),
        _ => None,
    }
}

/// A sign, then digits; an optional decimal point only where `point` is allowed.
/// Returns the digits as an integer and how many came after the point.
fn digits(field: &str, point: bool, what: &str) -> Result<(i128, i8), String> {
    let bad = || format!("\"{field}\" is not {what}");
    let (negative, rest) = match field.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, field.strip_prefix('+').unwrap_or(field)),
    };
    let mut value: i128 = 0;
    let mut seen = false;
    let mut after_point: Option<i8> = None;
    for c in rest.chars() {
        if point && (c == '.' || c == '٫') && after_point.is_none() {
            after_point = Some(0);
            continue;
        }
        let d = digit(c).ok_or_else(bad)?;
        seen = true;
        value = value
            .checked_mul(10)
            .and_then(|v| v.checked_add(d as i128))
            .ok_or_else(|| format!("\"{field}\" is too large"))?;
        if let Some(n) = after_point.as_mut() {
            *n = n.saturating_add(1);
        }
    }
    if !seen {
        return Err(bad());
    }
    Ok((
        if negative { -value } else { value },
        after_point.unwrap_or(-1),
    ))
}

pub fn integer(field: &str) -> Result<i64, String> {
    let (value, _) = digits(field, false, "an integer")?;
    i64::try_from(value).map_err(|_| format!("\"{field}\" is too large for a 64-bit integer"))
}

/// Digits with `scale` implied decimals, or with an explicit point.
pub fn decimal(field: &str, scale: i8) -> Result<i128, String> {
    let (value, after_point) = digits(field, true, "a number")?;
    let value = if after_point < 0 {
        value
    } else if after_point <= scale {
        value * 10i128.pow((scale - after_point) as u32)
    } else {
        return Err(format!("\"{field}\" has more than {scale} decimal places"));
    };
    if value.unsigned_abs() >= 10u128.pow(DECIMAL_PRECISION as u32) {
        return Err(format!("\"{field}\" has more than 18 digits"));
    }
    Ok(value)
}

/// Days since 1970-01-01 of a `yyyymmdd` field; `None` for all zeros.
pub fn date(field: &str, jalali: bool) -> Result<Option<i32>, String> {
    let calendar = if jalali { "Jalali" } else { "Gregorian" };
    let ymd: Vec<u8> = field.chars().filter_map(digit).collect();
    if ymd.len() != 8 || field.chars().count() != 8 {
        return Err(format!("\"{field}\" is not a {calendar} date (yyyymmdd)"));
    }
    if ymd.iter().all(|&d| d == 0) {
        return Ok(None);
    }
    let number =
        |range: std::ops::Range<usize>| ymd[range].iter().fold(0i32, |n, &d| n * 10 + d as i32);
    let (year, month, day) = (number(0..4), number(4..6) as u8, number(6..8) as u8);
    let not_a_date = || format!("\"{field}\" is not a {calendar} date");
    let iso = if jalali {
        icu_calendar::Date::try_new_persian(year, month, day)
            .map_err(|_| not_a_date())?
            .to_calendar(icu_calendar::Iso)
    } else {
        icu_calendar::Date::try_new_iso(year, month, day).map_err(|_| not_a_date())?
    };
    Ok(Some(days_from_civil(
        iso.year().extended_year(),
        iso.month().ordinal as u32,
        iso.day_of_month().0 as u32,
    )))
}

/// Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(year: i32, month: u32, day: u32) -> i32 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

pub fn boolean(field: &str) -> Result<bool, String> {
    match field {
        "1" | "Y" | "y" | "T" | "t" | "۱" => Ok(true),
        "0" | "N" | "n" | "F" | "f" | "۰" => Ok(false),
        _ => Err(format!("\"{field}\" is not a flag (1/0, Y/N, T/F)")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_with_zeros_signs_implied_decimals_and_persian_digits() {
        assert_eq!(integer("000123"), Ok(123));
        assert_eq!(integer("-42"), Ok(-42));
        assert_eq!(integer("۱۴۰۳"), Ok(1403));
        assert!(integer("12a").unwrap_err().contains("not an integer"));
        assert!(
            integer("99999999999999999999")
                .unwrap_err()
                .contains("too large")
        );
        assert_eq!(decimal("000001234550", 2), Ok(1234550));
        assert_eq!(decimal("12345.5", 2), Ok(1234550));
        assert_eq!(decimal("-0.25", 2), Ok(-25));
        assert!(
            decimal("1.234", 2)
                .unwrap_err()
                .contains("more than 2 decimal")
        );
    }

    #[test]
    fn jalali_and_gregorian_dates() {
        // 1 Farvardin 1403 is 20 March 2024.
        let nowruz = date("14030101", true).unwrap().unwrap();
        assert_eq!(nowruz, date("20240320", false).unwrap().unwrap());
        assert_eq!(date("19700101", false), Ok(Some(0)));
        assert_eq!(date("00000000", true), Ok(None));
        assert!(
            date("14031231", true)
                .unwrap_err()
                .contains("not a Jalali date")
        );
        assert!(date("1403011", true).unwrap_err().contains("yyyymmdd"));
    }

    #[test]
    fn blank_fields_are_null() {
        let mut b = Builder::new(Kind::Integer, 2);
        b.push("   ").unwrap();
        b.push(" 7 ").unwrap();
        let a = b.finish();
        assert!(a.is_null(0));
        assert!(!a.is_null(1));
    }
}
