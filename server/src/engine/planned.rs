//! A planned statement ([`Planned`]) and, for a prepared one wholly pushed to one
//! source, what its first execution found ([`Pushed`]), kept for every later one.

use std::sync::Arc;

use amar_policies::enforce::Report;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::SessionContext;
use datafusion::sql::sqlparser::ast::Statement;

use super::error::SqlError;

/// A planned statement and the columns its client will see.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: LogicalPlan,
    /// The result schema as sent: PostgreSQL column names, timestamps in the
    /// session's time zone.
    pub output: SchemaRef,
    /// What it reads and what the policy did, for the audit log.
    pub report: Arc<Report>,
    /// The statement's plan before any binding, and what optimising it found: shared
    /// by a prepared statement and every binding of it.
    pub(super) pushed: Arc<Pushed>,
    /// The values bound to `$1…$n` (a binding of a prepared statement).
    pub(super) params: Option<ParamValues>,
    /// The statement as parsed, and the policy generation its plan was enforced
    /// under: a plan older than the policy in force is planned again before it runs.
    pub(super) parsed: Arc<Statement>,
    /// The parameter types the client declared, for planning it again.
    pub(super) declared: Arc<[Option<datafusion::arrow::datatypes::DataType>]>,
    pub(super) generation: u64,
}

/// A prepared statement wholly pushed to one source, planned once.
///
/// Optimising a plan and planning its execution cost more than a point query takes
/// in PostgreSQL. When a prepared statement's optimised plan (placeholders and all)
/// is a single federated node, the whole statement goes to one database. On a
/// PostgreSQL source whose statement keeps its placeholders in conditions, the
/// source's execution plan is built once and each execution sends its values as
/// parameters ([`amar_connectors::bound`]); otherwise each execution binds the values
/// into the node's plan and hands it to the source's planner (which writes the SQL).
/// Anything else (a plan that keeps work in Amar, or one whose optimisation needs
/// the values) is optimised per execution.
#[derive(Debug)]
pub(super) struct Pushed {
    unbound: LogicalPlan,
    ready: tokio::sync::OnceCell<Option<Ready>>,
    /// The types of `$1…$n`, found once.
    parameter_types: std::sync::OnceLock<Vec<Option<datafusion::arrow::datatypes::DataType>>>,
    /// The statement planned again (unbound), when its plan went out of date: kept
    /// for the executions after, until it goes out of date in turn.
    replanned: std::sync::Mutex<Option<Planned>>,
}

/// What optimising a wholly pushed statement found, kept for every execution.
#[derive(Debug)]
pub(super) struct Ready {
    node: datafusion_federation::FederatedPlanNode,
    /// The statement with its placeholders kept, where its values go to the source
    /// as parameters; `None` where they are bound as literals.
    parameterised: Option<amar_connectors::bound::Parameterised>,
}

impl Pushed {
    pub(super) fn new(unbound: LogicalPlan) -> Arc<Self> {
        Arc::new(Pushed {
            unbound,
            ready: tokio::sync::OnceCell::new(),
            parameter_types: std::sync::OnceLock::new(),
            replanned: std::sync::Mutex::new(None),
        })
    }

    /// The statement as last planned again, if it was.
    pub(super) fn replanned(&self) -> Option<Planned> {
        self.replanned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Keeps `fresh` (a plan of the statement as prepared, with no values bound)
    /// for the executions after this one.
    pub(super) fn keep_replanned(&self, fresh: &Planned) {
        debug_assert!(fresh.params.is_none());
        *self.replanned.lock().unwrap_or_else(|e| e.into_inner()) = Some(fresh.clone());
    }

    /// The federated node the whole statement became, optimised on first use.
    pub(super) async fn ready(&self, ctx: &SessionContext) -> Option<&Ready> {
        self.ready
            .get_or_init(|| async {
                if !Self::all_federated(&self.unbound) {
                    return None;
                }
                let state = ctx.state();
                let optimised = state.optimize(&self.unbound).ok()?;
                let LogicalPlan::Extension(extension) = optimised else {
                    return None;
                };
                let node = extension
                    .node
                    .as_any()
                    .downcast_ref::<datafusion_federation::FederatedPlanNode>()?;
                let node = datafusion_federation::FederatedPlanNode::new(
                    node.plan.clone(),
                    node.planner.clone(),
                );
                let parameterised = if amar_connectors::bound::accepts(node.plan()) {
                    match node.planner.plan_federation(&node, &state).await {
                        Ok(exec) => amar_connectors::bound::Parameterised::new(node.plan(), exec),
                        Err(_) => None,
                    }
                } else {
                    None
                };
                Some(Ready {
                    node,
                    parameterised,
                })
            })
            .await
            .as_ref()
    }

    /// Whether executions send their values as parameters, so a binding need not
    /// rewrite the plan (known once the statement has run).
    fn takes_parameters(&self) -> bool {
        matches!(
            self.ready.get(),
            Some(Some(Ready {
                parameterised: Some(_),
                ..
            }))
        )
    }

    /// Whether every table the plan reads is a federated one (so one optimisation
    /// may find it wholly pushed); catalog, file and SQLite plans are not tried.
    fn all_federated(plan: &LogicalPlan) -> bool {
        use datafusion::common::tree_node::TreeNodeRecursion;
        let (mut scans, mut federated) = (0, 0);
        let _ = plan.apply_with_subqueries(|node| {
            if let LogicalPlan::TableScan(scan) = node {
                scans += 1;
                if let Ok(Some(_)) = datafusion_federation::get_table_source(&scan.source) {
                    federated += 1;
                }
            }
            Ok(TreeNodeRecursion::Continue)
        });
        scans > 0 && scans == federated
    }

    /// Runs the statement with `params` through the source alone: as parameters
    /// where it takes them, bound into the SQL otherwise.
    pub(super) async fn execute(
        ready: &Ready,
        params: &ParamValues,
        ctx: &SessionContext,
    ) -> datafusion::error::Result<SendableRecordBatchStream> {
        if let (Some(statement), ParamValues::List(list)) = (&ready.parameterised, params)
            && list.len() == statement.count()
            && let Some(values) = amar_connectors::bound::Value::all(list.iter().map(|v| &v.value))
        {
            return statement.execute(values, || ctx.task_ctx());
        }
        let state = ctx.state();
        let node = &ready.node;
        let plan = node.plan().clone().with_param_values(params.clone())?;
        let bound = datafusion_federation::FederatedPlanNode::new(plan, node.planner.clone());
        let exec = node.planner.plan_federation(&bound, &state).await?;
        exec.execute(0, state.task_ctx())
    }
}

impl Planned {
    /// The types of `$1…$n`, in order; `None` where none could be inferred.
    pub fn parameter_types(
        &self,
    ) -> Result<Vec<Option<datafusion::arrow::datatypes::DataType>>, SqlError> {
        if let Some(types) = self.pushed.parameter_types.get() {
            return Ok(types.clone());
        }
        // Of the statement as prepared (a bound plan has no placeholders left).
        let types = Self::parameter_types_of(&self.pushed.unbound)?;
        let _ = self.pushed.parameter_types.set(types.clone());
        Ok(types)
    }

    /// The types of `$1…$n` of a plan, in order; `None` where DataFusion could not
    /// infer one. A placeholder DataFusion leaves untyped but that the SQL casts
    /// (`$1::bigint`) takes the cast's type, as PostgreSQL infers it.
    pub fn parameter_types_of(
        plan: &LogicalPlan,
    ) -> Result<Vec<Option<datafusion::arrow::datatypes::DataType>>, SqlError> {
        let mut types = plan.get_parameter_types()?;
        if types.values().any(Option::is_none) {
            for (id, data_type) in placeholder_casts(plan) {
                if let Some(slot @ None) = types.get_mut(&id) {
                    *slot = Some(data_type);
                }
            }
        }
        let count = types
            .keys()
            .filter_map(|k| k.trim_start_matches('$').parse::<usize>().ok())
            .max()
            .unwrap_or(0);
        Ok((1..=count)
            .map(|i| types.get(&format!("${i}")).cloned().flatten())
            .collect())
    }

    /// The same plan with `$n` placeholders replaced by values. A statement whose
    /// values go to its source as parameters keeps its plan as it is (the values are
    /// bound into it only if it must be planned again).
    pub fn bind(&self, params: ParamValues) -> Result<Planned, SqlError> {
        let plan = if self.pushed.takes_parameters() {
            self.plan.clone()
        } else {
            self.plan.clone().with_param_values(params.clone())?
        };
        Ok(Planned {
            plan,
            output: self.output.clone(),
            report: self.report.clone(),
            pushed: self.pushed.clone(),
            params: Some(params),
            parsed: self.parsed.clone(),
            declared: self.declared.clone(),
            generation: self.generation,
        })
    }
}

/// `$n` placeholders under a cast, with the cast's type.
pub(super) fn placeholder_casts(
    plan: &LogicalPlan,
) -> Vec<(String, datafusion::arrow::datatypes::DataType)> {
    use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
    use datafusion::logical_expr::{Cast, Expr, TryCast};
    let mut found = vec![];
    let _ = plan.apply_with_subqueries(|node| {
        for expr in node.expressions() {
            let _ = expr.apply(|e| {
                if let Expr::Cast(Cast { expr, field }) | Expr::TryCast(TryCast { expr, field }) = e
                    && let Expr::Placeholder(p) = expr.as_ref()
                {
                    found.push((p.id.clone(), field.data_type().clone()));
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(TreeNodeRecursion::Continue)
    });
    found
}
