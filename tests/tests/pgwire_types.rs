//! Every type the demo uses arrives with its PostgreSQL type OID, in text and binary,
//! with NULLs and Persian text intact.

use chrono::{NaiveDate, NaiveDateTime};
use rust_decimal::Decimal;
use tokio_postgres::SimpleQueryMessage;
use tokio_postgres::types::Type;

use crate::support::admin;

#[tokio::test]
async fn demo_columns_carry_postgres_type_oids() {
    let client = admin().await;
    let cases = [
        (
            "SELECT province_code FROM insurance.contributions LIMIT 1",
            Type::INT2,
        ),
        (
            "SELECT branch_code FROM insurance.contributions LIMIT 1",
            Type::INT4,
        ),
        ("SELECT id FROM insurance.contributions LIMIT 1", Type::INT8),
        (
            "SELECT wage FROM insurance.contributions LIMIT 1",
            Type::NUMERIC,
        ),
        (
            "SELECT disability_percent FROM pension.pensioners LIMIT 1",
            Type::FLOAT4,
        ),
        (
            "SELECT increase_rate FROM pension.payments LIMIT 1",
            Type::FLOAT8,
        ),
        (
            "SELECT economic_sector FROM insurance.contributions LIMIT 1",
            Type::TEXT,
        ),
        (
            "SELECT period FROM insurance.contributions LIMIT 1",
            Type::DATE,
        ),
        (
            "SELECT paid_at FROM insurance.contributions LIMIT 1",
            Type::TIMESTAMP,
        ),
        (
            "SELECT is_active FROM insurance.insured_persons LIMIT 1",
            Type::BOOL,
        ),
    ];
    for (sql, expected) in cases {
        let statement = client.prepare(sql).await.unwrap();
        assert_eq!(statement.columns()[0].type_(), &expected, "{sql}");
    }
}

#[tokio::test]
async fn binary_results_decode_to_the_right_values() {
    let client = admin().await;
    // tokio-postgres asks for binary results.
    let row = client
        .query_one(
            "SELECT id, province_code, branch_code, wage, contribution, period, paid_at, economic_sector, days_worked \
             FROM insurance.contributions WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    let id: i64 = row.get(0);
    let province: i16 = row.get(1);
    let branch: i32 = row.get(2);
    let wage: Decimal = row.get(3);
    let contribution: Decimal = row.get(4);
    let period: NaiveDate = row.get(5);
    let paid_at: Option<NaiveDateTime> = row.get(6);
    let sector: String = row.get(7);
    let days: i16 = row.get(8);
    assert_eq!(id, 1);
    assert_eq!(
        branch / 100,
        province as i32,
        "branch codes start with their province code"
    );
    assert!(wage > Decimal::ZERO && wage.fract().is_zero());
    assert_eq!(
        contribution,
        (wage * Decimal::new(3, 1)).round(),
        "30% of the wage"
    );
    assert_eq!(
        period,
        NaiveDate::from_ymd_opt(2023, 3, 21).unwrap(),
        "1402/01/01"
    );
    if let Some(paid_at) = paid_at {
        assert!(paid_at.date() > period);
    }
    assert!(
        sector.chars().all(|c| c != '\u{064A}' && c != '\u{0643}'),
        "Persian, not Arabic, letters: {sector}"
    );
    assert!((10..=30).contains(&days));

    let row = client
        .query_one(
            "SELECT disability_percent, increase_rate, base_pension FROM pension.pensioners p \
             JOIN pension.payments y USING (pensioner_id) WHERE disability_percent IS NOT NULL LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let disability: f32 = row.get(0);
    let rate: f64 = row.get(1);
    let base: Decimal = row.get(2);
    assert!((33.0..=100.0).contains(&disability));
    assert_eq!(rate, 0.35);
    assert!(base > Decimal::ZERO);

    let active: bool = client
        .query_one(
            "SELECT is_active FROM insurance.insured_persons ORDER BY id LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let _ = active;
}

#[tokio::test]
async fn text_results_use_postgres_formats() {
    let client = admin().await;
    let messages = client
        .simple_query(
            "SELECT 1::smallint, 2::int, 3::bigint, 1.50::numeric(5,2), 0.5::real, 0.25::double precision, \
             'تهران', DATE '2024-03-20', TIMESTAMP '2024-03-20 08:30:00', true, NULL::int",
        )
        .await
        .unwrap();
    let row = messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(r),
            _ => None,
        })
        .expect("one row");
    let values: Vec<Option<&str>> = (0..row.len()).map(|i| row.get(i)).collect();
    assert_eq!(
        values,
        vec![
            Some("1"),
            Some("2"),
            Some("3"),
            Some("1.50"),
            Some("0.5"),
            Some("0.25"),
            Some("تهران"),
            Some("2024-03-20"),
            Some("2024-03-20 08:30:00"),
            Some("t"),
            None
        ]
    );
}

#[tokio::test]
async fn persian_text_round_trips_as_a_parameter() {
    let client = admin().await;
    let name = "آذربایجان شرقی";
    let row = client
        .query_one(
            "SELECT code, name_en FROM insurance.provinces WHERE name_fa = $1",
            &[&name],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i16>(0), 3);
    assert_eq!(row.get::<_, &str>(1), "East Azerbaijan");
    let echoed: String = client
        .query_one("SELECT $1::text", &[&"ی ک ‌ZWNJ"])
        .await
        .unwrap()
        .get(0);
    assert_eq!(echoed, "ی ک ‌ZWNJ");
}

#[tokio::test]
async fn nulls_arrive_as_nulls_in_both_formats() {
    let client = admin().await;
    let row = client
        .query_one(
            "SELECT count(*) FILTER (WHERE paid_at IS NULL) AS unpaid, count(paid_at) AS paid, count(*) AS total FROM insurance.contributions",
            &[],
        )
        .await
        .unwrap();
    let (unpaid, paid, total): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert!(unpaid > 0 && paid > 0);
    assert_eq!(unpaid + paid, total);
    let row = client
        .query_one(
            "SELECT paid_at FROM insurance.contributions WHERE paid_at IS NULL LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<NaiveDateTime>>(0), None);
}

/// What typed clients (Npgsql, pgjdbc's getObject, node-postgres) read: integer
/// literals and arithmetic over integers are `integer`, as in PostgreSQL; a result
/// beyond its range is PostgreSQL's error; bigger literals and counts are `bigint`.
#[tokio::test]
async fn integer_literals_are_postgres_integers() {
    let client = admin().await;
    let cases = [
        ("SELECT 1", Type::INT4),
        ("SELECT 3000000000", Type::INT8),
        (
            "SELECT branch_code + 1 FROM insurance.contributions LIMIT 1",
            Type::INT4,
        ),
        (
            "SELECT province_code * 2 FROM insurance.contributions LIMIT 1",
            Type::INT4,
        ),
        (
            "SELECT id + 1 FROM insurance.contributions LIMIT 1",
            Type::INT8,
        ),
        ("SELECT count(*) FROM insurance.provinces", Type::INT8),
        ("SELECT max(code + 1) FROM insurance.provinces", Type::INT4),
        ("SELECT CASE WHEN true THEN 1 ELSE 2 END", Type::INT4),
        (
            "SELECT x FROM (SELECT 1 AS x UNION ALL SELECT 2) t",
            Type::INT4,
        ),
    ];
    for (sql, expected) in cases {
        let statement = client.prepare(sql).await.unwrap();
        assert_eq!(statement.columns()[0].type_(), &expected, "{sql}");
        // The value decodes in that type, in binary.
        let rows = client.query(&statement, &[]).await.unwrap();
        if expected == Type::INT4 {
            let _: i32 = rows[0].get(0);
        }
    }
    let e = client
        .simple_query("SELECT 2147483647 + 1")
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22003", "{e}");
    let e = client
        .query("SELECT 100000 * 100000", &[])
        .await
        .unwrap_err();
    assert_eq!(e.code().unwrap().code(), "22003", "{e}");
}

/// Parameters PostgreSQL types from the client's declaration or, failing that, as
/// text: `SELECT $1, length($2)` (pgjdbc's setString), and a double compared with a
/// numeric column compares as a double, not as the value rounded to the column.
#[tokio::test]
async fn parameters_take_declared_types_and_otherwise_text() {
    let client = admin().await;
    let untyped = client.prepare("SELECT $1, length($2)").await.unwrap();
    assert_eq!(untyped.params(), &[Type::TEXT, Type::TEXT]);
    let row = client
        .query_one(&untyped, &[&"تهران", &"abc"])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "تهران");
    assert_eq!(row.get::<_, i32>(1), 3);

    let declared = client
        .prepare_typed("SELECT $1, $2", &[Type::INT8, Type::DATE])
        .await
        .unwrap();
    assert_eq!(declared.params(), &[Type::INT8, Type::DATE]);
    assert_eq!(declared.columns()[0].type_(), &Type::INT8);
    let day = NaiveDate::from_ymd_opt(2024, 3, 20).unwrap();
    let row = client.query_one(&declared, &[&7i64, &day]).await.unwrap();
    assert_eq!(row.get::<_, i64>(0), 7);
    assert_eq!(row.get::<_, NaiveDate>(1), day);

    // wage is numeric(14,0): 0.5 must not become 0 or 1 before the comparison.
    let above = client
        .prepare_typed(
            "SELECT count(*) FROM insurance.contributions WHERE wage > $1",
            &[Type::FLOAT8],
        )
        .await
        .unwrap();
    let smallest: Decimal = client
        .query_one("SELECT min(wage) FROM insurance.contributions", &[])
        .await
        .unwrap()
        .get(0);
    let smallest = f64::try_from(smallest).unwrap();
    let all: i64 = client
        .query_one("SELECT count(*) FROM insurance.contributions", &[])
        .await
        .unwrap()
        .get(0);
    let n: i64 = client
        .query_one(&above, &[&(smallest - 0.5)])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, all);
    let n: i64 = client
        .query_one(&above, &[&(smallest + 0.5)])
        .await
        .unwrap()
        .get(0);
    assert!(n < all);
    // An integer-typed declaration for an integer column keeps the column's type.
    let code = client
        .prepare_typed(
            "SELECT name_en FROM insurance.provinces WHERE code = $1",
            &[Type::INT8],
        )
        .await
        .unwrap();
    let row = client.query_one(&code, &[&23i64]).await.unwrap();
    assert_eq!(row.get::<_, String>(0), "Tehran");
}
