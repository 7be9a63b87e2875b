//! The statistics catalog: indicators with norms, the glossary, validation rules, and
//! the evaluation of units by the indicators.
//!
//! The statistics office defines these in the config (the server parses it into the
//! typed values here); this module makes them names in SQL:
//!
//! - `indicators.<id>`: each indicator as a view, planned with the definer's rights
//!   ([`IndicatorView`]); the policy layer inlines it, applying the reader's row filters
//!   to the tables under it, and users in the public role get its disclosure-controlled
//!   form (small cells NULL, `suppressed` true).
//! - `amar.indicators`, `amar.glossary`, `amar.validation_rules`: the definitions.
//! - `amar.validation_results`: every run of every rule (kept in the data folder).
//! - `amar.indicator_status`: each unit's latest value beside its norm, a status, a
//!   weighted score per unit and the unit's rank.
//!
//! It does not decide who may read these (policies do) and does not schedule rule runs
//! (the server does, through [`Statistics::validate`]).

mod kept;
mod listing;
mod status;
mod validation;
mod views;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::session_state::SessionState;
use datafusion::logical_expr::LogicalPlan;

pub use kept::KeptCounts;
pub use validation::{RuleOutcome, RuleRun, Trigger};
pub use views::{INDICATORS_SCHEMA, IndicatorView, IndicatorsSchema, SUPPRESSED_COLUMN};

use crate::system::SystemSchema;

/// How an indicator adds up over time and over units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Additivity {
    /// Sums over time and over units (contributions collected, claims paid).
    Flow,
    /// Takes the last value of a period, and sums over units (insured persons).
    Stock,
    /// Neither: recompute from its numerator and denominator (rates, averages, ratios).
    Ratio,
}

impl Additivity {
    pub fn as_str(self) -> &'static str {
        match self {
            Additivity::Flow => "flow",
            Additivity::Stock => "stock",
            Additivity::Ratio => "ratio",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "flow" => Some(Self::Flow),
            "stock" => Some(Self::Stock),
            "ratio" => Some(Self::Ratio),
            _ => None,
        }
    }
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// At or above the target is on target; down to `lower` a warning.
    Higher,
    /// At or below the target is on target; up to `upper` a warning.
    Lower,
    /// Between `lower` and `upper` is on target; within one band width outside, a
    /// warning.
    Range,
}

impl Direction {
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Higher => "higher",
            Direction::Lower => "lower",
            Direction::Range => "range",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "higher" => Some(Self::Higher),
            "lower" => Some(Self::Lower),
            "range" => Some(Self::Range),
            _ => None,
        }
    }
}

/// An indicator's norm: the target and the tolerance around it.
#[derive(Debug, Clone, PartialEq)]
pub struct Norm {
    pub target: f64,
    pub lower: Option<f64>,
    pub upper: Option<f64>,
    pub direction: Direction,
    /// The indicator's weight in a unit's score.
    pub weight: f64,
}

/// Where a value stands against its norm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    OnTarget,
    Warning,
    OffTarget,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::OnTarget => "on target",
            Status::Warning => "warning",
            Status::OffTarget => "off target",
        }
    }

    /// Points in a unit's score: the traffic-light scoring of balanced scorecards.
    pub fn points(self) -> f64 {
        match self {
            Status::OnTarget => 1.0,
            Status::Warning => 0.5,
            Status::OffTarget => 0.0,
        }
    }
}

impl Norm {
    /// The status of `value` against this norm.
    pub fn status(&self, value: f64) -> Status {
        match self.direction {
            Direction::Higher => {
                if value >= self.target {
                    Status::OnTarget
                } else if value >= self.lower.unwrap_or(self.target) {
                    Status::Warning
                } else {
                    Status::OffTarget
                }
            }
            Direction::Lower => {
                if value <= self.target {
                    Status::OnTarget
                } else if value <= self.upper.unwrap_or(self.target) {
                    Status::Warning
                } else {
                    Status::OffTarget
                }
            }
            Direction::Range => {
                let lower = self.lower.unwrap_or(self.target);
                let upper = self.upper.unwrap_or(self.target);
                let band = upper - lower;
                if (lower..=upper).contains(&value) {
                    Status::OnTarget
                } else if value >= lower - band && value <= upper + band {
                    Status::Warning
                } else {
                    Status::OffTarget
                }
            }
        }
    }
}

/// One indicator, defined once for the whole organisation.
#[derive(Debug, Clone)]
pub struct Indicator {
    pub id: String,
    pub title_fa: String,
    pub title_en: String,
    pub definition_fa: String,
    pub definition_en: String,
    /// The agreed counting logic, in words.
    pub counting: String,
    /// The unit of measure (persons, percent, rials).
    pub unit: String,
    /// monthly, quarterly or yearly.
    pub periodicity: String,
    pub department: String,
    /// The columns of its SQL that are dimensions (province, period, …).
    pub dimensions: Vec<String>,
    /// The dimension units are evaluated by (a province or branch code), if any.
    pub area: Option<String>,
    /// The time dimension, if any; its greatest value is the latest period.
    pub period: Option<String>,
    /// The column that holds the indicator's value.
    pub value: String,
    /// The column that holds the count of persons or records under each cell, for
    /// disclosure control.
    pub count: Option<String>,
    /// Cells with fewer than this many under them are suppressed for the public.
    pub min_cell: u32,
    pub additivity: Additivity,
    pub norm: Option<Norm>,
    /// Glossary terms it uses.
    pub concepts: Vec<String>,
    /// The classification each coded dimension uses (`province_code` → `province`).
    pub classifications: BTreeMap<String, String>,
    /// The query that computes it: one SELECT (or WITH … SELECT).
    pub sql: String,
}

/// A code list of the statistics office: provinces, counties, economic sectors,
/// service types, with Persian and English labels and a hierarchy (a code's parent is
/// another code of the same list: region → province → county).
#[derive(Debug, Clone)]
pub struct Classification {
    pub id: String,
    pub title_fa: String,
    pub title_en: String,
    pub codes: Vec<ClassCode>,
}

/// One code of a classification.
#[derive(Debug, Clone)]
pub struct ClassCode {
    pub code: String,
    pub label_fa: String,
    pub label_en: String,
    pub parent: Option<String>,
}

impl Classification {
    pub fn code(&self, code: &str) -> Option<&ClassCode> {
        self.codes.iter().find(|c| c.code == code)
    }

    /// How deep a code sits: 1 for a code without a parent.
    pub fn level(&self, code: &str) -> usize {
        let mut level = 1;
        let mut at = self.code(code);
        while let Some(parent) = at.and_then(|c| c.parent.as_deref()) {
            level += 1;
            at = self.code(parent);
            if level > self.codes.len() {
                break;
            }
        }
        level
    }
}

/// A concept's unified definition.
#[derive(Debug, Clone)]
pub struct GlossaryEntry {
    pub term: String,
    pub title_fa: String,
    pub title_en: String,
    pub definition_fa: String,
    pub definition_en: String,
}

/// How bad a violation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Info,
    Warning,
    /// Indicators whose inputs fail the rule are unverified.
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "info" => Some(Self::Info),
            "warning" => Some(Self::Warning),
            "error" => Some(Self::Error),
            _ => None,
        }
    }
}

/// A validation rule: SQL that returns the rows that violate it.
#[derive(Debug, Clone)]
pub struct Rule {
    pub id: String,
    pub title_fa: String,
    pub title_en: String,
    pub severity: Severity,
    /// What it guards: sources (`pension`), tables (`pension.payments`) or indicators
    /// (`indicators.average_pension`). Empty means the tables its SQL reads.
    pub guards: Vec<String>,
    pub sql: String,
    /// Run this often besides at start, after snapshots and on `amar validate`.
    pub every: Option<std::time::Duration>,
}

/// Everything the statistics office defined.
#[derive(Debug, Clone, Default)]
pub struct Definitions {
    pub indicators: Vec<Indicator>,
    pub glossary: Vec<GlossaryEntry>,
    pub rules: Vec<Rule>,
    /// Releases announced ahead.
    pub calendar: Vec<crate::releases::calendar::Planned>,
    /// Code lists the indicators' dimensions use.
    pub classifications: Vec<Classification>,
}

/// The statistics catalog at run time.
#[derive(Debug)]
pub struct Statistics {
    definitions: Definitions,
    /// The engine's base session, which plans indicators and rules with the
    /// definer's rights. Set once the engine is assembled.
    definer: OnceLock<SessionState>,
    results: Mutex<validation::Results>,
    /// The sources, for the version of the data the indicators read.
    sources: OnceLock<Vec<Arc<crate::SourceSchema>>>,
    /// What each indicator reads, once planned (it does not change while the server
    /// runs: the definitions are fixed at start).
    reads: Mutex<BTreeMap<String, BTreeSet<String>>>,
    /// Indicator views' rows, kept per version of their data (see [`kept`]).
    kept_views: kept::KeptViews,
}

/// How long a result computed from a source that cannot tell when its data changed
/// (a live database) is kept: its status is at most this old.
pub const LIVE_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(60);

/// The version of the data something was computed from: each source it reads, with
/// the source's [`data_version`](amar_connectors::Source::data_version), and the rule
/// results. Equal stamps mean the same data; `live` means a source could not tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataStamp {
    sources: Vec<(String, Option<String>)>,
    rules: u64,
}

impl DataStamp {
    /// Some source read cannot tell when its data changes.
    pub fn live(&self) -> bool {
        self.sources.iter().any(|(_, v)| v.is_none())
    }
}

impl Statistics {
    /// The catalog for `definitions`; rule results are kept in `results_dir` (with the
    /// history found there) when given.
    pub fn new(definitions: Definitions, results_dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            definitions,
            definer: OnceLock::new(),
            results: Mutex::new(validation::Results::open(results_dir)),
            sources: OnceLock::new(),
            reads: Mutex::new(BTreeMap::new()),
            kept_views: kept::KeptViews::default(),
        })
    }

    pub fn definitions(&self) -> &Definitions {
        &self.definitions
    }

    pub fn classification(&self, id: &str) -> Option<&Classification> {
        self.definitions.classifications.iter().find(|c| c.id == id)
    }

    /// The labels of `code` in the classification indicator `indicator`'s area
    /// dimension uses, if it names one and the code is in it.
    pub fn area_label(&self, indicator: &Indicator, code: &str) -> Option<&ClassCode> {
        let class = indicator.classifications.get(indicator.area.as_ref()?)?;
        self.classification(class)?.code(code)
    }

    pub fn indicator(&self, id: &str) -> Option<&Indicator> {
        self.definitions.indicators.iter().find(|i| i.id == id)
    }

    /// Hands over the engine's base session. Called once, after the catalog that holds
    /// the `indicators` schema is registered in it.
    pub fn set_definer(&self, state: SessionState) {
        let _ = self.definer.set(state);
    }

    /// Hands over the sources, whose data versions decide when indicator status is
    /// computed again. Called once, when the engine is assembled.
    pub fn set_sources(&self, sources: Vec<Arc<crate::SourceSchema>>) {
        let _ = self.sources.set(sources);
    }

    /// What `indicator` reads, planned once and then remembered.
    pub(crate) async fn reads(&self, indicator: &Indicator) -> Result<BTreeSet<String>> {
        if let Some(known) = self
            .reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&indicator.id)
        {
            return Ok(known.clone());
        }
        let inputs = self.inputs(indicator).await?;
        self.reads
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(indicator.id.clone(), inputs.clone());
        Ok(inputs)
    }

    /// The version of the data `indicators` read now: each source schema under them
    /// (a schema that is not a source, other than `indicators`, counts as live), and
    /// the rule results (which decide `verified`).
    pub(crate) async fn stamp(&self, indicators: &[&Indicator]) -> Result<DataStamp> {
        let mut reads = Vec::with_capacity(indicators.len());
        for indicator in indicators {
            reads.push(self.reads(indicator).await?);
        }
        Ok(self.stamp_of(&reads, true))
    }

    /// The version of the data behind tables `reads` (`schema.table`, several sets
    /// at once), with the rule results or without them.
    pub(crate) fn stamp_of(&self, reads: &[BTreeSet<String>], with_rules: bool) -> DataStamp {
        let mut schemas = BTreeSet::new();
        for table in reads.iter().flatten() {
            if let Some((schema, _)) = table.split_once('.')
                && schema != INDICATORS_SCHEMA
            {
                schemas.insert(schema.to_string());
            }
        }
        let sources = self.sources.get().map(Vec::as_slice).unwrap_or_default();
        let sources = schemas
            .into_iter()
            .map(|schema| {
                let version = sources
                    .iter()
                    .find(|s| s.source().name() == schema)
                    .and_then(|s| s.source().data_version());
                (schema, version)
            })
            .collect();
        let rules = if with_rules {
            self.results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .recorded()
        } else {
            0
        };
        DataStamp { sources, rules }
    }

    /// How often indicator views were read from kept rows, and computed.
    pub fn kept_counts(&self) -> KeptCounts {
        self.kept_views.counts()
    }

    pub(crate) fn definer(&self) -> Result<&SessionState> {
        self.definer.get().ok_or_else(|| {
            DataFusionError::Internal("the statistics catalog has no engine yet".into())
        })
    }

    /// Checks what can be checked whether or not the sources answer: each indicator's
    /// and rule's SQL is one query, and no indicator is built on itself. Then plans
    /// each indicator, warning (not failing) where one cannot be planned now: a source
    /// that is down must not stop the start.
    pub async fn check(&self) -> Result<()> {
        use datafusion::sql::parser::Statement as DfStatement;
        let state = self.definer()?;
        let dialect = state.config_options().sql_parser.dialect;
        let mut uses: BTreeMap<String, Vec<String>> = BTreeMap::new();
        let one_query = |what: &str, sql: &str| -> Result<DfStatement> {
            let statement = state.sql_to_statement(sql, &dialect).map_err(|e| {
                DataFusionError::Plan(format!("{what}: its SQL does not parse: {e}"))
            })?;
            match &statement {
                DfStatement::Statement(s)
                    if matches!(**s, datafusion::sql::sqlparser::ast::Statement::Query(_)) =>
                {
                    Ok(statement)
                }
                _ => Err(DataFusionError::Plan(format!(
                    "{what}: its SQL must be one query (SELECT or WITH … SELECT)"
                ))),
            }
        };
        // Indicators and rules run with the definer's rights, which read releases under
        // embargo: built on official figures, they would show them before their time.
        let not_on_releases = |what: &str, statement: &DfStatement| -> Result<()> {
            let official = [
                crate::releases::OFFICIAL_SCHEMA,
                crate::releases::HISTORY_SCHEMA,
            ];
            match state
                .resolve_table_references(statement)?
                .into_iter()
                .find(|t| t.schema().is_some_and(|s| official.contains(&s)))
            {
                Some(t) => Err(DataFusionError::Plan(format!(
                    "{what}: it reads {t}; indicators and rules are computed from the sources, and official figures are their releases"
                ))),
                None => Ok(()),
            }
        };
        for indicator in &self.definitions.indicators {
            let what = format!("indicator \"{}\"", indicator.id);
            let statement = one_query(&what, &indicator.sql)?;
            not_on_releases(&what, &statement)?;
            let used = state
                .resolve_table_references(&statement)?
                .into_iter()
                .filter(|t| t.schema() == Some(INDICATORS_SCHEMA))
                .map(|t| t.table().to_string())
                .collect();
            uses.insert(indicator.id.clone(), used);
        }
        for rule in &self.definitions.rules {
            let what = format!("validation rule \"{}\"", rule.id);
            let statement = one_query(&what, &rule.sql)?;
            not_on_releases(&what, &statement)?;
        }
        if let Some(cycle) = find_cycle(&uses) {
            return Err(DataFusionError::Plan(format!(
                "indicators are built on themselves: {}",
                cycle.join(" → ")
            )));
        }
        for indicator in &self.definitions.indicators {
            if let Err(e) = self.view_plan(indicator, false).await {
                tracing::warn!("{e}; reading it fails until this is fixed or its source answers");
            }
        }
        Ok(())
    }

    /// Plans every indicator (and its public form) and every rule now: what cannot be
    /// planned, in words, for `amar check-config`.
    pub async fn problems(&self) -> Vec<String> {
        let mut problems = vec![];
        for indicator in &self.definitions.indicators {
            for suppress in [false, true] {
                if let Err(e) = self.view_plan(indicator, suppress).await {
                    problems.push(e.to_string());
                    break;
                }
            }
        }
        for rule in &self.definitions.rules {
            let planned = match self.definer() {
                Ok(state) => state.create_logical_plan(&rule.sql).await,
                Err(e) => Err(e),
            };
            if let Err(e) = planned {
                problems.push(format!("validation rule \"{}\": {e}", rule.id));
            }
        }
        problems
    }

    /// The `indicators` schema, which the public reads in its disclosure-controlled
    /// form.
    pub fn per_reader(self: &Arc<Self>) -> Arc<dyn crate::visible::PerReader> {
        Arc::new(IndicatorsSchema::new(self.clone()))
    }

    /// Registers `indicators` in `catalog` and the system tables in `amar`.
    pub fn install(
        self: &Arc<Self>,
        catalog: &dyn datafusion::catalog::CatalogProvider,
        system: &SystemSchema,
    ) -> Result<()> {
        catalog.register_schema(
            INDICATORS_SCHEMA,
            Arc::new(IndicatorsSchema::new(self.clone())),
        )?;
        listing::install(self, system);
        system.add_table(
            "indicator_status",
            crate::computed::Computed::table(status::StatusTable::new(self.clone())),
        );
        system.add_table(
            "unit_scores",
            crate::computed::Computed::table(status::ScoresTable::new(self.clone())),
        );
        Ok(())
    }

    /// What the indicator reads: `schema.table` of every table under it, and
    /// `indicators.<id>` of itself and of indicators it uses.
    pub async fn inputs(&self, indicator: &Indicator) -> Result<BTreeSet<String>> {
        let plan = self.definer()?.create_logical_plan(&indicator.sql).await?;
        let mut inputs = tables_read(&plan);
        inputs.insert(format!("{INDICATORS_SCHEMA}.{}", indicator.id));
        // An indicator built on another inherits what that one reads.
        let nested: Vec<String> = inputs
            .iter()
            .filter_map(|t| t.strip_prefix(&format!("{INDICATORS_SCHEMA}.")))
            .filter(|id| *id != indicator.id)
            .map(str::to_string)
            .collect();
        for id in nested {
            if let Some(other) = self.indicator(&id) {
                let plan = self.definer()?.create_logical_plan(&other.sql).await?;
                inputs.extend(tables_read(&plan));
            }
        }
        Ok(inputs)
    }

    /// The error-severity rules whose latest run failed or found violations, or that
    /// have not run yet, among those guarding `inputs`.
    pub fn failing_rules(&self, inputs: &BTreeSet<String>) -> Vec<String> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        self.definitions
            .rules
            .iter()
            .filter(|r| r.severity == Severity::Error)
            .filter(|r| {
                let guards = results.guards(&r.id).unwrap_or(&r.guards);
                guards.iter().any(|g| guards_input(g, inputs))
            })
            .filter_map(|r| match results.latest(&r.id) {
                Some(run) if run.outcome == RuleOutcome::Passed => None,
                Some(run) => Some(format!("{} ({})", r.id, run.outcome.as_str())),
                None => Some(format!("{} (not run yet)", r.id)),
            })
            .collect()
    }
}

/// A chain of indicators that leads back to its start, if there is one.
fn find_cycle(uses: &BTreeMap<String, Vec<String>>) -> Option<Vec<String>> {
    fn visit(
        id: &str,
        uses: &BTreeMap<String, Vec<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|p| p == id) {
            let mut cycle = path[start..].to_vec();
            cycle.push(id.to_string());
            return Some(cycle);
        }
        if done.contains(id) {
            return None;
        }
        path.push(id.to_string());
        for next in uses.get(id).into_iter().flatten() {
            if let Some(cycle) = visit(next, uses, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        done.insert(id.to_string());
        None
    }
    let mut done = BTreeSet::new();
    uses.keys()
        .find_map(|id| visit(id, uses, &mut vec![], &mut done))
}

/// Whether a guard (`pension`, `pension.payments`, `indicators.x`) covers one of the
/// inputs.
fn guards_input(guard: &str, inputs: &BTreeSet<String>) -> bool {
    inputs.iter().any(|input| {
        input == guard
            || input
                .split_once('.')
                .is_some_and(|(schema, _)| schema == guard)
    })
}

/// `schema.table` of every table a plan scans, including in subqueries.
pub fn tables_read(plan: &LogicalPlan) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let _ = plan.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node {
            let name = match &scan.table_name {
                datafusion::common::TableReference::Bare { table } => {
                    format!("{}.{table}", crate::DEFAULT_SCHEMA)
                }
                datafusion::common::TableReference::Partial { schema, table }
                | datafusion::common::TableReference::Full { schema, table, .. } => {
                    format!("{schema}.{table}")
                }
            };
            out.insert(name);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(direction: Direction, target: f64, lower: Option<f64>, upper: Option<f64>) -> Norm {
        Norm {
            target,
            lower,
            upper,
            direction,
            weight: 1.0,
        }
    }

    #[test]
    fn higher_is_better_warns_down_to_the_lower_bound() {
        let n = norm(Direction::Higher, 90.0, Some(80.0), None);
        assert_eq!(n.status(95.0), Status::OnTarget);
        assert_eq!(n.status(90.0), Status::OnTarget);
        assert_eq!(n.status(85.0), Status::Warning);
        assert_eq!(n.status(80.0), Status::Warning);
        assert_eq!(n.status(79.9), Status::OffTarget);
    }

    #[test]
    fn lower_is_better_warns_up_to_the_upper_bound() {
        let n = norm(Direction::Lower, 100.0, None, Some(120.0));
        assert_eq!(n.status(50.0), Status::OnTarget);
        assert_eq!(n.status(110.0), Status::Warning);
        assert_eq!(n.status(121.0), Status::OffTarget);
        let strict = norm(Direction::Lower, 100.0, None, None);
        assert_eq!(strict.status(100.5), Status::OffTarget);
    }

    #[test]
    fn a_range_is_on_target_inside_and_warns_one_band_outside() {
        let n = norm(Direction::Range, 5.0, Some(4.0), Some(6.0));
        assert_eq!(n.status(5.5), Status::OnTarget);
        assert_eq!(n.status(7.5), Status::Warning);
        assert_eq!(n.status(2.5), Status::Warning);
        assert_eq!(n.status(8.5), Status::OffTarget);
    }

    #[test]
    fn an_indicator_built_on_itself_is_found() {
        let uses: BTreeMap<String, Vec<String>> = [
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec!["c".to_string()]),
            ("c".to_string(), vec!["a".to_string()]),
            ("d".to_string(), vec!["a".to_string()]),
        ]
        .into();
        assert_eq!(find_cycle(&uses).unwrap(), vec!["a", "b", "c", "a"]);
        let fine: BTreeMap<String, Vec<String>> = [
            ("a".to_string(), vec!["b".to_string()]),
            ("b".to_string(), vec![]),
        ]
        .into();
        assert!(find_cycle(&fine).is_none());
    }

    #[test]
    fn a_source_guard_covers_its_tables() {
        let inputs: BTreeSet<String> = ["pension.payments".to_string()].into();
        assert!(guards_input("pension", &inputs));
        assert!(guards_input("pension.payments", &inputs));
        assert!(!guards_input("pension.pensioners", &inputs));
        assert!(!guards_input("pens", &inputs));
    }
}
