//! The statistics office's definitions in config files: `[[indicator]]`,
//! `[[glossary]]` and `[[validation]]`, in `amar.toml` itself or in any `*.toml` file
//! of the folder `[catalog] dir` names (one file per indicator, if you like).
//!
//! Each entry is checked here, with the file, line and key of what is wrong; the SQL
//! is checked when the engine starts (it needs the sources' tables).

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::Path;

use amar_catalog::statistics::{
    Additivity, ClassCode, Classification, Definitions, Direction, GlossaryEntry, Indicator, Norm,
    Rule, Severity,
};
use serde::Deserialize;
use toml::Spanned;

use super::{ConfigError, Locator, parse_interval, valid_schema_name};

/// The default smallest cell shown to the public.
pub const DEFAULT_MIN_CELL: u32 = 5;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawDefinitions {
    #[serde(default, rename = "indicator")]
    pub indicators: Vec<RawIndicator>,
    #[serde(default)]
    pub glossary: Vec<RawGlossary>,
    #[serde(default, rename = "validation")]
    pub rules: Vec<RawRule>,
    #[serde(default, rename = "release")]
    pub releases: Vec<RawRelease>,
    #[serde(default, rename = "classification")]
    pub classifications: Vec<RawClassification>,
}

/// A code list: `[[classification]]` with `id`, titles and either `codes`, each
/// `{ code, fa, en, parent }` (the parent another code of the same list), or `file`, a
/// CSV file with the columns `code,fa,en,parent` (relative to the TOML file).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawClassification {
    id: Spanned<String>,
    title_fa: String,
    title_en: String,
    codes: Option<Spanned<Vec<RawCode>>>,
    file: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawCode {
    code: String,
    fa: String,
    en: String,
    parent: Option<String>,
}

/// A release announced ahead: `[[release]]` with `indicators`, `period` and `at`
/// (Tehran time, Gregorian or Jalali), and `moved`, the earlier times with why.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRelease {
    indicators: Spanned<Vec<String>>,
    period: Spanned<String>,
    at: Spanned<String>,
    #[serde(default)]
    moved: Vec<Spanned<RawMove>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawMove {
    from: String,
    reason: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIndicator {
    id: Spanned<String>,
    title_fa: String,
    title_en: String,
    #[serde(default)]
    definition_fa: String,
    #[serde(default)]
    definition_en: String,
    #[serde(default)]
    counting: String,
    unit: String,
    periodicity: Spanned<String>,
    #[serde(default)]
    department: String,
    #[serde(default)]
    dimensions: Vec<String>,
    area: Option<Spanned<String>>,
    period: Option<Spanned<String>>,
    value: Option<String>,
    count: Option<String>,
    min_cell: Option<Spanned<i64>>,
    additivity: Spanned<String>,
    norm: Option<Spanned<RawNorm>>,
    #[serde(default)]
    concepts: Vec<Spanned<String>>,
    /// The classification each coded dimension uses.
    classifications: Option<Spanned<BTreeMap<String, String>>>,
    sql: Spanned<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawNorm {
    target: f64,
    lower: Option<f64>,
    upper: Option<f64>,
    direction: Option<String>,
    weight: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGlossary {
    term: Spanned<String>,
    title_fa: String,
    title_en: String,
    #[serde(default)]
    definition_fa: String,
    #[serde(default)]
    definition_en: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRule {
    id: Spanned<String>,
    title_fa: String,
    title_en: String,
    severity: Spanned<String>,
    #[serde(default)]
    guards: Vec<String>,
    sql: Spanned<String>,
    every: Option<Spanned<String>>,
}

/// Definitions gathered from several files, with where each came from.
#[derive(Debug, Default)]
pub(super) struct Gathered {
    definitions: Definitions,
    /// id → file:line, to name both places of a duplicate.
    seen: BTreeMap<String, String>,
    /// Concepts indicators use, with where, checked against the glossary at the end.
    concepts: Vec<(String, ConfigError)>,
    /// Indicators planned releases name, with where, checked at the end.
    planned_indicators: Vec<(String, ConfigError)>,
    /// Classifications indicators name, with where, checked at the end.
    classes_named: Vec<(String, ConfigError)>,
}

impl Gathered {
    /// Adds one file's definitions.
    pub(super) fn add(&mut self, raw: RawDefinitions, at: &Locator<'_>) -> Result<(), ConfigError> {
        for release in raw.releases {
            self.release(release, at)?;
        }
        for c in raw.classifications {
            self.classification(c, at)?;
        }
        for g in raw.glossary {
            let term = g.term.get_ref().trim().to_string();
            let here = format!("glossary term \"{term}\"");
            if term.is_empty() {
                return Err(at.error(Some(g.term.span()), "glossary: `term` is empty"));
            }
            self.unique(&format!("glossary {term}"), &here, g.term.span(), at)?;
            self.definitions.glossary.push(GlossaryEntry {
                term,
                title_fa: g.title_fa,
                title_en: g.title_en,
                definition_fa: g.definition_fa,
                definition_en: g.definition_en,
            });
        }
        for raw in raw.indicators {
            let id = raw.id.get_ref().clone();
            let span = raw.id.span();
            let indicator = indicator(raw, at, &mut self.concepts, &mut self.classes_named)?;
            self.unique(
                &format!("indicator {id}"),
                &format!("indicator \"{id}\""),
                span,
                at,
            )?;
            self.definitions.indicators.push(indicator);
        }
        for r in raw.rules {
            let id = r.id.get_ref().clone();
            let here = format!("validation rule \"{id}\"");
            let fail = |span: Range<usize>, key: &str, why: String| {
                Err(at.error(Some(span), format!("{here}, key `{key}`: {why}")))
            };
            if !valid_schema_name(&id) {
                return fail(
                    r.id.span(),
                    "id",
                    "lower-case letters, digits and '_', starting with a letter".into(),
                );
            }
            let Some(severity) = Severity::parse(r.severity.get_ref()) else {
                return fail(
                    r.severity.span(),
                    "severity",
                    format!(
                        "\"{}\" is not a severity; use error, warning or info",
                        r.severity.get_ref()
                    ),
                );
            };
            let every = match &r.every {
                None => None,
                Some(e) => match parse_interval(e.get_ref()) {
                    Some(d) => Some(d),
                    None => {
                        return fail(
                            e.span(),
                            "every",
                            format!(
                                "\"{}\" is not an interval; write e.g. \"15m\", \"6h\" or \"1d\"",
                                e.get_ref()
                            ),
                        );
                    }
                },
            };
            let sql = query_text(r.sql.get_ref());
            if sql.is_empty() {
                return fail(
                    r.sql.span(),
                    "sql",
                    "empty; write the query that returns the violating rows".into(),
                );
            }
            self.unique(&format!("rule {id}"), &here, r.id.span(), at)?;
            self.definitions.rules.push(Rule {
                id,
                title_fa: r.title_fa,
                title_en: r.title_en,
                severity,
                guards: r.guards,
                sql,
                every,
            });
        }
        Ok(())
    }

    fn unique(
        &mut self,
        key: &str,
        here: &str,
        span: Range<usize>,
        at: &Locator<'_>,
    ) -> Result<(), ConfigError> {
        let place = format!("{}:{}", at.file, at.line(span.clone()));
        if let Some(earlier) = self.seen.get(key) {
            return Err(at.error(
                Some(span),
                format!("{here} is defined twice (first at {earlier})"),
            ));
        }
        self.seen.insert(key.to_string(), place);
        Ok(())
    }

    /// The definitions, once every file is in: concepts must be in the glossary, and
    /// planned releases name indicators that exist.
    pub(super) fn finish(self) -> Result<Definitions, ConfigError> {
        for (term, error) in self.concepts {
            if !self.definitions.glossary.iter().any(|g| g.term == term) {
                return Err(error);
            }
        }
        for (id, error) in self.planned_indicators {
            if !self.definitions.indicators.iter().any(|i| i.id == id) {
                return Err(error);
            }
        }
        for (id, error) in self.classes_named {
            if !self.definitions.classifications.iter().any(|c| c.id == id) {
                return Err(error);
            }
        }
        Ok(self.definitions)
    }

    /// Adds one classification: codes unique and labelled, parents among its codes,
    /// no code its own ancestor.
    fn classification(
        &mut self,
        raw: RawClassification,
        at: &Locator<'_>,
    ) -> Result<(), ConfigError> {
        let id = raw.id.get_ref().clone();
        let here = format!("classification \"{id}\"");
        let fail = |span: Range<usize>, key: &str, why: String| {
            Err(at.error(Some(span), format!("{here}, key `{key}`: {why}")))
        };
        let (span, raw_codes) = match (raw.codes, raw.file) {
            (Some(codes), None) => (codes.span(), codes.into_inner()),
            (None, Some(file)) => {
                let span = file.span();
                match read_codes(at, file.get_ref()) {
                    Ok(codes) => (span, codes),
                    Err(why) => return fail(span, "file", why),
                }
            }
            _ => {
                return fail(
                    raw.id.span(),
                    "codes",
                    "give either `codes` or `file` (a CSV of code,fa,en,parent)".into(),
                );
            }
        };
        if !valid_schema_name(&id) {
            return fail(
                raw.id.span(),
                "id",
                "lower-case letters, digits and '_', starting with a letter".into(),
            );
        }
        let mut codes: Vec<ClassCode> = vec![];
        for c in raw_codes {
            let code = c.code.trim().to_string();
            if code.is_empty() || c.fa.trim().is_empty() || c.en.trim().is_empty() {
                return fail(
                    span,
                    "codes",
                    format!("code \"{code}\" needs a code and both labels, fa and en"),
                );
            }
            if codes.iter().any(|k| k.code == code) {
                return fail(span, "codes", format!("code \"{code}\" is listed twice"));
            }
            codes.push(ClassCode {
                code,
                label_fa: c.fa.trim().to_string(),
                label_en: c.en.trim().to_string(),
                parent: c.parent.map(|p| p.trim().to_string()),
            });
        }
        if codes.is_empty() {
            return fail(
                span,
                "codes",
                "a classification lists at least one code".into(),
            );
        }
        let class = Classification {
            id: id.clone(),
            title_fa: raw.title_fa,
            title_en: raw.title_en,
            codes,
        };
        for code in &class.codes {
            if let Some(parent) = &code.parent
                && class.code(parent).is_none()
            {
                return fail(
                    span,
                    "codes",
                    format!(
                        "the parent \"{parent}\" of code \"{}\" is not a code of this classification",
                        code.code
                    ),
                );
            }
            if class.level(&code.code) > class.codes.len() {
                return fail(
                    span,
                    "codes",
                    format!("code \"{}\" is its own ancestor", code.code),
                );
            }
        }
        self.unique(&format!("classification {id}"), &here, raw.id.span(), at)?;
        self.definitions.classifications.push(class);
        Ok(())
    }

    /// Adds one planned release.
    fn release(&mut self, raw: RawRelease, at: &Locator<'_>) -> Result<(), ConfigError> {
        let period = raw.period.get_ref().trim().to_string();
        let here = format!("release of {period}");
        let fail = |span: Range<usize>, key: &str, why: String| {
            Err(at.error(Some(span), format!("{here}, key `{key}`: {why}")))
        };
        if period.is_empty() {
            return fail(raw.period.span(), "period", "empty".into());
        }
        let moment = |text: &str| amar_catalog::releases::calendar::parse_moment(text);
        let Some(when) = moment(raw.at.get_ref()) else {
            return fail(
                raw.at.span(),
                "at",
                format!(
                    "\"{}\" is not a time; write \"1404/02/15 10:00\" (Jalali) or \"2025-05-05 10:00\", Tehran time",
                    raw.at.get_ref()
                ),
            );
        };
        if raw.indicators.get_ref().is_empty() {
            return fail(raw.indicators.span(), "indicators", "empty".into());
        }
        for id in raw.indicators.get_ref() {
            self.unique(
                &format!("release {period} {id}"),
                &format!("the release of \"{id}\" for {period}"),
                raw.indicators.span(),
                at,
            )?;
            self.planned_indicators.push((
                id.clone(),
                at.error(
                    Some(raw.indicators.span()),
                    format!("{here}, key `indicators`: there is no indicator \"{id}\""),
                ),
            ));
        }
        let mut moves = vec![];
        for m in raw.moved {
            let span = m.span();
            let m = m.into_inner();
            let Some(from) = moment(&m.from) else {
                return fail(span, "moved", format!("\"{}\" is not a time", m.from));
            };
            if m.reason.trim().is_empty() {
                return fail(
                    span,
                    "moved",
                    "a change of date needs a reason, which is kept".into(),
                );
            }
            moves.push(amar_catalog::releases::calendar::Move {
                from,
                reason: m.reason.trim().to_string(),
            });
        }
        self.definitions
            .calendar
            .push(amar_catalog::releases::calendar::Planned {
                indicators: raw.indicators.into_inner(),
                period,
                at: when,
                moves,
            });
        Ok(())
    }
}

/// The codes of a classification's CSV file (`code,fa,en,parent`, a header first;
/// `parent` may be left out or empty), relative to the TOML file that names it.
fn read_codes(at: &Locator<'_>, file: &str) -> Result<Vec<RawCode>, String> {
    let path = Path::new(at.file.as_str())
        .parent()
        .unwrap_or(Path::new("."))
        .join(file);
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_path(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let headers = reader
        .headers()
        .map_err(|e| format!("{}: {e}", path.display()))?
        .clone();
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (Some(code), Some(fa), Some(en)) = (column("code"), column("fa"), column("en")) else {
        return Err(format!(
            "{} needs the columns code, fa, en (and parent if the list has a hierarchy)",
            path.display()
        ));
    };
    let parent = column("parent");
    let mut codes = vec![];
    for (n, record) in reader.records().enumerate() {
        let record = record.map_err(|e| format!("{}, row {}: {e}", path.display(), n + 2))?;
        let get = |i: usize| record.get(i).unwrap_or("").to_string();
        codes.push(RawCode {
            code: get(code),
            fa: get(fa),
            en: get(en),
            parent: parent.map(get).filter(|p| !p.is_empty()),
        });
    }
    Ok(codes)
}

/// SQL as written, without the trailing semicolon an editor adds.
fn query_text(sql: &str) -> String {
    sql.trim().trim_end_matches(';').trim().to_string()
}

fn indicator(
    raw: RawIndicator,
    at: &Locator<'_>,
    concepts: &mut Vec<(String, ConfigError)>,
    classes_named: &mut Vec<(String, ConfigError)>,
) -> Result<Indicator, ConfigError> {
    let id = raw.id.get_ref().clone();
    let here = format!("indicator \"{id}\"");
    let fail = |span: Range<usize>, key: &str, why: String| {
        Err(at.error(Some(span), format!("{here}, key `{key}`: {why}")))
    };
    if !valid_schema_name(&id) {
        return fail(
            raw.id.span(),
            "id",
            "an indicator id is a view name: lower-case letters, digits and '_', starting with a letter".into(),
        );
    }
    let periodicity = raw.periodicity.get_ref().as_str();
    if !matches!(periodicity, "monthly" | "quarterly" | "yearly") {
        return fail(
            raw.periodicity.span(),
            "periodicity",
            format!("\"{periodicity}\" is not a periodicity; use monthly, quarterly or yearly"),
        );
    }
    let Some(additivity) = Additivity::parse(raw.additivity.get_ref()) else {
        return fail(
            raw.additivity.span(),
            "additivity",
            format!(
                "\"{}\" is not how an indicator adds up; use flow (sums over time and units), stock (last value of a period, sums over units) or ratio (recomputed, never summed)",
                raw.additivity.get_ref()
            ),
        );
    };
    for (key, dim) in [("area", &raw.area), ("period", &raw.period)] {
        if let Some(d) = dim
            && !raw.dimensions.contains(d.get_ref())
        {
            return fail(
                d.span(),
                key,
                format!(
                    "\"{}\" is not one of `dimensions` ({})",
                    d.get_ref(),
                    raw.dimensions.join(", ")
                ),
            );
        }
    }
    let min_cell = match &raw.min_cell {
        None => DEFAULT_MIN_CELL,
        Some(m) => match u32::try_from(*m.get_ref()) {
            Ok(n @ 1..=1000) => n,
            _ => {
                return fail(
                    m.span(),
                    "min_cell",
                    format!(
                        "{} is not a cell size; agencies use 3 to 11 (default {DEFAULT_MIN_CELL})",
                        m.get_ref()
                    ),
                );
            }
        },
    };
    let norm = match raw.norm {
        None => None,
        Some(n) => {
            let span = n.span();
            let n = n.into_inner();
            let direction = match n.direction.as_deref() {
                None => Direction::Higher,
                Some(d) => match Direction::parse(d) {
                    Some(d) => d,
                    None => {
                        return fail(
                            span,
                            "norm.direction",
                            format!("\"{d}\" is not a direction; use higher, lower or range"),
                        );
                    }
                },
            };
            let weight = n.weight.unwrap_or(1.0);
            if !(weight.is_finite() && weight > 0.0) {
                return fail(span, "norm.weight", "a weight is a number above 0".into());
            }
            let bad = match direction {
                Direction::Higher => n
                    .lower
                    .filter(|l| *l > n.target)
                    .map(|_| "`lower` is above `target`"),
                Direction::Lower => n
                    .upper
                    .filter(|u| *u < n.target)
                    .map(|_| "`upper` is below `target`"),
                Direction::Range => match (n.lower, n.upper) {
                    (Some(l), Some(u)) if l <= u => None,
                    (Some(_), Some(_)) => Some("`lower` is above `upper`"),
                    _ => Some("a range needs both `lower` and `upper`"),
                },
            };
            if let Some(why) = bad {
                return fail(span, "norm", why.into());
            }
            Some(Norm {
                target: n.target,
                lower: n.lower,
                upper: n.upper,
                direction,
                weight,
            })
        }
    };
    for c in &raw.concepts {
        concepts.push((
            c.get_ref().clone(),
            at.error(
                Some(c.span()),
                format!(
                    "{here}, key `concepts`: \"{}\" is not a term of the glossary; add a [[glossary]] entry for it",
                    c.get_ref()
                ),
            ),
        ));
    }
    let classes_span = raw.classifications.as_ref().map_or(0..0, |c| c.span());
    let classifications = raw
        .classifications
        .map(Spanned::into_inner)
        .unwrap_or_default();
    for (dimension, class) in &classifications {
        if !raw.dimensions.contains(dimension) {
            return fail(
                classes_span,
                "classifications",
                format!(
                    "\"{dimension}\" is not one of `dimensions` ({})",
                    raw.dimensions.join(", ")
                ),
            );
        }
        classes_named.push((
            class.clone(),
            at.error(
                Some(classes_span.clone()),
                format!(
                    "{here}, key `classifications`: \"{class}\" is not a classification; add a [[classification]] entry for it"
                ),
            ),
        ));
    }
    let sql = query_text(raw.sql.get_ref());
    if sql.is_empty() {
        return fail(
            raw.sql.span(),
            "sql",
            "empty; write the query that computes the indicator".into(),
        );
    }
    Ok(Indicator {
        id,
        title_fa: raw.title_fa,
        title_en: raw.title_en,
        definition_fa: raw.definition_fa,
        definition_en: raw.definition_en,
        counting: raw.counting,
        unit: raw.unit,
        periodicity: periodicity.to_string(),
        department: raw.department,
        dimensions: raw.dimensions,
        area: raw.area.map(Spanned::into_inner),
        period: raw.period.map(Spanned::into_inner),
        value: raw.value.unwrap_or_else(|| "value".to_string()),
        count: raw.count,
        min_cell,
        additivity,
        norm,
        concepts: raw.concepts.into_iter().map(Spanned::into_inner).collect(),
        classifications,
        sql,
    })
}

/// Reads every `*.toml` file of a catalog folder, in name order.
pub(super) fn read_dir(
    dir: &Path,
    gathered: &mut Gathered,
    from: &Locator<'_>,
    span: Option<Range<usize>>,
) -> Result<(), ConfigError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        from.error(
            span.clone(),
            format!(
                "[catalog], key `dir`: cannot read the folder {}: {e}",
                dir.display()
            ),
        )
    })?;
    let mut files: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    files.sort();
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            line: None,
            message: format!("cannot read: {e}"),
        })?;
        parse_into(&text, &path.display().to_string(), gathered)?;
    }
    Ok(())
}

/// Parses one definitions file (the folder's files, the demo's catalog).
pub(super) fn parse_into(
    text: &str,
    file: &str,
    gathered: &mut Gathered,
) -> Result<(), ConfigError> {
    let at = Locator {
        file: file.to_string(),
        text,
    };
    let raw: RawDefinitions = at.deserialize()?;
    gathered.add(raw, &at)
}

/// Definitions from one text alone (the embedded demo's catalog).
pub fn parse(text: &str, file: &str) -> Result<Definitions, ConfigError> {
    let mut gathered = Gathered::default();
    parse_into(text, file, &mut gathered)?;
    gathered.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[glossary]]
term = "insured_person"
title_fa = "بیمه‌شده"
title_en = "Insured person"

[[indicator]]
id = "active_insured"
title_fa = "بیمه‌شدگان فعال"
title_en = "Active insured persons"
unit = "persons"
periodicity = "monthly"
dimensions = ["province_code", "period"]
area = "province_code"
period = "period"
count = "value"
additivity = "stock"
concepts = ["insured_person"]
sql = "SELECT 1 AS province_code, '1403-01' AS period, 10 AS value;"
norm = { target = 100, lower = 90, weight = 2 }

[[validation]]
id = "no_orphans"
title_fa = "x"
title_en = "x"
severity = "error"
every = "1h"
sql = "SELECT 1 WHERE false"
"#;

    #[test]
    fn a_good_catalog_parses_with_defaults() {
        let d = parse(GOOD, "c.toml").unwrap();
        let i = &d.indicators[0];
        assert_eq!(i.min_cell, DEFAULT_MIN_CELL);
        assert_eq!(i.value, "value");
        assert_eq!(i.additivity, Additivity::Stock);
        assert_eq!(
            i.sql,
            "SELECT 1 AS province_code, '1403-01' AS period, 10 AS value"
        );
        let n = i.norm.as_ref().unwrap();
        assert_eq!(
            (n.direction, n.weight, n.lower),
            (Direction::Higher, 2.0, Some(90.0))
        );
        assert_eq!(d.rules[0].every, Some(std::time::Duration::from_secs(3600)));
        assert_eq!(d.rules[0].severity, Severity::Error);
    }

    fn error(text: &str) -> String {
        parse(text, "c.toml").unwrap_err().to_string()
    }

    /// GOOD with a classification of two regions and their provinces, which the
    /// indicator's area uses.
    fn classified(codes: &str) -> String {
        format!(
            "{}\n[[classification]]\nid = \"province\"\ntitle_fa = \"استان\"\ntitle_en = \"Province\"\ncodes = [{codes}]\n",
            GOOD.replace(
                "area = \"province_code\"\n",
                "area = \"province_code\"\nclassifications = { province_code = \"province\" }\n",
            )
        )
    }

    const CODES: &str = r#"
  { code = "r1", fa = "منطقهٔ یک", en = "Region 1" },
  { code = "23", fa = "تهران", en = "Tehran", parent = "r1" },
  { code = "5", fa = "اصفهان", en = "Isfahan", parent = "r1" },
"#;

    #[test]
    fn classifications_give_codes_names_and_a_hierarchy() {
        let d = parse(&classified(CODES), "c.toml").unwrap();
        let class = &d.classifications[0];
        assert_eq!(class.codes.len(), 3);
        assert_eq!(class.code("23").unwrap().label_en, "Tehran");
        assert_eq!(class.level("r1"), 1);
        assert_eq!(class.level("23"), 2);
        assert_eq!(
            d.indicators[0]
                .classifications
                .get("province_code")
                .map(String::as_str),
            Some("province")
        );
    }

    #[test]
    fn codes_may_come_from_a_csv_file_beside_the_catalog() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("province.csv"),
            "code,fa,en,parent\nr1,منطقهٔ یک,Region 1,\n23,تهران,\"Tehran, the capital\",r1\n",
        )
        .unwrap();
        let toml =
            classified(CODES).replace(&format!("codes = [{CODES}]"), "file = \"province.csv\"");
        let file = dir.path().join("catalog.toml");
        let d = parse(&toml, &file.display().to_string()).unwrap();
        let class = &d.classifications[0];
        assert_eq!(class.codes.len(), 2);
        assert_eq!(class.code("23").unwrap().label_en, "Tehran, the capital");
        assert_eq!(class.level("23"), 2);
        // A missing file, and neither codes nor file, are said with the key.
        let e = parse(
            &toml.replace("province.csv", "none.csv"),
            &file.display().to_string(),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("key `file`") && e.contains("none.csv"), "{e}");
        let e = error(&toml.replace("file = \"province.csv\"", ""));
        assert!(e.contains("give either `codes` or `file`"), "{e}");
    }

    #[test]
    fn a_broken_classification_is_refused_with_why() {
        let e = error(&classified(&CODES.replace(
            "parent = \"r1\" },\n  { code = \"5\"",
            "parent = \"r9\" },\n  { code = \"5\"",
        )));
        assert!(e.contains("the parent \"r9\" of code \"23\""), "{e}");
        let e = error(&classified(&CODES.replace("\"5\"", "\"23\"")));
        assert!(e.contains("code \"23\" is listed twice"), "{e}");
        let e = error(&classified(&CODES.replace("en = \"Tehran\"", "en = \"\"")));
        assert!(e.contains("needs a code and both labels"), "{e}");
        // A cycle: r1 under 5, 5 under r1.
        let e = error(&classified(&CODES.replace(
            "{ code = \"r1\", fa = \"منطقهٔ یک\", en = \"Region 1\" }",
            "{ code = \"r1\", fa = \"منطقهٔ یک\", en = \"Region 1\", parent = \"5\" }",
        )));
        assert!(e.contains("its own ancestor"), "{e}");
        // An indicator naming a classification nobody declared, or a dimension it
        // does not have.
        let e = error(&classified(CODES).replace(
            "province_code = \"province\" }",
            "province_code = \"county\" }",
        ));
        assert!(e.contains("\"county\" is not a classification"), "{e}");
        let e = error(&classified(CODES).replace(
            "{ province_code = \"province\" }",
            "{ branch = \"province\" }",
        ));
        assert!(
            e.contains("key `classifications`") && e.contains("not one of `dimensions`"),
            "{e}"
        );
    }

    #[test]
    fn mistakes_name_the_file_line_and_key() {
        let e = error(&GOOD.replace("\"stock\"", "\"stocks\""));
        assert!(e.starts_with("c.toml:"), "{e}");
        assert!(
            e.contains("key `additivity`") && e.contains("use flow"),
            "{e}"
        );
        let e = error(&GOOD.replace("area = \"province_code\"", "area = \"branch\""));
        assert!(
            e.contains("key `area`") && e.contains("not one of `dimensions`"),
            "{e}"
        );
        let e = error(&GOOD.replace(
            "concepts = [\"insured_person\"]",
            "concepts = [\"pensioner\"]",
        ));
        assert!(
            e.contains("\"pensioner\" is not a term of the glossary"),
            "{e}"
        );
        let e = error(&GOOD.replace("severity = \"error\"", "severity = \"fatal\""));
        assert!(e.contains("key `severity`"), "{e}");
        let e = error(&GOOD.replace("lower = 90", "lower = 190"));
        assert!(e.contains("`lower` is above `target`"), "{e}");
        let e = error(&GOOD.replace("weight = 2 }", "weight = 2, colour = 1 }"));
        assert!(e.contains("colour"), "{e}");
        let e = error(&format!(
            "{GOOD}{}",
            &GOOD[GOOD.find("[[indicator]]").unwrap()..GOOD.find("[[validation]]").unwrap()]
        ));
        assert!(e.contains("defined twice"), "{e}");
        let e = error(&GOOD.replace("id = \"active_insured\"", "id = \"Active-Insured\""));
        assert!(e.contains("key `id`"), "{e}");
        let e = error(
            &GOOD
                .replace("min_cell", "x")
                .replace("count = \"value\"", "count = \"value\"\nmin_cell = 0"),
        );
        assert!(e.contains("key `min_cell`"), "{e}");
    }

    const PLANNED: &str = r#"
[[release]]
indicators = ["active_insured"]
period = "1403-12"
at = "1404/01/20 10:00"
moved = [{ from = "1404/01/15 10:00", reason = "late provincial returns" }]
"#;

    #[test]
    fn the_release_calendar_takes_jalali_or_gregorian_times_in_tehran() {
        let d = parse(&format!("{GOOD}{PLANNED}"), "c.toml").unwrap();
        let planned = &d.calendar[0];
        assert_eq!(planned.indicators, ["active_insured"]);
        // 20 Farvardin 1404 is 9 April 2025; 10:00 in Tehran is 06:30 UTC.
        assert_eq!(planned.at.to_rfc3339(), "2025-04-09T06:30:00+00:00");
        assert_eq!(planned.moves[0].reason, "late provincial returns");
        let gregorian = parse(
            &format!(
                "{GOOD}{}",
                PLANNED.replace("1404/01/20 10:00", "2025-04-09 10:00")
            ),
            "c.toml",
        )
        .unwrap();
        assert_eq!(gregorian.calendar[0].at, planned.at);

        let e = error(&format!(
            "{GOOD}{}",
            PLANNED.replace("active_insured", "nothing")
        ));
        assert!(
            e.starts_with("c.toml:") && e.contains("no indicator \"nothing\""),
            "{e}"
        );
        let e = error(&format!(
            "{GOOD}{}",
            PLANNED.replace("10:00\"\nmoved", "soon\"\nmoved")
        ));
        assert!(e.contains("key `at`"), "{e}");
        let e = error(&format!(
            "{GOOD}{}",
            PLANNED.replace("late provincial returns", " ")
        ));
        assert!(e.contains("needs a reason"), "{e}");
        let e = error(&format!("{GOOD}{PLANNED}{PLANNED}"));
        assert!(e.contains("defined twice"), "{e}");
    }
}
