//! Live PostgreSQL and MariaDB sources against the real servers on this machine:
//! types, the SQL each source receives (EXPLAIN and the rows it sends), a join across
//! PostgreSQL × MariaDB × SQLite, and a source that goes down failing alone and healing.
//!
//! Each test makes its own uniquely named schema (PostgreSQL) or database (MariaDB)
//! and drops it afterwards. Where a server is not reachable the test says so and
//! skips, unless AMAR_REQUIRE_SERVICES=1.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use amar_tests::{Fixture, TestServer, services_required};
use mysql_async::prelude::Queryable;
use tokio::net::{TcpListener, TcpStream};
use tokio_postgres::{Client, NoTls};

use crate::support::{connect, scrape, sqlstate, texts};

fn pg_url() -> String {
    std::env::var("AMAR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

fn mysql_url() -> String {
    std::env::var("AMAR_TEST_MYSQL")
        .unwrap_or_else(|_| "mysql://root@127.0.0.1:3306/test".to_string())
}

fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "amar_{prefix}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn skip_or_fail(what: &str, e: impl std::fmt::Display) {
    if services_required() {
        panic!("{what} is required (AMAR_REQUIRE_SERVICES=1) but unreachable: {e}");
    }
    eprintln!("skipping: {what} is unreachable ({e})");
}

/// A schema of its own in the test PostgreSQL, dropped on drop.
struct PgSchema {
    client: Client,
    name: String,
}

impl PgSchema {
    async fn new() -> Option<PgSchema> {
        let (client, connection) = match tokio_postgres::connect(&pg_url(), NoTls).await {
            Ok(c) => c,
            Err(e) => {
                skip_or_fail("PostgreSQL", e);
                return None;
            }
        };
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let name = unique("pg");
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        Some(PgSchema { client, name })
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let sql = format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name);
        let url = pg_url();
        // A fresh runtime on another thread: drop cannot await.
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    if let Ok((c, conn)) = tokio_postgres::connect(&url, NoTls).await {
                        tokio::spawn(conn);
                        let _ = c.batch_execute(&sql).await;
                    }
                })
        })
        .join();
    }
}

/// A database of its own in the test MariaDB, dropped on drop.
struct MyDatabase {
    conn: mysql_async::Conn,
    name: String,
}

impl MyDatabase {
    async fn new() -> Option<MyDatabase> {
        let opts = match mysql_async::Opts::from_url(&mysql_url()) {
            Ok(o) => o,
            Err(e) => panic!("AMAR_TEST_MYSQL is not a URL: {e}"),
        };
        let mut conn = match mysql_async::Conn::new(opts).await {
            Ok(c) => c,
            Err(e) => {
                skip_or_fail("MariaDB", e);
                return None;
            }
        };
        let name = unique("my");
        conn.query_drop(format!("CREATE DATABASE {name} CHARACTER SET utf8mb4"))
            .await
            .unwrap();
        conn.query_drop(format!("USE {name}")).await.unwrap();
        Some(MyDatabase { conn, name })
    }

    /// The URL of this database for a source.
    fn url(&self) -> String {
        let base = mysql_url();
        let (server, _) = base.rsplit_once('/').unwrap();
        format!("{server}/{}", self.name)
    }
}

impl Drop for MyDatabase {
    fn drop(&mut self) {
        let sql = format!("DROP DATABASE IF EXISTS {}", self.name);
        let url = mysql_url();
        let _ = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async move {
                    if let Ok(opts) = mysql_async::Opts::from_url(&url)
                        && let Ok(mut c) = mysql_async::Conn::new(opts).await
                    {
                        let _ = c.query_drop(sql).await;
                        let _ = c.disconnect().await;
                    }
                })
        })
        .join();
    }
}

/// A fixture with one admin, `stats` (password `pw`).
fn stats() -> Fixture {
    Fixture::new().admin("stats", "pw")
}

/// `stats`, and `tehran`, an analyst of province 23 (password `tehran`).
fn stats_and_tehran() -> Fixture {
    stats().user_with("tehran", &["analyst"], &[("province_code", "23")], "tehran")
}

/// A `[[source]]` of this name over `schema` of the test PostgreSQL.
fn postgres(fixture: Fixture, name: &str, schema: &str) -> Fixture {
    fixture.source(
        name,
        "postgres",
        &[
            ("url", &pg_url()),
            ("schema", schema),
            ("sslmode", "disable"),
        ],
    )
}

/// A `[[source]]` of this name over the test MariaDB database `my`.
fn mysql(fixture: Fixture, name: &str, my: &MyDatabase) -> Fixture {
    fixture.source(
        name,
        "mysql",
        &[("url", &my.url()), ("sslmode", "disabled")],
    )
}

async fn explain(client: &Client, sql: &str) -> String {
    texts(client, &format!("EXPLAIN {sql}"))
        .await
        .into_iter()
        .map(|r| r.into_iter().flatten().collect::<Vec<_>>().join(" "))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn traffic(client: &Client, source: &str) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT statements_sent, rows_received FROM amar.sources WHERE name = $1",
            &[&source],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn postgres_types_arrive_as_postgresql_shows_them() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TYPE {s}.mood AS ENUM ('خوب', 'بد');
             CREATE TABLE {s}.kinds (
                id int PRIMARY KEY, i2 smallint, i8 bigint, n numeric(14,2), f4 real,
                f8 double precision, t text, vc varchar(20), c char(3), d date, ts timestamp,
                tstz timestamptz, b boolean, by bytea, j json, jb jsonb, u uuid, e {s}.mood,
                arr int[], un numeric);
             INSERT INTO {s}.kinds VALUES
               (1, -32768, 9007199254740993, 123456789012.34, 1.5, 2.25, 'سلام دنیا', 'کرمانشاه',
                'abc', '1403-01-01', '2024-03-20 12:34:56.789', '2024-03-20 09:00:00+00',
                true, '\\x00ff', '{{\"a\": 1}}', '{{\"b\": [1, 2]}}',
                'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'خوب', '{{1,2,3}}', 2641247000),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL, NULL, NULL, NULL, NULL);"
        ))
        .await
        .unwrap();
    let server = postgres(stats(), "dept", s).start();
    let amar = connect(&server, "stats", "pw").await.unwrap();

    // Typed, through the extended protocol.
    let row = amar
        .query_one(
            "SELECT id, i2, i8, n, f8, t, vc, d, ts, b FROM dept.kinds WHERE id = 1",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, i32>(0), 1);
    assert_eq!(row.get::<_, i16>(1), -32768);
    assert_eq!(row.get::<_, i64>(2), 9_007_199_254_740_993);
    assert_eq!(
        row.get::<_, rust_decimal::Decimal>(3).to_string(),
        "123456789012.34"
    );
    assert_eq!(row.get::<_, f64>(4), 2.25);
    assert_eq!(row.get::<_, String>(5), "سلام دنیا");
    assert_eq!(row.get::<_, String>(6), "کرمانشاه");
    assert_eq!(
        row.get::<_, chrono::NaiveDate>(7),
        chrono::NaiveDate::from_ymd_opt(1403, 1, 1).unwrap()
    );
    assert_eq!(
        row.get::<_, chrono::NaiveDateTime>(8).to_string(),
        "2024-03-20 12:34:56.789"
    );
    assert!(row.get::<_, bool>(9));

    // Every column, as text, next to what PostgreSQL itself says.
    let columns = [
        "i2", "i8", "n", "f4", "f8", "t", "vc", "c", "d", "ts", "b", "u", "e",
        // An unconstrained numeric prints at its value's scale (2641247000, not
        // 2641247000.0000000000).
        "un",
    ];
    let list = columns.join(", ");
    let ours = texts(&amar, &format!("SELECT {list} FROM dept.kinds ORDER BY id")).await;
    let theirs = texts(
        &pg.client,
        &format!("SELECT {list} FROM {s}.kinds ORDER BY id"),
    )
    .await;
    assert_eq!(ours, theirs, "columns {list}");
    // The rest read, with their values' meaning kept.
    let rest = texts(
        &amar,
        "SELECT tstz, by, j, jb, arr FROM dept.kinds ORDER BY id",
    )
    .await;
    assert_eq!(rest.len(), 2);
    assert_eq!(
        rest[1],
        vec![None, None, None, None, None],
        "NULLs stay NULL"
    );
    let first = &rest[0];
    let tstz = first[0].clone().unwrap();
    assert!(
        tstz.starts_with("2024-03-20 12:30:00") || tstz.starts_with("2024-03-20 09:00:00"),
        "{tstz}"
    );
    assert_eq!(first[1].as_deref(), Some("\\x00ff"));
    assert!(first[2].as_deref().unwrap().contains("\"a\""), "{first:?}");
    assert!(first[3].as_deref().unwrap().contains("\"b\""), "{first:?}");
    assert!(first[4].as_deref().unwrap().contains('2'), "{first:?}");
}

#[tokio::test]
async fn postgres_receives_filters_aggregates_limits_and_joins_as_sql() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.payments (id bigint PRIMARY KEY, province_code smallint NOT NULL,
                amount numeric(14,0) NOT NULL, period date NOT NULL);
             INSERT INTO {s}.payments
               SELECT g, (g % 31) + 1, (g % 1000) * 1000, date '2023-01-01' + (g % 730)
               FROM generate_series(1, 20000) g;
             CREATE TABLE {s}.provinces (code smallint PRIMARY KEY, name_fa text NOT NULL);
             INSERT INTO {s}.provinces SELECT g, 'استان ' || g FROM generate_series(1, 31) g;"
        ))
        .await
        .unwrap();
    let server = postgres(stats(), "pensions", s).start();
    let amar = connect(&server, "stats", "pw").await.unwrap();

    // An aggregate: the source computes it and sends one row per group.
    let query = "SELECT province_code, sum(amount) AS total FROM pensions.payments \
                 WHERE period >= DATE '2024-01-01' GROUP BY province_code ORDER BY province_code";
    let plan = explain(&amar, query).await;
    assert!(plan.contains("VirtualExecutionPlan"), "{plan}");
    assert!(
        plan.contains("GROUP BY"),
        "the aggregate goes to PostgreSQL:\n{plan}"
    );
    assert!(
        plan.contains("WHERE"),
        "the filter goes to PostgreSQL:\n{plan}"
    );
    let before = traffic(&amar, "pensions").await;
    let ours = texts(&amar, query).await;
    let after = traffic(&amar, "pensions").await;
    let theirs = texts(
        &pg.client,
        &format!(
            "SELECT province_code, sum(amount) FROM {s}.payments WHERE period >= DATE '2024-01-01' \
             GROUP BY province_code ORDER BY province_code"
        ),
    )
    .await;
    assert_eq!(ours, theirs);
    assert_eq!(ours.len(), 31);
    assert!(
        after.1 - before.1 <= 31,
        "only the groups cross the network: {} rows",
        after.1 - before.1
    );

    // A limit.
    let plan = explain(&amar, "SELECT * FROM pensions.payments LIMIT 5").await;
    assert!(plan.contains("LIMIT 5"), "{plan}");
    let before = traffic(&amar, "pensions").await;
    assert_eq!(
        texts(&amar, "SELECT * FROM pensions.payments LIMIT 5")
            .await
            .len(),
        5
    );
    let after = traffic(&amar, "pensions").await;
    assert_eq!(after.1 - before.1, 5);

    // A join of two tables of the one source is one statement.
    let join = "SELECT p.name_fa, count(*) FROM pensions.payments x \
                JOIN pensions.provinces p ON p.code = x.province_code \
                WHERE x.amount > 500000 GROUP BY p.name_fa ORDER BY p.name_fa";
    let plan = explain(&amar, join).await;
    assert!(plan.contains("JOIN"), "{plan}");
    let before = traffic(&amar, "pensions").await;
    let ours = texts(&amar, join).await;
    let after = traffic(&amar, "pensions").await;
    assert_eq!(after.0 - before.0, 1, "one statement for the join");
    assert_eq!(ours.len(), 31);
    assert_eq!(ours[0][0].as_deref(), Some("استان 1"));
}

#[tokio::test]
async fn mariadb_types_and_persian_text_arrive_intact() {
    let Some(mut my) = MyDatabase::new().await else {
        return;
    };
    my.conn
        .query_drop(
            "CREATE TABLE kinds (
                id INT PRIMARY KEY, ti TINYINT, si SMALLINT, bi BIGINT, de DECIMAL(14,2),
                do DOUBLE, vc VARCHAR(40), v3 VARCHAR(40) CHARACTER SET utf8mb3,
                l1 VARCHAR(40) CHARACTER SET latin1, ch CHAR(3), tx TEXT, d DATE,
                dt DATETIME, flag TINYINT(1), en ENUM('خوب', 'بد'), bl BLOB
             ) CHARACTER SET utf8mb4",
        )
        .await
        .unwrap();
    my.conn
        .query_drop(
            "INSERT INTO kinds VALUES
               (1, -128, -32768, 9007199254740993, 123456789012.34, 2.25, 'سلام دنیا', 'کرمانشاه',
                'café', 'abc', 'متن بلند', '2024-03-20', '2024-03-20 12:34:56', 1, 'خوب', x'00ff'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL,
                NULL, NULL)",
        )
        .await
        .unwrap();
    let server = mysql(stats(), "finance", &my).start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let rows = texts(
        &amar,
        "SELECT ti, si, bi, de, do, vc, v3, l1, ch, tx, d, dt, flag, en FROM finance.kinds ORDER BY id",
    )
    .await;
    let expected: Vec<Option<String>> = [
        "-128",
        "-32768",
        "9007199254740993",
        "123456789012.34",
        "2.25",
        "سلام دنیا",
        "کرمانشاه",
        "café",
        "abc",
        "متن بلند",
        "2024-03-20",
        "2024-03-20 12:34:56",
        "1",
        "خوب",
    ]
    .iter()
    .map(|s| Some(s.to_string()))
    .collect();
    assert_eq!(rows[0], expected);
    assert!(rows[1].iter().all(Option::is_none), "{:?}", rows[1]);
    // Filters on Persian text go to MariaDB and match.
    let plan = explain(&amar, "SELECT id FROM finance.kinds WHERE vc = 'سلام دنیا'").await;
    assert!(plan.contains("VirtualExecutionPlan"), "{plan}");
    let hit = texts(&amar, "SELECT id FROM finance.kinds WHERE v3 = 'کرمانشاه'").await;
    assert_eq!(hit, vec![vec![Some("1".to_string())]]);
    // A value that the driver would alter is refused, not silently changed.
    let e = amar
        .query("SELECT id FROM finance.kinds WHERE vc = 'a\"b'", &[])
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000");
}

#[tokio::test]
async fn one_query_joins_postgresql_mariadb_and_sqlite() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let Some(mut my) = MyDatabase::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.pensioners (id bigint PRIMARY KEY, province_code smallint);
             INSERT INTO {s}.pensioners SELECT g, (g % 3) + 1 FROM generate_series(1, 300) g;"
        ))
        .await
        .unwrap();
    my.conn
        .query_drop(
            "CREATE TABLE contributions (id BIGINT PRIMARY KEY, province_code SMALLINT, amount BIGINT)",
        )
        .await
        .unwrap();
    my.conn
        .query_drop(
            "INSERT INTO contributions VALUES (1, 1, 100), (2, 1, 200), (3, 2, 300), (4, 3, 400), (5, 3, 500)",
        )
        .await
        .unwrap();
    let fixture = stats();
    rusqlite::Connection::open(fixture.path("provinces.db"))
        .unwrap()
        .execute_batch(
            "CREATE TABLE provinces (code INTEGER PRIMARY KEY, name_fa TEXT NOT NULL);
             INSERT INTO provinces VALUES (1, 'تهران'), (2, 'اصفهان'), (3, 'فارس');",
        )
        .unwrap();
    let fixture = mysql(postgres(fixture, "pension", s), "finance", &my);
    let server = fixture
        .source("geo", "sqlite", &[("path", "provinces.db")])
        .start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let rows = texts(
        &amar,
        "SELECT g.name_fa, p.pensioners, c.total
         FROM geo.provinces g
         JOIN (SELECT province_code, count(*) AS pensioners FROM pension.pensioners GROUP BY province_code) p
           ON p.province_code = g.code
         JOIN (SELECT province_code, sum(amount) AS total FROM finance.contributions GROUP BY province_code) c
           ON c.province_code = g.code
         ORDER BY g.code",
    )
    .await;
    let expected = vec![
        vec![Some("تهران".into()), Some("100".into()), Some("300".into())],
        vec![
            Some("اصفهان".into()),
            Some("100".into()),
            Some("300".into()),
        ],
        vec![Some("فارس".into()), Some("100".into()), Some("900".into())],
    ];
    assert_eq!(rows, expected);
}

/// A TCP relay to PostgreSQL that the test can cut and restore.
struct Relay {
    port: u16,
    up: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    /// A relay to the test PostgreSQL.
    async fn to_postgres() -> Relay {
        let parsed = url_parts::parse(&pg_url());
        Relay::start(format!("{}:{}", parsed.host, parsed.port)).await
    }

    /// A `[[source]]` entry for schema `schema` reached through this relay.
    fn source(&self, name: &str, extra: &str, schema: &str) -> String {
        let parsed = url_parts::parse(&pg_url());
        format!(
            "[[source]]\nname = \"{name}\"\nkind = \"postgres\"\n{extra}url = \"postgres://{}@127.0.0.1:{}/{}\"\nschema = \"{schema}\"\nsslmode = \"disable\"\nconnect_timeout_s = 2\n",
            parsed.user, self.port, parsed.database
        )
    }

    async fn start(target: String) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let up = Arc::new(AtomicBool::new(true));
        let cut = Arc::new(tokio::sync::Notify::new());
        let (u, c) = (up.clone(), cut.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !u.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let target = target.clone();
                let c = c.clone();
                tokio::spawn(async move {
                    let Ok(mut outbound) = TcpStream::connect(&target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = c.notified() => {}
                    }
                });
            }
        });
        Relay { port, up, cut }
    }

    fn down(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.cut.notify_waiters();
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

// Multi-threaded: the relay must run while the test blocks starting the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_goes_down_fails_alone_and_heals() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.claims (id int PRIMARY KEY, amount int);
             INSERT INTO {s}.claims SELECT g, g FROM generate_series(1, 100) g;"
        ))
        .await
        .unwrap();
    let relay = Relay::to_postgres().await;
    // Nothing listens on `dead`'s port; `slammer` accepts and hangs up at once.
    let dead_port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let slammer = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slam_port = slammer.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((sock, _)) = slammer.accept().await {
            drop(sock);
        }
    });
    let fixture = stats();
    rusqlite::Connection::open(fixture.path("local.db"))
        .unwrap()
        .execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1), (2);")
        .unwrap();
    let server = fixture
        .config(&format!(
            "{}\n\
             [[source]]\nname = \"dead\"\nkind = \"postgres\"\nurl = \"postgres://postgres@127.0.0.1:{dead_port}/test\"\nsslmode = \"disable\"\nconnect_timeout_s = 1\n\n\
             [[source]]\nname = \"slammer\"\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:{slam_port}/test\"\nsslmode = \"disabled\"\nconnect_timeout_s = 1\n\n\
             [[source]]\nname = \"local\"\nkind = \"sqlite\"\npath = \"local.db\"\n",
            relay.source("health", "", s),
        ))
        .start();
    let amar = connect(&server, "stats", "pw").await.unwrap();

    // Sources down from the start: named in the error, 08006, listed unhealthy.
    for (source, sql) in [
        ("dead", "SELECT * FROM dead.anything"),
        ("slammer", "SELECT * FROM slammer.t"),
    ] {
        let e = amar.query(sql, &[]).await.unwrap_err();
        assert_eq!(sqlstate(&e), "08006", "{e:?}");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(message.contains(&format!("\"{source}\"")), "{message}");
    }
    let health = texts(
        &amar,
        "SELECT name, healthy FROM amar.sources ORDER BY name",
    )
    .await;
    assert_eq!(
        health,
        vec![
            vec![Some("dead".into()), Some("f".into())],
            vec![Some("health".into()), Some("t".into())],
            vec![Some("local".into()), Some("t".into())],
            vec![Some("slammer".into()), Some("f".into())],
        ]
    );
    let count = "SELECT count(*) FROM health.claims";
    assert_eq!(texts(&amar, count).await, vec![vec![Some("100".into())]]);

    // The connection is cut: queries on it fail fast, naming it; others answer.
    relay.down();
    let started = Instant::now();
    let e = amar.query(count, &[]).await.unwrap_err();
    assert!(sqlstate(&e).starts_with("08"), "{e:?}");
    assert!(
        e.as_db_error().unwrap().message().contains("\"health\""),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        texts(&amar, "SELECT count(*) FROM local.t").await,
        vec![vec![Some("2".into())]]
    );

    // Back up: the source heals by itself.
    relay.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match amar.simple_query(count).await {
            Ok(_) => break,
            Err(e) if Instant::now() < deadline => {
                let _ = e;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
            Err(e) => panic!("the source did not heal: {e:?}"),
        }
    }
    assert_eq!(texts(&amar, count).await, vec![vec![Some("100".into())]]);
}

/// The parts of a postgres:// URL the relay test needs.
mod url_parts {
    pub struct Parts {
        pub user: String,
        pub host: String,
        pub port: u16,
        pub database: String,
    }

    pub fn parse(url: &str) -> Parts {
        let rest = url.split_once("://").map(|x| x.1).unwrap_or(url);
        let (auth, rest) = rest.split_once('@').unwrap_or(("postgres", rest));
        let user = auth.split(':').next().unwrap_or("postgres").to_string();
        let (hostport, database) = rest.split_once('/').unwrap_or((rest, "test"));
        let (host, port) = hostport.split_once(':').unwrap_or((hostport, "5432"));
        Parts {
            user,
            host: host.to_string(),
            port: port.parse().unwrap_or(5432),
            database: database.split('?').next().unwrap_or("test").to_string(),
        }
    }
}

/// Polls `sql` until its one value is `want`, or fails after `secs`.
async fn until_value(client: &Client, sql: &str, want: &str, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let got = texts(client, sql).await;
        if got.first().and_then(|r| r[0].as_deref()) == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{sql}: still {got:?}, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_switch_atomically_and_a_failed_refresh_keeps_the_last_one() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.pensioners (id int PRIMARY KEY, name_fa text);
             INSERT INTO {s}.pensioners SELECT g, 'بازنشسته ' || g FROM generate_series(1, 10) g;"
        ))
        .await
        .unwrap();
    let relay = Relay::to_postgres().await;
    let server = stats()
        .config(&relay.source("offline", "mode = \"snapshot\"\nrefresh = \"1s\"\n", s))
        .start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let count = "SELECT count(*) FROM offline.pensioners";
    // The first copy is made at start.
    assert_eq!(texts(&amar, count).await, vec![vec![Some("10".into())]]);
    let status = texts(
        &amar,
        "SELECT mode, healthy, snapshot_rows, last_snapshot IS NOT NULL FROM amar.sources",
    )
    .await;
    assert_eq!(
        status,
        vec![vec![
            Some("snapshot".into()),
            Some("t".into()),
            Some("10".into()),
            Some("t".into())
        ]]
    );
    // Queries read the local copy: no statement goes to PostgreSQL for them.
    let plan = explain(&amar, count).await;
    assert!(!plan.contains("VirtualExecutionPlan"), "{plan}");
    // A statement prepared now (as drivers prepare the statements they repeat) is
    // planned over this copy; it must read the copies made after it, not this one.
    let prepared = amar
        .prepare("SELECT count(*) FROM offline.pensioners WHERE id > $1")
        .await
        .unwrap();
    let prepared_count = |above: i32| {
        let (amar, prepared) = (&amar, &prepared);
        async move {
            let row = amar.query_one(prepared, &[&above]).await.unwrap();
            row.get::<_, i64>(0)
        }
    };
    assert_eq!(prepared_count(0).await, 10);

    // New rows at the source arrive with the next scheduled refresh.
    pg.client
        .batch_execute(&format!(
            "INSERT INTO {s}.pensioners SELECT g, 'بازنشسته ' || g FROM generate_series(11, 15) g;"
        ))
        .await
        .unwrap();
    until_value(&amar, count, "15", 30).await;
    let replanned = || scrape(&server, "amar_prepared_replanned_total");
    let before = replanned().await.unwrap();
    assert_eq!(
        prepared_count(0).await,
        15,
        "the prepared statement reads the new copy"
    );
    for _ in 0..20 {
        assert_eq!(prepared_count(12).await, 3);
    }
    // Once for the new copy, not at every execution (a copy made meanwhile, every
    // 5 s, may add one).
    let again = replanned().await.unwrap() - before;
    assert!((1.0..=2.0).contains(&again), "planned again {again} times");
    // Two more copies: the one it was planned over is gone (two are kept).
    for (from, to) in [(16, 18), (19, 20)] {
        pg.client
            .batch_execute(&format!(
                "INSERT INTO {s}.pensioners SELECT g, 'بازنشسته ' || g FROM generate_series({from}, {to}) g;"
            ))
            .await
            .unwrap();
        until_value(&amar, count, &to.to_string(), 30).await;
    }
    assert_eq!(prepared_count(0).await, 20);
    assert_eq!(prepared_count(18).await, 2);

    // A leftover of a refresh that crashed changes nothing and is cleaned up.
    let snapshots = server.data_dir.join("snapshots").join("offline");
    let junk = snapshots.join(".19700101T000000.000000Z.partial");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("pensioners.parquet"), b"not parquet").unwrap();
    assert_eq!(texts(&amar, count).await, vec![vec![Some("20".into())]]);

    // The source goes away: refreshes fail, the last good copy keeps answering, and
    // amar.sources says what happened.
    relay.down();
    until_value(
        &amar,
        "SELECT health_message LIKE '%last refresh failed%' FROM amar.sources",
        "t",
        40,
    )
    .await;
    assert_eq!(texts(&amar, count).await, vec![vec![Some("20".into())]]);
    assert_eq!(prepared_count(0).await, 20);
    assert!(
        !junk.exists(),
        "the partial folder of a crashed refresh is removed"
    );
    let generations = std::fs::read_dir(&snapshots)
        .unwrap()
        .flatten()
        .filter(|e| e.path().is_dir())
        .count();
    assert!(
        generations <= 2,
        "old generations are pruned: {generations}"
    );
    relay.restore();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_mid_query_fails_that_query_naming_the_source() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.big AS SELECT g AS id, md5(g::text) AS h FROM generate_series(1, 2000000) g;"
        ))
        .await
        .unwrap();
    let relay = Relay::to_postgres().await;
    let server = stats().config(&relay.source("far", "", s)).start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    use futures::StreamExt;
    let outcome = tokio::time::timeout(Duration::from_secs(60), async {
        let rows = amar
            .query_raw("SELECT id, h FROM far.big", std::iter::empty::<i32>())
            .await?;
        futures::pin_mut!(rows);
        let mut seen = 0u64;
        while let Some(row) = rows.next().await {
            row?;
            seen += 1;
            if seen == 1000 {
                relay.down();
            }
        }
        Ok::<u64, tokio_postgres::Error>(seen)
    })
    .await
    .expect("a cut connection ends the query instead of hanging");
    let e = outcome.expect_err("the query fails once its source is cut");
    assert!(sqlstate(&e).starts_with("08"), "{e:?}");
    assert!(
        e.as_db_error().unwrap().message().contains("\"far\""),
        "{e:?}"
    );
    // The session itself is fine.
    assert_eq!(texts(&amar, "SELECT 1").await, vec![vec![Some("1".into())]]);
}

#[tokio::test]
async fn policies_apply_to_postgres_sources_filters_pushed_and_masks_computed_here() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.people (id int PRIMARY KEY, national_id text NOT NULL, province_code smallint NOT NULL);
             INSERT INTO {s}.people SELECT g, lpad(g::text, 10, '0'), (g % 31) + 1 FROM generate_series(1, 3100) g;
             CREATE TABLE {s}.payments (id int PRIMARY KEY, province_code smallint NOT NULL, amount int NOT NULL);
             INSERT INTO {s}.payments SELECT g, (g % 31) + 1, g FROM generate_series(1, 3100) g;"
        ))
        .await
        .unwrap();
    let fixture = stats_and_tehran().policy(
        "p, role:analyst, dept.*, read, allow
         p2, role:analyst, dept.people, national_id, mask, hash
         p3, role:analyst, dept.*, province_code = ${user.province_code}",
    );
    let server = postgres(fixture, "dept", s).start();
    let admin = connect(&server, "stats", "pw").await.unwrap();
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();

    // Row filter only: the whole aggregate still goes to PostgreSQL, filter included.
    let sum = "SELECT count(*), sum(amount) FROM dept.payments";
    let plan = explain(&tehran, sum).await;
    assert!(plan.contains("VirtualExecutionPlan"), "{plan}");
    assert!(
        plan.contains("\"province_code\" = 23"),
        "the user's filter is in the SQL:\n{plan}"
    );
    assert_eq!(
        texts(&tehran, sum).await,
        texts(&admin, &format!("{sum} WHERE province_code = 23")).await
    );

    // A masked column: the filter still reaches PostgreSQL, the hash is made here.
    let rows = texts(
        &tehran,
        "SELECT id, national_id, province_code FROM dept.people ORDER BY id",
    )
    .await;
    assert_eq!(rows.len(), 100);
    for row in &rows {
        assert_eq!(row[2].as_deref(), Some("23"));
        let shown = row[1].as_deref().unwrap();
        assert_eq!(shown.len(), 64, "{shown}");
        assert!(!shown.starts_with("00000"), "{shown}");
    }
    let plan = explain(&tehran, "SELECT national_id FROM dept.people").await;
    assert!(plan.contains("\"province_code\" = 23"), "{plan}");
}

/// Executions of prepared statements that skipped optimisation, so far.
async fn pushed_executions(server: &TestServer) -> f64 {
    scrape(server, "amar_prepared_pushed_executions_total")
        .await
        .unwrap_or(0.0)
}

/// The statements Amar's connections to `schema` last sent, as PostgreSQL shows them.
async fn sent_to(pg: &PgSchema, table: &str) -> Vec<String> {
    pg.client
        .query(
            "SELECT query FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND query LIKE $1",
            &[&format!("%{}%{table}%", pg.name)],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test]
async fn prepared_values_reach_postgresql_as_parameters_of_their_type() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TYPE {s}.mood AS ENUM ('خوب', 'بد');
             CREATE TABLE {s}.kinds (id int PRIMARY KEY, i8 bigint, n numeric(14,2), f8 double precision,
                t text, c char(3), d date, ts timestamp, tstz timestamptz, b boolean, u uuid, e {s}.mood);
             INSERT INTO {s}.kinds SELECT g, g::bigint * 1000000007, g * 1.25, g / 4.0, 'نام ' || g,
                lpad((g % 100)::text, 3, '0'), date '1990-01-01' + g, timestamp '2024-03-20 12:00' + g * interval '1 minute',
                timestamptz '2024-03-20 09:00:00+00' + g * interval '1 second', g % 2 = 0,
                ('a0eebc99-9c0b-4ef8-bb6d-' || lpad(g::text, 12, '0'))::uuid,
                CASE WHEN g % 3 = 0 THEN 'بد' ELSE 'خوب' END::{s}.mood
               FROM generate_series(1, 500) g;"
        ))
        .await
        .unwrap();
    let server = postgres(stats(), "dept", s).start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let ids =
        |rows: Vec<tokio_postgres::Row>| -> Vec<i32> { rows.iter().map(|r| r.get(0)).collect() };
    let direct =
        |condition: &str| format!("SELECT id FROM {s}.kinds WHERE {condition} ORDER BY id");
    let ours = |column: &str, op: &str| {
        format!("SELECT id FROM dept.kinds WHERE {column} {op} $1 ORDER BY id")
    };
    let want = |condition: String| {
        let client = &pg.client;
        async move { ids(client.query(&condition, &[]).await.unwrap()) }
    };

    // Each type, bound as the client sends it, against PostgreSQL's own answer.
    let uuid = "a0eebc99-9c0b-4ef8-bb6d-000000000077";
    let cases: Vec<(String, Vec<i32>)> = vec![
        (ours("u", "="), want(direct(&format!("u = '{uuid}'"))).await),
        (ours("e", "="), want(direct("e = 'بد'")).await),
        (ours("t", "LIKE"), want(direct("t LIKE 'نام 4_'")).await),
        (ours("c", "="), want(direct("c = '007'")).await),
    ];
    let texts_bound = [uuid, "بد", "نام 4_", "007"];
    for ((sql, expected), value) in cases.iter().zip(texts_bound) {
        let statement = amar.prepare(sql).await.unwrap();
        let got = ids(amar.query(&statement, &[&value]).await.unwrap());
        assert!(!expected.is_empty(), "{sql}");
        assert_eq!(&got, expected, "{sql} with {value}");
    }
    let statement = amar.prepare(&ours("u", "=")).await.unwrap();
    assert_eq!(
        ids(amar.query(&statement, &[&uuid]).await.unwrap()),
        vec![77]
    );
    let last = sent_to(&pg, "kinds").await;
    assert!(
        last.iter().any(|q| q.contains("$1")) && !last.iter().any(|q| q.contains(uuid)),
        "the value went as a parameter, not in the SQL: {last:?}"
    );
    // A value the type cannot take is PostgreSQL's error: its SQLSTATE (22P02, as
    // postgres_fdw passes it on) and its message, naming the source. The same for a
    // statement sent with the value written in it.
    let e = amar.query(&statement, &[&"not a uuid"]).await.unwrap_err();
    assert_eq!(sqlstate(&e), "22P02", "{e}");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(
        message.contains("uuid") && message.contains("\"dept\""),
        "{message}"
    );
    let e = amar
        .simple_query("SELECT id FROM dept.kinds WHERE u = 'not a uuid'")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "22P02", "{e}");
    // The server is still there.
    assert_eq!(
        ids(amar.query(&statement, &[&uuid]).await.unwrap()),
        vec![77]
    );

    let statement = amar.prepare(&ours("i8", "=")).await.unwrap();
    assert_eq!(
        ids(amar.query(&statement, &[&77_000_000_539i64]).await.unwrap()),
        vec![77]
    );
    let statement = amar.prepare(&ours("n", ">=")).await.unwrap();
    let n = rust_decimal::Decimal::new(62375, 2);
    assert_eq!(
        ids(amar.query(&statement, &[&n]).await.unwrap()),
        want(direct("n >= 623.75")).await
    );
    let statement = amar.prepare(&ours("f8", "=")).await.unwrap();
    assert_eq!(
        ids(amar.query(&statement, &[&19.25f64]).await.unwrap()),
        vec![77]
    );
    let statement = amar.prepare(&ours("d", "=")).await.unwrap();
    let day = chrono::NaiveDate::from_ymd_opt(1990, 3, 19).unwrap();
    assert_eq!(
        ids(amar.query(&statement, &[&day]).await.unwrap()),
        want(direct("d = date '1990-03-19'")).await
    );
    let statement = amar.prepare(&ours("ts", "<")).await.unwrap();
    let at = chrono::NaiveDate::from_ymd_opt(2024, 3, 20)
        .unwrap()
        .and_hms_micro_opt(12, 3, 0, 1)
        .unwrap();
    assert_eq!(
        ids(amar.query(&statement, &[&at]).await.unwrap()),
        vec![1, 2, 3]
    );
    let row = amar
        .query_one(
            "SELECT count(*) FROM dept.kinds WHERE tstz > $1 AND b = $2",
            &[
                &chrono::DateTime::parse_from_rfc3339("2024-03-20T12:35:00+03:30")
                    .unwrap()
                    .with_timezone(&chrono::Utc),
                &true,
            ],
        )
        .await
        .unwrap();
    // 09:05:00 UTC, 300 seconds in: the even ids 302…500.
    let theirs: i64 = pg
        .client
        .query_one(
            &format!("SELECT count(*) FROM {s}.kinds WHERE tstz > timestamptz '2024-03-20 12:35:00+03:30' AND b"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(row.get::<_, i64>(0), theirs);
    assert_eq!(theirs, 100);
    let last = sent_to(&pg, "kinds").await;
    assert!(last.iter().any(|q| q.contains("$2")), "{last:?}");
    // NULL matches nothing, as in PostgreSQL.
    let statement = amar.prepare(&ours("d", "=")).await.unwrap();
    let none: Option<chrono::NaiveDate> = None;
    assert!(amar.query(&statement, &[&none]).await.unwrap().is_empty());
}

#[tokio::test]
async fn prepared_statements_wholly_pushed_are_planned_once_and_keep_the_policy() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.people (id int PRIMARY KEY, name text NOT NULL, national_id text NOT NULL,
                province_code smallint NOT NULL, wage numeric(14,0), born date);
             INSERT INTO {s}.people SELECT g, 'نام ' || g, lpad(g::text, 10, '0'), (g % 31) + 1,
                CASE WHEN g % 7 = 0 THEN NULL ELSE g * 1000 END, date '1980-01-01' + g
               FROM generate_series(1, 3100) g;
             UPDATE {s}.people SET name = 'O''Brien''; DROP TABLE x; --' WHERE id = 5;
             CREATE TABLE {s}.payments (id int PRIMARY KEY, province_code smallint NOT NULL, amount int NOT NULL);
             INSERT INTO {s}.payments SELECT g, (g % 31) + 1, g FROM generate_series(1, 3100) g;"
        ))
        .await
        .unwrap();
    let fixture = stats_and_tehran().policy(
        "p, role:analyst, dept.*, read, allow
         p2, role:analyst, dept.people, national_id, mask, hash
         p3, role:analyst, dept.*, province_code = ${user.province_code}",
    );
    let server = postgres(fixture, "dept", s).start();
    let admin = connect(&server, "stats", "pw").await.unwrap();
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();

    // A point query, prepared once and run with 40 values: every row as PostgreSQL
    // has it, one statement to the source per execution, none optimised again.
    let point = admin
        .prepare("SELECT id, name, wage, born FROM dept.people WHERE id = $1")
        .await
        .unwrap();
    let direct = pg
        .client
        .prepare(&format!(
            "SELECT id, name, wage, born FROM {s}.people WHERE id = $1"
        ))
        .await
        .unwrap();
    let (pushed, traffic_before) = (
        pushed_executions(&server).await,
        traffic(&admin, "dept").await,
    );
    for id in (1..=3100).step_by(79).chain([0, 3101]) {
        let ours = admin.query(&point, &[&id]).await.unwrap();
        let theirs = pg.client.query(&direct, &[&id]).await.unwrap();
        assert_eq!(ours.len(), theirs.len(), "id {id}");
        for (a, b) in ours.iter().zip(&theirs) {
            assert_eq!(a.get::<_, i32>(0), b.get::<_, i32>(0));
            assert_eq!(a.get::<_, String>(1), b.get::<_, String>(1));
            assert_eq!(
                a.get::<_, Option<rust_decimal::Decimal>>(2),
                b.get::<_, Option<rust_decimal::Decimal>>(2),
                "id {id}"
            );
            assert_eq!(
                a.get::<_, chrono::NaiveDate>(3),
                b.get::<_, chrono::NaiveDate>(3)
            );
        }
    }
    let traffic_after = traffic(&admin, "dept").await;
    assert_eq!(
        pushed_executions(&server).await - pushed,
        42.0,
        "every execution skipped optimisation"
    );
    // 42 executions, and the one `traffic` statement that read amar.sources (which
    // sends nothing to the source).
    assert_eq!(traffic_after.0 - traffic_before.0, 42);

    // Text values reach the source as values, not SQL: quotes, semicolons, Persian,
    // and a backslash before a quote (which the SQL printer used to leave unescaped,
    // ending the literal there), whether bound or written in the statement.
    let by_name = admin
        .prepare("SELECT id FROM dept.people WHERE name = $1")
        .await
        .unwrap();
    pg.client
        .batch_execute(&format!(
            "UPDATE {s}.people SET name = 'a\\'' OR 1=1 --' WHERE id = 6"
        ))
        .await
        .unwrap();
    for (name, want) in [
        ("O'Brien'; DROP TABLE x; --", vec![5]),
        ("نام 77", vec![77]),
        ("a\\' OR 1=1 --", vec![6]),
        ("nobody\\' OR 1=1 --", vec![]),
        ("x\\') OR (1=1) --", vec![]),
    ] {
        let literal = format!(
            "SELECT id FROM dept.people WHERE name = '{}'",
            name.replace('\'', "''")
        );
        let ids: Vec<Option<String>> = texts(&admin, &literal)
            .await
            .into_iter()
            .flatten()
            .collect();
        let want_text: Vec<Option<String>> = want.iter().map(|i| Some(i.to_string())).collect();
        assert_eq!(ids, want_text, "{literal}");
        let ids: Vec<i32> = admin
            .query(&by_name, &[&name])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(ids, want, "{name}");
    }
    let none: Option<&str> = None;
    assert!(admin.query(&by_name, &[&none]).await.unwrap().is_empty());
    // A name holding a double quote cannot be written safely into PostgreSQL's SQL.
    let e = admin
        .simple_query("SELECT id AS \"a\"\"b\" FROM dept.people WHERE id = 1")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "0A000", "{e}");
    let message = e
        .as_db_error()
        .map(|d| d.message().to_string())
        .unwrap_or_default();
    assert!(message.contains("quote character"), "{message}");
    // A range, with an aggregate: still one statement, the same sums.
    let range = admin
        .prepare("SELECT province_code, count(*), sum(wage) FROM dept.people WHERE id BETWEEN $1 AND $2 GROUP BY province_code ORDER BY province_code")
        .await
        .unwrap();
    let ours = admin.query(&range, &[&100i32, &700i32]).await.unwrap();
    let theirs = pg
        .client
        .query(
            &format!("SELECT province_code, count(*), sum(wage) FROM {s}.people WHERE id BETWEEN 100 AND 700 GROUP BY province_code ORDER BY province_code"),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(ours.len(), 31);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a.get::<_, i16>(0), b.get::<_, i16>(0));
        assert_eq!(a.get::<_, i64>(1), b.get::<_, i64>(1));
        assert_eq!(
            a.get::<_, Option<rust_decimal::Decimal>>(2),
            b.get::<_, Option<rust_decimal::Decimal>>(2)
        );
    }

    // The row filter is part of what is planned once: Tehran's prepared statements
    // see province 23 alone, whatever they are asked for.
    let before = pushed_executions(&server).await;
    let count = tehran
        .prepare("SELECT count(*) FROM dept.payments WHERE id BETWEEN $1 AND $2")
        .await
        .unwrap();
    let n: i64 = tehran
        .query_one(&count, &[&1i32, &3100i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
    let point = tehran
        .prepare("SELECT id, province_code FROM dept.payments WHERE id = $1")
        .await
        .unwrap();
    // id 22 is in province 23, id 23 in province 24.
    assert_eq!(tehran.query(&point, &[&22i32]).await.unwrap().len(), 1);
    assert!(tehran.query(&point, &[&23i32]).await.unwrap().is_empty());
    assert_eq!(pushed_executions(&server).await - before, 3.0);
    // A table with a masked column is read here, whatever the statement names:
    // `count(*)` reads no column of it (which once failed with XX000).
    let before = pushed_executions(&server).await;
    let count = tehran
        .prepare("SELECT count(*) FROM dept.people WHERE id BETWEEN $1 AND $2")
        .await
        .unwrap();
    let n: i64 = tehran
        .query_one(&count, &[&1i32, &3100i32])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 100);
    assert_eq!(
        texts(&tehran, "SELECT count(*) FROM dept.people").await[0][0].as_deref(),
        Some("100")
    );
    // The masked column itself: computed here, and masked.
    let masked = tehran
        .prepare("SELECT national_id FROM dept.people WHERE id = $1")
        .await
        .unwrap();
    let shown: String = tehran.query_one(&masked, &[&22i32]).await.unwrap().get(0);
    assert_eq!(shown.len(), 64, "{shown}");
    assert_ne!(shown, "0000000022");
    assert_eq!(pushed_executions(&server).await, before);
}

/// The row filter's security barrier on live database sources: a row-filtered
/// user's expression that fails on a value runs in Amar over the rows the filter
/// passed (PostgreSQL or MariaDB would evaluate it in any order), the leakproof rest
/// still goes to the source with the filter, a wholly leakproof statement is pushed
/// whole as before, and statements nested 900 levels deep survive the SQL written
/// for each source.
#[tokio::test]
async fn row_filters_on_database_sources_hold_against_errors_and_deep_statements() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let Some(mut my) = MyDatabase::new().await else {
        return;
    };
    let s = &pg.name;
    // Tehran's rows (province 23) have names like tehran_7; every other row's name
    // is a secret no Tehran user may learn.
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.people (id int PRIMARY KEY, name text NOT NULL, province_code smallint NOT NULL);
             INSERT INTO {s}.people SELECT g, CASE WHEN g % 4 = 0 THEN 'tehran_' || g ELSE 'secret_' || g END,
                 CASE WHEN g % 4 = 0 THEN 23 ELSE 7 END FROM generate_series(1, 400) g;"
        ))
        .await
        .unwrap();
    my.conn
        .query_drop(
            "CREATE TABLE people (id INT PRIMARY KEY, name VARCHAR(40) NOT NULL, province_code SMALLINT NOT NULL)",
        )
        .await
        .unwrap();
    let values = (1..=400)
        .map(|g| {
            if g % 4 == 0 {
                format!("({g}, 'tehran_{g}', 23)")
            } else {
                format!("({g}, 'secret_{g}', 7)")
            }
        })
        .collect::<Vec<_>>()
        .join(", ");
    my.conn
        .query_drop(format!("INSERT INTO people VALUES {values}"))
        .await
        .unwrap();

    let fixture = stats_and_tehran().policy(
        "p, role:analyst, dept.*, read, allow
         p, role:analyst, fin.*, read, allow
         p3, role:analyst, dept.*, province_code = ${user.province_code}
         p3, role:analyst, fin.*, province_code = ${user.province_code}",
    );
    let server = mysql(postgres(fixture, "dept", s), "fin", &my).start();
    let admin = connect(&server, "stats", "pw").await.unwrap();
    let tehran = connect(&server, "tehran", "tehran").await.unwrap();

    for table in ["dept.people", "fin.people"] {
        // Fails only on row 1, which is not Tehran's: tehran never meets it.
        for failing in [
            "CASE WHEN id = 1 THEN CAST(name AS INT) ELSE 1 END",
            "CASE WHEN id = 1 THEN 1/0 ELSE 1 END",
            "1/(id - 1)",
        ] {
            for sql in [
                format!("SELECT count(*) FROM {table} WHERE {failing} = 1 OR {failing} <> 1"),
                format!("SELECT sum({failing}) FROM {table}"),
                format!("SELECT id FROM {table} ORDER BY {failing}, id LIMIT 2"),
            ] {
                let rows = tehran
                    .simple_query(&sql)
                    .await
                    .unwrap_or_else(|e| panic!("{sql} fails as tehran: {e:?}"));
                assert!(rows.len() > 1, "{sql}");
            }
        }
        let counted = texts(
            &tehran,
            &format!("SELECT count(*) FROM {table} WHERE CASE WHEN id = 1 THEN 1/0 ELSE 1 END = 1"),
        )
        .await;
        assert_eq!(counted[0][0].as_deref(), Some("100"), "{table}");
        // Failing on Tehran's own rows shows Tehran's values only.
        let sql = format!("SELECT CAST(name AS INT) FROM {table}");
        let e = tehran.simple_query(&sql).await.unwrap_err();
        let message = e
            .as_db_error()
            .map(|d| d.message().to_string())
            .unwrap_or_default();
        assert!(!message.contains("secret"), "{sql}: {message}");

        // A leakproof statement is pushed to the source whole, filter included.
        let plan = explain(
            &tehran,
            &format!("SELECT count(*), sum(id) FROM {table} WHERE id > 5"),
        )
        .await;
        assert!(plan.contains("VirtualExecutionPlan"), "{plan}");
        assert!(!plan.contains("SecurityBarrier"), "{plan}");
        // One that can fail keeps its barrier; the filter and `id > 5` still go to
        // the source, the cast stays in Amar.
        let plan = explain(
            &tehran,
            &format!("SELECT count(*) FROM {table} WHERE id > 5 AND CAST(name AS INT) = 1"),
        )
        .await;
        assert!(plan.contains("SecurityBarrier"), "{plan}");
        let sent = plan
            .lines()
            .filter_map(|l| l.split_once("base_sql=").map(|(_, sql)| sql))
            .collect::<Vec<_>>()
            .join("\n");
        assert!(sent.contains("23") && sent.contains("> 5"), "{plan}");
        assert!(!sent.to_ascii_uppercase().contains("CAST("), "{plan}");

        // 900 levels deep: planned, written as the source's SQL and answered.
        let deep = format!(
            "SELECT count(*) FROM {table} WHERE id{} > 0",
            " + 1".repeat(899)
        );
        for (who, client, expected) in [("admin", &admin, "400"), ("tehran", &tehran, "100")] {
            match client.simple_query(&deep).await {
                Ok(_) => {
                    let rows = texts(client, &deep).await;
                    assert_eq!(rows[0][0].as_deref(), Some(expected), "{who} on {table}");
                }
                // MariaDB's own threads have 299 KiB of stack, too little for this
                // statement: its refusal comes back as the source's error.
                Err(e) if table == "fin.people" => {
                    assert_eq!(sqlstate(&e), "HV000", "{who}: {e:?}");
                    let message = e.as_db_error().map(|d| d.message()).unwrap_or_default();
                    assert!(message.contains("source \"fin\""), "{who}: {message}");
                }
                Err(e) => panic!("{who} on {table}: {e:?}"),
            }
        }
    }
    // `||` is bounded where Amar evaluates it and still the operator in a source's SQL.
    let concat = "SELECT name || '!' FROM dept.people WHERE id = 4";
    let plan = explain(&admin, concat).await;
    let sent = plan
        .lines()
        .filter_map(|l| l.split_once("base_sql=").map(|(_, sql)| sql))
        .collect::<String>();
    assert!(sent.contains("||"), "{plan}");
    assert_eq!(
        texts(&admin, concat).await[0][0].as_deref(),
        Some("tehran_4!")
    );
    assert_eq!(texts(&tehran, "SELECT 1").await[0][0].as_deref(), Some("1"));
}

/// `amar.indicator_status` is computed once per version of the data under it and
/// served from that result until the version changes: a files source's new file shows
/// at the next read; a live database, which cannot tell when its rows change, is
/// read again only after `LIVE_MAX_AGE` (60 s) or when another source under the
/// status changes. The indicator views themselves stay live.
#[tokio::test]
async fn indicator_status_is_kept_until_the_data_under_it_changes() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.cases (province int, n int);
             INSERT INTO {s}.cases VALUES (1, 10), (2, 20);"
        ))
        .await
        .unwrap();
    let indicator = |id: &str, from: &str| {
        format!(
            r#"[[indicator]]
id = "{id}"
title_fa = "x"
title_en = "{id}"
unit = "cases"
periodicity = "monthly"
additivity = "flow"
dimensions = ["province"]
area = "province"
norm = {{ target = 15.0, direction = "higher", weight = 1.0 }}
sql = "SELECT province, sum(n) AS value FROM {from} GROUP BY province"
"#
        )
    };
    let fixture = postgres(stats(), "live", s)
        .file("cells/counts.csv", "province,n\n1,10\n2,20\n")
        .source("cells", "files", &[("path", "cells")])
        .config(&indicator("filed", "cells.counts"))
        .config(&indicator("live_cases", "live.cases"));
    let csv = fixture.path("cells/counts.csv");
    let server = fixture.start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    let status = "SELECT indicator, unit, CAST(value AS BIGINT), status FROM amar.indicator_status ORDER BY 1, 2";
    let row = |i: &str, u: &str, v: &str, st: &str| {
        vec![
            Some(i.to_string()),
            Some(u.to_string()),
            Some(v.to_string()),
            Some(st.to_string()),
        ]
    };
    let first = vec![
        row("filed", "1", "10", "off target"),
        row("filed", "2", "20", "on target"),
        row("live_cases", "1", "10", "off target"),
        row("live_cases", "2", "20", "on target"),
    ];
    assert_eq!(texts(&amar, status).await, first);

    // The live database changes: the view shows it at once, the status is kept.
    pg.client
        .batch_execute(&format!("UPDATE {s}.cases SET n = 100 WHERE province = 1"))
        .await
        .unwrap();
    assert_eq!(
        texts(
            &amar,
            "SELECT CAST(value AS BIGINT) FROM indicators.live_cases WHERE province = 1"
        )
        .await,
        vec![vec![Some("100".into())]]
    );
    assert_eq!(
        texts(&amar, status).await,
        first,
        "kept: no source said its data changed"
    );

    // A new version of the file: the status is computed again, from everything under it.
    std::fs::write(&csv, "province,n\n1,50\n2,20\n").unwrap();
    assert_eq!(
        texts(&amar, status).await,
        vec![
            row("filed", "1", "50", "on target"),
            row("filed", "2", "20", "on target"),
            row("live_cases", "1", "100", "on target"),
            row("live_cases", "2", "20", "on target"),
        ]
    );
    drop(amar);
    server.stop();
}

/// A snapshot's copies are sorted by each table's primary key (or the `keys` the
/// config names), with the page index and a bloom filter on the key, so a lookup by
/// key through Amar reads a page of the copy.
#[tokio::test]
async fn snapshot_copies_are_sorted_by_key_for_lookups() {
    let Some(pg) = PgSchema::new().await else {
        return;
    };
    let s = &pg.name;
    pg.client
        .batch_execute(&format!(
            "CREATE TABLE {s}.people (id int PRIMARY KEY, name text);
             INSERT INTO {s}.people SELECT g, 'نفر ' || g FROM generate_series(1, 30000) g ORDER BY md5(g::text);
             CREATE TABLE {s}.visits (code bigint, n int);
             INSERT INTO {s}.visits SELECT (g * 7919) % 20000, g FROM generate_series(1, 20000) g;"
        ))
        .await
        .unwrap();
    let server = postgres(stats(), "offline", s)
        .config("mode = \"snapshot\"\nkeys = { visits = [\"code\"] }")
        .start();
    let amar = connect(&server, "stats", "pw").await.unwrap();
    assert_eq!(
        texts(&amar, "SELECT name FROM offline.people WHERE id = 12345").await,
        vec![vec![Some("نفر 12345".to_string())]]
    );
    let snapshots = server.data_dir.join("snapshots").join("offline");
    let generation = std::fs::read_to_string(snapshots.join("CURRENT")).unwrap();
    let copy = |table: &str| {
        snapshots
            .join(generation.trim())
            .join(format!("{table}.parquet"))
    };
    let (ids, indexed, bloom) = crate::drop::layout(&copy("people"), "id");
    assert_eq!(
        ids,
        (1..=30000).collect::<Vec<_>>(),
        "sorted by the primary key"
    );
    assert!(indexed);
    assert_eq!(bloom, vec!["id".to_string()]);
    let (codes, _, bloom) = crate::drop::layout(&copy("visits"), "code");
    assert!(
        codes.windows(2).all(|w| w[0] <= w[1]),
        "sorted by the declared key"
    );
    assert_eq!(codes.len(), 20000);
    assert_eq!(bloom, vec!["code".to_string()]);
    drop(amar);
    server.stop();
}
