//! Official releases through the real protocols: a release freezes an indicator's
//! cells, which a change of the source does not touch and only a revision (with a
//! class and a reason) replaces; the history answers "what was official at t"; an
//! embargoed release becomes official at its time with no restart; a tampered
//! release is found and never served; a release half-written by a crash is gone at
//! the next start. Policies hold on `official.*` as everywhere: the public reads the
//! public form, a provincial user their own province, and only the statistics office
//! may release.

use std::time::{Duration, Instant};

use amar_tests::{Fixture, TestServer, shared_demo};
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::AsArray;
use tokio_postgres::Client;
use tonic::transport::Channel;

use crate::support::{connect, flight_run, sqlstate, text_rows, texts};

/// Cells of `cases` (a minimum cell of 5) for three months.
const CELLS: &str = "province,period,cases,amount\n\
    1,1403-01,2,200\n2,1403-01,8,800\n3,1403-01,20,2000\n4,1403-01,30,3000\n\
    1,1403-02,10,100\n2,1403-02,30,300\n3,1403-02,50,5000\n\
    1,1403-03,40,4000\n2,1403-03,60,6000\n";

const POLICY: &str = "p, role:analyst, indicators.*, read, allow
p, role:analyst, amar.indicators, read, allow
p, role:analyst, official.*, read, allow
p, role:analyst, official_history.*, read, allow
p, role:analyst, amar.releases, read, allow
p, role:analyst, amar.revisions, read, allow
p, role:analyst, amar.release_calendar, read, allow
p3, role:provincial, official.cases, province = ${user.province}
p3, role:provincial, official_history.cases, province = ${user.province}
p, role:public, indicators.*, read, allow
p, role:public, official.*, read, allow
p, role:public, official_history.*, read, allow
p, role:public, amar.releases, read, allow
p, role:public, amar.revisions, read, allow
p, role:statistician, indicators.*, release, allow
p, role:statistician, amar.releases, release, allow
p, role:statistician, official.*, prerelease, allow";

/// `cases` and `amounts` over `stats.counts`; `amounts` is guarded by a rule that
/// never passes. Users (password `pw`): `stats` admin, `office` an analyst of the
/// statistics office, `ana` an analyst, `teh` a provincial analyst of province 3,
/// `web` the public.
fn fixture() -> Fixture {
    let indicator = |id: &str, value: &str| {
        format!(
            r#"[[indicator]]
id = "{id}"
title_fa = "موارد"
title_en = "Cases"
unit = "cases"
periodicity = "monthly"
dimensions = ["province", "period"]
area = "province"
period = "period"
value = "{value}"
count = "cases"
min_cell = 5
additivity = "flow"
sql = "SELECT province, period, cases, amount FROM stats.counts"
"#
        )
    };
    Fixture::new()
        .admin("stats", "pw")
        .user("office", &["analyst", "statistician"], "pw")
        .user("ana", &["analyst"], "pw")
        .user_with(
            "teh",
            &["analyst", "provincial"],
            &[("province", "3")],
            "pw",
        )
        .user("web", &["public"], "pw")
        .policy(POLICY)
        .file("cells/counts.csv", CELLS)
        .source("stats", "files", &[("path", "cells")])
        .config(&indicator("cases", "cases"))
        .config(&indicator("amounts", "amount"))
        .config(
            r#"[[validation]]
id = "amounts_reconciled"
title_fa = "x"
title_en = "Amounts reconcile with the ledger"
severity = "error"
guards = ["indicators.amounts"]
sql = "SELECT 1 AS unreconciled"
"#,
        )
}

async fn as_user(server: &TestServer, user: &str) -> Client {
    connect(server, user, "pw").await.unwrap()
}

async fn refused(client: &Client, sql: &str) -> (String, String) {
    let e = client
        .simple_query(sql)
        .await
        .expect_err("the statement is refused");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    (sqlstate(&e), message)
}

/// Waits until `sql` answers `want` (the validation rules run at start, sources
/// change under the server).
async fn until(client: &Client, sql: &str, want: &[&[&str]]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let got = texts(client, sql).await;
        if got == text_rows(want) {
            return;
        }
        assert!(Instant::now() < deadline, "{sql}: still {got:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Rows as text, NULL as "NULL".
async fn cells(client: &Client, sql: &str) -> Vec<String> {
    texts(client, sql)
        .await
        .into_iter()
        .map(|r| {
            r.into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect::<Vec<_>>()
                .join("|")
        })
        .collect()
}

async fn flight(server: &TestServer, user: &str) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.flight_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake(user, "pw").await.unwrap();
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_freezes_figures_that_only_a_revision_with_a_reason_changes() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let office = as_user(&server, "office").await;
    let released = texts(
        &office,
        "CALL amar.release(indicators => 'cases', period => '1403-01')",
    )
    .await;
    let [id, period, indicators, status, _, jalali, hash] = &released[0][..] else {
        panic!("{released:?}");
    };
    assert_eq!(
        (id.as_deref(), period.as_deref(), indicators.as_deref()),
        (
            Some("1403-01-1"),
            Some("1403-01"),
            Some("cases (revision 1)")
        )
    );
    assert_eq!(status.as_deref(), Some("published"));
    // The Jalali date of today, in Tehran.
    assert!(jalali.as_deref().unwrap().starts_with("14"), "{jalali:?}");
    let hash = hash.clone().unwrap();
    assert_eq!(hash.len(), 64);

    let official = "SELECT province, cases, amount, revision, release_id FROM official.cases \
                    WHERE period = '1403-01' ORDER BY province";
    let frozen = cells(&office, official).await;
    assert_eq!(
        frozen,
        [
            "1|2|200|1|1403-01-1",
            "2|8|800|1|1403-01-1",
            "3|20|2000|1|1403-01-1",
            "4|30|3000|1|1403-01-1"
        ]
    );

    // The source changes: the live indicator follows, the official figure does not.
    std::fs::write(
        fixture.path("cells/counts.csv"),
        CELLS.replace("3,1403-01,20,2000", "3,1403-01,25,2500"),
    )
    .unwrap();
    until(
        &office,
        "SELECT cases FROM indicators.cases WHERE period = '1403-01' AND province = 3",
        &[&["25"]],
    )
    .await;
    assert_eq!(cells(&office, official).await, frozen);
    assert_eq!(
        texts(
            &office,
            "SELECT manifest_sha256, status FROM amar.releases WHERE release_id = '1403-01-1'"
        )
        .await,
        text_rows(&[&[&hash, "published"]])
    );

    // Releasing it again is a revision: it needs a class and a reason.
    let again = "CALL amar.release('cases', '1403-01')";
    let (code, message) = refused(&office, again).await;
    assert_eq!(code, "22023", "{message}");
    assert!(message.contains("needs a class"), "{message}");
    let (code, message) = refused(
        &office,
        "CALL amar.release('cases', '1403-01', class => 'whim', reason => 'x')",
    )
    .await;
    assert_eq!(code, "22023", "{message}");
    let revised = texts(
        &office,
        "CALL amar.release('cases', '1403-01', class => 'revision', \
         reason => 'Province 3 sent its late returns')",
    )
    .await;
    assert_eq!(revised[0][0].as_deref(), Some("1403-01-2"));
    assert_eq!(revised[0][2].as_deref(), Some("cases (revision 2)"));
    assert_eq!(
        cells(&office, official).await,
        [
            "1|2|200|2|1403-01-2",
            "2|8|800|2|1403-01-2",
            "3|25|2500|2|1403-01-2",
            "4|30|3000|2|1403-01-2"
        ]
    );

    // The history keeps both; what was official at a moment is one query.
    let history = cells(
        &office,
        "SELECT release_id, revision, superseded_by FROM official_history.cases \
         WHERE period = '1403-01' AND province = 3 ORDER BY revision",
    )
    .await;
    assert_eq!(history, ["1403-01-1|1|1403-01-2", "1403-01-2|2|NULL"]);
    let as_of = |at: &str| {
        format!(
            "SELECT cases FROM official_history.cases WHERE period = '1403-01' AND province = 3 \
             AND released_at <= {at} AND (superseded_at IS NULL OR superseded_at > {at})"
        )
    };
    let first_at =
        "(SELECT released_at FROM official_history.cases WHERE release_id = '1403-01-1' LIMIT 1)";
    assert_eq!(cells(&office, &as_of(first_at)).await, ["20"]);
    assert_eq!(cells(&office, &as_of("now()")).await, ["25"]);
    assert_eq!(
        cells(
            &office,
            "SELECT indicator, period, cell, old_value, new_value, old_release_id, release_id, \
             class, reason FROM amar.revisions"
        )
        .await,
        [
            "cases|1403-01|province=3, period=1403-01|20|25|1403-01-1|1403-01-2|revision|Province 3 sent its late returns"
        ]
    );
    assert_eq!(
        cells(
            &office,
            "SELECT release_id, status FROM amar.releases ORDER BY release_id"
        )
        .await,
        ["1403-01-1|superseded", "1403-01-2|published"]
    );

    // The public reads the public form: provinces 1 (2 cases) and 2, its complement,
    // are suppressed, in the figures and in their history.
    let web = as_user(&server, "web").await;
    let public = "SELECT province, cases, amount, suppressed FROM official.cases \
                  WHERE period = '1403-01' ORDER BY province";
    assert_eq!(
        cells(&web, public).await,
        [
            "1|NULL|NULL|t",
            "2|NULL|NULL|t",
            "3|25|2500|f",
            "4|30|3000|f"
        ]
    );
    assert_eq!(
        cells(
            &web,
            "SELECT count(*), count(cases), sum(cases) FROM official_history.cases WHERE province <= 2"
        )
        .await,
        ["4|0|NULL"]
    );
    // The public's revisions are those of the cells it reads.
    assert_eq!(
        cells(
            &web,
            "SELECT cell, old_value, new_value FROM amar.revisions"
        )
        .await,
        ["province=3, period=1403-01|20|25"]
    );
    // A provincial analyst reads their own province, and no other's revision.
    let teh = as_user(&server, "teh").await;
    assert_eq!(
        cells(&teh, "SELECT DISTINCT province FROM official.cases").await,
        ["3"]
    );
    assert_eq!(
        cells(&teh, "SELECT DISTINCT province FROM official_history.cases").await,
        ["3"]
    );
    assert_eq!(
        cells(&teh, "SELECT cell, old_value, reason FROM amar.revisions").await,
        ["|NULL|Province 3 sent its late returns"]
    );

    // Over Flight SQL the public reads the same public form; a CALL is refused.
    let mut client = flight(&server, "web").await;
    let batches = flight_run(&mut client, public).await.unwrap();
    let suppressed: Vec<bool> = batches
        .iter()
        .flat_map(|b| {
            b.column_by_name("suppressed")
                .unwrap()
                .as_boolean()
                .iter()
                .map(|v| v.unwrap())
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(suppressed, [true, true, false, false]);
    let mut office_flight = flight(&server, "office").await;
    let e = office_flight
        .execute("CALL amar.release('cases', '1403-02')".to_string(), None)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Flight SQL runs queries"), "{e}");

    // Only the statistics office releases.
    for user in ["ana", "teh", "web"] {
        let client = as_user(&server, user).await;
        let (code, message) = refused(&client, "CALL amar.release('cases', '1403-02')").await;
        assert_eq!(code, "42501", "{user}: {message}");
        let (code, _) = refused(&client, "CALL amar.verify_releases()").await;
        assert_eq!(code, "42501", "{user}");
    }
    // An indicator whose rules did not pass is released only with a written reason,
    // which is kept.
    until(
        &office,
        "SELECT verified FROM amar.indicators WHERE id = 'amounts'",
        &[&["f"]],
    )
    .await;
    let (code, message) = refused(&office, "CALL amar.release('amounts', '1403-01')").await;
    assert_eq!(code, "55000", "{message}");
    assert!(message.contains("amounts_reconciled"), "{message}");
    let forced = texts(
        &office,
        "CALL amar.release('amounts', '1403-01', force => 'The ledger closes late; figures checked by hand')",
    )
    .await;
    assert_eq!(forced[0][0].as_deref(), Some("1403-01-3"));
    assert_eq!(
        cells(
            &office,
            "SELECT forced FROM amar.releases WHERE release_id = '1403-01-3'"
        )
        .await,
        ["The ledger closes late; figures checked by hand"]
    );
    // Bad requests get clear errors.
    for (sql, want) in [
        ("CALL amar.release('nothing', '1403-01')", "42704"),
        ("CALL amar.release('cases', '1403-09')", "22023"),
        ("CALL amar.release('cases', '../etc')", "22023"),
        (
            "CALL amar.release('cases', '1403-02', publish_at => '2001-01-01 00:00')",
            "22023",
        ),
        (
            "CALL amar.release('cases', '1403-02', publish_at => 'soon')",
            "22023",
        ),
        (
            "CALL amar.release('cases', '1403-02', colour => 'red')",
            "42883",
        ),
        (
            "CALL amar.release('cases', '1403-02', class => 'revision')",
            "22023",
        ),
        ("CALL amar.nothing()", "42883"),
        (
            "CALL amar.release(indicators => 'cases', '1403-02')",
            "42601",
        ),
    ] {
        let (code, message) = refused(&office, sql).await;
        assert_eq!(code, want, "{sql}: {message}");
    }
    drop((office, web, teh));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_embargoed_release_becomes_official_at_its_time_with_no_restart() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let office = as_user(&server, "office").await;
    texts(&office, "CALL amar.release('cases', '1403-02')").await;
    std::fs::write(
        fixture.path("cells/counts.csv"),
        CELLS.replace("3,1403-02,50,5000", "3,1403-02,55,5500"),
    )
    .unwrap();
    until(
        &office,
        "SELECT cases FROM indicators.cases WHERE period = '1403-02' AND province = 3",
        &[&["55"]],
    )
    .await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(6);
    let embargoed = texts(
        &office,
        &format!(
            "CALL amar.release('cases', '1403-02', publish_at => '{}', class => 'revision', reason => 'late returns')",
            at.to_rfc3339()
        ),
    )
    .await;
    assert_eq!(embargoed[0][3].as_deref(), Some("embargoed"));
    // A second revision while one waits is refused.
    let (code, _) = refused(
        &office,
        "CALL amar.release('cases', '1403-02', class => 'correction', reason => 'again')",
    )
    .await;
    assert_eq!(code, "55000");

    let figure =
        "SELECT cases, revision FROM official.cases WHERE period = '1403-02' AND province = 3";
    let ana = as_user(&server, "ana").await;
    let web = as_user(&server, "web").await;
    // Prepared before the embargo ends, as a pool keeps it.
    let prepared = ana.prepare(figure).await.unwrap();
    assert_eq!(cells(&ana, figure).await, ["50|1"]);
    assert_eq!(cells(&web, figure).await, ["50|1"]);
    // The office and admins see it under embargo.
    assert_eq!(cells(&office, figure).await, ["55|2"]);
    let stats = as_user(&server, "stats").await;
    assert_eq!(cells(&stats, figure).await, ["55|2"]);
    // The public learns that a release is coming, and when, but not why.
    assert_eq!(
        cells(
            &web,
            "SELECT status, reason, class FROM amar.releases WHERE release_id = '1403-02-2'"
        )
        .await,
        ["embargoed|NULL|NULL"]
    );
    assert!(
        cells(&web, "SELECT cell FROM amar.revisions")
            .await
            .is_empty()
    );
    assert!(
        chrono::Utc::now() < at,
        "the checks before the embargo ended in time"
    );

    // At its time it is official for everyone, with no restart.
    until(&web, figure, &[&["55", "2"]]).await;
    assert_eq!(cells(&ana, figure).await, ["55|2"]);
    let row = ana.query_one(&prepared, &[]).await.unwrap();
    assert_eq!(
        (row.get::<_, i64>(0), row.get::<_, i32>(1)),
        (55, 2),
        "a statement prepared before the embargo ended"
    );
    assert_eq!(
        cells(
            &web,
            "SELECT status, reason FROM amar.releases WHERE release_id = '1403-02-2'"
        )
        .await,
        ["published|late returns"]
    );
    drop((office, ana, web, stats));
    server.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tampered_release_is_found_and_never_served_and_a_half_written_one_is_gone() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let stats = as_user(&server, "stats").await;
    texts(&stats, "CALL amar.release('cases', '1403-01')").await;
    texts(&stats, "CALL amar.release('cases', '1403-03')").await;
    let periods = "SELECT DISTINCT period FROM official.cases ORDER BY period";
    assert_eq!(cells(&stats, periods).await, ["1403-01", "1403-03"]);
    assert_eq!(
        cells(&stats, "CALL amar.verify_releases()").await,
        ["1403-01-1|ok|", "1403-03-1|ok|"]
    );

    // A figure changed on disk while the server runs: verify finds it, and the
    // release is no longer official.
    let file = fixture.path("data/releases/1403-03-1/cases.full.parquet");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&file, &bytes).unwrap();
    let verified = cells(&stats, "CALL amar.verify_releases()").await;
    assert_eq!(verified[0], "1403-01-1|ok|");
    assert!(
        verified[1].starts_with("1403-03-1|broken|cases.full.parquet does not match the manifest"),
        "{verified:?}"
    );
    assert_eq!(cells(&stats, periods).await, ["1403-01"]);
    drop(stats);
    server.stop();

    // A release interrupted mid-write leaves only its partial folder.
    let partial = fixture.path("data/releases/.partial-1403-02-1");
    std::fs::create_dir_all(&partial).unwrap();
    std::fs::write(partial.join("release.json"), "{\"id\": \"1403-0").unwrap();
    let server = fixture.try_start().unwrap();
    let stats = as_user(&server, "stats").await;
    assert!(!partial.exists(), "the next start removes it");
    assert_eq!(cells(&stats, periods).await, ["1403-01"]);
    let listed = cells(
        &stats,
        "SELECT release_id, status, problem FROM amar.releases ORDER BY release_id",
    )
    .await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].starts_with("1403-01-1|published|"), "{listed:?}");
    assert!(
        listed[1].starts_with("1403-03-1|broken|cases.full.parquet does not match"),
        "{listed:?}"
    );
    // A period whose release broke can be released again, under a new id.
    let again = texts(&stats, "CALL amar.release('cases', '1403-03')").await;
    assert_eq!(again[0][0].as_deref(), Some("1403-03-2"));
    assert_eq!(cells(&stats, periods).await, ["1403-01", "1403-03"]);
    drop(stats);
    server.stop();
}

#[tokio::test]
async fn the_demos_embargoed_release_is_seen_only_by_the_statistics_office() {
    let server = shared_demo();
    let count = "SELECT count(*) FROM official.average_wage WHERE period = '1403-12'";
    let demo = |user: &'static str| async move {
        let client = connect(server, user, user).await.unwrap();
        cells(&client, count).await
    };
    let provinces = demo("statistician").await;
    assert_ne!(provinces, ["0"], "the office reads it under embargo");
    assert_eq!(demo("admin").await, provinces);
    assert_eq!(demo("tehran").await, ["0"]);
    assert_eq!(demo("public").await, ["0"]);
    // What the office will publish is what the indicator shows now.
    let statistician = connect(server, "statistician", "statistician")
        .await
        .unwrap();
    assert_eq!(
        cells(
            &statistician,
            "SELECT count(*) FROM official.average_wage o JOIN indicators.average_wage i \
             ON o.province_code = i.province_code AND o.period = i.period \
             WHERE abs(o.value - i.value) < 0.001"
        )
        .await,
        provinces
    );
    // Tehran reads its own province of what is published.
    let tehran = connect(server, "tehran", "tehran").await.unwrap();
    assert_eq!(
        cells(
            &tehran,
            "SELECT DISTINCT province_code FROM official.claims_per_thousand"
        )
        .await,
        ["23"]
    );
}

/// `amar release …` as the statistics office runs it, against the server.
async fn cli(
    server: &TestServer,
    user: &str,
    password: &str,
    args: &[&str],
) -> anyhow::Result<String> {
    let url = format!("postgres://127.0.0.1:{}/amar", server.pg_addr.port());
    let mut all = args.to_vec();
    all.extend(["--url", &url, "--user", user]);
    let command = amar_server::release_cli::parse(&all)?;
    amar_server::release_cli::execute(command, password).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_release_command_publishes_revises_lists_verifies_and_exports_the_calendar() {
    let fixture = fixture().config(
        r#"[[release]]
indicators = ["cases"]
period = "1403-01"
at = "2020-01-01 10:00"

[[release]]
indicators = ["cases"]
period = "1403-02"
at = "1499/01/01 10:00"
moved = [{ from = "1498/12/01 10:00", reason = "the ministry's data came late" }]
"#,
    );
    let server = fixture.try_start().unwrap();
    let out = cli(
        &server,
        "office",
        "pw",
        &["publish", "--indicators", "cases", "--period", "1403-01"],
    )
    .await
    .unwrap();
    assert!(out.contains("release_id: 1403-01-1\n"), "{out}");
    assert!(out.contains("status: published\n"), "{out}");
    // A revision without its reason is refused by the command itself; with one, the
    // server's refusal of an unknown class comes back with its SQLSTATE.
    let revise = |class: &'static str, reason: Option<&'static str>| {
        let mut args = vec![
            "revise",
            "--indicators",
            "cases",
            "--period",
            "1403-01",
            "--class",
            class,
        ];
        args.extend(reason.map(|r| ["--reason", r]).into_iter().flatten());
        args
    };
    let e = cli(&server, "office", "pw", &revise("revision", None))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("needs --class and --reason"), "{e}");
    let e = cli(&server, "office", "pw", &revise("whim", Some("x")))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("(SQLSTATE 22023)"), "{e}");
    let out = cli(
        &server,
        "office",
        "pw",
        &revise("correction", Some("Province 4 counted twice")),
    )
    .await
    .unwrap();
    assert!(out.contains("indicators: cases (revision 2)\n"), "{out}");
    // Who may not release, may not through the command either; a wrong password is
    // refused at sign-in.
    let e = cli(
        &server,
        "ana",
        "pw",
        &["publish", "--indicators", "cases", "--period", "1403-02"],
    )
    .await
    .unwrap_err();
    assert!(e.to_string().contains("(SQLSTATE 42501)"), "{e}");
    let e = cli(&server, "office", "nope", &["list"]).await.unwrap_err();
    assert!(e.to_string().contains("cannot sign in"), "{e}");

    let out = cli(&server, "office", "pw", &["list"]).await.unwrap();
    assert!(
        out.contains("release_id: 1403-01-1\n") && out.contains("status: superseded\n"),
        "{out}"
    );
    assert!(
        out.contains("class: correction\nreason: Province 4 counted twice\n"),
        "{out}"
    );
    let out = cli(&server, "office", "pw", &["verify"]).await.unwrap();
    assert!(out.ends_with("2 releases match their manifests\n"), "{out}");

    // The calendar: the first announced release was made (late, long after 2020),
    // the second is planned; as iCalendar, one event each.
    let office = as_user(&server, "office").await;
    assert_eq!(
        cells(
            &office,
            "SELECT period, status, coalesce(CAST(on_time AS VARCHAR), '-'), coalesce(release_id, '-') \
             FROM amar.release_calendar ORDER BY scheduled_at"
        )
        .await,
        ["1403-01|published|false|1403-01-1", "1403-02|planned|-|-"]
    );
    let ics = cli(&server, "office", "pw", &["calendar"]).await.unwrap();
    assert!(
        ics.starts_with("BEGIN:VCALENDAR\r\n") && ics.ends_with("END:VCALENDAR\r\n"),
        "{ics}"
    );
    assert_eq!(ics.matches("BEGIN:VEVENT\r\n").count(), 2, "{ics}");
    assert!(ics.contains("DTSTART:20200101T063000Z\r\n"), "{ics}");

    // Tampered: verify fails, naming the release.
    let file = fixture.path("data/releases/1403-01-2/release.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("Province 4", "Province 5")).unwrap();
    let e = cli(&server, "office", "pw", &["verify"]).await.unwrap_err();
    let e = format!("{e:#}");
    assert!(
        e.contains("release_id: 1403-01-2\nstatus: broken\nproblem: release.json does not match")
            && e.ends_with("1 releases do not match their manifest"),
        "{e}"
    );
    drop(office);
    server.stop();
}
