//! Official releases: indicators' cells frozen at a published moment.
//!
//! Every figure `indicators.<id>` shows is computed live, and changes when a source
//! does. A release takes one or more indicators for one period (`1403Q4`,
//! `1403-12`) and stores, once and for all, in the data folder's `releases/`:
//!
//! - the cells as they are at that moment, in full and in the form the public reads
//!   (small cells suppressed, as `indicators.<id>` shows them to the public);
//! - each indicator's definition as it stood (SQL and its SHA-256, norm, `min_cell`),
//!   what it reads and the latest run of every rule guarding those inputs, the
//!   sources' state (`amar.sources`), Amar's version;
//! - who released it, when it was prepared and when it is published;
//! - a SHA-256 manifest over all of it ([`files`]).
//!
//! A release is never edited or deleted. A figure is changed only by a new release of
//! the same indicator and period, a revision with a class and a reason, which
//! supersedes the old one; both stay readable in the history. A release published in
//! the future is under embargo until then: only readers with `prerelease` access see
//! it; for everyone else the previous release stays official, and at the time the new
//! one becomes official by itself (see [`Releases::generation`]).
//!
//! In SQL ([`official`], [`listing`]): `official.<id>` (the latest published release of
//! each period), `official_history.<id>` (every release, with when it was superseded),
//! `amar.releases` and `amar.revisions`.

pub mod calendar;
pub mod files;
mod listing;
mod official;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, SecondsFormat, Utc};
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit};
use datafusion::prelude::SessionContext;
use serde::{Deserialize, Serialize};

pub use listing::jalali_tehran;
pub use official::{HISTORY_SCHEMA, OFFICIAL_SCHEMA, OfficialSchema};

use crate::statistics::{Indicator, Statistics};

/// Why a figure was released again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevisionClass {
    /// Better or later source data.
    Revision,
    /// A routine recalculation.
    Recalculation,
    /// A change of method or definition.
    Method,
    /// The correction of an error.
    Correction,
}

impl RevisionClass {
    pub const ALL: [RevisionClass; 4] = [
        RevisionClass::Revision,
        RevisionClass::Recalculation,
        RevisionClass::Method,
        RevisionClass::Correction,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RevisionClass::Revision => "revision",
            RevisionClass::Recalculation => "recalculation",
            RevisionClass::Method => "method",
            RevisionClass::Correction => "correction",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == text)
    }
}

/// What went wrong, with the SQLSTATE a client gets.
#[derive(Debug, Clone)]
pub struct ReleaseError {
    pub code: &'static str,
    pub message: String,
}

impl ReleaseError {
    fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    /// A value of the request is wrong (22023).
    fn invalid(message: impl Into<String>) -> Self {
        Self::new("22023", message)
    }

    /// The state of the figures does not admit it (55000).
    fn state(message: impl Into<String>) -> Self {
        Self::new("55000", message)
    }
}

impl std::fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<DataFusionError> for ReleaseError {
    fn from(e: DataFusionError) -> Self {
        Self::new("XX000", e.to_string())
    }
}

/// A request to release indicators for a period.
#[derive(Debug, Clone)]
pub struct Request {
    pub indicators: Vec<String>,
    pub period: String,
    /// When the figures become official; `None` is now. Later is an embargo.
    pub publish_at: Option<DateTime<Utc>>,
    /// Required when any of the indicators was released for the period before.
    pub class: Option<RevisionClass>,
    pub reason: Option<String>,
    /// Releases indicators whose guarding rules did not pass, for this written reason.
    pub force: Option<String>,
    /// Who releases.
    pub by: String,
}

/// What a release holds of one indicator, as `release.json` records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FrozenIndicator {
    pub id: String,
    /// 1 for the first release of this indicator and period, then 2, 3, ….
    pub revision: u32,
    /// The release this one supersedes for this indicator and period.
    pub supersedes: Option<String>,
    pub title_fa: String,
    pub title_en: String,
    pub unit: String,
    pub sql: String,
    pub sql_sha256: String,
    pub min_cell: u32,
    pub norm: Option<serde_json::Value>,
    pub dimensions: Vec<String>,
    pub period_column: String,
    pub value_column: String,
    pub area_column: Option<String>,
    pub rows: u64,
    pub public_rows: u64,
    /// The tables (and indicators) it reads.
    pub inputs: Vec<String>,
    /// The latest run of each rule guarding its inputs, when it was frozen.
    pub rules: Vec<serde_json::Value>,
    /// Error-severity rules that had not passed (released with `force`).
    pub failing_rules: Vec<String>,
}

/// A release's record (`release.json`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub id: String,
    pub period: String,
    pub indicators: Vec<FrozenIndicator>,
    pub class: Option<String>,
    pub reason: Option<String>,
    /// Why indicators whose rules had not passed were released anyway.
    pub forced: Option<String>,
    pub released_by: String,
    /// RFC 3339, UTC.
    pub prepared_at: String,
    /// RFC 3339, UTC: when the figures become official.
    pub publish_at: String,
    pub amar_version: String,
    /// The sources it read, as `amar.sources` showed them.
    pub sources: Vec<serde_json::Value>,
}

/// One indicator's frozen cells.
#[derive(Debug)]
pub struct Cells {
    pub full: (SchemaRef, Vec<RecordBatch>),
    pub public: (SchemaRef, Vec<RecordBatch>),
}

/// A stored release.
#[derive(Debug)]
pub struct Release {
    pub meta: Meta,
    pub prepared_at: DateTime<Utc>,
    pub publish_at: DateTime<Utc>,
    /// The SHA-256 of its manifest.
    pub manifest_sha256: String,
    /// By indicator id.
    pub cells: BTreeMap<String, Cells>,
}

impl Release {
    /// Whether it is official at `now` (its embargo, if any, is over).
    pub fn published(&self, now: DateTime<Utc>) -> bool {
        self.publish_at <= now
    }

    pub fn indicator(&self, id: &str) -> Option<&FrozenIndicator> {
        self.meta.indicators.iter().find(|i| i.id == id)
    }
}

/// A release folder that cannot be served, and why.
#[derive(Debug, Clone)]
pub struct Broken {
    pub id: String,
    pub problem: String,
}

#[derive(Debug, Default)]
struct Stored {
    /// In the order they were prepared.
    releases: Vec<Arc<Release>>,
    broken: Vec<Broken>,
}

/// The releases in the data folder.
#[derive(Debug)]
pub struct Releases {
    root: Option<PathBuf>,
    statistics: Arc<Statistics>,
    stored: RwLock<Stored>,
    /// One release is written at a time.
    writing: tokio::sync::Mutex<()>,
}

/// The time as release records write it.
fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Releases {
    /// The releases kept in `root` (none kept on disk when `None`): what a crash left
    /// half-written is removed, every release is checked against its manifest, and
    /// one that does not match is listed as broken and never served.
    pub fn open(root: Option<PathBuf>, statistics: Arc<Statistics>) -> Arc<Self> {
        let releases = Arc::new(Self {
            root,
            statistics,
            stored: RwLock::new(Stored::default()),
            writing: tokio::sync::Mutex::new(()),
        });
        if let Some(root) = &releases.root {
            files::remove_partial(root);
        }
        let stored = releases.load();
        for broken in &stored.broken {
            tracing::error!(
                "release \"{}\" is not served: {}",
                broken.id,
                broken.problem
            );
        }
        *releases.stored.write().unwrap_or_else(|e| e.into_inner()) = stored;
        releases
    }

    fn load(&self) -> Stored {
        let mut stored = Stored::default();
        let Some(root) = &self.root else {
            return stored;
        };
        for (id, dir) in files::release_dirs(root) {
            match files::read_verified(&dir).and_then(|(hash, files)| decode(&id, hash, files)) {
                Ok(release) => stored.releases.push(Arc::new(release)),
                Err(problem) => stored.broken.push(Broken { id, problem }),
            }
        }
        stored.releases.sort_by(|a, b| {
            a.prepared_at
                .cmp(&b.prepared_at)
                .then(a.meta.id.cmp(&b.meta.id))
        });
        stored
    }

    /// Registers `official` and `official_history` in `catalog`, and
    /// `amar.releases` and `amar.revisions`.
    pub fn install(
        self: &Arc<Self>,
        catalog: &dyn datafusion::catalog::CatalogProvider,
        system: &crate::system::SystemSchema,
    ) -> Result<()> {
        for (name, schema) in self.schemas() {
            catalog.register_schema(name, schema)?;
        }
        listing::install(self, system);
        Ok(())
    }

    fn schemas(self: &Arc<Self>) -> [(&'static str, Arc<OfficialSchema>); 2] {
        [
            (
                OFFICIAL_SCHEMA,
                Arc::new(OfficialSchema::official(self.clone())),
            ),
            (
                HISTORY_SCHEMA,
                Arc::new(OfficialSchema::history(self.clone())),
            ),
        ]
    }

    /// `official` and `official_history`, whose tables each reader sees in a form
    /// of their own (embargoed releases, the public form), by schema name.
    pub fn per_reader(self: &Arc<Self>) -> Vec<(String, Arc<dyn crate::visible::PerReader>)> {
        self.schemas()
            .into_iter()
            .map(|(name, schema)| {
                let schema: Arc<dyn crate::visible::PerReader> = schema;
                (name.to_string(), schema)
            })
            .collect()
    }

    /// Every servable release, in the order they were prepared.
    pub fn all(&self) -> Vec<Arc<Release>> {
        self.stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .releases
            .clone()
    }

    /// Release folders that are not served, and why.
    pub fn broken(&self) -> Vec<Broken> {
        self.stored
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .broken
            .clone()
    }

    pub fn statistics(&self) -> &Arc<Statistics> {
        &self.statistics
    }

    /// The releases announced ahead (the calendar).
    pub fn calendar(&self) -> &[calendar::Planned] {
        &self.statistics.definitions().calendar
    }

    /// Changes whenever what a reader may see of the releases may have changed: a
    /// release stored, an embargo over, a release found broken. Plans over
    /// `official.*` made under another generation are made again.
    pub fn generation(&self) -> u64 {
        let now = Utc::now();
        let stored = self.stored.read().unwrap_or_else(|e| e.into_inner());
        let published = stored.releases.iter().filter(|r| r.published(now)).count();
        (stored.releases.len() + published + stored.broken.len()) as u64
    }

    /// Checks every release folder against its manifest again. A release whose files
    /// no longer match stops being served. Returns each folder with its problem, if
    /// any.
    pub fn verify(&self) -> Vec<(String, Option<String>)> {
        let fresh = self.load();
        let mut report: Vec<(String, Option<String>)> = fresh
            .releases
            .iter()
            .map(|r| (r.meta.id.clone(), None))
            .chain(
                fresh
                    .broken
                    .iter()
                    .map(|b| (b.id.clone(), Some(b.problem.clone()))),
            )
            .collect();
        report.sort();
        let mut stored = self.stored.write().unwrap_or_else(|e| e.into_inner());
        // What is served stays the copy read (and checked) at start or when written;
        // only releases found broken now leave it.
        let broken: BTreeSet<&str> = fresh.broken.iter().map(|b| b.id.as_str()).collect();
        stored
            .releases
            .retain(|r| !broken.contains(r.meta.id.as_str()));
        stored.broken = fresh.broken;
        report
    }

    /// Freezes the request's indicators for its period and stores the release.
    pub async fn release(&self, request: Request) -> Result<Arc<Release>, ReleaseError> {
        self.release_as_of(request, Utc::now()).await
    }

    /// [`Releases::release`] as if it were `now`: for the demo's history, made when
    /// the demo is first generated. The cells are today's.
    pub async fn release_as_of(
        &self,
        request: Request,
        now: DateTime<Utc>,
    ) -> Result<Arc<Release>, ReleaseError> {
        let Some(root) = self.root.clone() else {
            return Err(ReleaseError::state(
                "this server keeps no data folder, so it cannot keep releases",
            ));
        };
        let _writing = self.writing.lock().await;
        let publish_at = request.publish_at.unwrap_or(now);
        check_request(&request, now, publish_at)?;
        let stored = self.all();
        let mut frozen = vec![];
        let mut cells = BTreeMap::new();
        let mut files = vec![];
        let mut inputs_all = BTreeSet::new();
        for id in &request.indicators {
            let Some(indicator) = self.statistics.indicator(id) else {
                return Err(ReleaseError::new(
                    "42704",
                    format!("indicator \"{id}\" does not exist"),
                ));
            };
            let Some(period_column) = indicator.period.clone() else {
                return Err(ReleaseError::invalid(format!(
                    "indicator \"{id}\" has no period dimension, so it cannot be released for a period"
                )));
            };
            let earlier: Vec<&Arc<Release>> = stored
                .iter()
                .filter(|r| r.meta.period == request.period && r.indicator(id).is_some())
                .collect();
            if let Some(pending) = earlier.iter().find(|r| !r.published(now)) {
                return Err(ReleaseError::state(format!(
                    "indicator \"{id}\" for {} is already released under embargo until {} (release \"{}\"); revise it once it is published",
                    request.period,
                    rfc3339(pending.publish_at),
                    pending.meta.id
                )));
            }
            let last = earlier.last();
            match (last, request.class.is_some() && request.reason.is_some()) {
                (Some(_), false) => {
                    return Err(ReleaseError::invalid(format!(
                        "indicator \"{id}\" for {} was released before: a revision needs a class ({}) and a reason",
                        request.period,
                        RevisionClass::ALL.map(|c| c.as_str()).join(", ")
                    )));
                }
                (None, true) => {
                    return Err(ReleaseError::invalid(format!(
                        "indicator \"{id}\" has not been released for {}: a first release is no revision",
                        request.period
                    )));
                }
                _ => {}
            }
            let inputs = self.statistics.inputs(indicator).await?;
            let failing = self.statistics.failing_rules(&inputs);
            if !failing.is_empty() && request.force.is_none() {
                return Err(ReleaseError::state(format!(
                    "indicator \"{id}\" is not verified: {}; release it anyway only with a written reason (force => '…')",
                    failing.join(", ")
                )));
            }
            let full = self
                .freeze(indicator, &period_column, &request.period, false)
                .await?;
            let rows: usize = full.1.iter().map(|b| b.num_rows()).sum();
            if rows == 0 {
                return Err(ReleaseError::invalid(format!(
                    "indicator \"{id}\" has no cells for period {} (its periods look like those of column \"{period_column}\")",
                    request.period
                )));
            }
            let public = self
                .freeze(indicator, &period_column, &request.period, true)
                .await?;
            let public_rows: usize = public.1.iter().map(|b| b.num_rows()).sum();
            files.push((
                format!("{id}.full.parquet"),
                files::parquet_bytes(&full.0, &full.1)?,
            ));
            files.push((
                format!("{id}.public.parquet"),
                files::parquet_bytes(&public.0, &public.1)?,
            ));
            frozen.push(FrozenIndicator {
                id: id.clone(),
                revision: last
                    .and_then(|r| r.indicator(id))
                    .map_or(1, |f| f.revision + 1),
                supersedes: last.map(|r| r.meta.id.clone()),
                title_fa: indicator.title_fa.clone(),
                title_en: indicator.title_en.clone(),
                unit: indicator.unit.clone(),
                sql: indicator.sql.clone(),
                sql_sha256: files::sha256(indicator.sql.as_bytes()),
                min_cell: indicator.min_cell,
                norm: indicator.norm.as_ref().map(|n| {
                    serde_json::json!({
                        "target": n.target,
                        "lower": n.lower,
                        "upper": n.upper,
                        "direction": n.direction.as_str(),
                        "weight": n.weight,
                    })
                }),
                dimensions: indicator.dimensions.clone(),
                period_column,
                value_column: indicator.value.clone(),
                area_column: indicator.area.clone(),
                rows: rows as u64,
                public_rows: public_rows as u64,
                inputs: inputs.iter().cloned().collect(),
                rules: self.statistics.guarding_runs(&inputs),
                failing_rules: failing,
            });
            inputs_all.extend(inputs);
            cells.insert(id.clone(), Cells { full, public });
        }
        let sequence = files::release_dirs(&root)
            .iter()
            .filter(|(name, _)| {
                name.strip_prefix(&request.period)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|n| n.bytes().all(|b| b.is_ascii_digit()))
            })
            .count()
            + 1;
        let id = format!("{}-{sequence}", request.period);
        let meta = Meta {
            id: id.clone(),
            period: request.period.clone(),
            indicators: frozen,
            class: request.class.map(|c| c.as_str().to_string()),
            reason: request.reason.clone(),
            forced: request.force.clone(),
            released_by: request.by.clone(),
            prepared_at: rfc3339(now),
            publish_at: rfc3339(publish_at),
            amar_version: env!("CARGO_PKG_VERSION").to_string(),
            sources: self.sources_read(&inputs_all).await?,
        };
        let json = serde_json::to_vec_pretty(&meta)
            .map_err(|e| DataFusionError::Execution(format!("release record: {e}")))?;
        files.insert(0, (files::METADATA.to_string(), json));
        let manifest_sha256 = files::write_release(&root, &id, &files)?;
        let release = Arc::new(Release {
            meta,
            prepared_at: now,
            publish_at,
            manifest_sha256,
            cells,
        });
        self.stored
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .releases
            .push(release.clone());
        Ok(release)
    }

    /// The indicator's cells of one period, in full or as the public reads them,
    /// ordered by its dimensions.
    async fn freeze(
        &self,
        indicator: &Indicator,
        period_column: &str,
        period: &str,
        public: bool,
    ) -> Result<(SchemaRef, Vec<RecordBatch>)> {
        let plan = self.statistics.view_plan(indicator, public).await?;
        let order = indicator
            .dimensions
            .iter()
            .map(|d| col(format!("\"{}\"", d.replace('"', "\"\""))).sort(true, true))
            .collect::<Vec<_>>();
        let plan = LogicalPlanBuilder::from(plan)
            .filter(
                cast(
                    col(format!("\"{}\"", period_column.replace('"', "\"\""))),
                    datafusion::arrow::datatypes::DataType::Utf8,
                )
                .eq(lit(period)),
            )?
            .sort(order)?
            .build()?;
        let ctx = SessionContext::new_with_state(self.statistics.definer()?.clone());
        let frame = ctx.execute_logical_plan(plan).await?;
        let schema: SchemaRef = frame.schema().as_arrow().clone().into();
        let batches = frame.collect().await?;
        Ok((schema, batches))
    }

    /// The rows of `amar.sources` for the sources `inputs` read from.
    async fn sources_read(&self, inputs: &BTreeSet<String>) -> Result<Vec<serde_json::Value>> {
        let names: BTreeSet<&str> = inputs.iter().filter_map(|t| t.split('.').next()).collect();
        let ctx = SessionContext::new_with_state(self.statistics.definer()?.clone());
        let batches = ctx
            .sql(&format!(
                "SELECT * FROM {}.{}.sources",
                crate::DATABASE,
                crate::SYSTEM_SCHEMA
            ))
            .await?
            .collect()
            .await?;
        let mut writer = datafusion::arrow::json::ArrayWriter::new(Vec::new());
        let refs: Vec<&RecordBatch> = batches.iter().collect();
        writer.write_batches(&refs)?;
        writer.finish()?;
        let rows: Vec<serde_json::Value> =
            serde_json::from_slice(&writer.into_inner()).unwrap_or_default();
        Ok(rows
            .into_iter()
            .filter(|row| {
                row.get("name")
                    .and_then(|n| n.as_str())
                    .is_some_and(|n| names.contains(n))
            })
            .collect())
    }
}

/// Refuses a request that cannot make a release, whatever the figures.
fn check_request(
    request: &Request,
    now: DateTime<Utc>,
    publish_at: DateTime<Utc>,
) -> Result<(), ReleaseError> {
    if request.indicators.is_empty() {
        return Err(ReleaseError::invalid(
            "a release needs at least one indicator",
        ));
    }
    let mut seen = BTreeSet::new();
    for id in &request.indicators {
        if !seen.insert(id) {
            return Err(ReleaseError::invalid(format!(
                "indicator \"{id}\" is named twice"
            )));
        }
    }
    let period = &request.period;
    if period.is_empty()
        || period.len() > 32
        || !period
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        || period.starts_with('-')
    {
        return Err(ReleaseError::invalid(format!(
            "\"{period}\" is not a period (such as 1403Q4, 1403-12 or 1403)"
        )));
    }
    // A moment ago is now: the request took time to arrive.
    if publish_at < now - chrono::Duration::minutes(1) {
        return Err(ReleaseError::invalid(format!(
            "publish_at {} is in the past; a release is published now or later",
            rfc3339(publish_at)
        )));
    }
    for (what, text) in [("reason", &request.reason), ("force", &request.force)] {
        if text.as_deref().is_some_and(|t| t.trim().is_empty()) {
            return Err(ReleaseError::invalid(format!("{what} must say something")));
        }
    }
    if request.class.is_some() && request.reason.is_none() {
        return Err(ReleaseError::invalid("a revision class needs a reason"));
    }
    Ok(())
}

/// A release read from its verified files.
fn decode(
    id: &str,
    manifest_sha256: String,
    files: files::Files,
) -> std::result::Result<Release, String> {
    let mut by_name: BTreeMap<String, Vec<u8>> = files.into_iter().collect();
    let json = by_name
        .remove(files::METADATA)
        .ok_or_else(|| format!("no {}", files::METADATA))?;
    let meta: Meta =
        serde_json::from_slice(&json).map_err(|e| format!("{}: {e}", files::METADATA))?;
    if meta.id != id {
        return Err(format!(
            "{} names release \"{}\", but its folder is \"{id}\"",
            files::METADATA,
            meta.id
        ));
    }
    let prepared_at =
        parse_time(&meta.prepared_at).ok_or_else(|| "prepared_at is not a time".to_string())?;
    let publish_at =
        parse_time(&meta.publish_at).ok_or_else(|| "publish_at is not a time".to_string())?;
    let mut cells = BTreeMap::new();
    for indicator in &meta.indicators {
        let mut read = |form: &str| {
            let name = format!("{}.{form}.parquet", indicator.id);
            let bytes = by_name.remove(&name).ok_or_else(|| format!("no {name}"))?;
            files::read_parquet(bytes).map_err(|e| format!("{name}: {e}"))
        };
        let full = read("full")?;
        let public = read("public")?;
        cells.insert(indicator.id.clone(), Cells { full, public });
    }
    Ok(Release {
        meta,
        prepared_at,
        publish_at,
        manifest_sha256,
        cells,
    })
}
