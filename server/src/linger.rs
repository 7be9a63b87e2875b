//! Closing a connection without losing the end of its answer.
//!
//! When a server closes a TCP socket that still has bytes from the peer unread, or
//! that receives bytes after it was closed, Linux answers with a reset and throws
//! away whatever of the answer is still in its send buffer. An HTTP/2 client reading
//! a large Flight stream keeps sending small frames (WINDOW_UPDATE, PING) while it
//! reads, so a server that drops the socket the moment the last frame was *handed
//! to the kernel* loses the stream's tail whenever one of those frames lands late:
//! the client sees "connection reset" after the GOAWAY of a graceful stop.
//!
//! [`Lingering`] wraps an accepted socket. When the server is done with it (the
//! wrapper is dropped), it shuts down the writing side, which sends FIN after every
//! queued byte, and keeps reading and discarding until the client closes too, so
//! the kernel never has a reason to reset. The lingering is bounded by
//! [`LINGER_LIMIT`] and ends at once when the server stops for good; the drain
//! waits for it through the [`Closes`] tracker.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// How long a closed connection waits for its peer to close.
pub const LINGER_LIMIT: Duration = Duration::from_secs(30);

/// The lingering closes of one listener, for the drain to wait on.
#[derive(Clone, Debug)]
pub struct Closes {
    /// Closes under way, and a wake-up when one ends.
    lingering: Arc<(AtomicUsize, Notify)>,
    /// Ends every lingering close at once (the hard stop after the grace).
    hard_stop: CancellationToken,
}

impl Closes {
    pub fn new(hard_stop: CancellationToken) -> Self {
        Closes {
            lingering: Arc::new((AtomicUsize::new(0), Notify::new())),
            hard_stop,
        }
    }

    /// Waits until no connection is closing.
    pub async fn wait(&self) {
        let (count, ended) = &*self.lingering;
        loop {
            // Registered before the count is read, so a close ending in between
            // still wakes us.
            let notified = ended.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if count.load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Counts one lingering close while it lives.
struct Counted(Arc<(AtomicUsize, Notify)>);

impl Counted {
    fn new(lingering: &Arc<(AtomicUsize, Notify)>) -> Self {
        lingering.0.fetch_add(1, Ordering::AcqRel);
        Counted(lingering.clone())
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, Ordering::AcqRel);
        self.0.1.notify_waiters();
    }
}

/// An accepted socket that closes gracefully when dropped.
#[derive(Debug)]
pub struct Lingering {
    socket: Option<TcpStream>,
    closes: Closes,
}

impl Lingering {
    pub fn new(socket: TcpStream, closes: Closes) -> Self {
        Lingering {
            socket: Some(socket),
            closes,
        }
    }

    fn socket(&mut self) -> io::Result<&mut TcpStream> {
        self.socket
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }
}

impl Drop for Lingering {
    fn drop(&mut self) {
        let Some(socket) = self.socket.take() else {
            return;
        };
        // Outside a runtime (a test's teardown) there is nothing to linger on.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let hard_stop = self.closes.hard_stop.clone();
        let counted = Counted::new(&self.closes.lingering);
        runtime.spawn(async move {
            linger(socket, hard_stop).await;
            drop(counted);
        });
    }
}

/// Sends FIN after what is queued, then reads until the peer closes.
async fn linger(mut socket: TcpStream, hard_stop: CancellationToken) {
    let drain = async {
        let _ = socket.shutdown().await;
        let mut sink = [0u8; 4096];
        loop {
            match socket.read(&mut sink).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    };
    tokio::select! {
        _ = tokio::time::timeout(LINGER_LIMIT, drain) => {}
        _ = hard_stop.cancelled() => {}
    }
}

impl AsyncRead for Lingering {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.socket() {
            Ok(s) => Pin::new(s).poll_read(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl AsyncWrite for Lingering {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.socket() {
            Ok(s) => Pin::new(s).poll_write(cx, buf),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.socket() {
            Ok(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.as_ref().is_some_and(|s| s.is_write_vectored())
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.socket() {
            Ok(s) => Pin::new(s).poll_flush(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.socket() {
            Ok(s) => Pin::new(s).poll_shutdown(cx),
            Err(e) => Poll::Ready(Err(e)),
        }
    }
}

impl tonic::transport::server::Connected for Lingering {
    type ConnectInfo = tonic::transport::server::TcpConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        tonic::transport::server::TcpConnectInfo {
            local_addr: self.socket.as_ref().and_then(|s| s.local_addr().ok()),
            remote_addr: self.socket.as_ref().and_then(|s| s.peer_addr().ok()),
        }
    }
}
