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

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, RecordBatch, RecordBatchReader,
    StringBuilder, TimestampMillisecondBuilder,
};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde::{Deserialize, Serialize};

use crate::config::{DropOptions, Mode};
use crate::error::{ConnectorError, Result};
use crate::files::FilesSource;
use crate::source::{Health, Pushdown, Source, SourceTable};

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

/// The format of a file the drop folder takes, by extension.
fn drop_format(file_name: &str) -> Option<DropFormat> {
    let (_, ext) = file_name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "csv" => Some(DropFormat::Csv),
        "parquet" => Some(DropFormat::Parquet),
        "xlsx" | "xlsm" | "xls" | "ods" => Some(DropFormat::Spreadsheet),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum DropFormat {
    Csv,
    Parquet,
    Spreadsheet,
}

/// A stable 64-bit FNV-1a hash, so that a file's copy has the same name in every run.
fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// The name of a dropped file's copy in its table's folder.
fn output_name(file_name: &str) -> String {
    let readable: String = file_name
        .chars()
        .take(40)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{readable}-{:016x}.parquet", fnv1a(file_name.as_bytes()))
}

/// Reads one dropped file whole and copies it into its table; blocking.
fn take_in(
    options: &DropOptions,
    file_name: &str,
    table: &str,
    target: Option<SchemaRef>,
    previous: Option<&FileRecord>,
) -> Taken {
    let path = options.path.join(file_name);
    let format = drop_format(file_name).ok_or("not a CSV, Parquet or spreadsheet file")?;
    let batches = match format {
        DropFormat::Csv => read_csv(options, &path, target.as_ref())?,
        DropFormat::Parquet => read_parquet(&path)?,
        DropFormat::Spreadsheet => read_spreadsheet(options, &path)?,
    };
    let schema = batches.first().map(|b| b.schema()).ok_or("no columns")?;
    let (schema, batches) = match &target {
        Some(target) => {
            let batches = batches
                .iter()
                .map(|b| conform(b, target, table))
                .collect::<std::result::Result<Vec<_>, _>>()?;
            (target.clone(), batches)
        }
        None => (plain(&schema), batches),
    };
    let dir = options.store.join(TABLES).join(table);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let output = output_name(file_name);
    let partial = dir.join(format!(".{output}.partial"));
    let write = || -> std::result::Result<u64, String> {
        let file = File::create(&partial).map_err(|e| e.to_string())?;
        let mut writer =
            ArrowWriter::try_new(file, schema.clone(), None).map_err(|e| e.to_string())?;
        let mut rows = 0u64;
        for batch in &batches {
            let batch = RecordBatch::try_new(schema.clone(), batch.columns().to_vec())
                .map_err(|e| e.to_string())?;
            rows += batch.num_rows() as u64;
            writer.write(&batch).map_err(|e| e.to_string())?;
        }
        let file = writer.into_inner().map_err(|e| e.to_string())?;
        file.sync_all().map_err(|e| e.to_string())?;
        Ok(rows)
    };
    let rows = match write() {
        Ok(rows) => rows,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(format!("copying it failed: {e}"));
        }
    };
    std::fs::rename(&partial, dir.join(&output)).map_err(|e| {
        let _ = std::fs::remove_file(&partial);
        format!("copying it failed: {e}")
    })?;
    // The file moved to another table (the config changed): its old rows go.
    if let Some(previous) = previous
        && let (Some(old_table), Some(old_output)) = (&previous.table, &previous.output)
        && (old_table != table || old_output != &output)
    {
        let _ = std::fs::remove_file(options.store.join(TABLES).join(old_table).join(old_output));
    }
    Ok((table.to_string(), output, rows))
}

/// The schema with every column nullable and no metadata: what a table stores.
fn plain(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

fn parquet_schema(path: &Path) -> std::result::Result<SchemaRef, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    Ok(plain(builder.schema()))
}

fn read_parquet(path: &Path) -> std::result::Result<Vec<RecordBatch>, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    let schema = reader.schema();
    let batches = reader
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| format!("not a readable Parquet file: {e}"))?;
    if batches.is_empty() {
        return Ok(vec![RecordBatch::new_empty(schema)]);
    }
    Ok(batches)
}

fn read_csv(
    options: &DropOptions,
    path: &Path,
    target: Option<&SchemaRef>,
) -> std::result::Result<Vec<RecordBatch>, String> {
    use datafusion::arrow::csv::ReaderBuilder;
    use datafusion::arrow::csv::reader::Format;
    let mut file = File::open(path).map_err(|e| e.to_string())?;
    if file.metadata().map(|m| m.len()).unwrap_or(0) == 0 {
        return Err("the file is empty".to_string());
    }
    let format = Format::default()
        .with_header(options.has_header)
        .with_delimiter(options.delimiter);
    let (inferred, _) = format
        .infer_schema(BufReader::new(&file), None)
        .map_err(|e| format!("not a well-formed CSV file: {e}"))?;
    let mut names = std::collections::HashSet::new();
    for field in inferred.fields() {
        if field.name().trim().is_empty() {
            return Err("a column has no name in the header line".to_string());
        }
        if !names.insert(field.name().clone()) {
            return Err(format!("two columns are named \"{}\"", field.name()));
        }
    }
    // Appending: parse each column as the table's type (so that "0123" stays text
    // in a text column), in the file's column order.
    let schema = match target {
        Some(target) => {
            check_columns(&inferred, target)?;
            Arc::new(Schema::new(
                inferred
                    .fields()
                    .iter()
                    .map(|f| {
                        let t = target.field_with_name(f.name()).expect("checked above");
                        Field::new(f.name(), t.data_type().clone(), true)
                    })
                    .collect::<Vec<_>>(),
            ))
        }
        None => plain(&inferred),
    };
    file.rewind().map_err(|e| e.to_string())?;
    let reader = ReaderBuilder::new(schema.clone())
        .with_format(format)
        .with_batch_size(8192)
        .build(BufReader::new(file))
        .map_err(|e| e.to_string())?;
    let mut batches = vec![];
    let mut line = usize::from(options.has_header) + 1;
    for batch in reader {
        let batch = batch.map_err(|e| format!("near line {line}: {e}"))?;
        line += batch.num_rows();
        batches.push(batch);
    }
    if batches.is_empty() {
        batches.push(RecordBatch::new_empty(schema));
    }
    Ok(batches)
}

/// The file's columns must be the table's, by name (in any order).
fn check_columns(file: &Schema, table: &Schema) -> std::result::Result<(), String> {
    let missing: Vec<&str> = table
        .fields()
        .iter()
        .filter(|f| file.field_with_name(f.name()).is_err())
        .map(|f| f.name().as_str())
        .collect();
    let extra: Vec<&str> = file
        .fields()
        .iter()
        .filter(|f| table.field_with_name(f.name()).is_err())
        .map(|f| f.name().as_str())
        .collect();
    if missing.is_empty() && extra.is_empty() {
        return Ok(());
    }
    let mut why = vec![];
    if !missing.is_empty() {
        why.push(format!("lacks the table's columns {}", missing.join(", ")));
    }
    if !extra.is_empty() {
        why.push(format!("has columns the table lacks: {}", extra.join(", ")));
    }
    Err(format!(
        "its columns differ from the table's: it {}",
        why.join("; it ")
    ))
}

/// Whether values of type `from` go into a column of type `to` without loss.
fn widens(from: &DataType, to: &DataType) -> bool {
    use DataType::*;
    from == to
        || matches!(from, Null)
        || matches!(
            (from, to),
            (Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32, Int64)
                | (Int8 | Int16 | UInt8, Int32)
                | (Int8 | UInt8, Int16)
                | (
                    Int8 | Int16 | Int32 | UInt8 | UInt16 | UInt32 | Float32,
                    Float64
                )
                | (Int64, Float64)
                | (Utf8 | LargeUtf8 | Utf8View, Utf8 | LargeUtf8 | Utf8View)
                | (Date32, Timestamp(_, None))
        )
        || (matches!(to, Utf8 | LargeUtf8 | Utf8View) && from.is_primitive())
}

/// A file's batch in the table's column order and types, or why it does not fit.
fn conform(
    batch: &RecordBatch,
    target: &SchemaRef,
    table: &str,
) -> std::result::Result<RecordBatch, String> {
    check_columns(&batch.schema(), target)?;
    let cast_options = CastOptions {
        safe: false,
        format_options: FormatOptions::default(),
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = batch.column_by_name(field.name()).expect("checked above");
        if !widens(column.data_type(), field.data_type()) {
            return Err(format!(
                "column \"{}\" is {} in this file but {} in table \"{table}\"",
                field.name(),
                column.data_type(),
                field.data_type()
            ));
        }
        columns.push(
            cast_with_options(column, field.data_type(), &cast_options)
                .map_err(|e| format!("column \"{}\": {e}", field.name()))?,
        );
    }
    RecordBatch::try_new(target.clone(), columns).map_err(|e| e.to_string())
}

/// A cell's address in A1 notation (row and column from 0).
fn cell_name(row: usize, col: usize) -> String {
    let mut letters = vec![];
    let mut n = col + 1;
    while n > 0 {
        letters.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

/// What a spreadsheet column holds, as cells are seen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Empty,
    Bool,
    Float,
    Date,
    Timestamp,
    Text,
}

impl Kind {
    fn join(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Empty, x) | (x, Empty) => x,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }
}

/// Days from 0001-01-01 (chrono's CE day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_CE: i32 = 719_163;

fn read_spreadsheet(
    options: &DropOptions,
    path: &Path,
) -> std::result::Result<Vec<RecordBatch>, String> {
    use calamine::{Data, DataType as _, Reader, open_workbook_auto};
    use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
    let mut workbook =
        open_workbook_auto(path).map_err(|e| format!("not a readable spreadsheet: {e}"))?;
    let sheet = match &options.sheet {
        Some(sheet) => sheet.clone(),
        None => workbook
            .sheet_names()
            .first()
            .cloned()
            .ok_or("the workbook has no sheets")?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| format!("sheet \"{sheet}\": {e}"))?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let (first_row, first_col) = (first_row as usize, first_col as usize);
    let mut rows = range
        .rows()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| *c != Data::Empty));
    let Some((header_at, header)) = rows.next() else {
        return Err(format!("sheet \"{sheet}\" is empty"));
    };
    let mut names = vec![];
    for (i, cell) in header.iter().enumerate() {
        let at = cell_name(first_row + header_at, first_col + i);
        let name = match cell {
            Data::String(s) => s.trim().to_string(),
            Data::Int(n) => n.to_string(),
            Data::Float(f) => f.to_string(),
            Data::Empty => String::new(),
            other => other.to_string(),
        };
        if name.is_empty() {
            // Trailing empty header cells only end the table.
            if header[i..].iter().all(|c| *c == Data::Empty) {
                break;
            }
            return Err(format!(
                "sheet \"{sheet}\", cell {at}: a column has no name"
            ));
        }
        if names.contains(&name) {
            return Err(format!(
                "sheet \"{sheet}\", cell {at}: two columns are named \"{name}\""
            ));
        }
        names.push(name);
    }
    let width = names.len();
    let data: Vec<(usize, &[Data])> = rows.map(|(i, r)| (first_row + i, r)).collect();
    // Error cells reject the file; values beyond the named columns too.
    let datetime = |d: &calamine::ExcelDateTime| -> Option<NaiveDateTime> {
        let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
        NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(da))?.and_hms_milli_opt(
            u32::from(h),
            u32::from(mi),
            u32::from(s),
            u32::from(ms),
        )
    };
    let mut kinds = vec![Kind::Empty; width];
    for (row, cells) in &data {
        for (i, cell) in cells.iter().enumerate() {
            let at = || format!("sheet \"{sheet}\", cell {}", cell_name(*row, first_col + i));
            if i >= width {
                if *cell != Data::Empty {
                    return Err(format!("{}: a value in a column with no name", at()));
                }
                continue;
            }
            let kind = match cell {
                Data::Empty => Kind::Empty,
                Data::Bool(_) => Kind::Bool,
                // Excel keeps every number as a double: whole numbers this month
                // and fractions the next must land in the same column type.
                Data::Int(_) | Data::Float(_) => Kind::Float,
                Data::DateTime(d) if d.is_datetime() => match datetime(d) {
                    Some(t) if t.time() == chrono::NaiveTime::MIN => Kind::Date,
                    Some(_) => Kind::Timestamp,
                    None => return Err(format!("{}: not a valid date", at())),
                },
                Data::Error(e) => return Err(format!("{}: holds the error {e}", at())),
                _ => Kind::Text,
            };
            kinds[i] = kinds[i].join(kind);
        }
    }
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| {
                let t = match kind {
                    Kind::Bool => DataType::Boolean,
                    Kind::Float => DataType::Float64,
                    Kind::Date => DataType::Date32,
                    Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    Kind::Empty | Kind::Text => DataType::Utf8,
                };
                Field::new(name, t, true)
            })
            .collect::<Vec<_>>(),
    ));
    let text = |cell: &Data| -> Option<String> {
        match cell {
            Data::Empty => None,
            Data::String(s) => Some(s.clone()),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(format!("{}", *f as i64))
            }
            Data::DateTime(d) if d.is_datetime() => datetime(d).map(|t| {
                if t.time() == chrono::NaiveTime::MIN {
                    t.date().to_string()
                } else {
                    t.to_string()
                }
            }),
            other => Some(other.to_string()),
        }
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(width);
    for (i, kind) in kinds.iter().enumerate() {
        let cells = data.iter().map(|(_, r)| r.get(i).unwrap_or(&Data::Empty));
        let column: ArrayRef = match kind {
            Kind::Bool => {
                let mut b = BooleanBuilder::new();
                cells.for_each(|c| b.append_option(c.get_bool()));
                Arc::new(b.finish())
            }
            Kind::Float => {
                let mut b = Float64Builder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::Int(n) => Some(*n as f64),
                        Data::Float(f) => Some(*f),
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Date => {
                let mut b = Date32Builder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::DateTime(d) => {
                            datetime(d).map(|t| t.date().num_days_from_ce() - UNIX_EPOCH_DAYS_CE)
                        }
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Timestamp => {
                let mut b = TimestampMillisecondBuilder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::DateTime(d) => datetime(d).map(|t| {
                            t.and_utc().timestamp() * 1000 + i64::from(t.nanosecond() / 1_000_000)
                        }),
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Empty | Kind::Text => {
                let mut b = StringBuilder::new();
                cells.for_each(|c| b.append_option(text(c)));
                Arc::new(b.finish())
            }
        };
        columns.push(column);
    }
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
    Ok(vec![batch])
}

#[async_trait]
impl Source for DropSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "drop"
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(6, 2), "C7");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(9, 701), "ZZ10");
    }

    #[test]
    fn output_names_are_stable_and_distinct() {
        assert_eq!(output_name("a.csv"), output_name("a.csv"));
        assert_ne!(output_name("a.csv"), output_name("a.xlsx"));
        assert!(output_name("بیمه ۱۴۰۳.csv").ends_with(".parquet"));
        assert!(output_name("بیمه ۱۴۰۳.csv").is_ascii());
    }

    #[test]
    fn widening() {
        assert!(widens(&DataType::Int32, &DataType::Int64));
        assert!(widens(&DataType::Int64, &DataType::Float64));
        assert!(widens(&DataType::Int64, &DataType::Utf8));
        assert!(!widens(&DataType::Float64, &DataType::Int64));
        assert!(!widens(&DataType::Utf8, &DataType::Int64));
    }
}
