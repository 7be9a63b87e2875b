//! Acceleration: the demo's pension payments held in memory by Amar, against the
//! same files read per query, ROAPI serving them from memory over Flight SQL, DuckDB
//! on the files, and loopback TCP for the same bytes. Targets: Flight from the
//! accelerated table within 1.5× of loopback and no slower than ROAPI; its aggregate
//! no slower than DuckDB's.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Options;
use crate::server::Amar;

/// ROAPI (from the project's venv) serving `table` = `dir` from memory; killed on drop.
struct Roapi {
    child: Child,
    flight_port: u16,
}

impl Drop for Roapi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Roapi {
    fn start(options: &Options, table: &str, dir: &std::path::Path) -> anyhow::Result<Roapi> {
        let binary = options
            .python
            .parent()
            .context("the venv's bin folder")?
            .join("roapi");
        let (http, pg, flight) = (free_port()?, free_port()?, free_port()?);
        let child = Command::new(&binary)
            .args(["-a", &format!("127.0.0.1:{http}")])
            .args(["-p", &format!("127.0.0.1:{pg}")])
            .args(["--addr-flight-sql", &format!("127.0.0.1:{flight}")])
            .args(["-t", &format!("{table}={},format=parquet", dir.display())])
            // As Amar runs in the benchmarks: no log line per query.
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {} (run ./clients/install.sh)", binary.display()))?;
        let roapi = Roapi {
            child,
            flight_port: flight,
        };
        let deadline = Instant::now() + Duration::from_secs(120);
        while std::net::TcpStream::connect(("127.0.0.1", flight)).is_err() {
            if Instant::now() > deadline {
                bail!("ROAPI did not listen on {flight}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Ok(roapi)
    }
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    // The demo writes the Parquet files; a second server reads them as two sources.
    let demo = Amar::start(&options.amar, options.scale)?;
    let pension = demo.data_dir().join("demo").join("pension");
    let payments = pension.join("payments");
    let server = Amar::with_sources(
        &options.amar,
        &format!(
            "[[source]]\nname = \"pension\"\nkind = \"files\"\npath = \"{0}\"\naccelerate = true\n\n\
             [[source]]\nname = \"pension_files\"\nkind = \"files\"\npath = \"{0}\"\n",
            pension.display()
        ),
    )?;
    let roapi = Roapi::start(options, "payments", &payments)?;
    let out = crate::python::run(
        options,
        "accelerated.py",
        &[
            "--amar-flight",
            &server.flight_port.to_string(),
            "--amar-pg",
            &server.pg_port.to_string(),
            "--roapi-flight",
            &roapi.flight_port.to_string(),
            "--parquet",
            &payments.display().to_string(),
            "--rounds",
            &options.rounds.to_string(),
        ],
    )?;
    drop(roapi);
    let report: serde_json::Value = serde_json::from_slice(&out)?;
    let s = |k: &str| report["median_s"][k].as_f64().unwrap_or(f64::NAN);
    let bytes = report["ipc_bytes"].as_f64().unwrap_or(f64::NAN);
    let loopback = s("flight/loopback");
    let mut table = format!(
        "`SELECT * FROM pension.payments` ({} rows, {:.1} MB of Arrow IPC; ROAPI's {:.1} MB) from the demo's Parquet files \
         (a folder of four), over pyarrow.flight (GetFlightInfo + DoGet into a Table), {} interleaved rounds, medians. \
         Amar holds the table in memory (`accelerate = true`; `amar.sources`: {}); the same server also reads the same \
         folder per query as a second source. ROAPI {} loads the folder into memory at start and serves Flight SQL.\n\n\
         | path | median s | MB/s | time / loopback | time / ROAPI |\n|---|---:|---:|---:|---:|\n",
        report["rows"],
        bytes / 1e6,
        report["roapi_ipc_bytes"].as_f64().unwrap_or(f64::NAN) / 1e6,
        report["rounds"],
        report["accelerated"].as_str().unwrap_or(""),
        "0.12.7",
    );
    for (key, name) in [
        ("flight/accelerated", "Amar, accelerated"),
        ("flight/files", "Amar, read from the files"),
        ("flight/roapi", "ROAPI, from memory"),
        ("flight/loopback", "loopback TCP, same bytes"),
    ] {
        table.push_str(&format!(
            "| {name} | {:.4} | {:.0} | {:.2}× | {:.2}× |\n",
            s(key),
            bytes / s(key) / 1e6,
            s(key) / loopback,
            s(key) / s("flight/roapi"),
        ));
    }
    table.push_str(&format!(
        "\n`SELECT province_code, count(*), sum(amount) FROM … GROUP BY province_code` ({} runs per path): \
         Amar over psycopg, DuckDB {} in-process on the same files.\n\n\
         | path | median ms | / DuckDB |\n|---|---:|---:|\n",
        5 * options.rounds,
        report["duckdb"].as_str().unwrap_or(""),
    ));
    for (key, name) in [
        ("aggregate/accelerated", "Amar, accelerated"),
        ("aggregate/files", "Amar, read from the files"),
        ("aggregate/duckdb", "DuckDB on the files"),
    ] {
        table.push_str(&format!(
            "| {name} | {:.2} | {:.2}× |\n",
            s(key) * 1000.0,
            s(key) / s("aggregate/duckdb"),
        ));
    }
    drop(server);
    drop(demo);
    Ok(table)
}
