//! Engine assembly, and the session every front end talks to.
//!
//! [`Engine::open`] opens the configured sources, builds the `amar` catalog with
//! pg_catalog and information_schema, and keeps a base DataFusion session state. Each
//! connection gets a [`Session`]: the user, their settings and their own DataFusion
//! context cloned from the base (cheap: catalogs and functions are shared). Every
//! front end (pgwire, Flight SQL) hands its statements to the session's one statement
//! path ([`run`]): the session applies each command and plans every query with
//! [`Session::plan`] and runs it with [`Session::execute`], so a rule enforced for one
//! front end is enforced for all, and each statement is audited exactly once.
//!
//! Keeping assembly in this one function is also what lets a distributed (Ballista)
//! session stand in for the local one later.

mod access;
mod audited;
pub mod command;
pub mod cursor;
pub mod depth;
pub mod error;
mod named;
pub mod output;
mod planner;
pub mod roles;
pub mod run;
pub mod settings;
pub mod sql;
mod status;
mod timeout;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amar_catalog::AmarCatalog;
use amar_catalog::statistics::{Definitions, IndicatorView, Statistics};
use amar_catalog::visible::{SessionVisibility, Visibility, VisibleCatalogList};
use amar_connectors::{SourceConfig, open_source};
use amar_policies::enforce::Report;
use amar_policies::{PolicyStore, SessionAccess, User, UserDirectory};
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionConfig, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

pub use command::{Command, CopyFormat};
pub use error::{SqlError, code};
pub use run::{Accept, Outcome, Prepared, Transaction};
pub use settings::Settings;

use crate::audit::{AuditEntry, AuditLog};

/// The shared parts of the server's query engine.
pub struct Engine {
    state: SessionState,
    statistics: Arc<Statistics>,
    statement_timeout: Option<Duration>,
    statements_per_user: Option<usize>,
    /// Each user's turns, when statements per user are limited.
    turns: Mutex<std::collections::HashMap<String, Arc<tokio::sync::Semaphore>>>,
    catalog: Arc<AmarCatalog>,
    users: Arc<UserDirectory>,
    policy: Arc<PolicyStore>,
    audit: Arc<AuditLog>,
    metrics: Arc<crate::metrics::Metrics>,
    rewriter: sql::Rewriter,
    /// Every table's OID, for the catalog functions each session answers with.
    directory: Arc<amar_catalog::pg::OidDirectory>,
    mask_key: amar_policies::mask::MaskKey,
    next_session: AtomicU64,
    started: Instant,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").finish_non_exhaustive()
    }
}

/// What the engine is assembled with besides sources, users and policies.
#[derive(Debug, Clone, Default)]
pub struct EngineSetup {
    /// The statistics office's definitions.
    pub definitions: Definitions,
    /// The folder for validation results (`results.jsonl`); none keeps them in memory.
    pub results_dir: Option<std::path::PathBuf>,
    /// The query engine's memory pool; none is unbounded.
    pub memory_bytes: Option<usize>,
    /// The longest any statement may run, whatever its session sets.
    pub statement_timeout: Option<Duration>,
    /// Statements one user may run at once.
    pub statements_per_user: Option<usize>,
    /// The key of `hash` masks; none makes one for this run only.
    pub mask_key: Option<amar_policies::mask::MaskKey>,
}

/// How long a statement waits for one of its user's turns before it is refused.
const TURN_WAIT: Duration = Duration::from_secs(30);

/// Where a session came from.
#[derive(Debug, Clone)]
pub struct Peer {
    pub addr: std::net::SocketAddr,
    /// `pgwire` or `flight`.
    pub protocol: &'static str,
    pub application: String,
}

impl Engine {
    /// Opens every source and assembles the engine. A source that cannot be opened
    /// stops the start, naming the source and the reason.
    pub async fn open(
        sources: &[SourceConfig],
        users: UserDirectory,
        policy_file: Option<&std::path::Path>,
        audit: Arc<AuditLog>,
        setup: EngineSetup,
    ) -> anyhow::Result<Arc<Engine>> {
        let mut opened = Vec::with_capacity(sources.len());
        for config in sources {
            opened.push(open_source(config).await?);
        }
        let catalog = Arc::new(AmarCatalog::load(opened).await?);
        let users = Arc::new(users);
        let policy = Arc::new(PolicyStore::load(policy_file, None, &users.all()).await?);
        catalog.system().add_table("query_log", audit.table());
        catalog.system().add_table(
            "policy_status",
            Arc::new(status::PolicyStatusTable::new(policy.clone())),
        );

        let mut config = SessionConfig::new()
            .with_default_catalog_and_schema(amar_catalog::DATABASE, amar_catalog::DEFAULT_SCHEMA)
            .with_create_default_catalog_and_schema(false)
            .with_information_schema(false);
        config.options_mut().sql_parser.dialect = datafusion::config::Dialect::PostgreSQL;
        // As in PostgreSQL, 0.3 is an exact numeric, not a float: `wage * 0.3` must not
        // round rials through binary fractions.
        config.options_mut().sql_parser.parse_float_as_decimal = true;
        config.options_mut().execution.time_zone = Some("Asia/Tehran".to_string());
        // Files and drop folders change under a running server: list them on every
        // scan (DataFusion caches listings forever by default), which is cheap locally.
        let mut runtime = datafusion::execution::runtime_env::RuntimeEnvBuilder::new()
            .with_cache_manager(
                datafusion::execution::cache::cache_manager::CacheManagerConfig::default()
                    .with_list_files_cache_limit(0),
            );
        // A bounded pool: sorts, aggregates and joins spill to the OS temporary folder
        // when it is full; what cannot spill fails with 53200, naming the top users.
        if let Some(bytes) = setup.memory_bytes {
            use datafusion::execution::memory_pool::{FairSpillPool, TrackConsumersPool};
            runtime = runtime.with_memory_pool(Arc::new(TrackConsumersPool::new(
                FairSpillPool::new(bytes),
                std::num::NonZeroUsize::new(3).unwrap_or(std::num::NonZeroUsize::MIN),
            )));
        }
        let runtime = runtime.build_arc()?;
        let state = SessionStateBuilder::new()
            .with_config(config)
            .with_runtime_env(runtime)
            .with_default_features()
            // Federation is one of these rules: a sub-plan whose tables all live in
            // one database (PostgreSQL, MySQL) is handed to it as one SQL statement.
            .with_optimizer_rules(planner::optimizer_rules())
            .with_query_planner(Arc::new(planner::AmarQueryPlanner))
            .build();
        let ctx = SessionContext::new_with_state(state);
        ctx.register_catalog(amar_catalog::DATABASE, catalog.provider());
        datafusion_pg_catalog::setup_pg_catalog(
            &ctx,
            amar_catalog::DATABASE,
            roles::UserRoles::new(users.clone(), policy.clone()),
        )
        .map_err(|e| anyhow::anyhow!("setting up pg_catalog: {e}"))?;
        // Also installs our PostgreSQL-shaped information_schema in place of DataFusion's.
        let directory = amar_catalog::pg::install(&ctx, catalog.clone()).await?;
        // Functions whose result a value can make huge are bounded (54000).
        for f in amar_catalog::bounded::functions(&ctx.state()) {
            ctx.register_udf(f);
        }
        // Indicators and rules are planned by this base session, with every function
        // registered: the definer's rights. (pg_catalog lists the indicators from its
        // next read on.)
        let stats = Statistics::new(setup.definitions, setup.results_dir);
        stats.install(catalog.provider().as_ref(), catalog.system())?;
        stats.set_definer(ctx.state());
        stats.check().await?;
        let metrics = Arc::new(crate::metrics::Metrics::new());
        audit.count_in(metrics.clone());

        Ok(Arc::new(Engine {
            metrics,
            statistics: stats,
            statement_timeout: setup.statement_timeout,
            statements_per_user: setup.statements_per_user,
            turns: Mutex::new(std::collections::HashMap::new()),
            state: ctx.state(),
            catalog,
            users,
            policy,
            audit,
            rewriter: sql::Rewriter::new(),
            directory,
            mask_key: setup
                .mask_key
                .unwrap_or_else(amar_policies::mask::MaskKey::random),
            next_session: AtomicU64::new(1),
            started: Instant::now(),
        }))
    }

    pub fn users(&self) -> &UserDirectory {
        &self.users
    }

    pub fn catalog(&self) -> &AmarCatalog {
        &self.catalog
    }

    /// Indicators, glossary and validation rules.
    pub fn statistics(&self) -> &Arc<Statistics> {
        &self.statistics
    }

    pub fn policy(&self) -> &PolicyStore {
        &self.policy
    }

    pub fn audit(&self) -> &Arc<AuditLog> {
        &self.audit
    }

    pub fn metrics(&self) -> &Arc<crate::metrics::Metrics> {
        &self.metrics
    }

    /// A turn to run a statement as `user`: at once when there is no limit or a turn
    /// is free, after a wait when not, refused (53000) when none frees in time.
    async fn turn(
        &self,
        user: &str,
        limit: Duration,
    ) -> Result<Option<tokio::sync::OwnedSemaphorePermit>, SqlError> {
        let Some(per_user) = self.statements_per_user else {
            return Ok(None);
        };
        let slots = self
            .turns
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(user.to_string())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(per_user)))
            .clone();
        match tokio::time::timeout(limit.min(TURN_WAIT), slots.acquire_owned()).await {
            Ok(Ok(permit)) => Ok(Some(permit)),
            _ => Err(SqlError::new(
                code::INSUFFICIENT_RESOURCES,
                format!(
                    "user \"{user}\" already runs {per_user} statements, the most one user may run at once; try again when one finishes"
                ),
            )),
        }
    }

    /// Bytes the query engine's memory pool holds now.
    pub fn memory_reserved(&self) -> usize {
        self.state.runtime_env().memory_pool.reserved()
    }

    /// Re-reads the policy file (and the users' roles) if they changed.
    pub async fn refresh_policy(&self) {
        self.policy.refresh(&self.users.all()).await;
    }

    pub fn uptime(&self) -> std::time::Duration {
        self.started.elapsed()
    }

    /// A new session for an authenticated user.
    pub fn session(
        self: &Arc<Self>,
        user: User,
        peer: Peer,
        startup: &[(String, String)],
    ) -> Session {
        let id = self.next_session.fetch_add(1, Ordering::Relaxed);
        let cursors = cursor::registry();
        let access = Arc::new(SessionAccess::new(self.policy.clone(), user.clone()));
        let visibility: Arc<dyn Visibility> = Arc::new(access::PolicyVisibility(access.clone()));
        let mut state = SessionStateBuilder::new_from_existing(self.state.clone())
            .with_session_id(format!("amar-{id}"))
            .with_catalog_list(Arc::new(VisibleCatalogList {
                inner: self.state.catalog_list().clone(),
                visibility: visibility.clone(),
            }))
            .build();
        state
            .config_mut()
            .set_extension(Arc::new(amar_catalog::pg::SessionCursors(cursors.clone())));
        // Comments, definitions and privileges answer for this user only (and follow
        // a policy change during the session, as the visibility does).
        for f in amar_catalog::pg::session_functions(self.directory.clone(), visibility.clone()) {
            let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
        }
        state
            .config_mut()
            .set_extension(Arc::new(SessionVisibility(visibility)));
        let settings = Settings::new(&user.name, access.current().is_admin(), startup);
        let session = Session {
            id,
            user,
            peer,
            ctx: SessionContext::new_with_state(state),
            settings: Mutex::new(Arc::new(settings)),
            cursors,
            named: named::NamedStatements::default(),
            access,
            engine: self.clone(),
            cancel: Mutex::new(tokio_util::sync::CancellationToken::new()),
        };
        session.apply_settings();
        session
    }
}

/// A table a session can see, for metadata front ends (Flight SQL's GetTables).
#[derive(Debug, Clone)]
pub struct TableEntry {
    pub schema: String,
    pub name: String,
    /// `TABLE`, `VIEW` or `SYSTEM TABLE`, as Flight SQL and JDBC name them.
    pub kind: &'static str,
    pub arrow: SchemaRef,
    pub primary_key: Vec<String>,
}

/// Schemas whose tables are the system's, not a department's.
pub const SYSTEM_SCHEMAS: &[&str] = &[
    "pg_catalog",
    "information_schema",
    amar_catalog::SYSTEM_SCHEMA,
];

/// A planned statement and the columns its client will see.
#[derive(Debug, Clone)]
pub struct Planned {
    pub plan: LogicalPlan,
    /// The result schema as sent: PostgreSQL column names, timestamps in the
    /// session's time zone.
    pub output: SchemaRef,
    /// The statement's text, for the audit log.
    pub statement: Arc<str>,
    /// What it reads and what the policy did, for the audit log.
    pub report: Arc<Report>,
    /// The statement's plan before any binding, and what optimising it found: shared
    /// by a prepared statement and every binding of it.
    pushed: Arc<Pushed>,
    /// The values bound to `$1…$n` (a binding of a prepared statement).
    params: Option<ParamValues>,
    /// The statement as parsed, and the policy generation its plan was enforced
    /// under: a plan older than the policy in force is planned again before it runs.
    parsed: Arc<Statement>,
    generation: u64,
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
struct Pushed {
    unbound: LogicalPlan,
    ready: tokio::sync::OnceCell<Option<Ready>>,
    /// The types of `$1…$n`, found once.
    parameter_types: std::sync::OnceLock<Vec<Option<datafusion::arrow::datatypes::DataType>>>,
}

/// What optimising a wholly pushed statement found, kept for every execution.
#[derive(Debug)]
struct Ready {
    node: datafusion_federation::FederatedPlanNode,
    /// The statement with its placeholders kept, where its values go to the source
    /// as parameters; `None` where they are bound as literals.
    parameterised: Option<amar_connectors::bound::Parameterised>,
}

impl Pushed {
    fn new(unbound: LogicalPlan) -> Arc<Self> {
        Arc::new(Pushed {
            unbound,
            ready: tokio::sync::OnceCell::new(),
            parameter_types: std::sync::OnceLock::new(),
        })
    }

    /// The federated node the whole statement became, optimised on first use.
    async fn ready(&self, ctx: &SessionContext) -> Option<&Ready> {
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
    async fn execute(
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
            statement: self.statement.clone(),
            report: self.report.clone(),
            pushed: self.pushed.clone(),
            params: Some(params),
            parsed: self.parsed.clone(),
            generation: self.generation,
        })
    }
}

/// The definition of the indicator a scan reads (as this session sees it: the
/// public's is the disclosure-controlled one, denied columns are left out).
fn definition_of(
    scan: &datafusion::logical_expr::TableScan,
) -> datafusion::error::Result<Option<LogicalPlan>> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
    let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source) else {
        return Ok(None);
    };
    if let Some(view) = IndicatorView::of(provider.as_ref()) {
        return Ok(Some(view.definition().clone()));
    }
    let Some(without) = provider.downcast_ref::<amar_catalog::visible::WithoutColumns>() else {
        return Ok(None);
    };
    let Some(view) = IndicatorView::of(without.inner().as_ref()) else {
        return Ok(None);
    };
    let definition = view.definition();
    let columns = without
        .kept()
        .iter()
        .map(|i| {
            Expr::Column(datafusion::common::Column::from(
                definition.schema().qualified_field(*i),
            ))
        })
        .collect::<Vec<_>>();
    Ok(Some(
        LogicalPlanBuilder::from(definition.clone())
            .project(columns)?
            .build()?,
    ))
}

/// The read a DESCRIBE stands for: `DESCRIBE t` reads `t`, `DESCRIBE <query>` the
/// query.
fn described(statement: &Statement) -> Option<Statement> {
    use datafusion::sql::sqlparser::ast::DescribeAlias;
    match statement {
        Statement::ExplainTable {
            describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
            table_name,
            ..
        } => sql::parse(&format!("SELECT * FROM {table_name}"))
            .ok()?
            .into_iter()
            .next(),
        Statement::Explain {
            describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
            statement,
            ..
        } => Some(statement.as_ref().clone()),
        _ => None,
    }
}

/// Whether this user may see the plan of `plan` (42501 if not). A plan's text and
/// its run-time counts are computed on every row a scan reads, before any row
/// filter or suppression: `EXPLAIN ANALYZE` of a row-filtered read counts other
/// provinces' rows, and the public role's plans run over cells it must not see.
fn explainable(
    plan: &LogicalPlan,
    access: &amar_policies::UserAccess,
    report: &Report,
) -> Result<(), SqlError> {
    if access.is_admin() {
        return Ok(());
    }
    let analyze = matches!(plan, LogicalPlan::Analyze(_));
    if !analyze && !matches!(plan, LogicalPlan::Explain(_)) {
        return Ok(());
    }
    if access.user().is_public() {
        return Err(SqlError::new(
            code::INSUFFICIENT_PRIVILEGE,
            "permission denied: EXPLAIN is not available to the public role (plans of published statistics are computed on cells it may not see)",
        ));
    }
    if analyze && !report.filtered.is_empty() {
        return Err(SqlError::new(
            code::INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied: EXPLAIN ANALYZE counts rows your row filter hides (on {}); use EXPLAIN without ANALYZE",
                report.filtered.join(", ")
            ),
        ));
    }
    Ok(())
}

/// `$n` placeholders under a cast, with the cast's type.
fn placeholder_casts(plan: &LogicalPlan) -> Vec<(String, datafusion::arrow::datatypes::DataType)> {
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

/// One connection's view of the engine.
pub struct Session {
    pub id: u64,
    pub user: User,
    pub peer: Peer,
    ctx: SessionContext,
    settings: Mutex<Arc<Settings>>,
    cursors: Arc<cursor::Cursors>,
    /// Statements prepared with SQL's PREPARE.
    named: named::NamedStatements,
    /// The user's policy decisions, cached for the session.
    access: Arc<SessionAccess>,
    engine: Arc<Engine>,
    /// Cancelled by a cancel request; replaced by a fresh one after.
    cancel: Mutex<tokio_util::sync::CancellationToken>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user", &self.user.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops the statements running in this session now (57014); later ones run.
    pub fn cancel_running(&self) {
        let mut token = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
        token.cancel();
        *token = tokio_util::sync::CancellationToken::new();
    }

    fn cancel_token(&self) -> tokio_util::sync::CancellationToken {
        self.cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The session's SQL cursors (`DECLARE … CURSOR`).
    pub fn cursors(&self) -> &cursor::Cursors {
        &self.cursors
    }

    /// Parses SQL as PostgreSQL clients write it.
    /// A statement that does not parse is audited here, with its text.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, SqlError> {
        let arrived = (Utc::now(), Instant::now());
        let parsed = if let Err(e) = self.check_standing() {
            Err(e)
        } else if sql.contains('\u{FFFD}') {
            // The front end replaced bytes that were not UTF-8: refuse rather than run
            // a statement that is not what the client sent.
            Err(SqlError::new(
                code::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\" (or a U+FFFD replacement character) in the statement",
            ))
        } else if sql.len() > MAX_SQL_BYTES {
            Err(SqlError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "statement is too long ({} bytes; the limit is {MAX_SQL_BYTES})",
                    sql.len()
                ),
            ))
        } else {
            sql::parse(sql)
        };
        if let Err(e) = &parsed {
            // Keep the log readable: a 4 MiB statement is logged by its head.
            let text = match sql.char_indices().nth(MAX_LOGGED_CHARS) {
                Some((cut, _)) => format!("{}…", &sql[..cut]),
                None => sql.to_string(),
            };
            self.audit(&text, arrived, &Report::default(), "none", 0, 0, Some(e));
        }
        parsed
    }

    /// Refuses (28000, which ends the connection) once the user has been disabled or
    /// their password changed since this session signed in: a revoked person keeps
    /// no open door.
    pub fn check_standing(&self) -> Result<(), SqlError> {
        match self.engine.users.lookup(&self.user.name) {
            Some(now) if !now.disabled && now.verifier == self.user.verifier => Ok(()),
            _ => Err(SqlError::new(
                code::INVALID_AUTHORIZATION,
                format!(
                    "the session of user \"{}\" has ended: the user was disabled or their password changed; sign in again",
                    self.user.name
                ),
            )),
        }
    }

    /// Writes one audit entry for this session.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        statement: &str,
        (at, started): (DateTime<Utc>, Instant),
        report: &Report,
        decision: &str,
        rows: u64,
        bytes: u64,
        error: Option<&SqlError>,
    ) {
        self.engine.audit.record(self.entry(
            statement,
            at,
            started.elapsed(),
            report,
            decision,
            rows,
            bytes,
            error,
        ));
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(
        &self,
        statement: &str,
        at: DateTime<Utc>,
        took: Duration,
        report: &Report,
        decision: &str,
        rows: u64,
        bytes: u64,
        error: Option<&SqlError>,
    ) -> AuditEntry {
        AuditEntry {
            at,
            session: self.id,
            user: self.user.name.clone(),
            client: self.peer.addr.to_string(),
            protocol: self.peer.protocol.to_string(),
            application: self
                .settings()
                .get("application_name")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| self.peer.application.clone()),
            statement: statement.to_string(),
            objects: report.objects.clone(),
            decision: decision.to_string(),
            rows,
            bytes,
            duration_ms: took.as_secs_f64() * 1000.0,
            sqlstate: error.map(|e| e.code.to_string()),
            error: error.map(|e| e.message.clone()),
        }
    }

    /// The one planning function: a statement to a logical plan this user may run.
    /// Statements that would change data or definitions are refused (25006). The
    /// statement path ([`run`]) audits the statement, refused or run.
    pub async fn plan(&self, statement: &Statement) -> Result<Planned, SqlError> {
        // Read before the decisions, so that a reload meanwhile only plans again.
        let generation = self.engine.policy.generation();
        // DESCRIBE shows a table's or a query's columns without scanning anything:
        // what it describes is planned (and refused) as a read first.
        if let Some(described) = described(statement) {
            Box::pin(self.plan(&described)).await?;
        }
        let state = self.ctx.state();
        let rewritten = self.engine.rewriter.rewrite(statement, &self.user.name);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(rewritten)))
            .await?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)?;
        let default_schema = state.config_options().catalog.default_schema.clone();
        let parse = |sql: &str, schema: &datafusion::common::DFSchema| {
            state.create_logical_expr(sql, schema)
        };
        let access = self.access.current();
        let planner = amar_policies::enforce::Planner {
            default_schema: &default_schema,
            parse: &parse,
            definer: &definition_of,
            mask_key: &self.engine.mask_key,
        };
        let (plan, report) = amar_policies::enforce::enforce(plan, &access, &planner)?;
        explainable(&plan, &access, &report)?;
        let schema = plan.schema().as_arrow().clone();
        let names = output::postgres_names(statement, schema.fields().len());
        let output = output::output_schema(&schema, &names, &self.settings().time_zone());
        Ok(Planned {
            pushed: Pushed::new(plan.clone()),
            plan,
            output,
            statement: statement.to_string().into(),
            report: Arc::new(report),
            params: None,
            parsed: Arc::new(statement.clone()),
            generation,
        })
    }

    /// A prepared statement planned under an older policy, planned again under the
    /// one in force (so a withdrawn table or a new row filter reaches it at its next
    /// execution), with its values bound again. A plan whose columns would change
    /// is refused, as PostgreSQL refuses it.
    async fn replan(&self, old: Planned) -> Result<Planned, SqlError> {
        let fresh = self.plan(&old.parsed).await?;
        let same_columns = |a: &SchemaRef, b: &SchemaRef| {
            a.fields().len() == b.fields().len()
                && a.fields()
                    .iter()
                    .zip(b.fields())
                    .all(|(x, y)| x.name() == y.name() && x.data_type() == y.data_type())
        };
        if !same_columns(&old.output, &fresh.output) {
            return Err(SqlError::new(
                code::FEATURE_NOT_SUPPORTED,
                "cached plan must not change result type (the policy changed the statement's columns; prepare it again)",
            ));
        }
        match old.params {
            Some(params) => fresh.bind(params),
            None => Ok(fresh),
        }
    }

    /// Optimises and runs a plan, streaming its batches in the output schema. The
    /// session's `statement_timeout` covers the whole stream.
    ///
    /// The statement's audit entry, carried by `ledger`, is written when the stream
    /// ends (or fails, or is dropped), with the rows and bytes it returned; or now,
    /// if it cannot start; or when this is dropped before it starts.
    pub(crate) async fn execute(
        &self,
        planned: Planned,
        mut ledger: run::Ledger<'_>,
    ) -> Result<SendableRecordBatchStream, SqlError> {
        ledger.reads(planned.report.clone());
        if let Err(e) = self.check_standing() {
            return Err(ledger.deny(e));
        }
        let planned = if planned.generation == self.engine.policy.generation() {
            planned
        } else {
            match self.replan(planned).await {
                Ok(planned) => planned,
                Err(e) => return Err(ledger.fail(e)),
            }
        };
        ledger.reads(planned.report.clone());
        // The session's statement_timeout, never beyond the server's.
        let limit = match (
            self.settings().statement_timeout(),
            self.engine.statement_timeout,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let turn = match self
            .engine
            .turn(&self.user.name, limit.unwrap_or(TURN_WAIT))
            .await
        {
            Ok(turn) => turn,
            Err(e) => return Err(ledger.fail(e)),
        };
        // Counted as running until its stream ends or is dropped.
        let running = (self.engine.metrics().running(), turn);
        let decision = if self.access.current().is_admin() {
            "allowed".to_string()
        } else {
            planned.report.decision()
        };
        ledger.decide(decision);
        let stream = async {
            let pushed = match &planned.params {
                Some(params) => match planned.pushed.ready(&self.ctx).await {
                    Some(ready) => {
                        self.engine.metrics().planned_once();
                        Some(Pushed::execute(ready, params, &self.ctx).await?)
                    }
                    None => None,
                },
                None => None,
            };
            let batches = match pushed {
                Some(batches) => batches,
                None => {
                    let df = self.ctx.execute_logical_plan(planned.plan).await?;
                    df.execute_stream().await?
                }
            };
            Ok::<_, SqlError>(output::adapt(batches, planned.output))
        }
        .await;
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => return Err(ledger.fail(e)),
        };
        let stream = match limit {
            Some(limit) => timeout::limit(stream, limit),
            None => stream,
        };
        let stream = timeout::cancelable(stream, self.cancel_token());
        let (entry, started) = ledger.into_entry();
        Ok(Box::pin(audited::Audited::new(
            stream,
            self.engine.audit.clone(),
            entry,
            started,
            running,
        )))
    }

    /// Every table this session can see.
    pub async fn tables(&self) -> Result<Vec<TableEntry>, SqlError> {
        use datafusion::common::Constraint;
        use datafusion::datasource::TableType;
        let Some(catalog) = self.ctx.catalog(amar_catalog::DATABASE) else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        let mut schemas = catalog.schema_names();
        schemas.sort();
        for schema_name in schemas {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                let arrow = table.schema();
                let primary_key = table
                    .constraints()
                    .and_then(|c| {
                        c.iter().find_map(|c| match c {
                            Constraint::PrimaryKey(cols) => Some(cols.clone()),
                            _ => None,
                        })
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| arrow.fields().get(i).map(|f| f.name().clone()))
                    .collect();
                let kind = if SYSTEM_SCHEMAS.contains(&schema_name.as_str()) {
                    "SYSTEM TABLE"
                } else if table.table_type() == TableType::View {
                    "VIEW"
                } else {
                    "TABLE"
                };
                out.push(TableEntry {
                    schema: schema_name.clone(),
                    name,
                    kind,
                    arrow,
                    primary_key,
                });
            }
        }
        Ok(out)
    }

    /// The current settings (shared: a change makes a new copy).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes settings and applies the ones the engine honours.
    pub fn update_settings<T>(
        &self,
        f: impl FnOnce(&mut Settings) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let result = {
            let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = Settings::clone(&settings);
            let result = f(&mut next)?;
            *settings = Arc::new(next);
            result
        };
        self.apply_settings();
        Ok(result)
    }

    /// Pushes time zone and default schema into the DataFusion session. Like
    /// PostgreSQL, schemas in `search_path` that do not exist are skipped.
    fn apply_settings(&self) {
        let settings = self.settings();
        let catalog = self.engine.catalog.provider();
        let schema = settings
            .search_path()
            .into_iter()
            .find(|s| catalog.schema(s).is_some())
            .unwrap_or_else(|| amar_catalog::DEFAULT_SCHEMA.to_string());
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        options.execution.time_zone = Some(settings.time_zone());
        options.catalog.default_schema = schema;
    }
}

/// The longest SQL text accepted: 4 MiB, several times the longest statement BI tools
/// generate (a dashboard filter with thousands of values).
pub const MAX_SQL_BYTES: usize = 4 * 1024 * 1024;

/// How much of a statement that does not parse goes to the audit log.
const MAX_LOGGED_CHARS: usize = 64 * 1024;
