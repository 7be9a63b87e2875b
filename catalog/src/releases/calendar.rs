//! The release calendar: releases announced ahead, with their time, declared by the
//! statistics office beside the indicators (`[[release]]` in the catalog files), and
//! `amar.release_calendar`, which says of each whether it is planned, under embargo,
//! published (on time or not) or late; and the calendar as iCalendar for people's
//! calendar programs.

use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;

use super::listing::jalali_tehran;
use super::{Release, Releases};
use crate::computed::CatalogRows;

/// A release announced ahead.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub indicators: Vec<String>,
    pub period: String,
    /// When the figures are to be published.
    pub at: DateTime<Utc>,
    /// Earlier times it was announced for, each with why it moved.
    pub moves: Vec<Move>,
}

/// A change of a planned release's time.
#[derive(Debug, Clone, PartialEq)]
pub struct Move {
    pub from: DateTime<Utc>,
    pub reason: String,
}

/// A moment as the office writes one: `YYYY-MM-DD HH:MM[:SS]` in the Gregorian
/// calendar or `YYYY/MM/DD HH:MM` (or with `-`) in the Jalali calendar (years before
/// 1700 are Jalali), in Tehran time unless a zone follows (`+03:30`, `Z`); or
/// RFC 3339.
pub fn parse_moment(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let normalised = text.replace('/', "-");
    for format in [
        "%Y-%m-%d %H:%M:%S%.f%:z",
        "%Y-%m-%d %H:%M:%S%:z",
        "%Y-%m-%d %H:%M%:z",
    ] {
        if let Ok(t) = DateTime::parse_from_str(&normalised, format) {
            // A zone is written with Gregorian dates only.
            return (chrono::Datelike::year(&t) >= 1700).then(|| t.with_timezone(&Utc));
        }
    }
    let (date, time) = normalised.split_once(' ').unwrap_or((&normalised, "00:00"));
    let mut parts = date.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u32 = parts.next()?.parse().ok()?;
    let day: u32 = parts.next()?.parse().ok()?;
    let date = if year < 1700 {
        crate::jalali::JalaliDate::new(year, u8::try_from(month).ok()?, u8::try_from(day).ok()?)
            .ok()?
            .to_gregorian()
            .ok()?
    } else {
        NaiveDate::from_ymd_opt(year, month, day)?
    };
    let time = ["%H:%M:%S%.f", "%H:%M:%S", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(time, f).ok())?;
    chrono_tz::Asia::Tehran
        .from_local_datetime(&NaiveDateTime::new(date, time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// Where a planned release stands at `now`, and the release that carried it out
/// (the first release of its indicators for its period).
pub fn standing<'a>(
    plan: &Planned,
    releases: &'a [Arc<Release>],
    now: DateTime<Utc>,
) -> (&'static str, Option<&'a Arc<Release>>) {
    let done = releases.iter().find(|r| {
        r.meta.period == plan.period && plan.indicators.iter().all(|i| r.indicator(i).is_some())
    });
    let status = match done {
        Some(r) if r.published(now) => "published",
        Some(_) if plan.at <= now => "late",
        Some(_) => "embargoed",
        None if plan.at <= now => "late",
        None => "planned",
    };
    (status, done)
}

pub(super) struct CalendarList {
    pub(super) releases: Arc<Releases>,
}

impl std::fmt::Debug for CalendarList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CalendarList")
    }
}

#[async_trait]
impl CatalogRows for CalendarList {
    fn schema(&self) -> SchemaRef {
        let at = |name: &str, nullable| {
            Field::new(
                name,
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                nullable,
            )
        };
        Arc::new(Schema::new(vec![
            Field::new("indicators", DataType::Utf8, false),
            Field::new("period", DataType::Utf8, false),
            at("scheduled_at", false),
            Field::new("scheduled_at_jalali", DataType::Utf8, false),
            Field::new("status", DataType::Utf8, false),
            Field::new("on_time", DataType::Boolean, true),
            Field::new("release_id", DataType::Utf8, true),
            at("published_at", true),
            Field::new("moves", DataType::Utf8, true),
        ]))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        let now = Utc::now();
        let all = self.releases.all();
        let mut indicators = StringBuilder::new();
        let mut period = StringBuilder::new();
        let mut scheduled = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut jalali = StringBuilder::new();
        let mut status = StringBuilder::new();
        let mut on_time = BooleanBuilder::new();
        let mut release_id = StringBuilder::new();
        let mut published = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut moves = StringBuilder::new();
        let mut plans: Vec<&Planned> = self.releases.calendar().iter().collect();
        plans.sort_by(|a, b| a.at.cmp(&b.at).then(a.period.cmp(&b.period)));
        for plan in plans {
            let (state, done) = standing(plan, &all, now);
            indicators.append_value(plan.indicators.join(", "));
            period.append_value(&plan.period);
            scheduled.append_value(plan.at.timestamp_micros());
            jalali.append_value(jalali_tehran(plan.at));
            status.append_value(state);
            // Published within a minute of the announced time is on time.
            on_time.append_option(
                done.filter(|r| r.published(now))
                    .map(|r| r.publish_at <= plan.at + chrono::Duration::minutes(1)),
            );
            // Under embargo, which release it will be is the office's business.
            let shown = done.filter(|r| r.published(now));
            release_id.append_option(shown.map(|r| r.meta.id.as_str()));
            published.append_option(shown.map(|r| r.publish_at.timestamp_micros()));
            if plan.moves.is_empty() {
                moves.append_null();
            } else {
                moves.append_value(
                    plan.moves
                        .iter()
                        .map(|m| format!("from {}: {}", jalali_tehran(m.from), m.reason))
                        .collect::<Vec<_>>()
                        .join("; "),
                );
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(indicators.finish()),
            Arc::new(period.finish()),
            Arc::new(scheduled.finish()),
            Arc::new(jalali.finish()),
            Arc::new(status.finish()),
            Arc::new(on_time.finish()),
            Arc::new(release_id.finish()),
            Arc::new(published.finish()),
            Arc::new(moves.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

/// Text escaped for an iCalendar value (RFC 5545, 3.3.11).
fn ics_text(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace(';', "\\;")
        .replace(',', "\\,")
        .replace('\n', "\\n")
}

/// A content line folded at 75 octets, never inside a character (RFC 5545, 3.1).
fn fold(line: &str) -> String {
    let mut out = String::new();
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

/// The calendar as an iCalendar file: one event per planned release, at its time
/// (UTC), titled in Persian and English.
pub fn ics(plans: &[Planned], host: &str) -> String {
    let stamp = |t: DateTime<Utc>| t.format("%Y%m%dT%H%M%SZ").to_string();
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        "PRODID:-//Amar//Release calendar//FA",
        "CALSCALE:GREGORIAN",
        "X-WR-CALNAME:تقویم انتشار آمار رسمی — Official statistics release calendar",
    ] {
        out.push_str(&fold(line));
    }
    let now = Utc::now();
    for plan in plans {
        let indicators = plan.indicators.join(", ");
        let uid = format!("{}-{}@{host}", plan.period, plan.indicators.join("+"));
        for line in [
            "BEGIN:VEVENT".to_string(),
            format!("UID:{}", ics_text(&uid)),
            format!("DTSTAMP:{}", stamp(now)),
            format!("DTSTART:{}", stamp(plan.at)),
            format!("DTEND:{}", stamp(plan.at + chrono::Duration::minutes(30))),
            format!(
                "SUMMARY:{}",
                ics_text(&format!(
                    "انتشار {indicators} — {} / Release of {indicators} for {}",
                    plan.period, plan.period
                ))
            ),
            format!(
                "DESCRIPTION:{}",
                ics_text(&format!("{} (Tehran time)", jalali_tehran(plan.at)))
            ),
            "END:VEVENT".to_string(),
        ] {
            out.push_str(&fold(&line));
        }
    }
    out.push_str(&fold("END:VCALENDAR"));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moments_are_tehran_time_in_either_calendar() {
        let gregorian = parse_moment("2026-12-06 10:00").unwrap();
        assert_eq!(gregorian.to_rfc3339(), "2026-12-06T06:30:00+00:00");
        // 15 Azar 1405 is 6 December 2026.
        assert_eq!(parse_moment("1405/09/15 10:00").unwrap(), gregorian);
        assert_eq!(parse_moment("1405-09-15 10:00").unwrap(), gregorian);
        assert_eq!(
            parse_moment("2026-12-06 10:00:00+00:00")
                .unwrap()
                .to_rfc3339(),
            "2026-12-06T10:00:00+00:00"
        );
        assert!(
            parse_moment("1404/12/30 10:00").is_none(),
            "not a leap year"
        );
        assert!(parse_moment("tomorrow").is_none());
    }

    #[test]
    fn ics_lines_are_folded_and_escaped() {
        let plan = Planned {
            indicators: vec!["average_wage".into()],
            period: "1403Q4".into(),
            at: parse_moment("2026-12-06 10:00").unwrap(),
            moves: vec![],
        };
        let text = ics(&[plan], "amar");
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(text.contains("DTSTART:20261206T063000Z\r\n"));
        assert!(text.ends_with("END:VCALENDAR\r\n"));
        for line in text.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
        }
        assert_eq!(ics_text("a,b;c\\d"), "a\\,b\\;c\\\\d");
    }
}
