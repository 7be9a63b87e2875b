//! `amar serve --config`: SQLite and file sources from a config file, and a broken
//! config that fails at start naming the file, the key and the problem.

use std::io::Write;

use amar_tests::{Fixture, TestServer};

use crate::support::connect;

#[tokio::test]
async fn config_sources_of_every_file_kind_are_served() {
    let fixture = Fixture::new().admin("stats", "pw");
    // A SQLite database.
    drop(rusqlite_free_sqlite(&fixture.path("dept.db")));
    // A drop folder with CSV and JSON files.
    let fixture = fixture.file(
        "drop/visits.csv",
        "id,city,day\n1,تهران,2024-03-20\n2,شیراز,2024-03-21\n",
    );
    let mut json = std::fs::File::create(fixture.path("drop/events.json")).unwrap();
    writeln!(json, "{{\"id\": 1, \"kind\": \"ثبت\"}}").unwrap();
    writeln!(json, "{{\"id\": 2, \"kind\": \"لغو\"}}").unwrap();
    let server = fixture
        .source("dept", "sqlite", &[("path", "dept.db")])
        .source("dropped", "files", &[("path", "drop")])
        .start();
    let client = connect(&server, "stats", "pw").await.unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM dept.people WHERE city = 'تهران'", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    let cities: Vec<String> = client
        .query("SELECT city FROM dropped.visits ORDER BY id", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(cities, vec!["تهران", "شیراز"]);
    let kind: String = client
        .query_one("SELECT kind FROM dropped.events WHERE id = 2", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind, "لغو");
}

/// A small SQLite database written with the sqlite3 command-line-free route: SQL
/// through the server crate's own dependency would couple the tests to it, so we
/// write the file with the SQLite library the connectors use.
fn rusqlite_free_sqlite(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE people (id INTEGER PRIMARY KEY, city TEXT NOT NULL, born DATE, wage NUMERIC(12,2));
         INSERT INTO people VALUES (1, 'تهران', '1990-01-02', 1000.50), (2, 'تهران', NULL, NULL), (3, 'کرج', '2000-05-06', 20);",
    )
    .unwrap();
    conn
}

#[test]
fn a_broken_config_fails_at_start_with_file_key_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("amar.toml");
    std::fs::write(
        &config,
        "[[source]]\nname = \"x\"\nkind = \"sqlite\"\npath = \"missing.db\"\n",
    )
    .unwrap();
    let err = TestServer::with_config(&config)
        .err()
        .expect("start fails")
        .to_string();
    assert!(err.contains("missing.db") && err.contains("\"x\""), "{err}");

    std::fs::write(&config, "[server]\npg_listen = \"nowhere\"\n").unwrap();
    let err = TestServer::with_config(&config)
        .err()
        .expect("start fails")
        .to_string();
    assert!(
        err.contains("amar.toml:2") && err.contains("pg_listen"),
        "{err}"
    );
}
