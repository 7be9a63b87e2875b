//! The quarterly report's queries: every figure in the report is one of these, and
//! the appendix prints them so that anyone with the same rights can run them again.
//!
//! They read Amar's own tables: `amar.sources` and `amar.source_probes` (connection,
//! availability, freshness), `amar.validation_results` (validation runs),
//! `amar.indicators` (definitions, norms, verification), `amar.releases`,
//! `amar.release_calendar` and `amar.revisions` (releases on time, revisions),
//! `amar.unit_scores` (the evaluation of units) and `amar.query_history` (the use of
//! the system, from the audit log). A quarter is chosen with
//! `jalali_period('quarter', t) = '1404Q2'`, which reads a time in Tehran time.

/// A Jalali quarter: `1404Q2` is Tir to Shahrivar 1404.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quarter {
    pub year: i32,
    /// 1 to 4.
    pub number: u8,
}

impl Quarter {
    /// `1404Q2` (Persian digits too; `q` in either case).
    pub fn parse(text: &str) -> Option<Self> {
        let latin: String = text
            .trim()
            .chars()
            .map(|c| match c {
                '۰'..='۹' => char::from(b'0' + (c as u32 - '۰' as u32) as u8),
                '٠'..='٩' => char::from(b'0' + (c as u32 - '٠' as u32) as u8),
                c => c.to_ascii_uppercase(),
            })
            .collect();
        let (year, number) = latin.split_once('Q')?;
        if year.len() != 4 || !year.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let number: u8 = number.parse().ok()?;
        (1..=4)
            .contains(&number)
            .then_some(Quarter { year, number })
    }

    /// `1404Q2`, as `jalali_period('quarter', …)` writes it.
    pub fn key(self) -> String {
        format!("{}Q{}", self.year, self.number)
    }

    /// The quarter's last month.
    pub fn last_month(self) -> Month {
        Month {
            year: self.year,
            month: self.number * 3,
        }
    }

    /// The season's name: spring, summer, autumn, winter.
    pub fn season(self) -> (&'static str, &'static str) {
        match self.number {
            1 => ("بهار", "Spring"),
            2 => ("تابستان", "Summer"),
            3 => ("پاییز", "Autumn"),
            _ => ("زمستان", "Winter"),
        }
    }
}

/// A Jalali month, as the indicators' periods write it: `1404-06`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month {
    pub year: i32,
    pub month: u8,
}

impl Month {
    pub fn parse(text: &str) -> Option<Self> {
        let (year, month) = text.trim().split_once('-')?;
        let month: u8 = month.parse().ok()?;
        (year.len() == 4 && (1..=12).contains(&month)).then_some(Month {
            year: year.parse().ok()?,
            month,
        })
    }

    pub fn key(self) -> String {
        format!("{}-{:02}", self.year, self.month)
    }

    /// The month `n` months before.
    pub fn back(self, n: u8) -> Self {
        let index = self.year * 12 + i32::from(self.month) - 1 - i32::from(n);
        Month {
            year: index.div_euclid(12),
            month: (index.rem_euclid(12) + 1) as u8,
        }
    }
}

/// The report's parts, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Summary,
    Sources,
    Validation,
    Indicators,
    Releases,
    Evaluation,
    Use,
}

impl Section {
    pub const ALL: [Section; 7] = [
        Section::Summary,
        Section::Sources,
        Section::Validation,
        Section::Indicators,
        Section::Releases,
        Section::Evaluation,
        Section::Use,
    ];

    pub fn title(self) -> (&'static str, &'static str) {
        match self {
            Section::Summary => ("خلاصه", "Summary"),
            Section::Sources => ("منابع داده‌ی ادارات", "Departments' data sources"),
            Section::Validation => ("اعتبارسنجی داده‌ها", "Validation of the data"),
            Section::Indicators => ("شاخص‌ها و هنجارها", "Indicators and their norms"),
            Section::Releases => ("انتشار رسمی و بازنگری‌ها", "Official releases and revisions"),
            Section::Evaluation => ("ارزیابی واحدها", "Evaluation of units"),
            Section::Use => ("استفاده از سامانه", "Use of the system"),
        }
    }
}

/// One of the report's queries.
#[derive(Debug, Clone)]
pub struct Query {
    /// `Q1`, `Q2`, …: how the text and the appendix name it.
    pub id: String,
    pub section: Section,
    /// What it shows, in Persian and English.
    pub title: (String, String),
    pub sql: String,
}

/// The latest month of `amar.unit_scores` at or before the quarter's last month.
pub fn latest_evaluated(quarter: Quarter) -> String {
    format!(
        "SELECT max(period) AS period FROM amar.unit_scores \
         WHERE period LIKE '____-__' AND period <= '{}'",
        quarter.last_month().key()
    )
}

/// The quarter's queries. `evaluated` is the month the evaluation of units reads
/// (none when no unit has been scored yet).
pub fn queries(quarter: Quarter, evaluated: Option<Month>) -> Vec<Query> {
    let q = quarter.key();
    let in_quarter = |column: &str| format!("jalali_period('quarter', {column}) = '{q}'");
    let mut list: Vec<(Section, String, String, String)> = vec![];
    let probes = in_quarter("at");
    let runs = in_quarter("run_at");
    let released = in_quarter("publish_at");
    let statements = in_quarter("at");
    list.push((
        Section::Summary,
        "ارقام اصلی فصل".into(),
        "The quarter in figures".into(),
        format!(
            "SELECT\n  (SELECT count(*) FROM amar.sources) AS sources,\n  \
             (SELECT count(*) FROM amar.sources WHERE mode = 'live') AS online_sources,\n  \
             (SELECT round(avg(CASE WHEN healthy THEN 100.0 ELSE 0.0 END), 1) FROM amar.source_probes WHERE {probes}) AS availability_pct,\n  \
             (SELECT count(*) FROM amar.validation_results WHERE {runs}) AS validation_runs,\n  \
             (SELECT round(avg(CASE WHEN outcome = 'passed' THEN 100.0 ELSE 0.0 END), 1) FROM amar.validation_results WHERE {runs}) AS validation_pass_pct,\n  \
             (SELECT count(*) FROM amar.indicators) AS indicators,\n  \
             (SELECT count(*) FROM amar.indicators WHERE target IS NOT NULL) AS indicators_with_norm,\n  \
             (SELECT count(*) FROM amar.indicators WHERE verified) AS indicators_verified,\n  \
             (SELECT count(*) FROM amar.releases WHERE {released} AND status IN ('published', 'superseded')) AS releases_published,\n  \
             (SELECT count(*) FROM amar.releases WHERE {released} AND class IS NOT NULL) AS revisions,\n  \
             (SELECT count(*) FROM amar.query_history WHERE {statements}) AS statements,\n  \
             (SELECT count(*) FROM amar.query_history WHERE {statements} AND sqlstate = '42501') AS refused_statements"
        ),
    ));
    list.push((
        Section::Sources,
        "منابع متصل و وضعیت کنونی آن‌ها".into(),
        "Sources connected, and their state now".into(),
        "SELECT name AS source, kind,\n  \
         CASE WHEN mode = 'live' THEN 'online' ELSE 'offline' END AS connection,\n  \
         healthy, tables,\n  \
         jalali_format(last_snapshot, 'yyyy/MM/dd HH:mm') AS data_taken, snapshot_rows AS data_rows\n\
         FROM amar.sources ORDER BY name"
            .to_string(),
    ));
    list.push((
        Section::Sources,
        "دسترس‌پذیری و تازگی منابع در طول فصل".into(),
        "Availability and freshness of the sources over the quarter".into(),
        format!(
            "SELECT source,\n  \
             CASE WHEN max(mode) = 'live' THEN 'online' ELSE 'offline' END AS connection,\n  \
             count(*) AS probes,\n  \
             round(avg(CASE WHEN healthy THEN 100.0 ELSE 0.0 END), 1) AS availability_pct,\n  \
             round(max(latency_ms), 1) AS max_latency_ms,\n  \
             jalali_format(max(data_at), 'yyyy/MM/dd HH:mm') AS latest_data,\n  \
             round(max(date_part('epoch', at) - date_part('epoch', data_at)) / 3600.0, 1) AS oldest_data_hours\n\
             FROM amar.source_probes WHERE {probes}\n\
             GROUP BY source ORDER BY source"
        ),
    ));
    list.push((
        Section::Validation,
        "اجرای قواعد اعتبارسنجی و نرخ قبولی، به تفکیک قاعده".into(),
        "Validation runs and pass rates, by rule".into(),
        format!(
            "SELECT split_part(guards, '.', 1) AS department, rule, severity,\n  \
             count(*) AS runs,\n  \
             sum(CASE WHEN outcome = 'passed' THEN 1 ELSE 0 END) AS passed,\n  \
             sum(CASE WHEN outcome = 'violated' THEN 1 ELSE 0 END) AS violated,\n  \
             sum(CASE WHEN outcome = 'failed' THEN 1 ELSE 0 END) AS could_not_run,\n  \
             round(avg(CASE WHEN outcome = 'passed' THEN 100.0 ELSE 0.0 END), 1) AS pass_pct\n\
             FROM amar.validation_results WHERE {runs}\n\
             GROUP BY split_part(guards, '.', 1), rule, severity ORDER BY department, rule"
        ),
    ));
    list.push((
        Section::Validation,
        "نرخ قبولی به تفکیک اداره".into(),
        "Pass rates by department".into(),
        format!(
            "SELECT split_part(guards, '.', 1) AS department,\n  \
             count(DISTINCT rule) AS rules, count(*) AS runs,\n  \
             round(avg(CASE WHEN outcome = 'passed' THEN 100.0 ELSE 0.0 END), 1) AS pass_pct\n\
             FROM amar.validation_results WHERE {runs}\n\
             GROUP BY split_part(guards, '.', 1) ORDER BY department"
        ),
    ));
    list.push((
        Section::Indicators,
        "شاخص‌های تعریف‌شده، به تفکیک اداره".into(),
        "Indicators defined, by department".into(),
        "SELECT department, count(*) AS indicators,\n  \
         sum(CASE WHEN target IS NOT NULL THEN 1 ELSE 0 END) AS with_norm,\n  \
         sum(CASE WHEN verified THEN 1 ELSE 0 END) AS verified\n\
         FROM amar.indicators GROUP BY department ORDER BY department"
            .to_string(),
    ));
    list.push((
        Section::Indicators,
        "هر شاخص با هنجار آن".into(),
        "Each indicator with its norm".into(),
        "SELECT id AS indicator, title_fa, title_en, department, unit, periodicity,\n  \
         target, direction, verified\n\
         FROM amar.indicators ORDER BY department, id"
            .to_string(),
    ));
    list.push((
        Section::Releases,
        "انتشارهای برنامه‌ریزی‌شده‌ی فصل در برابر تقویم".into(),
        "Releases planned in the quarter, against the calendar".into(),
        format!(
            "SELECT indicators, period, scheduled_at_jalali AS scheduled, status, on_time, release_id, moves\n\
             FROM amar.release_calendar WHERE {}\n\
             ORDER BY scheduled_at, indicators",
            in_quarter("scheduled_at")
        ),
    ));
    list.push((
        Section::Releases,
        "انتشارهای فصل".into(),
        "Releases in the quarter".into(),
        format!(
            "SELECT release_id, period, indicators, status, publish_at_jalali AS published, released_by, class, reason\n\
             FROM amar.releases WHERE {released}\n\
             ORDER BY publish_at, release_id"
        ),
    ));
    list.push((
        Section::Releases,
        "بازنگری‌ها و دلایل آن‌ها".into(),
        "Revisions and their reasons".into(),
        format!(
            "SELECT r.release_id, r.period, r.indicators, r.class, r.reason,\n  \
             count(v.cell) AS cells_changed\n\
             FROM amar.releases r\n\
             LEFT JOIN amar.revisions v ON v.release_id = r.release_id\n\
             WHERE {} AND r.class IS NOT NULL\n\
             GROUP BY r.release_id, r.period, r.indicators, r.class, r.reason\n\
             ORDER BY r.release_id",
            in_quarter("r.publish_at")
        ),
    ));
    if let Some(month) = evaluated {
        let before = month.back(3);
        list.push((
            Section::Evaluation,
            format!(
                "امتیاز و رتبه‌ی واحدها در {}، و تغییر از {}",
                crate::display::persian(&month.key()),
                crate::display::persian(&before.key())
            ),
            format!(
                "Score and rank of each unit in {}, and the change since {}",
                month.key(),
                before.key()
            ),
            format!(
                "SELECT c.unit, c.unit_fa, c.unit_en, round(c.score, 1) AS score, c.rank,\n  \
                 c.on_target, c.warning, c.off_target,\n  \
                 round(p.score, 1) AS previous_score, p.rank AS previous_rank,\n  \
                 round(c.score - p.score, 1) AS score_change, p.rank - c.rank AS rank_change\n\
                 FROM amar.unit_scores c\n\
                 LEFT JOIN amar.unit_scores p ON p.unit = c.unit AND p.period = '{}'\n\
                 WHERE c.period = '{}'\n\
                 ORDER BY c.rank, c.unit",
                before.key(),
                month.key()
            ),
        ));
    }
    list.push((
        Section::Use,
        "دستورها به تفکیک درگاه".into(),
        "Statements by front end".into(),
        format!(
            "SELECT protocol AS front_end, count(*) AS statements,\n  \
             count(DISTINCT user_name) AS users,\n  \
             sum(CASE WHEN sqlstate IS NULL THEN 0 ELSE 1 END) AS failed,\n  \
             sum(CASE WHEN sqlstate = '42501' THEN 1 ELSE 0 END) AS refused\n\
             FROM amar.query_history WHERE {statements}\n\
             GROUP BY protocol ORDER BY statements DESC, front_end"
        ),
    ));
    list.push((
        Section::Use,
        "دستورها به تفکیک نقش".into(),
        "Statements by role".into(),
        format!(
            "SELECT coalesce(r.role, '(none)') AS role, count(*) AS statements,\n  \
             count(DISTINCT h.user_name) AS users\n\
             FROM amar.query_history h\n\
             LEFT JOIN (SELECT m.rolname AS user_name, g.rolname AS role\n  \
             FROM pg_catalog.pg_auth_members a\n  \
             JOIN pg_catalog.pg_roles m ON m.oid = a.member\n  \
             JOIN pg_catalog.pg_roles g ON g.oid = a.roleid) r ON r.user_name = h.user_name\n\
             WHERE {}\n\
             GROUP BY coalesce(r.role, '(none)') ORDER BY statements DESC, role",
            in_quarter("h.at")
        ),
    ));
    list.push((
        Section::Use,
        "خواندن داده‌ها به تفکیک اداره (طرح)".into(),
        "Reads by department (schema read)".into(),
        format!(
            "SELECT split_part(object, '.', 1) AS schema, count(*) AS reads\n\
             FROM (SELECT unnest(objects) AS object FROM amar.query_history WHERE {statements}) t\n\
             GROUP BY split_part(object, '.', 1) ORDER BY reads DESC, schema"
        ),
    ));
    list.push((
        Section::Use,
        "پرخواننده‌ترین شاخص‌ها".into(),
        "Indicators most read".into(),
        format!(
            "SELECT split_part(object, '.', 2) AS indicator, count(*) AS reads,\n  \
             sum(CASE WHEN split_part(object, '.', 1) = 'indicators' THEN 0 ELSE 1 END) AS official_reads\n\
             FROM (SELECT unnest(objects) AS object FROM amar.query_history WHERE {statements}) t\n\
             WHERE split_part(object, '.', 1) IN ('indicators', 'official', 'official_history')\n\
             GROUP BY split_part(object, '.', 2) ORDER BY reads DESC, indicator LIMIT 10"
        ),
    ));
    list.push((
        Section::Use,
        "تلاش‌های ردشده".into(),
        "Refused attempts".into(),
        format!(
            "SELECT user_name, protocol AS front_end, count(*) AS attempts,\n  \
             min(jalali_format(at, 'yyyy/MM/dd HH:mm')) AS first_at\n\
             FROM amar.query_history WHERE {statements} AND sqlstate = '42501'\n\
             GROUP BY user_name, protocol ORDER BY attempts DESC, user_name LIMIT 20"
        ),
    ));
    list.into_iter()
        .enumerate()
        .map(|(i, (section, fa, en, sql))| Query {
            id: format!("Q{}", i + 1),
            section,
            title: (fa, en),
            sql,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_and_months() {
        let q = Quarter::parse("۱۴۰۴q۲").unwrap();
        assert_eq!(q.key(), "1404Q2");
        assert_eq!(q.last_month().key(), "1404-06");
        assert_eq!(Quarter::parse("1404Q5"), None);
        assert_eq!(Quarter::parse("404Q1"), None);
        assert_eq!(Quarter::parse("1404-06"), None);
        let m = Month::parse("1404-02").unwrap();
        assert_eq!(m.back(3).key(), "1403-11");
        assert_eq!(Month::parse("1404-13"), None);
    }

    #[test]
    fn every_query_reads_only_the_quarter_asked() {
        let q = Quarter::parse("1404Q2").unwrap();
        let all = queries(q, Month::parse("1403-12"));
        assert!(all.iter().any(|x| x.section == Section::Evaluation));
        for query in &all {
            if query.sql.contains("query_history") || query.sql.contains("validation_results") {
                assert!(query.sql.contains("= '1404Q2'"), "{}", query.sql);
            }
        }
        // Without a scored month there is no evaluation query, and ids stay dense.
        let without = queries(q, None);
        assert_eq!(without.len(), all.len() - 1);
        assert_eq!(without.last().unwrap().id, format!("Q{}", without.len()));
    }
}
