//! Enforcement on the logical plan, before optimisation.
//!
//! Every table scan anywhere in a plan — in subqueries, CTEs, both sides of a join
//! or a UNION, under EXPLAIN — is checked and rewritten: a table the user may not
//! read fails the statement with 42501 naming it; otherwise the scan gets the user's
//! row filter (their predicates OR-ed) and masked columns replaced by their masks,
//! directly above it. Because this happens before optimisation, the optimizer and
//! federation push the row filter down to the source like any other predicate, and
//! no later operator ever sees an unfiltered row or an unmasked value.
//!
//! A row-filtered table is put under a [`Barrier`], so that the user's own
//! expressions are never evaluated on a row the filter rejects (an error raised
//! there would tell of the row); see [`crate::barrier`].
//!
//! Hidden columns are removed earlier, from the table's schema in the session's
//! catalog, so that naming one is "column does not exist"; a scan that still shows
//! one (a catalog built without the user's view) is refused rather than trusted.

use std::sync::Arc;

use datafusion::common::tree_node::Transformed;
use datafusion::common::{Column, DFSchema, TableReference};
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, TableScan, cast, lit};
use datafusion::prelude::col;
use datafusion::scalar::ScalarValue;

use crate::access::{ColumnRule, Mask, UserAccess};
use crate::barrier::Barrier;
use crate::error::PolicyError;
use crate::mask::MaskKey;

/// Turns SQL text into an expression over a schema (the session's planner).
pub type ParseExpr<'a> = dyn Fn(&str, &DFSchema) -> Result<Expr> + 'a;

/// Schemas whose tables everyone may read; what they show is filtered per user where
/// they are computed.
pub const OPEN_SCHEMAS: &[&str] = &["pg_catalog", "information_schema"];

/// What enforcement did to one statement, for the audit log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Every table read, as `schema.table`, in plan order, once each.
    pub objects: Vec<String>,
    /// Tables whose rows were filtered.
    pub filtered: Vec<String>,
    /// Columns shown masked, as `schema.table.column`.
    pub masked: Vec<String>,
}

impl Report {
    fn read(&mut self, object: &str) {
        if !self.objects.iter().any(|o| o == object) {
            self.objects.push(object.to_string());
        }
    }

    /// `allowed`, or `allowed: row filter on …; masked …`.
    pub fn decision(&self) -> String {
        let mut parts = vec![];
        if !self.filtered.is_empty() {
            parts.push(format!("row filter on {}", self.filtered.join(", ")));
        }
        if !self.masked.is_empty() {
            parts.push(format!("masked {}", self.masked.join(", ")));
        }
        if parts.is_empty() {
            "allowed".to_string()
        } else {
            format!("allowed: {}", parts.join("; "))
        }
    }
}

/// The definition of a view that runs with its definer's rights (an indicator), if
/// the scan reads one.
/// An error here fails the statement: a view that cannot be inlined must not run
/// with its definer's rights unchecked.
pub type Definer<'a> = dyn Fn(&TableScan) -> Result<Option<LogicalPlan>> + 'a;

/// What a definer view's definition, inlined for this user (their row filters on the
/// tables under it), is read as: itself, or an equivalent plan (its rows kept from an
/// earlier read of the same plan over the same data). Called for the views a
/// statement names, not for those under them.
pub type Keep<'a> = dyn Fn(&TableScan, LogicalPlan) -> Result<LogicalPlan> + 'a;

/// How deep definer views may be built on one another.
const MAX_DEFINER_DEPTH: usize = 16;

/// What enforcement needs besides the plan and the user.
pub struct Planner<'a> {
    /// The reading session's schema for unqualified names (its `search_path`).
    pub default_schema: &'a str,
    /// The schema unqualified names in a definer view's definition were resolved in
    /// (the definer's, whatever the reader's `search_path`).
    pub definer_schema: &'a str,
    pub parse: &'a ParseExpr<'a>,
    pub definer: &'a Definer<'a>,
    pub keep: &'a Keep<'a>,
    /// The server's key for `hash` masks.
    pub mask_key: &'a MaskKey,
}

/// Rewrites every table scan of `plan` for `access`'s user, and reports what it read
/// and what was filtered or masked.
///
/// A definer view (an indicator) needs a grant on itself only: its definition is
/// inlined in place of its scan, and the tables under it get the user's row filters
/// (not their grants, masks or denied columns, which are the definer's business).
pub fn enforce(
    plan: LogicalPlan,
    access: &UserAccess,
    planner: &Planner<'_>,
) -> Result<(LogicalPlan, Report)> {
    let mut report = Report::default();
    let admin = access.is_admin();
    let plan = plan
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) if admin => {
                let (schema, table) = schema_and_table(&scan.table_name, planner.default_schema);
                report.read(&format!("{schema}.{table}"));
                match (planner.definer)(&scan)? {
                    Some(definition) => {
                        let definition = (planner.keep)(&scan, definition)?;
                        Ok(Transformed::yes(inline(&scan, definition)?))
                    }
                    None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                }
            }
            LogicalPlan::TableScan(scan) => rewrite_scan(scan, access, planner, &mut report),
            other => Ok(Transformed::no(other)),
        })?
        .data;
    Ok((plan, report))
}

/// A view's definition in place of its scan, under the scan's name, with what the
/// scan carried (projection, filters, fetch).
fn inline(scan: &TableScan, definition: LogicalPlan) -> Result<LogicalPlan> {
    let mut builder = LogicalPlanBuilder::from(definition.clone());
    if let Some(projection) = &scan.projection {
        let columns = projection
            .iter()
            .map(|i| Expr::Column(Column::from(definition.schema().qualified_field(*i))))
            .collect::<Vec<_>>();
        builder = builder.project(columns)?;
    }
    builder = builder.alias(scan.table_name.clone())?;
    if let Some(predicate) = datafusion::logical_expr::utils::conjunction(scan.filters.clone()) {
        builder = builder.filter(predicate)?;
    }
    if let Some(fetch) = scan.fetch {
        builder = builder.limit(0, Some(fetch))?;
    }
    builder.build()
}

/// A definer view's definition with the user's row filters on every table under it
/// (and under the definer views it uses).
fn under_definer(
    definition: LogicalPlan,
    access: &UserAccess,
    planner: &Planner<'_>,
    report: &mut Report,
    depth: usize,
) -> Result<LogicalPlan> {
    if depth > MAX_DEFINER_DEPTH {
        return Err(DataFusionError::Plan(format!(
            "views are built on one another more than {MAX_DEFINER_DEPTH} deep"
        )));
    }
    Ok(definition
        .transform_up_with_subqueries(|node| match node {
            LogicalPlan::TableScan(scan) => {
                if let Some(inner) = (planner.definer)(&scan)? {
                    let inner = under_definer(inner, access, planner, report, depth + 1)?;
                    return Ok(Transformed::yes(inline(&scan, inner)?));
                }
                let (schema, table) = schema_and_table(&scan.table_name, planner.definer_schema);
                let filters = access.row_filters(&schema, &table);
                let qualifier = scan.table_name.clone();
                let scan_schema = scan.projected_schema.clone();
                match row_filter(
                    &filters,
                    &qualifier,
                    &scan_schema,
                    access,
                    planner,
                    &schema,
                    &table,
                )? {
                    Some(predicate) => {
                        let object = format!("{schema}.{table}");
                        if !report.filtered.contains(&object) {
                            report.filtered.push(object);
                        }
                        Ok(Transformed::yes(Barrier::wrap(
                            LogicalPlanBuilder::from(LogicalPlan::TableScan(scan))
                                .filter(predicate)?
                                .build()?,
                        )))
                    }
                    None => Ok(Transformed::no(LogicalPlan::TableScan(scan))),
                }
            }
            other => Ok(Transformed::no(other)),
        })?
        .data)
}

/// The user's row filters of one table as one predicate (OR-ed), parsed over the
/// scan's schema.
fn row_filter(
    filters: &[String],
    qualifier: &TableReference,
    scan_schema: &DFSchema,
    access: &UserAccess,
    planner: &Planner<'_>,
    schema: &str,
    table: &str,
) -> Result<Option<Expr>> {
    let mut predicate: Option<Expr> = None;
    for text in filters {
        let expr = access
            .expr(expr_key(qualifier, scan_schema, text), || {
                (planner.parse)(text, scan_schema)
            })
            .map_err(|e| {
                DataFusionError::External(Box::new(PolicyError::InvalidFilter {
                    table: format!("{schema}.{table}"),
                    message: e.to_string(),
                }))
            })?;
        predicate = Some(match predicate {
            Some(p) => p.or(expr),
            None => expr,
        });
    }
    Ok(predicate)
}

fn schema_and_table(name: &TableReference, default_schema: &str) -> (String, String) {
    match name {
        TableReference::Bare { table } => (default_schema.to_string(), table.to_string()),
        TableReference::Partial { schema, table } => (schema.to_string(), table.to_string()),
        TableReference::Full { schema, table, .. } => (schema.to_string(), table.to_string()),
    }
}

fn denied(object: String) -> DataFusionError {
    DataFusionError::External(Box::new(PolicyError::PermissionDenied(object)))
}

fn rewrite_scan(
    scan: TableScan,
    access: &UserAccess,
    planner: &Planner<'_>,
    report: &mut Report,
) -> Result<Transformed<LogicalPlan>> {
    if reads_nothing_stored(&scan) {
        return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
    }
    let (schema, table) = schema_and_table(&scan.table_name, planner.default_schema);
    report.read(&format!("{schema}.{table}"));
    if OPEN_SCHEMAS.contains(&schema.as_str()) {
        return Ok(Transformed::no(LogicalPlan::TableScan(scan)));
    }
    let decision = access.table(&schema, &table);
    if !decision.readable {
        return Err(denied(format!("table {schema}.{table}")));
    }
    let definition = (planner.definer)(&scan)?;
    if decision.columns.is_empty() && decision.row_filters.is_empty() {
        return Ok(match definition {
            Some(d) => {
                let d = under_definer(d, access, planner, report, 1)?;
                let d = (planner.keep)(&scan, d)?;
                Transformed::yes(inline(&scan, d)?)
            }
            None => Transformed::no(LogicalPlan::TableScan(scan)),
        });
    }
    let qualifier = scan.table_name.clone();
    let scan_schema = scan.projected_schema.clone();
    for hidden in decision.hidden_columns() {
        if scan_schema.has_column_with_unqualified_name(hidden) {
            return Err(denied(format!("column {hidden} of table {schema}.{table}")));
        }
    }
    let base = match definition {
        Some(d) => {
            let d = under_definer(d, access, planner, report, 1)?;
            let d = (planner.keep)(&scan, d)?;
            inline(&scan, d)?
        }
        None => LogicalPlan::TableScan(scan),
    };
    let mut builder = LogicalPlanBuilder::from(base);
    let mut filtered = false;
    if !decision.row_filters.is_empty() {
        let predicate = row_filter(
            &decision.row_filters,
            &qualifier,
            &scan_schema,
            access,
            planner,
            &schema,
            &table,
        )?;
        if let Some(p) = predicate {
            builder = builder.filter(p)?;
            filtered = true;
            let object = format!("{schema}.{table}");
            if !report.filtered.contains(&object) {
                report.filtered.push(object);
            }
        }
    }
    let masked = decision.columns.iter().any(|(c, r)| {
        matches!(r, ColumnRule::Mask(_)) && scan_schema.has_column_with_unqualified_name(c)
    });
    if masked {
        let mut exprs = Vec::with_capacity(scan_schema.fields().len());
        for field in scan_schema.fields() {
            let column = Expr::Column(Column::new(Some(qualifier.clone()), field.name()));
            let expr = match decision.columns.get(field.name()) {
                Some(ColumnRule::Mask(mask)) => {
                    let masked = match mask {
                        Mask::Hash => planner
                            .mask_key
                            .mask(cast(column, datafusion::arrow::datatypes::DataType::Utf8)),
                        Mask::Null => lit(ScalarValue::try_from(field.data_type())?),
                        Mask::Expression(sql) => access
                            .expr(expr_key(&qualifier, &scan_schema, sql), || {
                                (planner.parse)(sql, &scan_schema)
                            })?,
                    };
                    let name = format!("{schema}.{table}.{}", field.name());
                    if !report.masked.contains(&name) {
                        report.masked.push(name);
                    }
                    masked.alias_qualified(Some(qualifier.clone()), field.name())
                }
                _ => col(Column::new(Some(qualifier.clone()), field.name())),
            };
            exprs.push(expr);
        }
        builder = builder.project(exprs)?;
    }
    let plan = builder.build()?;
    // The user's expressions stay above what the filter passed (see `barrier`).
    Ok(Transformed::yes(if filtered {
        Barrier::wrap(plan)
    } else {
        plan
    }))
}

/// Scans that read no stored data, which anyone may run: DataFusion's number
/// series (`generate_series`, `range` as tables) and the work table through which a
/// recursive CTE reads its own earlier rows (whatever it reads besides is checked
/// where it is scanned).
fn reads_nothing_stored(scan: &TableScan) -> bool {
    use datafusion::datasource::cte_worktable::CteWorkTable;
    use datafusion::functions_table::generate_series::GenerateSeriesTable;
    let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source) else {
        return false;
    };
    provider.downcast_ref::<CteWorkTable>().is_some()
        || (provider.downcast_ref::<GenerateSeriesTable>().is_some()
            && matches!(&scan.table_name, TableReference::Bare { table }
                if matches!(table.as_ref(), "generate_series()" | "range()")))
}

/// What a parsed expression depends on: the table as the statement names it, the
/// scan's columns and types, and the SQL text.
fn expr_key(qualifier: &TableReference, schema: &DFSchema, text: &str) -> String {
    let mut key = format!("{qualifier}\u{0}{text}");
    for field in schema.fields() {
        key.push('\u{0}');
        key.push_str(field.name());
        key.push(':');
        key.push_str(&field.data_type().to_string());
    }
    key
}

/// The columns of `schema.table` this user may not see.
pub fn hidden_columns(access: &UserAccess, schema: &str, table: &str) -> Vec<String> {
    if access.is_admin() {
        return vec![];
    }
    access
        .table(schema, table)
        .hidden_columns()
        .map(str::to_string)
        .collect()
}

/// Whether the user may read `schema.table` at all.
pub fn readable(access: &UserAccess, schema: &str, table: &str) -> bool {
    access.is_admin() || OPEN_SCHEMAS.contains(&schema) || access.table(schema, table).readable
}

/// A shared handle for the pieces of the engine that need the user's view.
pub type SharedAccess = Arc<UserAccess>;
