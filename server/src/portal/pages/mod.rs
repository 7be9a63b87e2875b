//! The pages: each runs its queries in the visitor's session and writes the main
//! part of its page (the frame around it is [`super::page::Frame`]).
//!
//! A page never decides what a visitor may see: it asks, and shows what the engine
//! answers. What it cannot see is simply not there — an indicator the visitor may
//! not read is "not found", exactly like one that does not exist.

mod home;
mod indicator;
mod office;
mod units;

use std::collections::HashSet;
use std::fmt::Write;

use super::page::{Frame, t};
use super::query::{self, Param, Table, Value};
use super::{PageError, Rendered, Request, Target};
use crate::display::{Lang, escape};
use crate::engine::SqlError;

pub async fn render(request: &Request<'_>, target: &Target) -> Result<Rendered, PageError> {
    match target {
        Target::Home => home::page(request).await,
        Target::Indicator(id) => indicator::page(request, id).await,
        Target::Download(id, file) => indicator::download(request, id, file).await,
        Target::Units => units::scorecard(request).await,
        Target::Unit(code) => units::unit(request, code).await,
        Target::Office => office::page(request).await,
        Target::Glossary => office::glossary(request).await,
    }
}

/// Runs one of a page's queries.
async fn run(request: &Request<'_>, sql: &str, params: &[&str]) -> Result<Table, SqlError> {
    let params: Vec<Param> = params.iter().map(|p| Param::Text(p.to_string())).collect();
    query::run(request.session, &request.portal.statements, sql, &params).await
}

/// A name as a quoted SQL identifier.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables of `schemas` the visitor may read, as `schema.table`.
async fn visible(request: &Request<'_>, schemas: &[&str]) -> Result<HashSet<String>, SqlError> {
    let list = schemas
        .iter()
        .map(|s| format!("'{}'", s.replace('\'', "''")))
        .collect::<Vec<_>>()
        .join(", ");
    let table = run(
        request,
        &format!(
            "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema IN ({list})"
        ),
        &[],
    )
    .await?;
    Ok(table
        .rows
        .iter()
        .filter_map(|r| {
            Some(format!(
                "{}.{}",
                table.text(r, "table_schema")?,
                table.text(r, "table_name")?
            ))
        })
        .collect())
}

/// An indicator as `amar.indicators` describes it.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: String,
    pub title: (String, String),
    pub definition: (String, String),
    pub counting: String,
    pub unit: String,
    pub periodicity: String,
    pub department: String,
    pub area: Option<String>,
    pub period: Option<String>,
    pub value: String,
    pub additivity: String,
    pub target: Option<f64>,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub direction: Option<String>,
    pub concepts: Vec<String>,
    pub verified: bool,
    pub failing_rules: Option<String>,
    /// The classification of the area dimension.
    pub area_classification: Option<String>,
}

const INDICATOR_COLUMNS: &str = "id, title_fa, title_en, definition_fa, definition_en, counting_logic, unit, periodicity, department, area_dimension, period_dimension, value_column, additivity, target, lower, upper, direction, concepts, verified, failing_rules, classifications";

impl Indicator {
    fn from_row(table: &Table, row: &[Value]) -> Option<Indicator> {
        let text = |c: &str| table.text(row, c).map(str::to_string);
        let area = text("area_dimension");
        let area_classification = text("classifications").and_then(|list| {
            let area = area.as_deref()?;
            list.split(", ")
                .filter_map(|pair| pair.split_once(": "))
                .find(|(d, _)| *d == area)
                .map(|(_, c)| c.to_string())
        });
        Some(Indicator {
            id: text("id")?,
            title: (text("title_fa")?, text("title_en")?),
            definition: (
                text("definition_fa").unwrap_or_default(),
                text("definition_en").unwrap_or_default(),
            ),
            counting: text("counting_logic").unwrap_or_default(),
            unit: text("unit").unwrap_or_default(),
            periodicity: text("periodicity").unwrap_or_default(),
            department: text("department").unwrap_or_default(),
            area,
            period: text("period_dimension"),
            value: text("value_column").unwrap_or_else(|| "value".into()),
            additivity: text("additivity").unwrap_or_default(),
            target: table.get(row, "target").number(),
            lower: table.get(row, "lower").number(),
            upper: table.get(row, "upper").number(),
            direction: text("direction"),
            concepts: text("concepts")
                .map(|c| {
                    c.split(", ")
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            verified: matches!(table.get(row, "verified"), Value::Bool(true)),
            failing_rules: text("failing_rules"),
            area_classification,
        })
    }

    pub fn title(&self, lang: Lang) -> &str {
        match lang {
            Lang::Fa => &self.title.0,
            Lang::En => &self.title.1,
        }
    }

    /// Whether values add up over units (so a national total is their sum).
    fn additive(&self) -> bool {
        matches!(self.additivity.as_str(), "flow" | "stock")
    }
}

/// Every indicator the visitor may read.
async fn indicators(request: &Request<'_>) -> Result<Vec<Indicator>, SqlError> {
    let table = run(
        request,
        &format!("SELECT {INDICATOR_COLUMNS} FROM amar.indicators ORDER BY department, id"),
        &[],
    )
    .await?;
    Ok(table
        .rows
        .iter()
        .filter_map(|r| Indicator::from_row(&table, r))
        .collect())
}

/// One indicator, if the visitor may read it.
async fn indicator_named(request: &Request<'_>, id: &str) -> Result<Option<Indicator>, SqlError> {
    if id.is_empty() || id.len() > 128 {
        return Ok(None);
    }
    let table = run(
        request,
        &format!("SELECT {INDICATOR_COLUMNS} FROM amar.indicators WHERE id = $1"),
        &[id],
    )
    .await?;
    Ok(table
        .rows
        .first()
        .and_then(|r| Indicator::from_row(&table, r)))
}

/// One period of an indicator's series, national.
#[derive(Debug, Clone)]
pub struct SeriesPoint {
    pub period: String,
    /// The national figure: the total for additive indicators (none when a unit's
    /// value is missing or suppressed), the median of units for others.
    pub value: Option<f64>,
    /// Released: the release that holds it.
    pub release: Option<String>,
}

/// The national series of an indicator from `table` (`indicators.<id>` or
/// `official.<id>`), oldest first.
async fn series(
    request: &Request<'_>,
    indicator: &Indicator,
    schema: &str,
) -> Result<Vec<SeriesPoint>, SqlError> {
    let Some(period) = &indicator.period else {
        return Ok(vec![]);
    };
    let value = ident(&indicator.value);
    let aggregate = if indicator.additive() {
        format!("sum({value})")
    } else {
        format!("median({value})")
    };
    let release = if schema == "official" {
        "max(release_id)"
    } else {
        "CAST(NULL AS VARCHAR)"
    };
    let sql = format!(
        "SELECT CAST({p} AS VARCHAR) AS period, {aggregate} AS value, count(*) AS units, count({value}) AS known, {release} AS release_id \
         FROM {schema}.{id} GROUP BY {p} ORDER BY {p}",
        p = ident(period),
        id = ident(&indicator.id),
    );
    let table = run(request, &sql, &[]).await?;
    Ok(table
        .rows
        .iter()
        .map(|r| {
            let units = match table.get(r, "units") {
                Value::Int(n) => *n,
                _ => 0,
            };
            let known = match table.get(r, "known") {
                Value::Int(n) => *n,
                _ => 0,
            };
            let value = table.get(r, "value").number();
            SeriesPoint {
                period: table.text(r, "period").unwrap_or_default().to_string(),
                value: if indicator.additive() && known < units {
                    None
                } else {
                    value
                },
                release: table.text(r, "release_id").map(str::to_string),
            }
        })
        .collect())
}

/// The series as readers see it: official figures where a period is released,
/// provisional (live) ones elsewhere.
fn merged(live: Vec<SeriesPoint>, official: Vec<SeriesPoint>) -> Vec<SeriesPoint> {
    let mut all: std::collections::BTreeMap<String, SeriesPoint> =
        live.into_iter().map(|p| (p.period.clone(), p)).collect();
    for p in official {
        all.insert(p.period.clone(), p);
    }
    all.into_values().collect()
}

/// The labels of a classification's codes, `code → (fa, en)`.
async fn labels(
    request: &Request<'_>,
    classification: Option<&str>,
) -> Result<std::collections::HashMap<String, (String, String)>, SqlError> {
    let Some(class) = classification else {
        return Ok(Default::default());
    };
    let table = run(
        request,
        "SELECT code, label_fa, label_en FROM amar.classifications WHERE classification = $1",
        &[class],
    )
    .await?;
    Ok(table
        .rows
        .iter()
        .filter_map(|r| {
            Some((
                table.text(r, "code")?.to_string(),
                (
                    table.text(r, "label_fa")?.to_string(),
                    table.text(r, "label_en")?.to_string(),
                ),
            ))
        })
        .collect())
}

/// A table's header cell that sorts the page by `key`: a link, so it works without
/// script; `current` is the page's (sort, direction).
fn sort_header(link: &str, label: &str, key: &str, current: (&str, &str), numeric: bool) -> String {
    let (sort, dir) = current;
    let next_dir = if sort == key && dir == "asc" {
        "desc"
    } else {
        "asc"
    };
    let (aria, arrow) = match (sort == key, dir) {
        (true, "asc") => (" aria-sort=\"ascending\"", " ▲"),
        (true, _) => (" aria-sort=\"descending\"", " ▼"),
        _ => ("", ""),
    };
    let sep = if link.contains('?') { '&' } else { '?' };
    format!(
        "<th scope=\"col\"{}{aria}><a href=\"{}\">{label}{arrow}</a></th>",
        if numeric { " class=\"num\"" } else { "" },
        escape(&format!("{link}{sep}sort={key}&dir={next_dir}"))
    )
}

/// A sign-in form (`message` says what went wrong before).
pub fn signin_page(
    frame: &Frame,
    next: &str,
    token: &str,
    message: Option<&str>,
    user: &str,
) -> String {
    let lang = frame.lang;
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{}</p>\n",
        t(lang, "ورود کارکنان", "Staff sign-in"),
        t(
            lang,
            "کارکنان سازمان با همان نام کاربری و گذرواژه‌ی پایگاه آمار وارد می‌شوند و ارقام حوزه‌ی خود را، بیش از آنچه برای همگان منتشر شده، می‌بینند.",
            "Staff sign in with the same user name and password as for the statistics database, and see their own area's figures beyond what is published for everyone."
        )
    );
    if let Some(m) = message {
        let _ = writeln!(
            body,
            "<p class=\"notice error\" role=\"alert\">{}</p>",
            escape(m)
        );
    }
    let _ = write!(
        body,
        "<form class=\"signin\" method=\"post\" action=\"{}\">\n\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">\n\
         <input type=\"hidden\" name=\"next\" value=\"{}\">\n\
         <label for=\"user\">{}</label><input type=\"text\" id=\"user\" name=\"user\" autocomplete=\"username\" required value=\"{}\" dir=\"ltr\">\n\
         <label for=\"password\">{}</label><input type=\"password\" id=\"password\" name=\"password\" autocomplete=\"current-password\" required dir=\"ltr\">\n\
         <button type=\"submit\">{}</button>\n</form>\n",
        frame.link("/signin"),
        escape(token),
        escape(next),
        t(lang, "نام کاربری", "User name"),
        escape(user),
        t(lang, "گذرواژه", "Password"),
        t(lang, "ورود", "Sign in"),
    );
    frame.render(t(lang, "ورود کارکنان", "Staff sign-in"), &body)
}
