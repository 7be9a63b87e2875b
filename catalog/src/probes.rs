//! `amar.source_probes`: each source's health and freshness, as looked at over time.
//!
//! The server looks at every source when it starts and every few minutes after
//! ([`SourceProbes::probe`]): is it reachable, how long it took to answer, and (for
//! offline sources: snapshots and drop folders) when the data in use was taken and
//! how many rows it holds. Each look is one line in a JSON-lines file per UTC month,
//! `sources-YYYY-MM.jsonl` in the history folder, so that a quarter's availability and
//! freshness can be read after restarts (the quarterly report does).
//!
//! A torn last line (a crash mid-write) is skipped when read; a folder that cannot be
//! written is said in the log and the probe is kept in memory only.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;
use serde::{Deserialize, Serialize};

use crate::schema::SourceSchema;

/// One look at one source.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Probe {
    #[serde(with = "crate::rfc3339")]
    pub at: DateTime<Utc>,
    pub source: String,
    pub kind: String,
    /// `live` (online) or `snapshot` (offline copies, files and drop folders).
    pub mode: String,
    pub healthy: bool,
    pub message: Option<String>,
    pub latency_ms: f64,
    /// Offline sources: when the data in use was taken.
    #[serde(with = "crate::rfc3339::option", default)]
    pub data_at: Option<DateTime<Utc>>,
    /// Offline sources: the rows of the data in use.
    pub data_rows: Option<u64>,
}

/// The probes of one server: written to the history folder, or kept in memory
/// when there is none.
#[derive(Debug)]
pub struct SourceProbes {
    dir: Option<PathBuf>,
    /// Probes that could not go to a file (no folder, or it failed).
    memory: Mutex<Vec<Probe>>,
}

const PREFIX: &str = "sources-";
/// Probes kept in memory when there is no file to keep them.
const MEMORY_PROBES: usize = 100_000;

fn time(t: SystemTime) -> DateTime<Utc> {
    DateTime::<Utc>::from(t)
}

impl SourceProbes {
    pub fn new(dir: Option<PathBuf>) -> Arc<Self> {
        Arc::new(Self {
            dir,
            memory: Mutex::new(vec![]),
        })
    }

    /// Looks at every source once and keeps what it saw.
    pub async fn probe(&self, sources: &[Arc<SourceSchema>]) -> Vec<Probe> {
        let mut probes = Vec::with_capacity(sources.len());
        for schema in sources {
            let source = schema.source();
            let health = source.health().await;
            let (data_at, data_rows) = match source.snapshot() {
                Some((at, rows)) => (at.map(time), Some(rows)),
                None => (None, None),
            };
            probes.push(Probe {
                at: time(health.checked_at),
                source: source.name().to_string(),
                kind: source.kind().to_string(),
                mode: source.mode().as_str().to_string(),
                healthy: health.ok,
                message: health.message,
                latency_ms: health.latency.as_secs_f64() * 1000.0,
                data_at,
                data_rows,
            });
        }
        self.keep(&probes);
        probes
    }

    fn keep(&self, probes: &[Probe]) {
        if let Some(dir) = &self.dir {
            match Self::append(dir, probes) {
                Ok(()) => return,
                Err(e) => tracing::error!(
                    "cannot write source probes in {}: {e}; kept in memory",
                    dir.display()
                ),
            }
        }
        let mut memory = self.memory.lock().unwrap_or_else(|e| e.into_inner());
        memory.extend(probes.iter().cloned());
        let excess = memory.len().saturating_sub(MEMORY_PROBES);
        memory.drain(..excess);
    }

    fn append(dir: &std::path::Path, probes: &[Probe]) -> std::io::Result<()> {
        let Some(first) = probes.first() else {
            return Ok(());
        };
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("{PREFIX}{}.jsonl", first.at.format("%Y-%m")));
        let mut text = Vec::new();
        for probe in probes {
            serde_json::to_writer(&mut text, probe).map_err(std::io::Error::other)?;
            text.push(b'\n');
        }
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&path)?;
        // After a crash the last line may be torn: the next look starts a line of
        // its own.
        if ends_torn(&mut file)? {
            text.insert(0, b'\n');
        }
        // One write per look, so a crash tears at most the last line.
        file.write_all(&text)?;
        file.flush()
    }

    /// Every probe kept, oldest file first.
    pub fn read(&self) -> Vec<Probe> {
        let mut probes = vec![];
        if let Some(dir) = &self.dir {
            let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.path())
                        .filter(|p| {
                            p.file_name()
                                .and_then(|n| n.to_str())
                                .is_some_and(|n| n.starts_with(PREFIX) && n.ends_with(".jsonl"))
                        })
                        .collect()
                })
                .unwrap_or_default();
            files.sort();
            for path in files {
                let Ok(file) = std::fs::File::open(&path) else {
                    continue;
                };
                for line in BufReader::new(file).lines() {
                    let Ok(line) = line else { break };
                    // A torn line (a crash mid-write) is not a probe.
                    if let Ok(probe) = serde_json::from_str::<Probe>(&line) {
                        probes.push(probe);
                    }
                }
            }
        }
        probes.extend(
            self.memory
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .iter()
                .cloned(),
        );
        probes
    }

    /// `amar.source_probes`.
    pub fn table(self: &Arc<Self>) -> Arc<dyn datafusion::catalog::TableProvider> {
        crate::computed::Computed::table(ProbesTable {
            probes: self.clone(),
            schema: probes_schema(),
        })
    }
}

/// Whether the file's last line has no end.
fn ends_torn(file: &mut std::fs::File) -> std::io::Result<bool> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(false);
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    Ok(last[0] != b'\n')
}

fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

fn probes_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("at", timestamp(), false),
        Field::new("source", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("mode", DataType::Utf8, false),
        Field::new("healthy", DataType::Boolean, false),
        Field::new("message", DataType::Utf8, true),
        Field::new("latency_ms", DataType::Float64, false),
        Field::new("data_at", timestamp(), true),
        Field::new("data_rows", DataType::Int64, true),
    ]))
}

#[derive(Debug)]
struct ProbesTable {
    probes: Arc<SourceProbes>,
    schema: SchemaRef,
}

#[async_trait]
impl crate::computed::CatalogRows for ProbesTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        let source = self.probes.clone();
        let probes = crate::computed::read_blocking(move || source.read()).await?;
        let n = probes.len();
        let mut at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut source = StringBuilder::with_capacity(n, n * 12);
        let mut kind = StringBuilder::with_capacity(n, n * 8);
        let mut mode = StringBuilder::with_capacity(n, n * 8);
        let mut healthy = BooleanBuilder::with_capacity(n);
        let mut message = StringBuilder::new();
        let mut latency = Float64Builder::with_capacity(n);
        let mut data_at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
        let mut data_rows = Int64Builder::with_capacity(n);
        for p in &probes {
            at.append_value(p.at.timestamp_micros());
            source.append_value(&p.source);
            kind.append_value(&p.kind);
            mode.append_value(&p.mode);
            healthy.append_value(p.healthy);
            message.append_option(p.message.as_deref());
            latency.append_value(p.latency_ms);
            data_at.append_option(p.data_at.map(|t| t.timestamp_micros()));
            data_rows.append_option(p.data_rows.map(|r| r.min(i64::MAX as u64) as i64));
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(at.finish()),
            Arc::new(source.finish()),
            Arc::new(kind.finish()),
            Arc::new(mode.finish()),
            Arc::new(healthy.finish()),
            Arc::new(message.finish()),
            Arc::new(latency.finish()),
            Arc::new(data_at.finish()),
            Arc::new(data_rows.finish()),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn probe(source: &str, healthy: bool) -> Probe {
        Probe {
            at: Utc::now(),
            source: source.into(),
            kind: "postgres".into(),
            mode: "live".into(),
            healthy,
            message: (!healthy).then(|| "connection refused".into()),
            latency_ms: 1.5,
            data_at: None,
            data_rows: None,
        }
    }

    #[test]
    fn probes_survive_in_the_folder_and_a_torn_line_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let probes = SourceProbes::new(Some(dir.path().to_path_buf()));
        probes.keep(&[probe("a", true), probe("b", false)]);
        // A crash mid-write leaves half a line at the end.
        let file = std::fs::read_dir(dir.path())
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        f.write_all(b"{\"at\":\"2026-").unwrap();
        let again = SourceProbes::new(Some(dir.path().to_path_buf()));
        // The look after the crash is read whole.
        again.keep(&[probe("c", true)]);
        let read = again.read();
        assert_eq!(read.len(), 3, "{read:?}");
        assert_eq!(read[2].source, "c");
        assert_eq!(read[1].source, "b");
        assert!(!read[1].healthy);
        assert_eq!(read[1].message.as_deref(), Some("connection refused"));
    }

    #[test]
    fn without_a_folder_probes_are_kept_in_memory() {
        let probes = SourceProbes::new(None);
        probes.keep(&[probe("a", true)]);
        assert_eq!(probes.read().len(), 1);
    }
}
