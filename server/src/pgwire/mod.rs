//! The Postgres wire protocol front end (psql, JDBC, psycopg, Metabase, DBeaver…).
//!
//! Built on the pgwire crate, which owns the message framing, the extended-protocol
//! state machine and portals with row limits. This module supplies what is Amar's:
//! each message's layout checked before pgwire decodes it ([`frames`], [`connection`]),
//! SCRAM authentication against the users file ([`startup`]), statements planned and run
//! through the shared [`Session`](crate::engine::Session) ([`query`]), results encoded
//! from Arrow by arrow-pg as they stream, and errors with their SQLSTATE ([`errors`]).
//!
//! We do not use datafusion-postgres's `DfSessionService`: it plans every connection
//! on one shared DataFusion context (so one client's `SET TIME ZONE` changes everyone's),
//! reports all engine errors as XX000, and has no place for per-user plan rewriting.
//! Its pg_catalog (datafusion-pg-catalog) and Arrow encoding (arrow-pg) we do use.

mod connection;
mod copy;
pub mod encode;
mod errors;
pub mod frames;
mod query;
mod startup;

use std::net::SocketAddr;
use std::sync::Arc;

use pgwire::api::ConnectionManager;
use pgwire::api::cancel::DefaultCancelHandler;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::Limits;

use crate::engine::{Engine, Session};

/// A connection's session, kept in pgwire's per-connection extensions once the user
/// has authenticated.
#[derive(Clone)]
pub struct SessionHandle(pub Arc<Session>);

/// The handlers of one connection.
struct ConnectionHandlers {
    startup: Arc<startup::ScramStartup>,
    query: Arc<query::QueryHandler>,
    cancel: Arc<Cancels>,
}

/// Cancel requests (psql's Ctrl-C, every driver's cancel): a request with a session's
/// key stops what that session runs, whether it is still being planned (pgwire's own
/// handle) or already streaming rows (the session's token).
pub struct Cancels {
    manager: DefaultCancelHandler,
    sessions:
        std::sync::Mutex<std::collections::HashMap<(i32, bytes::Bytes), std::sync::Weak<Session>>>,
}

impl Cancels {
    fn new(connections: Arc<ConnectionManager>) -> Self {
        Self {
            manager: DefaultCancelHandler::new(connections),
            sessions: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Makes the session reachable by its key.
    pub fn register(
        &self,
        pid: i32,
        key: pgwire::messages::startup::SecretKey,
        session: &Arc<Session>,
    ) {
        let mut sessions = self.sessions.lock().unwrap_or_else(|e| e.into_inner());
        sessions.retain(|_, s| s.strong_count() > 0);
        // By bytes: the same 4-byte key decodes as I32 or Bytes by protocol version.
        sessions.insert((pid, key.to_bytes()), Arc::downgrade(session));
    }
}

#[async_trait::async_trait]
impl pgwire::api::cancel::CancelHandler for Cancels {
    async fn on_cancel_request(&self, request: pgwire::messages::cancel::CancelRequest) {
        let session = self
            .sessions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&(request.pid, request.secret_key.to_bytes()))
            .and_then(std::sync::Weak::upgrade);
        if let Some(session) = session {
            tracing::info!(session = session.id, "cancel request");
            session.cancel_running();
        }
        pgwire::api::cancel::CancelHandler::on_cancel_request(&self.manager, request).await;
    }
}

/// When to stop: `accepting` stops taking new connections, `shutdown` closes the
/// open ones.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    pub accepting: CancellationToken,
    pub shutdown: CancellationToken,
}

/// Serves pgwire on `listener` until `shutdown` is cancelled.
/// With `tls`, SSLRequest is answered with the certificate; its flag refuses clients
/// that do not ask for TLS.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    tls: Option<(pgwire::tokio::TlsAcceptor, bool)>,
    limits: Limits,
    shutdown: Shutdown,
) {
    let Shutdown {
        accepting,
        shutdown,
    } = shutdown;
    let require_tls = tls.as_ref().is_some_and(|(_, required)| *required);
    let acceptor = tls.map(|(acceptor, _)| acceptor);
    let connections = Arc::new(ConnectionManager::new());
    let cancel = Arc::new(Cancels::new(connections.clone()));
    let mock_secret: Arc<[u8; 32]> = Arc::new(rand::random());
    let query = Arc::new(query::QueryHandler::new());
    loop {
        let accepted = tokio::select! {
            _ = accepting.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (socket, addr): (tokio::net::TcpStream, SocketAddr) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of file descriptors and the like: wait a little rather than spin.
                tracing::warn!("pgwire accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        // Counted from accept to close; one over the bound is told so (53300) once it
        // has said who it is, as PostgreSQL does.
        let counted = engine.metrics().connection("pgwire");
        let over_limit = engine.metrics().connections_now("pgwire") > limits.max_connections as i64;
        let handlers = ConnectionHandlers {
            startup: Arc::new(startup::ScramStartup::new(
                engine.clone(),
                connections.clone(),
                mock_secret.clone(),
                require_tls,
                over_limit,
                cancel.clone(),
            )),
            query: query.clone(),
            cancel: cancel.clone(),
        };
        let shutdown = shutdown.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _counted = counted;
            tokio::select! {
                result = connection::serve(socket, acceptor, handlers) => {
                    if let Err(e) = result {
                        tracing::debug!(%addr, "pgwire connection ended with an error: {e}");
                    }
                }
                _ = shutdown.cancelled() => {}
            }
        });
    }
}
