//! DataFusion filter expressions to SQLite SQL, for the predicates SQLite evaluates
//! exactly as DataFusion would.
//!
//! Only forms whose SQLite meaning is the same as DataFusion's are translated:
//! comparisons of a column with a literal or another column, AND/OR/NOT, IS [NOT]
//! NULL, IN lists and BETWEEN. LIKE is not (SQLite's LIKE ignores ASCII case), nor are
//! functions or casts. Dates and timestamps compare as ISO-8601 text, which is how
//! this connector reads them (see `types`). Anything else stays with DataFusion.

use datafusion::logical_expr::{Between, BinaryExpr, Expr, Operator};
use datafusion::scalar::ScalarValue;

/// SQL for `expr`, or `None` when SQLite cannot evaluate it identically.
/// `pushable` says which columns hold values SQLite compares as DataFusion does
/// (a column with no declared type may hold integers that DataFusion reads as text).
pub fn to_sql(expr: &Expr, pushable: &dyn Fn(&str) -> bool) -> Option<String> {
    Translator { pushable }.sql(expr)
}

struct Translator<'a> {
    pushable: &'a dyn Fn(&str) -> bool,
}

impl Translator<'_> {
    fn sql(&self, expr: &Expr) -> Option<String> {
        let to_sql = |e: &Expr| self.sql(e);
        let operand = |e: &Expr| self.operand(e);
        match expr {
            Expr::Column(c) if (self.pushable)(&c.name) => Some(quote_ident(&c.name)),
            Expr::Literal(value, _) => literal(value),
            Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
                let op = match op {
                    Operator::Eq => "=",
                    Operator::NotEq => "<>",
                    Operator::Lt => "<",
                    Operator::LtEq => "<=",
                    Operator::Gt => ">",
                    Operator::GtEq => ">=",
                    Operator::And => "AND",
                    Operator::Or => "OR",
                    _ => return None,
                };
                if matches!(op, "AND" | "OR") {
                    Some(format!("({} {op} {})", to_sql(left)?, to_sql(right)?))
                } else {
                    // A comparison must involve a column; two literals are folded by
                    // DataFusion already.
                    Some(format!("({} {op} {})", operand(left)?, operand(right)?))
                }
            }
            Expr::Not(inner) => Some(format!("(NOT {})", to_sql(inner)?)),
            Expr::IsNull(inner) => Some(format!("({} IS NULL)", operand(inner)?)),
            Expr::IsNotNull(inner) => Some(format!("({} IS NOT NULL)", operand(inner)?)),
            Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            }) => Some(format!(
                "({} {}BETWEEN {} AND {})",
                operand(expr)?,
                if *negated { "NOT " } else { "" },
                operand(low)?,
                operand(high)?
            )),
            Expr::InList(list) => {
                if list.list.is_empty() {
                    return None;
                }
                let items = list
                    .list
                    .iter()
                    .map(|e| self.operand(e))
                    .collect::<Option<Vec<_>>>()?;
                Some(format!(
                    "({} {}IN ({}))",
                    operand(&list.expr)?,
                    if list.negated { "NOT " } else { "" },
                    items.join(", ")
                ))
            }
            _ => None,
        }
    }

    /// A column or a literal; nothing computed.
    fn operand(&self, expr: &Expr) -> Option<String> {
        match expr {
            Expr::Column(_) | Expr::Literal(_, _) => self.sql(expr),
            _ => None,
        }
    }
}

fn literal(value: &ScalarValue) -> Option<String> {
    if value.is_null() {
        return Some("NULL".to_string());
    }
    Some(match value {
        ScalarValue::Boolean(Some(b)) => (if *b { "1" } else { "0" }).to_string(),
        ScalarValue::Int8(Some(v)) => v.to_string(),
        ScalarValue::Int16(Some(v)) => v.to_string(),
        ScalarValue::Int32(Some(v)) => v.to_string(),
        ScalarValue::Int64(Some(v)) => v.to_string(),
        ScalarValue::UInt8(Some(v)) => v.to_string(),
        ScalarValue::UInt16(Some(v)) => v.to_string(),
        ScalarValue::UInt32(Some(v)) => v.to_string(),
        ScalarValue::Float64(Some(v)) if v.is_finite() => format!("{v:?}"),
        ScalarValue::Float32(Some(v)) if v.is_finite() => format!("{v:?}"),
        ScalarValue::Decimal128(Some(_), _, _) => value.to_string(),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => quote_string(s),
        ScalarValue::Date32(Some(days)) => {
            let date = chrono::DateTime::from_timestamp(*days as i64 * 86_400, 0)?.date_naive();
            quote_string(&date.format("%Y-%m-%d").to_string())
        }
        ScalarValue::TimestampMicrosecond(Some(us), None) => {
            let ts = chrono::DateTime::from_timestamp_micros(*us)?.naive_utc();
            quote_string(&ts.format("%Y-%m-%d %H:%M:%S%.6f").to_string())
        }
        _ => return None,
    })
}

/// A SQLite identifier, quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn quote_string(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::prelude::{col, lit};

    fn to_sql(e: &Expr) -> Option<String> {
        super::to_sql(e, &|name| name != "untyped")
    }

    #[test]
    fn translates_what_sqlite_evaluates_identically() {
        let e = col("province_code")
            .eq(lit(23i64))
            .and(col("wage").gt(lit(1000i64)));
        assert_eq!(
            to_sql(&e).unwrap(),
            "((\"province_code\" = 23) AND (\"wage\" > 1000))"
        );
        assert_eq!(
            to_sql(&col("name").eq(lit("O'Brien"))).unwrap(),
            "(\"name\" = 'O''Brien')"
        );
        assert_eq!(
            to_sql(&col("a").in_list(vec![lit(1i64), lit(2i64)], true)).unwrap(),
            "(\"a\" NOT IN (1, 2))"
        );
        assert_eq!(
            to_sql(&col("d").eq(lit(ScalarValue::Date32(Some(19723))))).unwrap(),
            "(\"d\" = '2024-01-01')"
        );
    }

    #[test]
    fn leaves_the_rest_to_datafusion() {
        assert!(to_sql(&col("name").like(lit("a%"))).is_none());
        assert!(to_sql(&(col("a") + lit(1i64)).eq(lit(2i64))).is_none());
        assert!(to_sql(&col("a").eq(lit(1i64)).and(col("n").like(lit("x")))).is_none());
        assert!(to_sql(&col("untyped").eq(lit("5"))).is_none());
    }
}
