//! One client connection, from accept to close: pgwire's SSL/TLS negotiation, then each
//! message checked for layout ([`frames::Checked`]) before pgwire decodes it, then
//! dispatched to the handlers with pgwire's own `process_message`.
//!
//! This is pgwire's `process_socket` loop with the checking layer inserted under the
//! codec (pgwire offers no hook there) and a FATAL 08P01 for a malformed message, which
//! pgwire's loop would answer with a silent close or, for eleven shapes, a panic.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use pgwire::api::{ClientInfo, ErrorHandler, NoopHandler, PgWireConnectionState};
use pgwire::error::{ErrorInfo, PgWireError};
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use pgwire::tokio::TlsAcceptor;
use pgwire::tokio::server::{negotiate_tls, process_error, process_message};
use tokio::net::TcpStream;
use tokio_util::codec::{Framed, FramedParts};

use super::ConnectionHandlers;
use super::errors::LogErrors;
use super::frames::{Checked, Malformed, Phase};
use super::query::Prepared;
use crate::engine::code;

/// How long a client has from connecting to being logged in (pgwire's and
/// PostgreSQL's `authentication_timeout` is a minute).
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves one connection until the client leaves, sends a malformed message, or the
/// socket fails.
pub(super) async fn serve(
    socket: TcpStream,
    tls: Option<TlsAcceptor>,
    handlers: ConnectionHandlers,
) -> io::Result<()> {
    let startup_timeout = tokio::time::sleep(STARTUP_TIMEOUT);
    tokio::pin!(startup_timeout);
    let negotiated = tokio::select! {
        _ = &mut startup_timeout => return Ok(()),
        negotiated = negotiate_tls::<Prepared>(socket, tls) => negotiated?,
    };
    // A client that opened with a TLS handshake where none is configured.
    let Some(negotiated) = negotiated else {
        return Ok(());
    };
    // The same framing, with the checking layer under the codec; what pgwire read
    // ahead while negotiating is checked like the rest.
    let parts = negotiated.into_parts();
    let mut checked = FramedParts::new(
        Checked::new(parts.io, parts.read_buf, Phase::Startup),
        parts.codec,
    );
    checked.write_buf = parts.write_buf;
    let mut socket = Framed::from_parts(checked);

    let ConnectionHandlers {
        startup,
        query,
        cancel,
    } = handlers;
    // COPY FROM is refused before it starts (a read-only server): no copy-in handler.
    let copy = Arc::new(NoopHandler);
    let errors = LogErrors;
    loop {
        let logging_in = matches!(
            socket.state(),
            PgWireConnectionState::AwaitingStartup
                | PgWireConnectionState::AuthenticationInProgress
        );
        let next = if logging_in {
            tokio::select! {
                _ = &mut startup_timeout => None,
                next = socket.next() => next,
            }
        } else {
            socket.next().await
        };
        let message = match next {
            Some(Ok(message)) => message,
            Some(Err(error)) => return refuse(&mut socket, error).await,
            None => return Ok(()),
        };
        // Terminate: the client is leaving and may wait for the close.
        if matches!(message, PgWireFrontendMessage::Terminate(_)) {
            return Ok(());
        }
        let extended_query = match socket.state() {
            PgWireConnectionState::CopyInProgress(extended) => extended,
            _ => message.is_extended_query(),
        };
        if let Err(mut error) = process_message(
            message,
            &mut socket,
            startup.clone(),
            query.clone(),
            query.clone(),
            copy.clone(),
            cancel.clone(),
        )
        .await
        {
            errors.on_error(&socket, &mut error);
            process_error(&mut socket, error, extended_query).await?;
        }
    }
}

/// A message that cannot be decoded: FATAL 08P01 with the reason, then the close
/// (what PostgreSQL does). A broken socket is just closed.
async fn refuse<S>(socket: &mut S, error: PgWireError) -> io::Result<()>
where
    S: ClientInfo + futures::Sink<PgWireBackendMessage, Error = io::Error> + Unpin,
{
    let reason = match &error {
        PgWireError::IoError(e) if e.kind() == io::ErrorKind::InvalidData => {
            match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<Malformed>())
            {
                Some(malformed) => malformed.to_string(),
                None => e.to_string(),
            }
        }
        PgWireError::IoError(e) => {
            tracing::debug!(addr = %socket.socket_addr(), "connection error: {e}");
            return Ok(());
        }
        // pgwire's own decoding errors: too large, unknown type, bad UTF-8…
        other => other.to_string(),
    };
    tracing::info!(addr = %socket.socket_addr(), "closing a connection that sent a malformed message: {reason}");
    let info = ErrorInfo::new("FATAL".into(), code::PROTOCOL_VIOLATION.into(), reason);
    socket
        .send(PgWireBackendMessage::ErrorResponse(info.into()))
        .await?;
    socket.close().await
}
