//! The drop-folder source: departments without a network link send files (CSV, Parquet,
//! Excel) into a folder; each new file is checked whole and, if good, copied into the
//! source's store as Parquet, where it becomes a table or new rows of a table.
//!
//! - A file maps to a table by the `append` patterns of the config (the first pattern
//!   that matches, in table-name order), or else by its name without extension. Every
//!   file of a table adds its rows; a file sent again under the same name (with a new
//!   size or time) replaces the rows it brought before.
//! - A file is read completely before anything of it is served: a malformed file (a
//!   ragged CSV line, a value that does not parse as its column's type, an Excel error
//!   cell, columns that differ from the table's) is rejected whole, recorded with why,
//!   shown in `amar.sources`, and not retried until it changes. The file in the drop
//!   folder is never modified or removed.
//! - Each copy is written to a hidden `.partial` file, synced, and renamed into the
//!   table's folder, so a query sees a file's rows all or none. The list of files seen
//!   (`manifest.json`) is replaced the same way after each copy. The copy's name depends
//!   only on the dropped file's name, so a crash between the two renames makes the next
//!   scan copy the file again over the same name: rows are never doubled.
//! - A file still being written is left alone until it has not changed for
//!   [`DropOptions::settle`]; writers should still drop `.name.tmp` and rename it.
//! - Rows stay when their file is deleted from the drop folder: the store is the record.

mod intake;
mod readers;
mod spreadsheets;

use std::collections::BTreeMap;
use std::fs::File;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use serde::{Deserialize, Serialize};

use crate::config::{DropOptions, Mode};
use crate::error::{ConnectorError, Result};
use crate::files::FilesSource;
use crate::source::{Health, Pushdown, Source, SourceTable};

use intake::{drop_format, take_in};
use readers::parquet_schema;

const MANIFEST: &str = "manifest.json";
const TABLES: &str = "tables";

/// What the source knows of one dropped file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct FileRecord {
    size: u64,
    /// Modification time, nanoseconds since the Unix epoch.
    modified_ns: u128,
    /// The table it went to, or would have.
    table: Option<String>,
    /// Its copy in the table's folder, when accepted.
    output: Option<String>,
    rows: u64,
    /// When it was taken in or rejected, seconds since the Unix epoch.
    at: u64,
    /// Why it was rejected.
    error: Option<String>,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct Manifest {
    files: BTreeMap<String, FileRecord>,
}

#[derive(Debug, Default)]
struct State {
    manifest: Manifest,
    /// The schema of each table in the store.
    schemas: BTreeMap<String, SchemaRef>,
    next_scan: Option<Instant>,
    /// The last scan's failure to read the drop folder itself.
    error: Option<String>,
}

/// A watched drop folder, served from its Parquet store.
#[derive(Debug)]
pub struct DropSource {
    name: String,
    options: DropOptions,
    state: Mutex<State>,
    scanning: tokio::sync::Mutex<()>,
}

/// The outcome of one file: its table and rows, or why it was rejected.
type Taken = std::result::Result<(String, String, u64), String>;

impl DropSource {
    /// Opens the store (creating it) and reads what earlier runs took in.
    pub fn open(name: &str, options: DropOptions) -> Result<Self> {
        let io = |path: &Path, e: std::io::Error| ConnectorError::Path {
            source_name: name.to_string(),
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        if !options.path.is_dir() {
            return Err(ConnectorError::Path {
                source_name: name.to_string(),
                path: options.path.clone(),
                message: "is not a folder".to_string(),
            });
        }
        let tables = options.store.join(TABLES);
        std::fs::create_dir_all(&tables).map_err(|e| io(&tables, e))?;
        let manifest_path = options.store.join(MANIFEST);
        let manifest = match std::fs::read(&manifest_path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| ConnectorError::Path {
                source_name: name.to_string(),
                path: manifest_path.clone(),
                message: format!("unreadable list of dropped files: {e}"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Manifest::default(),
            Err(e) => return Err(io(&manifest_path, e)),
        };
        let mut schemas = BTreeMap::new();
        for entry in std::fs::read_dir(&tables)
            .map_err(|e| io(&tables, e))?
            .flatten()
        {
            let table = entry.file_name().to_string_lossy().into_owned();
            if table.starts_with('.') || !entry.path().is_dir() {
                continue;
            }
            // Leftovers of a copy that crashed before its rename.
            let mut schema = None;
            for file in std::fs::read_dir(entry.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let file_name = file.file_name().to_string_lossy().into_owned();
                if file_name.ends_with(".partial") {
                    let _ = std::fs::remove_file(file.path());
                } else if schema.is_none() && file_name.ends_with(".parquet") {
                    schema = parquet_schema(&file.path()).ok();
                }
            }
            if let Some(schema) = schema {
                schemas.insert(table, schema);
            }
        }
        Ok(DropSource {
            name: name.to_string(),
            options,
            state: Mutex::new(State {
                manifest,
                schemas,
                next_scan: None,
                error: None,
            }),
            scanning: tokio::sync::Mutex::new(()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Looks at the drop folder now and takes in every new or changed file; returns
    /// the files accepted and their rows.
    pub async fn scan_now(&self) -> Result<(usize, u64)> {
        let _one_at_a_time = self.scanning.lock().await;
        let dropped = {
            let mut state = self.lock();
            state.next_scan = Some(Instant::now() + self.options.scan_every);
            match self.dropped_files(&state.manifest) {
                Ok(files) => {
                    state.error = None;
                    files
                }
                Err(e) => {
                    state.error = Some(e.to_string());
                    return Err(e);
                }
            }
        };
        let mut accepted = 0;
        let mut rows = 0;
        for (file_name, size, modified_ns) in dropped {
            let (previous, schemas) = {
                let state = self.lock();
                (
                    state.manifest.files.get(&file_name).cloned(),
                    state.schemas.clone(),
                )
            };
            let table = self.table_for(&file_name);
            let options = self.options.clone();
            let name = file_name.clone();
            let taken: Taken = match table {
                Err(why) => Err(why),
                Ok(table) => {
                    let target = schemas.get(&table).cloned();
                    tokio::task::spawn_blocking(move || {
                        take_in(&options, &name, &table, target, previous.as_ref())
                    })
                    .await
                    .unwrap_or_else(|e| Err(format!("reading it failed: {e}")))
                }
            };
            let at = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let record = match &taken {
                Ok((table, output, n)) => FileRecord {
                    size,
                    modified_ns,
                    table: Some(table.clone()),
                    output: Some(output.clone()),
                    rows: *n,
                    at,
                    error: None,
                },
                Err(why) => {
                    tracing::warn!(source = %self.name, file = %file_name, "dropped file rejected: {why}");
                    // A rejected new version keeps the rows of the last good one.
                    let previous = self.lock().manifest.files.get(&file_name).cloned();
                    FileRecord {
                        size,
                        modified_ns,
                        table: previous.as_ref().and_then(|p| p.table.clone()),
                        output: previous.as_ref().and_then(|p| p.output.clone()),
                        rows: previous.as_ref().map(|p| p.rows).unwrap_or(0),
                        at,
                        error: Some(why.clone()),
                    }
                }
            };
            let manifest = {
                let mut state = self.lock();
                if let Ok((table, output, n)) = &taken {
                    accepted += 1;
                    rows += n;
                    if !state.schemas.contains_key(table)
                        && let Ok(schema) = parquet_schema(
                            &self.options.store.join(TABLES).join(table).join(output),
                        )
                    {
                        state.schemas.insert(table.clone(), schema);
                    }
                }
                state.manifest.files.insert(file_name.clone(), record);
                state.manifest.clone()
            };
            self.write_manifest(&manifest)?;
        }
        Ok((accepted, rows))
    }

    /// New or changed files in the drop folder that have settled.
    fn dropped_files(&self, manifest: &Manifest) -> Result<Vec<(String, u64, u128)>> {
        let dir = &self.options.path;
        let entries = std::fs::read_dir(dir).map_err(|e| ConnectorError::Path {
            source_name: self.name.clone(),
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let now = SystemTime::now();
        let mut found = vec![];
        for entry in entries.flatten() {
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') || drop_format(&file_name).is_none() {
                continue;
            }
            let Ok(meta) = entry.metadata() else { continue };
            if !meta.is_file() {
                continue;
            }
            let modified = meta.modified().unwrap_or(UNIX_EPOCH);
            if now.duration_since(modified).unwrap_or_default() < self.options.settle {
                continue;
            }
            let modified_ns = modified
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let seen = manifest
                .files
                .get(&file_name)
                .is_some_and(|r| r.size == meta.len() && r.modified_ns == modified_ns);
            if !seen {
                found.push((file_name, meta.len(), modified_ns));
            }
        }
        found.sort();
        Ok(found)
    }

    /// The table a dropped file goes to.
    fn table_for(&self, file_name: &str) -> std::result::Result<String, String> {
        if let Some((table, _)) = self
            .options
            .append
            .iter()
            .find(|(_, pattern)| pattern.matches(file_name))
        {
            return Ok(table.clone());
        }
        let stem = file_name
            .rsplit_once('.')
            .map(|(s, _)| s)
            .unwrap_or(file_name);
        if stem.is_empty() {
            return Err("the file name gives no table name".to_string());
        }
        Ok(stem.to_string())
    }

    fn write_manifest(&self, manifest: &Manifest) -> Result<()> {
        let path = self.options.store.join(MANIFEST);
        let tmp = self.options.store.join(format!(".{MANIFEST}.tmp"));
        let io = |e: std::io::Error| ConnectorError::Path {
            source_name: self.name.clone(),
            path: path.clone(),
            message: e.to_string(),
        };
        let bytes = serde_json::to_vec_pretty(manifest).map_err(|e| io(e.into()))?;
        std::fs::write(&tmp, bytes).map_err(io)?;
        File::open(&tmp).and_then(|f| f.sync_all()).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }
}

#[async_trait]
impl Source for DropSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "drop"
    }

    fn data_version(&self) -> Option<String> {
        crate::source::files_version(&self.options.store.join(TABLES))
    }

    fn mode(&self) -> Mode {
        Mode::Snapshot
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown::SCANS
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        let first_scan = self.lock().next_scan.is_none();
        if first_scan && let Err(e) = self.scan_now().await {
            tracing::warn!("{e}");
        }
        FilesSource::parquet_tables(&self.name, self.options.store.join(TABLES)).await
    }

    async fn health(&self) -> Health {
        let start = Instant::now();
        match &self.lock().error {
            None => Health::ok(start.elapsed()),
            Some(e) => Health::failed(e.clone(), start.elapsed()),
        }
    }

    fn skipped(&self) -> Vec<String> {
        self.lock()
            .manifest
            .files
            .iter()
            .filter_map(|(file, r)| r.error.as_ref().map(|e| format!("{file}: {e}")))
            .collect()
    }

    fn snapshot(&self) -> Option<(Option<SystemTime>, u64)> {
        let state = self.lock();
        let last = state
            .manifest
            .files
            .values()
            .filter(|r| r.output.is_some())
            .map(|r| r.at)
            .max()
            .map(|s| UNIX_EPOCH + Duration::from_secs(s));
        let rows = state
            .manifest
            .files
            .values()
            .filter(|r| r.output.is_some())
            .map(|r| r.rows)
            .sum();
        Some((last, rows))
    }

    fn snapshot_due(&self) -> bool {
        self.lock()
            .next_scan
            .is_none_or(|due| Instant::now() >= due)
    }

    async fn refresh_snapshot(&self) -> Result<Option<(usize, u64)>> {
        let (accepted, rows) = self.scan_now().await?;
        Ok((accepted > 0).then_some((accepted, rows)))
    }
}
