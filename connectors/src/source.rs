//! The source contract every connector implements, built-in or plugin.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use datafusion::catalog::TableProvider;

use crate::config::Mode;
use crate::error::Result;

/// One table a source offers.
#[derive(Debug, Clone)]
pub struct SourceTable {
    /// The table name users see, inside the source's schema.
    pub name: String,
    /// Scans it. Primary keys, where the source knows them, are the provider's
    /// [`constraints`](TableProvider::constraints); column comments are field
    /// metadata under [`COMMENT_KEY`](crate::COMMENT_KEY).
    pub provider: Arc<dyn TableProvider>,
    /// The table's comment, if the source has one.
    pub comment: Option<String>,
}

/// What a source can evaluate itself, so that less data crosses to Amar.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pushdown {
    pub projection: bool,
    pub filters: bool,
    pub limit: bool,
    pub aggregates: bool,
    pub sorts: bool,
    pub joins: bool,
}

impl Pushdown {
    /// What a scan-level source does: projection, filters and limits.
    pub const SCANS: Pushdown = Pushdown {
        projection: true,
        filters: true,
        limit: true,
        aggregates: false,
        sorts: false,
        joins: false,
    };

    /// A short human-readable list, for `amar.sources`.
    pub fn describe(&self) -> String {
        let mut parts = vec![];
        for (on, name) in [
            (self.projection, "projection"),
            (self.filters, "filters"),
            (self.limit, "limit"),
            (self.aggregates, "aggregates"),
            (self.sorts, "sorts"),
            (self.joins, "joins"),
        ] {
            if on {
                parts.push(name);
            }
        }
        parts.join(", ")
    }
}

/// A source's health, as last checked.
#[derive(Debug, Clone)]
pub struct Health {
    pub ok: bool,
    /// What is wrong, when not ok.
    pub message: Option<String>,
    pub checked_at: SystemTime,
    pub latency: Duration,
}

impl Health {
    pub fn ok(latency: Duration) -> Self {
        Health {
            ok: true,
            message: None,
            checked_at: SystemTime::now(),
            latency,
        }
    }

    pub fn failed(message: impl Into<String>, latency: Duration) -> Self {
        Health {
            ok: false,
            message: Some(message.into()),
            checked_at: SystemTime::now(),
            latency,
        }
    }
}

/// A department's data, as Amar sees it.
#[async_trait]
pub trait Source: Send + Sync + Debug {
    /// The schema name users see.
    fn name(&self) -> &str;
    /// `sqlite`, `files`, `postgres`, … as in the config.
    fn kind(&self) -> &'static str;
    fn mode(&self) -> Mode;
    /// What this source evaluates itself.
    fn pushdown(&self) -> Pushdown;
    /// The tables the source offers now.
    async fn tables(&self) -> Result<Vec<SourceTable>>;
    /// Checks that the source answers.
    async fn health(&self) -> Health;
    /// Statements sent to the source and rows it sent back, for sources that
    /// run SQL remotely.
    fn traffic(&self) -> Option<(u64, u64)> {
        None
    }
    /// Tables or columns the source could not offer, with why.
    fn skipped(&self) -> Vec<String> {
        vec![]
    }
    /// Snapshot sources: when the copy in use was made, and its rows.
    fn snapshot(&self) -> Option<(Option<SystemTime>, u64)> {
        None
    }
    /// Snapshot sources: whether the schedule calls for a refresh now.
    fn snapshot_due(&self) -> bool {
        false
    }
    /// Snapshot sources: copy now and switch; returns tables and rows copied.
    async fn refresh_snapshot(&self) -> Result<Option<(usize, u64)>> {
        Ok(None)
    }
    /// A token that changes whenever the data this source serves may have changed:
    /// what is computed from the source (indicator status) is kept until it does.
    /// `None` when the source cannot tell without being asked (a live database): what
    /// is computed from it is then kept for a bounded time only.
    fn data_version(&self) -> Option<String> {
        None
    }
}

/// The version of the files under `path`: a digest of every file's name, size,
/// modification time and status-change time (directories walked eight levels deep,
/// symbolic links followed; hidden `.partial` files left out). `None` when the folder
/// cannot be read.
pub fn files_version(path: &std::path::Path) -> Option<String> {
    use std::hash::{Hash, Hasher};
    /// A file's size, modification time and status-change time: a rewrite that
    /// keeps the size and sets the modification time back still moves the last.
    fn stamp(meta: &std::fs::Metadata, hasher: &mut std::collections::hash_map::DefaultHasher) {
        meta.len().hash(hasher);
        meta.modified().ok().hash(hasher);
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            (meta.ctime(), meta.ctime_nsec()).hash(hasher);
        }
    }
    fn walk(
        dir: &std::path::Path,
        hasher: &mut std::collections::hash_map::DefaultHasher,
        depth: usize,
    ) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            if name.to_string_lossy().starts_with('.') {
                continue;
            }
            // Through symbolic links: a linked file's or folder's own data counts.
            let meta = std::fs::metadata(entry.path())?;
            name.hash(hasher);
            if meta.is_dir() {
                if depth < 8 {
                    walk(&entry.path(), hasher, depth + 1)?;
                }
            } else {
                stamp(&meta, hasher);
            }
        }
        Ok(())
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let meta = std::fs::metadata(path).ok()?;
    if meta.is_dir() {
        walk(path, &mut hasher, 0).ok()?;
    } else {
        stamp(&meta, &mut hasher);
    }
    Some(format!("{:016x}", hasher.finish()))
}
