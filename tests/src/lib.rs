//! Helpers for Amar's end-to-end tests: servers started in-process on port 0, and
//! the services (PostgreSQL, MariaDB) the connector tests use.
//!
//! A server runs on its own thread and runtime, so that it outlives any one test's
//! runtime and many tests can share it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use amar_server::config::Overrides;
use amar_server::serve::{ServeOptions, start};

pub mod fixture;
pub use fixture::Fixture;

/// A server running for the tests.
pub struct TestServer {
    pub pg_addr: SocketAddr,
    pub flight_addr: SocketAddr,
    /// Health, readiness and metrics.
    pub http_addr: SocketAddr,
    /// The statistics portal.
    pub portal_addr: SocketAddr,
    pub data_dir: PathBuf,
    /// `None` stops at once; `Some(grace)` drains as SIGTERM does.
    stop: std::sync::mpsc::Sender<Option<std::time::Duration>>,
    thread: Option<std::thread::JoinHandle<()>>,
    _keep: Option<tempfile::TempDir>,
}

impl TestServer {
    /// Starts a server with these options on its own thread; ports are chosen by the OS.
    pub fn start(
        mut options: ServeOptions,
        keep: Option<tempfile::TempDir>,
    ) -> anyhow::Result<TestServer> {
        let loopback: SocketAddr = "127.0.0.1:0".parse()?;
        options.overrides.pg_listen.get_or_insert(loopback);
        options.overrides.flight_listen.get_or_insert(loopback);
        options.overrides.http_listen.get_or_insert(loopback);
        options.overrides.portal_listen.get_or_insert(loopback);
        let data_dir = options
            .overrides
            .data_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from("amar-data"));
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = std::sync::mpsc::channel::<Option<std::time::Duration>>();
        let thread = std::thread::Builder::new()
            .name("amar-test-server".into())
            .spawn(move || {
                let runtime = match amar_server::serve::runtime(Some(2)) {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = tx.send(Err(anyhow::anyhow!(e)));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match start(options).await {
                        Ok(server) => {
                            let _ = tx.send(Ok((
                                server.pg_addr,
                                server.flight_addr,
                                server.http_addr,
                                server.portal_addr,
                            )));
                            // Runs until stop() is called or the TestServer is dropped
                            // (the shared one lives as long as the test binary).
                            let how = tokio::task::spawn_blocking(move || stopped.recv()).await;
                            match how {
                                Ok(Ok(Some(grace))) => {
                                    server.drain(grace).await;
                                }
                                _ => server.stop().await,
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (pg_addr, flight_addr, http_addr, portal_addr) = rx.recv()??;
        Ok(TestServer {
            pg_addr,
            flight_addr,
            http_addr,
            portal_addr,
            data_dir,
            stop,
            thread: Some(thread),
            _keep: keep,
        })
    }

    /// Stops the server and waits until it has closed every connection and written
    /// its audit log.
    pub fn stop(mut self) {
        let _ = self.stop.send(None);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Starts a stop as SIGTERM does (no new connections, running statements get
    /// `grace` to finish) and returns at once; `join` waits for the end.
    pub fn drain(&self, grace: std::time::Duration) {
        let _ = self.stop.send(Some(grace));
    }

    /// Waits until the server has stopped.
    pub fn join(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// A server on the embedded demo in `dir`, which outlives the server (to start
    /// another on the same data).
    pub fn demo_in(dir: &Path, scale: f64) -> anyhow::Result<TestServer> {
        let options = ServeOptions {
            config: None,
            overrides: Overrides {
                data_dir: Some(dir.to_path_buf()),
                ..Overrides::default()
            },
            demo_scale: Some(scale),
        };
        Self::start(options, None)
    }

    /// A server on the embedded demo at `scale`, in a fresh temporary data folder.
    pub fn demo(scale: f64) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let options = ServeOptions {
            config: None,
            overrides: Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Overrides::default()
            },
            demo_scale: Some(scale),
        };
        Self::start(options, Some(dir))
    }

    /// A server for a config file (its sources and users), with a temporary data folder.
    pub fn with_config(config: &Path) -> anyhow::Result<TestServer> {
        let dir = tempfile::tempdir()?;
        let options = ServeOptions {
            config: Some(config.to_path_buf()),
            overrides: Overrides {
                data_dir: Some(dir.path().to_path_buf()),
                ..Overrides::default()
            },
            demo_scale: None,
        };
        Self::start(options, Some(dir))
    }

    /// A libpq-style connection string for `user`.
    pub fn conn_str(&self, user: &str, password: &str) -> String {
        format!(
            "host={} port={} user={user} password={password} dbname=amar",
            self.pg_addr.ip(),
            self.pg_addr.port()
        )
    }
}

/// The demo server shared by the tests of one test binary (scale 0.05, about 50,000
/// rows: enough for every query shape, quick to generate).
pub fn shared_demo() -> &'static TestServer {
    static SERVER: OnceLock<TestServer> = OnceLock::new();
    SERVER.get_or_init(|| TestServer::demo(0.05).expect("the shared demo server starts"))
}

/// Whether a test needing an external service must fail rather than skip.
pub fn services_required() -> bool {
    std::env::var("AMAR_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}
