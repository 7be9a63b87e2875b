//! The Solar Hijri (Jalali) calendar: conversion to and from Gregorian dates.
//!
//! Built on icu_calendar's Persian calendar, which matches the leap-year table of the
//! University of Tehran's Calendar Center on every day of 1206–1498 (ptime and
//! jalali-rs do not; see the catalog issue). Invalid dates such as 1404/12/30 are
//! rejected, never rolled over.
//!
//! Days since 1970-01-01 convert through a table of the Gregorian date of each Nowruz
//! from 1200 to 1700 built from icu_calendar, so a conversion is a binary search and
//! some arithmetic; outside the table icu_calendar answers directly. Weeks start on
//! Saturday; week 1 holds 1 Farvardin.

use std::sync::OnceLock;

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

// ---------------------------------------------------------------------------------
// Days since 1970-01-01 <-> Jalali dates.

const FIRST_YEAR: i32 = 1200;
const LAST_YEAR: i32 = 1700;
/// Days from 0001-01-01 (chrono's day 1 of the common era) to 1970-01-01.
pub(crate) const EPOCH_CE: i32 = 719_163;

/// The day (since 1970-01-01) of 1 Farvardin of each year FIRST_YEAR..=LAST_YEAR + 1.
fn nowruz() -> &'static [i32] {
    static TABLE: OnceLock<Vec<i32>> = OnceLock::new();
    TABLE.get_or_init(|| {
        (FIRST_YEAR..=LAST_YEAR + 1)
            .map(|y| {
                JalaliDate::new(y, 1, 1)
                    .and_then(|d| d.to_gregorian())
                    .map(|g| chrono::Datelike::num_days_from_ce(&g) - EPOCH_CE)
                    .expect("1 Farvardin exists in every year of the table")
            })
            .collect()
    })
}

fn naive_date(days: i32) -> Option<NaiveDate> {
    NaiveDate::from_num_days_from_ce_opt(days.checked_add(EPOCH_CE)?)
}

/// The Jalali date of a day.
pub fn from_days(days: i32) -> Result<JalaliDate, JalaliError> {
    let table = nowruz();
    if days < table[0] || days >= table[table.len() - 1] {
        let date = naive_date(days)
            .ok_or_else(|| JalaliError(format!("day {days} is outside the supported range")))?;
        return JalaliDate::from_gregorian(date);
    }
    let i = table.partition_point(|&n| n <= days) - 1;
    let doy = days - table[i];
    let (month, day) = if doy < 186 {
        (doy / 31 + 1, doy % 31 + 1)
    } else {
        ((doy - 186) / 30 + 7, (doy - 186) % 30 + 1)
    };
    Ok(JalaliDate {
        year: FIRST_YEAR + i as i32,
        month: month as u8,
        day: day as u8,
    })
}

/// The day of a Jalali date; an impossible date is an error.
pub fn to_days(year: i32, month: u8, day: u8) -> Result<i32, JalaliError> {
    let table = nowruz();
    if !(FIRST_YEAR..=LAST_YEAR).contains(&year) {
        let g = JalaliDate::new(year, month, day)?.to_gregorian()?;
        return Ok(chrono::Datelike::num_days_from_ce(&g) - EPOCH_CE);
    }
    let i = (year - FIRST_YEAR) as usize;
    let year_len = table[i + 1] - table[i];
    let month_len = match month {
        1..=6 => 31,
        7..=11 => 30,
        12 => year_len - 336,
        _ => 0,
    };
    if day == 0 || i32::from(day) > month_len {
        return Err(JalaliError(format!(
            "{year:04}/{month:02}/{day:02} is not a date of the Jalali calendar"
        )));
    }
    let before = if month <= 7 {
        31 * (i32::from(month) - 1)
    } else {
        186 + 30 * (i32::from(month) - 7)
    };
    Ok(table[i] + before + i32::from(day) - 1)
}

/// Saturday 0 … Friday 6 (1970-01-01 was a Thursday).
pub(crate) fn weekday0(days: i32) -> i32 {
    (days + 5).rem_euclid(7)
}

pub(crate) fn quarter(month: u8) -> u8 {
    (month - 1) / 3 + 1
}

/// Week of the Jalali year, weeks starting on Saturday, week 1 holding 1 Farvardin.
pub(crate) fn week(days: i32, date: &JalaliDate) -> Result<i32, JalaliError> {
    let first = to_days(date.year, 1, 1)?;
    Ok((days - first + weekday0(first)) / 7 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn days(y: i32, m: u32, d: u32) -> i32 {
        chrono::Datelike::num_days_from_ce(&NaiveDate::from_ymd_opt(y, m, d).unwrap()) - EPOCH_CE
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

    /// The table-driven conversion agrees with icu_calendar on every day of the
    /// table, both ways, and rejects what icu_calendar rejects.
    #[test]
    fn every_day_of_1200_to_1700_agrees_with_icu_calendar() {
        let table = nowruz();
        for day in table[0]..table[table.len() - 1] {
            let fast = from_days(day).unwrap();
            let icu = JalaliDate::from_gregorian(naive_date(day).unwrap()).unwrap();
            assert_eq!(fast, icu, "day {day}");
            assert_eq!(to_days(fast.year, fast.month, fast.day).unwrap(), day);
        }
        for year in FIRST_YEAR..=LAST_YEAR {
            assert_eq!(
                to_days(year, 12, 30).is_ok(),
                JalaliDate::new(year, 12, 30).is_ok(),
                "30 Esfand {year}"
            );
        }
        assert!(to_days(1403, 7, 31).is_err());
        assert!(to_days(1403, 13, 1).is_err());
        assert!(to_days(1403, 1, 0).is_err());
    }

    /// Nowruz of 1380–1420 as published by the Calendar Center of the University
    /// of Tehran (the Gregorian date of 1 Farvardin).
    #[test]
    fn nowruz_matches_the_published_table() {
        let published = [
            (1380, (2001, 3, 21)),
            (1381, (2002, 3, 21)),
            (1382, (2003, 3, 21)),
            (1383, (2004, 3, 20)),
            (1384, (2005, 3, 21)),
            (1385, (2006, 3, 21)),
            (1386, (2007, 3, 21)),
            (1387, (2008, 3, 20)),
            (1388, (2009, 3, 21)),
            (1389, (2010, 3, 21)),
            (1390, (2011, 3, 21)),
            (1391, (2012, 3, 20)),
            (1392, (2013, 3, 21)),
            (1393, (2014, 3, 21)),
            (1394, (2015, 3, 21)),
            (1395, (2016, 3, 20)),
            (1396, (2017, 3, 21)),
            (1397, (2018, 3, 21)),
            (1398, (2019, 3, 21)),
            (1399, (2020, 3, 20)),
            (1400, (2021, 3, 21)),
            (1401, (2022, 3, 21)),
            (1402, (2023, 3, 21)),
            (1403, (2024, 3, 20)),
            (1404, (2025, 3, 21)),
            (1405, (2026, 3, 21)),
            (1406, (2027, 3, 21)),
            (1407, (2028, 3, 20)),
            (1408, (2029, 3, 20)),
            (1409, (2030, 3, 21)),
            (1410, (2031, 3, 21)),
            (1411, (2032, 3, 20)),
            (1412, (2033, 3, 20)),
            (1413, (2034, 3, 21)),
            (1414, (2035, 3, 21)),
            (1415, (2036, 3, 20)),
            (1416, (2037, 3, 20)),
            (1417, (2038, 3, 21)),
            (1418, (2039, 3, 21)),
            (1419, (2040, 3, 20)),
            (1420, (2041, 3, 20)),
        ];
        for (year, (gy, gm, gd)) in published {
            assert_eq!(
                to_days(year, 1, 1).unwrap(),
                days(gy, gm, gd),
                "1 Farvardin {year}"
            );
        }
        // The case ptime gets wrong: 2025-03-20 is 30 Esfand 1403, not 1 Farvardin 1404.
        assert_eq!(
            from_days(days(2025, 3, 20)).unwrap(),
            JalaliDate {
                year: 1403,
                month: 12,
                day: 30
            }
        );
    }

    #[test]
    fn weeks_start_on_saturday() {
        // 2024-03-16 was a Saturday.
        assert_eq!(weekday0(days(2024, 3, 16)), 0);
        assert_eq!(weekday0(days(2024, 3, 22)), 6);
        // 1 Farvardin 1403 (Wednesday 2024-03-20) is in week 1; the next Saturday
        // (2024-03-23) starts week 2.
        let d = from_days(days(2024, 3, 20)).unwrap();
        assert_eq!(week(days(2024, 3, 20), &d).unwrap(), 1);
        let d = from_days(days(2024, 3, 23)).unwrap();
        assert_eq!(week(days(2024, 3, 23), &d).unwrap(), 2);
    }
}
