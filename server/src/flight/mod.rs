//! The Arrow Flight SQL front end (ADBC, pyarrow.flight, the Flight SQL JDBC driver).
//!
//! Statements go through the same [`Session`](crate::engine::Session) as pgwire —
//! same parser, planner, rules and errors — and results leave as Arrow IPC record
//! batches as they are produced, with no conversion to rows. A client that goes away
//! drops the stream, which cancels the query.
//!
//! Tickets carry the statement itself (the SQL text, or a prepared statement's
//! handle), so a FlightInfo needs no server-side state until DoGet runs it.

mod auth;
mod metadata;
mod service;

use std::net::SocketAddr;
use std::sync::Arc;

use arrow_flight::flight_service_server::FlightServiceServer;
use futures::StreamExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;

pub use service::AmarFlightSql;

/// The largest gRPC message accepted from clients (parameters, handshakes).
const MAX_DECODING_MESSAGE_SIZE: usize = 16 * 1024 * 1024;

/// How the Flight SQL server is told to stop.
pub struct Stop {
    /// Cancelled to stop taking connections; running calls finish.
    pub accepting: CancellationToken,
    /// Cancelled to close everything at once.
    pub shutdown: CancellationToken,
    /// Where connections linger while their peer reads the end (see `linger`).
    pub closes: crate::linger::Closes,
}

/// Serves Flight SQL on `listener` until `shutdown` is cancelled.
/// With `tls`, only gRPC over TLS is served.
pub async fn serve(
    listener: TcpListener,
    engine: Arc<Engine>,
    tls: Option<crate::tls::Tls>,
    stop: Stop,
) {
    let Stop {
        accepting,
        shutdown,
        closes,
    } = stop;
    let addr: Option<SocketAddr> = listener.local_addr().ok();
    let service = FlightServiceServer::new(AmarFlightSql::new(engine))
        .max_decoding_message_size(MAX_DECODING_MESSAGE_SIZE);
    // Without TCP_NODELAY a small answer (GetFlightInfo, a DoGet's first message)
    // waits on Nagle for the client's delayed ACK: 40 ms on Linux, per call.
    let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(move |socket| {
        socket.map(|socket| {
            let _ = socket.set_nodelay(true);
            crate::linger::Lingering::new(socket, closes.clone())
        })
    });
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = tls {
        let identity = tonic::transport::Identity::from_pem(&tls.cert_pem, &tls.key_pem);
        builder =
            match builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity)) {
                Ok(b) => b,
                Err(e) => {
                    tracing::error!(?addr, "Flight SQL cannot use the TLS certificate: {e}");
                    return;
                }
            };
    }
    // Graceful when accepting stops (running calls finish, idle connections are told
    // to go); cut off when the server shuts down.
    let server = builder
        .add_service(service)
        .serve_with_incoming_shutdown(incoming, accepting.cancelled_owned());
    tokio::select! {
        result = server => {
            if let Err(e) = result {
                tracing::error!(?addr, "Flight SQL server stopped: {e}");
            }
        }
        _ = shutdown.cancelled() => {}
    }
}
