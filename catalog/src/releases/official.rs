//! `official.<id>` and `official_history.<id>`: released figures in SQL.
//!
//! `official.<id>` holds, for every period an indicator was released for, the cells
//! of its latest release visible to the reader, with `release_id`, `revision` and
//! `released_at` (when it became official). `official_history.<id>` holds every
//! release's cells, each with `superseded_at` and `superseded_by` (NULL while it is
//! the official one), so that what was official at a moment `t` is
//!
//! ```sql
//! SELECT * FROM official_history.average_wage
//! WHERE released_at <= t AND (superseded_at IS NULL OR superseded_at > t)
//! ```
//!
//! A release is visible to a reader once published; before that (under embargo) only
//! to readers who see everything or have `prerelease` access to `official.<id>`. The
//! public reads each release's public form (small cells suppressed as they were when
//! it was released). Row filters and grants apply as to any table: these are plain
//! tables to the policy layer.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Int32Array, RecordBatch, StringArray, TimestampMicrosecondArray, new_null_array,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};

use super::{Release, Releases};
use crate::visible::{PerReader, Visibility};

/// The schema of the latest official figures.
pub const OFFICIAL_SCHEMA: &str = "official";
/// The schema of every release's figures.
pub const HISTORY_SCHEMA: &str = "official_history";

/// `official` or `official_history`.
#[derive(Debug)]
pub struct OfficialSchema {
    releases: Arc<Releases>,
    history: bool,
}

/// What a reader may see of the releases.
#[derive(Debug, Clone, Copy)]
struct Reader {
    /// Reads the public form.
    public: bool,
    /// Sees releases under embargo.
    prerelease: bool,
    now: DateTime<Utc>,
}

impl OfficialSchema {
    pub fn official(releases: Arc<Releases>) -> Self {
        Self {
            releases,
            history: false,
        }
    }

    pub fn history(releases: Arc<Releases>) -> Self {
        Self {
            releases,
            history: true,
        }
    }

    fn name(&self) -> &'static str {
        if self.history {
            HISTORY_SCHEMA
        } else {
            OFFICIAL_SCHEMA
        }
    }

    /// The table of indicator `id` for `reader`; `None` if it was never released.
    fn build(&self, id: &str, reader: Reader) -> Result<Option<Arc<dyn TableProvider>>> {
        let all = self.releases.all();
        let with: Vec<&Arc<Release>> = all.iter().filter(|r| r.cells.contains_key(id)).collect();
        // The columns are those of the latest release (every release of one
        // indicator has them unless its definition changed; older ones are matched
        // by name).
        let Some(latest) = with.last() else {
            return Ok(None);
        };
        let cells_schema = latest.cells[id].full.0.clone();
        let schema = self.schema(&cells_schema);
        let visible: Vec<&Arc<Release>> = with
            .iter()
            .copied()
            .filter(|r| reader.prerelease || r.published(reader.now))
            .collect();
        // Each period's releases, oldest first.
        let mut by_period: BTreeMap<&str, Vec<&Arc<Release>>> = BTreeMap::new();
        for release in &visible {
            by_period
                .entry(release.meta.period.as_str())
                .or_default()
                .push(release);
        }
        let mut batches = vec![];
        for releases in by_period.values() {
            for (i, release) in releases.iter().enumerate() {
                let next = releases.get(i + 1);
                if !self.history && next.is_some() {
                    continue;
                }
                let cells = &release.cells[id];
                let (_, form) = if reader.public {
                    &cells.public
                } else {
                    &cells.full
                };
                let revision = release.indicator(id).map_or(1, |f| f.revision) as i32;
                for batch in form {
                    batches.push(self.rows(
                        &schema,
                        &cells_schema,
                        batch,
                        release,
                        revision,
                        next,
                    )?);
                }
            }
        }
        let table = MemTable::try_new(schema, vec![batches])?;
        Ok(Some(Arc::new(table)))
    }

    /// The cells' columns, then the release's.
    fn schema(&self, cells: &SchemaRef) -> SchemaRef {
        let mut fields: Vec<Field> = cells
            .fields()
            .iter()
            .map(|f| f.as_ref().clone().with_nullable(true))
            .collect();
        let at = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
        fields.push(Field::new("release_id", DataType::Utf8, false));
        fields.push(Field::new("revision", DataType::Int32, false));
        fields.push(Field::new("released_at", at.clone(), false));
        if self.history {
            fields.push(Field::new("superseded_at", at, true));
            fields.push(Field::new("superseded_by", DataType::Utf8, true));
        }
        Arc::new(Schema::new(fields))
    }

    /// One batch of a release's cells in `schema`.
    fn rows(
        &self,
        schema: &SchemaRef,
        cells: &SchemaRef,
        batch: &RecordBatch,
        release: &Release,
        revision: i32,
        next: Option<&&Arc<Release>>,
    ) -> Result<RecordBatch> {
        let n = batch.num_rows();
        let mut columns: Vec<ArrayRef> = vec![];
        for field in cells.fields() {
            let column = match batch.column_by_name(field.name()) {
                Some(c) if c.data_type() == field.data_type() => c.clone(),
                Some(c) => datafusion::arrow::compute::cast(c, field.data_type())?,
                None => new_null_array(field.data_type(), n),
            };
            columns.push(column);
        }
        let micros = |t: DateTime<Utc>| t.timestamp_micros();
        columns.push(Arc::new(StringArray::from(vec![
            release.meta.id.as_str();
            n
        ])));
        columns.push(Arc::new(Int32Array::from(vec![revision; n])));
        columns.push(Arc::new(
            TimestampMicrosecondArray::from(vec![micros(release.publish_at); n])
                .with_timezone("UTC"),
        ));
        if self.history {
            columns.push(Arc::new(
                TimestampMicrosecondArray::from(vec![next.map(|r| micros(r.publish_at)); n])
                    .with_timezone("UTC"),
            ));
            columns.push(Arc::new(StringArray::from(vec![
                next.map(|r| r
                    .meta
                    .id
                    .as_str());
                n
            ])));
        }
        RecordBatch::try_new(schema.clone(), columns).map_err(DataFusionError::from)
    }

    fn released_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .releases
            .all()
            .iter()
            .flat_map(|r| r.cells.keys().cloned())
            .collect();
        ids.sort();
        ids.dedup();
        ids
    }
}

#[async_trait]
impl SchemaProvider for OfficialSchema {
    fn table_names(&self) -> Vec<String> {
        self.released_ids()
    }

    /// As a reader who sees everything sees it: every release, embargoed ones too.
    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        self.build(
            name,
            Reader {
                public: false,
                prerelease: true,
                now: Utc::now(),
            },
        )
    }

    fn table_exist(&self, name: &str) -> bool {
        self.released_ids().iter().any(|id| id == name)
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create \"{name}\" in schema \"{}\": official figures come from releases",
            self.name()
        )))
    }
}

#[async_trait]
impl PerReader for OfficialSchema {
    async fn table_for(
        &self,
        table: &str,
        reader: &dyn Visibility,
    ) -> Result<Option<Arc<dyn TableProvider>>> {
        let everything = reader.sees_everything();
        self.build(
            table,
            Reader {
                public: !everything && reader.disclosure_control(),
                prerelease: everything || reader.allowed("prerelease", OFFICIAL_SCHEMA, table),
                now: Utc::now(),
            },
        )
    }
}
