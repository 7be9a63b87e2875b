//! The Solar Hijri (Jalali) calendar: conversion to and from Gregorian dates.
//!
//! Built on icu_calendar's Persian calendar, which matches the leap-year table of the
//! University of Tehran's Calendar Center on every day of 1206–1498 (ptime and
//! jalali-rs do not; see the catalog issue). Invalid dates such as 1404/12/30 are
//! rejected, never rolled over.

use chrono::{Datelike, NaiveDate};
use icu_calendar::cal::Persian;
use icu_calendar::{Date, Iso};

/// A date of the Jalali calendar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JalaliDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

/// A Jalali date that does not exist, or a Gregorian date out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct JalaliError(pub String);

impl JalaliDate {
    /// Checks that the date exists (month 1–12, day within the month, 30 Esfand
    /// only in leap years).
    pub fn new(year: i32, month: u8, day: u8) -> Result<Self, JalaliError> {
        Date::try_new_persian(year, month, day)
            .map(|_| JalaliDate { year, month, day })
            .map_err(|_| {
                JalaliError(format!(
                    "{year:04}/{month:02}/{day:02} is not a date of the Jalali calendar"
                ))
            })
    }

    /// The Gregorian date of this day.
    pub fn to_gregorian(self) -> Result<NaiveDate, JalaliError> {
        let persian = Date::try_new_persian(self.year, self.month, self.day)
            .map_err(|_| JalaliError(format!("{self} is not a date of the Jalali calendar")))?;
        let iso = persian.to_calendar(Iso);
        NaiveDate::from_ymd_opt(
            iso.year().extended_year(),
            iso.month().ordinal as u32,
            iso.day_of_month().0 as u32,
        )
        .ok_or_else(|| JalaliError(format!("{self} is outside the supported range")))
    }

    /// The Jalali date of a Gregorian day.
    pub fn from_gregorian(date: NaiveDate) -> Result<Self, JalaliError> {
        let iso = Date::try_new_iso(date.year(), date.month() as u8, date.day() as u8)
            .map_err(|_| JalaliError(format!("{date} is outside the supported range")))?;
        let persian = iso.to_calendar(Persian);
        Ok(JalaliDate {
            year: persian.year().extended_year(),
            month: persian.month().ordinal,
            day: persian.day_of_month().0,
        })
    }
}

impl std::fmt::Display for JalaliDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}/{:02}/{:02}", self.year, self.month, self.day)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn nowruz_dates_match_the_official_calendar() {
        // 1 Farvardin of recent years (Calendar Center of the University of Tehran).
        for (year, gregorian) in [
            (1402, g(2023, 3, 21)),
            (1403, g(2024, 3, 20)),
            (1404, g(2025, 3, 21)),
            (1405, g(2026, 3, 21)),
        ] {
            assert_eq!(
                JalaliDate::new(year, 1, 1).unwrap().to_gregorian().unwrap(),
                gregorian
            );
            assert_eq!(
                JalaliDate::from_gregorian(gregorian).unwrap(),
                JalaliDate::new(year, 1, 1).unwrap()
            );
        }
    }

    #[test]
    fn esfand_30_exists_only_in_leap_years() {
        assert_eq!(
            JalaliDate::new(1403, 12, 30)
                .unwrap()
                .to_gregorian()
                .unwrap(),
            g(2025, 3, 20)
        );
        assert!(JalaliDate::new(1404, 12, 30).is_err());
        assert!(JalaliDate::new(1403, 13, 1).is_err());
        assert!(JalaliDate::new(1403, 7, 31).is_err());
    }
}
