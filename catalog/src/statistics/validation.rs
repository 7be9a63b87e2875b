//! Running validation rules and keeping their results.
//!
//! A rule is SQL that returns the rows violating it; it runs with the definer's
//! rights (it must see every row to judge them). Each run is one [`RuleRun`]: when,
//! why (start, schedule, a snapshot, `amar validate`), how many violations, the first
//! few as a JSON sample, or the error that stopped it. Runs are kept in memory for
//! `amar.validation_results` and appended to `results.jsonl` in the data folder, so
//! the history (and which indicators are unverified) survives a restart.

use std::collections::{BTreeSet, VecDeque};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::error::{DataFusionError, Result};
use datafusion::prelude::{SQLOptions, SessionContext};
use futures::StreamExt;

use super::{INDICATORS_SCHEMA, Rule, Severity, Statistics, tables_read};

/// Runs kept in memory and in the file.
const KEEP_RUNS: usize = 10_000;
/// Violating rows kept per run.
const SAMPLE_ROWS: usize = 5;
/// A rule that runs longer than this is stopped and reported as failed.
const RULE_TIMEOUT: Duration = Duration::from_secs(600);

/// Why rules ran.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Trigger {
    Start,
    Schedule,
    /// After the named source's snapshot was refreshed.
    Snapshot(String),
    /// `amar validate`.
    Command,
}

impl Trigger {
    fn describe(&self) -> String {
        match self {
            Trigger::Start => "start".into(),
            Trigger::Schedule => "schedule".into(),
            Trigger::Snapshot(source) => format!("snapshot {source}"),
            Trigger::Command => "amar validate".into(),
        }
    }
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    Passed,
    Violated,
    /// The rule could not run (its SQL failed, a source was down).
    Failed,
}

impl RuleOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleOutcome::Passed => "passed",
            RuleOutcome::Violated => "violated",
            RuleOutcome::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        match text {
            "passed" => Some(Self::Passed),
            "violated" => Some(Self::Violated),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One run of one rule.
#[derive(Debug, Clone, PartialEq)]
pub struct RuleRun {
    pub rule: String,
    pub severity: Severity,
    pub trigger: String,
    /// Microseconds since the Unix epoch.
    pub at_micros: i64,
    pub outcome: RuleOutcome,
    pub violations: u64,
    /// The first violating rows, as a JSON array of objects.
    pub sample: Option<String>,
    pub error: Option<String>,
    pub duration_ms: f64,
    /// What the rule guarded in this run (its own list, or the tables it read).
    pub guards: Vec<String>,
}

impl RuleRun {
    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "rule": self.rule,
            "severity": self.severity.as_str(),
            "trigger": self.trigger,
            "at_micros": self.at_micros,
            "outcome": self.outcome.as_str(),
            "violations": self.violations,
            "sample": self.sample,
            "error": self.error,
            "duration_ms": self.duration_ms,
            "guards": self.guards,
        })
    }

    fn from_json(v: &serde_json::Value) -> Option<Self> {
        Some(Self {
            rule: v.get("rule")?.as_str()?.to_string(),
            severity: Severity::parse(v.get("severity")?.as_str()?)?,
            trigger: v.get("trigger")?.as_str()?.to_string(),
            at_micros: v.get("at_micros")?.as_i64()?,
            outcome: RuleOutcome::parse(v.get("outcome")?.as_str()?)?,
            violations: v.get("violations")?.as_u64()?,
            sample: v.get("sample")?.as_str().map(str::to_string),
            error: v.get("error")?.as_str().map(str::to_string),
            duration_ms: v.get("duration_ms")?.as_f64()?,
            guards: v
                .get("guards")?
                .as_array()?
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
        })
    }
}

/// The runs so far.
#[derive(Debug)]
pub(super) struct Results {
    file: Option<PathBuf>,
    runs: VecDeque<RuleRun>,
    /// Runs recorded since the server started: what is computed from the results
    /// (indicator status's `verified`) is stale when this moves.
    recorded: u64,
}

impl Results {
    /// The history in `dir` (none if there is no folder or no file yet).
    pub(super) fn open(dir: Option<PathBuf>) -> Self {
        let file = dir.map(|d| d.join("results.jsonl"));
        let mut runs = VecDeque::new();
        if let Some(path) = &file
            && let Ok(text) = std::fs::read_to_string(path)
        {
            let lines: Vec<&str> = text.lines().collect();
            // A torn last line (a crash mid-write) is skipped, not fatal.
            for line in &lines[lines.len().saturating_sub(KEEP_RUNS)..] {
                if let Some(run) = serde_json::from_str(line)
                    .ok()
                    .as_ref()
                    .and_then(RuleRun::from_json)
                {
                    runs.push_back(run);
                }
            }
            if lines.len() > 2 * KEEP_RUNS {
                let kept: String = runs.iter().map(|r| format!("{}\n", r.to_json())).collect();
                let tmp = path.with_extension("jsonl.tmp");
                if let Err(e) =
                    std::fs::write(&tmp, kept).and_then(|()| std::fs::rename(&tmp, path))
                {
                    tracing::warn!("cannot compact {}: {e}", path.display());
                }
            }
        }
        Self {
            file,
            runs,
            recorded: 0,
        }
    }

    pub(super) fn all(&self) -> Vec<RuleRun> {
        self.runs.iter().cloned().collect()
    }

    pub(super) fn latest(&self, rule: &str) -> Option<&RuleRun> {
        self.runs.iter().rev().find(|r| r.rule == rule)
    }

    /// The guards of the rule's latest run.
    pub(super) fn guards(&self, rule: &str) -> Option<&Vec<String>> {
        self.latest(rule).map(|r| &r.guards)
    }

    fn push(&mut self, run: RuleRun) {
        if let Some(path) = &self.file {
            let line = format!("{}\n", run.to_json());
            let written = path
                .parent()
                .map_or(Ok(()), std::fs::create_dir_all)
                .and_then(|()| {
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                })
                .and_then(|mut f| f.write_all(line.as_bytes()));
            if let Err(e) = written {
                tracing::warn!("cannot keep a validation result in {}: {e}", path.display());
            }
        }
        if self.runs.len() >= KEEP_RUNS {
            self.runs.pop_front();
        }
        self.runs.push_back(run);
        self.recorded += 1;
    }

    pub(super) fn recorded(&self) -> u64 {
        self.recorded
    }
}

impl Statistics {
    /// Every run kept, oldest first.
    pub fn results(&self) -> Vec<RuleRun> {
        self.results.lock().unwrap_or_else(|e| e.into_inner()).all()
    }

    /// Runs the rules (all of them, or those that read `source` when given) one after
    /// the other, keeps their results and returns them.
    pub async fn validate(&self, trigger: Trigger, source: Option<&str>) -> Vec<RuleRun> {
        let mut runs = vec![];
        for rule in &self.definitions.rules {
            if let Some(source) = source {
                match self.rule_reads(rule).await {
                    Ok(read) if !read.iter().any(|t| t.split('.').next() == Some(source)) => {
                        continue;
                    }
                    // A rule that cannot be planned runs, to record why.
                    _ => {}
                }
            }
            let run = self.run_rule(rule, &trigger).await;
            self.results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(run.clone());
            runs.push(run);
        }
        runs
    }

    /// The latest run of every rule guarding one of `inputs`, as JSON (rules that
    /// have not run are listed with no outcome).
    pub fn guarding_runs(&self, inputs: &BTreeSet<String>) -> Vec<serde_json::Value> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        self.definitions
            .rules
            .iter()
            .filter(|r| {
                let guards = results.guards(&r.id).unwrap_or(&r.guards);
                guards.iter().any(|g| super::guards_input(g, inputs))
            })
            .map(|r| match results.latest(&r.id) {
                Some(run) => run.to_json(),
                None => serde_json::json!({
                    "rule": r.id,
                    "severity": r.severity.as_str(),
                    "outcome": null,
                }),
            })
            .collect()
    }

    /// Rules due on their schedule (`every`) at `now`.
    pub fn due_rules(&self, now: SystemTime) -> Vec<String> {
        let results = self.results.lock().unwrap_or_else(|e| e.into_inner());
        self.definitions
            .rules
            .iter()
            .filter(|r| {
                let Some(every) = r.every else { return false };
                match results.latest(&r.id) {
                    None => true,
                    Some(run) => {
                        let last = SystemTime::UNIX_EPOCH
                            + Duration::from_micros(run.at_micros.max(0) as u64);
                        now.duration_since(last).unwrap_or_default() >= every
                    }
                }
            })
            .map(|r| r.id.clone())
            .collect()
    }

    /// Runs the named rules (those [`Statistics::due_rules`] found), as scheduled.
    pub async fn run_scheduled(&self, ids: &[String]) -> Vec<RuleRun> {
        let mut runs = vec![];
        for rule in self
            .definitions
            .rules
            .iter()
            .filter(|r| ids.contains(&r.id))
        {
            let run = self.run_rule(rule, &Trigger::Schedule).await;
            self.results
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(run.clone());
            runs.push(run);
        }
        runs
    }

    /// The tables a rule reads, through the indicators it uses.
    pub(super) async fn rule_reads(&self, rule: &Rule) -> Result<BTreeSet<String>> {
        let plan = self.definer()?.create_logical_plan(&rule.sql).await?;
        let mut read = tables_read(&plan);
        let prefix = format!("{INDICATORS_SCHEMA}.");
        let used: Vec<String> = read
            .iter()
            .filter_map(|t| t.strip_prefix(&prefix).map(str::to_string))
            .collect();
        for id in used {
            if let Some(indicator) = self.indicator(&id) {
                read.extend(self.inputs(indicator).await?);
            }
        }
        Ok(read)
    }

    async fn run_rule(&self, rule: &Rule, trigger: &Trigger) -> RuleRun {
        let at = SystemTime::now();
        let started = Instant::now();
        let mut run = RuleRun {
            rule: rule.id.clone(),
            severity: rule.severity,
            trigger: trigger.describe(),
            at_micros: at
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_micros() as i64)
                .unwrap_or(0),
            outcome: RuleOutcome::Failed,
            violations: 0,
            sample: None,
            error: None,
            duration_ms: 0.0,
            guards: rule.guards.clone(),
        };
        let checked = tokio::time::timeout(RULE_TIMEOUT, self.violations(rule, &mut run)).await;
        match checked {
            Ok(Ok((violations, sample))) => {
                run.violations = violations;
                run.outcome = if violations == 0 {
                    RuleOutcome::Passed
                } else {
                    RuleOutcome::Violated
                };
                run.sample = (violations > 0).then_some(sample);
            }
            Ok(Err(e)) => run.error = Some(e.to_string()),
            Err(_) => {
                run.error = Some(format!(
                    "stopped after {} s without finishing",
                    RULE_TIMEOUT.as_secs()
                ))
            }
        }
        run.duration_ms = started.elapsed().as_secs_f64() * 1000.0;
        match run.outcome {
            RuleOutcome::Passed => tracing::info!(rule = %rule.id, "validation rule passed"),
            RuleOutcome::Violated => tracing::warn!(
                rule = %rule.id,
                severity = rule.severity.as_str(),
                violations = run.violations,
                "validation rule violated"
            ),
            RuleOutcome::Failed => tracing::error!(
                rule = %rule.id,
                error = run.error.as_deref().unwrap_or(""),
                "validation rule could not run"
            ),
        }
        run
    }

    /// Runs the rule's SQL: the number of rows it returns and the first few as JSON.
    async fn violations(&self, rule: &Rule, run: &mut RuleRun) -> Result<(u64, String)> {
        let state = self.definer()?.clone();
        let plan = state.create_logical_plan(&rule.sql).await?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)?;
        if rule.guards.is_empty() {
            run.guards = tables_read(&plan).into_iter().collect();
        }
        let ctx = SessionContext::new_with_state(state);
        let mut stream = ctx
            .execute_logical_plan(plan)
            .await?
            .execute_stream()
            .await?;
        let mut count = 0u64;
        let mut sample = vec![];
        while let Some(batch) = stream.next().await {
            let batch = batch?;
            if sample.len() < SAMPLE_ROWS {
                sample.extend(rows_as_json(&batch, SAMPLE_ROWS - sample.len())?);
            }
            count += batch.num_rows() as u64;
        }
        Ok((count, serde_json::Value::Array(sample).to_string()))
    }
}

/// The first `limit` rows of a batch as JSON objects, values as PostgreSQL prints them.
fn rows_as_json(batch: &RecordBatch, limit: usize) -> Result<Vec<serde_json::Value>> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(DataFusionError::from)?;
    let schema = batch.schema();
    let mut rows = vec![];
    for row in 0..batch.num_rows().min(limit) {
        let mut object = serde_json::Map::new();
        for (i, field) in schema.fields().iter().enumerate() {
            let value = if batch.column(i).is_null(row) {
                serde_json::Value::Null
            } else {
                serde_json::Value::String(formatters[i].value(row).to_string())
            };
            object.insert(field.name().clone(), value);
        }
        rows.push(serde_json::Value::Object(object));
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(rule: &str, outcome: RuleOutcome) -> RuleRun {
        RuleRun {
            rule: rule.into(),
            severity: Severity::Error,
            trigger: "start".into(),
            at_micros: 1_700_000_000_000_000,
            outcome,
            violations: 3,
            sample: Some("[{\"a\":\"1\"}]".into()),
            error: None,
            duration_ms: 1.5,
            guards: vec!["pension.payments".into()],
        }
    }

    #[test]
    fn results_survive_a_restart_and_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let mut results = Results::open(Some(dir.path().to_path_buf()));
        results.push(run("a", RuleOutcome::Violated));
        results.push(run("b", RuleOutcome::Passed));
        let path = dir.path().join("results.jsonl");
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.push_str("{\"rule\": \"c\", \"sev");
        std::fs::write(&path, text).unwrap();
        let reopened = Results::open(Some(dir.path().to_path_buf()));
        assert_eq!(
            reopened.all(),
            vec![
                run("a", RuleOutcome::Violated),
                run("b", RuleOutcome::Passed)
            ]
        );
        assert_eq!(reopened.latest("a").unwrap().outcome, RuleOutcome::Violated);
        assert!(reopened.latest("c").is_none());
    }
}
