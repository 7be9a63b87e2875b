//! The security barrier: a user's expressions never see a row their row filter rejects.
//!
//! A row filter is a `Filter` directly above a table scan. Left alone, the optimizer
//! merges the user's own `WHERE` into it, pushes both into the scan or the source's
//! SQL, and evaluates them in any order: DataFusion evaluates the right side of an
//! AND on the whole batch, PostgreSQL orders its quals by cost. A user predicate that
//! can fail on a value (`CAST(name AS int)`, a division, a regex) then fails on
//! another province's row, and the error message, or just whether there was one,
//! tells the user about that row. PostgreSQL prevents this with security-barrier
//! views and "leakproof" functions; so does Amar:
//!
//! - [`Barrier`] is a logical node that enforcement puts above every row-filtered
//!   table (and its masks). No optimizer rule moves an expression below it (the
//!   engine leaves out DataFusion's rules that push struct-field extraction into any
//!   node), and its
//!   physical form, [`BarrierExec`], accepts no pushed filter, dynamic filter,
//!   projection or sort, so nothing above it is evaluated on the rows it has not
//!   passed.
//! - [`BarrierRule`] runs before federation. When every expression of the statement
//!   is [`leakproof`] (it cannot fail, whatever the row: comparisons, AND/OR, IN,
//!   IS NULL, LIKE with a literal pattern, casts that cannot fail, a few total
//!   functions; aggregates over such arguments), the order of evaluation cannot matter, so it removes
//!   the barriers and the whole statement is optimised and pushed to its source as
//!   before. Otherwise it keeps them, moves the leakproof conjuncts of a filter just
//!   above a barrier below it (so they still reach the source with the row filter),
//!   and has the part under each barrier federated on its own, so the rest runs in
//!   Amar on rows the filter has passed.
//!
//! Expressions below a barrier are the policy's own (row filters, masks) and are
//! trusted; everything above it is the user's.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchema, DFSchemaRef, Result};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::expr::ScalarFunction;
use datafusion::logical_expr::utils::{conjunction, split_conjunction_owned};
use datafusion::logical_expr::{
    BinaryExpr, Cast, Expr, ExprSchemable, Extension, Filter, LogicalPlan, Operator,
    UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PhysicalExpr, PlanProperties,
};
use datafusion::physical_planner::{ExtensionPlanner, PhysicalPlanner};

/// The part of a plan under a row filter, which nothing above may look beneath.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Barrier {
    input: Arc<LogicalPlan>,
    /// The part below was handed to its source's federation on its own.
    isolated: bool,
}

impl PartialOrd for Barrier {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.input.partial_cmp(&other.input)
    }
}

impl Barrier {
    /// `plan` under a barrier.
    pub fn wrap(plan: LogicalPlan) -> LogicalPlan {
        LogicalPlan::Extension(Extension {
            node: Arc::new(Barrier {
                input: Arc::new(plan),
                isolated: false,
            }),
        })
    }

    fn of(plan: &LogicalPlan) -> Option<&Barrier> {
        match plan {
            LogicalPlan::Extension(e) => e.node.as_any().downcast_ref::<Barrier>(),
            _ => None,
        }
    }
}

impl UserDefinedLogicalNodeCore for Barrier {
    fn name(&self) -> &str {
        "SecurityBarrier"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SecurityBarrier")
    }

    fn with_exprs_and_inputs(&self, _exprs: Vec<Expr>, inputs: Vec<LogicalPlan>) -> Result<Self> {
        let input = inputs.into_iter().next().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("a barrier has one input".into())
        })?;
        Ok(Barrier {
            input: Arc::new(input),
            isolated: self.isolated,
        })
    }

    fn necessary_children_exprs(&self, output_columns: &[usize]) -> Option<Vec<Vec<usize>>> {
        // The schema passes through unchanged: column i above is column i below.
        Some(vec![output_columns.to_vec()])
    }

    fn supports_limit_pushdown(&self) -> bool {
        // A limit evaluates nothing; below the barrier it still counts passed rows.
        true
    }

    // `prevent_predicate_push_down_columns` keeps its default, every column: no
    // predicate that names a column is pushed below.
}

/// Hands a plan to the sources' federation (the server's), so that the part under a
/// barrier that stays is still pushed to its source as one statement.
pub type Isolate = dyn Fn(LogicalPlan, &dyn OptimizerConfig) -> Result<LogicalPlan> + Send + Sync;

/// Removes barriers where nothing can leak, and places the rest (see the module doc).
pub struct BarrierRule {
    isolate: Arc<Isolate>,
}

impl fmt::Debug for BarrierRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BarrierRule")
    }
}

impl BarrierRule {
    pub fn new(isolate: Arc<Isolate>) -> Self {
        BarrierRule { isolate }
    }
}

impl OptimizerRule for BarrierRule {
    fn name(&self) -> &str {
        "amar_security_barrier"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let (mut barriers, mut isolated, mut exposed) = (0, 0, false);
        plan.apply_with_subqueries(|node| {
            if let Some(barrier) = Barrier::of(node) {
                barriers += 1;
                isolated += usize::from(barrier.isolated);
                // What is under a barrier is the policy's, not the user's.
                return Ok(TreeNodeRecursion::Jump);
            }
            if !node_is_leakproof(node) {
                exposed = true;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        if barriers == 0 || (barriers == isolated && !exposed) {
            return Ok(Transformed::no(plan));
        }
        if !exposed && isolated == 0 {
            // Nothing the user wrote can fail on a row: the barriers are not needed.
            return plan.transform_up_with_subqueries(|node| match Barrier::of(&node) {
                Some(b) => Ok(Transformed::yes(b.input.as_ref().clone())),
                None => Ok(Transformed::no(node)),
            });
        }
        // Top down, so that a filter is seen before the barrier under it: what sinks
        // into a barrier must be there before its part is federated.
        plan.transform_down_with_subqueries(|node| {
            if let LogicalPlan::Filter(filter) = &node
                && let Some(barrier) = Barrier::of(&filter.input)
            {
                return self.sink_leakproof(filter.clone(), barrier, config);
            }
            match Barrier::of(&node) {
                Some(b) if !b.isolated => Ok(Transformed::yes(self.isolated(b, None, config)?)),
                _ => Ok(Transformed::no(node)),
            }
        })
    }
}

impl BarrierRule {
    /// A filter just above a barrier: its leakproof conjuncts go below the barrier
    /// (so they reach the source with the row filter), the others stay above.
    fn sink_leakproof(
        &self,
        filter: Filter,
        barrier: &Barrier,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let schema = filter.input.schema().clone();
        let (below, above): (Vec<Expr>, Vec<Expr>) = split_conjunction_owned(filter.predicate)
            .into_iter()
            .partition(|e| expr_is_leakproof(e, &schema) && !has_outer_reference(e));
        if below.is_empty() && barrier.isolated {
            let kept = conjunction(above).unwrap_or_else(|| datafusion::prelude::lit(true));
            return Ok(Transformed::no(LogicalPlan::Filter(Filter::try_new(
                kept,
                filter.input,
            )?)));
        }
        let barrier = self.isolated(barrier, conjunction(below), config)?;
        Ok(Transformed::yes(match conjunction(above) {
            Some(kept) => LogicalPlan::Filter(Filter::try_new(kept, Arc::new(barrier))?),
            None => barrier,
        }))
    }

    /// The barrier with `sunk` (if any) below it, its input federated on its own.
    fn isolated(
        &self,
        barrier: &Barrier,
        sunk: Option<Expr>,
        config: &dyn OptimizerConfig,
    ) -> Result<LogicalPlan> {
        let mut input = barrier.input.as_ref().clone();
        if let Some(predicate) = sunk {
            input = LogicalPlan::Filter(Filter::try_new(predicate, Arc::new(input))?);
        }
        let input = if barrier.isolated {
            input
        } else {
            (self.isolate)(input, config)?
        };
        Ok(LogicalPlan::Extension(Extension {
            node: Arc::new(Barrier {
                input: Arc::new(input),
                isolated: true,
            }),
        }))
    }
}

fn has_outer_reference(expr: &Expr) -> bool {
    expr.exists(|e| Ok(matches!(e, Expr::OuterReferenceColumn(..))))
        .unwrap_or(true)
}

/// Whether every expression of one plan node is leakproof, typed by its inputs.
fn node_is_leakproof(node: &LogicalPlan) -> bool {
    let expressions = node.expressions();
    if expressions.is_empty() {
        return true;
    }
    let inputs = node.inputs();
    let schema = match inputs.as_slice() {
        [] => node.schema().as_ref().clone(),
        [one] => one.schema().as_ref().clone(),
        // A join's expressions name both sides.
        [left, right] => match left.schema().join(right.schema()) {
            Ok(joined) => joined,
            Err(_) => return false,
        },
        _ => return false,
    };
    expressions.iter().all(|e| expr_is_leakproof(e, &schema))
}

/// Whether `expr` can be evaluated on any row without failing: if it can fail,
/// whether it failed says something about the row.
pub fn leakproof(expr: &Expr, schema: &DFSchema) -> bool {
    expr_is_leakproof(expr, schema)
}

fn expr_is_leakproof(expr: &Expr, schema: &DFSchema) -> bool {
    let mut ok = true;
    let _ = expr.apply(|e| {
        if !node_leakproof(e, schema) {
            ok = false;
            return Ok(TreeNodeRecursion::Stop);
        }
        Ok(TreeNodeRecursion::Continue)
    });
    ok
}

/// Scalar functions that are total on every value of their argument types.
const TOTAL_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "character_length",
    "char_length",
    "length",
    "octet_length",
    "coalesce",
    "nullif",
    "starts_with",
    "ends_with",
];
// Not `date_trunc` or `date_part`: DataFusion fails on timestamps outside the
// nanosecond range ("Timestamp … out of range", echoing the value) and PostgreSQL
// on a unit it does not know, each time it evaluates them.

/// One expression node, not its children (which `expr_is_leakproof` visits).
fn node_leakproof(expr: &Expr, schema: &DFSchema) -> bool {
    match expr {
        Expr::Alias(_)
        | Expr::Column(_)
        | Expr::Literal(..)
        | Expr::ScalarVariable(..)
        | Expr::Placeholder(_)
        | Expr::Not(_)
        | Expr::IsNull(_)
        | Expr::IsNotNull(_)
        | Expr::IsTrue(_)
        | Expr::IsFalse(_)
        | Expr::IsUnknown(_)
        | Expr::IsNotTrue(_)
        | Expr::IsNotFalse(_)
        | Expr::IsNotUnknown(_)
        | Expr::Between(_)
        | Expr::Case(_)
        | Expr::InList(_)
        | Expr::TryCast(_) => true,
        // After type coercion both sides have one type; comparing them cannot fail.
        Expr::BinaryExpr(BinaryExpr { op, .. }) => matches!(
            op,
            Operator::Eq
                | Operator::NotEq
                | Operator::Lt
                | Operator::LtEq
                | Operator::Gt
                | Operator::GtEq
                | Operator::IsDistinctFrom
                | Operator::IsNotDistinctFrom
                | Operator::And
                | Operator::Or
        ),
        // PostgreSQL raises 22025 on reaching a pattern's trailing escape character,
        // that is only for rows that match the pattern up to it: a literal pattern
        // with no escape character and no backslash cannot fail anywhere.
        Expr::Like(like) => {
            like.escape_char.is_none()
                && matches!(like.pattern.as_ref(), Expr::Literal(v, _)
                    if v.to_string().chars().all(|c| c != '\\'))
        }
        Expr::Cast(Cast { expr, field }) => match expr.get_type(schema) {
            Ok(from) => cast_cannot_fail(&from, field.data_type()),
            Err(_) => false,
        },
        Expr::ScalarFunction(ScalarFunction { func, .. }) => TOTAL_FUNCTIONS.contains(&func.name()),
        // An aggregate or window function is computed over the rows that reached it,
        // which are never below a filter: only its arguments (visited as children)
        // can be moved down, so a failing `sum` overflow says nothing of hidden rows.
        Expr::AggregateFunction(_) | Expr::WindowFunction(_) | Expr::GroupingSet(_) => true,
        _ => false,
    }
}

/// Casts that succeed for every value of the source type.
fn cast_cannot_fail(
    from: &datafusion::arrow::datatypes::DataType,
    to: &datafusion::arrow::datatypes::DataType,
) -> bool {
    use datafusion::arrow::datatypes::DataType as T;
    if from == to {
        return true;
    }
    let text = |t: &T| matches!(t, T::Utf8 | T::LargeUtf8 | T::Utf8View);
    let rank = |t: &T| match t {
        T::Int8 => Some((1, true)),
        T::Int16 => Some((2, true)),
        T::Int32 => Some((4, true)),
        T::Int64 => Some((8, true)),
        T::UInt8 => Some((1, false)),
        T::UInt16 => Some((2, false)),
        T::UInt32 => Some((4, false)),
        _ => None,
    };
    match (from, to) {
        (T::Null, _) => true,
        (f, t) if text(t) && (text(f) || f.is_primitive() || matches!(f, T::Boolean)) => {
            // Every number, date, time and boolean has a text form.
            !matches!(f, T::Binary | T::LargeBinary | T::BinaryView)
        }
        (T::Float32, T::Float64) | (T::Date32, T::Date64) => true,
        (f, T::Float64) if rank(f).is_some() => true,
        (f, t) => match (rank(f), rank(t)) {
            // Wider signed integers hold every value of a narrower integer.
            (Some((a, signed_from)), Some((b, true))) => {
                if signed_from {
                    b >= a
                } else {
                    b > a
                }
            }
            _ => false,
        },
    }
}

/// The physical form of [`Barrier`]: passes batches through, and lets nothing in.
#[derive(Debug)]
pub struct BarrierExec {
    input: Arc<dyn ExecutionPlan>,
}

impl BarrierExec {
    pub fn new(input: Arc<dyn ExecutionPlan>) -> Self {
        BarrierExec { input }
    }
}

impl DisplayAs for BarrierExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SecurityBarrierExec")
    }
}

impl ExecutionPlan for BarrierExec {
    fn name(&self) -> &str {
        "SecurityBarrierExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let input = children.into_iter().next().ok_or_else(|| {
            datafusion::error::DataFusionError::Internal("a barrier has one input".into())
        })?;
        Ok(Arc::new(BarrierExec { input }))
    }

    // Not order-preserving on purpose: a sort pushed below the barrier would
    // evaluate its keys on rows the filter rejects.
    fn maintains_input_order(&self) -> Vec<bool> {
        vec![false]
    }

    fn benefits_from_input_partitioning(&self) -> Vec<bool> {
        vec![false]
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::Equal
    }

    // Filter pushdown, dynamic filters and projection swaps keep their defaults,
    // which refuse: nothing from above is evaluated below.

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        self.input.execute(partition, context)
    }
}

/// Plans [`Barrier`] nodes as [`BarrierExec`].
#[derive(Debug, Default)]
pub struct BarrierPlanner;

#[async_trait]
impl ExtensionPlanner for BarrierPlanner {
    async fn plan_extension(
        &self,
        _planner: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _logical_inputs: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _session: &dyn datafusion::catalog::Session,
        _planning_ctx: &datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        if node.as_any().downcast_ref::<Barrier>().is_none() {
            return Ok(None);
        }
        match physical_inputs {
            [input] => Ok(Some(Arc::new(BarrierExec::new(input.clone())))),
            _ => Ok(None),
        }
    }
}

/// The names of the tables under barriers in `plan` (for tests and EXPLAIN checks).
pub fn barriers(plan: &LogicalPlan) -> usize {
    let mut n = 0;
    let _ = plan.apply_with_subqueries(|node| {
        if Barrier::of(node).is_some() {
            n += 1;
        }
        Ok(TreeNodeRecursion::Continue)
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::logical_expr::{LogicalPlanBuilder, cast, col, lit, table_scan};
    use datafusion::optimizer::OptimizerContext;

    fn scan() -> LogicalPlanBuilder {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("province_code", DataType::Int16, false),
            Field::new("name", DataType::Utf8, false),
        ]);
        table_scan(Some("t"), &schema, None).unwrap()
    }

    /// A row-filtered table under its barrier, with `user` filtering above it.
    fn guarded(user: Expr) -> LogicalPlan {
        let filtered = scan()
            .filter(col("province_code").eq(lit(23i16)))
            .unwrap()
            .build()
            .unwrap();
        LogicalPlanBuilder::from(Barrier::wrap(filtered))
            .filter(user)
            .unwrap()
            .build()
            .unwrap()
    }

    fn run(plan: LogicalPlan) -> LogicalPlan {
        let rule = BarrierRule::new(Arc::new(|p, _| Ok(p)));
        rule.rewrite(plan, &OptimizerContext::new()).unwrap().data
    }

    /// The conjuncts of the filter directly above the barrier, and of the one below.
    fn around(plan: &LogicalPlan) -> (String, String) {
        let text = plan.display_indent().to_string();
        let mut lines = text.lines();
        let above = lines.next().unwrap_or_default().to_string();
        let below = lines
            .skip_while(|l| !l.contains("SecurityBarrier"))
            .nth(1)
            .unwrap_or_default()
            .to_string();
        (above, below)
    }

    #[test]
    fn leakproof_statements_lose_their_barriers() {
        let plan = run(guarded(
            col("id")
                .gt(lit(5i64))
                .and(col("name").like(lit("A%")))
                .and(cast(col("province_code"), DataType::Int64).eq(lit(23i64))),
        ));
        assert_eq!(barriers(&plan), 0, "{}", plan.display_indent());
    }

    #[test]
    fn a_failing_expression_keeps_the_barrier_and_stays_above_it() {
        let failing = cast(col("name"), DataType::Int32).eq(lit(1i32));
        let plan = run(guarded(col("id").gt(lit(5i64)).and(failing)));
        assert_eq!(barriers(&plan), 1, "{}", plan.display_indent());
        let (above, below) = around(&plan);
        assert!(above.contains("CAST(t.name AS Int32)"), "{above}");
        assert!(
            !above.contains("t.id > "),
            "the leakproof part went below: {above}"
        );
        assert!(below.contains("t.id > Int64(5)"), "{below}");
        // Applied again (the optimizer's next pass), nothing more changes.
        let again = BarrierRule::new(Arc::new(|p, _| Ok(p)))
            .rewrite(plan.clone(), &OptimizerContext::new())
            .unwrap();
        assert!(!again.transformed);
    }

    #[test]
    fn a_failing_expression_anywhere_keeps_every_barrier() {
        // Division can fail; here it is in the select list, not the filter.
        let plan = LogicalPlanBuilder::from(guarded(col("id").gt(lit(1i64))))
            .project(vec![(lit(1i64) / col("id")).alias("x")])
            .unwrap()
            .build()
            .unwrap();
        assert_eq!(barriers(&run(plan)), 1);
    }

    #[test]
    fn patterns_and_functions_a_source_could_fail_on_keep_the_barrier() {
        // PostgreSQL fails on a trailing escape character only for rows that match
        // the pattern up to it; date_trunc fails on out-of-range timestamps.
        for user in [
            col("name").like(lit("Ali\\")),
            col("name").like(lit("A\\%")),
            Expr::ScalarFunction(ScalarFunction::new_udf(
                datafusion::functions::datetime::date_trunc(),
                vec![lit("month"), cast(col("id"), DataType::Date32)],
            ))
            .is_not_null(),
        ] {
            assert_eq!(barriers(&run(guarded(user.clone()))), 1, "{user}");
        }
        assert_eq!(barriers(&run(guarded(col("name").like(lit("Ali%"))))), 0);
    }

    #[test]
    fn casts_that_cannot_fail_are_told_from_those_that_can() {
        use DataType as T;
        for (from, to) in [
            (T::Int16, T::Int64),
            (T::Int32, T::Utf8),
            (T::Date32, T::Utf8View),
            (T::UInt32, T::Int64),
            (T::Float32, T::Float64),
            (T::Int64, T::Float64),
        ] {
            assert!(cast_cannot_fail(&from, &to), "{from} -> {to}");
        }
        for (from, to) in [
            (T::Utf8, T::Int32),
            (T::Int64, T::Int32),
            (T::UInt32, T::Int32),
            (T::Utf8, T::Date32),
            (T::Binary, T::Utf8),
            (T::Float64, T::Int64),
        ] {
            assert!(!cast_cannot_fail(&from, &to), "{from} -> {to}");
        }
    }
}
