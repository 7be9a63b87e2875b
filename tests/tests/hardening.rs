//! Bad input over pgwire: garbage, truncated and oversized messages, invalid UTF-8,
//! wrong-typed parameters, huge and deeply nested SQL, a client that stops reading,
//! and thousands of connections opened and dropped. None may crash the server, hang
//! it, or slow other clients; each gets a clear error where the protocol allows one.
//!
//! Raw messages are built with postgres-protocol (the crate tokio-postgres speaks
//! through), over a plain TCP socket, after a real SCRAM-SHA-256 login.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use amar_tests::{Fixture, TestServer};
use bytes::{BufMut, BytesMut};
use postgres_protocol::authentication::sasl::{ChannelBinding, ScramSha256};
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::support::{connect, scrape, sqlstate, texts};

/// A raw connection and what it has read but not parsed yet.
pub struct Raw {
    stream: TcpStream,
    buf: BytesMut,
}

impl Raw {
    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// The next backend message; `None` when the server closed the connection.
    async fn next(&mut self) -> Option<Message> {
        loop {
            if let Some(m) = Message::parse(&mut self.buf).unwrap() {
                return Some(m);
            }
            let mut chunk = [0u8; 8192];
            let n = tokio::time::timeout(Duration::from_secs(30), self.stream.read(&mut chunk))
                .await
                .expect("the server answers within 30 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// Reads up to ReadyForQuery; the SQLSTATE of an ErrorResponse on the way, if any.
    async fn until_ready(&mut self) -> Option<String> {
        let mut code = None;
        loop {
            match self.next().await {
                Some(Message::ReadyForQuery(_)) => return code,
                Some(Message::ErrorResponse(body)) => {
                    let mut fields = body.fields();
                    while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
                        if f.type_() == b'C' {
                            code = Some(String::from_utf8_lossy(f.value_bytes()).into_owned());
                        }
                    }
                }
                Some(_) => {}
                None => panic!("the server closed the connection"),
            }
        }
    }

    /// Sends a simple query without reading its answer.
    pub async fn send_query(&mut self, sql: &[u8]) {
        let mut buf = BytesMut::new();
        buf.put_u8(b'Q');
        buf.put_i32(4 + sql.len() as i32 + 1);
        buf.put_slice(sql);
        buf.put_u8(0);
        self.send(&buf).await;
    }

    /// Reads a query's answer to its end: how many rows it had.
    pub async fn count_rows(&mut self) -> u64 {
        let mut rows = 0;
        loop {
            match self.next().await {
                Some(Message::DataRow(_)) => rows += 1,
                Some(Message::ReadyForQuery(_)) => return rows,
                Some(Message::ErrorResponse(_)) => panic!("the query failed"),
                Some(_) => {}
                None => panic!("the server closed the connection after {rows} rows"),
            }
        }
    }

    /// `SELECT $1::int8 + 1` with `value` bound in `format` (0 text, 1 binary),
    /// executed and synced: the SQLSTATE it failed with, if it did.
    async fn bind_int8(&mut self, format: i16, value: &[u8]) -> Option<String> {
        let mut buf = BytesMut::new();
        frontend::parse("", "SELECT $1::int8 + 1", [20u32], &mut buf).unwrap();
        frontend::bind(
            "",
            "",
            [format],
            [Some(value)],
            |v, buf| {
                buf.put_slice(v.unwrap());
                Ok::<_, Box<dyn std::error::Error + Sync + Send>>(postgres_protocol::IsNull::No)
            },
            [0i16],
            &mut buf,
        )
        .map_err(|_| ())
        .unwrap();
        frontend::execute("", 0, &mut buf).unwrap();
        frontend::sync(&mut buf);
        self.send(&buf).await;
        self.until_ready().await
    }

    /// Reads to the end of the connection: the severity and SQLSTATE of the last
    /// ErrorResponse before the server closed it.
    async fn last_error_before_close(&mut self) -> Option<(String, String)> {
        let mut last = None;
        while let Some(message) = self.next().await {
            if let Message::ErrorResponse(body) = message {
                let (mut severity, mut code) = (String::new(), String::new());
                let mut fields = body.fields();
                while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
                    let value = String::from_utf8_lossy(f.value_bytes()).into_owned();
                    match f.type_() {
                        b'S' => severity = value,
                        b'C' => code = value,
                        _ => {}
                    }
                }
                last = Some((severity, code));
            }
        }
        last
    }

    pub async fn query(&mut self, sql: &[u8]) -> Option<String> {
        self.send_query(sql).await;
        self.until_ready().await
    }
}

/// A raw connection, logged in as `user` with SCRAM-SHA-256.
pub async fn login(addr: SocketAddr, user: &str, password: &str) -> Raw {
    let mut raw = Raw {
        stream: TcpStream::connect(addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", user), ("database", "amar")], &mut buf).unwrap();
    raw.send(&buf).await;
    let mut scram = ScramSha256::new(password.as_bytes(), ChannelBinding::unsupported());
    loop {
        let mut buf = BytesMut::new();
        match raw.next().await.expect("the server answers the login") {
            Message::AuthenticationSasl(_) => {
                frontend::sasl_initial_response("SCRAM-SHA-256", scram.message(), &mut buf)
                    .unwrap();
                raw.send(&buf).await;
            }
            Message::AuthenticationSaslContinue(body) => {
                scram.update(body.data()).unwrap();
                frontend::sasl_response(scram.message(), &mut buf).unwrap();
                raw.send(&buf).await;
            }
            Message::AuthenticationSaslFinal(body) => scram.finish(body.data()).unwrap(),
            Message::ReadyForQuery(_) => return raw,
            Message::ErrorResponse(_) => panic!("login refused"),
            _ => {}
        }
    }
}

/// A server of its own with no sources and one admin, `stats`.
fn server() -> TestServer {
    Fixture::new().admin("stats", "pw").start()
}

/// The server still answers a new client, quickly.
async fn still_serves(server: &TestServer) {
    let started = Instant::now();
    let client = connect(server, "stats", "pw").await.unwrap();
    assert_eq!(
        texts(&client, "SELECT 41 + 1").await[0][0].as_deref(),
        Some("42")
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

/// Reads until the server closes the connection (or 10 s pass).
async fn closed(mut stream: TcpStream) -> bool {
    let mut sink = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut sink)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            _ => {}
        }
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_truncated_and_oversized_startups_are_closed_and_the_server_goes_on() {
    let server = server();
    let addr = server.pg_addr;
    // HTTP at the pgwire port.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: amar\r\n\r\n")
        .await
        .unwrap();
    assert!(closed(s).await, "garbage is closed");
    // A startup packet that claims 100 bytes and stops at 20.
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = BytesMut::new();
    buf.put_i32(100);
    buf.put_i32(196608);
    buf.put_slice(b"user\0stats\0");
    s.write_all(&buf).await.unwrap();
    drop(s);
    // A startup packet that claims 2 GiB.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&[0x7f, 0xff, 0xff, 0xff, 0, 3, 0, 0])
        .await
        .unwrap();
    assert!(closed(s).await, "an oversized startup is closed");
    // Mid-login, before any password: a password message that claims 0 bytes (pgwire
    // 0.41 panics decoding it, fuzz/artifacts/…/src_messages_startup_rs_286; Amar's
    // check refuses it first).
    let mut s = TcpStream::connect(addr).await.unwrap();
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", "stats"), ("database", "amar")], &mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    let mut first = [0u8; 64];
    let _ = s.read(&mut first).await.unwrap();
    assert_eq!(first[0], b'R', "the server asks for SASL");
    s.write_all(&[b'p', 0, 0, 0, 0]).await.unwrap();
    assert!(closed(s).await, "a malformed password message is closed");
    // After login: a message that claims 2 GiB.
    let mut raw = login(addr, "stats", "pw").await;
    raw.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff, b'S']).await;
    assert!(closed(raw.stream).await, "an oversized message is closed");
    // An unknown message type.
    let mut raw = login(addr, "stats", "pw").await;
    raw.send(&[b'!', 0, 0, 0, 4]).await;
    let answered = match raw.next().await {
        None | Some(Message::ErrorResponse(_)) => true,
        Some(_) => false,
    };
    assert!(answered, "an unknown message is refused");
    // A Bind whose parameter claims more bytes than the message holds (pgwire 0.41
    // panics decoding it; Amar's check refuses it first).
    let mut raw = login(addr, "stats", "pw").await;
    let mut bind = BytesMut::new();
    bind.put_u8(b'B');
    bind.put_i32(4 + 1 + 1 + 2 + 2 + 4 + 2);
    bind.put_slice(b"\0\0");
    bind.put_u16(0);
    bind.put_u16(1);
    bind.put_i32(5_000_000);
    bind.put_u16(0);
    raw.send(&bind).await;
    assert!(
        closed(raw.stream).await,
        "the malformed Bind ends its connection"
    );
    still_serves(&server).await;
    server.stop();
}

/// The eleven inputs on which the fuzzer found pgwire 0.41.1's decoders panic
/// (fuzz/artifacts/pgwire_messages/), each sent after a real login: Amar checks every
/// message's layout before pgwire decodes it, so each gets FATAL 08P01 and a close
/// instead of a panic. Then a SASL initial response cut short, before any login.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_input_that_panicked_pgwire_gets_a_protocol_violation() {
    let server = server();
    let artifacts =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/artifacts/pgwire_messages");
    let mut sent = 0;
    for entry in std::fs::read_dir(&artifacts).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap();
        // Some start with their own startup packet; the login has done that part.
        let after_startup = if bytes[0] == 0 {
            let len = i32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]) as usize;
            &bytes[len..]
        } else {
            &bytes[..]
        };
        let mut raw = login(server.pg_addr, "stats", "pw").await;
        raw.send(after_startup).await;
        assert_eq!(
            raw.last_error_before_close().await,
            Some(("FATAL".to_string(), "08P01".to_string())),
            "{}",
            path.display()
        );
        sent += 1;
    }
    assert_eq!(sent, 11);

    let mut raw = Raw {
        stream: TcpStream::connect(server.pg_addr).await.unwrap(),
        buf: BytesMut::new(),
    };
    let mut buf = BytesMut::new();
    frontend::startup_message([("user", "stats"), ("database", "amar")], &mut buf).unwrap();
    raw.send(&buf).await;
    assert!(matches!(
        raw.next().await,
        Some(Message::AuthenticationSasl(_))
    ));
    let mut short = BytesMut::new();
    short.put_u8(b'p');
    short.put_i32(4 + 14 + 4 + 3);
    short.put_slice(b"SCRAM-SHA-256\0");
    short.put_i32(1000); // claims 1000 bytes of client-first-message, has 3
    short.put_slice(b"n,,");
    raw.send(&short).await;
    assert_eq!(
        raw.last_error_before_close().await,
        Some(("FATAL".to_string(), "08P01".to_string()))
    );
    still_serves(&server).await;
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_utf8_and_wrong_typed_parameters_get_errors_and_the_session_goes_on() {
    let server = server();
    let mut raw = login(server.pg_addr, "stats", "pw").await;
    // Not UTF-8 (Latin-1 bytes) in a simple query.
    let code = raw.query(b"SELECT 'caf\xe9'").await;
    assert_eq!(
        code.as_deref(),
        Some("22021"),
        "invalid UTF-8 is an error, not a guess"
    );
    assert_eq!(raw.query(b"SELECT 1").await, None, "the session goes on");

    // An int8 parameter sent as 3 bytes of binary, then text that is not a number.
    let code = raw.bind_int8(1, &[1, 2, 3]).await;
    assert_eq!(code.as_deref(), Some("22P03"), "binary int8 needs 8 bytes");
    let code = raw.bind_int8(0, b"twelve").await;
    assert_eq!(code.as_deref(), Some("22P02"), "'twelve' is not an int8");
    assert_eq!(raw.query(b"SELECT 2").await, None, "the session goes on");
    still_serves(&server).await;
    server.stop();
}

#[tokio::test]
async fn huge_and_deeply_nested_sql_gets_errors_not_crashes() {
    let server = server();
    let client = connect(&server, "stats", "pw").await.unwrap();
    // 1 MB of SQL is a statement like any other.
    let big = format!("SELECT 7 AS seven -- {}", "x".repeat(1 << 20));
    assert_eq!(texts(&client, &big).await[0][0].as_deref(), Some("7"));
    // 5 MB is over the limit: 54000, and the session goes on.
    let huge = format!("SELECT 1 -- {}", "x".repeat(5 << 20));
    let e = client.simple_query(&huge).await.unwrap_err();
    assert_eq!(sqlstate(&e), "54000");
    // Nesting deep enough to exhaust a naive recursive parser's stack.
    for depth in [1_000, 100_000] {
        let nested = format!("SELECT {}1{}", "(".repeat(depth), ")".repeat(depth));
        let e = client.simple_query(&nested).await.unwrap_err();
        assert_eq!(sqlstate(&e), "54001", "depth {depth}: {e}");
    }
    assert_eq!(texts(&client, "SELECT 3").await[0][0].as_deref(), Some("3"));
    still_serves(&server).await;
    drop(client);
    server.stop();
}

/// One metric's value now (-1 when absent).
async fn metric(server: &TestServer, line_start: &str) -> i64 {
    scrape(server, line_start).await.map_or(-1, |v| v as i64)
}

/// `amar_statements_running` now.
async fn running(server: &TestServer) -> i64 {
    metric(server, "amar_statements_running ").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_does_not_slow_the_others() {
    let server = server();
    let mut raw = login(server.pg_addr, "stats", "pw").await;
    let sql = b"SELECT value, 'some text to make the rows longer' AS t FROM generate_series(1, 100000000)";
    raw.send_query(sql).await;
    // It never reads: its statement stays running. Others are served meanwhile, quickly.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(running(&server).await >= 1);
    for _ in 0..5 {
        still_serves(&server).await;
    }
    // When it goes away, so does its statement.
    drop(raw);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if running(&server).await == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_connections_opened_and_dropped_leave_nothing_behind() {
    let server = server();
    let addr = server.pg_addr;
    let mut tasks = vec![];
    for i in 0..2000u32 {
        tasks.push(tokio::spawn(async move {
            let Ok(mut s) = TcpStream::connect(addr).await else {
                return;
            };
            match i % 4 {
                // Connect and leave.
                0 => {}
                // Half a startup packet.
                1 => {
                    let _ = s.write_all(&[0, 0, 0, 40, 0, 3]).await;
                }
                // A whole startup, then leave in the middle of the login.
                2 => {
                    let mut buf = BytesMut::new();
                    frontend::startup_message(
                        [("user", "stats"), ("database", "amar")].into_iter(),
                        &mut buf,
                    )
                    .unwrap();
                    let _ = s.write_all(&buf).await;
                    let mut b = [0u8; 64];
                    let _ = s.read(&mut b).await;
                }
                // An SSLRequest, then leave.
                _ => {
                    let _ = s.write_all(&[0, 0, 0, 8, 4, 210, 22, 47]).await;
                    let mut b = [0u8; 1];
                    let _ = s.read(&mut b).await;
                }
            }
        }));
        // At most a few hundred at once, as a burst from one host would be.
        if tasks.len() >= 200 {
            for t in tasks.drain(..) {
                let _ = t.await;
            }
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    still_serves(&server).await;
    // Every one of them is closed on the server too.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let open = metric(&server, "amar_connections{protocol=\"pgwire\"}").await;
        if open == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "still open: {open:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    server.stop();
}
