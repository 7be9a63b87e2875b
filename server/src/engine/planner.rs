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
use datafusion::error::Result;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder};
use datafusion::optimizer::push_down_filter::PushDownFilter;
use datafusion::optimizer::{OptimizerConfig, OptimizerRule};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};

/// DataFusion's rules with federation, and the barrier rule just before it.
pub fn optimizer_rules() -> Vec<Arc<dyn OptimizerRule + Send + Sync>> {
    let mut rules = datafusion_federation::default_optimizer_rules();
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
    rules.insert(federation, Arc::new(PushDownFilter::new()));
    rules
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
