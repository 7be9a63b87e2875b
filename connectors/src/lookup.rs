//! Parquet that Amar writes itself (snapshot copies, drop-folder stores), laid out so
//! that a lookup by key reads a page, not the table: rows sorted by the table's key
//! columns (its primary key at the source, or the `keys` a source's config declares),
//! page-level statistics (the page index), and a bloom filter on each key column. A
//! reader that prunes by the page index and filters in the reader
//! ([`reader_options`]) then touches one data page of each column a lookup returns.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::{
    SortColumn, concat_batches, lexsort_to_indices, take_record_batch,
};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::TableProvider;
use datafusion::common::Constraint;
use datafusion::config::{ParquetColumnOptions, TableParquetOptions};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;

/// Rows per data page: a lookup decodes at most this many values of a column.
pub const PAGE_ROWS: usize = 8192;

/// A column's dictionary page is read whole by any lookup in its row group; past
/// this size the writer encodes the rest of the column plainly (names, national ids),
/// while columns of few values (codes, periods) keep their small dictionaries.
pub const DICTIONARY_BYTES: usize = 64 << 10;

/// The key columns of a table: those the config declares for it, else its primary
/// key as the source reported it; only columns the table has.
pub fn keys_of(
    table: &str,
    declared: &std::collections::BTreeMap<String, Vec<String>>,
    provider: &dyn TableProvider,
) -> Vec<String> {
    let schema = provider.schema();
    let keys: Vec<String> = match declared.get(table) {
        Some(keys) => keys.clone(),
        None => provider
            .constraints()
            .and_then(|c| {
                c.iter().find_map(|c| match c {
                    Constraint::PrimaryKey(indices) => Some(
                        indices
                            .iter()
                            .filter_map(|i| schema.fields().get(*i))
                            .map(|f| f.name().clone())
                            .collect(),
                    ),
                    _ => None,
                })
            })
            .unwrap_or_default(),
    };
    keys.into_iter()
        .filter(|k| schema.field_with_name(k).is_ok())
        .collect()
}

/// DataFusion's writer options for a table with `keys`.
pub fn write_options(keys: &[String]) -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    options.global.statistics_enabled = Some("page".into());
    options.global.data_page_row_count_limit = PAGE_ROWS;
    options.global.dictionary_page_size_limit = DICTIONARY_BYTES;
    options.global.bloom_filter_on_write = false;
    options.column_specific_options = keys
        .iter()
        .map(|k| {
            (
                k.clone(),
                ParquetColumnOptions {
                    bloom_filter_enabled: Some(true),
                    ..Default::default()
                },
            )
        })
        .collect::<HashMap<_, _>>();
    options
}

/// arrow-rs writer properties for a table with `keys` (the drop folder's copies).
pub fn writer_properties(schema: &Schema, keys: &[String]) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_statistics_enabled(EnabledStatistics::Page)
        .set_data_page_row_count_limit(PAGE_ROWS)
        .set_dictionary_page_size_limit(DICTIONARY_BYTES);
    for key in keys {
        if schema.field_with_name(key).is_ok() {
            builder = builder.set_column_bloom_filter_enabled(ColumnPath::from(key.as_str()), true);
        }
    }
    builder.build()
}

/// `batches` as one batch sorted by `keys` (ascending, nulls last); unchanged when
/// there are no keys.
pub fn sorted(
    schema: &SchemaRef,
    batches: Vec<RecordBatch>,
    keys: &[String],
) -> datafusion::arrow::error::Result<Vec<RecordBatch>> {
    let columns: Vec<usize> = keys
        .iter()
        .filter_map(|k| schema.index_of(k).ok())
        .collect();
    if columns.is_empty() || batches.is_empty() {
        return Ok(batches);
    }
    let all = concat_batches(schema, &batches)?;
    let sort: Vec<SortColumn> = columns
        .iter()
        .map(|i| SortColumn {
            values: Arc::clone(all.column(*i)),
            options: Some(datafusion::arrow::compute::SortOptions {
                descending: false,
                nulls_first: false,
            }),
        })
        .collect();
    let order = lexsort_to_indices(&sort, None)?;
    Ok(vec![take_record_batch(&all, &order)?])
}

/// How Amar reads Parquet: filters evaluated in the reader (late materialisation:
/// other columns are decoded only for rows that pass), the cheapest first, with the
/// page index and bloom filters used to skip what cannot match.
pub fn reader_options() -> TableParquetOptions {
    let mut options = TableParquetOptions::default();
    options.global.pushdown_filters = true;
    options.global.reorder_filters = true;
    options.global.enable_page_index = true;
    options.global.bloom_filter_on_read = true;
    options
}
