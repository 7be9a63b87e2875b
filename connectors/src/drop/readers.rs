//! Reading dropped CSV and Parquet files whole into batches, and the plain
//! (all-nullable, no metadata) schema a table stores.

use std::fs::File;
use std::io::{BufReader, Seek};
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{RecordBatch, RecordBatchReader};
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::intake::check_columns;
use crate::config::DropOptions;

/// The schema with every column nullable and no metadata: what a table stores.
pub(super) fn plain(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new(
        schema
            .fields()
            .iter()
            .map(|f| Field::new(f.name(), f.data_type().clone(), true))
            .collect::<Vec<_>>(),
    ))
}

pub(super) fn parquet_schema(path: &Path) -> std::result::Result<SchemaRef, String> {
    let file = File::open(path).map_err(|e| e.to_string())?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| e.to_string())?;
    Ok(plain(builder.schema()))
}

pub(super) fn read_parquet(path: &Path) -> std::result::Result<Vec<RecordBatch>, String> {
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

pub(super) fn read_csv(
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
