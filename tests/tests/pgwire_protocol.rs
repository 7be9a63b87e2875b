//! The protocol as drivers use it: prepared statements, bound parameters, portals with
//! row limits, transactions, SET/SHOW, COPY, several statements in one query.

use futures::{StreamExt, TryStreamExt, pin_mut};
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use crate::support::{admin, sqlstate};

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn prepared_statement_with_bound_parameters_matches_literal_query() {
    let client = admin().await;
    let statement = client
        .prepare(
            "SELECT count(*) AS n, sum(contribution) AS due FROM insurance.contributions \
             WHERE province_code = $1 AND period >= $2",
        )
        .await
        .unwrap();
    assert_eq!(statement.params(), &[Type::INT2, Type::DATE]);
    assert_eq!(statement.columns()[0].name(), "n");
    let since = chrono::NaiveDate::from_ymd_opt(2024, 3, 20).unwrap();
    for province in [23i16, 9, 16] {
        let bound: i64 = client
            .query_one(&statement, &[&province, &since])
            .await
            .unwrap()
            .get(0);
        let literal: i64 = client
            .query_one(
                &format!(
                    "SELECT count(*) FROM insurance.contributions WHERE province_code = {province} AND period >= DATE '2024-03-20'"
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(bound, literal, "province {province}");
        assert!(bound > 0);
    }
}

#[tokio::test]
async fn portal_with_row_limit_fetches_in_chunks() {
    let mut client = admin().await;
    let total: i64 = client
        .query_one("SELECT count(*) FROM insurance.insured_persons", &[])
        .await
        .unwrap()
        .get(0);
    let transaction = client.transaction().await.unwrap();
    let statement = transaction
        .prepare("SELECT id FROM insurance.insured_persons ORDER BY id")
        .await
        .unwrap();
    let portal = transaction.bind(&statement, &[]).await.unwrap();
    let mut seen = 0i64;
    let mut chunks = 0;
    let mut last = i64::MIN;
    loop {
        let chunk = transaction.query_portal(&portal, 500).await.unwrap();
        if chunk.is_empty() {
            break;
        }
        assert!(chunk.len() <= 500);
        for row in &chunk {
            let id: i64 = row.get(0);
            assert!(id > last, "rows stay in order across fetches");
            last = id;
        }
        seen += chunk.len() as i64;
        chunks += 1;
    }
    transaction.commit().await.unwrap();
    assert_eq!(seen, total);
    assert_eq!(chunks, (total + 499) / 500);
}

#[tokio::test]
async fn row_stream_is_consumed_lazily() {
    let client = admin().await;
    let params: Vec<i64> = vec![];
    let stream = client
        .query_raw(
            "SELECT value FROM generate_series(1, 200000) AS t(value)",
            params,
        )
        .await
        .unwrap();
    pin_mut!(stream);
    let mut sum = 0i64;
    while let Some(row) = stream.next().await {
        sum += row.unwrap().get::<_, i64>(0);
    }
    assert_eq!(sum, 200000 * 200001 / 2);
}

#[tokio::test]
async fn transactions_are_accepted_and_a_failed_one_waits_for_rollback() {
    let client = admin().await;
    client.batch_execute("BEGIN").await.unwrap();
    client.query("SELECT 1", &[]).await.unwrap();
    client.batch_execute("COMMIT").await.unwrap();
    client
        .batch_execute("START TRANSACTION ISOLATION LEVEL READ COMMITTED READ ONLY")
        .await
        .unwrap();
    let e = client
        .query("SELECT * FROM no_such_table", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P01");
    let e = client.query("SELECT 1", &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "25P02");
    client.batch_execute("ROLLBACK").await.unwrap();
    let one: i64 = client
        .query_one("SELECT 1::bigint", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(one, 1);
    client
        .batch_execute("BEGIN; SAVEPOINT a; RELEASE SAVEPOINT a; COMMIT")
        .await
        .unwrap();
}

#[tokio::test]
async fn set_and_show_what_drivers_send() {
    let client = admin().await;
    let show = |name: &'static str| {
        let client = &client;
        async move {
            rows(&client.simple_query(&format!("SHOW {name}")).await.unwrap())[0][0]
                .clone()
                .unwrap()
        }
    };
    assert_eq!(show("server_version").await, "16.4");
    assert_eq!(show("client_encoding").await, "UTF8");
    assert_eq!(show("standard_conforming_strings").await, "on");
    assert_eq!(show("integer_datetimes").await, "on");
    client
        .batch_execute(
            "SET extra_float_digits = 3; SET application_name = 'پرسش'; \
             SET SESSION CHARACTERISTICS AS TRANSACTION ISOLATION LEVEL READ COMMITTED; \
             SET search_path TO insurance, public; SET TIME ZONE 'UTC'",
        )
        .await
        .unwrap();
    assert_eq!(show("application_name").await, "پرسش");
    assert_eq!(show("timezone").await, "UTC");
    // search_path decides where unqualified names resolve.
    let n: i64 = client
        .query_one("SELECT count(*) FROM provinces", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 31);
    let e = client
        .batch_execute("SET no_such_parameter = 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42704");
    client
        .batch_execute("RESET ALL; DISCARD ALL")
        .await
        .unwrap();
    assert_eq!(show("TimeZone").await, "Asia/Tehran");
}

#[tokio::test]
async fn time_zone_shapes_timestamptz_output() {
    let client = admin().await;
    client.batch_execute("SET TIME ZONE 'UTC'").await.unwrap();
    let utc = rows(
        &client
            .simple_query("SELECT TIMESTAMPTZ '2024-03-20 12:00:00+00'")
            .await
            .unwrap(),
    );
    client
        .batch_execute("SET TIME ZONE 'Asia/Tehran'")
        .await
        .unwrap();
    let tehran = rows(
        &client
            .simple_query("SELECT TIMESTAMPTZ '2024-03-20 12:00:00+00'")
            .await
            .unwrap(),
    );
    assert_eq!(utc[0][0].as_deref(), Some("2024-03-20 12:00:00+00"));
    assert_eq!(tehran[0][0].as_deref(), Some("2024-03-20 15:30:00+03:30"));
}

#[tokio::test]
async fn copy_query_to_stdout_in_text_and_csv() {
    let client = admin().await;
    let stream = client
        .copy_out("COPY (SELECT code, name_fa FROM insurance.provinces WHERE code IN (23, 30) ORDER BY code) TO STDOUT")
        .await
        .unwrap();
    let bytes: Vec<u8> = stream
        .try_fold(vec![], |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), "23\tتهران\n30\tالبرز\n");

    let stream = client
        .copy_out("COPY (SELECT code, name_en FROM insurance.provinces WHERE code = 11) TO STDOUT WITH (FORMAT csv, HEADER true)")
        .await
        .unwrap();
    let bytes: Vec<u8> = stream
        .try_fold(vec![], |mut acc, chunk| async move {
            acc.extend_from_slice(&chunk);
            Ok(acc)
        })
        .await
        .unwrap();
    assert_eq!(
        String::from_utf8(bytes).unwrap(),
        "code,name_en\n11,Sistan and Baluchestan\n"
    );

    let e = client
        .copy_out("COPY insurance.provinces TO '/tmp/x'")
        .await
        .err()
        .expect("refused");
    assert_eq!(sqlstate(&e), "25006");
}

#[tokio::test]
async fn several_statements_in_one_query_and_postgres_column_names() {
    let client = admin().await;
    let messages = client
        .simple_query("SELECT 1 AS a; SELECT count(*), max(code) FROM insurance.provinces")
        .await
        .unwrap();
    let names: Vec<Vec<String>> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::RowDescription(d) => {
                Some(d.iter().map(|c| c.name().to_string()).collect())
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        vec![
            vec!["a".to_string()],
            vec!["count".to_string(), "max".to_string()]
        ]
    );
    assert_eq!(
        rows(&messages)[1],
        vec![Some("31".into()), Some("30".into())]
    );
    // PostgreSQL allows two result columns with one name.
    let statement = client
        .prepare("SELECT count(code), count(name_fa), 1 + 1 FROM insurance.provinces")
        .await
        .unwrap();
    let names: Vec<&str> = statement.columns().iter().map(|c| c.name()).collect();
    assert_eq!(names, vec!["count", "count", "?column?"]);
}

#[tokio::test]
async fn generate_series_and_federated_join() {
    let client = admin().await;
    let n: i64 = client
        .query_one("SELECT count(*) FROM generate_series(1, 1000)", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1000);
    // Three sources of three kinds in one query.
    let row = client
        .query_one(
            "SELECT p.name_en, count(DISTINCT c.claim_id) AS claims, count(DISTINCT y.pensioner_id) AS pensioners \
             FROM insurance.provinces p \
             JOIN health.claims c ON c.province_code = p.code \
             JOIN pension.payments y ON y.province_code = p.code \
             WHERE p.code = 23 GROUP BY p.name_en",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, &str>(0), "Tehran");
    assert!(row.get::<_, i64>(1) > 0 && row.get::<_, i64>(2) > 0);
}

/// The name a statement was prepared under (tokio-postgres shows it only in Debug).
fn statement_name(statement: &tokio_postgres::Statement) -> String {
    let debug = format!("{statement:?}");
    let start = debug
        .find("name: \"")
        .expect("Statement's Debug shows its name")
        + 7;
    let end = start + debug[start..].find('"').expect("a quoted name");
    debug[start..end].to_string()
}

#[tokio::test]
async fn protocol_statements_and_prepare_share_one_namespace() {
    let client = admin().await;
    // A statement prepared through the protocol (Parse) has a name PREPARE cannot take.
    let kept = client.prepare("SELECT 1::int AS one").await.unwrap();
    let e = client
        .batch_execute(&format!("PREPARE {} AS SELECT 2", statement_name(&kept)))
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "42P05", "{e:?}");
    let one: i32 = client.query_one(&kept, &[]).await.unwrap().get(0);
    assert_eq!(one, 1);
    // DEALLOCATE removes it, as PostgreSQL's does: running it again is 26000.
    client
        .batch_execute(&format!("DEALLOCATE {}", statement_name(&kept)))
        .await
        .unwrap();
    let e = client.query(&kept, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "26000", "{e:?}");
    // So does DISCARD ALL, with every SQL-prepared one.
    let other = client.prepare("SELECT 3::int").await.unwrap();
    client
        .batch_execute("PREPARE by_sql AS SELECT 4; DISCARD ALL")
        .await
        .unwrap();
    let e = client.query(&other, &[]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "26000", "{e:?}");
    let e = client.batch_execute("EXECUTE by_sql").await.unwrap_err();
    assert_eq!(sqlstate(&e), "26000", "{e:?}");
    // A closed statement frees its name.
    let closed = client.prepare("SELECT 5::int").await.unwrap();
    let name = statement_name(&closed);
    drop(closed);
    client.simple_query("SELECT 1").await.unwrap();
    client
        .batch_execute(&format!("PREPARE {name} AS SELECT 6::int"))
        .await
        .unwrap();
    let six = rows(
        &client
            .simple_query(&format!("EXECUTE {name}"))
            .await
            .unwrap(),
    );
    assert_eq!(six, vec![vec![Some("6".to_string())]]);
}
