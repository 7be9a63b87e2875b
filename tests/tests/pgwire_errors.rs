//! Mistakes get PostgreSQL's SQLSTATE and a clear message, and the connection keeps
//! working after each.

use crate::support::{admin, sqlstate};

#[tokio::test]
async fn errors_carry_the_right_sqlstate_and_the_session_survives() {
    let client = admin().await;
    let cases = [
        (
            "SELECT * FROM insurance.no_such_table",
            "42P01",
            "does not exist",
        ),
        ("SELEC 1", "42601", "syntax error"),
        (
            "SELECT no_such_column FROM insurance.provinces",
            "42703",
            "no_such_column",
        ),
        ("SELECT no_such_function(1)", "42883", "no_such_function"),
        ("SELECT 1 / 0", "22012", "division by zero"),
        ("SELECT 'abc'::int", "22P02", "abc"),
        ("CREATE TABLE x (a int)", "25006", "read-only"),
        (
            "INSERT INTO insurance.provinces VALUES (99, 'x', 'x', 'x')",
            "25006",
            "read-only",
        ),
        ("DROP TABLE insurance.provinces", "25006", "read-only"),
        ("SET client_encoding = 'LATIN1'", "0A000", "UTF8"),
    ];
    for (sql, code, says) in cases {
        let e = client.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), code, "{sql}: {e:?}");
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(
            message.contains(says),
            "{sql}: message {message:?} should mention {says:?}"
        );
        // The same connection answers the next query.
        let n: i64 = client
            .query_one("SELECT 31::bigint", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, 31);
    }
}

#[tokio::test]
async fn extended_protocol_errors_leave_the_connection_usable() {
    let client = admin().await;
    let e = client
        .prepare("SELECT * FROM nowhere WHERE a = $1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let e = client.prepare("SELECT 1; SELECT 2").await.unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    let statement = client.prepare("SELECT 10 / $1::bigint").await.unwrap();
    let e = client.query_one(&statement, &[&0i64]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22012");
    let five: i64 = client.query_one(&statement, &[&2i64]).await.unwrap().get(0);
    assert_eq!(five, 5);
}

#[tokio::test]
async fn the_server_reads_no_files_for_sql() {
    let client = admin().await;
    for sql in [
        "CREATE EXTERNAL TABLE leak STORED AS CSV LOCATION '/etc/passwd'",
        "COPY insurance.provinces FROM '/etc/passwd'",
        "COPY (SELECT 1) TO '/tmp/amar-should-not-exist'",
    ] {
        let e = client.simple_query(sql).await.unwrap_err();
        // PostgreSQL's grammar has no CREATE EXTERNAL TABLE: a syntax error is the
        // PostgreSQL answer; the others are refused as writes.
        assert!(
            ["25006", "42601"].contains(&sqlstate(&e).as_str()),
            "{sql}: {e:?}"
        );
    }
    assert!(!std::path::Path::new("/tmp/amar-should-not-exist").exists());
}
