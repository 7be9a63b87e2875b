//! Running Amar: the HTTP health, readiness and metrics endpoints, the connection
//! bound, the server's statement time limit, per-user turns, and the drain of a stop.

use std::time::{Duration, Instant};

use amar_tests::{Fixture, TestServer, shared_demo};

use crate::support::{admin, connect, http_get, metric, sqlstate, texts};

#[tokio::test]
async fn health_readiness_and_metrics_answer_over_http() {
    let server = shared_demo();
    let (status, body) = http_get(server.http_addr, "/health").await;
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = http_get(server.http_addr, "/ready").await;
    assert_eq!(status, 200, "{body}");
    let ready: serde_json::Value = serde_json::from_str(body.trim()).unwrap();
    assert_eq!(ready["ready"], true);
    let names: Vec<&str> = ready["sources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["insurance", "pension", "health"]);
    assert!(
        ready["sources"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["healthy"] == true)
    );

    // A statement that succeeds and one that is denied are both counted.
    let client = admin().await;
    texts(&client, "SELECT count(*) FROM insurance.provinces").await;
    let tehran = connect(server, "tehran", "tehran").await.unwrap();
    let e = tehran
        .simple_query("SELECT * FROM amar.sources")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let (status, text) = http_get(server.http_addr, "/metrics").await;
    assert_eq!(status, 200);
    assert!(text.ends_with("# EOF\n"), "OpenMetrics text");
    assert!(
        metric(
            &text,
            "amar_statements_total{protocol=\"pgwire\",outcome=\"ok\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(
        metric(
            &text,
            "amar_statements_total{protocol=\"pgwire\",outcome=\"denied\"}"
        )
        .unwrap()
            >= 1.0,
        "{text}"
    );
    assert!(metric(&text, "amar_connections{protocol=\"pgwire\"}").unwrap() >= 2.0);
    assert_eq!(
        metric(&text, "amar_source_up{source=\"insurance\"}"),
        Some(1.0)
    );
    assert!(
        text.contains("amar_statement_duration_seconds_bucket{le=\"0.001\",protocol=\"pgwire\"}")
            || text.contains(
                "amar_statement_duration_seconds_bucket{protocol=\"pgwire\",le=\"0.001\"}"
            ),
        "{text}"
    );
    assert!(metric(&text, "amar_rows_sent_total{protocol=\"pgwire\"}").unwrap() >= 1.0);
    assert!(metric(&text, "amar_resident_memory_bytes").unwrap() > 1e6);
    // The demo's planted violation is a metric too.
    let (_, text) = http_get(server.http_addr, "/metrics").await;
    if let Some(v) = metric(
        &text,
        "amar_validation_violations{rule=\"payments_to_known_pensioners\",severity=\"error\"}",
    ) {
        assert!(v >= 1.0, "{text}");
    }
    let (status, _) = http_get(server.http_addr, "/nothing").await;
    assert_eq!(status, 404);
}

/// A server on an empty config with `[limits]`, and the admin `stats`.
fn limited(limits: &str) -> TestServer {
    Fixture::new()
        .admin("stats", "pw")
        .admin("other", "pw")
        .config(&format!("[limits]\n{limits}"))
        .start()
}

/// A statement that keeps the engine busy for much longer than any test waits.
const ENDLESS: &str = "SELECT count(*) FROM generate_series(1, 100000000000) a";

#[tokio::test]
async fn the_next_client_over_the_connection_bound_gets_53300() {
    let server = limited("max_connections = 2");
    let a = connect(&server, "stats", "pw").await.unwrap();
    let b = connect(&server, "stats", "pw").await.unwrap();
    let e = connect(&server, "stats", "pw").await.err().unwrap();
    assert_eq!(sqlstate(&e), "53300");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(message.contains("too many clients"), "{message}");
    // The two still work, and a place frees when one leaves.
    assert_eq!(texts(&a, "SELECT 1").await[0][0].as_deref(), Some("1"));
    drop(b);
    let mut again = None;
    for _ in 0..50 {
        if let Ok(c) = connect(&server, "stats", "pw").await {
            again = Some(c);
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let again = again.expect("a place frees when a client leaves");
    assert_eq!(texts(&again, "SELECT 2").await[0][0].as_deref(), Some("2"));
    drop((a, again));
    server.stop();
}

#[tokio::test]
async fn the_servers_time_limit_caps_every_session_and_per_user_turns_queue() {
    let server = limited("statement_timeout = \"2s\"\nstatements_per_user = 1");
    let a = connect(&server, "stats", "pw").await.unwrap();
    let b = connect(&server, "stats", "pw").await.unwrap();
    let other = connect(&server, "other", "pw").await.unwrap();
    // A session may lower the limit but not raise it.
    a.simple_query("SET statement_timeout = '1h'")
        .await
        .unwrap();
    let started = Instant::now();
    let slow = tokio::spawn(async move {
        let e = a.simple_query(ENDLESS).await.unwrap_err();
        (sqlstate(&e), started.elapsed())
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // The same user's next statement waits for its turn; another user's does not.
    let quick = Instant::now();
    assert_eq!(texts(&other, "SELECT 1").await[0][0].as_deref(), Some("1"));
    let other_took = quick.elapsed();
    assert_eq!(texts(&b, "SELECT 1").await[0][0].as_deref(), Some("1"));
    let b_took = quick.elapsed();
    let (code, slow_took) = slow.await.unwrap();
    assert_eq!(code, "57014");
    assert!(
        slow_took >= Duration::from_secs(2) && slow_took < Duration::from_secs(10),
        "{slow_took:?}"
    );
    assert!(other_took < Duration::from_secs(1), "{other_took:?}");
    assert!(
        b_took >= Duration::from_millis(1200),
        "b waited its turn: {b_took:?}"
    );
    drop((b, other));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_lets_running_statements_finish_and_takes_no_new_clients() {
    let server = limited("shutdown_grace = \"20s\"");
    // A statement that runs as long as its client takes to read it: a raw client that
    // waits before reading (tokio-postgres would read ahead).
    let mut raw = crate::hardening::login(server.pg_addr, "stats", "pw").await;
    raw.send_query(b"SELECT * FROM generate_series(1, 2000000)")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let http = server.http_addr;
    let (_, text) = http_get(http, "/metrics").await;
    assert_eq!(
        metric(&text, "amar_statements_running"),
        Some(1.0),
        "{text}"
    );
    server.drain(Duration::from_secs(20));
    tokio::time::sleep(Duration::from_millis(300)).await;
    // While it drains: not ready, and no new client gets in.
    let (status, body) = http_get(http, "/ready").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"draining\":true"), "{body}");
    let refused = tokio_postgres::connect(&server.conn_str("stats", "pw"), tokio_postgres::NoTls)
        .await
        .is_err();
    assert!(refused, "no new connections while draining");
    // The running statement finishes whole.
    assert_eq!(raw.count_rows().await, 2_000_000);
    server.join();
}

#[tokio::test]
async fn a_sort_larger_than_the_memory_pool_spills_and_finishes() {
    let server = limited("memory_mb = 16");
    let client = connect(&server, "stats", "pw").await.unwrap();
    // Ranking 4 M rows sorts ~32 MB of keys: twice the pool.
    let rows = texts(
        &client,
        "SELECT max(r), min(r) FROM (SELECT row_number() OVER (ORDER BY value DESC) AS r \
         FROM generate_series(1, 4000000)) t",
    )
    .await;
    assert_eq!(rows, vec![vec![Some("4000000".into()), Some("1".into())]]);
    // What cannot spill fails cleanly, and the session goes on.
    let e = client
        .simple_query("SELECT count(DISTINCT value) FROM (SELECT array_agg(value) AS value FROM generate_series(1, 8000000)) t")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "53200", "{e:?}");
    assert_eq!(texts(&client, "SELECT 1").await[0][0].as_deref(), Some("1"));
    drop(client);
    server.stop();
}

#[tokio::test]
async fn a_cancel_request_stops_the_running_statement_and_the_session_goes_on() {
    let server = limited("max_connections = 10");
    let client = connect(&server, "stats", "pw").await.unwrap();
    let token = client.cancel_token();
    let started = Instant::now();
    let (endless, cancel) = tokio::join!(client.simple_query(ENDLESS), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel_query(tokio_postgres::NoTls).await
    });
    cancel.unwrap();
    let e = endless.unwrap_err();
    assert_eq!(sqlstate(&e), "57014");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(texts(&client, "SELECT 5").await[0][0].as_deref(), Some("5"));
    drop(client);
    server.stop();
}
