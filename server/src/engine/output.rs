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
use datafusion::logical_expr::{Expr, LogicalPlan};
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

/// Which output columns PostgreSQL would type `integer` where DataFusion computes a
/// `bigint`: integer literals that fit (`SELECT 1`), and arithmetic, CASE and
/// COALESCE over them and `integer` columns (`code + 1`). Typed clients (Npgsql,
/// pgjdbc's `getObject`, node-postgres, Power BI) read a different type otherwise.
/// DataFusion still computes in 64 bits; the value is narrowed as it is sent, and
/// one that does not fit is PostgreSQL's error, `integer out of range`.
pub fn int4_columns(plan: &LogicalPlan) -> Vec<bool> {
    let flags = int4_flags(plan);
    plan.schema()
        .fields()
        .iter()
        .zip(flags)
        .map(|(f, int4)| int4 && f.data_type() == &DataType::Int64)
        .collect()
}

/// Per output column of `plan`: whether PostgreSQL would type it `integer`.
fn int4_flags(plan: &LogicalPlan) -> Vec<bool> {
    use datafusion::logical_expr::JoinType;
    let natural = || {
        plan.schema()
            .fields()
            .iter()
            .map(|f| f.data_type() == &DataType::Int32)
            .collect::<Vec<_>>()
    };
    match plan {
        LogicalPlan::Projection(p) => {
            let input = int4_flags(&p.input);
            p.expr
                .iter()
                .map(|e| int4_expr(e, &p.input, &input))
                .collect()
        }
        LogicalPlan::Filter(_)
        | LogicalPlan::Sort(_)
        | LogicalPlan::Limit(_)
        | LogicalPlan::SubqueryAlias(_)
        | LogicalPlan::Repartition(_)
        | LogicalPlan::Distinct(datafusion::logical_expr::Distinct::All(_)) => {
            let inputs = plan.inputs();
            let flags = int4_flags(inputs[0]);
            if flags.len() == plan.schema().fields().len() {
                flags
            } else {
                natural()
            }
        }
        LogicalPlan::Union(u) => {
            let mut flags = vec![true; plan.schema().fields().len()];
            for input in &u.inputs {
                let f = int4_flags(input);
                for (a, b) in flags
                    .iter_mut()
                    .zip(f.iter().chain(std::iter::repeat(&false)))
                {
                    *a = *a && *b;
                }
            }
            flags
        }
        LogicalPlan::Join(j) => {
            let (left, right) = (int4_flags(&j.left), int4_flags(&j.right));
            let flags = match j.join_type {
                JoinType::Inner | JoinType::Left | JoinType::Right | JoinType::Full => {
                    left.into_iter().chain(right).collect()
                }
                JoinType::LeftSemi | JoinType::LeftAnti | JoinType::LeftMark => left,
                JoinType::RightSemi | JoinType::RightAnti | JoinType::RightMark => right,
            };
            let mut flags = flags;
            flags.resize(plan.schema().fields().len(), false);
            flags
        }
        LogicalPlan::Aggregate(agg) => {
            let input = int4_flags(&agg.input);
            let mut flags: Vec<bool> = agg
                .group_expr
                .iter()
                .map(|e| int4_expr(e, &agg.input, &input))
                .collect();
            flags.extend(agg.aggr_expr.iter().map(|e| {
                let e = match e {
                    Expr::Alias(alias) => alias.expr.as_ref(),
                    e => e,
                };
                match e {
                    Expr::AggregateFunction(f)
                        if matches!(
                            f.func.name(),
                            "min" | "max" | "first_value" | "last_value" | "any_value"
                        ) =>
                    {
                        f.params
                            .args
                            .iter()
                            .all(|x| int4_expr(x, &agg.input, &input))
                    }
                    _ => false,
                }
            }));
            flags.resize(plan.schema().fields().len(), false);
            flags
        }
        LogicalPlan::Values(v) => {
            let width = plan.schema().fields().len();
            let empty = LogicalPlan::EmptyRelation(datafusion::logical_expr::EmptyRelation {
                produce_one_row: true,
                schema: Arc::new(datafusion::common::DFSchema::empty()),
            });
            (0..width)
                .map(|i| {
                    v.values
                        .iter()
                        .all(|row| row.get(i).is_some_and(|e| int4_expr(e, &empty, &[])))
                })
                .collect()
        }
        _ => natural(),
    }
}

/// Whether PostgreSQL would type `expr`, over `input` whose columns' flags are
/// `flags`, `integer`.
fn int4_expr(expr: &Expr, input: &LogicalPlan, flags: &[bool]) -> bool {
    use datafusion::logical_expr::{BinaryExpr, Operator};
    use datafusion::scalar::ScalarValue;
    let all = |args: &[Expr]| !args.is_empty() && args.iter().all(|a| int4_expr(a, input, flags));
    match expr {
        Expr::Alias(a) => int4_expr(&a.expr, input, flags),
        Expr::Column(c) => input.schema().index_of_column(c).ok().is_some_and(|i| {
            // smallint with integer is integer in PostgreSQL, too.
            flags.get(i).copied().unwrap_or(false)
                || matches!(
                    input.schema().field(i).data_type(),
                    DataType::Int32 | DataType::Int16 | DataType::Int8
                )
        }),
        Expr::Literal(ScalarValue::Int64(Some(v)), _) => i32::try_from(*v).is_ok(),
        Expr::Literal(ScalarValue::Int32(Some(_)), _) => true,
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            matches!(
                op,
                Operator::Plus
                    | Operator::Minus
                    | Operator::Multiply
                    | Operator::Divide
                    | Operator::Modulo
            ) && int4_expr(left, input, flags)
                && int4_expr(right, input, flags)
        }
        Expr::Negative(e) => int4_expr(e, input, flags),
        Expr::Case(case) => {
            case.when_then_expr
                .iter()
                .all(|(_, then)| int4_expr(then, input, flags))
                && case
                    .else_expr
                    .as_ref()
                    .is_none_or(|e| int4_expr(e, input, flags))
        }
        Expr::ScalarFunction(f) => match f.func.name() {
            "abs" | "coalesce" | "greatest" | "least" => all(&f.args),
            "nullif" => f.args.first().is_some_and(|a| int4_expr(a, input, flags)),
            _ => false,
        },
        Expr::Cast(c) => c.field.data_type() == &DataType::Int32,
        _ => false,
    }
}

/// The schema clients see: PostgreSQL names, zoned timestamps in `time_zone`,
/// `integer` where [`int4_columns`] says so.
pub fn output_schema(
    schema: &Schema,
    names: &[Option<String>],
    time_zone: &str,
    int4: &[bool],
) -> SchemaRef {
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
                DataType::Int64 if int4.get(i).copied().unwrap_or(false) => DataType::Int32,
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
                } else if column.data_type() == &DataType::Int64
                    && field.data_type() == &DataType::Int32
                {
                    // An `integer` computed in 64 bits: narrowed, or PostgreSQL's error.
                    let options = datafusion::arrow::compute::CastOptions {
                        safe: false,
                        ..Default::default()
                    };
                    datafusion::arrow::compute::cast_with_options(
                        column,
                        field.data_type(),
                        &options,
                    )
                    .map_err(|_| {
                        datafusion::arrow::error::ArrowError::ExternalError(Box::new(
                            amar_catalog::CatalogError::Value {
                                code: "22003",
                                message: "integer out of range".into(),
                            },
                        ))
                    })
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
