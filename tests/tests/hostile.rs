//! Hostile statements from users allowed to run SQL. Expressions deep enough to
//! overflow a stack are refused (54001) before they are parsed. Settings and function
//! results big enough to exhaust memory are refused (54000). Side channels around row
//! filters and disclosure control are closed: validation samples, row order, EXPLAIN
//! ANALYZE, DESCRIBE and catalog functions. Refusals are checked over pgwire (simple
//! and extended protocol), the main ones over Flight SQL too (as a gRPC status), and
//! after each one the session keeps serving.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use amar_tests::{TestServer, shared_demo};
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int32Type;
use tokio_postgres::{Client, SimpleQueryMessage};
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{admin, connect, flight_as, flight_run, sqlstate, status, texts};

async fn as_user(user: &str) -> Client {
    connect(shared_demo(), user, user)
        .await
        .expect("demo user logs in")
}

/// The start of a statement, for assertion messages (some statements here are 4 MiB).
fn head(sql: &str) -> &str {
    sql.get(..60).unwrap_or(sql)
}

/// `1+1+…+1` with `terms` terms: `terms - 1` levels deep.
fn plus(terms: usize) -> String {
    vec!["1"; terms].join("+")
}

fn message(e: &tokio_postgres::Error) -> String {
    e.as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_else(|| e.to_string())
}

/// The SQLSTATE and message of a simple query that must fail.
async fn refusal(client: &Client, sql: &str) -> (String, String) {
    let e = client
        .simple_query(sql)
        .await
        .err()
        .unwrap_or_else(|| panic!("{} was answered", head(sql)));
    (sqlstate(&e), message(&e))
}

/// The first value of a simple query's first row.
async fn one(client: &Client, sql: &str) -> Option<String> {
    texts(client, sql).await.remove(0).remove(0)
}

/// A count, through the extended protocol.
async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", head(sql)))
        .get(0)
}

/// Named columns of every row of a simple query.
async fn named(client: &Client, sql: &str, columns: &[&str]) -> Vec<Vec<Option<String>>> {
    client
        .simple_query(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                columns
                    .iter()
                    .map(|c| r.get(*c).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}

/// Checks `sql` is refused with 54001, quickly, both by a simple query and by Parse,
/// and that the session still answers afterwards.
async fn assert_too_deep(client: &Client, sql: &str) {
    for extended in [false, true] {
        let started = Instant::now();
        let e = if extended {
            client.prepare(sql).await.err()
        } else {
            client.simple_query(sql).await.err()
        };
        let e = e.unwrap_or_else(|| panic!("{} ({} bytes) ran", head(sql), sql.len()));
        assert_eq!(
            sqlstate(&e),
            "54001",
            "{} (extended: {extended})",
            head(sql)
        );
        assert!(message(&e).starts_with(TOO_DEEP), "{}", message(&e));
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "{}: refused after {:?}",
            head(sql),
            started.elapsed()
        );
        assert_eq!(one(client, "SELECT 1").await.as_deref(), Some("1"));
    }
}

/// How PostgreSQL's message for 54001 begins.
const TOO_DEEP: &str = "stack depth limit exceeded";

/// Statements whose expressions nest deeper than 1,000 levels.
fn too_deep() -> Vec<String> {
    let ands = (0..3_000)
        .map(|i| format!("wage <> {i}"))
        .collect::<Vec<_>>()
        .join(" AND ");
    vec![
        format!("SELECT {}", plus(2_000)),
        format!("SELECT {}", plus(100_000)),
        format!("SELECT count(*) FROM insurance.contributions WHERE wage > 0 AND {ands}"),
        format!("SELECT {}true{}", "NOT (".repeat(600), ")".repeat(600)),
        format!("SELECT 1{}", "::int".repeat(2_000)),
        format!(
            "SELECT {}1{}",
            "CASE WHEN true THEN ".repeat(1_500),
            " END".repeat(1_500)
        ),
        format!("SELECT {}1{}", "(".repeat(1_200), ")".repeat(1_200)),
    ]
}

#[tokio::test]
async fn expressions_deeper_than_a_thousand_levels_are_refused_with_54001_for_every_user() {
    for user in ["admin", "tehran", "public"] {
        let client = as_user(user).await;
        let shallow = format!("SELECT {}", plus(500));
        assert_eq!(one(&client, &shallow).await, Some("500".into()), "{user}");
        let typed: i32 = client.query_one(&shallow, &[]).await.unwrap().get(0);
        assert_eq!(typed, 500, "{user}");
        for sql in too_deep() {
            assert_too_deep(&client, &sql).await;
        }
        let fresh = as_user(user).await;
        assert_eq!(one(&fresh, "SELECT 1").await, Some("1".into()), "{user}");
    }
}

#[tokio::test]
async fn a_four_mebibyte_operator_chain_is_refused_quickly_without_being_parsed() {
    let max = amar_server::engine::MAX_SQL_BYTES;
    let sql = format!("SELECT {}", plus((max - 16) / 2));
    assert!(
        sql.len() < max && sql.len() > max - 64,
        "{} bytes",
        sql.len()
    );
    let client = admin().await;
    assert_too_deep(&client, &sql).await;
    let fresh = admin().await;
    assert_eq!(one(&fresh, "SELECT 1").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn deep_but_allowed_chains_run_through_tehrans_row_filter() {
    let tehran = as_user("tehran").await;
    let admin = admin().await;
    // About 400 levels: 200 comparisons joined by 199 ORs, under an AND.
    let chain = (0..200)
        .map(|k| format!("days_worked = {k}"))
        .collect::<Vec<_>>()
        .join(" OR ");
    let sql = format!("SELECT count(*) FROM insurance.contributions WHERE wage > 0 AND ({chain})");
    let expected = count(&admin, &format!("{sql} AND province_code = 23")).await;
    assert!(expected > 0);
    assert_eq!(count(&tehran, &sql).await, expected);
    assert_eq!(
        one(&tehran, &sql).await,
        Some(expected.to_string()),
        "simple protocol"
    );
    assert!(count(&admin, &sql).await > expected, "admin sees more");

    // 900 levels: accepted, and every step of the engine gets through it.
    let plain = count(&tehran, "SELECT count(*) FROM insurance.contributions").await;
    for sql in [
        format!(
            "SELECT count(*) FROM insurance.contributions WHERE province_code = 23 OR {} = 0",
            plus(898)
        ),
        format!(
            "SELECT count(*) FROM insurance.contributions WHERE province_code = 23 OR days_worked{} = 0",
            " + 1".repeat(897)
        ),
    ] {
        assert_eq!(count(&tehran, &sql).await, plain, "{}", head(&sql));
        assert_eq!(one(&tehran, &sql).await, Some(plain.to_string()));
    }
    let fresh = as_user("tehran").await;
    assert_eq!(one(&fresh, "SELECT 1").await.as_deref(), Some("1"));
}

fn assert_status(s: &tonic::Status, code: Code, state: &str, text: &str) {
    assert_eq!(s.code(), code, "{}", s.message());
    assert!(s.message().contains(text), "{}", s.message());
    assert_eq!(
        s.metadata()
            .get("x-amar-sqlstate")
            .and_then(|v| v.to_str().ok()),
        Some(state)
    );
}

async fn flight_serves(client: &mut FlightSqlServiceClient<Channel>) {
    let batches = flight_run(client, "SELECT 1 AS one").await.unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}

#[tokio::test]
async fn flight_sql_refuses_deep_statements_with_resource_exhausted_and_serves_on() {
    let deep = [format!("SELECT {}", plus(2_000)), too_deep().swap_remove(2)];
    for user in ["admin", "tehran", "public"] {
        let mut client = flight_as(user).await;
        let batches = flight_run(&mut client, &format!("SELECT {} AS n", plus(500)))
            .await
            .unwrap();
        assert_eq!(
            batches[0].column(0).as_primitive::<Int32Type>().value(0),
            500
        );
        for sql in &deep {
            let executed = flight_run(&mut client, sql).await.unwrap_err();
            assert_status(&executed, Code::ResourceExhausted, "54001", TOO_DEEP);
            flight_serves(&mut client).await;
            let Err(e) = client.prepare(sql.clone(), None).await else {
                panic!("{user}: {} was prepared", head(sql));
            };
            assert_status(&status(e), Code::ResourceExhausted, "54001", TOO_DEEP);
            flight_serves(&mut client).await;
        }
        flight_serves(&mut flight_as(user).await).await;
    }
}

#[tokio::test]
async fn oversized_and_too_many_settings_are_refused_with_54000() {
    let tehran = as_user("tehran").await;
    let long = "x".repeat(20_000);
    for sql in [
        format!("SET myapp.x = '{long}'"),
        format!("SET application_name = '{long}'"),
    ] {
        assert_eq!(refusal(&tehran, &sql).await.0, "54000", "{}", head(&sql));
    }
    for i in 0..100 {
        tehran
            .simple_query(&format!("SET myapp.k{i} = 'v{i}'"))
            .await
            .unwrap_or_else(|e| panic!("custom setting {i}: {e}"));
    }
    assert_eq!(refusal(&tehran, "SET myapp.k100 = 'v'").await.0, "54000");
    // Changing one already held takes no new place; a RESET frees one.
    tehran.simple_query("SET myapp.k7 = 'again'").await.unwrap();
    tehran.simple_query("RESET myapp.k0").await.unwrap();
    tehran.simple_query("SET myapp.k100 = 'v'").await.unwrap();
    assert_eq!(refusal(&tehran, "SET myapp.k101 = 'v'").await.0, "54000");
    assert_eq!(one(&tehran, "SELECT 1").await.as_deref(), Some("1"));
}

/// Calls whose result would be hundreds of megabytes to gigabytes.
const HUGE: &[&str] = &[
    "SELECT repeat('x', 300000000)",
    "SELECT lpad('x', 100000000)",
    "SELECT range(1, 1000000000)",
    "SELECT array_repeat(1, 100000000)",
    "SELECT replace(repeat('a', 1000000), 'a', repeat('b', 100))",
    // Concatenation only adds its operands up, but a chain, or a recursive query
    // that concatenates a value with itself, doubles it at every step.
    "SELECT length(repeat('x', 30000000) || repeat('y', 30000000) || repeat('z', 30000000))",
    "WITH RECURSIVE t(s, n) AS (SELECT 'x', 1 UNION ALL SELECT s || s, n + 1 FROM t WHERE n < 40) \
     SELECT max(length(s)) FROM t",
    "WITH RECURSIVE t(s, n) AS (SELECT 'x', 1 UNION ALL SELECT concat(s, s), n + 1 FROM t WHERE n < 40) \
     SELECT max(length(s)) FROM t",
    "WITH RECURSIVE t(a, n) AS (SELECT [1], 1 UNION ALL SELECT a || a, n + 1 FROM t WHERE n < 40) \
     SELECT max(cardinality(a)) FROM t",
];

#[tokio::test]
async fn functions_that_would_make_huge_values_are_refused_with_54000() {
    for user in ["admin", "tehran"] {
        let client = as_user(user).await;
        for sql in HUGE {
            let (code, message) = refusal(&client, sql).await;
            assert_eq!(code, "54000", "{user}: {sql}: {message}");
            assert!(
                message.contains("requested length too large"),
                "{sql}: {message}"
            );
        }
        assert_eq!(
            one(&client, "SELECT length(repeat('ab', 1000))")
                .await
                .as_deref(),
            Some("2000")
        );
        // Ordinary concatenation answers as before, NULL and column name included.
        let rows = client
            .simple_query("SELECT 'a' || 'b', 'a' || NULL, 'x' || 1 AS n")
            .await
            .unwrap();
        let row = rows
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(r) => Some(r),
                _ => None,
            })
            .unwrap();
        assert_eq!(row.get(0), Some("ab"));
        assert_eq!(row.get(1), None);
        assert_eq!(row.get(2), Some("x1"));
        assert_eq!(row.columns()[0].name(), "?column?");
        assert_eq!(
            one(
                &client,
                "WITH RECURSIVE t(s, n) AS (SELECT 'x', 1 UNION ALL SELECT s || s, n + 1 FROM t WHERE n < 10) SELECT max(length(s)) FROM t"
            )
            .await
            .as_deref(),
            Some("512")
        );
    }
    let mut flight = flight_as("tehran").await;
    let s = flight_run(&mut flight, HUGE[0]).await.unwrap_err();
    assert_status(
        &s,
        Code::ResourceExhausted,
        "54000",
        "requested length too large",
    );
    flight_serves(&mut flight).await;
}

/// Waits until every rule has run at least once since the start.
async fn validated(client: &Client) {
    for _ in 0..600 {
        let ran = one(
            client,
            "SELECT count(DISTINCT rule) FROM amar.validation_results",
        )
        .await;
        if ran == one(client, "SELECT count(*) FROM amar.validation_rules").await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the validation rules did not run within a minute of the start");
}

#[tokio::test]
async fn tehran_sees_whether_rules_passed_but_no_counts_or_samples_of_rows_it_may_not_read() {
    let admin = admin().await;
    validated(&admin).await;
    let sql = "SELECT rule, violations, sample, outcome FROM amar.validation_results";
    let all = texts(&admin, sql).await;
    assert!(all.iter().all(|r| r[1].is_some()), "{all:?}");
    let violated: Vec<&Vec<Option<String>>> = all
        .iter()
        .filter(|r| r[3].as_deref() == Some("violated"))
        .collect();
    assert!(!violated.is_empty(), "the demo violates some rules");
    assert!(violated.iter().all(|r| r[2].is_some()), "{violated:?}");
    // Every number in admin's samples: ids, amounts, periods, province codes.
    let mut secrets = BTreeSet::new();
    for row in &violated {
        let sample = row[2].as_deref().unwrap();
        for run in sample.split(|c: char| !c.is_ascii_digit()) {
            if !run.is_empty() && run != "23" {
                secrets.insert(run.to_string());
            }
        }
    }
    assert!(!secrets.is_empty());

    // Every demo rule reads tables that are filtered for tehran.
    let tehran = as_user("tehran").await;
    let seen = texts(&tehran, sql).await;
    assert!(!seen.is_empty());
    for row in &seen {
        assert!(row[1].is_none() && row[2].is_none(), "{row:?}");
        assert!(row[3].is_some(), "the outcome is shown: {row:?}");
    }
    let rules = |rows: &[Vec<Option<String>>]| -> BTreeSet<String> {
        rows.iter().filter_map(|r| r[0].clone()).collect()
    };
    assert_eq!(rules(&seen[..]), rules(&all[..]));
    let text = format!("{seen:?}");
    for secret in &secrets {
        assert!(!text.contains(secret.as_str()), "{secret} leaked: {text}");
    }
}

#[tokio::test]
async fn public_indicator_rows_come_in_the_order_of_their_dimensions() {
    let public = as_user("public").await;
    let rows = named(
        &public,
        "SELECT * FROM indicators.rehabilitation_claims",
        &["province_code", "period", "suppressed"],
    )
    .await;
    assert!(rows.len() > 10, "{rows:?}");
    assert!(
        rows.iter().any(|r| r[2].as_deref() == Some("t")),
        "some cells are suppressed"
    );
    // NULLS FIRST, as Option orders them.
    let key = |r: &Vec<Option<String>>| {
        (
            r[0].as_deref().map(|p| p.parse::<i64>().unwrap()),
            r[1].clone(),
        )
    };
    let keys: Vec<_> = rows.iter().map(key).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "not in the order of the dimensions");
}

#[tokio::test]
async fn explain_analyze_is_refused_where_its_counts_would_show_hidden_rows() {
    let public = as_user("public").await;
    for sql in [
        "EXPLAIN ANALYZE SELECT * FROM indicators.rehabilitation_claims",
        "EXPLAIN SELECT * FROM indicators.rehabilitation_claims",
    ] {
        assert_eq!(refusal(&public, sql).await.0, "42501", "{sql}");
    }
    assert_eq!(one(&public, "SELECT 1").await.as_deref(), Some("1"));

    let tehran = as_user("tehran").await;
    let (code, message) = refusal(
        &tehran,
        "EXPLAIN ANALYZE SELECT count(*) FROM insurance.contributions",
    )
    .await;
    assert_eq!(code, "42501", "{message}");
    tehran
        .simple_query("EXPLAIN SELECT count(*) FROM insurance.contributions")
        .await
        .expect("plain EXPLAIN shows tehran the plan");

    admin()
        .await
        .simple_query("EXPLAIN ANALYZE SELECT count(*) FROM insurance.contributions")
        .await
        .expect("admin sees every row anyway");
}

/// One integer value, asked as admin.
async fn number(admin: &Client, sql: &str) -> i64 {
    one(admin, sql)
        .await
        .unwrap_or_else(|| panic!("{sql}: NULL"))
        .parse()
        .unwrap()
}

async fn oid_of(admin: &Client, table: &str) -> i64 {
    number(
        admin,
        &format!(
            "SELECT CAST(c.oid AS BIGINT) FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'insurance' AND c.relname = '{table}'"
        ),
    )
    .await
}

async fn attnum_of(admin: &Client, oid: i64, column: &str) -> i64 {
    number(
        admin,
        &format!(
            "SELECT CAST(attnum AS BIGINT) FROM pg_catalog.pg_attribute \
             WHERE attrelid = {oid} AND attname = '{column}'"
        ),
    )
    .await
}

/// The column names DESCRIBE lists.
async fn described(client: &Client, table: &str) -> Vec<String> {
    texts(client, &format!("DESCRIBE {table}"))
        .await
        .into_iter()
        .filter_map(|r| r[0].clone())
        .collect()
}

#[tokio::test]
async fn describe_and_catalog_functions_tell_tehran_nothing_of_what_it_may_not_read() {
    // The demo, but employers are withheld from tehran and one commented column of
    // insured_persons from every analyst.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("policy.csv"),
        format!(
            "{}p, tehran, insurance.employers, read, deny\n\
             p2, role:analyst, insurance.insured_persons, is_active, deny,\n",
            amar_server::demo::DEMO_POLICY
        ),
    )
    .unwrap();
    let server = TestServer::demo_in(dir.path(), 0.005).unwrap();
    let admin = connect(&server, "admin", "admin").await.unwrap();
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();

    for table in ["insurance.employers", "amar.query_log"] {
        let (code, message) = refusal(&tehran, &format!("DESCRIBE {table}")).await;
        assert_eq!(code, "42501", "{table}: {message}");
    }
    let mine = described(&tehran, "insurance.insured_persons").await;
    assert!(mine.contains(&"national_id".to_string()), "{mine:?}");
    assert!(!mine.contains(&"is_active".to_string()), "{mine:?}");
    let all = described(&admin, "insurance.insured_persons").await;
    assert!(all.contains(&"is_active".to_string()), "{all:?}");

    let employers = oid_of(&admin, "employers").await;
    let persons = oid_of(&admin, "insured_persons").await;
    let workforce = attnum_of(&admin, employers, "workforce").await;
    let is_active = attnum_of(&admin, persons, "is_active").await;
    let index = number(
        &admin,
        &format!(
            "SELECT CAST(indexrelid AS BIGINT) FROM pg_catalog.pg_index WHERE indrelid = {employers}"
        ),
    )
    .await;
    let constraint = number(
        &admin,
        &format!(
            "SELECT CAST(oid AS BIGINT) FROM pg_catalog.pg_constraint WHERE conrelid = {employers}"
        ),
    )
    .await;
    let withheld = [
        format!("SELECT obj_description({employers}, 'pg_class')"),
        format!("SELECT col_description({employers}, {workforce})"),
        format!("SELECT col_description({persons}, {is_active})"),
        format!("SELECT pg_get_indexdef({index})"),
        format!("SELECT pg_get_constraintdef({constraint})"),
    ];
    // The public reads no department's table at all.
    let public = connect(&server, "public", "public").await.unwrap();
    for sql in &withheld {
        assert!(one(&admin, sql).await.is_some(), "admin: {sql}");
        assert_eq!(one(&tehran, sql).await, None, "tehran: {sql}");
        assert_eq!(one(&public, sql).await, None, "public: {sql}");
    }
    // The functions tools call on connect (issue 25) tell nothing either: no view
    // definition, no sequence, and JSON is built only of rows the user may read.
    for sql in [
        format!("SELECT pg_get_viewdef({employers})"),
        "SELECT pg_get_serial_sequence('insurance.employers', 'id')".to_string(),
    ] {
        assert_eq!(one(&tehran, &sql).await, None, "tehran: {sql}");
        assert_eq!(one(&public, &sql).await, None, "public: {sql}");
    }
    let json =
        "SELECT json_agg(json_build_object('id', id, 'name', name_fa)) FROM insurance.employers";
    assert!(one(&admin, json).await.is_some());
    assert_eq!(refusal(&tehran, json).await.0, "42501");
    assert_eq!(refusal(&public, json).await.0, "42501");
    let tehran_rows = one(
        &tehran,
        "SELECT json_agg(DISTINCT province_code) FROM insurance.contributions",
    )
    .await;
    assert_eq!(tehran_rows.as_deref(), Some("[23]"));
    // What tehran reads keeps its comment.
    let comment = format!("SELECT obj_description({persons}, 'pg_class')");
    assert!(one(&tehran, &comment).await.is_some());

    let privilege = |table: &str| format!("SELECT has_table_privilege('{table}', 'SELECT')");
    let employers_privilege = privilege("insurance.employers");
    assert_eq!(
        one(&admin, &employers_privilege).await.as_deref(),
        Some("t")
    );
    assert_eq!(
        one(&tehran, &employers_privilege).await.as_deref(),
        Some("f")
    );
    let contributions = privilege("insurance.contributions");
    assert_eq!(one(&tehran, &contributions).await.as_deref(), Some("t"));

    if let Err(e) = tehran
        .simple_query("SELECT to_regclass('insurance.employers')")
        .await
    {
        panic!("to_regclass of a withheld table: {} {e}", sqlstate(&e));
    }
    drop((admin, tehran, public));
    server.stop();
}

#[tokio::test]
async fn masked_national_ids_are_keyed_hashes_not_a_plain_sha256() {
    let tehran = as_user("tehran").await;
    let admin = admin().await;
    let masked = texts(
        &tehran,
        "SELECT id, national_id FROM insurance.insured_persons ORDER BY id LIMIT 5",
    )
    .await;
    assert_eq!(masked.len(), 5);
    for row in &masked {
        let (id, shown) = (row[0].as_deref().unwrap(), row[1].as_deref().unwrap());
        let plain = texts(
            &admin,
            &format!(
                "SELECT national_id, encode(sha256(national_id), 'hex') \
                 FROM insurance.insured_persons WHERE id = {id}"
            ),
        )
        .await;
        let (real, digest) = (
            plain[0][0].as_deref().unwrap(),
            plain[0][1].as_deref().unwrap(),
        );
        assert_eq!(digest.len(), 64, "{digest}");
        assert_eq!(shown.len(), 64, "{shown}");
        assert!(shown.chars().all(|c| c.is_ascii_hexdigit()), "{shown}");
        assert_ne!(shown, real);
        assert!(
            !shown.eq_ignore_ascii_case(digest),
            "id {id}: the mask is the plain SHA-256 of the national id"
        );
    }
}
