//! Connector plugins loaded by a running server: the fixed-width example plugin
//! queried over pgwire and Flight SQL with its pushdown shown by EXPLAIN, and every
//! way a plugin can be broken (missing, not a library, not a plugin, another ABI,
//! another DataFusion, refusing to open, panicking while opening, planning or
//! reading), each a clear error while the other sources go on serving.

use std::path::{Path, PathBuf};

use amar_tests::{Fixture, TestServer};
use arrow_flight::sql::client::FlightSqlServiceClient;
use datafusion::arrow::array::AsArray;
use datafusion::arrow::datatypes::Int64Type;
use futures::TryStreamExt;
use tonic::transport::Channel;

use crate::support::{connect, sqlstate, text_rows, texts};

/// A shared library built with the workspace (a dev-dependency of this crate),
/// next to this test binary.
fn built_library(crate_name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary has a path");
    let deps = exe.parent().expect("the test binary is in a folder");
    let file = format!(
        "{}{}{}",
        std::env::consts::DLL_PREFIX,
        crate_name.replace('-', "_"),
        std::env::consts::DLL_SUFFIX
    );
    for dir in [deps, deps.parent().unwrap_or(deps)] {
        if dir.join(&file).exists() {
            return dir.join(&file);
        }
    }
    panic!(
        "{file} is not built next to {}: `cargo test` builds it as a dev-dependency",
        exe.display()
    );
}

/// A tiny library compiled here with rustc, exporting what `source` says.
fn compiled(dir: &Path, name: &str, source: &str) -> PathBuf {
    let src = dir.join(format!("{name}.rs"));
    std::fs::write(&src, source).unwrap();
    let out = dir.join(format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    ));
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let status = std::process::Command::new(rustc)
        .args(["--edition", "2024", "--crate-type", "cdylib", "-o"])
        .arg(&out)
        .arg(&src)
        .status()
        .expect("rustc runs");
    assert!(status.success(), "rustc built {name}");
    out
}

/// A library whose entry header says it was built for `abi` and DataFusion `df`:
/// what a plugin built against another SDK looks like from the outside.
fn stale_plugin(dir: &Path, name: &str, abi: u32, df: &str) -> PathBuf {
    compiled(
        dir,
        name,
        &format!(
            r#"
#[repr(C)]
pub struct StaticStr {{ ptr: *const u8, len: usize }}
#[repr(C)]
pub struct Entry {{ magic: [u8; 8], abi_version: u32, datafusion_version: StaticStr }}
unsafe impl Sync for Entry {{}}
#[unsafe(no_mangle)]
pub static AMAR_PLUGIN: Entry = Entry {{
    magic: *b"AMARPLUG",
    abi_version: {abi},
    datafusion_version: StaticStr {{ ptr: "{df}".as_ptr(), len: {len} }},
}};
"#,
            len = df.len()
        ),
    )
}

const NAMES: [&str; 3] = ["علی رضایی", "مریم احمدی", "حسین کریمی"];

/// Payroll exports as a legacy system writes them: two months of `rows` lines
/// each (UTF-8), and a branch list in Windows-1256 with a header line.
fn write_exports(dir: &Path, rows: usize) {
    std::fs::write(
        dir.join("layout.toml"),
        r#"
[[table]]
name = "payments"
files = "payroll_*.txt"
comment = "Monthly pension payments, from the legacy payroll"

[[table.column]]
name = "national_id"
start = 1
width = 10
type = "text"

[[table.column]]
name = "name"
start = 11
width = 20
type = "text"
comment = "نام و نام خانوادگی"

[[table.column]]
name = "province"
start = 31
width = 2
type = "integer"

[[table.column]]
name = "amount"
start = 33
width = 12
type = "decimal"
scale = 2

[[table.column]]
name = "paid_on"
start = 45
width = 8
type = "date"
format = "jalali"

[[table]]
name = "branches"
files = "branches.txt"
encoding = "windows-1256"
skip_lines = 1

[[table.column]]
name = "code"
start = 1
width = 4
type = "integer"

[[table.column]]
name = "name"
start = 5
width = 16
type = "text"

[[table.column]]
name = "active"
start = 21
width = 1
type = "boolean"
"#,
    )
    .unwrap();
    for month in 1..=2 {
        let mut text = String::new();
        for i in 0..rows {
            text.push_str(&format!(
                "{:010}{:<20}{:02}{:012}14030{month}15\r\n",
                1_000_000_000 + i,
                NAMES[i % 3],
                i % 31 + 1,
                amount_cents(i, month)
            ));
        }
        std::fs::write(dir.join(format!("payroll_14030{month}.txt")), text).unwrap();
    }
    // Windows-1256 has the Arabic yeh (U+064A), not the Persian one, as such exports do.
    let branches = "CODENAME            A\n0001مرکز تهران      1\n0002شعبه شيراز      0\n";
    let (bytes, _, unmappable) = encoding_rs::WINDOWS_1256.encode(branches);
    assert!(!unmappable);
    std::fs::write(dir.join("branches.txt"), bytes).unwrap();
    std::fs::create_dir_all(dir.join("regions")).unwrap();
    std::fs::write(
        dir.join("regions").join("provinces.csv"),
        (1..=31)
            .map(|c| format!("{c},province {c}\n"))
            .fold("code,name\n".to_string(), |a, l| a + l.as_str()),
    )
    .unwrap();
}

fn amount_cents(i: usize, month: usize) -> u64 {
    (i as u64 * 1_000 + 12_345) * month as u64
}

/// Files for a server with the payroll plugin source, a CSV source, and `extra`
/// config; one admin, `stats`.
fn payroll(rows: usize, extra: &str) -> Fixture {
    let fixture = Fixture::new().admin("stats", "pw");
    write_exports(fixture.dir(), rows);
    fixture
        .config(&format!(
            r#"[[source]]
name = "payroll"
kind = "plugin"
library = "{}"
[source.options]
dir = "."
layout = "layout.toml"
batch_rows = 100
"#,
            built_library("amar-plugin-fixed-width").display()
        ))
        .source("regions", "files", &[("path", "regions")])
        .config(extra)
}

async fn flight(server: &TestServer) -> FlightSqlServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.flight_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = FlightSqlServiceClient::new(channel);
    client.handshake("stats", "pw").await.unwrap();
    client
}

#[tokio::test]
async fn the_fixed_width_plugin_answers_over_pgwire_and_flight() {
    let rows = 1000;
    let server = payroll(rows, "").start();
    let client = connect(&server, "stats", "pw").await.unwrap();

    let expected: u64 = (0..rows)
        .map(|i| amount_cents(i, 1) + amount_cents(i, 2))
        .sum();
    let got = texts(
        &client,
        "SELECT count(*), sum(amount) FROM payroll.payments",
    )
    .await;
    assert_eq!(
        got[0],
        vec![
            Some((2 * rows).to_string()),
            Some(format!("{}.{:02}", expected / 100, expected % 100))
        ]
    );

    // Persian text measured in characters, Jalali dates as dates.
    let got = texts(
        &client,
        "SELECT name, paid_on, province FROM payroll.payments \
         WHERE national_id = '1000000007' ORDER BY paid_on",
    )
    .await;
    assert_eq!(
        got,
        text_rows(&[
            &["مریم احمدی", "2024-04-03", "8"],
            &["مریم احمدی", "2024-05-04", "8"]
        ])
    );

    // Windows-1256, a header line, flags.
    let got = texts(
        &client,
        "SELECT code, name, active FROM payroll.branches ORDER BY code",
    )
    .await;
    assert_eq!(
        got,
        text_rows(&[&["1", "مرکز تهران", "t"], &["2", "شعبه شيراز", "f"]])
    );

    // Joined with a built-in source.
    let got = texts(
        &client,
        "SELECT r.name, count(*) FROM payroll.payments p JOIN regions.provinces r \
         ON r.code = p.province WHERE r.code = 31 GROUP BY r.name",
    )
    .await;
    assert_eq!(got, text_rows(&[&["province 31", "64"]]));

    // Projection, filters and limit cross the boundary and run in the plugin.
    let plan = texts(
        &client,
        "EXPLAIN SELECT national_id FROM payroll.payments WHERE province = 5 AND amount > 100",
    )
    .await;
    let plan: String = plan
        .iter()
        .flatten()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(
        plan.contains("PluginScanExec: source=payroll, plugin=fixed-width: FixedWidthScan: table=payments, files=payroll_*.txt (2), columns=[national_id], filters=["),
        "{plan}"
    );
    assert!(plan.contains("province = Int64(5)"), "{plan}");
    assert!(
        !plan.contains("FilterExec"),
        "the filter runs in the plugin: {plan}"
    );
    let plan = texts(&client, "EXPLAIN SELECT * FROM payroll.payments LIMIT 5").await;
    let plan: String = plan
        .iter()
        .flatten()
        .flatten()
        .cloned()
        .collect::<Vec<_>>()
        .join("\n");
    assert!(plan.contains("limit=5"), "{plan}");
    let got = texts(
        &client,
        "SELECT count(*) FROM (SELECT * FROM payroll.payments LIMIT 5) t",
    )
    .await;
    assert_eq!(got[0][0].as_deref(), Some("5"));

    // Column comments and types reach the catalog.
    let got = texts(
        &client,
        "SELECT column_name, data_type FROM information_schema.columns \
         WHERE table_schema = 'payroll' AND table_name = 'payments' ORDER BY ordinal_position",
    )
    .await;
    let types: Vec<String> = got
        .iter()
        .map(|r| format!("{} {}", r[0].as_deref().unwrap(), r[1].as_deref().unwrap()))
        .collect();
    assert_eq!(
        types,
        [
            "national_id text",
            "name text",
            "province bigint",
            "amount numeric",
            "paid_on date"
        ]
    );
    let got = texts(
        &client,
        "SELECT kind, healthy FROM amar.sources WHERE name = 'payroll'",
    )
    .await;
    assert_eq!(got, text_rows(&[&["plugin", "t"]]));

    // The same answer through Arrow Flight SQL.
    let mut flight = flight(&server).await;
    let info = flight
        .execute(
            "SELECT count(*) AS n FROM payroll.payments WHERE province = 5".to_string(),
            None,
        )
        .await
        .unwrap();
    let ticket = info.endpoint[0].ticket.clone().unwrap();
    let batches: Vec<_> = flight
        .do_get(ticket)
        .await
        .unwrap()
        .try_collect()
        .await
        .unwrap();
    let n = batches[0].column(0).as_primitive::<Int64Type>().value(0);
    let via_pg = texts(
        &client,
        "SELECT count(*) FROM payroll.payments WHERE province = 5",
    )
    .await;
    assert_eq!(Some(n.to_string()), via_pg[0][0]);
    assert_eq!(
        n as usize,
        2 * (0..rows).filter(|i| i % 31 + 1 == 5).count()
    );
}

#[tokio::test]
async fn a_bad_field_is_an_error_naming_the_file_line_and_column() {
    let fixture = payroll(10, "");
    let server = fixture.try_start().unwrap();
    std::fs::write(
        fixture.path("payroll_140303.txt"),
        "1000000001علی رضایی           0100000012a45014030315\n",
    )
    .unwrap();
    let client = connect(&server, "stats", "pw").await.unwrap();
    let e = client
        .simple_query("SELECT sum(amount) FROM payroll.payments")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "HV000");
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("source \"payroll\" (plugin \"fixed-width\")")
            && message.contains(
                "payroll_140303.txt, line 1: column amount: \"00000012a450\" is not a number"
            ),
        "{message}"
    );
    // The session and the source go on.
    let got = texts(
        &client,
        "SELECT count(*) FROM payroll.payments WHERE paid_on < '2024-06-01'",
    )
    .await;
    assert_eq!(got[0][0].as_deref(), Some("20"));
}

#[tokio::test]
async fn broken_plugins_are_clear_errors_and_every_other_source_serves() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("notes.txt"), "not a library\n").unwrap();
    let not_a_plugin = compiled(
        d,
        "hello",
        "#[unsafe(no_mangle)] pub extern \"C\" fn hello() -> i32 { 7 }\n",
    );
    let old_abi = stale_plugin(d, "oldabi", 0, "55.2.0");
    let old_df = stale_plugin(d, "olddf", 1, "54.0.0");
    let faulty = built_library("amar-plugin-faulty");
    let fixed = built_library("amar-plugin-fixed-width");
    let mut extra = String::new();
    let mut plugin = |name: &str, library: &Path, options: &str| {
        extra.push_str(&format!(
            "\n[[source]]\nname = \"{name}\"\nkind = \"plugin\"\nlibrary = \"{}\"\n[source.options]\n{options}\n",
            library.display()
        ));
    };
    plugin("missing", &d.join("libnothing.so"), "");
    plugin("notlib", &d.join("notes.txt"), "");
    plugin("foreign", &not_a_plugin, "");
    plugin("oldabi", &old_abi, "");
    plugin("olddf", &old_df, "");
    plugin("refuses", &faulty, "fail = \"open\"");
    plugin("openpanic", &faulty, "fail = \"open-panic\"");
    plugin("scanpanic", &faulty, "fail = \"scan-panic\"");
    plugin("readpanic", &faulty, "fail = \"read-panic\"");
    plugin("fine", &faulty, "fail = \"none\"");
    plugin("typo", &fixed, "dir = \".\"\nlayot = \"layout.toml\"");
    let server = payroll(10, &extra).start();
    let client = connect(&server, "stats", "pw").await.unwrap();

    // Each unavailable source says why, in amar.sources and in any query naming it.
    let expected = [
        ("missing", "libnothing.so: No such file or directory"),
        ("notlib", "not a loadable shared library"),
        ("foreign", "not an Amar plugin: it exports no AMAR_PLUGIN"),
        (
            "oldabi",
            "built for plugin ABI 0, and this Amar loads ABI 1",
        ),
        (
            "olddf",
            "built with DataFusion 54.0.0, and this Amar runs DataFusion 55",
        ),
        (
            "refuses",
            "plugin \"faulty\" could not open it: the department's archive server refused the login",
        ),
        (
            "openpanic",
            "plugin \"faulty\" could not open it: the plugin panicked opening the source: opening exploded",
        ),
        (
            "typo",
            "plugin \"fixed-width\" could not open it: unknown option \"layot\" (it takes: dir, layout, batch_rows)",
        ),
    ];
    for (source, why) in expected {
        let got = texts(
            &client,
            &format!("SELECT healthy, health_message FROM amar.sources WHERE name = '{source}'"),
        )
        .await;
        assert_eq!(got[0][0].as_deref(), Some("f"), "{source}");
        let error = got[0][1].clone().unwrap_or_default();
        assert!(error.contains(why), "{source}: {error}");
        let e = client
            .simple_query(&format!("SELECT * FROM {source}.numbers"))
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "08006", "{source}");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(
            message.contains(&format!("source \"{source}\"")) && message.contains(why),
            "{message}"
        );
    }

    // Panics while planning and while reading are errors naming the plugin; the
    // server, the session and the same plugin's other sources go on.
    for _ in 0..2 {
        let e = client
            .simple_query("SELECT * FROM scanpanic.numbers")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "HV000");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(
            message.contains("source \"scanpanic\" (plugin \"faulty\")")
                && message.contains("panicked planning a scan: scan exploded"),
            "{message}"
        );
        let e = client
            .simple_query("SELECT n FROM readpanic.numbers")
            .await
            .unwrap_err();
        assert_eq!(sqlstate(&e), "HV000");
        let message = e.as_db_error().unwrap().message().to_string();
        assert!(
            message.contains("panicked reading rows: reading exploded"),
            "{message}"
        );
        let got = texts(&client, "SELECT sum(n) FROM fine.numbers").await;
        assert_eq!(got[0][0].as_deref(), Some("6"));
    }
    let got = texts(&client, "SELECT count(*) FROM payroll.payments").await;
    assert_eq!(got[0][0].as_deref(), Some("20"));
    let got = texts(&client, "SELECT count(*) FROM regions.provinces").await;
    assert_eq!(got[0][0].as_deref(), Some("31"));

    // `amar plugins list` over the folder says the same.
    let report = amar_server::plugins::list(None, &[d.to_path_buf()]);
    assert!(!report.ok);
    for line in [
        "hello.so: cannot load: not an Amar plugin",
        "oldabi.so: cannot load: built for plugin ABI 0",
        "olddf.so: cannot load: built with DataFusion 54.0.0",
    ] {
        assert!(report.text.contains(line), "{line}\n{}", report.text);
    }
}

#[tokio::test]
async fn plugins_check_shows_what_a_library_is_and_opens_it() {
    let dir = tempfile::tempdir().unwrap();
    write_exports(dir.path(), 3);
    let library = built_library("amar-plugin-fixed-width");
    let report = amar_server::plugins::check(&library, None).await;
    assert!(report.ok, "{}", report.text);
    for line in [
        "plugin      fixed-width 0.1.0: fixed-width text exports of legacy systems",
        "ABI         1 (this Amar loads 1)",
        "  layout       path     required ",
        "  batch_rows   integer  optional ",
        "loads: yes",
    ] {
        assert!(report.text.contains(line), "{line}\n{}", report.text);
    }
    let options = vec![
        ("dir".to_string(), serde_json::json!(dir.path())),
        (
            "layout".to_string(),
            serde_json::json!(dir.path().join("layout.toml")),
        ),
    ];
    let report = amar_server::plugins::check(&library, Some(options)).await;
    assert!(report.ok, "{}", report.text);
    assert!(
        report.text.contains("opens: yes, 2 tables"),
        "{}",
        report.text
    );
    assert!(
        report.text.contains("  payments (national_id Utf8, name Utf8, province Int64, amount Decimal128(18, 2), paid_on Date32)"),
        "{}",
        report.text
    );
    let options = vec![("dir".to_string(), serde_json::json!(dir.path()))];
    let report = amar_server::plugins::check(&library, Some(options)).await;
    assert!(!report.ok);
    assert!(
        report.text.contains(
            "opens: no: plugin \"fixed-width\" could not open it: option \"layout\" is required"
        ),
        "{}",
        report.text
    );
}

/// The code block that follows `marker` in a markdown text.
fn block_after<'a>(text: &'a str, marker: &str) -> &'a str {
    let at = text
        .find(marker)
        .unwrap_or_else(|| panic!("{marker} is in the guide"));
    let rest = &text[at..];
    let start = rest.find("```").unwrap();
    let body = &rest[start..];
    let body = &body[body.find('\n').unwrap() + 1..];
    &body[..body.find("```").unwrap()]
}

#[tokio::test]
async fn the_plugin_guide_works_as_written() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let guide = std::fs::read_to_string(root.join("docs/plugins.md")).unwrap();
    let library = built_library("amar-plugin-hello");

    // The code shown is the code of the plugin built here.
    let code = block_after(&guide, "<!-- file: connectors/plugins/hello/src/lib.rs -->");
    let built = std::fs::read_to_string(root.join("connectors/plugins/hello/src/lib.rs")).unwrap();
    assert_eq!(
        code, built,
        "docs/plugins.md shows the hello plugin as it is"
    );

    // `amar plugins check` says what the guide says (but for the library's path).
    let shown = block_after(&guide, "<!-- check -->");
    let report = amar_server::plugins::check(&library, None).await;
    assert!(report.ok, "{}", report.text);
    let said: Vec<&str> = report.text.lines().skip(1).collect();
    let shown: Vec<&str> = shown.lines().skip(1).collect();
    assert_eq!(said, shown);

    // The config as written (with this build's library, and a user), served, and
    // the query as written answers as shown.
    let config = block_after(&guide, "<!-- config: hello.toml -->").replace(
        "target/release/libamar_plugin_hello.so",
        &library.display().to_string(),
    );
    let server = Fixture::new().admin("stats", "pw").config(&config).start();
    let client = connect(&server, "stats", "pw").await.unwrap();
    let query = block_after(&guide, "<!-- query -->");
    let got = texts(&client, query.trim()).await;
    let answer: Vec<Vec<Option<String>>> = block_after(&guide, "<!-- answer -->")
        .lines()
        .skip(2)
        .map(|l| l.split('|').map(|c| Some(c.trim().to_string())).collect())
        .collect();
    assert_eq!(got, answer);
}

#[tokio::test]
async fn an_unavailable_plugin_source_heals_when_its_library_appears() {
    let fixture = Fixture::new().admin("stats", "pw");
    let library = fixture.path("libgreeter.so");
    let fixture = fixture.config(&format!(
        "[[source]]\nname = \"greeter\"\nkind = \"plugin\"\nlibrary = \"{}\"\n[source.options]\ngreeting = \"درود\"\n",
        library.display()
    ));
    let server = fixture.try_start().unwrap();
    let client = connect(&server, "stats", "pw").await.unwrap();
    let e = client
        .simple_query("SELECT greeting FROM greeter.greetings")
        .await
        .unwrap_err();
    assert_eq!(sqlstate(&e), "08006");
    // The library is installed while the server runs: no restart.
    std::fs::copy(built_library("amar-plugin-hello"), &library).unwrap();
    let started = std::time::Instant::now();
    loop {
        match client
            .simple_query("SELECT greeting FROM greeter.greetings")
            .await
        {
            Ok(_) => break,
            Err(e) => {
                assert_eq!(sqlstate(&e), "08006");
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(30),
                    "still unavailable after 30 s: {e:?}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
    }
    let got = texts(&client, "SELECT greeting FROM greeter.greetings").await;
    assert_eq!(got, text_rows(&[&["درود"]]));
}
