//! Offline mode: a database source copied into local Parquet and served from there.
//!
//! Each refresh writes every table into a new generation folder
//! (`<dir>/.<generation>.partial`, renamed to `<dir>/<generation>` when complete), then
//! points `<dir>/CURRENT` at it by writing `CURRENT.tmp` and renaming it over
//! `CURRENT`: the switch is one atomic rename. A refresh that fails (the source is
//! down, a table does not copy) removes its partial folder and leaves `CURRENT` where
//! it was, so queries keep the last good snapshot and the error is reported; a crash
//! mid-refresh leaves only a partial folder, removed by the next refresh. The newest
//! two generations are kept.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::UInt64Type;
use datafusion::dataframe::DataFrameWriteOptions;
use datafusion::prelude::SessionContext;

use crate::config::{DatabaseOptions, Dialect, Mode};
use crate::database::DatabaseSource;
use crate::error::{ConnectorError, Result};
use crate::files::FilesSource;
use crate::source::{Health, Pushdown, Source, SourceTable};

#[derive(Debug, Default, Clone)]
struct State {
    last_at: Option<SystemTime>,
    rows: u64,
    error: Option<String>,
    next_due: Option<Instant>,
}

/// A database source served from its latest local copy.
#[derive(Debug)]
pub struct SnapshotSource {
    live: DatabaseSource,
    dir: PathBuf,
    every: Option<Duration>,
    keys: std::collections::BTreeMap<String, Vec<String>>,
    state: Mutex<State>,
    running: tokio::sync::Mutex<()>,
}

const CURRENT: &str = "CURRENT";

/// Memory a snapshot's sort may take before it spills to disk.
const SORT_MEMORY: usize = 512 << 20;

impl SnapshotSource {
    pub async fn open(name: &str, dialect: Dialect, options: DatabaseOptions) -> Result<Self> {
        let dir = options
            .snapshot_dir
            .clone()
            .ok_or_else(|| ConnectorError::Other {
                source_name: name.to_string(),
                message: "snapshot mode needs a data folder for the copies".to_string(),
            })?;
        std::fs::create_dir_all(&dir).map_err(|e| ConnectorError::Path {
            source_name: name.to_string(),
            path: dir.clone(),
            message: e.to_string(),
        })?;
        let every = options.refresh;
        let keys = options.keys.clone();
        let live = DatabaseSource::open(name, dialect, Mode::Snapshot, options).await;
        let source = SnapshotSource {
            live,
            dir,
            every,
            keys,
            state: Mutex::new(State::default()),
            running: tokio::sync::Mutex::new(()),
        };
        if let Some(current) = source.current() {
            let rows = count_rows(&current);
            let modified = std::fs::metadata(&current).and_then(|m| m.modified()).ok();
            let mut state = source.lock();
            state.last_at = modified;
            state.rows = rows;
            state.next_due = every.map(|e| Instant::now() + e);
        }
        Ok(source)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The folder of the snapshot in use, if there is one.
    pub fn current(&self) -> Option<PathBuf> {
        let name = std::fs::read_to_string(self.dir.join(CURRENT)).ok()?;
        let path = self.dir.join(name.trim());
        path.is_dir().then_some(path)
    }

    /// Copies every table now and switches to the copy; on failure the previous
    /// snapshot stays and the error is returned (and shown in `amar.sources`).
    pub async fn refresh_now(&self) -> Result<(usize, u64)> {
        let _one_at_a_time = self.running.lock().await;
        let result = self.copy().await;
        let mut state = self.lock();
        state.next_due = self.every.map(|e| Instant::now() + e);
        match &result {
            Ok((_, rows)) => {
                state.last_at = Some(SystemTime::now());
                state.rows = *rows;
                state.error = None;
            }
            Err(e) => state.error = Some(e.to_string()),
        }
        result
    }

    async fn copy(&self) -> Result<(usize, u64)> {
        let name = self.live.name().to_string();
        let io = |path: &Path, e: std::io::Error| ConnectorError::Path {
            source_name: name.clone(),
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        // Leftovers of a refresh that crashed.
        if let Ok(entries) = std::fs::read_dir(&self.dir) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().ends_with(".partial") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        let tables = self.live.tables().await?;
        let generation = chrono::Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
        let partial = self.dir.join(format!(".{generation}.partial"));
        std::fs::create_dir_all(&partial).map_err(|e| io(&partial, e))?;
        // Sorting a large table spills to the temporary folder past this much memory.
        let runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_memory_pool(Arc::new(
                datafusion::execution::memory_pool::FairSpillPool::new(SORT_MEMORY),
            ))
            .build_arc()
            .map_err(|e| ConnectorError::Other {
                source_name: name.clone(),
                message: e.to_string(),
            })?;
        let ctx = SessionContext::new_with_config_rt(Default::default(), runtime);
        let mut rows = 0u64;
        for table in &tables {
            let path = partial.join(format!("{}.parquet", table.name));
            // Sorted by its key, with the page index and bloom filters on the key:
            // a lookup by key reads a page (see crate::lookup).
            let keys = crate::lookup::keys_of(&table.name, &self.keys, table.provider.as_ref());
            let written = async {
                let df = ctx.read_table(table.provider.clone())?;
                let order = keys
                    .iter()
                    .map(|k| datafusion::prelude::ident(k).sort(true, false))
                    .collect();
                df.write_parquet(
                    &path.to_string_lossy(),
                    DataFrameWriteOptions::new()
                        .with_single_file_output(true)
                        .with_sort_by(order),
                    Some(crate::lookup::write_options(&keys)),
                )
                .await
            }
            .await;
            match written {
                Ok(batches) => rows += written_rows(&batches),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&partial);
                    return Err(ConnectorError::Other {
                        source_name: name.clone(),
                        message: format!("snapshot of table \"{}\" failed: {e}", table.name),
                    });
                }
            }
        }
        let finished = self.dir.join(&generation);
        std::fs::rename(&partial, &finished).map_err(|e| io(&finished, e))?;
        let pointer = self.dir.join(format!("{CURRENT}.tmp"));
        std::fs::write(&pointer, &generation).map_err(|e| io(&pointer, e))?;
        if let Ok(f) = std::fs::File::open(&pointer) {
            let _ = f.sync_all();
        }
        std::fs::rename(&pointer, self.dir.join(CURRENT)).map_err(|e| io(&pointer, e))?;
        self.prune(&generation);
        Ok((tables.len(), rows))
    }

    /// Keeps the current generation and the one before it.
    fn prune(&self, current: &str) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut generations: Vec<String> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        generations.sort();
        let keep_from = generations.len().saturating_sub(2);
        for old in &generations[..keep_from] {
            if old != current {
                let _ = std::fs::remove_dir_all(self.dir.join(old));
            }
        }
    }
}

fn written_rows(batches: &[datafusion::arrow::array::RecordBatch]) -> u64 {
    batches
        .iter()
        .filter(|b| b.num_columns() > 0)
        .filter_map(|b| {
            b.column(0)
                .as_primitive_opt::<UInt64Type>()
                .map(|c| (0..c.len()).map(|i| c.value(i)).sum::<u64>())
        })
        .sum()
}

/// Rows of every Parquet file in a snapshot folder, from the files' footers.
fn count_rows(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let file = std::fs::File::open(e.path()).ok()?;
            let reader =
                datafusion::parquet::file::serialized_reader::SerializedFileReader::new(file)
                    .ok()?;
            use datafusion::parquet::file::reader::FileReader;
            Some(reader.metadata().file_metadata().num_rows() as u64)
        })
        .sum()
}

#[async_trait]
impl Source for SnapshotSource {
    fn name(&self) -> &str {
        self.live.name()
    }

    fn kind(&self) -> &'static str {
        self.live.kind()
    }

    /// The copy in use: a refresh switches to a new one.
    fn data_version(&self) -> Option<String> {
        self.current().map(|p| p.display().to_string())
    }

    fn mode(&self) -> Mode {
        Mode::Snapshot
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown::SCANS
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        if self.current().is_none() {
            // No copy yet: make the first one now.
            self.refresh_now().await?;
        }
        let Some(current) = self.current() else {
            return Ok(vec![]);
        };
        FilesSource::parquet_tables(self.live.name(), current).await
    }

    async fn health(&self) -> Health {
        let state = self.lock().clone();
        match (self.current(), state.error) {
            (Some(_), None) => Health::ok(Duration::ZERO),
            (Some(_), Some(e)) => Health {
                ok: true,
                message: Some(format!(
                    "serving the last good snapshot; the last refresh failed: {e}"
                )),
                checked_at: SystemTime::now(),
                latency: Duration::ZERO,
            },
            (None, e) => Health::failed(
                e.unwrap_or_else(|| "no snapshot yet".to_string()),
                Duration::ZERO,
            ),
        }
    }

    fn snapshot(&self) -> Option<(Option<SystemTime>, u64)> {
        let state = self.lock();
        Some((state.last_at, state.rows))
    }

    fn snapshot_due(&self) -> bool {
        self.lock()
            .next_due
            .is_some_and(|due| Instant::now() >= due)
    }

    async fn refresh_snapshot(&self) -> Result<Option<(usize, u64)>> {
        self.refresh_now().await.map(Some)
    }
}
