//! Access levels as the demo users meet them: `tehran` sees Tehran's rows with
//! national ids masked through every SQL form, `auditor` sees none of the data, and
//! forbidden objects are absent from every listing yet refused with 42501 by name.

use amar_tests::shared_demo;
use tokio_postgres::{Client, SimpleQueryMessage};

use crate::support::{admin, connect, sqlstate};

async fn as_user(name: &str) -> Client {
    connect(shared_demo(), name, name)
        .await
        .expect("demo user logs in")
}

async fn count(client: &Client, sql: &str) -> i64 {
    client
        .query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e:?}"))
        .get::<_, i64>(0)
}

/// Each query as tehran, and the same query as admin restricted to Tehran.
const FORMS: &[(&str, &str, &str)] = &[
    (
        "plain",
        "SELECT count(*) FROM insurance.contributions",
        "SELECT count(*) FROM insurance.contributions WHERE province_code = 23",
    ),
    (
        "subquery",
        "SELECT count(*) FROM (SELECT * FROM insurance.contributions WHERE wage > 0) s",
        "SELECT count(*) FROM (SELECT * FROM insurance.contributions WHERE wage > 0 AND province_code = 23) s",
    ),
    (
        "cte",
        "WITH c AS (SELECT insured_id FROM insurance.contributions) SELECT count(*) FROM c",
        "WITH c AS (SELECT insured_id FROM insurance.contributions WHERE province_code = 23) SELECT count(*) FROM c",
    ),
    (
        "join",
        "SELECT count(*) FROM insurance.contributions c JOIN insurance.insured_persons p ON p.id = c.insured_id",
        "SELECT count(*) FROM insurance.contributions c JOIN insurance.insured_persons p ON p.id = c.insured_id WHERE c.province_code = 23 AND p.province_code = 23",
    ),
    (
        "self-join",
        "SELECT count(*) FROM insurance.employers a JOIN insurance.employers b ON a.branch_code = b.branch_code AND a.id < b.id",
        "SELECT count(*) FROM insurance.employers a JOIN insurance.employers b ON a.branch_code = b.branch_code AND a.id < b.id WHERE a.province_code = 23 AND b.province_code = 23",
    ),
    (
        "union",
        "SELECT count(*) FROM (SELECT id FROM insurance.insured_persons UNION ALL SELECT pensioner_id FROM pension.pensioners) u",
        "SELECT count(*) FROM (SELECT id FROM insurance.insured_persons WHERE province_code = 23 UNION ALL SELECT pensioner_id FROM pension.pensioners WHERE province_code = 23) u",
    ),
    (
        "window",
        "SELECT max(n) FROM (SELECT count(*) OVER () AS n FROM health.claims) w",
        "SELECT max(n) FROM (SELECT count(*) OVER () AS n FROM health.claims WHERE province_code = 23) w",
    ),
    (
        "scalar subquery",
        "SELECT (SELECT count(*) FROM pension.payments)",
        "SELECT (SELECT count(*) FROM pension.payments WHERE province_code = 23)",
    ),
    (
        "exists",
        "SELECT count(*) FROM insurance.branches b WHERE EXISTS (SELECT 1 FROM insurance.employers e WHERE e.branch_code = b.code)",
        "SELECT count(*) FROM insurance.branches b WHERE b.province_code = 23 AND EXISTS (SELECT 1 FROM insurance.employers e WHERE e.branch_code = b.code AND e.province_code = 23)",
    ),
];

#[tokio::test]
async fn tehran_sees_exactly_tehrans_rows_through_every_sql_form() {
    let tehran = as_user("tehran").await;
    let admin = admin().await;
    for (form, as_tehran, as_admin) in FORMS {
        let mine = count(&tehran, as_tehran).await;
        let expected = count(&admin, as_admin).await;
        assert_eq!(mine, expected, "{form}");
        assert!(mine > 0, "{form}: the comparison is not vacuous");
        let everything = count(&admin, as_tehran).await;
        assert!(everything > mine, "{form}: admin sees more");
    }
    // No row of another province, whatever the query asks.
    let others = count(
        &tehran,
        "SELECT count(*) FROM insurance.contributions WHERE province_code <> 23",
    )
    .await;
    assert_eq!(others, 0);
}

#[tokio::test]
async fn prepared_statements_copy_and_explain_are_filtered_too() {
    let tehran = as_user("tehran").await;
    let admin = admin().await;
    let statement = tehran
        .prepare("SELECT count(*) FROM insurance.contributions WHERE days_worked >= $1")
        .await
        .unwrap();
    let mine: i64 = tehran
        .query_one(&statement, &[&30i16])
        .await
        .unwrap()
        .get(0);
    let expected = count(&admin, "SELECT count(*) FROM insurance.contributions WHERE days_worked >= 30 AND province_code = 23").await;
    assert_eq!(mine, expected);

    let copied = tehran
        .simple_query(
            "SELECT count(*) FROM (SELECT DISTINCT province_code FROM insurance.contributions) d",
        )
        .await
        .unwrap();
    let distinct = copied.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
        _ => None,
    });
    assert_eq!(distinct.as_deref(), Some("1"));

    use futures::TryStreamExt;
    let stream = tehran
        .copy_out("COPY (SELECT DISTINCT province_code FROM insurance.insured_persons) TO STDOUT")
        .await
        .unwrap();
    let bytes: Vec<u8> = stream
        .try_fold(vec![], |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), "23\n");

    let plan = tehran
        .simple_query("EXPLAIN SELECT count(*) FROM insurance.contributions")
        .await
        .unwrap();
    let text: String = plan
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => r.get(1).map(str::to_string),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        text.contains("province_code") && text.contains("23"),
        "the row filter shows in the plan:\n{text}"
    );
}

#[tokio::test]
async fn national_ids_are_masked_and_never_shown() {
    let tehran = as_user("tehran").await;
    let admin = admin().await;
    let real: std::collections::HashSet<String> = admin
        .query(
            "SELECT national_id FROM insurance.insured_persons WHERE province_code = 23",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let shown: Vec<String> = tehran
        .query("SELECT national_id FROM insurance.insured_persons", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(shown.len(), real.len());
    assert!(
        shown.iter().all(|v| !real.contains(v) && v.len() == 64),
        "hashes, not ids"
    );
    // Nor through an expression, a join key or an aggregate.
    let leaked = tehran
        .query(
            "SELECT substr(national_id, 1, 10) FROM insurance.insured_persons UNION SELECT max(national_id) FROM insurance.insured_persons",
            &[],
        )
        .await
        .unwrap();
    assert!(
        leaked
            .iter()
            .all(|r| !real.contains(&r.get::<_, String>(0)))
    );
    // Errors show the masked value, not the real one.
    let e = tehran
        .query(
            "SELECT national_id::bigint FROM insurance.insured_persons",
            &[],
        )
        .await
        .unwrap_err();
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(
        real.iter().all(|id| !message.contains(id.as_str())),
        "{message}"
    );
}

#[tokio::test]
async fn forbidden_tables_are_invisible_and_refused_by_name() {
    let auditor = as_user("auditor").await;
    let e = auditor
        .query("SELECT * FROM insurance.contributions", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert_eq!(
        message,
        "permission denied for table insurance.contributions"
    );
    // Hidden behind a view, a subquery or EXPLAIN all the same.
    for sql in [
        "SELECT count(*) FROM (SELECT 1 FROM insurance.contributions) s",
        "EXPLAIN SELECT * FROM pension.payments",
        "WITH x AS (SELECT * FROM health.claims) SELECT count(*) FROM x",
        "SELECT 1 WHERE EXISTS (SELECT 1 FROM insurance.provinces)",
    ] {
        let e = auditor.query(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}");
    }
    // Absent from listings.
    let tables: Vec<String> = auditor
        .query(
            "SELECT table_schema || '.' || table_name FROM information_schema.tables",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        !tables.iter().any(|t| t.starts_with("insurance.")
            || t.starts_with("pension.")
            || t.starts_with("health.")),
        "{tables:?}"
    );
    let classes: i64 = auditor
        .query_one(
            "SELECT count(*) FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname IN ('insurance', 'pension', 'health')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(classes, 0);
    let schemas: Vec<String> = auditor
        .query("SELECT nspname FROM pg_catalog.pg_namespace", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!schemas.contains(&"insurance".to_string()), "{schemas:?}");
}

#[tokio::test]
async fn tehran_listings_show_masked_tables_but_not_the_query_log() {
    let tehran = as_user("tehran").await;
    let tables: Vec<String> = tehran
        .query("SELECT table_schema || '.' || table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema')", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        tables.contains(&"insurance.contributions".to_string()),
        "{tables:?}"
    );
    // Of the system schema, the statistics catalog and its releases only.
    let mut system: Vec<&String> = tables.iter().filter(|t| t.starts_with("amar.")).collect();
    system.sort();
    assert_eq!(
        system,
        [
            "amar.classifications",
            "amar.glossary",
            "amar.indicator_status",
            "amar.indicators",
            "amar.release_calendar",
            "amar.releases",
            "amar.revisions",
            "amar.validation_results",
            "amar.validation_rules"
        ],
        "{tables:?}"
    );
    let e = tehran
        .query("SELECT * FROM amar.sources", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
}

#[tokio::test]
async fn no_function_reads_the_servers_files() {
    let tehran = as_user("tehran").await;
    for sql in [
        "SELECT * FROM read_csv('/etc/passwd')",
        "SELECT * FROM read_parquet('/etc/passwd')",
        "SELECT pg_read_file('/etc/passwd')",
    ] {
        let e = tehran.query(sql, &[]).await.unwrap_err();
        assert!(
            ["42883", "42P01", "42601"].contains(&sqlstate(&e).as_str()),
            "{sql}: {e:?}"
        );
    }
}

/// A marker no other test writes, so this test finds its own entries.
fn marker(name: &str) -> String {
    format!(
        "{name}-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

#[tokio::test]
async fn every_statement_is_in_the_audit_log_from_both_front_ends() {
    let tehran = as_user("tehran").await;
    let read = marker("read");
    let denied = marker("denied");
    let broken = marker("broken");
    let flight = marker("flight");
    let n: i64 = tehran
        .query_one(
            &format!("SELECT count(*) AS n, '{read}' AS m FROM insurance.contributions"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let e = tehran
        .query(&format!("SELECT name, '{denied}' FROM amar.sources"), &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let e = tehran
        .simple_query(&format!("SELEC '{broken}'"))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42601");
    tehran
        .simple_query("SET application_name = 'audit-test'")
        .await
        .unwrap();

    let mut client = arrow_flight::sql::client::FlightSqlServiceClient::new(
        tonic::transport::Channel::from_shared(format!("http://{}", shared_demo().flight_addr))
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    client.handshake("tehran", "tehran").await.unwrap();
    let info = client
        .execute(
            format!("SELECT claim_id, '{flight}' FROM health.claims"),
            None,
        )
        .await
        .unwrap();
    let mut flight_rows = 0;
    for endpoint in info.endpoint {
        use futures::TryStreamExt;
        let stream = client.do_get(endpoint.ticket.unwrap()).await.unwrap();
        let batches: Vec<_> = stream.try_collect().await.unwrap();
        flight_rows += batches.iter().map(|b| b.num_rows()).sum::<usize>();
    }
    assert!(flight_rows > 0);

    // tehran may not read the log; the auditor may.
    let e = tehran
        .query("SELECT * FROM amar.query_log", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    let auditor = as_user("auditor").await;
    let entry = |m: String| {
        let auditor = &auditor;
        async move {
            let rows = auditor
                .query(
                    "SELECT user_name, protocol, array_to_string(objects, ','), decision, rows, sqlstate, application_name \
                     FROM amar.query_log WHERE strpos(statement, $1) > 0",
                    &[&m],
                )
                .await
                .unwrap();
            assert_eq!(rows.len(), 1, "one entry for {m}");
            let r = &rows[0];
            (
                r.get::<_, String>(0),
                r.get::<_, String>(1),
                r.get::<_, String>(2),
                r.get::<_, String>(3),
                r.get::<_, i64>(4),
                r.get::<_, Option<String>>(5),
                r.get::<_, String>(6),
            )
        }
    };
    let (user, protocol, objects, decision, rows, state, _) = entry(read.clone()).await;
    assert_eq!((user.as_str(), protocol.as_str()), ("tehran", "pgwire"));
    assert_eq!(objects, "insurance.contributions");
    assert!(
        decision.contains("row filter on insurance.contributions"),
        "{decision}"
    );
    assert_eq!((rows, state), (1, None));
    assert!(n > 0);
    let (_, _, _, decision, _, state, _) = entry(denied).await;
    assert_eq!(
        (decision.as_str(), state.as_deref()),
        ("denied", Some("42501"))
    );
    let (_, _, _, _, _, state, _) = entry(broken.clone()).await;
    assert_eq!(state.as_deref(), Some("42601"));
    let (user, protocol, objects, _, rows, state, _) = entry(flight.clone()).await;
    assert_eq!(
        (user.as_str(), protocol.as_str(), objects.as_str()),
        ("tehran", "flight", "health.claims")
    );
    assert_eq!((rows as usize, state), (flight_rows, None));
    let set = auditor
        .query_one(
            "SELECT count(*) FROM amar.query_log WHERE user_name = 'tehran' AND statement LIKE 'SET application_name%'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert!(set >= 1, "session commands are audited too");

    // The same entries are in the JSON-lines file.
    let path = shared_demo().data_dir.join("audit").join("query_log.jsonl");
    let mut found = false;
    for _ in 0..50 {
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        if text.contains(&read) && text.contains(&flight) && text.contains(&broken) {
            found = true;
            let line = text.lines().find(|l| l.contains(&read)).unwrap();
            assert!(
                line.contains("\"user\":\"tehran\"") && line.contains("\"rows\":1"),
                "{line}"
            );
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(found, "the audit file {} has the entries", path.display());
}

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("{what}: not within 10 s");
}

#[tokio::test]
async fn policy_changes_reach_open_sessions_and_broken_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let server = amar_tests::TestServer::demo_in(dir.path(), 0.005).unwrap();
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();
    let admin = connect(&server, "admin", "admin").await.unwrap();
    assert!(count(&tehran, "SELECT count(*) FROM health.claims").await > 0);
    // Statements prepared before the change, as a JDBC pool keeps them.
    let prepared = tehran
        .prepare("SELECT count(*) FROM health.claims WHERE claim_id > $1")
        .await
        .unwrap();
    let claims: i64 = tehran.query_one(&prepared, &[&0i64]).await.unwrap().get(0);
    assert!(claims > 0);
    let kept = tehran
        .prepare("SELECT count(*) FROM insurance.contributions WHERE id > $1")
        .await
        .unwrap();
    let contributions: i64 = tehran.query_one(&kept, &[&0i64]).await.unwrap().get(0);
    let policy = dir.path().join("policy.csv");
    let original = std::fs::read_to_string(&policy).unwrap();

    // Health is withdrawn from analysts: the open session loses it, statements it
    // prepared before included.
    std::fs::write(
        &policy,
        original.replace("p, role:analyst, health.*, read, allow\n", ""),
    )
    .unwrap();
    eventually("health withdrawn", || async {
        tehran
            .query("SELECT count(*) FROM health.claims", &[])
            .await
            .is_err_and(|e| sqlstate(&e) == "42501")
    })
    .await;
    let e = tehran.query_one(&prepared, &[&0i64]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "42501", "{e:?}");
    // A statement the change does not touch runs on, planned again, the same.
    let again: i64 = tehran.query_one(&kept, &[&0i64]).await.unwrap().get(0);
    assert_eq!(again, contributions);

    // A broken file is refused; the last good policy stays, and the status says why.
    std::fs::write(
        &policy,
        format!("{original}\np, role:analyst, pension.*, read\n"),
    )
    .unwrap();
    eventually("the broken file is reported", || async {
        let row = admin
            .query_one(
                "SELECT ok, coalesce(error, '') FROM amar.policy_status",
                &[],
            )
            .await
            .unwrap();
        !row.get::<_, bool>(0) && row.get::<_, String>(1).contains("line")
    })
    .await;
    assert!(
        tehran
            .query("SELECT count(*) FROM health.claims", &[])
            .await
            .is_err()
    );
    assert!(count(&tehran, "SELECT count(*) FROM insurance.contributions").await > 0);

    std::fs::write(&policy, &original).unwrap();
    eventually("the original policy is back", || async {
        tehran
            .query("SELECT count(*) FROM health.claims", &[])
            .await
            .is_ok()
    })
    .await;
    let ok: bool = admin
        .query_one("SELECT ok FROM amar.policy_status", &[])
        .await
        .unwrap()
        .get(0);
    assert!(ok);
    drop((tehran, admin));
    server.stop();
}

#[tokio::test]
async fn the_audit_log_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let before = marker("before-restart");
    let server = amar_tests::TestServer::demo_in(dir.path(), 0.005).unwrap();
    let admin = connect(&server, "admin", "admin").await.unwrap();
    admin
        .simple_query(&format!("SELECT '{before}'"))
        .await
        .unwrap();
    drop(admin);
    server.stop();

    let server = amar_tests::TestServer::demo_in(dir.path(), 0.005).unwrap();
    let auditor = connect(&server, "auditor", "auditor").await.unwrap();
    let found: i64 = auditor
        .query_one(
            "SELECT count(*) FROM amar.query_log WHERE strpos(statement, $1) > 0 AND user_name = 'admin'",
            &[&before],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(found, 1);
    drop(auditor);
    server.stop();
}
