//! The audit log has exactly one entry per statement and per metadata request, from
//! every front end (pgwire's simple and extended protocols, Flight SQL) and for every
//! command kind, refused and failed ones included.
//!
//! Each case runs in a fresh session of the shared demo. The session is found in
//! `amar.query_log` by a unique greeting query it runs first; its other entries are
//! then read (by an admin, over another connection) and matched to the statements the
//! case ran: every statement carries a unique marker (a literal or a name that
//! survives into the logged text) or, for keyword commands, a keyword only it has.
//! For each statement exactly one entry must match it, with the expected SQLSTATE,
//! and the session must have no entry that matches none.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use amar_tests::shared_demo;
use arrow_flight::FlightInfo;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tokio_postgres::Client;
use tonic::transport::Channel;

use crate::support::{admin, connect, flight_as, sqlstate};

/// A marker no other statement of the test run contains: lowercase letters and
/// digits (so it is also a valid name), ending in `z` so none is a prefix of another.
fn marker() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let started = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0);
    format!(
        "aud{started:x}p{}n{}z",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// What a statement should end with, as the client sees it and the log records it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    Ok,
    /// Failed or refused with this SQLSTATE.
    Fails(&'static str),
    /// Refused, with any SQLSTATE (where the front end has none to give yet).
    Refused,
}

/// One expected audit entry: its statement contains `needle`.
#[derive(Debug, Clone)]
struct Expect {
    needle: String,
    outcome: Outcome,
}

fn expect(needle: impl Into<String>, outcome: Outcome) -> Expect {
    Expect {
        needle: needle.into(),
        outcome,
    }
}

/// One audit entry as `amar.query_log` shows it.
#[derive(Debug, Clone)]
struct Entry {
    statement: String,
    sqlstate: Option<String>,
    protocol: String,
    user: String,
    error: Option<String>,
}

/// The id of the session that ran `greeting` (exact statement text).
async fn session_of(reader: &Client, greeting: &str) -> i64 {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rows = reader
            .query(
                "SELECT session_id FROM amar.query_log WHERE statement = $1",
                &[&greeting],
            )
            .await
            .expect("admin reads the query log");
        match rows.len() {
            1 => return rows[0].get(0),
            0 if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            n => panic!("the greeting {greeting} has {n} entries, not 1"),
        }
    }
}

/// The session's entries other than its greeting.
async fn read_entries(reader: &Client, session: i64, greeting: &str) -> Vec<Entry> {
    reader
        .query(
            "SELECT statement, sqlstate, protocol, user_name, error FROM amar.query_log \
             WHERE session_id = $1 AND statement <> $2 ORDER BY at",
            &[&session, &greeting],
        )
        .await
        .expect("admin reads the query log")
        .into_iter()
        .map(|r| Entry {
            statement: r.get(0),
            sqlstate: r.get(1),
            protocol: r.get(2),
            user: r.get(3),
            error: r.get(4),
        })
        .collect()
}

/// The session's entries once they are all in: entries may be written when a result
/// stream ends or is dropped, a little after the client has its answer, so the log
/// is read until it has at least `wanted` entries and then does not change for a
/// while (or 5 s have passed).
async fn settled_entries(
    reader: &Client,
    session: i64,
    greeting: &str,
    wanted: usize,
) -> Vec<Entry> {
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = read_entries(reader, session, greeting).await;
    loop {
        if Instant::now() >= deadline {
            return last;
        }
        let pause = if last.len() >= wanted { 300 } else { 50 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
        let now = read_entries(reader, session, greeting).await;
        if now.len() >= wanted && now.len() == last.len() {
            return now;
        }
        last = now;
    }
}

/// Checks that the session's log is exactly `expected`: one entry per statement,
/// with its SQLSTATE, over `protocol` as `user`, and nothing else. Prints how many
/// entries each statement has (`--nocapture` shows them).
async fn check_log(
    case: &str,
    session: i64,
    greeting: &str,
    protocol: &str,
    user: &str,
    expected: &[Expect],
) -> Result<(), String> {
    let reader = admin().await;
    let entries = settled_entries(&reader, session, greeting, expected.len()).await;
    let listing = entries
        .iter()
        .map(|e| {
            format!(
                "  {:?} sqlstate={:?} error={:?}",
                e.statement, e.sqlstate, e.error
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let counts = expected
        .iter()
        .map(|want| {
            let n = entries
                .iter()
                .filter(|e| e.statement.contains(&want.needle))
                .count();
            format!("{}={n}", want.needle)
        })
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!(
        "audit count: {case}: {} entries for {} statements ({counts})",
        entries.len(),
        expected.len()
    );
    for e in &entries {
        if (e.protocol.as_str(), e.user.as_str()) != (protocol, user) {
            return Err(format!(
                "{case}: an entry not over {protocol} as {user}: {e:?}"
            ));
        }
    }
    for want in expected {
        let found: Vec<&Entry> = entries
            .iter()
            .filter(|e| e.statement.contains(&want.needle))
            .collect();
        if found.len() != 1 {
            return Err(format!(
                "{case}: {} entries for {:?}, expected exactly one; the session's log:\n{listing}",
                found.len(),
                want.needle
            ));
        }
        let state = found[0].sqlstate.as_deref();
        let right = match want.outcome {
            Outcome::Ok => state.is_none(),
            Outcome::Fails(code) => state == Some(code),
            Outcome::Refused => state.is_some(),
        };
        if !right {
            return Err(format!(
                "{case}: expected {:?}, logged {:?}",
                want.outcome, found[0]
            ));
        }
    }
    if entries.len() != expected.len() {
        return Err(format!(
            "{case}: the session logged {} entries for {} statements:\n{listing}",
            entries.len(),
            expected.len()
        ));
    }
    Ok(())
}

async fn assert_log(
    case: &str,
    session: i64,
    greeting: &str,
    protocol: &str,
    user: &str,
    expected: &[Expect],
) {
    if let Err(e) = check_log(case, session, greeting, protocol, user, expected).await {
        panic!("{e}");
    }
}

// ---------------------------------------------------------------------------------
// pgwire

/// How statements are sent over pgwire.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Via {
    /// The simple query protocol (Query).
    Simple,
    /// The extended protocol (Parse, Bind, Execute).
    Extended,
}

/// One statement of a pgwire case. `{m}` in `sql` is replaced by a fresh marker,
/// which is then the statement's needle unless one is given.
struct Step {
    sql: &'static str,
    needle: Option<&'static str>,
    outcome: Outcome,
}

fn ok(sql: &'static str) -> Step {
    Step {
        sql,
        needle: None,
        outcome: Outcome::Ok,
    }
}

fn fails(sql: &'static str, code: &'static str) -> Step {
    Step {
        outcome: Outcome::Fails(code),
        ..ok(sql)
    }
}

impl Step {
    /// Matched in the log by this text instead of a marker.
    fn by(mut self, needle: &'static str) -> Step {
        self.needle = Some(needle);
        self
    }
}

/// A statement's SQLSTATE if it failed, sent through `via`.
async fn run_pg(client: &Client, via: Via, sql: &str) -> Option<String> {
    let result = match via {
        Via::Simple => client.batch_execute(sql).await,
        Via::Extended => client.query(sql, &[]).await.map(|_| ()),
    };
    result.err().map(|e| sqlstate(&e))
}

/// A fresh pgwire session of `user` and the id the log knows it by.
async fn pg_session(user: &str) -> (Client, i64, String) {
    let client = connect(shared_demo(), user, user)
        .await
        .expect("demo user connects");
    let greeting = format!("SELECT '{}-hello'", marker());
    client
        .batch_execute(&greeting)
        .await
        .expect("greeting runs");
    let session = session_of(&admin().await, &greeting).await;
    (client, session, greeting)
}

/// Runs `steps` in a fresh session of `user` through `via`, checking each outcome,
/// then checks the session's log has exactly one entry per step.
async fn pg_case(case: &str, user: &str, via: Via, steps: Vec<Step>) -> Result<(), String> {
    let case = format!("{case} ({via:?})");
    let (client, session, greeting) = pg_session(user).await;
    let mut expected = vec![];
    for step in &steps {
        let m = marker();
        let sql = step.sql.replace("{m}", &m);
        let got = run_pg(&client, via, &sql).await;
        let right = match step.outcome {
            Outcome::Ok => got.is_none(),
            Outcome::Fails(code) => got.as_deref() == Some(code),
            Outcome::Refused => got.is_some(),
        };
        if !right {
            return Err(format!(
                "{case}: {sql} answered {got:?}, expected {:?}",
                step.outcome
            ));
        }
        let needle = step.needle.map(str::to_string).unwrap_or(m);
        expected.push(expect(needle, step.outcome));
    }
    // Anything written when the connection ends is in too.
    drop(client);
    check_log(&case, session, &greeting, "pgwire", user, &expected).await
}

/// The same case through both protocols; both run, and fail together.
async fn pg_both(case: &str, user: &str, steps: impl Fn() -> Vec<Step>) {
    let simple = pg_case(case, user, Via::Simple, steps()).await;
    let extended = pg_case(case, user, Via::Extended, steps()).await;
    let failures: Vec<String> = [simple, extended]
        .into_iter()
        .filter_map(Result::err)
        .collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[tokio::test]
async fn pgwire_select_is_logged_once() {
    pg_both("SELECT", "admin", || vec![ok("SELECT '{m}'")]).await;
}

#[tokio::test]
async fn pgwire_select_of_a_table_is_logged_once() {
    pg_both("SELECT from a row-filtered table", "tehran", || {
        vec![ok(
            "SELECT count(*) FROM insurance.contributions WHERE '{m}' <> ''",
        )]
    })
    .await;
}

#[tokio::test]
async fn pgwire_set_is_logged_once() {
    pg_both("SET", "admin", || vec![ok("SET application_name = '{m}'")]).await;
}

#[tokio::test]
async fn pgwire_reset_is_logged_once() {
    pg_both("RESET", "admin", || {
        vec![
            ok("SET application_name = '{m}'"),
            ok("RESET application_name").by("RESET application_name"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_reset_all_is_logged_once() {
    pg_both("RESET ALL", "admin", || {
        vec![
            ok("SET application_name = '{m}'"),
            ok("RESET ALL").by("RESET ALL"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_show_is_logged_once() {
    pg_both("SHOW x", "admin", || {
        vec![ok("SHOW search_path").by("search_path")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_show_all_is_logged_once() {
    pg_both("SHOW ALL", "admin", || vec![ok("SHOW ALL").by("SHOW ALL")]).await;
}

#[tokio::test]
async fn pgwire_transaction_control_is_logged_once() {
    pg_both("BEGIN/COMMIT", "admin", || {
        vec![
            ok("BEGIN").by("BEGIN"),
            ok("SELECT '{m}'"),
            ok("COMMIT").by("COMMIT"),
        ]
    })
    .await;
    pg_both("START TRANSACTION/ROLLBACK", "admin", || {
        vec![
            ok("START TRANSACTION").by("START TRANSACTION"),
            ok("SELECT '{m}'"),
            ok("ROLLBACK").by("ROLLBACK"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_savepoint_is_logged_once() {
    pg_both("SAVEPOINT", "admin", || {
        vec![
            ok("BEGIN").by("BEGIN"),
            ok("SAVEPOINT {m}"),
            ok("COMMIT").by("COMMIT"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_discard_all_is_logged_once() {
    pg_both("DISCARD ALL", "admin", || {
        vec![ok("DISCARD ALL").by("DISCARD ALL")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_prepare_execute_deallocate_are_logged_once_each() {
    pg_both("PREPARE/EXECUTE/DEALLOCATE", "admin", || {
        vec![
            ok("PREPARE aud_statement AS SELECT '{m}'"),
            ok("EXECUTE aud_statement").by("EXECUTE"),
            ok("DEALLOCATE aud_statement").by("DEALLOCATE"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_cursors_are_logged_once_each() {
    pg_both("DECLARE/FETCH/CLOSE", "admin", || {
        vec![
            ok("BEGIN").by("BEGIN"),
            ok("DECLARE aud_cursor CURSOR FOR SELECT '{m}'"),
            ok("FETCH 1 FROM aud_cursor").by("FETCH"),
            ok("CLOSE aud_cursor").by("CLOSE"),
            ok("COMMIT").by("COMMIT"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_dml_and_ddl_are_refused_and_logged_once() {
    pg_both("DELETE", "admin", || {
        vec![fails(
            "DELETE FROM insurance.provinces WHERE name_en = '{m}'",
            "25006",
        )]
    })
    .await;
    pg_both("CREATE TABLE", "admin", || {
        vec![fails("CREATE TABLE {m} (a int)", "25006")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_a_forbidden_table_is_refused_and_logged_once() {
    pg_both("42501", "tehran", || {
        vec![fails(
            "SELECT statement FROM amar.query_log WHERE statement = '{m}'",
            "42501",
        )]
    })
    .await;
}

#[tokio::test]
async fn pgwire_declare_outside_a_block_is_refused_and_logged_once() {
    pg_both("DECLARE outside a block", "admin", || {
        vec![fails("DECLARE aud_cursor CURSOR FOR SELECT '{m}'", "25P01")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_discard_all_in_a_block_is_refused_and_logged_once() {
    pg_both("DISCARD ALL in a block", "admin", || {
        vec![
            ok("BEGIN").by("BEGIN"),
            fails("DISCARD ALL", "25001").by("DISCARD ALL"),
            ok("ROLLBACK").by("ROLLBACK"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_statements_in_a_failed_block_are_refused_and_logged_once() {
    pg_both("failed block", "admin", || {
        vec![
            ok("BEGIN").by("BEGIN"),
            fails("SELECT '{m}' FROM insurance.aud_nowhere", "42P01"),
            fails("SELECT '{m}'", "25P02"),
            fails("SET application_name = '{m}'", "25P02"),
            fails("SHOW search_path", "25P02").by("search_path"),
            ok("ROLLBACK").by("ROLLBACK"),
        ]
    })
    .await;
}

#[tokio::test]
async fn pgwire_a_syntax_error_is_logged_once() {
    pg_both("syntax error", "admin", || {
        vec![fails("SELEC '{m}'", "42601")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_an_unknown_table_is_logged_once() {
    pg_both("unknown table", "admin", || {
        vec![fails("SELECT '{m}' FROM insurance.aud_nowhere", "42P01")]
    })
    .await;
}

#[tokio::test]
async fn pgwire_a_division_by_zero_is_logged_once() {
    // Found when the plan is optimised (constants are folded)…
    pg_both("1/0", "admin", || vec![fails("SELECT '{m}', 1/0", "22012")]).await;
    // …and while rows stream.
    pg_both("code / 0 while streaming", "admin", || {
        vec![fails(
            "SELECT '{m}', code / (code - code) FROM insurance.provinces",
            "22012",
        )]
    })
    .await;
}

#[tokio::test]
async fn pgwire_show_of_an_unknown_setting_is_logged_once() {
    pg_both("SHOW unknown", "admin", || vec![fails("SHOW {m}", "42704")]).await;
}

#[tokio::test]
async fn pgwire_extended_prepared_statement_is_logged_per_execution() {
    let (client, session, greeting) = pg_session("admin").await;
    let m = marker();
    let statement = client
        .prepare(&format!("SELECT '{m}', $1::int8 + 1"))
        .await
        .unwrap();
    for i in [1i64, 2] {
        let row = client.query_one(&statement, &[&i]).await.unwrap();
        assert_eq!(row.get::<_, i64>(1), i + 1);
    }
    drop(statement);
    drop(client);
    let reader = admin().await;
    let entries = settled_entries(&reader, session, &greeting, 2).await;
    let runs = entries.iter().filter(|e| e.statement.contains(&m)).count();
    assert_eq!(runs, 2, "one entry per execution: {entries:#?}");
    assert_eq!(entries.len(), 2, "{entries:#?}");
}

#[tokio::test]
async fn pgwire_extended_two_statements_in_one_parse_are_refused_and_logged_once() {
    let result = pg_case(
        "two statements in one Parse",
        "admin",
        Via::Extended,
        vec![fails("SELECT '{m}'; SELECT 2", "42601")],
    )
    .await;
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[tokio::test]
async fn pgwire_copy_to_stdout_is_logged_once() {
    // Extended protocol: tokio-postgres's copy_out.
    let (client, session, greeting) = pg_session("admin").await;
    let m = marker();
    let out = client
        .copy_out(&format!("COPY (SELECT '{m}') TO STDOUT"))
        .await
        .unwrap();
    let data: Vec<bytes::Bytes> = out.try_collect().await.unwrap();
    assert_eq!(data.concat(), format!("{m}\n").into_bytes());
    drop(client);
    assert_log(
        "COPY (Extended)",
        session,
        &greeting,
        "pgwire",
        "admin",
        &[expect(&m, Outcome::Ok)],
    )
    .await;

    // Simple protocol: a raw client (tokio-postgres's simple_query does not take COPY).
    let mut raw = crate::hardening::login(shared_demo().pg_addr, "admin", "admin").await;
    let greeting = format!("SELECT '{}-hello'", marker());
    assert_eq!(raw.query(greeting.as_bytes()).await, None);
    let session = session_of(&admin().await, &greeting).await;
    let m = marker();
    assert_eq!(
        raw.query(format!("COPY (SELECT '{m}') TO STDOUT").as_bytes())
            .await,
        None
    );
    let refused = marker();
    assert_eq!(
        raw.query(format!("COPY (SELECT '{refused}') TO '/tmp/{refused}'").as_bytes())
            .await
            .as_deref(),
        Some("25006")
    );
    drop(raw);
    assert_log(
        "COPY (Simple)",
        session,
        &greeting,
        "pgwire",
        "admin",
        &[
            expect(&m, Outcome::Ok),
            expect(&refused, Outcome::Fails("25006")),
        ],
    )
    .await;
}

/// One simple Query message of several statements: PostgreSQL runs them in order
/// and stops at the first that fails; those after it are never run.
async fn multi_statement(case: &str, sql: &str, expected: &[Expect]) {
    let (client, session, greeting) = pg_session("admin").await;
    assert!(client.batch_execute(sql).await.is_err(), "{case}: {sql}");
    drop(client);
    assert_log(case, session, &greeting, "pgwire", "admin", expected).await;
}

#[tokio::test]
async fn pgwire_a_query_string_logs_each_statement_up_to_one_refused_at_planning() {
    let [a, b, c] = [marker(), marker(), marker()];
    multi_statement(
        "SELECT; unknown table; SELECT",
        &format!("SELECT '{a}'; SELECT '{b}' FROM insurance.aud_nowhere; SELECT '{c}'"),
        &[expect(&a, Outcome::Ok), expect(&b, Outcome::Fails("42P01"))],
    )
    .await;

    let [a, b, c] = [marker(), marker(), marker()];
    multi_statement(
        "SET; refused DML; SELECT",
        &format!(
            "SET application_name = '{a}'; DELETE FROM insurance.provinces WHERE name_en = '{b}'; SELECT '{c}'"
        ),
        &[expect(&a, Outcome::Ok), expect(&b, Outcome::Fails("25006"))],
    )
    .await;

    let [a, b, c] = [marker(), marker(), marker()];
    multi_statement(
        "SELECT; SHOW unknown; SELECT",
        &format!("SELECT '{a}'; SHOW {b}; SELECT '{c}'"),
        &[expect(&a, Outcome::Ok), expect(&b, Outcome::Fails("42704"))],
    )
    .await;
}

#[tokio::test]
async fn pgwire_a_query_string_logs_each_statement_up_to_one_failing_at_run_time() {
    let [a, b, c, d] = [marker(), marker(), marker(), marker()];
    multi_statement(
        "SET; SELECT; SELECT 1/0; SELECT",
        &format!("SET application_name = '{a}'; SELECT '{b}'; SELECT '{c}', 1/0; SELECT '{d}'"),
        &[
            expect(&a, Outcome::Ok),
            expect(&b, Outcome::Ok),
            expect(&c, Outcome::Fails("22012")),
        ],
    )
    .await;

    let [a, b, c] = [marker(), marker(), marker()];
    multi_statement(
        "SELECT; division by zero while streaming; SELECT",
        &format!(
            "SELECT '{a}'; SELECT '{b}', code / (code - code) FROM insurance.provinces; SELECT '{c}'"
        ),
        &[expect(&a, Outcome::Ok), expect(&b, Outcome::Fails("22012"))],
    )
    .await;
}

#[tokio::test]
async fn pgwire_a_query_string_that_does_not_parse_is_logged_once() {
    // PostgreSQL parses the whole string first: nothing of it runs.
    let [a, b] = [marker(), marker()];
    multi_statement(
        "SELECT; syntax error",
        &format!("SELECT '{a}'; SELEC '{b}'"),
        &[expect(&b, Outcome::Fails("42601"))],
    )
    .await;
}

// ---------------------------------------------------------------------------------
// Flight SQL

/// A fresh Flight SQL session of `user` and the id the log knows it by.
async fn flight_session(user: &str) -> (FlightSqlServiceClient<Channel>, i64, String) {
    let mut client = flight_as(user).await;
    let greeting = format!("SELECT '{}-hello'", marker());
    let info = client.execute(greeting.clone(), None).await.unwrap();
    fetch(&mut client, info).await.unwrap();
    let session = session_of(&admin().await, &greeting).await;
    (client, session, greeting)
}

/// Every row of a FlightInfo's endpoints.
async fn fetch(
    client: &mut FlightSqlServiceClient<Channel>,
    info: FlightInfo,
) -> Result<usize, arrow_flight::error::FlightError> {
    let mut rows = 0;
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("every endpoint has a ticket");
        let batches: Vec<_> = client.do_get(ticket).await?.try_collect().await?;
        rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    Ok(rows)
}

/// Executes `sql` over Flight and fetches its rows: the SQLSTATE if it failed.
async fn flight_run(client: &mut FlightSqlServiceClient<Channel>, sql: String) -> Option<String> {
    let result = match client.execute(sql, None).await {
        Ok(info) => fetch(client, info).await.map(|_| ()),
        Err(e) => Err(e),
    };
    result.err().map(|e| match e {
        arrow_flight::error::FlightError::Tonic(status) => status
            .metadata()
            .get("x-amar-sqlstate")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| format!("no SQLSTATE: {status:?}")),
        other => format!("not a gRPC status: {other:?}"),
    })
}

/// One Flight statement in a fresh session: logged once, with `outcome`.
async fn flight_case(case: &str, user: &str, sql: &str, outcome: Outcome) {
    let (mut client, session, greeting) = flight_session(user).await;
    let m = marker();
    let got = flight_run(&mut client, sql.replace("{m}", &m)).await;
    match outcome {
        Outcome::Ok => assert_eq!(got, None, "{case}"),
        Outcome::Fails(code) => assert_eq!(got.as_deref(), Some(code), "{case}"),
        Outcome::Refused => assert!(got.is_some(), "{case}"),
    }
    drop(client);
    assert_log(
        case,
        session,
        &greeting,
        "flight",
        user,
        &[expect(m, outcome)],
    )
    .await;
}

#[tokio::test]
async fn flight_a_query_is_logged_once() {
    flight_case("query", "admin", "SELECT '{m}'", Outcome::Ok).await;
    flight_case(
        "query of a row-filtered table",
        "tehran",
        "SELECT count(*) FROM health.claims WHERE '{m}' <> ''",
        Outcome::Ok,
    )
    .await;
}

#[tokio::test]
async fn flight_failed_and_refused_statements_are_logged_once() {
    flight_case(
        "parse error",
        "admin",
        "SELEC '{m}'",
        Outcome::Fails("42601"),
    )
    .await;
    flight_case(
        "unknown table",
        "admin",
        "SELECT '{m}' FROM insurance.aud_nowhere",
        Outcome::Fails("42P01"),
    )
    .await;
    flight_case(
        "forbidden table",
        "tehran",
        "SELECT statement FROM amar.query_log WHERE statement = '{m}'",
        Outcome::Fails("42501"),
    )
    .await;
    flight_case(
        "DML",
        "admin",
        "DELETE FROM insurance.provinces WHERE name_en = '{m}'",
        Outcome::Fails("25006"),
    )
    .await;
    flight_case(
        "division by zero",
        "admin",
        "SELECT '{m}', code / (code - code) FROM insurance.provinces",
        Outcome::Fails("22012"),
    )
    .await;
}

#[tokio::test]
async fn flight_a_session_command_is_refused_and_logged_once() {
    // Refused as a whole, whatever the session command; the status carries no
    // SQLSTATE today, so any refusal will do here, but it must be logged once.
    let (mut client, session, greeting) = flight_session("admin").await;
    let m = marker();
    let e = client
        .execute(format!("SET application_name = '{m}'"), None)
        .await
        .expect_err("Flight SQL refuses session commands");
    assert!(
        matches!(&e, arrow_flight::error::FlightError::Tonic(s) if s.code() == tonic::Code::InvalidArgument),
        "{e:?}"
    );
    drop(client);
    assert_log(
        "SET over Flight",
        session,
        &greeting,
        "flight",
        "admin",
        &[expect(m, Outcome::Fails("0A000"))],
    )
    .await;
}

#[tokio::test]
async fn flight_two_statements_in_one_request_are_refused_and_logged_once() {
    let (mut client, session, greeting) = flight_session("admin").await;
    let m = marker();
    assert!(
        flight_run(&mut client, format!("SELECT '{m}'; SELECT 2"))
            .await
            .is_some()
    );
    drop(client);
    assert_log(
        "two statements over Flight",
        session,
        &greeting,
        "flight",
        "admin",
        &[expect(m, Outcome::Refused)],
    )
    .await;
}

#[tokio::test]
async fn flight_a_prepared_query_is_logged_per_execution() {
    let (mut client, session, greeting) = flight_session("admin").await;
    let m = marker();
    let mut prepared = client.prepare(format!("SELECT '{m}'"), None).await.unwrap();
    for _ in 0..2 {
        let info = prepared.execute().await.unwrap();
        assert_eq!(fetch(&mut client, info).await.unwrap(), 1);
    }
    prepared.close().await.unwrap();
    drop(client);
    let reader = admin().await;
    let entries = settled_entries(&reader, session, &greeting, 2).await;
    let runs: Vec<&Entry> = entries
        .iter()
        .filter(|e| e.statement.contains(&m))
        .collect();
    assert_eq!(runs.len(), 2, "one entry per execution: {entries:#?}");
    assert!(
        runs.iter()
            .all(|e| e.sqlstate.is_none() && e.protocol == "flight")
    );
    assert_eq!(entries.len(), 2, "{entries:#?}");
}

#[tokio::test]
async fn flight_metadata_requests_are_logged_once_each() {
    use arrow_flight::sql::{
        CommandGetDbSchemas, CommandGetPrimaryKeys, CommandGetTables, CommandGetXdbcTypeInfo,
    };
    let (mut client, session, greeting) = flight_session("admin").await;
    let info = client.get_catalogs().await.unwrap();
    assert_eq!(fetch(&mut client, info).await.unwrap(), 1);
    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: Some("ins%".into()),
        })
        .await
        .unwrap();
    fetch(&mut client, info).await.unwrap();
    let info = client
        .get_tables(CommandGetTables {
            catalog: Some("amar".into()),
            db_schema_filter_pattern: Some("pension".into()),
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: false,
        })
        .await
        .unwrap();
    fetch(&mut client, info).await.unwrap();
    let info = client.get_table_types().await.unwrap();
    fetch(&mut client, info).await.unwrap();
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: None,
            db_schema: Some("insurance".into()),
            table: "contributions".into(),
        })
        .await
        .unwrap();
    fetch(&mut client, info).await.unwrap();
    let info = client.get_sql_info(vec![]).await.unwrap();
    fetch(&mut client, info).await.unwrap();
    let info = client
        .get_xdbc_type_info(CommandGetXdbcTypeInfo { data_type: None })
        .await
        .unwrap();
    fetch(&mut client, info).await.unwrap();
    drop(client);
    let ok = |n: &str| expect(format!("Flight SQL {n} "), Outcome::Ok);
    assert_log(
        "metadata requests",
        session,
        &greeting,
        "flight",
        "admin",
        &[
            expect("Flight SQL GetCatalogs", Outcome::Ok),
            ok("GetDbSchemas"),
            ok("GetTables"),
            expect("Flight SQL GetTableTypes", Outcome::Ok),
            ok("GetPrimaryKeys"),
            ok("GetSqlInfo"),
            ok("GetXdbcTypeInfo"),
        ],
    )
    .await;
}
