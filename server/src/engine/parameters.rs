//! The types of `$1…$n`, decided as PostgreSQL decides them.
//!
//! DataFusion infers a parameter's type from what it is compared with or passed to
//! (`wage > $1` is a numeric); PostgreSQL does the same, but a type the client
//! declares in its Parse message wins, and a parameter nothing decides (`SELECT $1`,
//! `length($2)`) is `text`. Planned with DataFusion's inference alone, `SELECT $1`
//! has no type to run with, and a `float8` value compared with a `numeric(14,0)`
//! column would have to be rounded to an integer first. So after planning:
//!
//! - a parameter DataFusion left untyped takes the type of a cast around it
//!   (`$1::bigint`), else the declared type, else `text`;
//! - a parameter declared with a wider kind of number than the one inferred
//!   (`float8` or `numeric` against an integer, `float8` against a numeric) keeps
//!   the declared type, and the comparison happens in it, as in PostgreSQL.
//!
//! Where the declared and inferred types are of one kind (an `int8` value for an
//! `integer` column) the inferred type stays, so that the value reaches a source in
//! its column's type and the source's index serves the lookup.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{Expr, LogicalPlan, expr::Placeholder};
use pgwire::api::Type;

use super::SqlError;

/// The Arrow type of a parameter the client declared with PostgreSQL's `t`; `None`
/// for `unknown` (OID 0) and types with no plain counterpart.
pub fn declared_type(t: &Type) -> Option<DataType> {
    Some(match *t {
        Type::BOOL => DataType::Boolean,
        Type::INT2 => DataType::Int16,
        Type::INT4 => DataType::Int32,
        Type::INT8 => DataType::Int64,
        Type::FLOAT4 => DataType::Float32,
        Type::FLOAT8 => DataType::Float64,
        Type::NUMERIC => DataType::Decimal128(38, 10),
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => DataType::Utf8,
        Type::DATE => DataType::Date32,
        Type::TIMESTAMP => DataType::Timestamp(TimeUnit::Microsecond, None),
        Type::TIMESTAMPTZ => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
        Type::BYTEA => DataType::Binary,
        _ => return None,
    })
}

/// Whether a value declared `declared` would lose what it is if made `inferred`.
fn wider(inferred: &DataType, declared: &DataType) -> bool {
    let float = |t: &DataType| t.is_floating();
    let decimal = |t: &DataType| matches!(t, DataType::Decimal128(..) | DataType::Decimal256(..));
    (inferred.is_integer() && (float(declared) || decimal(declared)))
        || (decimal(inferred) && float(declared))
}

/// `plan` with every parameter typed as described in the module's documentation.
pub(super) fn typed(
    plan: LogicalPlan,
    declared: &[Option<DataType>],
) -> Result<LogicalPlan, SqlError> {
    let inferred = plan.get_parameter_types()?;
    if inferred.is_empty() {
        return Ok(plan);
    }
    let casts: HashMap<String, DataType> = super::planned::placeholder_casts(&plan)
        .into_iter()
        .collect();
    let declared_of = |id: &str| -> Option<DataType> {
        let n: usize = id.strip_prefix('$')?.parse().ok()?;
        declared.get(n.checked_sub(1)?).cloned().flatten()
    };
    let mut targets: HashMap<String, DataType> = HashMap::new();
    for (id, found) in &inferred {
        let target = match found {
            None => Some(
                casts
                    .get(id)
                    .cloned()
                    .or_else(|| declared_of(id))
                    .unwrap_or(DataType::Utf8),
            ),
            Some(t) => declared_of(id).filter(|d| wider(t, d)),
        };
        if let Some(target) = target {
            targets.insert(id.clone(), target);
        }
    }
    if targets.is_empty() {
        return Ok(plan);
    }
    let retyped = plan.transform_up_with_subqueries(|node| {
        let node = node.map_expressions(|e| {
            e.transform(|e| match e {
                Expr::Placeholder(p) if targets.contains_key(&p.id) => {
                    let t = targets[&p.id].clone();
                    Ok(Transformed::yes(Expr::Placeholder(
                        Placeholder::new_with_field(p.id, Some(Arc::new(Field::new("", t, true)))),
                    )))
                }
                other => Ok(Transformed::no(other)),
            })
        })?;
        if node.transformed {
            Ok(Transformed::yes(node.data.recompute_schema()?))
        } else {
            Ok(node)
        }
    })?;
    Ok(retyped.data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn declared_numbers_wider_than_inferred_win() {
        assert!(wider(&DataType::Int32, &DataType::Float64));
        assert!(wider(&DataType::Decimal128(14, 0), &DataType::Float64));
        assert!(wider(&DataType::Int64, &DataType::Decimal128(38, 10)));
        assert!(!wider(&DataType::Int32, &DataType::Int64));
        assert!(!wider(
            &DataType::Decimal128(14, 2),
            &DataType::Decimal128(38, 10)
        ));
        assert!(!wider(&DataType::Utf8, &DataType::Float64));
    }

    #[test]
    fn declared_types_map_to_arrow() {
        assert_eq!(declared_type(&Type::INT2), Some(DataType::Int16));
        assert_eq!(declared_type(&Type::UNKNOWN), None);
        assert_eq!(declared_type(&Type::VARCHAR), Some(DataType::Utf8));
    }
}
