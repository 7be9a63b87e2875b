//! Taking one dropped file in: its format by extension, reading it whole, fitting it
//! to its table's columns and types, and writing its Parquet copy under a stable name.

use std::fs::File;

use datafusion::arrow::array::{ArrayRef, RecordBatch};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::util::display::FormatOptions;
use datafusion::parquet::arrow::ArrowWriter;

use super::readers::{plain, read_csv, read_parquet};
use super::spreadsheets::read_spreadsheet;
use super::{FileRecord, TABLES, Taken};
use crate::config::DropOptions;

/// The format of a file the drop folder takes, by extension.
pub(super) fn drop_format(file_name: &str) -> Option<DropFormat> {
    let (_, ext) = file_name.rsplit_once('.')?;
    match ext.to_ascii_lowercase().as_str() {
        "csv" => Some(DropFormat::Csv),
        "parquet" => Some(DropFormat::Parquet),
        "xlsx" | "xlsm" | "xls" | "ods" => Some(DropFormat::Spreadsheet),
        _ => None,
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum DropFormat {
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
pub(super) fn take_in(
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
    let keys = options
        .keys
        .get(table)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let batches = crate::lookup::sorted(&schema, batches, keys)
        .map_err(|e| format!("sorting it by {keys:?} failed: {e}"))?;
    let properties = crate::lookup::writer_properties(&schema, keys);
    let dir = options.store.join(TABLES).join(table);
    std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let output = output_name(file_name);
    let partial = dir.join(format!(".{output}.partial"));
    let write = || -> std::result::Result<u64, String> {
        let file = File::create(&partial).map_err(|e| e.to_string())?;
        let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties.clone()))
            .map_err(|e| e.to_string())?;
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

/// The file's columns must be the table's, by name (in any order).
pub(super) fn check_columns(file: &Schema, table: &Schema) -> std::result::Result<(), String> {
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

#[cfg(test)]
mod tests {
    use super::*;

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
