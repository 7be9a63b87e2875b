//! SQL-level prepared statements: `PREPARE name [(type, …)] AS query`,
//! `EXECUTE name [(value, …)]` and `DEALLOCATE [PREPARE] name | ALL`, as PostgreSQL
//! has them. A session's named statements are planned once, as the protocol's are
//! (and share their plan cache: a statement wholly pushed to one source is optimised
//! once); each EXECUTE evaluates its values, casts them to the parameters' types and
//! binds them.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::sync::Mutex;

use datafusion::arrow::array::RecordBatchOptions;
use datafusion::arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DFSchema, ParamValues, ScalarValue};
use datafusion::logical_expr::{Expr as DfExpr, ExprSchemable};
use datafusion::sql::sqlparser::ast::{
    self, CastKind, Expr, Statement, Value, ValueWithSpan, visit_expressions_mut,
};

use super::error::{SqlError, code};
use super::{Planned, Session};

/// A session's named statements: those prepared with SQL, and the names of those its
/// front end prepared through its protocol (the extended protocol's Parse), which
/// share one namespace, as in PostgreSQL: `DEALLOCATE` removes either kind.
#[derive(Debug, Default)]
pub struct NamedStatements {
    sql: Mutex<HashMap<String, Named>>,
    protocol: Mutex<std::collections::HashSet<String>>,
}

/// A named statement: its plan, and how many parameters it has (as PostgreSQL
/// counts them: the declared types, or more if the query uses more).
#[derive(Debug, Clone)]
struct Named {
    planned: Planned,
    parameters: usize,
}

impl NamedStatements {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Named>> {
        self.sql.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn protocol(&self) -> std::sync::MutexGuard<'_, std::collections::HashSet<String>> {
        self.protocol.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn contains(&self, name: &str) -> bool {
        self.lock().contains_key(name) || self.protocol().contains(name)
    }

    /// Forgets every named statement (`DEALLOCATE ALL`, `DISCARD ALL`).
    pub fn clear(&self) {
        self.lock().clear();
        self.protocol().clear();
    }
}

fn exists(name: &str) -> SqlError {
    SqlError::new(
        "42P05",
        format!("prepared statement \"{name}\" already exists"),
    )
}

fn not_found(name: &str) -> SqlError {
    SqlError::new(
        code::INVALID_SQL_STATEMENT_NAME,
        format!("prepared statement \"{name}\" does not exist"),
    )
}

impl Session {
    /// `PREPARE name [(types)] AS statement`: plans the statement, with each
    /// declared type given to its parameter (`$n` becomes `$n::type`).
    pub async fn prepare_named(
        &self,
        name: &str,
        types: &[ast::DataType],
        mut statement: Statement,
    ) -> Result<(), SqlError> {
        if self.named.contains(name) {
            return Err(exists(name));
        }
        if !matches!(statement, Statement::Query(_)) {
            return Err(SqlError::new(
                code::READ_ONLY_SQL_TRANSACTION,
                "only a query can be prepared: Amar serves its sources read-only",
            ));
        }
        if !types.is_empty() {
            let _ = visit_expressions_mut(&mut statement, |expr| {
                if let Expr::Value(ValueWithSpan {
                    value: Value::Placeholder(id),
                    ..
                }) = expr
                    && let Some(ty) = id
                        .strip_prefix('$')
                        .and_then(|n| n.parse::<usize>().ok())
                        .and_then(|n| n.checked_sub(1))
                        .and_then(|i| types.get(i))
                {
                    *expr = Expr::Cast {
                        kind: CastKind::DoubleColon,
                        expr: Box::new(expr.clone()),
                        data_type: ty.clone(),
                        array: false,
                        format: None,
                    };
                }
                ControlFlow::<()>::Continue(())
            });
        }
        let planned = self.plan(&statement).await?;
        // A declared type the query does not use still counts, as in PostgreSQL.
        let parameters = planned.parameter_types()?.len().max(types.len());
        self.named.lock().insert(
            name.to_string(),
            Named {
                planned,
                parameters,
            },
        );
        Ok(())
    }

    /// The columns `EXECUTE name` returns, if the statement exists.
    pub fn named_output(&self, name: &str) -> Option<SchemaRef> {
        self.named
            .lock()
            .get(name)
            .map(|n| n.planned.output.clone())
    }

    /// `EXECUTE name (values)`: the named statement with its values bound.
    pub async fn bind_named(&self, name: &str, values: &[Expr]) -> Result<Planned, SqlError> {
        let Named {
            planned,
            parameters,
        } = self
            .named
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| not_found(name))?;
        if parameters != values.len() {
            return Err(SqlError::new(
                code::SYNTAX_ERROR,
                format!(
                    "wrong number of parameters for prepared statement \"{name}\" (expected {parameters}, got {})",
                    values.len()
                ),
            ));
        }
        let types = planned.parameter_types()?;
        let mut bound = Vec::with_capacity(values.len());
        for (i, value) in values.iter().enumerate() {
            bound.push(self.evaluate(value, types.get(i).and_then(Option::as_ref))?);
        }
        if values.is_empty() {
            return Ok(planned);
        }
        planned.bind(ParamValues::from(bound))
    }

    /// `DEALLOCATE name`, or every named statement with `None`.
    pub fn deallocate(&self, name: Option<&str>) -> Result<(), SqlError> {
        match name {
            None => {
                self.named.clear();
                Ok(())
            }
            Some(name) => {
                if self.named.lock().remove(name).is_some() || self.named.protocol().remove(name) {
                    Ok(())
                } else {
                    Err(not_found(name))
                }
            }
        }
    }

    /// Takes `name` for a statement its front end prepares through its protocol;
    /// refused (42P05) if a statement has it. The unnamed statement has no name.
    pub fn name_protocol_statement(&self, name: &str) -> Result<(), SqlError> {
        if name.is_empty() {
            return Ok(());
        }
        if self.named.contains(name) {
            return Err(exists(name));
        }
        self.named.protocol().insert(name.to_string());
        Ok(())
    }

    /// Whether the protocol statement `name` still exists (`DEALLOCATE` and
    /// `DISCARD ALL` remove them too); the unnamed one always does.
    pub fn has_protocol_statement(&self, name: &str) -> bool {
        name.is_empty() || self.named.protocol().contains(name)
    }

    /// The front end closed its protocol statement `name`.
    pub fn forget_protocol_statement(&self, name: &str) {
        self.named.protocol().remove(name);
    }

    /// One EXECUTE value: a constant expression, cast to its parameter's type.
    fn evaluate(&self, value: &Expr, ty: Option<&DataType>) -> Result<ScalarValue, SqlError> {
        let state = self.ctx.state();
        let empty = DFSchema::empty();
        let expr = state.create_logical_expr(&value.to_string(), &empty)?;
        let expr = match ty {
            Some(ty) if expr.get_type(&empty)? != *ty => DfExpr::Cast(
                datafusion::logical_expr::Cast::new(Box::new(expr), ty.clone()),
            ),
            _ => expr,
        };
        let physical = state.create_physical_expr(expr, &empty)?;
        let row = RecordBatch::try_new_with_options(
            SchemaRef::new(Schema::empty()),
            vec![],
            &RecordBatchOptions::new().with_row_count(Some(1)),
        )
        .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
        let value = physical.evaluate(&row)?.into_array(1)?;
        Ok(ScalarValue::try_from_array(&value, 0)?)
    }
}
