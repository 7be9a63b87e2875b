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
pub mod parameters;
mod planned;
mod planner;
pub mod procedures;
pub mod roles;
pub mod run;
mod session;
pub mod settings;
pub mod sql;
mod status;
mod timeout;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amar_catalog::AmarCatalog;
use amar_catalog::releases::Releases;
use amar_catalog::statistics::{Definitions, Statistics};
use amar_catalog::visible::{SessionVisibility, Visibility, VisibleCatalogList};
use amar_connectors::{SourceConfig, open_source};
use amar_policies::{PolicyStore, SessionAccess, User, UserDirectory};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::execution::session_state::{SessionState, SessionStateBuilder};
use datafusion::prelude::{SessionConfig, SessionContext};

pub use command::{Command, CopyFormat};
pub use error::{SqlError, code};
pub use planned::Planned;
pub use run::{Accept, Outcome, Prepared, Transaction};
pub use session::{CHANGED_RESULT, MAX_SQL_BYTES, Session};
pub use settings::Settings;

use crate::audit::AuditLog;

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
    /// Official releases of the indicators.
    releases: Arc<Releases>,
    /// The sources' health and freshness over time.
    probes: Arc<amar_catalog::probes::SourceProbes>,
    /// The schemas whose tables each reader sees in a form of their own.
    per_reader: Arc<amar_catalog::visible::PerReaderSchemas>,
    rewriter: sql::Rewriter,
    /// Every table's OID, for the catalog functions each session answers with.
    directory: Arc<amar_catalog::pg::OidDirectory>,
    mask_key: amar_policies::mask::MaskKey,
    next_session: AtomicU64,
    started: Instant,
    /// The PostgreSQL front end's address, once it listens (`inet_server_addr()`).
    pg_listen: std::sync::OnceLock<std::net::SocketAddr>,
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
    /// The folder of official releases; none keeps no releases (they are refused).
    pub releases_dir: Option<std::path::PathBuf>,
    /// The folder of the sources' probes (`amar.source_probes`); none keeps them in
    /// memory.
    pub history_dir: Option<std::path::PathBuf>,
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
            opened.push((open_source(config).await?, config.accelerate));
        }
        let catalog = Arc::new(AmarCatalog::load(opened).await?);
        let users = Arc::new(users);
        let policy = Arc::new(PolicyStore::load(policy_file, None, &users.all()).await?);
        catalog.system().add_table("query_log", audit.table());
        catalog
            .system()
            .add_table("query_history", audit.history_table());
        let probes = amar_catalog::probes::SourceProbes::new(setup.history_dir.clone());
        catalog.system().add_table("source_probes", probes.table());
        catalog.system().add_table(
            "policy_status",
            amar_catalog::computed::Computed::table(status::PolicyStatusTable::new(policy.clone())),
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
        stats.set_sources(catalog.sources().to_vec());
        stats.check().await?;
        let releases = Releases::open(setup.releases_dir, stats.clone());
        releases.install(catalog.provider().as_ref(), catalog.system())?;
        let mut per_reader: amar_catalog::visible::PerReaderSchemas =
            releases.per_reader().into_iter().collect();
        per_reader.insert(
            amar_catalog::statistics::INDICATORS_SCHEMA.to_string(),
            stats.per_reader(),
        );
        let metrics = Arc::new(crate::metrics::Metrics::new());
        audit.count_in(metrics.clone());

        Ok(Arc::new(Engine {
            metrics,
            releases,
            probes,
            per_reader: Arc::new(per_reader),
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
            pg_listen: std::sync::OnceLock::new(),
        }))
    }

    /// The user `name` if `password` is theirs and they are not disabled. A password
    /// is checked even for an unknown user, so that the time taken does not tell who
    /// exists. (Flight SQL's Basic authorization and the portal's sign-in.)
    pub fn verify_password(&self, name: &str, password: &str) -> Option<User> {
        match self.users.lookup(name) {
            Some(user) => {
                (user.verifier.verify_password(password) && !user.disabled).then_some(user)
            }
            None => {
                let _ =
                    amar_policies::ScramVerifier::mock(name.as_bytes()).verify_password(password);
                None
            }
        }
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

    /// Official releases.
    pub fn releases(&self) -> &Arc<Releases> {
        &self.releases
    }

    /// Looks at every source once and keeps what it saw in `amar.source_probes`.
    pub async fn probe_sources(&self) {
        let probes = self.probes.probe(self.catalog.sources()).await;
        tracing::debug!(sources = probes.len(), "sources probed");
    }

    /// Changes whenever a plan made before may no longer be what a user may see: the
    /// policy reloaded, a release stored or out of embargo. Both parts only grow.
    pub(crate) fn generation(&self) -> u64 {
        self.policy.generation() + self.releases.generation()
    }

    /// Changes whenever a plan made before may no longer be what a user may see or
    /// what is served: [`Self::generation`], or a source's tables replaced (a plan
    /// holds the tables it was made with, a snapshot's previous copy say). A
    /// prepared statement older than this is planned again before it runs.
    pub(crate) fn plan_generation(&self) -> u64 {
        self.generation() + self.catalog.tables_generation()
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

    /// Records where the PostgreSQL front end listens, for `inet_server_addr()`.
    pub fn set_pg_listen(&self, addr: std::net::SocketAddr) {
        let _ = self.pg_listen.set(addr);
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
                per_reader: self.per_reader.clone(),
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
        let settings = Arc::new(Mutex::new(Arc::new(Settings::new(
            &user.name,
            access.current().is_admin(),
            startup,
        ))));
        // current_setting() and pg_settings read this session's parameters.
        let shared: Arc<dyn amar_catalog::pg::compat::SettingsCatalog> =
            Arc::new(session::SharedSettings(settings.clone()));
        state
            .config_mut()
            .set_extension(Arc::new(amar_catalog::pg::compat::SessionSettings(
                shared.clone(),
            )));
        let started = std::time::SystemTime::now() - self.started.elapsed();
        for f in amar_catalog::pg::compat::settings_functions(shared)
            .into_iter()
            .chain(amar_catalog::pg::compat::server_functions(
                started,
                self.pg_listen.get().copied(),
            ))
        {
            let _ = datafusion::execution::FunctionRegistry::register_udf(&mut state, Arc::new(f));
        }
        let session = Session {
            id,
            user,
            peer,
            ctx: SessionContext::new_with_state(state),
            settings,
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
