//! The audit log: one entry per statement, from every front end.
//!
//! Each entry says who ran what, from where and over which protocol, which objects
//! the statement read, what the policy decided, how many rows and bytes it returned,
//! how long it took and how it failed. Entries go to two places:
//!
//! - an append-only JSON-lines file, `query_log.jsonl` in the audit folder, rotated
//!   by size to `query_log-<UTC time>.jsonl` (old files are kept, or the oldest are
//!   removed beyond `keep_files` when that is set);
//! - the table `amar.query_log`, which holds the most recent entries in memory
//!   (refilled from the files when the server starts, so the log survives restarts);
//!   `amar.query_history` reads every entry of the files (rotated ones too), for
//!   reports over a quarter, after the writer has written out all recorded before.
//!
//! A writer thread appends to the file and flushes after each run of entries (it
//! lets them gather for 10 ms between runs), so a slow disk never holds up a query;
//! [`AuditLog::close`] drains it at shutdown.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use amar_catalog::rfc3339;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{
    ArrayRef, Float64Builder, Int64Builder, ListBuilder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::error::Result;
use serde::{Deserialize, Serialize};

const CURRENT: &str = "query_log.jsonl";
/// The longest statement `amar.query_log` holds in memory (bytes); longer ones are
/// cut there, and kept whole in the file.
const MAX_REMEMBERED_STATEMENT: usize = 16 * 1024;
const PREFIX: &str = "query_log-";

/// Where and how much to keep.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    pub dir: PathBuf,
    /// The current file is rotated before it grows past this.
    pub max_file_bytes: u64,
    /// Rotated files to keep; 0 keeps them all.
    pub keep_files: usize,
    /// Entries `amar.query_log` holds.
    pub memory_rows: usize,
}

impl AuditConfig {
    pub fn in_dir(dir: PathBuf) -> Self {
        AuditConfig {
            dir,
            max_file_bytes: 64 * 1024 * 1024,
            keep_files: 0,
            memory_rows: 100_000,
        }
    }
}

/// One statement, as audited.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AuditEntry {
    /// When the statement arrived.
    #[serde(with = "rfc3339")]
    pub at: DateTime<Utc>,
    pub session: u64,
    pub user: String,
    /// The client's address.
    pub client: String,
    /// `pgwire` or `flight`.
    pub protocol: String,
    pub application: String,
    pub statement: String,
    /// `schema.table` of every table the statement read.
    pub objects: Vec<String>,
    /// `allowed`, `denied`, or `allowed: <what was filtered or masked>`.
    pub decision: String,
    pub rows: u64,
    /// The size of the returned data in Arrow form.
    pub bytes: u64,
    pub duration_ms: f64,
    pub sqlstate: Option<String>,
    pub error: Option<String>,
}

/// What the writer thread is sent.
enum Message {
    Entry(Arc<AuditEntry>),
    /// Flush what came before, then say so.
    Flush(std::sync::mpsc::SyncSender<()>),
}

/// The audit log of one server.
pub struct AuditLog {
    recent: Mutex<VecDeque<Arc<AuditEntry>>>,
    capacity: usize,
    sender: Mutex<Option<Sender<Message>>>,
    writer: Mutex<Option<JoinHandle<()>>>,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    dir: PathBuf,
    /// The engine's metrics, which count every recorded statement (attached by
    /// [`AuditLog::count_in`]).
    metrics: std::sync::OnceLock<Arc<crate::metrics::Metrics>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Opens the audit folder, reloads the most recent entries and starts the writer.
    pub fn open(config: &AuditConfig) -> anyhow::Result<Arc<Self>> {
        use anyhow::Context;
        std::fs::create_dir_all(&config.dir)
            .with_context(|| format!("cannot create the audit folder {}", config.dir.display()))?;
        let recent = reload(&config.dir, config.memory_rows);
        let current = config.dir.join(CURRENT);
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .read(true)
            .open(&current)
            .with_context(|| format!("cannot open the audit log {}", current.display()))?;
        end_with_newline(&mut file)
            .with_context(|| format!("cannot repair the audit log {}", current.display()))?;
        let (sender, receiver) = channel();
        let written = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let writer = Writer {
            dir: config.dir.clone(),
            size: file.metadata().map(|m| m.len()).unwrap_or(0),
            file: BufWriter::new(file),
            max_file_bytes: config.max_file_bytes.max(1),
            keep_files: config.keep_files,
            written: written.clone(),
            failed: failed.clone(),
        };
        let handle = std::thread::Builder::new()
            .name("amar-audit".into())
            .spawn(move || writer.run(receiver))
            .context("cannot start the audit writer")?;
        Ok(Arc::new(AuditLog {
            recent: Mutex::new(recent),
            capacity: config.memory_rows.max(1),
            sender: Mutex::new(Some(sender)),
            writer: Mutex::new(Some(handle)),
            written,
            failed,
            dir: config.dir.clone(),
            metrics: std::sync::OnceLock::new(),
        }))
    }

    /// Counts every statement recorded from now on in `metrics` (the engine's).
    pub fn count_in(&self, metrics: Arc<crate::metrics::Metrics>) {
        let _ = self.metrics.set(metrics);
    }

    /// Records one statement (and counts it in the metrics, and logs it at info).
    pub fn record(&self, entry: AuditEntry) {
        if let Some(metrics) = self.metrics.get() {
            metrics.observe(&entry);
        }
        let statement = match entry.statement.char_indices().nth(200) {
            Some((cut, _)) => &entry.statement[..cut],
            None => entry.statement.as_str(),
        };
        tracing::info!(
            target: "amar::statement",
            session = entry.session,
            user = %entry.user,
            protocol = %entry.protocol,
            rows = entry.rows,
            ms = entry.duration_ms,
            sqlstate = entry.sqlstate.as_deref().unwrap_or(""),
            decision = %entry.decision,
            "{statement}"
        );
        let entry = Arc::new(entry);
        // `amar.query_log` keeps a long statement by its head, so that a hundred
        // thousand remembered entries of hostile megabyte statements cannot fill
        // the server's memory; the file keeps it whole.
        let remembered = remembered(&entry);
        // Memory and file take entries in the same order (under the same lock).
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        if recent.len() >= self.capacity {
            recent.pop_front();
        }
        recent.push_back(remembered);
        let sender = self.sender.lock().unwrap_or_else(|e| e.into_inner());
        match sender.as_ref() {
            Some(s) if s.send(Message::Entry(entry)).is_ok() => {}
            _ => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("the audit writer has stopped; an entry is in memory only");
            }
        }
    }

    /// Every entry in the files, rotated ones included, oldest file first, after the
    /// writer has written out everything recorded before this call. Statements are
    /// cut as in `amar.query_log`.
    pub fn history(&self) -> Vec<Arc<AuditEntry>> {
        let (done, written) = std::sync::mpsc::sync_channel(1);
        let asked = self
            .sender
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .is_some_and(|s| s.send(Message::Flush(done)).is_ok());
        if asked
            && written
                .recv_timeout(std::time::Duration::from_secs(10))
                .is_err()
        {
            tracing::warn!("the audit writer did not flush in time; reading the files as they are");
        }
        let mut entries = vec![];
        let mut skipped = 0usize;
        for path in log_files(&self.dir) {
            entries.extend(read_entries(&path, &mut skipped));
        }
        if skipped > 0 {
            tracing::warn!(skipped, "audit log lines that do not parse were skipped");
        }
        entries
    }

    /// Entries appended to the file since start, and entries that could not be.
    pub fn counters(&self) -> (u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Writes out everything recorded so far and stops the writer.
    pub fn close(&self) {
        drop(self.sender.lock().unwrap_or_else(|e| e.into_inner()).take());
        if let Some(handle) = self.writer.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = handle.join();
        }
    }

    fn snapshot(&self) -> Vec<Arc<AuditEntry>> {
        self.recent
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// `amar.query_log`.
    pub fn table(self: &Arc<Self>) -> Arc<dyn TableProvider> {
        amar_catalog::computed::Computed::table(QueryLogTable {
            log: self.clone(),
            schema: query_log_schema(),
        })
    }

    /// `amar.query_history`.
    pub fn history_table(self: &Arc<Self>) -> Arc<dyn TableProvider> {
        amar_catalog::computed::Computed::table(QueryHistoryTable {
            log: self.clone(),
            schema: query_log_schema(),
        })
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.close();
    }
}

/// After a crash the last line may be torn; new entries start on a line of their own.
fn end_with_newline(file: &mut File) -> std::io::Result<()> {
    use std::io::{Read, Seek, SeekFrom};
    let len = file.metadata()?.len();
    if len == 0 {
        return Ok(());
    }
    let mut last = [0u8; 1];
    file.seek(SeekFrom::Start(len - 1))?;
    file.read_exact(&mut last)?;
    if last[0] != b'\n' {
        file.write_all(b"\n")?;
    }
    Ok(())
}

/// Rotated files, oldest first, then the current one.
fn log_files(dir: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<PathBuf> = std::fs::read_dir(dir)
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
    rotated.sort();
    rotated.push(dir.join(CURRENT));
    rotated
}

/// An entry as `amar.query_log` keeps it in memory: a long statement by its head.
fn remembered(entry: &Arc<AuditEntry>) -> Arc<AuditEntry> {
    if entry.statement.len() <= MAX_REMEMBERED_STATEMENT {
        return entry.clone();
    }
    let mut short = AuditEntry::clone(entry);
    let cut = (0..=MAX_REMEMBERED_STATEMENT)
        .rev()
        .find(|i| short.statement.is_char_boundary(*i))
        .unwrap_or(0);
    short.statement.truncate(cut);
    short.statement.push('…');
    Arc::new(short)
}

/// The entries of one file (none if it cannot be opened), as `amar.query_log` keeps
/// them; lines that do not parse (a torn last line after a crash) are counted in
/// `skipped`.
fn read_entries(path: &Path, skipped: &mut usize) -> Vec<Arc<AuditEntry>> {
    let Ok(file) = File::open(path) else {
        return vec![];
    };
    let mut entries = vec![];
    for line in BufReader::new(file).lines() {
        let Ok(line) = line else {
            *skipped += 1;
            continue;
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditEntry>(&line) {
            Ok(e) => entries.push(remembered(&Arc::new(e))),
            Err(_) => *skipped += 1,
        }
    }
    entries
}

/// The newest `capacity` entries from the files. A line that does not parse (a torn
/// last line after a crash) is skipped, and said so.
fn reload(dir: &Path, capacity: usize) -> VecDeque<Arc<AuditEntry>> {
    let mut recent = VecDeque::new();
    let mut skipped = 0usize;
    let files = log_files(dir);
    // Read newest files first until enough entries are in hand.
    let mut chunks: Vec<Vec<Arc<AuditEntry>>> = vec![];
    let mut total = 0;
    for path in files.iter().rev() {
        let entries = read_entries(path, &mut skipped);
        total += entries.len();
        chunks.push(entries);
        if total >= capacity {
            break;
        }
    }
    for chunk in chunks.into_iter().rev() {
        recent.extend(chunk);
    }
    while recent.len() > capacity {
        recent.pop_front();
    }
    if skipped > 0 {
        tracing::warn!(
            skipped,
            "audit log lines that do not parse were skipped on reload"
        );
    }
    recent
}

/// How long the writer lets entries gather after each write.
const GATHER: std::time::Duration = std::time::Duration::from_millis(10);

struct Writer {
    dir: PathBuf,
    file: BufWriter<File>,
    size: u64,
    max_file_bytes: u64,
    keep_files: usize,
    written: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
}

impl Writer {
    fn run(mut self, receiver: Receiver<Message>) {
        while let Ok(first) = receiver.recv() {
            let mut flushed = vec![];
            // Take whatever else is waiting, then flush once.
            for message in
                std::iter::once(first).chain(std::iter::from_fn(|| receiver.try_recv().ok()))
            {
                match message {
                    Message::Entry(entry) => self.append(&entry),
                    Message::Flush(done) => flushed.push(done),
                }
            }
            if let Err(e) = self.file.flush() {
                tracing::error!("cannot write the audit log: {e}");
            }
            for done in flushed {
                let _ = done.try_send(());
            }
            // Let entries gather before the next wake-up: under a stream of short
            // statements, waking this thread for each one cost a seventh of the
            // server's time (a futex wake and a context switch per statement).
            // Entries are in `recent` (amar.query_log) at once; the file has them
            // within this interval.
            std::thread::sleep(GATHER);
        }
        let _ = self.file.flush();
        let _ = self.file.get_ref().sync_all();
    }

    fn append(&mut self, entry: &AuditEntry) {
        let mut line = match serde_json::to_vec(entry) {
            Ok(line) => line,
            Err(e) => {
                tracing::error!("cannot encode an audit entry: {e}");
                self.failed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        };
        line.push(b'\n');
        if self.size > 0
            && self.size + line.len() as u64 > self.max_file_bytes
            && let Err(e) = self.rotate()
        {
            tracing::error!("cannot rotate the audit log: {e}; appending to the current file");
        }
        match self.file.write_all(&line) {
            Ok(()) => {
                self.size += line.len() as u64;
                self.written.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("cannot write the audit log: {e}");
            }
        }
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        self.file.flush()?;
        self.file.get_ref().sync_all()?;
        let current = self.dir.join(CURRENT);
        let mut stamp = Utc::now().format("%Y%m%dT%H%M%S%.6fZ").to_string();
        // Two rotations within a microsecond must not overwrite each other.
        let mut target = self.dir.join(format!("{PREFIX}{stamp}.jsonl"));
        let mut n = 1;
        while target.exists() {
            stamp = format!("{}-{n}", Utc::now().format("%Y%m%dT%H%M%S%.6fZ"));
            target = self.dir.join(format!("{PREFIX}{stamp}.jsonl"));
            n += 1;
        }
        std::fs::rename(&current, &target)?;
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&current)?;
        self.file = BufWriter::new(file);
        self.size = 0;
        if self.keep_files > 0 {
            let rotated: Vec<PathBuf> = log_files(&self.dir)
                .into_iter()
                .filter(|p| p != &current)
                .collect();
            let excess = rotated.len().saturating_sub(self.keep_files);
            for old in &rotated[..excess] {
                if let Err(e) = std::fs::remove_file(old) {
                    tracing::warn!("cannot remove the old audit file {}: {e}", old.display());
                }
            }
        }
        Ok(())
    }
}

fn query_log_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new(
            "at",
            DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            false,
        ),
        Field::new("session_id", DataType::Int64, false),
        Field::new("user_name", DataType::Utf8, false),
        Field::new("client_addr", DataType::Utf8, false),
        Field::new("protocol", DataType::Utf8, false),
        Field::new("application_name", DataType::Utf8, false),
        Field::new("statement", DataType::Utf8, false),
        Field::new(
            "objects",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            false,
        ),
        Field::new("decision", DataType::Utf8, false),
        Field::new("rows", DataType::Int64, false),
        Field::new("bytes", DataType::Int64, false),
        Field::new("duration_ms", DataType::Float64, false),
        Field::new("sqlstate", DataType::Utf8, true),
        Field::new("error", DataType::Utf8, true),
    ]))
}

/// `amar.query_log`: the most recent entries, oldest first.
#[derive(Debug)]
struct QueryLogTable {
    log: Arc<AuditLog>,
    schema: SchemaRef,
}

/// Entries as rows of `amar.query_log` (and `amar.query_history`).
fn entries_batch(schema: &SchemaRef, entries: &[Arc<AuditEntry>]) -> Result<RecordBatch> {
    let n = entries.len();
    let mut at = TimestampMicrosecondBuilder::with_capacity(n).with_timezone("UTC");
    let mut session = Int64Builder::with_capacity(n);
    let mut user = StringBuilder::new();
    let mut client = StringBuilder::new();
    let mut protocol = StringBuilder::new();
    let mut application = StringBuilder::new();
    let mut statement = StringBuilder::new();
    let mut objects = ListBuilder::new(StringBuilder::new());
    let mut decision = StringBuilder::new();
    let mut rows = Int64Builder::with_capacity(n);
    let mut bytes = Int64Builder::with_capacity(n);
    let mut duration = Float64Builder::with_capacity(n);
    let mut sqlstate = StringBuilder::new();
    let mut error = StringBuilder::new();
    for e in entries {
        at.append_value(e.at.timestamp_micros());
        session.append_value(e.session as i64);
        user.append_value(&e.user);
        client.append_value(&e.client);
        protocol.append_value(&e.protocol);
        application.append_value(&e.application);
        statement.append_value(&e.statement);
        for o in &e.objects {
            objects.values().append_value(o);
        }
        objects.append(true);
        decision.append_value(&e.decision);
        rows.append_value(e.rows.min(i64::MAX as u64) as i64);
        bytes.append_value(e.bytes.min(i64::MAX as u64) as i64);
        duration.append_value(e.duration_ms);
        sqlstate.append_option(e.sqlstate.as_deref());
        error.append_option(e.error.as_deref());
    }
    let objects = objects.finish();
    // The builder's list field must match the schema's, nullable items included.
    let columns: Vec<ArrayRef> = vec![
        Arc::new(at.finish()),
        Arc::new(session.finish()),
        Arc::new(user.finish()),
        Arc::new(client.finish()),
        Arc::new(protocol.finish()),
        Arc::new(application.finish()),
        Arc::new(statement.finish()),
        Arc::new(objects),
        Arc::new(decision.finish()),
        Arc::new(rows.finish()),
        Arc::new(bytes.finish()),
        Arc::new(duration.finish()),
        Arc::new(sqlstate.finish()),
        Arc::new(error.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// `amar.query_history`: every entry in the files, for reports over months.
#[derive(Debug)]
struct QueryHistoryTable {
    log: Arc<AuditLog>,
    schema: SchemaRef,
}

#[async_trait]
impl amar_catalog::computed::CatalogRows for QueryHistoryTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        let log = self.log.clone();
        let entries = amar_catalog::computed::read_blocking(move || log.history()).await?;
        entries_batch(&self.schema, &entries)
    }
}

#[async_trait]
impl amar_catalog::computed::CatalogRows for QueryLogTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        entries_batch(&self.schema, &self.log.snapshot())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(i: u64) -> AuditEntry {
        AuditEntry {
            at: Utc::now(),
            session: i,
            user: "tehran".into(),
            client: "127.0.0.1:5000".into(),
            protocol: "pgwire".into(),
            application: "psql".into(),
            statement: format!("SELECT {i} -- ‌فارسی"),
            objects: vec!["insurance.contributions".into()],
            decision: "allowed: row filter on insurance.contributions".into(),
            rows: i,
            bytes: 8 * i,
            duration_ms: 1.5,
            sqlstate: None,
            error: None,
        }
    }

    /// A log in `dir` rotating past `max_file_bytes`, keeping `memory_rows` in memory.
    fn config(dir: &tempfile::TempDir, max_file_bytes: u64, memory_rows: usize) -> AuditConfig {
        AuditConfig {
            dir: dir.path().to_path_buf(),
            max_file_bytes,
            keep_files: 0,
            memory_rows,
        }
    }

    #[test]
    fn entries_survive_a_restart_and_files_rotate_by_size() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir, 2_000, 1_000);
        let log = AuditLog::open(&config).unwrap();
        for i in 0..50 {
            log.record(entry(i));
        }
        log.close();
        assert_eq!(log.counters(), (50, 0));
        let files = log_files(dir.path());
        assert!(files.len() > 3, "rotated by size: {files:?}");
        for f in &files {
            assert!(std::fs::metadata(f).unwrap().len() <= 2_000, "{f:?}");
        }
        drop(log);
        let reopened = AuditLog::open(&config).unwrap();
        let sessions: Vec<u64> = reopened.snapshot().iter().map(|e| e.session).collect();
        assert_eq!(
            sessions,
            (0..50).collect::<Vec<_>>(),
            "all entries, in order"
        );
        assert_eq!(*reopened.snapshot()[7], {
            let mut e = entry(7);
            e.at = reopened.snapshot()[7].at;
            e
        });
    }

    #[test]
    fn memory_keeps_the_newest_and_old_files_can_be_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig {
            keep_files: 2,
            ..config(&dir, 1_000, 10)
        };
        let log = AuditLog::open(&config).unwrap();
        for i in 0..40 {
            log.record(entry(i));
        }
        assert_eq!(log.snapshot().len(), 10);
        assert_eq!(log.snapshot()[0].session, 30);
        log.close();
        assert_eq!(
            log_files(dir.path()).len(),
            3,
            "two rotated and the current one"
        );
        let batch = entries_batch(&query_log_schema(), &log.snapshot()).unwrap();
        assert_eq!(batch.num_rows(), 10);
    }

    #[test]
    fn the_history_reads_every_file_and_waits_for_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let config = config(&dir, 1_000, 10);
        let log = AuditLog::open(&config).unwrap();
        for i in 0..40 {
            log.record(entry(i));
        }
        // Asked at once, before the writer's next run: every entry, in order, though
        // memory holds ten and the files are several.
        let history = log.history();
        assert_eq!(
            history.iter().map(|e| e.session).collect::<Vec<_>>(),
            (0..40).collect::<Vec<_>>()
        );
        assert!(log_files(dir.path()).len() > 2);
        log.close();
        assert_eq!(log.history().len(), 40, "and after the writer stopped");
    }

    #[test]
    fn a_torn_line_is_skipped_on_reload() {
        let dir = tempfile::tempdir().unwrap();
        let config = AuditConfig::in_dir(dir.path().to_path_buf());
        let log = AuditLog::open(&config).unwrap();
        log.record(entry(1));
        log.close();
        drop(log);
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join(CURRENT))
            .unwrap();
        f.write_all(b"{\"at\":\"2026-").unwrap();
        let log = AuditLog::open(&config).unwrap();
        assert_eq!(log.snapshot().len(), 1);
        log.record(entry(2));
        log.close();
        drop(log);
        let log = AuditLog::open(&config).unwrap();
        let sessions: Vec<u64> = log.snapshot().iter().map(|e| e.session).collect();
        assert_eq!(
            sessions,
            vec![1, 2],
            "the entry after the torn line is whole"
        );
    }
}
