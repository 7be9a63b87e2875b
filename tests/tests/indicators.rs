//! The statistics catalog through pgwire: indicators as definer-rights views, the
//! evaluation of provinces, validation results, and the public's suppressed cells.

use std::time::Duration;

use amar_tests::{Fixture, TestServer, shared_demo};

use crate::support::{admin, connect, sqlstate, text_rows, texts};

/// Waits until the rules that run at start have all run once.
async fn validated(client: &tokio_postgres::Client) {
    for _ in 0..600 {
        let rows = texts(
            client,
            "SELECT count(DISTINCT rule) FROM amar.validation_results",
        )
        .await;
        let rules = texts(client, "SELECT count(*) FROM amar.validation_rules").await;
        if rows[0][0] == rules[0][0] {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the validation rules did not run within a minute of the start");
}

#[tokio::test]
async fn the_planted_violation_marks_the_pension_indicators_unverified() {
    let client = admin().await;
    validated(&client).await;
    let run = texts(
        &client,
        "SELECT outcome, violations, sample, trigger FROM amar.validation_results \
         WHERE rule = 'payments_to_known_pensioners' ORDER BY run_at DESC LIMIT 1",
    )
    .await;
    assert_eq!(run[0][0].as_deref(), Some("violated"));
    let violations: i64 = run[0][1].as_deref().unwrap().parse().unwrap();
    assert!(violations >= 1);
    let sample = run[0][2].as_deref().unwrap();
    assert!(sample.contains("\"pensioner_id\":\"9000000\""), "{sample}");
    assert_eq!(run[0][3].as_deref(), Some("start"));

    let outcomes = texts(
        &client,
        "SELECT rule, outcome FROM amar.validation_results ORDER BY rule",
    )
    .await;
    let outcome = |rule: &str| {
        outcomes
            .iter()
            .find(|r| r[0].as_deref() == Some(rule))
            .and_then(|r| r[1].clone())
            .unwrap_or_else(|| panic!("{rule} ran: {outcomes:?}"))
    };
    // Rules that compare sources, and indicators with one another, pass on the demo.
    assert_eq!(outcome("claims_for_known_insured"), "passed");
    assert_eq!(outcome("provinces_sum_to_national"), "passed");
    assert_eq!(outcome("paid_not_above_due"), "passed");
    assert_eq!(outcome("full_month_minimum_wage"), "violated");

    let verified = texts(
        &client,
        "SELECT id, verified, failing_rules FROM amar.indicators ORDER BY id",
    )
    .await;
    for row in &verified {
        let id = row[0].as_deref().unwrap();
        let reads_payments = id == "average_pension" || id == "pensioner_contributor_ratio";
        assert_eq!(
            row[1].as_deref(),
            Some(if reads_payments { "f" } else { "t" }),
            "{row:?}"
        );
        if reads_payments {
            assert!(
                row[2]
                    .as_deref()
                    .unwrap()
                    .contains("payments_to_known_pensioners (violated)"),
                "{row:?}"
            );
        }
    }
    let status = texts(
        &client,
        "SELECT DISTINCT indicator, verified FROM amar.indicator_status \
         WHERE indicator IN ('average_pension', 'average_wage') ORDER BY indicator",
    )
    .await;
    assert_eq!(
        status,
        vec![
            vec![Some("average_pension".into()), Some("f".into())],
            vec![Some("average_wage".into()), Some("t".into())]
        ]
    );
}

#[tokio::test]
async fn an_indicator_needs_a_grant_on_itself_and_keeps_the_readers_row_filters() {
    let server = shared_demo();
    let admin = admin().await;
    let tehran = connect(server, "tehran", "tehran").await.unwrap();
    let provinces = "SELECT DISTINCT province_code FROM indicators.active_insured ORDER BY 1";
    assert!(texts(&admin, provinces).await.len() > 5);
    assert_eq!(
        texts(&tehran, provinces).await,
        vec![vec![Some("23".to_string())]]
    );
    // Tehran's own numbers: the indicator counts the rows the user may see.
    let direct = texts(
        &admin,
        "SELECT count(DISTINCT insured_id) FROM insurance.contributions \
         WHERE province_code = 23 AND jalali_period('month', period) = '1403-12'",
    )
    .await;
    let through = texts(
        &tehran,
        "SELECT value FROM indicators.active_insured WHERE period = '1403-12'",
    )
    .await;
    assert_eq!(direct, through);
    // Provincial staff see their own province's evaluation.
    let units = texts(&tehran, "SELECT DISTINCT unit FROM amar.indicator_status").await;
    assert_eq!(units, vec![vec![Some("23".to_string())]]);

    // The public has no grant on any table under the indicator, and reads it.
    let public = connect(server, "public", "public").await.unwrap();
    let rows = texts(&public, "SELECT count(*) FROM indicators.average_pension").await;
    assert_ne!(rows[0][0].as_deref(), Some("0"));
    let e = public
        .simple_query("SELECT count(*) FROM pension.payments")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    // Nor through the indicator's name in a join or a subquery.
    let e = public
        .simple_query(
            "SELECT * FROM indicators.average_pension a \
             WHERE a.province_code IN (SELECT province_code FROM pension.pensioners)",
        )
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
}

#[tokio::test]
async fn the_public_reads_indicators_only_with_small_cells_suppressed() {
    let server = shared_demo();
    let public = connect(server, "public", "public").await.unwrap();
    let admin = admin().await;
    // At the demo's scale some provinces have under five rehabilitation claims a month.
    let small = texts(
        &admin,
        "SELECT count(*) FROM indicators.rehabilitation_claims WHERE value < 5",
    )
    .await;
    assert_ne!(
        small[0][0].as_deref(),
        Some("0"),
        "the demo has small cells"
    );
    let shown_small = texts(
        &public,
        "SELECT count(*) FROM indicators.rehabilitation_claims WHERE value < 5",
    )
    .await;
    assert_eq!(shown_small[0][0].as_deref(), Some("0"));
    let suppressed = texts(
        &public,
        "SELECT count(*) FROM indicators.rehabilitation_claims WHERE suppressed AND value IS NULL",
    )
    .await;
    let suppressed: i64 = suppressed[0][0].as_deref().unwrap().parse().unwrap();
    let small: i64 = small[0][0].as_deref().unwrap().parse().unwrap();
    assert!(
        suppressed >= small,
        "{suppressed} suppressed, {small} small"
    );
    // For everyone else nothing is suppressed.
    let none = texts(
        &admin,
        "SELECT count(*) FROM indicators.rehabilitation_claims WHERE suppressed",
    )
    .await;
    assert_eq!(none[0][0].as_deref(), Some("0"));

    // The status table is computed from the suppressed values too.
    let statuses = texts(
        &public,
        "SELECT count(*) FROM amar.indicator_status WHERE status = 'suppressed' AND value IS NOT NULL",
    )
    .await;
    assert_eq!(statuses[0][0].as_deref(), Some("0"));

    // Nothing but the published statistics: not the tables, not the logs, and not
    // even listed.
    for sql in [
        "SELECT * FROM health.claims LIMIT 1",
        "SELECT * FROM amar.query_log LIMIT 1",
        "SELECT * FROM amar.validation_results LIMIT 1",
        "SELECT * FROM amar.sources",
    ] {
        let e = public.simple_query(sql).await.unwrap_err();
        assert_eq!(sqlstate(&e), "42501", "{sql}");
    }
    let schemas = texts(
        &public,
        "SELECT DISTINCT table_schema FROM information_schema.tables \
         WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    )
    .await;
    assert_eq!(
        schemas,
        text_rows(&[
            &["amar"],
            &["indicators"],
            &["official"],
            &["official_history"]
        ])
    );
}

/// An indicator of cases per province and month over `stats.counts`, its small cells
/// suppressed for the public.
const CASES: &str = r#"[[indicator]]
id = "cases"
title_fa = "موارد"
title_en = "Cases"
unit = "cases"
periodicity = "monthly"
dimensions = ["province", "period"]
area = "province"
period = "period"
value = "cases"
count = "cases"
min_cell = 5
additivity = "flow"
sql = "SELECT province, period, cases, amount FROM stats.counts"
"#;

/// A server over one CSV of cells, with an admin `stats` and a public user `web`.
fn cells_server(csv: &str) -> TestServer {
    Fixture::new()
        .admin("stats", "pw")
        .user("web", &["public"], "pw")
        .policy("p, role:public, indicators.*, read, allow")
        .file("cells/counts.csv", csv)
        .source("stats", "files", &[("path", "cells")])
        .config(CASES)
        .start()
}

#[tokio::test]
async fn small_cells_are_suppressed_with_their_complement_and_stay_so_under_aggregates() {
    let server = cells_server(
        "province,period,cases,amount\n\
         1,1403-01,2,200\n2,1403-01,8,800\n3,1403-01,20,2000\n4,1403-01,30,3000\n\
         1,1403-02,1,100\n2,1403-02,3,300\n3,1403-02,50,5000\n\
         1,1403-03,40,4000\n2,1403-03,60,6000\n",
    );
    let web = connect(&server, "web", "pw").await.unwrap();
    let rows = texts(
        &web,
        "SELECT province, period, cases, amount, suppressed FROM indicators.cases ORDER BY period, province",
    )
    .await;
    let s = |v: &str| Some(v.to_string());
    let hidden = |p: &str, m: &str| vec![s(p), s(m), None, None, s("t")];
    let shown = |p: &str, m: &str, c: &str, a: &str| vec![s(p), s(m), s(c), s(a), s("f")];
    assert_eq!(
        rows,
        vec![
            // 2 is below 5; 8, the next smallest, goes with it, or 60 − 50 would tell.
            hidden("1", "1403-01"),
            hidden("2", "1403-01"),
            shown("3", "1403-01", "20", "2000"),
            shown("4", "1403-01", "30", "3000"),
            // Two small cells protect each other.
            hidden("1", "1403-02"),
            hidden("2", "1403-02"),
            shown("3", "1403-02", "50", "5000"),
            shown("1", "1403-03", "40", "4000"),
            shown("2", "1403-03", "60", "6000"),
        ]
    );
    // Whatever is written on top sees NULLs, never the values under them.
    assert_eq!(
        texts(
            &web,
            "SELECT period, sum(cases), count(amount), max(amount) FROM indicators.cases \
             GROUP BY period ORDER BY period"
        )
        .await,
        vec![
            vec![s("1403-01"), s("50"), s("2"), s("3000")],
            vec![s("1403-02"), s("50"), s("1"), s("5000")],
            vec![s("1403-03"), s("100"), s("2"), s("6000")],
        ]
    );
    for sql in [
        "SELECT count(*) FROM indicators.cases WHERE cases < 5",
        "SELECT count(*) FROM indicators.cases WHERE amount = 200",
        "SELECT count(*) FROM (SELECT * FROM indicators.cases) c WHERE c.cases BETWEEN 1 AND 9",
        "SELECT count(*) FROM indicators.cases a JOIN indicators.cases b \
         ON a.period = b.period AND a.province = b.province WHERE a.amount < 1000",
    ] {
        assert_eq!(texts(&web, sql).await, vec![vec![s("0")]], "{sql}");
    }
    let e = web
        .simple_query("SELECT * FROM stats.counts")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    // The definer sees every cell.
    let stats = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(
        texts(
            &stats,
            "SELECT sum(cases), count(*) FILTER (WHERE suppressed) FROM indicators.cases"
        )
        .await,
        vec![vec![s("214"), s("0")]]
    );
    drop((web, stats));
    server.stop();
}

/// An indicator view is computed once per version of the files under it and per
/// reader's row filters, and read from those rows until the files change (the
/// server's counters tell a kept read from a computed one): a reader with other row
/// filters, or the public, computes rows of their own; a rewrite of the file, even
/// one that keeps its size and modification time, is seen at the next read, by a
/// prepared statement too.
#[tokio::test]
async fn indicator_views_are_kept_per_version_of_their_data_and_per_reader() {
    let csv = "province,period,cases,amount\n\
               1,1403-01,20,2000\n2,1403-01,30,3000\n3,1403-01,2,200\n";
    let fixture = Fixture::new()
        .admin("stats", "pw")
        .user_with("tehran", &["analyst"], &[("province_code", "2")], "tehran")
        .user("web", &["public"], "pw")
        .policy(
            "p, role:analyst, indicators.*, read, allow
             p3, role:analyst, stats.counts, province = ${user.province_code}
             p, role:public, indicators.*, read, allow",
        )
        .file("cells/counts.csv", csv)
        .source("stats", "files", &[("path", "cells")])
        .config(CASES);
    let file = fixture.path("cells/counts.csv");
    let server = fixture.start();
    let s = |v: &str| Some(v.to_string());
    // (kept, computed) reads so far.
    let reads = || {
        let server = &server;
        async move {
            let mut out = [0.0; 2];
            for (i, from) in ["kept", "computed"].into_iter().enumerate() {
                let line = format!("amar_indicator_view_reads_total{{from=\"{from}\"}}");
                out[i] = crate::support::scrape(server, &line)
                    .await
                    .unwrap_or_else(|| panic!("no {line} in /metrics"));
            }
            (out[0], out[1])
        }
    };
    let stats = connect(&server, "stats", "pw").await.unwrap();
    let view = "SELECT province, cases FROM indicators.cases ORDER BY province";
    let (kept, computed) = reads().await;
    let first = vec![
        vec![s("1"), s("20")],
        vec![s("2"), s("30")],
        vec![s("3"), s("2")],
    ];
    assert_eq!(texts(&stats, view).await, first);
    assert_eq!(reads().await, (kept, computed + 1.0), "computed");
    // Another statement on top of the same rows is served from them.
    assert_eq!(
        texts(
            &stats,
            "SELECT sum(cases) FROM indicators.cases WHERE province > 1"
        )
        .await,
        vec![vec![s("32")]]
    );
    assert_eq!(reads().await, (kept + 1.0, computed + 1.0), "kept");

    // Tehran's row filter makes another plan: rows of its own, never the admin's.
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();
    assert_eq!(texts(&tehran, view).await, vec![vec![s("2"), s("30")]]);
    assert_eq!(texts(&tehran, view).await, vec![vec![s("2"), s("30")]]);
    assert_eq!(reads().await, (kept + 2.0, computed + 2.0));
    // So does the public's form: the cell under five suppressed, the next smallest
    // beside it.
    let web = connect(&server, "web", "pw").await.unwrap();
    let public = "SELECT province, cases, suppressed FROM indicators.cases ORDER BY province";
    let shown = vec![
        vec![s("1"), None, s("t")],
        vec![s("2"), s("30"), s("f")],
        vec![s("3"), None, s("t")],
    ];
    assert_eq!(texts(&web, public).await, shown);
    assert_eq!(reads().await, (kept + 2.0, computed + 3.0));
    assert_eq!(texts(&web, public).await, shown);
    assert_eq!(reads().await, (kept + 3.0, computed + 3.0));

    // A prepared statement, planned now, executed before and after the data moves.
    let prepared = stats
        .prepare("SELECT sum(cases) FROM indicators.cases WHERE province < $1")
        .await
        .unwrap();
    let sum = |rows: Vec<tokio_postgres::Row>| rows[0].get::<_, i64>(0);
    assert_eq!(sum(stats.query(&prepared, &[&5i64]).await.unwrap()), 52);

    // The file is rewritten with the same size, and its modification time set back:
    // its version still moves (the status-change time), and the view shows it.
    let modified = std::fs::metadata(&file).unwrap().modified().unwrap();
    let same_size = csv
        .replace("1,1403-01,20,2000", "1,1403-01,90,9000")
        .replace("2,1403-01,30,3000", "2,1403-01,70,7000");
    assert_eq!(same_size.len(), csv.len());
    std::fs::write(&file, &same_size).unwrap();
    std::fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(modified)
        .unwrap();
    assert_eq!(
        std::fs::metadata(&file).unwrap().modified().unwrap(),
        modified
    );
    let second = vec![
        vec![s("1"), s("90")],
        vec![s("2"), s("70")],
        vec![s("3"), s("2")],
    ];
    assert_eq!(texts(&stats, view).await, second);
    assert_eq!(
        sum(stats.query(&prepared, &[&5i64]).await.unwrap()),
        162,
        "the prepared statement sees the new version"
    );
    assert_eq!(texts(&tehran, view).await, vec![vec![s("2"), s("70")]]);
    assert_eq!(
        texts(&web, public).await,
        vec![
            vec![s("1"), s("90"), s("f")],
            vec![s("2"), None, s("t")],
            vec![s("3"), None, s("t")],
        ]
    );

    // EXPLAIN shows the indicator's own plan, not the kept rows.
    let plan = crate::support::plan_text(&stats, "EXPLAIN SELECT * FROM indicators.cases").await;
    assert!(
        plan.contains("stats.counts") && !plan.contains("KeepExec"),
        "{plan}"
    );
    drop((stats, tehran, web));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_run_after_each_refresh_of_their_source_and_on_their_schedule() {
    let fixture = Fixture::new().admin("stats", "pw");
    let folder = fixture.path("drop");
    std::fs::create_dir(&folder).unwrap();
    let write = |name: &str, text: &str| {
        let path = folder.join(name);
        std::fs::write(&path, text).unwrap();
        // Old enough for the folder scan to take it at once.
        std::fs::File::options()
            .append(true)
            .open(&path)
            .unwrap()
            .set_modified(std::time::SystemTime::now() - Duration::from_secs(60))
            .unwrap();
    };
    write("cases_1.csv", "province,n\n1,10\n2,20\n");
    let fixture = fixture.config(
        r#"[[source]]
name = "provinces"
kind = "drop"
path = "drop"
refresh = "1s"
append = { cases = "cases_*" }

[[indicator]]
id = "cases"
title_fa = "x"
title_en = "Cases"
unit = "cases"
periodicity = "monthly"
additivity = "flow"
sql = "SELECT province, sum(n) AS value FROM provinces.cases GROUP BY province"

[[validation]]
id = "no_negative_cases"
title_fa = "x"
title_en = "No negative counts"
severity = "error"
sql = "SELECT * FROM provinces.cases WHERE n < 0"

[[validation]]
id = "heartbeat"
title_fa = "x"
title_en = "Runs every second"
severity = "info"
every = "1s"
sql = "SELECT 1 WHERE false"
"#,
    );
    let server = fixture.start();
    let client = connect(&server, "stats", "pw").await.unwrap();
    let latest = "SELECT outcome FROM amar.validation_results WHERE rule = 'no_negative_cases' \
                  ORDER BY run_at DESC LIMIT 1";
    let wait_for = |sql: &'static str, want: &'static str| {
        let client = &client;
        async move {
            for _ in 0..300 {
                let rows = texts(client, sql).await;
                if rows.first().and_then(|r| r[0].as_deref()) == Some(want) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("{sql}: never {want}: {:?}", texts(client, sql).await);
        }
    };
    wait_for(latest, "passed").await;
    wait_for(
        "SELECT CAST(verified AS VARCHAR) FROM amar.indicators WHERE id = 'cases'",
        "true",
    )
    .await;

    // A department drops a file with a negative count: the rule runs on the refresh
    // and the indicator over it is no longer verified.
    write("cases_2.csv", "province,n\n3,-5\n");
    wait_for(latest, "violated").await;
    let run = texts(
        &client,
        "SELECT trigger, violations, sample FROM amar.validation_results \
         WHERE rule = 'no_negative_cases' ORDER BY run_at DESC LIMIT 1",
    )
    .await;
    assert_eq!(run[0][0].as_deref(), Some("snapshot provinces"));
    assert_eq!(run[0][1].as_deref(), Some("1"));
    assert!(
        run[0][2].as_deref().unwrap().contains("\"n\":\"-5\""),
        "{run:?}"
    );
    let verified = texts(
        &client,
        "SELECT verified, failing_rules FROM amar.indicators WHERE id = 'cases'",
    )
    .await;
    assert_eq!(
        verified,
        vec![vec![
            Some("f".to_string()),
            Some("no_negative_cases (violated)".to_string())
        ]]
    );
    let scheduled = texts(
        &client,
        "SELECT count(*) FROM amar.validation_results WHERE rule = 'heartbeat' AND trigger = 'schedule'",
    )
    .await;
    let scheduled: i64 = scheduled[0][0].as_deref().unwrap().parse().unwrap();
    assert!(scheduled >= 2, "{scheduled} scheduled runs");
    drop(client);
    server.stop();
}

#[tokio::test]
async fn a_definition_that_cannot_work_stops_the_start_and_names_the_indicator() {
    let with = |extra: &str| Fixture::new().admin("stats", "pw").config(extra);
    let indicator = |id: &str, sql: &str| {
        format!(
            "[[indicator]]\nid = \"{id}\"\ntitle_fa = \"x\"\ntitle_en = \"x\"\nunit = \"u\"\n\
             periodicity = \"monthly\"\nadditivity = \"flow\"\nsql = \"{sql}\"\n\n"
        )
    };
    let e = with(&indicator("a", "DELETE FROM t"))
        .try_start()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(
        e.contains("indicator \"a\"") && e.contains("one query"),
        "{e}"
    );
    let cycle = format!(
        "{}{}",
        indicator("a", "SELECT * FROM indicators.b"),
        indicator("b", "SELECT * FROM indicators.a")
    );
    // Built on official figures, an indicator would show releases under embargo.
    let e = with(&indicator("a", "SELECT * FROM official.b"))
        .try_start()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(
        e.contains("indicator \"a\"") && e.contains("official figures are their releases"),
        "{e}"
    );
    let e = with(&cycle)
        .try_start()
        .err()
        .map(|e| format!("{e:#}"))
        .unwrap();
    assert!(e.contains("a → b → a"), "{e}");

    // One that is fine starts; reading it works, and a missing value column is named.
    let fine = format!(
        "{}{}",
        indicator("one", "SELECT 1 AS value"),
        indicator("two", "SELECT 2 AS v")
    );
    let server = with(&fine).start();
    let client = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(
        texts(&client, "SELECT value, suppressed FROM indicators.one").await,
        vec![vec![Some("1".into()), Some("f".into())]]
    );
    let e = client
        .simple_query("SELECT * FROM indicators.two")
        .await
        .unwrap_err();
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("value column \"value\"") && message.contains("indicator \"two\""),
        "{message}"
    );
    let e = client
        .simple_query("CREATE VIEW indicators.three AS SELECT 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "25006");
    drop(client);
    server.stop();
}
