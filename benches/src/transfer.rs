//! Transfer: the demo's largest table into one Python process over Flight SQL
//! (ADBC → pyarrow) and over pgwire (psycopg → rows, binary and text).

use crate::Options;
use crate::server::Amar;

pub fn run(options: &Options, server: &Amar) -> anyhow::Result<String> {
    let (pg, flight, rounds) = (
        server.pg_port.to_string(),
        server.flight_port.to_string(),
        options.rounds.to_string(),
    );
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
        ],
    )?;
    let report: serde_json::Value = serde_json::from_slice(&output)?;
    let results = &report["results"];
    let baseline = results["pgwire-binary"]["rows_per_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let mut table = format!(
        "`{}`, {} rounds interleaved, median. Ratio: rows/s against pgwire-binary.\n\n| client | rows | median s | rows/s | ratio |\n|---|---:|---:|---:|---:|\n",
        report["sql"].as_str().unwrap_or(""),
        report["rounds"]
    );
    for name in ["flight", "pgwire-binary", "pgwire-text"] {
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
