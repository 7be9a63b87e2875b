//! Transfer: the demo's largest table into one Python process over Flight SQL
//! (ADBC → pyarrow) and over pgwire (psycopg → rows, binary and text), and the same
//! rows served by PostgreSQL itself to the same client. Targets: Amar's pgwire ≥ 0.8×
//! PostgreSQL's rows/s; Flight ≥ 5× Amar's pgwire.

use crate::Options;
use crate::server::Amar;

pub fn run(options: &Options, server: &Amar) -> anyhow::Result<String> {
    let (pg, flight, rounds) = (
        server.pg_port.to_string(),
        server.flight_port.to_string(),
        options.rounds.to_string(),
    );
    let postgres = crate::server::postgres_url();
    let schema = format!("amar_bench_transfer_{}", std::process::id());
    let output = crate::python::run(
        options,
        "transfer.py",
        &[
            "--pg-port",
            &pg,
            "--flight-port",
            &flight,
            "--rounds",
            &rounds,
            "--postgres",
            &postgres,
            "--schema",
            &schema,
        ],
    )?;
    let report: serde_json::Value = serde_json::from_slice(&output)?;
    let results = &report["results"];
    let baseline = results["pgwire-binary"]["rows_per_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let mut table = format!(
        "`{}`, {} rounds interleaved, median. Ratio: rows/s against Amar's pgwire-binary. `postgres-*`: the same rows in a PostgreSQL table, served by PostgreSQL to the same psycopg client.\n\n| client | rows | median s | rows/s | ratio |\n|---|---:|---:|---:|---:|\n",
        report["sql"].as_str().unwrap_or(""),
        report["rounds"]
    );
    for name in [
        "flight",
        "pgwire-binary",
        "pgwire-text",
        "postgres-binary",
        "postgres-text",
    ] {
        let r = &results[name];
        let rate = r["rows_per_s"].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "| {name} | {} | {:.3} | {:.0} | {:.2}× |\n",
            r["rows"],
            r["median_s"].as_f64().unwrap_or(f64::NAN),
            rate,
            rate / baseline
        ));
    }
    Ok(table)
}
