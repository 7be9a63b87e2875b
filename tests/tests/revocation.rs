//! Revocation and granted roles: a user disabled, or whose password changed, loses
//! their open pgwire sessions (FATAL 28000, then the close) and their Flight tokens
//! at their next statement; Flight clients that send Basic authorization on every
//! call hold one session, not one per call; and the roles a policy's `g` lines grant
//! (`role:public`, `role:admin`) mean what the same roles in the users file mean.

use std::time::Duration;

use amar_tests::{Fixture, TestServer};
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use futures::TryStreamExt;
use tokio_postgres::Client;
use tonic::Code;
use tonic::transport::Channel;

use crate::support::{connect, scrape, sqlstate, text_rows, texts};

/// Cells of an indicator with a minimum cell of 5 (as in `indicators.rs`).
const CELLS: &str = "province,period,cases,amount\n\
    1,1403-01,2,200\n2,1403-01,8,800\n3,1403-01,20,2000\n4,1403-01,30,3000\n\
    1,1403-02,1,100\n2,1403-02,3,300\n3,1403-02,50,5000\n\
    1,1403-03,40,4000\n2,1403-03,60,6000\n";

/// Grants to roles, and two roles granted by the policy alone.
const POLICY: &str = "p, role:analyst, stats.*, read, allow\n\
    p, role:public, stats.*, read, allow\n\
    p, role:public, indicators.*, read, allow\n\
    g, web, role:public\n\
    g, boss, role:admin\n";

/// A server over `stats.counts` and the indicator `cases` on it. By the users file
/// `stats` is an admin, `ana` an analyst and `fan` a public user; `web` (public) and
/// `boss` (admin) have no roles there, only the policy's `g` lines. Passwords: `pw`.
fn fixture() -> Fixture {
    Fixture::new()
        .admin("stats", "pw")
        .user("ana", &["analyst"], "pw")
        .user("fan", &["public"], "pw")
        .user("web", &[], "pw")
        .user("boss", &[], "pw")
        .policy(POLICY)
        .file("cells/counts.csv", CELLS)
        .source("stats", "files", &[("path", "cells")])
        .config(
            r#"[[indicator]]
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
"#,
        )
}

/// The error of a statement in a revoked session: FATAL 28000, naming the user.
fn assert_ended(e: &tokio_postgres::Error, user: &str) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a server error: {e:?}"));
    assert_eq!(
        (db.code().code(), db.severity()),
        ("28000", "FATAL"),
        "{e:?}"
    );
    assert_eq!(
        db.message(),
        format!(
            "the session of user \"{user}\" has ended: the user was disabled or their password changed; sign in again"
        )
    );
}

/// Waits for the server to close `client`'s connection; a further statement then
/// fails as closed, not with another error.
async fn assert_closed(client: &Client) {
    for _ in 0..50 {
        if client.is_closed() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let e = client.simple_query("SELECT 1").await.unwrap_err();
    assert!(e.is_closed(), "the connection is closed: {e:?}");
}

async fn flight(server: &TestServer) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.flight_addr))
        .unwrap()
        .connect()
        .await
        .expect("the Flight port accepts connections");
    FlightSqlServiceClient::new(channel)
}

/// The gRPC code of a Flight error (the client wraps a failed handshake's status
/// in text).
fn code(e: &FlightError) -> Code {
    match e {
        FlightError::Tonic(status) => status.code(),
        FlightError::Arrow(datafusion::arrow::error::ArrowError::IpcError(m))
            if m.contains("does not have valid authentication credentials") =>
        {
            Code::Unauthenticated
        }
        other => panic!("not a gRPC status: {other:?}"),
    }
}

/// A Flight call refused because its user's standing ended.
fn assert_revoked(e: &FlightError) {
    assert_eq!(code(e), Code::Unauthenticated, "{e:?}");
    assert!(e.to_string().contains("sign in again"), "{e}");
}

const SELECT_ONE: &str = "SELECT 1 AS one";

#[tokio::test]
async fn disabling_a_user_ends_their_open_pgwire_session() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let ana = connect(&server, "ana", "pw").await.unwrap();
    let stats = connect(&server, "stats", "pw").await.unwrap();
    let sum = "SELECT sum(cases) FROM stats.counts";
    assert_eq!(texts(&ana, sum).await, text_rows(&[&["214"]]));

    fixture.edit_users(|users| users.disable("ana"));
    let e = ana.simple_query(sum).await.unwrap_err();
    assert_ended(&e, "ana");
    assert_closed(&ana).await;
    let e = connect(&server, "ana", "pw").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01", "a disabled user cannot sign in");
    // Everyone else's sessions go on.
    assert_eq!(texts(&stats, sum).await, text_rows(&[&["214"]]));
    drop((ana, stats));
    server.stop();
}

#[tokio::test]
async fn a_password_change_ends_open_sessions_and_flight_tokens() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let ana = connect(&server, "ana", "pw").await.unwrap();
    assert_eq!(texts(&ana, SELECT_ONE).await, text_rows(&[&["1"]]));
    let mut before = flight(&server).await;
    before.handshake("ana", "pw").await.expect("ana logs in");
    before.execute(SELECT_ONE.into(), None).await.unwrap();

    fixture.edit_users(|users| users.set_password("ana", "new-pw"));
    // Through the extended protocol this time: the Parse is refused.
    let e = ana.query(SELECT_ONE, &[]).await.unwrap_err();
    assert_ended(&e, "ana");
    assert_closed(&ana).await;
    let e = before.execute(SELECT_ONE.into(), None).await.unwrap_err();
    assert_revoked(&e);

    // The old password opens nothing; the new one opens both front ends.
    let e = connect(&server, "ana", "pw").await.unwrap_err();
    assert_eq!(sqlstate(&e), "28P01");
    let e = flight(&server)
        .await
        .handshake("ana", "pw")
        .await
        .unwrap_err();
    assert_eq!(code(&e), Code::Unauthenticated);
    let again = connect(&server, "ana", "new-pw").await.unwrap();
    assert_eq!(texts(&again, SELECT_ONE).await, text_rows(&[&["1"]]));
    let mut after = flight(&server).await;
    after.handshake("ana", "new-pw").await.unwrap();
    after.execute(SELECT_ONE.into(), None).await.unwrap();
    drop((ana, again, before, after));
    server.stop();
}

#[tokio::test]
async fn flight_calls_with_basic_auth_on_every_call_leave_one_session() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let mut client = flight(&server).await;
    // No handshake: every call carries `ana:pw` (base64 "YW5hOnB3").
    client.set_header("authorization", "Basic YW5hOnB3");
    for _ in 0..50 {
        client.execute(SELECT_ONE.into(), None).await.unwrap();
    }
    let info = client.execute(SELECT_ONE.into(), None).await.unwrap();
    let ticket = info.endpoint[0].ticket.clone().expect("a ticket");
    let batches: Vec<_> = client
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    assert_eq!(batches.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
    let gauge = "amar_connections{protocol=\"flight\"}";
    let sessions = scrape(&server, gauge).await.expect("the Flight gauge");
    assert!(
        (1.0..=2.0).contains(&sessions),
        "{sessions} Flight sessions after 51 calls"
    );

    // A wrong password opens no session.
    let mut wrong = flight(&server).await;
    wrong.set_header("authorization", "Basic YW5hOndyb25n"); // ana:wrong
    let e = wrong.execute(SELECT_ONE.into(), None).await.unwrap_err();
    assert_eq!(code(&e), Code::Unauthenticated);
    assert_eq!(scrape(&server, gauge).await, Some(sessions));

    // The kept session ends with its user's standing.
    fixture.edit_users(|users| users.disable("ana"));
    let e = client.execute(SELECT_ONE.into(), None).await.unwrap_err();
    assert_revoked(&e);
    drop((client, wrong));
    server.stop();
}

#[tokio::test]
async fn a_policy_grant_of_the_public_role_suppresses_small_cells() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let web = connect(&server, "web", "pw").await.unwrap();
    let fan = connect(&server, "fan", "pw").await.unwrap();
    let ana = connect(&server, "ana", "pw").await.unwrap();
    let s = |v: &str| Some(v.to_string());
    let hidden = |p: &str, m: &str| vec![s(p), s(m), None, None, s("t")];
    let shown = |p: &str, m: &str, c: &str, a: &str| vec![s(p), s(m), s(c), s(a), s("f")];
    let expected = vec![
        hidden("1", "1403-01"),
        hidden("2", "1403-01"),
        shown("3", "1403-01", "20", "2000"),
        shown("4", "1403-01", "30", "3000"),
        hidden("1", "1403-02"),
        hidden("2", "1403-02"),
        shown("3", "1403-02", "50", "5000"),
        shown("1", "1403-03", "40", "4000"),
        shown("2", "1403-03", "60", "6000"),
    ];
    let cells = "SELECT province, period, cases, amount, suppressed FROM indicators.cases \
                 ORDER BY period, province";
    // Granted by a `g` line or by the users file, the public role is the same.
    assert_eq!(
        texts(&web, cells).await,
        expected,
        "web, public by the policy"
    );
    assert_eq!(
        texts(&fan, cells).await,
        expected,
        "fan, public by the users file"
    );

    // The public role reads published statistics only, whatever the policy grants
    // it; an analyst with the same grant reads the table.
    for public in [&web, &fan] {
        let e = public
            .simple_query("SELECT * FROM stats.counts")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "42501");
    }
    assert_eq!(
        texts(&ana, "SELECT sum(cases) FROM stats.counts").await,
        text_rows(&[&["214"]])
    );
    assert_eq!(
        texts(&web, "SHOW is_superuser").await,
        text_rows(&[&["off"]])
    );
    drop((web, fan, ana));
    server.stop();
}

#[tokio::test]
async fn a_policy_grant_of_admin_makes_an_admin() {
    let fixture = fixture();
    let server = fixture.try_start().unwrap();
    let boss = connect(&server, "boss", "pw").await.unwrap();
    let ana = connect(&server, "ana", "pw").await.unwrap();
    assert_eq!(
        texts(&boss, "SHOW is_superuser").await,
        text_rows(&[&["on"]])
    );
    // The query log is the admins' (and auditors'): boss reads it, ana may not.
    texts(&boss, "SELECT count(*) FROM amar.query_log").await;
    let e = ana
        .simple_query("SELECT count(*) FROM amar.query_log")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42501");
    // Everything, with no grant of its own and no cell suppressed.
    assert_eq!(
        texts(
            &boss,
            "SELECT (SELECT sum(cases) FROM stats.counts), \
             (SELECT count(*) FROM indicators.cases WHERE suppressed)"
        )
        .await,
        text_rows(&[&["214", "0"]])
    );
    let stats = connect(&server, "stats", "pw").await.unwrap();
    let superuser = "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = 'boss'";
    assert_eq!(texts(&stats, superuser).await, text_rows(&[&["t"]]));

    // A disabled user has no roles at all, whatever the policy grants.
    fixture.edit_users(|users| users.disable("boss"));
    assert_eq!(texts(&stats, superuser).await, text_rows(&[&["f"]]));
    let e = boss.simple_query("SELECT 1").await.unwrap_err();
    assert_ended(&e, "boss");
    drop((boss, ana, stats));
    server.stop();
}
