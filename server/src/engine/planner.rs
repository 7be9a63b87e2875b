//! The engine's optimizer rules and physical planner: DataFusion's own, the sources'
//! federation, and the security barrier that keeps row filters tight.
//!
//! Order matters. Federation runs early (right after subqueries become joins) and
//! hands every sub-plan that lives in one database to that database as SQL. The
//! barrier rule must have decided before it: a filter pass first brings the user's
//! predicates down to the barriers, then [`BarrierRule`] removes the barriers where
//! nothing the user wrote can fail on a row, or keeps them and federates the part
//! under each on its own (see `amar_policies::barrier`).

use std::sync::Arc;

use amar_policies::barrier::{BarrierPlanner, BarrierRule};
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::DFSchema;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{
    BinaryExpr, Expr, ExprSchemable, LogicalPlan, LogicalPlanBuilder, Operator, ScalarUDF,
};
use datafusion::optimizer::optimizer::ApplyOrder;
use datafusion::optimizer::push_down_filter::PushDownFilter;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

/// DataFusion's rules with federation, and the barrier rule just before it.
pub fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = datafusion_federation::default_optimizer_rules();
    // These push projections of struct fields into the inputs of any node, a
    // barrier's included; nothing Amar serves needs them.
    rules.retain(|r| {
        !matches!(
            r.name(),
            "extract_leaf_expressions" | "push_down_leaf_projections"
        )
    });
    let federation = rules
        .iter()
        .position(|r| r.name() == "federation_optimizer_rule")
        .unwrap_or(rules.len());
    // The part under a barrier, federated on its own. Federation leaves a lone
    // table scan at the root alone (it waits for a larger plan above), so the part
    // is given a projection of its own columns to be the root of.
    let isolate = |plan: LogicalPlan, config: &dyn OptimizerConfig| {
        let columns = plan.schema().columns().into_iter().map(Expr::Column);
        let rooted = LogicalPlanBuilder::from(plan).project(columns)?.build()?;
        datafusion_federation::FederationOptimizerRule::new()
            .rewrite(rooted, config)
            .map(|t| t.data)
    };
    rules.insert(
        federation,
        Arc::new(BarrierRule::new(Arc::new(isolate))) as Arc<dyn OptimizerRule + Send + Sync>,
    );
    rules.insert(
        federation,
        Arc::new(FiltersToBarriers(PushDownFilter::new())),
    );
    // `||` on text is the bounded function wherever Amar evaluates it, constant
    // folding included, and the operator again in the SQL a source receives.
    rules.insert(federation, Arc::new(TextConcat::operator()));
    rules.insert(0, Arc::new(TextConcat::function()));
    rules.push(Arc::new(TextConcat::function()));
    rules
}

/// DataFusion's filter pushdown, run early only for plans with barriers, to bring
/// the user's predicates down to them before the barrier rule decides. Other plans
/// reach federation as they always did (a prepared point query's filter stays a
/// filter, which is what lets its values go to PostgreSQL as parameters).
#[derive(Debug)]
struct FiltersToBarriers(PushDownFilter);

impl OptimizerRule for FiltersToBarriers {
    fn name(&self) -> &str {
        "amar_filters_to_barriers"
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        if amar_policies::barrier::barriers(&plan) == 0 {
            return Ok(Transformed::no(plan));
        }
        plan.transform_down_with_subqueries(|node| self.0.rewrite(node, config))
    }
}

/// Turns text `||` into [`amar_catalog::bounded::string_concat`] (or back), and
/// gives calls DataFusion built itself their bounded form.
#[derive(Debug)]
struct TextConcat {
    /// Which way: to the bounded function, or back to the operator.
    to_function: bool,
    udf: Arc<ScalarUDF>,
}

impl TextConcat {
    fn function() -> Self {
        TextConcat {
            to_function: true,
            udf: Arc::new(amar_catalog::bounded::string_concat()),
        }
    }

    fn operator() -> Self {
        TextConcat {
            to_function: false,
            ..Self::function()
        }
    }

    fn rewrite_expr(&self, expr: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
        use amar_catalog::bounded::{STRING_CONCAT, is_text};
        expr.transform_up(|e| match e {
            Expr::BinaryExpr(BinaryExpr {
                left,
                op: Operator::StringConcat,
                right,
            }) if self.to_function
                && left.get_type(schema).is_ok_and(|t| is_text(&t))
                && right.get_type(schema).is_ok_and(|t| is_text(&t)) =>
            {
                Ok(Transformed::yes(self.udf.call(vec![*left, *right])))
            }
            // Calls DataFusion made without the registry get their bounded form.
            Expr::ScalarFunction(f)
                if self.to_function && amar_catalog::bounded::bound(&f.func).is_some() =>
            {
                let bounded = amar_catalog::bounded::bound(&f.func).map(Arc::new);
                Ok(Transformed::yes(Expr::ScalarFunction(
                    datafusion::logical_expr::expr::ScalarFunction::new_udf(
                        bounded.unwrap_or(f.func),
                        f.args,
                    ),
                )))
            }
            Expr::ScalarFunction(f)
                if !self.to_function && f.name() == STRING_CONCAT && f.args.len() == 2 =>
            {
                let mut args = f.args.into_iter();
                match (args.next(), args.next()) {
                    (Some(l), Some(r)) => Ok(Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(l),
                        Operator::StringConcat,
                        Box::new(r),
                    )))),
                    _ => datafusion::common::internal_err!("|| takes two operands"),
                }
            }
            other => Ok(Transformed::no(other)),
        })
    }
}

impl OptimizerRule for TextConcat {
    fn name(&self) -> &str {
        if self.to_function {
            "amar_text_concat_bounded"
        } else {
            "amar_text_concat_operator"
        }
    }

    fn apply_order(&self) -> Option<ApplyOrder> {
        Some(ApplyOrder::BottomUp)
    }

    fn rewrite(
        &self,
        plan: LogicalPlan,
        _config: &dyn OptimizerConfig,
    ) -> Result<Transformed<LogicalPlan>> {
        let inputs = plan.inputs();
        let schema = match &plan {
            LogicalPlan::TableScan(scan) => Arc::new(DFSchema::try_from_qualified_schema(
                scan.table_name.clone(),
                &scan.source.schema(),
            )?),
            _ if !inputs.is_empty() => Arc::new(merge_schema(&inputs)),
            _ => Arc::new(DFSchema::empty()),
        };
        // The rewritten expressions keep their names, so no schema changes.
        let names = NamePreserver::new(&plan);
        plan.map_expressions(|expr| {
            let name = names.save(&expr);
            let rewritten = self.rewrite_expr(expr, &schema)?;
            Ok(if rewritten.transformed {
                Transformed::yes(name.restore(rewritten.data))
            } else {
                rewritten
            })
        })
    }
}

/// Plans federated nodes for their sources and barriers as barriers; everything
/// else as DataFusion does.
#[derive(Debug, Default)]
pub struct AmarQueryPlanner;

#[async_trait]
impl QueryPlanner for AmarQueryPlanner {
    async fn create_physical_plan(
        &self,
        plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![
            Arc::new(datafusion_federation::FederatedPlanner::new()),
            Arc::new(BarrierPlanner),
        ])
        .create_physical_plan(plan, session)
        .await
    }
}
