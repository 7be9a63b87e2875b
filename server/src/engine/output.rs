//! The result columns as PostgreSQL would present them.
//!
//! DataFusion names an unaliased expression after its full text (`count(*)`,
//! `sum(insurance.contributions.wage)`); PostgreSQL names it by a short rule
//! (`count`, `sum`, `?column?`) that BI tools and data frames rely on. DataFusion also
//! refuses two output columns with one name, which PostgreSQL allows
//! (`SELECT count(a), count(b)`). So the engine plans with DataFusion's names and the
//! output schema carries PostgreSQL's. Timestamps with a time zone are shown in the
//! session's `TimeZone`, as PostgreSQL shows `timestamptz`.

use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::{SelectItem, Statement};
use futures::StreamExt;

use super::sql::{column_name, first_select};

/// PostgreSQL's output names for a statement's columns, one per output field, where
/// they can be worked out; `None` keeps DataFusion's name.
pub fn postgres_names(statement: &Statement, fields: usize) -> Vec<Option<String>> {
    let none = vec![None; fields];
    let Statement::Query(query) = statement else {
        return none;
    };
    let Some(select) = first_select(query) else {
        return none;
    };
    let wildcards = select
        .projection
        .iter()
        .filter(|i| {
            matches!(
                i,
                SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
            )
        })
        .count();
    let explicit = select.projection.len() - wildcards;
    // One wildcard expands to whatever is left; with more we cannot tell the split.
    let expansion = match wildcards {
        0 if explicit == fields => 0,
        1 if fields >= explicit => fields - explicit,
        _ => return none,
    };
    let mut names = Vec::with_capacity(fields);
    for item in &select.projection {
        match item {
            SelectItem::UnnamedExpr(expr) => {
                names.push(Some(column_name(expr).unwrap_or_else(|| "?column?".into())))
            }
            SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => {
                names.extend(std::iter::repeat_n(None, expansion));
            }
            _ => names.push(None),
        }
    }
    names.resize(fields, None);
    names
}

/// The schema clients see: PostgreSQL names, zoned timestamps in `time_zone`.
pub fn output_schema(schema: &Schema, names: &[Option<String>], time_zone: &str) -> SchemaRef {
    let fields: Vec<Field> = schema
        .fields()
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let name = names
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| f.name().clone());
            let data_type = match f.data_type() {
                DataType::Timestamp(unit, Some(_)) => {
                    DataType::Timestamp(*unit, Some(time_zone.into()))
                }
                other => other.clone(),
            };
            Field::new(name, data_type, f.is_nullable()).with_metadata(f.metadata().clone())
        })
        .collect();
    Arc::new(Schema::new_with_metadata(fields, schema.metadata().clone()))
}

/// Re-labels a stream's batches with the output schema (no data is copied: renaming
/// and re-zoning timestamps change only metadata).
pub fn adapt(stream: SendableRecordBatchStream, output: SchemaRef) -> SendableRecordBatchStream {
    if stream.schema().as_ref() == output.as_ref() {
        return stream;
    }
    let schema = output.clone();
    let adapted = stream.map(move |batch| -> Result<RecordBatch> {
        let batch = batch?;
        let columns: Vec<ArrayRef> = batch
            .columns()
            .iter()
            .zip(schema.fields())
            .map(|(column, field)| {
                if column.data_type() == field.data_type() {
                    Ok(column.clone())
                } else {
                    datafusion::arrow::compute::cast(column, field.data_type())
                }
            })
            .collect::<std::result::Result<_, _>>()?;
        Ok(RecordBatch::try_new(schema.clone(), columns)?)
    });
    Box::pin(RecordBatchStreamAdapter::new(output, adapted))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::sql::sqlparser::dialect::PostgreSqlDialect;
    use datafusion::sql::sqlparser::parser::Parser;

    fn names(sql: &str, fields: usize) -> Vec<Option<String>> {
        let statement = Parser::parse_sql(&PostgreSqlDialect {}, sql)
            .unwrap()
            .remove(0);
        postgres_names(&statement, fields)
    }

    fn s(v: &str) -> Option<String> {
        Some(v.to_string())
    }

    #[test]
    fn names_follow_postgres() {
        assert_eq!(
            names(
                "SELECT count(*), sum(t.wage), 1 + 2, x::date, '1'::int, a AS b, CASE WHEN true THEN 1 END FROM t",
                7
            ),
            vec![
                s("count"),
                s("sum"),
                s("?column?"),
                s("x"),
                s("int4"),
                None,
                s("case")
            ]
        );
        assert_eq!(
            names("SELECT *, count(*) OVER () FROM t", 4),
            vec![None, None, None, s("count")]
        );
        assert_eq!(
            names("SELECT a FROM t UNION SELECT max(b) FROM u", 1),
            vec![s("a")]
        );
        assert_eq!(names("SELECT t.*, u.* FROM t, u", 5), vec![None; 5]);
        assert_eq!(names("SELECT (SELECT max(x) FROM t)", 1), vec![s("max")]);
        assert_eq!(names("EXPLAIN SELECT 1", 2), vec![None, None]);
    }
}
