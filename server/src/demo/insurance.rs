//! The insurance department's database (SQLite): provinces, branches, sectors,
//! employers, insured persons and monthly contributions.

use std::path::Path;

use rusqlite::{Connection, params};

use super::names::{PROVINCES, SECTORS};
use super::rng::Rng;
use super::world::{CONTRIBUTION_RATE, World, minimum_wage, periods};

const SCHEMA: &str = "
CREATE TABLE provinces (
    code SMALLINT PRIMARY KEY NOT NULL,
    name_fa TEXT NOT NULL,
    name_en TEXT NOT NULL,
    center_fa TEXT NOT NULL
);
CREATE TABLE branches (
    code INT4 PRIMARY KEY NOT NULL,
    province_code SMALLINT NOT NULL,
    name_fa TEXT NOT NULL,
    opened DATE NOT NULL
);
CREATE TABLE economic_sectors (
    code TEXT PRIMARY KEY NOT NULL,
    name_fa TEXT NOT NULL,
    name_en TEXT NOT NULL
);
CREATE TABLE employers (
    id BIGINT PRIMARY KEY NOT NULL,
    name_fa TEXT NOT NULL,
    province_code SMALLINT NOT NULL,
    branch_code INT4 NOT NULL,
    sector_code TEXT NOT NULL,
    registered DATE NOT NULL,
    workforce INT4 NOT NULL
);
CREATE TABLE insured_persons (
    id BIGINT PRIMARY KEY NOT NULL,
    national_id TEXT NOT NULL,
    first_name TEXT NOT NULL,
    last_name TEXT NOT NULL,
    gender TEXT NOT NULL,
    birth_date DATE NOT NULL,
    province_code SMALLINT NOT NULL,
    branch_code INT4 NOT NULL,
    employer_id BIGINT NOT NULL,
    insured_since DATE NOT NULL,
    is_active BOOLEAN NOT NULL
);
CREATE TABLE contributions (
    id BIGINT PRIMARY KEY NOT NULL,
    insured_id BIGINT NOT NULL,
    employer_id BIGINT NOT NULL,
    province_code SMALLINT NOT NULL,
    branch_code INT4 NOT NULL,
    period DATE NOT NULL,
    days_worked SMALLINT NOT NULL,
    wage NUMERIC(14,0) NOT NULL,
    contribution NUMERIC(14,0) NOT NULL,
    paid_amount NUMERIC(14,0) NOT NULL,
    paid_at TIMESTAMP,
    economic_sector TEXT NOT NULL
);
CREATE TABLE _amar_comments (
    table_name TEXT NOT NULL,
    column_name TEXT,
    comment TEXT NOT NULL
);
";

/// Descriptions shown by `\d+`, DBeaver and Metabase (SQLite has no COMMENT ON; the
/// connector reads them from `_amar_comments`).
const COMMENTS: &[(&str, Option<&str>, &str)] = &[
    ("provinces", None, "استان‌های کشور با کد مرکز آمار ایران"),
    ("provinces", Some("code"), "کد استان (مرکز آمار ایران)"),
    ("provinces", Some("name_fa"), "نام استان"),
    ("branches", None, "شعبه‌های سازمان در استان‌ها"),
    ("branches", Some("code"), "کد شعبه: کد استان و شماره شعبه"),
    ("employers", None, "کارفرمایان و کارگاه‌های طرف قرارداد"),
    ("employers", Some("workforce"), "تعداد کارکنان اعلام‌شده"),
    ("insured_persons", None, "بیمه‌شدگان اصلی"),
    ("insured_persons", Some("national_id"), "کد ملی ده‌رقمی"),
    (
        "insured_persons",
        Some("is_active"),
        "در آخرین ماه دوره حق بیمه پرداخت شده است",
    ),
    (
        "contributions",
        None,
        "حق بیمه ماهانه هر بیمه‌شده به تفکیک کارگاه",
    ),
    (
        "contributions",
        Some("period"),
        "ماه (جلالی) حق بیمه، به صورت تاریخ روز نخست ماه",
    ),
    (
        "contributions",
        Some("wage"),
        "دستمزد مشمول کسر حق بیمه (ریال)",
    ),
    (
        "contributions",
        Some("contribution"),
        "حق بیمه متعلقه: ۳۰ درصد دستمزد (ریال)",
    ),
    (
        "contributions",
        Some("paid_amount"),
        "حق بیمه وصول‌شده (ریال)",
    ),
    (
        "contributions",
        Some("paid_at"),
        "زمان پرداخت؛ خالی یعنی پرداخت نشده",
    ),
    ("economic_sectors", None, "بخش‌های اقتصادی (ISIC Rev.4)"),
];

/// Writes `insurance.db`; returns the number of rows written.
pub fn write(path: &Path, world: &World, seed: u64) -> rusqlite::Result<u64> {
    let mut conn = Connection::open(path)?;
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")?;
    conn.execute_batch(SCHEMA)?;
    let tx = conn.transaction()?;
    let mut rows = 0u64;
    {
        let mut st = tx.prepare("INSERT INTO _amar_comments VALUES (?, ?, ?)")?;
        for (table, column, comment) in COMMENTS {
            st.execute(params![table, column, comment])?;
        }
        let mut st = tx.prepare("INSERT INTO provinces VALUES (?, ?, ?, ?)")?;
        for p in &PROVINCES {
            st.execute(params![p.code, p.name_fa, p.name_en, p.center_fa])?;
            rows += 1;
        }
        let mut st = tx.prepare("INSERT INTO branches VALUES (?, ?, ?, ?)")?;
        for b in &world.branches {
            st.execute(params![
                b.code,
                PROVINCES[b.province].code,
                b.name_fa,
                b.opened.to_string()
            ])?;
            rows += 1;
        }
        let mut st = tx.prepare("INSERT INTO economic_sectors VALUES (?, ?, ?)")?;
        for s in &SECTORS {
            st.execute(params![s.0, s.1, s.2])?;
            rows += 1;
        }
        let mut st = tx.prepare("INSERT INTO employers VALUES (?, ?, ?, ?, ?, ?, ?)")?;
        for e in &world.employers {
            let branch = &world.branches[e.branch];
            st.execute(params![
                e.id,
                e.name_fa,
                PROVINCES[branch.province].code,
                branch.code,
                SECTORS[e.sector].0,
                e.registered.to_string(),
                e.workforce
            ])?;
            rows += 1;
        }
        let periods = periods();
        let mut st =
            tx.prepare("INSERT INTO insured_persons VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")?;
        for p in &world.persons {
            let employer = &world.employers[p.employer];
            let branch = &world.branches[employer.branch];
            st.execute(params![
                p.id,
                p.national_id,
                p.first_name,
                p.last_name,
                if p.female { "F" } else { "M" },
                p.birth_date.to_string(),
                PROVINCES[branch.province].code,
                branch.code,
                employer.id,
                periods[p.months.0].1.to_string(),
                p.months.1 == periods.len()
            ])?;
            rows += 1;
        }
        rows += write_contributions(&tx, world, seed)?;
    }
    tx.commit()?;
    conn.execute_batch(
        "CREATE INDEX contributions_period ON contributions (period);
         CREATE INDEX contributions_province ON contributions (province_code);
         ANALYZE;",
    )?;
    Ok(rows)
}

fn write_contributions(
    tx: &rusqlite::Transaction<'_>,
    world: &World,
    seed: u64,
) -> rusqlite::Result<u64> {
    let mut rng = Rng::new(seed);
    let periods = periods();
    let mut st =
        tx.prepare("INSERT INTO contributions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")?;
    let mut id = 1i64;
    // Month by month, as contributions arrive.
    for (m, (jalali, start)) in periods.iter().enumerate() {
        let min_wage = minimum_wage(jalali.year);
        for p in world
            .persons
            .iter()
            .filter(|p| p.months.0 <= m && m < p.months.1)
        {
            let employer = &world.employers[p.employer];
            let branch = &world.branches[employer.branch];
            let days: i64 = if rng.chance(0.9) {
                30
            } else {
                10 + rng.below(20) as i64
            };
            let monthly = (min_wage as f64 * p.wage_factor).max(min_wage as f64);
            let mut wage = ((monthly * days as f64 / 30.0) / 1000.0).round() as i64 * 1000;
            // Planted for the validation rule "no full month below the minimum wage":
            // a handful of rows declare half the legal minimum for 30 days.
            if days == 30 && rng.chance(0.0005) {
                wage = min_wage / 2 / 1000 * 1000;
            }
            let due = (wage as f64 * CONTRIBUTION_RATE).round() as i64;
            let (paid, paid_at) = if rng.chance(0.92) {
                (
                    due,
                    Some(*start + chrono::Duration::days(30 + rng.below(25) as i64)),
                )
            } else if rng.chance(0.4) {
                (
                    due / 2,
                    Some(*start + chrono::Duration::days(40 + rng.below(40) as i64)),
                )
            } else {
                (0, None)
            };
            let paid_at = paid_at.map(|d| {
                let secs = 8 * 3600 + rng.below(9 * 3600);
                format!(
                    "{} {:02}:{:02}:{:02}",
                    d,
                    secs / 3600,
                    secs / 60 % 60,
                    secs % 60
                )
            });
            st.execute(params![
                id,
                p.id,
                employer.id,
                PROVINCES[branch.province].code,
                branch.code,
                start.to_string(),
                days,
                wage,
                due,
                paid,
                paid_at,
                SECTORS[employer.sector].1
            ])?;
            id += 1;
        }
    }
    Ok((id - 1) as u64)
}
