//! `amar.releases` (every release and its state) and `amar.revisions` (each cell a
//! revision changed: old value, new value, class and reason).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    Array, ArrayRef, Float64Builder, Int32Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;

use super::official::OFFICIAL_SCHEMA;
use super::{Release, Releases};
use crate::computed::{CatalogRows, Computed};
use crate::system::SystemSchema;
use crate::visible::{SessionVisibility, Visibility};

pub(super) fn install(releases: &Arc<Releases>, system: &SystemSchema) {
    system.add_table(
        "releases",
        Computed::table(ReleaseList {
            releases: releases.clone(),
        }),
    );
    system.add_table(
        "revisions",
        Computed::table(RevisionList {
            releases: releases.clone(),
        }),
    );
    system.add_table(
        "release_calendar",
        Computed::table(super::calendar::CalendarList {
            releases: releases.clone(),
        }),
    );
}

fn timestamp(name: &str, nullable: bool) -> Field {
    Field::new(
        name,
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        nullable,
    )
}

fn text(name: &str, nullable: bool) -> Field {
    Field::new(name, DataType::Utf8, nullable)
}

/// A moment as people in Iran read it: the Jalali date and the time in Tehran.
pub fn jalali_tehran(t: DateTime<Utc>) -> String {
    let local = t.with_timezone(&chrono_tz::Asia::Tehran);
    match crate::jalali::JalaliDate::from_gregorian(local.date_naive()) {
        Ok(d) => format!(
            "{:04}/{:02}/{:02} {}",
            d.year,
            d.month,
            d.day,
            local.format("%H:%M")
        ),
        Err(_) => local.format("%Y-%m-%d %H:%M").to_string(),
    }
}

fn reader(state: &dyn Session) -> Option<Arc<dyn Visibility>> {
    state
        .config()
        .get_extension::<SessionVisibility>()
        .map(|v| v.0.clone())
        .filter(|v| !v.sees_everything())
}

/// Whether `reader` sees `release` now: published, or under embargo with access.
fn sees(reader: Option<&dyn Visibility>, release: &Release, now: DateTime<Utc>) -> bool {
    release.published(now)
        || reader.is_none_or(|r| {
            release
                .meta
                .indicators
                .iter()
                .all(|i| r.allowed("prerelease", OFFICIAL_SCHEMA, &i.id))
        })
}

/// A release's state at `now`: embargoed, published, or superseded (every indicator
/// in it released again for the period, and that release published).
fn status(release: &Release, all: &[Arc<Release>], now: DateTime<Utc>) -> &'static str {
    if !release.published(now) {
        return "embargoed";
    }
    let superseded = release.meta.indicators.iter().all(|i| {
        all.iter().any(|later| {
            later.published(now)
                && later.meta.period == release.meta.period
                && later
                    .indicator(&i.id)
                    .is_some_and(|l| l.supersedes.is_some() && l.revision > i.revision)
        })
    });
    if superseded {
        "superseded"
    } else {
        "published"
    }
}

#[derive(Debug)]
struct ReleaseList {
    releases: Arc<Releases>,
}

#[async_trait]
impl CatalogRows for ReleaseList {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("release_id", false),
            text("period", false),
            text("indicators", false),
            text("status", false),
            timestamp("prepared_at", true),
            timestamp("publish_at", true),
            text("publish_at_jalali", true),
            text("released_by", true),
            text("class", true),
            text("reason", true),
            text("forced", true),
            text("manifest_sha256", true),
            text("problem", true),
        ]))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let now = Utc::now();
        let reader = reader(state);
        let all = self.releases.all();
        let mut id = StringBuilder::new();
        let mut period = StringBuilder::new();
        let mut indicators = StringBuilder::new();
        let mut state_col = StringBuilder::new();
        let mut prepared = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut publish = TimestampMicrosecondBuilder::new().with_timezone("UTC");
        let mut jalali = StringBuilder::new();
        let mut by = StringBuilder::new();
        let mut class = StringBuilder::new();
        let mut reason = StringBuilder::new();
        let mut forced = StringBuilder::new();
        let mut hash = StringBuilder::new();
        let mut problem = StringBuilder::new();
        for release in &all {
            let meta = &release.meta;
            let listed: Vec<&str> = meta.indicators.iter().map(|i| i.id.as_str()).collect();
            id.append_value(&meta.id);
            period.append_value(&meta.period);
            indicators.append_value(listed.join(", "));
            state_col.append_value(status(release, &all, now));
            prepared.append_value(release.prepared_at.timestamp_micros());
            publish.append_value(release.publish_at.timestamp_micros());
            jalali.append_value(jalali_tehran(release.publish_at));
            // Who released what is the office's business; readers who may not see
            // the figures yet learn only that a release is coming, and when.
            let open = sees(reader.as_deref(), release, now);
            let staff = reader.is_none();
            by.append_option(staff.then_some(meta.released_by.as_str()));
            class.append_option(meta.class.as_deref().filter(|_| open));
            reason.append_option(meta.reason.as_deref().filter(|_| open));
            forced.append_option(meta.forced.as_deref().filter(|_| open));
            hash.append_option(open.then_some(release.manifest_sha256.as_str()));
            problem.append_null();
        }
        if reader.is_none() {
            for broken in self.releases.broken() {
                id.append_value(&broken.id);
                period.append_value("");
                indicators.append_value("");
                state_col.append_value("broken");
                prepared.append_null();
                publish.append_null();
                jalali.append_null();
                by.append_null();
                class.append_null();
                reason.append_null();
                forced.append_null();
                hash.append_null();
                problem.append_value(&broken.problem);
            }
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(period.finish()),
            Arc::new(indicators.finish()),
            Arc::new(state_col.finish()),
            Arc::new(prepared.finish()),
            Arc::new(publish.finish()),
            Arc::new(jalali.finish()),
            Arc::new(by.finish()),
            Arc::new(class.finish()),
            Arc::new(reason.finish()),
            Arc::new(forced.finish()),
            Arc::new(hash.finish()),
            Arc::new(problem.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema(), columns)?)
    }
}

#[derive(Debug)]
struct RevisionList {
    releases: Arc<Releases>,
}

/// Each cell's dimensions as text (`province_code=23, period=1403Q4`) and its value,
/// by that text.
fn cells_by_key(
    batches: &[RecordBatch],
    dimensions: &[String],
    value: &str,
) -> Result<BTreeMap<String, Option<f64>>> {
    let options = FormatOptions::default().with_null("NULL");
    let mut out = BTreeMap::new();
    for batch in batches {
        let mut formatters = vec![];
        for d in dimensions {
            if let Some(column) = batch.column_by_name(d) {
                formatters.push((
                    d.as_str(),
                    ArrayFormatter::try_new(column.as_ref(), &options)?,
                ));
            }
        }
        let values = match batch.column_by_name(value) {
            Some(c) => Some(datafusion::arrow::compute::cast(c, &DataType::Float64)?),
            None => None,
        };
        for row in 0..batch.num_rows() {
            let key = formatters
                .iter()
                .map(|(name, f)| format!("{name}={}", f.value(row)))
                .collect::<Vec<_>>()
                .join(", ");
            let value = values.as_ref().and_then(|v| {
                let v = v
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Float64Array>()?;
                (!v.is_null(row)).then(|| v.value(row))
            });
            out.insert(key, value);
        }
    }
    Ok(out)
}

#[async_trait]
impl CatalogRows for RevisionList {
    fn schema(&self) -> SchemaRef {
        Arc::new(Schema::new(vec![
            text("indicator", false),
            text("period", false),
            text("cell", false),
            Field::new("old_value", DataType::Float64, true),
            Field::new("new_value", DataType::Float64, true),
            text("old_release_id", false),
            text("release_id", false),
            Field::new("revision", DataType::Int32, false),
            text("class", true),
            text("reason", true),
            timestamp("revised_at", false),
        ]))
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let now = Utc::now();
        let reader = reader(state);
        let all = self.releases.all();
        let by_id: BTreeMap<&str, &Arc<Release>> =
            all.iter().map(|r| (r.meta.id.as_str(), r)).collect();
        let mut rows = RevisionRows::default();
        for release in &all {
            if !sees(reader.as_deref(), release, now) {
                continue;
            }
            for frozen in &release.meta.indicators {
                let Some(old) = frozen.supersedes.as_deref().and_then(|id| by_id.get(id)) else {
                    continue;
                };
                let revised = Revised {
                    frozen,
                    old,
                    release,
                };
                // Values only to readers who see every row of the figures (the public
                // compares the forms it reads); readers with a row filter learn that a
                // revision happened, and why, but no cell of it.
                let public = match reader.as_deref() {
                    None => false,
                    Some(r) if r.sees_all_rows(OFFICIAL_SCHEMA, &frozen.id) => {
                        r.disclosure_control()
                    }
                    Some(r) if r.table_visible(OFFICIAL_SCHEMA, &frozen.id) => {
                        rows.push(&revised, "", None, None);
                        continue;
                    }
                    Some(_) => continue,
                };
                let form = |r: &Release| {
                    let cells = &r.cells[&frozen.id];
                    if public {
                        cells.public.1.clone()
                    } else {
                        cells.full.1.clone()
                    }
                };
                let before = cells_by_key(&form(old), &frozen.dimensions, &frozen.value_column)?;
                let after = cells_by_key(&form(release), &frozen.dimensions, &frozen.value_column)?;
                let mut keys: Vec<&String> = before.keys().chain(after.keys()).collect();
                keys.sort();
                keys.dedup();
                for key in keys {
                    let (was, is) = (
                        before.get(key).copied().flatten(),
                        after.get(key).copied().flatten(),
                    );
                    let changed = match (was, is) {
                        (Some(a), Some(b)) => a != b,
                        (None, None) => before.contains_key(key) != after.contains_key(key),
                        _ => true,
                    };
                    if changed {
                        rows.push(&revised, key, was, is);
                    }
                }
            }
        }
        Ok(RecordBatch::try_new(self.schema(), rows.finish())?)
    }
}

/// One indicator's revision: its frozen record in the new release, and both releases.
struct Revised<'a> {
    frozen: &'a super::FrozenIndicator,
    old: &'a Release,
    release: &'a Release,
}

/// The columns of `amar.revisions`, row by row.
#[derive(Default)]
struct RevisionRows {
    indicator: StringBuilder,
    period: StringBuilder,
    cell: StringBuilder,
    old_value: Float64Builder,
    new_value: Float64Builder,
    old_id: StringBuilder,
    new_id: StringBuilder,
    revision: Int32Builder,
    class: StringBuilder,
    reason: StringBuilder,
    at: TimestampMicrosecondBuilder,
}

impl RevisionRows {
    fn push(&mut self, revised: &Revised<'_>, cell: &str, was: Option<f64>, is: Option<f64>) {
        let Revised {
            frozen,
            old,
            release,
        } = revised;
        self.indicator.append_value(&frozen.id);
        self.period.append_value(&release.meta.period);
        self.cell.append_value(cell);
        self.old_value.append_option(was);
        self.new_value.append_option(is);
        self.old_id.append_value(&old.meta.id);
        self.new_id.append_value(&release.meta.id);
        self.revision.append_value(frozen.revision as i32);
        self.class.append_option(release.meta.class.as_deref());
        self.reason.append_option(release.meta.reason.as_deref());
        self.at.append_value(release.publish_at.timestamp_micros());
    }

    fn finish(mut self) -> Vec<ArrayRef> {
        vec![
            Arc::new(self.indicator.finish()),
            Arc::new(self.period.finish()),
            Arc::new(self.cell.finish()),
            Arc::new(self.old_value.finish()),
            Arc::new(self.new_value.finish()),
            Arc::new(self.old_id.finish()),
            Arc::new(self.new_id.finish()),
            Arc::new(self.revision.finish()),
            Arc::new(self.class.finish()),
            Arc::new(self.reason.finish()),
            Arc::new(self.at.finish().with_timezone("UTC")),
        ]
    }
}
