//! Starting and stopping a server: config → sources → engine → listeners.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use amar_catalog::statistics::Trigger;
use amar_policies::UserDirectory;
use anyhow::Context;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Overrides};
use crate::demo;
use crate::engine::Engine;

/// The stack of every thread that plans or runs statements. Planning, optimising,
/// writing a source's SQL and evaluating expressions all recurse on the expression
/// tree, up to [`crate::engine::depth::MAX_EXPRESSION_DEPTH`] levels deep; Tokio's
/// default of 2 MiB is not enough for that. Only the pages a thread touches take
/// memory, so a large reservation costs nothing until it is used.
pub const STACK_BYTES: usize = 64 * 1024 * 1024;

/// The runtime a server runs on (`amar serve`, and the tests' in-process servers):
/// threads named `amar` with [`STACK_BYTES`] of stack.
pub fn runtime(workers: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    builder
        .enable_all()
        .thread_name("amar")
        .thread_stack_size(STACK_BYTES);
    if let Some(n) = workers {
        builder.worker_threads(n);
    }
    builder.build()
}

/// How to start.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// The config file; none means the embedded demo.
    pub config: Option<PathBuf>,
    pub overrides: Overrides,
    /// Demo size (1 ≈ a million rows); used only without a config.
    pub demo_scale: Option<f64>,
}

/// A running server.
pub struct RunningServer {
    pub pg_addr: SocketAddr,
    pub flight_addr: SocketAddr,
    /// Health, readiness and metrics.
    pub http_addr: SocketAddr,
    /// The statistics portal's web pages.
    pub portal_addr: SocketAddr,
    pub engine: Arc<Engine>,
    pub config: Config,
    /// Set when the embedded demo is being served.
    pub demo: Option<demo::Demo>,
    shutdown: CancellationToken,
    /// Cancelled to stop taking new connections (the first step of a stop).
    accepting: CancellationToken,
    /// Set while draining: `/ready` answers 503.
    draining: Arc<AtomicBool>,
    /// The Flight SQL server, which stops gracefully once `accepting` is cancelled.
    flight: JoinHandle<()>,
    /// Flight connections still closing: their last bytes are on their way.
    flight_closes: crate::linger::Closes,
    tasks: Vec<JoinHandle<()>>,
}

impl RunningServer {
    /// Stops as SIGTERM asks: stops taking connections (and `/ready` turns 503),
    /// waits up to `grace` for running statements to finish, then closes every
    /// connection. Returns how many statements were still running when it closed.
    pub async fn drain(self, grace: std::time::Duration) -> i64 {
        self.draining.store(true, Ordering::Relaxed);
        self.accepting.cancel();
        let metrics = self.engine.metrics().clone();
        let deadline = std::time::Instant::now() + grace;
        // Until every statement has run and its whole answer is on its way.
        let busy = || metrics.running_now() > 0 || metrics.responding_now() > 0;
        while busy() && std::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        // Flight SQL's calls end when their last batch is written; its server returns
        // once they have (gRPC's graceful stop).
        let mut flight = self.flight;
        let left_time = deadline.saturating_duration_since(std::time::Instant::now());
        let flight_done = tokio::time::timeout(left_time, &mut flight).await.is_ok();
        // Each connection's close waits until its client has read the end and closed
        // its side: closing first would reset the connection under the answer's tail.
        let left_time = deadline.saturating_duration_since(std::time::Instant::now());
        let closed = tokio::time::timeout(left_time, self.flight_closes.wait())
            .await
            .is_ok();
        let flight_done = flight_done && closed;
        let left = metrics.running_now().max(metrics.responding_now());
        if left > 0 || !flight_done {
            tracing::warn!(
                running = left,
                "the grace period is over; closing the connections of statements still running"
            );
        }
        self.shutdown.cancel();
        if !flight_done {
            let _ = flight.await;
        }
        Self::close(self.tasks, &self.engine).await;
        left
    }

    /// Stops accepting and closes every connection.
    pub async fn stop(self) {
        self.accepting.cancel();
        self.shutdown.cancel();
        let _ = self.flight.await;
        Self::close(self.tasks, &self.engine).await;
    }

    /// After `shutdown` is cancelled: waits for the front ends to end, then closes the
    /// audit log.
    async fn close(tasks: Vec<JoinHandle<()>>, engine: &Engine) {
        for task in tasks {
            let _ = task.await;
        }
        // Every statement of the closed connections is on disk before we return.
        let audit = engine.audit().clone();
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
    }

    /// A token that stops the server when cancelled.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// What a new user needs to connect.
    pub fn connection_help(&self) -> String {
        let mut lines = vec![];
        let pg = self.pg_addr;
        if let Some(demo) = &self.demo {
            lines.push(format!(
                "Amar is serving its embedded demo ({} rows in {}).",
                demo.rows,
                demo.dir.display()
            ));
            lines.push(
                "Demo users (password = name, for the demo only): admin (everything), tehran (Tehran's rows, national ids masked), auditor, statistician (releases official figures), public."
                    .to_string(),
            );
        } else if let Some(file) = &self.config.file {
            lines.push(format!("Amar is serving {}.", file.display()));
        }
        lines.push(format!(
            "  psql:  psql \"postgresql://admin@{}:{}/amar\"",
            pg.ip(),
            pg.port()
        ));
        lines.push(format!(
            "  JDBC:  jdbc:postgresql://{}:{}/amar   (DBeaver, Metabase: PostgreSQL driver, database amar)",
            pg.ip(),
            pg.port()
        ));
        lines.push(format!(
            "  Python: psycopg.connect(\"host={} port={} dbname=amar user=admin\")",
            pg.ip(),
            pg.port()
        ));
        let scheme = if self.config.server.tls.is_some() {
            "grpc+tls"
        } else {
            "grpc"
        };
        lines.push(format!(
            "  Flight SQL (ADBC, pyarrow): {scheme}://{}:{}",
            self.flight_addr.ip(),
            self.flight_addr.port()
        ));
        lines.push(format!(
            "  Portal (web pages, Persian first): {}://{}/{}",
            if self.config.server.tls.is_some() {
                "https"
            } else {
                "http"
            },
            self.portal_addr,
            if self.demo.is_some() {
                "   (staff sign in as a demo user, e.g. tehran)"
            } else {
                ""
            }
        ));
        lines.push(format!(
            "  Health and metrics: http://{}/ready, http://{}/metrics",
            self.http_addr, self.http_addr
        ));
        lines.join("\n")
    }
}

/// A config with its sources opened and its engine assembled, not yet listening.
pub struct Prepared {
    pub config: Config,
    pub demo: Option<demo::Demo>,
    pub engine: Arc<Engine>,
}

/// Loads the config (or prepares the demo), opens every source and assembles the
/// engine: what serving and `amar validate` share.
pub async fn prepare(options: &ServeOptions) -> anyhow::Result<Prepared> {
    let (config, demo) = match &options.config {
        Some(path) => (Config::load(path, &options.overrides)?, None),
        None => {
            let mut config = Config::defaults(&options.overrides);
            let scale = options.demo_scale.unwrap_or(1.0);
            let data_dir = config.server.data_dir.clone();
            let demo = tokio::task::spawn_blocking(move || demo::ensure(&data_dir, scale))
                .await
                .context("the demo generator stopped")??;
            config.sources = demo.sources();
            config.definitions = demo::catalog()?;
            config.definitions.calendar =
                demo::releases::calendar(demo::releases::anchor(&config.server.data_dir)?);
            demo::ensure_users(&config.server.users_file)?;
            let policy = config.server.data_dir.join("policy.csv");
            demo::ensure_policy(&policy)?;
            config.server.policy_file = Some(policy);
            (config, Some(demo))
        }
    };
    let users = UserDirectory::from_file(&config.server.users_file)?;
    if users.names().is_empty() {
        tracing::warn!(
            "the users file {} has no users: nobody can log in; add one with `amar user add NAME --role admin --password-stdin --users-file {}`",
            config.server.users_file.display(),
            config.server.users_file.display()
        );
    }
    let audit = crate::audit::AuditLog::open(&config.server.audit)?;
    let engine = Engine::open(
        &config.sources,
        users,
        config.server.policy_file.as_deref(),
        audit,
        crate::engine::EngineSetup {
            definitions: config.definitions.clone(),
            results_dir: Some(config.server.data_dir.join("validation")),
            releases_dir: Some(config.server.data_dir.join("releases")),
            history_dir: Some(config.server.data_dir.join("history")),
            memory_bytes: Some(config.server.limits.memory_bytes),
            statement_timeout: config.server.limits.statement_timeout,
            statements_per_user: config.server.limits.statements_per_user,
            mask_key: Some(
                amar_policies::mask::MaskKey::load_or_create(
                    &config.server.data_dir.join("mask.key"),
                )
                .with_context(|| "the key of hash masks".to_string())?,
            ),
        },
    )
    .await?;
    if demo.is_some() {
        demo::releases::seed(&engine, demo::releases::anchor(&config.server.data_dir)?).await?;
    }
    Ok(Prepared {
        config,
        demo,
        engine,
    })
}

/// How often every source is looked at for `amar.source_probes`.
const SOURCE_PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(300);

/// Loads the config (or prepares the demo), opens every source and starts listening.
pub async fn start(options: ServeOptions) -> anyhow::Result<RunningServer> {
    let Prepared {
        config,
        demo,
        engine,
    } = prepare(&options).await?;
    // A broken certificate stops the start, before anything listens.
    let tls = match &config.server.tls {
        Some(files) => Some(crate::tls::Tls::load(files)?),
        None => None,
    };

    let pg_listener = TcpListener::bind(config.server.pg_listen)
        .await
        .with_context(|| format!("cannot listen for pgwire on {}", config.server.pg_listen))?;
    let pg_addr = pg_listener.local_addr()?;
    engine.set_pg_listen(pg_addr);
    let flight_listener = TcpListener::bind(config.server.flight_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for Flight SQL on {}",
                config.server.flight_listen
            )
        })?;
    let flight_addr = flight_listener.local_addr()?;
    let http_listener = TcpListener::bind(config.server.http_listen)
        .await
        .with_context(|| format!("cannot listen for HTTP on {}", config.server.http_listen))?;
    let http_addr = http_listener.local_addr()?;
    let portal_listener = TcpListener::bind(config.server.portal.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for the portal on {}",
                config.server.portal.listen
            )
        })?;
    let portal_addr = portal_listener.local_addr()?;
    let shutdown = CancellationToken::new();
    let accepting = CancellationToken::new();
    let draining = Arc::new(AtomicBool::new(false));
    let flight_closes = crate::linger::Closes::new(shutdown.clone());
    let flight = tokio::spawn(crate::flight::serve(
        flight_listener,
        engine.clone(),
        tls.clone(),
        crate::flight::Stop {
            accepting: accepting.clone(),
            shutdown: shutdown.clone(),
            closes: flight_closes.clone(),
        },
    ));
    let tasks = vec![
        tokio::spawn(crate::pgwire::serve(
            pg_listener,
            engine.clone(),
            tls.clone().map(|t| (t.pgwire, config.server.require_tls)),
            config.server.limits.clone(),
            crate::pgwire::Shutdown {
                accepting: accepting.clone(),
                shutdown: shutdown.clone(),
            },
        )),
        tokio::spawn(crate::http::serve(
            http_listener,
            engine.clone(),
            draining.clone(),
            shutdown.clone(),
        )),
        tokio::spawn(crate::portal::serve(
            portal_listener,
            engine.clone(),
            config.server.portal.clone(),
            tls.as_ref().map(|t| t.https.clone()),
            shutdown.clone(),
        )),
    ];
    // Policy and users files are re-read when they change, without a restart.
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(2));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => engine.refresh_policy().await,
                }
            }
        });
    }
    // Live databases that were down (at start or since) are retried, so that they
    // heal by themselves; a table list that changed at the source shows up too.
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            let mut since_full = 0u32;
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        since_full += 1;
                        for schema in engine.catalog().sources() {
                            // Snapshot sources on their schedule: copy, then switch.
                            if schema.source().snapshot_due() {
                                match schema.source().refresh_snapshot().await {
                                    Ok(Some((tables, rows))) => tracing::info!(
                                        source = schema.source().name(),
                                        tables,
                                        rows,
                                        "snapshot refreshed"
                                    ),
                                    // Nothing new: the tables are as they were.
                                    Ok(None) => continue,
                                    Err(e) => tracing::error!("{e}; keeping the last snapshot"),
                                }
                                if let Err(e) = schema.refresh().await {
                                    tracing::warn!("{e}");
                                }
                                // New data is validated before anyone trusts it.
                                let statistics = engine.statistics().clone();
                                let name = schema.source().name().to_string();
                                tokio::spawn(async move {
                                    statistics
                                        .validate(Trigger::Snapshot(name.clone()), Some(&name))
                                        .await;
                                });
                                continue;
                            }
                            let kind = schema.source().kind();
                            // Databases, and plugins (a library fixed in place, or
                            // a department system back, is picked up).
                            if !matches!(kind, "postgres" | "mysql" | "plugin") {
                                continue;
                            }
                            // Empty (never reached) sources every 5 s; all every minute.
                            if (schema.entries().is_empty() || since_full >= 12)
                                && let Err(e) = schema.refresh().await
                            {
                                tracing::debug!("refresh: {e}");
                            }
                        }
                        if since_full >= 12 {
                            since_full = 0;
                        }
                    }
                }
            }
        });
    }
    // Every source's health and freshness, now and every few minutes, for
    // `amar.source_probes` (a quarter's availability is read from it).
    {
        let engine = engine.clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(SOURCE_PROBE_INTERVAL);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => engine.probe_sources().await,
                }
            }
        });
    }
    // Validation rules: all of them now, then each on its own schedule.
    {
        let statistics = engine.statistics().clone();
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = shutdown.cancelled() => return,
                _ = statistics.validate(Trigger::Start, None) => {}
            }
            // Cheap: a look at each rule's last run.
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = tick.tick() => {
                        let due = statistics.due_rules(std::time::SystemTime::now());
                        if !due.is_empty() {
                            statistics.run_scheduled(&due).await;
                        }
                    }
                }
            }
        });
    }
    tracing::info!(%pg_addr, %flight_addr, %http_addr, %portal_addr, "listening");
    Ok(RunningServer {
        pg_addr,
        flight_addr,
        http_addr,
        portal_addr,
        engine,
        config,
        demo,
        shutdown,
        accepting,
        draining,
        flight,
        flight_closes,
        tasks,
    })
}
