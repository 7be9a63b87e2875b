//! TLS on both front ends with the certificate `amar cert dev` makes: psql with
//! `sslmode=verify-full`, plain connections refused under `require_tls` (28000), a
//! client that trusts another CA refused, and Flight SQL over gRPC with TLS.

use std::path::Path;
use std::process::Command;

use amar_server::tls::make_dev_pair;
use amar_tests::{Fixture, TestServer, services_required};
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

/// Files for a server that requires TLS, with the certificate `amar cert dev` makes
/// in `tls/` (its CA is `tls/ca.crt`), and one admin, `stats`.
fn fixture() -> Fixture {
    let fixture = Fixture::new().admin("stats", "pw");
    let [_, cert, key] = make_dev_pair(
        &fixture.path("tls"),
        &["localhost".to_string(), "127.0.0.1".to_string()],
    )
    .unwrap();
    let setting = |name: &str, path: &Path| {
        let relative = path.strip_prefix(fixture.dir()).unwrap();
        format!("{name} = \"{}\"", relative.display())
    };
    let (cert, key) = (setting("tls_cert", &cert), setting("tls_key", &key));
    fixture
        .server(&cert)
        .server(&key)
        .server("require_tls = true")
}

/// psql with these connection settings; `None` when psql is not installed.
fn psql(server: &TestServer, settings: &str) -> Option<(bool, String, String)> {
    let conninfo = format!(
        "host=localhost port={} dbname=amar user=stats {settings}",
        server.pg_addr.port()
    );
    match Command::new("psql")
        .args(["-X", "-At", "-d", &conninfo, "-c", "SELECT 40 + 2"])
        .env("PGPASSWORD", "pw")
        .output()
    {
        Ok(out) => Some((
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )),
        Err(e) if !services_required() => {
            eprintln!("skipping: psql is not installed ({e})");
            None
        }
        Err(e) => panic!("psql is required (AMAR_REQUIRE_SERVICES=1) but cannot run: {e}"),
    }
}

#[test]
fn psql_connects_with_verify_full_and_plain_connections_are_refused() {
    let fixture = fixture();
    let server = fixture.try_start().expect("the server starts with TLS");
    let ca = fixture.path("tls/ca.crt");
    let Some((ok, out, err)) = psql(
        &server,
        &format!("sslmode=verify-full sslrootcert={}", ca.display()),
    ) else {
        return;
    };
    assert!(ok, "verify-full: {err}");
    assert_eq!(out.trim(), "42");

    // require_tls: a client that does not ask for TLS is told why.
    let (ok, _, err) = psql(&server, "sslmode=disable").unwrap();
    assert!(!ok);
    assert!(err.contains("accepts only TLS"), "{err}");

    // A client that trusts another CA does not get through.
    let [other_ca, _, _] =
        make_dev_pair(&fixture.path("other"), &["localhost".to_string()]).unwrap();
    let (ok, _, err) = psql(
        &server,
        &format!("sslmode=verify-full sslrootcert={}", other_ca.display()),
    )
    .unwrap();
    assert!(!ok);
    // OpenSSL finds the other CA by its (same) name and fails on the signature.
    assert!(
        err.contains("certificate verify failed") || err.contains("SSL error"),
        "{err}"
    );
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flight_sql_serves_grpc_over_tls() {
    let fixture = fixture();
    let server = fixture.try_start().expect("the server starts with TLS");
    let ca = std::fs::read(fixture.path("tls/ca.crt")).unwrap();
    let port = server.flight_addr.port();
    let channel = Channel::from_shared(format!("https://127.0.0.1:{port}"))
        .unwrap()
        .tls_config(
            ClientTlsConfig::new()
                .ca_certificate(Certificate::from_pem(&ca))
                .domain_name("localhost"),
        )
        .unwrap()
        .connect()
        .await
        .expect("a TLS channel to Flight SQL");
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("stats", "pw").await.expect("logs in");
    let info = client
        .execute("SELECT 40 + 2 AS answer".to_string(), None)
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let answer = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<datafusion::arrow::array::Int32Array>()
        .expect("an Int32 column (40 + 2 is an integer)")
        .value(0);
    assert_eq!(answer, 42);

    // Plain gRPC to the TLS port gets nowhere.
    let plain = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .unwrap()
        .connect()
        .await;
    if let Ok(plain) = plain {
        let mut client = FlightSqlServiceClient::new(plain);
        assert!(client.handshake("stats", "pw").await.is_err());
    }
    server.stop();
}
