//! Row filters hold through errors: a user with a row filter (`tehran`, who sees
//! `province_code = 23`) never has their own expressions evaluated on a row the filter
//! rejects. An expression that fails only on another province's row (`CASE WHEN id =
//! <that row> THEN 1/0 ELSE 1 END`, a CAST of its name) must not fail, wherever it
//! stands in the statement and whatever the source (SQLite, Parquet, CSV), over pgwire
//! and Flight SQL; an error on Tehran's own rows shows Tehran's values only.
//!
//! Each answer is compared with admin's for the same statement with every table
//! restricted by hand to Tehran. The restriction is fenced by a LIMIT, which no
//! optimizer rule moves a filter or an expression through: admin has no security
//! barrier, and without the fence admin's own statement could fail on another
//! province's row exactly as tehran's did before the fix.
//!
//! Disclosure control holds the same way. The `public` role reads `indicators.*`
//! only, each indicator in its disclosure-controlled form: a cell counting fewer than
//! the indicator's `min_cell` (and its secondary complement) shows NULL in every
//! column but the dimensions. An expression that would fail, or answer otherwise, on
//! such a cell's hidden value (which admin reads) sees only those NULLs: the public's
//! answer equals admin's for the same statement over the public form rebuilt by hand,
//! shows no value found only in hidden cells, and the public may not EXPLAIN it.

use std::collections::BTreeSet;

use amar_tests::shared_demo;
use arrow_flight::error::FlightError;
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::util::display::array_value_to_string;
use futures::TryStreamExt;
use tokio_postgres::{Client, SimpleQueryMessage};
use tonic::transport::Channel;

use crate::support::{admin, connect, flight_as, sqlstate, texts};

type Rows = Vec<Vec<Option<String>>>;

/// One table of each kind of source (SQLite, Parquet, CSV): its id column and a
/// text column.
const TABLES: [(&str, &str, &str); 3] = [
    ("insurance.employers", "id", "name_fa"),
    ("pension.pensioners", "pensioner_id", "first_name"),
    ("health.providers", "provider_id", "name_fa"),
];

/// Text columns whose values an error may echo, by table.
const TEXT_COLUMNS: &[(&str, &[&str])] = &[
    ("insurance.employers", &["name_fa"]),
    ("insurance.branches", &["name_fa"]),
    (
        "pension.pensioners",
        &["first_name", "last_name", "national_id"],
    ),
    ("health.providers", &["name_fa", "kind"]),
];

/// Admin's restriction to Tehran, fenced (see the module doc).
const FENCE: &str = "LIMIT 1000000000";

/// A column's values: those found only outside Tehran (which no error shown to
/// tehran may contain), and Tehran's.
#[derive(Debug, Default)]
struct Values {
    foreign_only: Vec<String>,
    tehran: Vec<String>,
}

/// What the tests need to know of a table, as admin sees it.
struct Table {
    name: &'static str,
    id: &'static str,
    text: &'static str,
    /// A row of another province: its id, and that province.
    foreign_id: String,
    foreign_province: String,
    /// How many rows Tehran has, as text.
    tehran_rows: String,
    values: Values,
}

async fn tehran() -> Client {
    connect(shared_demo(), "tehran", "tehran")
        .await
        .expect("tehran logs in")
}

async fn values(admin: &Client, table: &str, column: &str) -> Values {
    let distinct =
        |cond: &str| format!("SELECT DISTINCT {column} FROM {table} WHERE province_code {cond}");
    let tehran: Vec<String> = texts(admin, &distinct("= 23"))
        .await
        .into_iter()
        .filter_map(|mut r| r.pop().flatten())
        .collect();
    let foreign_only = texts(admin, &distinct("<> 23"))
        .await
        .into_iter()
        .filter_map(|mut r| r.pop().flatten())
        .filter(|v| !tehran.contains(v))
        .collect();
    Values {
        foreign_only,
        tehran,
    }
}

async fn tables(admin: &Client) -> Vec<Table> {
    let mut tables = vec![];
    for (name, id, text) in TABLES {
        let sql = format!(
            "SELECT {id}, province_code FROM {name} WHERE province_code <> 23 ORDER BY {id} LIMIT 1"
        );
        let row = texts(admin, &sql)
            .await
            .pop()
            .unwrap_or_else(|| panic!("{sql}: no row outside Tehran"));
        let foreign_id = row[0].clone().expect("an id");
        let foreign_province = row[1].clone().expect("a province");
        let count = format!("SELECT count(*) FROM {name} WHERE province_code = 23");
        let tehran_rows = texts(admin, &count).await[0][0].clone().expect("a count");
        assert_ne!(
            tehran_rows, "0",
            "{count}: without Tehran rows nothing is compared"
        );
        tables.push(Table {
            name,
            id,
            text,
            foreign_id,
            foreign_province,
            tehran_rows,
            values: values(admin, name, text).await,
        });
    }
    tables
}

/// A statement's rows as text, or its SQLSTATE and everything its error says.
async fn run(client: &Client, sql: &str) -> Result<Rows, (String, String)> {
    match client.simple_query(sql).await {
        Ok(messages) => Ok(messages
            .into_iter()
            .filter_map(|m| match m {
                SimpleQueryMessage::Row(r) => {
                    Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
                }
                _ => None,
            })
            .collect()),
        Err(e) => {
            let said = match e.as_db_error() {
                Some(d) => [Some(d.message()), d.detail(), d.hint(), d.where_()]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join("\n"),
                None => e.to_string(),
            };
            Err((sqlstate(&e), said))
        }
    }
}

/// The first value found only outside Tehran that `message` shows, quoted or, for
/// values long enough not to occur by chance (and not inside a Tehran value), as is.
fn leaked<'a>(message: &str, values: &'a Values) -> Option<&'a str> {
    let quoted: Vec<&str> = ['\'', '"']
        .into_iter()
        .flat_map(|q| message.split(q).skip(1).step_by(2))
        .collect();
    values
        .foreign_only
        .iter()
        .find(|v| {
            quoted
                .iter()
                .any(|q| *q == v.as_str() || q.trim() == v.as_str())
                || (v.chars().count() >= 4
                    && message.contains(v.as_str())
                    && !values.tehran.iter().any(|t| t.contains(v.as_str())))
        })
        .map(String::as_str)
}

/// `template` with `@T@` and `@U@` replaced by the tables (aliased `t` and `u`), as
/// tehran writes them or, `fenced`, restricted to Tehran by hand for admin.
fn statement(template: &str, t: &Table, u: &Table, fenced: bool) -> String {
    let source = |table: &Table, alias: &str| {
        if fenced {
            format!(
                "(SELECT * FROM {} WHERE province_code = 23 {FENCE}) AS {alias}",
                table.name
            )
        } else {
            format!("{} AS {alias}", table.name)
        }
    };
    template
        .replace("@T@", &source(t, "t"))
        .replace("@U@", &source(u, "u"))
}

/// Fails on the foreign row of `t` (aliased `a`) only: a division by zero.
fn divides(t: &Table, a: &str) -> String {
    format!(
        "CASE WHEN {a}.{} = {} THEN 1/0 ELSE 1 END",
        t.id, t.foreign_id
    )
}

/// Fails on the foreign row of `t` only, with its text in the message.
fn casts(t: &Table, a: &str) -> String {
    format!(
        "CASE WHEN {a}.{} = {} THEN CAST({a}.{} AS INT) ELSE 1 END",
        t.id, t.foreign_id, t.text
    )
}

/// Statement shapes: `@X@` is a failing expression over `t` and `@Y@` one over `u`,
/// `@ID@`, `@TEXT@` and `@UID@` their columns (`@T@` and `@U@` as in [`statement`]).
const SHAPES: &[(&str, &str)] = &[
    ("where", "SELECT count(*) FROM @T@ WHERE @X@ = 1"),
    (
        "where after a predicate NULL on Tehran's rows",
        "SELECT count(*) FROM @T@ WHERE NULLIF(t.province_code, 23) IS NULL AND @X@ = 1",
    ),
    (
        "or after a predicate NULL on Tehran's rows",
        "SELECT count(*) FROM @T@ WHERE NULLIF(t.province_code, 23) > 0 OR @X@ = 1",
    ),
    (
        "select list",
        "SELECT t.@ID@, t.@TEXT@, @X@ AS f FROM @T@ ORDER BY t.@ID@ LIMIT 5",
    ),
    (
        "narrowed projection",
        "SELECT k, f FROM (SELECT t.@ID@ AS k, t.@TEXT@ AS s, @X@ AS f FROM @T@) p ORDER BY k LIMIT 5",
    ),
    ("aggregate argument", "SELECT count(*), sum(@X@) FROM @T@"),
    (
        "order by with a limit",
        "SELECT t.@ID@ FROM @T@ ORDER BY @X@ DESC, t.@ID@ LIMIT 3",
    ),
    (
        "join on",
        "SELECT count(*) FROM @T@ JOIN (VALUES (1)) AS v(x) ON v.x = @X@",
    ),
    (
        "window argument",
        "SELECT count(*), max(w) FROM (SELECT sum(@X@) OVER (ORDER BY t.@ID@) AS w FROM @T@) s",
    ),
    (
        "cte",
        "WITH c AS (SELECT t.@ID@ AS k, @X@ AS f FROM @T@) SELECT count(*), sum(f) FROM c",
    ),
    (
        "subquery in from",
        "SELECT count(*) FROM (SELECT t.@ID@ FROM @T@ WHERE @X@ = 1) s",
    ),
    (
        "union all",
        "SELECT count(*) FROM (SELECT t.@ID@ AS k FROM @T@ WHERE @X@ = 1 \
         UNION ALL SELECT u.@UID@ AS k FROM @U@ WHERE @Y@ = 1) s",
    ),
];

/// Every shape with the failing expression `x` (over `t`) and `y` (over `u`).
fn shapes(t: &Table, u: &Table, x: &str, y: &str) -> Vec<(&'static str, String)> {
    SHAPES
        .iter()
        .map(|(shape, template)| {
            let filled = template
                .replace("@ID@", t.id)
                .replace("@TEXT@", t.text)
                .replace("@UID@", u.id)
                .replace("@X@", x)
                .replace("@Y@", y);
            (*shape, filled)
        })
        .collect()
}

#[tokio::test]
async fn a_predicate_that_fails_only_on_another_provinces_row_never_fails() {
    let admin = admin().await;
    let tehran = tehran().await;
    let tables = tables(&admin).await;
    for (i, t) in tables.iter().enumerate() {
        let u = &tables[(i + 1) % tables.len()];
        for (x, y) in [
            (divides(t, "t"), divides(u, "u")),
            (casts(t, "t"), casts(u, "u")),
        ] {
            // The expression does fail on the foreign row: the oracle is real.
            let unfenced = statement(
                &format!("SELECT count(*) FROM @T@ WHERE {x} = 1"),
                t,
                u,
                false,
            );
            assert!(
                run(&admin, &unfenced).await.is_err(),
                "{unfenced}: admin, who reads every province, gets an error"
            );
            for (shape, template) in shapes(t, u, &x, &y) {
                let mine = statement(&template, t, u, false);
                let expected = texts(&admin, &statement(&template, t, u, true)).await;
                let got = run(&tehran, &mine)
                    .await
                    .unwrap_or_else(|(state, message)| {
                        panic!(
                            "{} ({shape}) fails as tehran, {state}: {message}\n{mine}",
                            t.name
                        )
                    });
                assert_eq!(got, expected, "{} ({shape}) as tehran:\n{mine}", t.name);
                if shape == "where" {
                    assert_eq!(
                        got,
                        vec![vec![Some(t.tehran_rows.clone())]],
                        "{mine}: every Tehran row"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn errors_on_tehrans_own_rows_show_only_tehrans_values() {
    let admin = admin().await;
    let tehran = tehran().await;
    for (table, columns) in TEXT_COLUMNS {
        let mut foreign = 0;
        for column in *columns {
            let values = values(&admin, table, column).await;
            foreign += values.foreign_only.len();
            for sql in [
                format!("SELECT CAST({column} AS INT) FROM {table}"),
                format!("SELECT count(*) FROM {table} WHERE CAST({column} AS INT) = 1"),
                format!("SELECT {column} FROM {table} ORDER BY CAST({column} AS INT) LIMIT 3"),
            ] {
                let (state, message) = match run(&tehran, &sql).await {
                    Ok(rows) => panic!(
                        "{sql}: succeeds as tehran with {} rows, yet no value is a number",
                        rows.len()
                    ),
                    Err(e) => e,
                };
                assert!(state.starts_with("22"), "{sql}: {state} {message}");
                if let Some(value) = leaked(&message, &values) {
                    panic!(
                        "{sql}: the error shows {value:?}, found only outside Tehran:\n{message}"
                    );
                }
            }
        }
        assert!(
            foreign > 0,
            "{table}: no value is found only outside Tehran, so nothing was checked"
        );
    }
}

fn flight_said(e: &FlightError) -> String {
    match e {
        FlightError::Tonic(status) => status.message().to_string(),
        other => other.to_string(),
    }
}

/// A statement's rows over Flight SQL as text, or what its error says.
async fn flight_rows(
    client: &mut FlightSqlServiceClient<Channel>,
    sql: &str,
) -> Result<Rows, String> {
    let info = client
        .execute(sql.to_string(), None)
        .await
        .map_err(|e| flight_said(&e))?;
    let mut rows = vec![];
    for endpoint in info.endpoint {
        let ticket = endpoint
            .ticket
            .ok_or_else(|| "an endpoint without a ticket".to_string())?;
        let stream = client.do_get(ticket).await.map_err(|e| flight_said(&e))?;
        let batches: Vec<RecordBatch> = stream.try_collect().await.map_err(|e| flight_said(&e))?;
        for batch in &batches {
            for row in 0..batch.num_rows() {
                rows.push(
                    batch
                        .columns()
                        .iter()
                        .map(|column| {
                            (!column.is_null(row)).then(|| {
                                array_value_to_string(column.as_ref(), row)
                                    .expect("every value displays")
                            })
                        })
                        .collect(),
                );
            }
        }
    }
    Ok(rows)
}

#[tokio::test]
async fn the_same_holds_over_flight_sql() {
    const OVER_FLIGHT: &[&str] = &[
        "where",
        "or after a predicate NULL on Tehran's rows",
        "select list",
        "aggregate argument",
        "order by with a limit",
        "join on",
        "window argument",
        "union all",
    ];
    let admin = admin().await;
    let tables = tables(&admin).await;
    let mut flight = flight_as("tehran").await;
    for (i, t) in tables.iter().enumerate() {
        let u = &tables[(i + 1) % tables.len()];
        for (x, y) in [
            (divides(t, "t"), divides(u, "u")),
            (casts(t, "t"), casts(u, "u")),
        ] {
            for (shape, template) in shapes(t, u, &x, &y) {
                if !OVER_FLIGHT.contains(&shape) {
                    continue;
                }
                let mine = statement(&template, t, u, false);
                let expected = texts(&admin, &statement(&template, t, u, true)).await;
                let got = flight_rows(&mut flight, &mine).await.unwrap_or_else(|e| {
                    panic!(
                        "{} ({shape}) fails as tehran over Flight: {e}\n{mine}",
                        t.name
                    )
                });
                assert_eq!(got, expected, "{} ({shape}) over Flight:\n{mine}", t.name);
            }
        }
        // An error on Tehran's own rows shows Tehran's values only.
        let sql = format!(
            "SELECT count(*) FROM {} WHERE CAST({} AS INT) = 1",
            t.name, t.text
        );
        let message = match flight_rows(&mut flight, &sql).await {
            Ok(rows) => panic!("{sql}: succeeds over Flight with {rows:?}"),
            Err(message) => message,
        };
        assert_eq!(leaked(&message, &t.values), None, "{sql}: {message}");
    }
    // Still serving.
    assert_eq!(
        flight_rows(&mut flight, "SELECT 1 AS one").await,
        Ok(vec![vec![Some("1".to_string())]])
    );
}

/// A small seeded PRNG (xorshift64), so a failure names the statement that broke.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }

    fn pick(&mut self, items: Vec<String>) -> String {
        let i = self.below(items.len());
        items.into_iter().nth(i).unwrap_or_default()
    }
}

/// An integer expression over `t` (aliased `a`) that can fail: on another
/// province's row only, or on every row (Tehran's too).
/// Marks an expression that fails on Tehran's own rows: whether it is evaluated at
/// all may differ between tehran's plan and admin's (admin's may know
/// `province_code` is constant and drop a sort key over it), so either may fail
/// alone, as long as tehran's error shows nothing of other provinces.
const OWN: &str = "/* fails on own rows */";

fn failing(rng: &mut Rng, t: &Table, a: &str) -> String {
    let (id, text, f, p) = (t.id, t.text, &t.foreign_id, &t.foreign_province);
    rng.pick(vec![
        // Only on another province's row.
        format!("CASE WHEN {a}.{id} = {f} THEN 1/0 ELSE 1 END"),
        format!("CASE WHEN {a}.{id} = {f} THEN CAST({a}.{text} AS INT) ELSE 1 END"),
        format!("CASE WHEN {a}.province_code = {p} THEN 1/0 ELSE 2 END"),
        format!("1/({a}.province_code - {p})"),
        format!("1/({a}.{id} - {f})"),
        format!(
            "CASE WHEN {a}.{id} = {f} THEN \
             CASE WHEN CAST({a}.{text} AS DATE) > DATE '2000-01-01' THEN 1 ELSE 0 END ELSE 1 END"
        ),
        // On Tehran's own rows too (marked, for the check of outcomes).
        format!("{OWN} CAST({a}.{text} AS INT)"),
        format!("{OWN} CASE WHEN CAST({a}.{text} AS DATE) > DATE '2000-01-01' THEN 1 ELSE 0 END"),
        format!("{OWN} CASE WHEN regexp_like({a}.{text}, '(') THEN 1 ELSE 0 END"),
        format!("{OWN} 1/({a}.province_code - 23)"),
    ])
}

/// A leakproof predicate true on every Tehran row.
fn always(rng: &mut Rng, t: &Table, a: &str) -> String {
    let (id, text, p) = (t.id, t.text, &t.foreign_province);
    rng.pick(vec![
        format!("{a}.province_code = 23"),
        format!("{a}.{id} > 5"),
        format!("{a}.{id} IS NOT NULL"),
        format!("{a}.province_code IN (23, {p})"),
        format!("{a}.province_code <> {p}"),
        format!("{a}.{text} LIKE '%'"),
        format!("length({a}.{text}) > 0"),
    ])
}

/// A predicate with a failing expression, alone or with leakproof ones. A leakproof
/// predicate false on Tehran's rows comes only inside an OR: in an AND it would go
/// below tehran's barrier and spare the failing one, which admin's fenced form (with
/// no barrier to move it below) evaluates first and fails on.
fn condition(rng: &mut Rng, t: &Table, a: &str) -> String {
    let pred = format!("({}) <> 99", failing(rng, t, a));
    let yes = always(rng, t, a);
    let (id, text, p) = (t.id, t.text, &t.foreign_province);
    let no = rng.pick(vec![
        format!("{a}.province_code = {p}"),
        format!("{a}.{id} < 0"),
        format!("{a}.{text} IS NULL"),
    ]);
    rng.pick(vec![
        pred.clone(),
        format!("{yes} AND {pred}"),
        format!("{pred} AND {yes}"),
        format!("({no} OR {pred})"),
        format!("({pred} OR {no})"),
        format!("({yes} OR {pred})"),
    ])
}

/// A statement with failing expressions at a random place (see [`statement`]).
fn hostile(rng: &mut Rng, t: &Table, u: &Table) -> String {
    let (id, uid) = (t.id, u.id);
    let fail = failing(rng, t, "t");
    let cond = condition(rng, t, "t");
    let yes = always(rng, t, "t");
    let window = rng.pick(vec![
        format!("sum({fail}) OVER (ORDER BY t.{id})"),
        format!("row_number() OVER (PARTITION BY {fail} ORDER BY t.{id})"),
    ]);
    match rng.below(11) {
        0 => format!("SELECT count(*) FROM @T@ WHERE {cond}"),
        1 => format!("SELECT t.{id}, {fail} AS f FROM @T@ WHERE {yes} ORDER BY t.{id} LIMIT 5"),
        2 => format!("SELECT t.{id} FROM @T@ WHERE {yes} ORDER BY {fail}, t.{id} LIMIT 3"),
        3 => format!("SELECT count(*) FROM @T@ WHERE {yes} GROUP BY {fail}"),
        4 => format!("SELECT count(*) FROM @T@ JOIN (VALUES (1)) AS v(x) ON v.x = {fail}"),
        5 => format!("SELECT count(*) FROM @T@ JOIN (VALUES (1)) AS v(x) ON v.x = 1 AND {cond}"),
        6 => format!(
            "SELECT t.province_code, count(*) FROM @T@ WHERE {yes} \
             GROUP BY t.province_code HAVING sum({fail}) <> 99"
        ),
        7 => format!("SELECT count(*), max(w) FROM (SELECT {window} AS w FROM @T@ WHERE {yes}) s"),
        8 => format!(
            "WITH c AS (SELECT t.{id} AS k, {fail} AS f FROM @T@ WHERE {cond}) \
             SELECT count(*), sum(f) FROM c"
        ),
        9 => {
            let other = condition(rng, u, "u");
            format!(
                "SELECT count(*) FROM (SELECT t.{id} AS k FROM @T@ WHERE {cond} \
                 UNION ALL SELECT u.{uid} AS k FROM @U@ WHERE {other}) s"
            )
        }
        _ => format!("SELECT count(*), sum({fail}) FROM @T@ WHERE {yes}"),
    }
}

fn sorted(mut rows: Rows) -> Rows {
    rows.sort();
    rows
}

#[tokio::test]
async fn hostile_statements_generated_at_random_leak_nothing_and_never_crash() {
    let seed: u64 = std::env::var("AMAR_LEAKS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s != 0)
        .unwrap_or(0x5EC0_2E7B_A221_E125);
    let admin = admin().await;
    let tehran = tehran().await;
    let tables = tables(&admin).await;
    let mut rng = Rng(seed);
    let (mut answered, mut refused) = (0, 0);
    for n in 1..=150 {
        let t = &tables[rng.below(tables.len())];
        let u = &tables[rng.below(tables.len())];
        let template = hostile(&mut rng, t, u);
        let mine = statement(&template, t, u, false);
        let theirs = statement(&template, t, u, true);
        let context = format!(
            "statement {n} of seed {seed} (AMAR_LEAKS_SEED):\n  as tehran: {mine}\n  as admin:  {theirs}"
        );
        match (run(&tehran, &mine).await, run(&admin, &theirs).await) {
            (Ok(got), Ok(expected)) => {
                assert_eq!(sorted(got), sorted(expected), "{context}");
                answered += 1;
            }
            (Err((state, message)), Err(_)) => {
                let involved: Vec<&Table> = if template.contains("@U@") {
                    vec![t, u]
                } else {
                    vec![t]
                };
                for table in involved {
                    if let Some(value) = leaked(&message, &table.values) {
                        panic!(
                            "{context}\nthe error ({state}) shows {value:?}, found in {} only \
                             outside Tehran:\n{message}",
                            table.name
                        );
                    }
                }
                refused += 1;
            }
            (Err((state, message)), Ok(_)) if template.contains(OWN) => {
                if let Some(value) = leaked(&message, &t.values) {
                    panic!("{context}\nthe error ({state}) shows {value:?}:\n{message}");
                }
                refused += 1;
            }
            (Ok(_), Err(_)) if template.contains(OWN) => answered += 1,
            (Err(e), Ok(expected)) => panic!(
                "{context}\nfails as tehran with {e:?}, yet admin's Tehran-only form answers {expected:?}"
            ),
            (Ok(got), Err(e)) => panic!(
                "{context}\nanswers {got:?} as tehran, yet admin's Tehran-only form fails with {e:?}"
            ),
        }
        if n % 25 == 0 {
            let fresh = connect(shared_demo(), "tehran", "tehran")
                .await
                .unwrap_or_else(|e| panic!("after statement {n} of seed {seed}: {e:?}"));
            for client in [&fresh, &tehran] {
                assert_eq!(
                    texts(client, "SELECT 1").await,
                    vec![vec![Some("1".to_string())]],
                    "after statement {n} of seed {seed}"
                );
            }
        }
    }
    assert!(
        answered >= 20 && refused >= 5,
        "seed {seed}: {answered} answered and {refused} refused; the mix tests too little"
    );
}

/// Demo indicators the public may find suppressed cells in (`server/src/demo/catalog.toml`):
/// the id and the columns read besides the dimensions (`province_code`, `period`), the
/// count column first.
const PUBLISHED: &[(&str, &[&str])] = &[
    ("rehabilitation_claims", &["value"]),
    ("contributions_collected", &["employers", "value"]),
    ("average_pension", &["pensioners", "value"]),
    ("average_wage", &["insured", "value"]),
    ("pensioner_contributor_ratio", &["pensioners", "value"]),
    ("active_insured", &["value"]),
];

/// An indicator with cells suppressed for the public, and what admin sees of them.
struct Published {
    name: String,
    columns: &'static [&'static str],
    min_cell: String,
    /// The values of suppressed cells that no cell the public sees shows, with their
    /// column: numbers all, which SQL compares with as they are written.
    secrets: Vec<(&'static str, String)>,
    /// The same values (`foreign_only`), and every value the public sees (`tehran`).
    values: Values,
    /// The public form rebuilt by hand for admin, aliased `t` and fenced.
    rebuilt: String,
}

async fn published(admin: &Client, public: &Client) -> Vec<Published> {
    let mut found = vec![];
    for (id, columns) in PUBLISHED.iter().copied() {
        if found.len() == 3 {
            break;
        }
        let name = format!("indicators.{id}");
        let keys = format!("SELECT province_code, period FROM {name} WHERE suppressed");
        let hidden = texts(public, &keys).await;
        if hidden.is_empty() {
            continue;
        }
        let cells = format!(
            "SELECT province_code, period, {} FROM {name}",
            columns.join(", ")
        );
        let (mut secrets, mut shown) = (BTreeSet::new(), BTreeSet::new());
        for row in texts(admin, &cells).await {
            let suppressed = hidden.contains(&row[..2].to_vec());
            for (i, value) in row
                .into_iter()
                .enumerate()
                .filter_map(|(i, v)| Some((i, v?)))
            {
                if suppressed && i >= 2 {
                    secrets.insert((columns[i - 2], value));
                } else {
                    shown.insert(value);
                }
            }
        }
        secrets.retain(|(_, v)| !shown.contains(v) && v.parse::<f64>().is_ok_and(f64::is_finite));
        if secrets.is_empty() {
            continue;
        }
        let sql = format!("SELECT min_cell FROM amar.indicators WHERE id = '{id}'");
        let min_cell = texts(admin, &sql).await[0][0].clone().expect("a min_cell");
        let keys: Vec<String> = hidden
            .iter()
            .map(|k| {
                format!(
                    "({}, '{}', 1)",
                    k[0].as_deref().unwrap(),
                    k[1].as_deref().unwrap()
                )
            })
            .collect();
        let nulled: Vec<String> = columns
            .iter()
            .map(|c| format!("CASE WHEN h.k IS NULL THEN a.{c} END AS {c}"))
            .collect();
        let rebuilt = format!(
            "(SELECT a.province_code, a.period, {}, h.k IS NOT NULL AS suppressed \
             FROM {name} AS a LEFT JOIN (VALUES {}) AS h(hp, hq, k) \
             ON a.province_code = h.hp AND a.period = h.hq {FENCE}) AS t",
            nulled.join(", "),
            keys.join(", ")
        );
        let values = Values {
            foreign_only: secrets.iter().map(|(_, v)| v.clone()).collect(),
            tehran: shown.into_iter().collect(),
        };
        let secrets = secrets.into_iter().collect();
        found.push(Published {
            name,
            columns,
            min_cell,
            secrets,
            values,
            rebuilt,
        });
    }
    found
}

/// An integer expression over `t` that fails only on a value the public never sees,
/// or on every row, whatever it hides (a period is no number).
fn hides(rng: &mut Rng, p: &Published) -> String {
    let (c, m) = (p.columns[0], &p.min_cell);
    let (col, h) = &p.secrets[rng.below(p.secrets.len())];
    let mut options = vec![
        format!("CASE WHEN t.{col} = {h} THEN 1/0 ELSE 1 END"),
        format!("CASE WHEN t.{c} < {m} THEN 1/0 ELSE 1 END"),
        format!("CASE WHEN t.{col} BETWEEN {h} AND {h} THEN CAST(t.period AS INT) ELSE 2 END"),
        "CAST(t.period AS INT)".to_string(),
    ];
    if let Some((_, n)) = p.secrets.iter().find(|(col, _)| *col == c) {
        options.push(format!("1/(t.{c} - {n})"));
    }
    rng.pick(options)
}

/// A statement over `@T@` with `x` in one of ten places.
fn shape(rng: &mut Rng, p: &Published, x: &str) -> String {
    let (c, v) = (p.columns[0], p.columns[rng.below(p.columns.len())]);
    let dims = "t.period, t.province_code";
    match rng.below(10) {
        0 => format!("SELECT count(*) FROM @T@ WHERE ({x}) >= 0"),
        1 => format!("SELECT count(*) FROM @T@ WHERE t.suppressed OR ({x}) = 1"),
        2 => format!("SELECT {dims}, t.{v}, {x} AS f FROM @T@ ORDER BY {dims} DESC LIMIT 7"),
        3 => format!("SELECT {dims} FROM @T@ ORDER BY {x}, {dims} LIMIT 3"),
        4 => format!("SELECT count(*) FROM @T@ GROUP BY {x}"),
        5 => format!(
            "SELECT t.period, count(t.{v}) FROM @T@ GROUP BY t.period HAVING sum({x}) <> 99"
        ),
        6 => format!(
            "SELECT count(*), max(w) FROM (SELECT sum({x}) OVER \
             (PARTITION BY t.period ORDER BY t.province_code) AS w FROM @T@) s"
        ),
        7 => format!("SELECT count(*), sum({x}), count(t.{v}) FROM @T@"),
        8 => format!(
            "WITH c AS (SELECT t.province_code AS k, {x} AS f FROM @T@ \
             WHERE t.suppressed OR t.{c} >= 0) SELECT count(*), sum(f) FROM c"
        ),
        _ => format!("SELECT t.suppressed, count(*), sum({x}) FROM @T@ GROUP BY t.suppressed"),
    }
}

/// A statement over `@T@` and what the public must get: an answer (`""`), or a
/// refusal with that SQLSTATE.
fn public_statement(rng: &mut Rng, p: &Published) -> (&'static str, String) {
    let x = hides(rng, p);
    let (expect, levels) = match rng.below(7) {
        0 => ("", 200 + rng.below(650)),
        1 if rng.below(2) == 0 => ("54001", 1_001 + rng.below(2_000)),
        1 => {
            let analyze = ["", "ANALYZE "][rng.below(2)];
            return ("42501", format!("EXPLAIN {analyze}{}", shape(rng, p, &x)));
        }
        _ => return ("", shape(rng, p, &x)),
    };
    // `levels` deep: an aggregate's argument, or a comparison true on every shown cell.
    let (c, chain) = (p.columns[0], " + 1".repeat(levels));
    let sql = match rng.below(2) {
        0 => format!("SELECT count(*), sum(({x}){chain}) FROM @T@"),
        _ => format!("SELECT count(*) FROM @T@ WHERE ({x}) < 0 OR t.{c}{chain} > {levels}"),
    };
    (expect, sql)
}

#[tokio::test]
async fn public_statements_generated_at_random_show_nothing_of_suppressed_cells() {
    let seed: u64 = std::env::var("AMAR_LEAKS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|s| *s != 0)
        .unwrap_or(0x9B11_C5EE_D0C3_11A5);
    let admin = admin().await;
    let public = connect(shared_demo(), "public", "public")
        .await
        .expect("public logs in");
    let published = published(&admin, &public).await;
    assert!(published.len() >= 2, "{} indicators", published.len());
    let short = |sql: &str| sql.chars().take(600).collect::<String>();
    let mut rng = Rng(seed);
    let (mut answered, mut failed, mut refused) = (0, 0, 0);
    for n in 1..=120 {
        let p = &published[rng.below(published.len())];
        let (expect, template) = public_statement(&mut rng, p);
        let mine = template.replace("@T@", &format!("{} AS t", p.name));
        let theirs = template.replace("@T@", &p.rebuilt);
        let context = format!(
            "statement {n} of seed {seed} (AMAR_LEAKS_SEED), over {}:\n  as public: {}\n  as admin:  {}",
            p.name,
            short(&mine),
            short(&theirs)
        );
        match run(&public, &mine).await {
            Ok(got) if expect.is_empty() => {
                // Short values (a count of 3) come up by chance: admin's answer catches those.
                let mut values = got.iter().flatten().flatten();
                if let Some(v) = values.find(|v| v.len() >= 4 && p.values.foreign_only.contains(*v))
                {
                    panic!("{context}\nthe answer shows {v:?}, found only in suppressed cells");
                }
                assert_eq!(
                    Ok(sorted(got)),
                    run(&admin, &theirs).await.map(sorted),
                    "{context}"
                );
                answered += 1;
            }
            Ok(rows) => panic!("{context}\n{} rows, not refused with {expect}", rows.len()),
            Err((state, message)) => {
                if let Some(v) = leaked(&message, &p.values) {
                    panic!(
                        "{context}\nthe error ({state}) shows {v:?}, only in suppressed cells:\n{message}"
                    );
                }
                if expect.is_empty() {
                    // A data error on what the public sees, alike over the rebuilt form.
                    assert!(
                        state.starts_with("22"),
                        "{context}\nfails with {state}: {message}"
                    );
                    let admins = run(&admin, &theirs).await.map(|rows| rows.len());
                    assert_eq!(admins.map_err(|e| e.0), Err(state), "{context}\n{message}");
                    failed += 1;
                } else {
                    assert_eq!(state, expect, "{context}\n{message}");
                    refused += 1;
                }
            }
        }
        if n % 20 == 0 {
            let fresh = connect(shared_demo(), "public", "public")
                .await
                .unwrap_or_else(|e| panic!("after statement {n} of seed {seed}: {e:?}"));
            for client in [&fresh, &public] {
                let one = texts(client, "SELECT 1").await;
                assert_eq!(one[0][0].as_deref(), Some("1"), "after statement {n}");
            }
        }
    }
    assert!(
        answered >= 50 && failed >= 3 && refused >= 5,
        "seed {seed}: {answered} answered, {failed} failed, {refused} refused: too little tested"
    );
}
