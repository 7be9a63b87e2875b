//! Transfer: the demo's largest table into one Python process over Flight SQL
//! (ADBC → pyarrow, and Arrow's C++ client `pyarrow.flight`) and over pgwire (psycopg → rows, binary and text), and the same
//! rows served by PostgreSQL itself to the same client, and the result's Arrow IPC bytes
//! over loopback TCP, and Arrow's own C++ Flight server serving the same batches from
//! memory (what Flight costs here with no query behind it). Targets: Amar's pgwire ≥ 0.8× PostgreSQL's rows/s; Flight ≥ 5×
//! Amar's pgwire and within 2× of the loopback time.

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
        "flight-cpp",
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
    // Flight against the wire itself: the result's Arrow IPC bytes over loopback TCP.
    let bytes = report["ipc_bytes"].as_f64().unwrap_or(f64::NAN);
    let flight_s = results["flight"]["median_s"].as_f64().unwrap_or(f64::NAN);
    let cpp_s = results["flight-cpp"]["median_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let loopback_s = results["loopback"]["median_s"].as_f64().unwrap_or(f64::NAN);
    let reference_s = results["flight-reference"]["median_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let mb = |s: f64| bytes / s / 1e6;
    table.push_str(&format!(
        "\nFlight against loopback bandwidth: the result is {:.1} MB as an Arrow IPC stream ({} batches, median {} rows); the same bytes sent over a loopback TCP socket (Python, 1 MiB writes) are the bound. Target: Flight's time ≤ 2× the loopback time. \
         `flight-reference` is Arrow's own C++ Flight server (pyarrow.flight) serving the same batches from memory to the same C++ client: what Flight costs on this machine with no query behind it.\n\n\
         | path | median s | MB/s | time ratio to loopback | to reference |\n|---|---:|---:|---:|---:|\n\
         | Amar Flight SQL (ADBC → pyarrow Table) | {flight_s:.3} | {:.0} | {:.1}× | {:.2}× |\n\
         | Amar Flight SQL (pyarrow.flight, C++ → pyarrow Table) | {cpp_s:.3} | {:.0} | {:.1}× | {:.2}× |\n\
         | reference Flight server, from memory (pyarrow.flight both ends) | {reference_s:.3} | {:.0} | {:.1}× | 1.00× |\n\
         | loopback TCP, same bytes | {loopback_s:.3} | {:.0} | 1.0× | |\n",
        bytes / 1e6,
        report["batches"],
        report["rows_per_batch"],
        mb(flight_s),
        flight_s / loopback_s,
        flight_s / reference_s,
        mb(cpp_s),
        cpp_s / loopback_s,
        cpp_s / reference_s,
        mb(reference_s),
        reference_s / loopback_s,
        mb(loopback_s),
    ));
    // The same for results over Flight only: one read from Parquet, one with no source
    // (Flight where reading a source is not the bound; the SQLite scan above is).
    for extra in report["flight_only"].as_array().into_iter().flatten() {
        let name = extra["name"].as_str().unwrap_or("");
        let bytes = extra["ipc_bytes"].as_f64().unwrap_or(f64::NAN);
        let s = |path: &str| {
            results[format!("{name}/{path}")]["median_s"]
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        let (adbc, cpp, reference, loopback) = (
            s("flight"),
            s("flight-cpp"),
            s("flight-reference"),
            s("loopback"),
        );
        let mb = |s: f64| bytes / s / 1e6;
        table.push_str(&format!(
            "\n{name}: `{}` ({} rows in {} batches, {:.1} MB of Arrow IPC):\n\n\
             | path | median s | MB/s | time ratio to loopback | to reference |\n|---|---:|---:|---:|---:|\n\
             | Amar Flight SQL (ADBC → pyarrow Table) | {adbc:.3} | {:.0} | {:.1}× | {:.2}× |\n\
             | Amar Flight SQL (pyarrow.flight) | {cpp:.3} | {:.0} | {:.1}× | {:.2}× |\n\
             | reference Flight server, from memory | {reference:.3} | {:.0} | {:.1}× | 1.00× |\n\
             | loopback TCP, same bytes | {loopback:.3} | {:.0} | 1.0× | |\n",
            extra["sql"].as_str().unwrap_or(""),
            extra["rows"],
            extra["batches"],
            bytes / 1e6,
            mb(adbc),
            adbc / loopback,
            adbc / reference,
            mb(cpp),
            cpp / loopback,
            cpp / reference,
            mb(reference),
            reference / loopback,
            mb(loopback),
        ));
    }
    // Wire types: the same Parquet-backed text result in plain types (the default)
    // and in view types (asked for with the call header).
    let w = &report["wire_types"];
    if w.is_object() {
        let f = |form: &str, k: &str| w[form][k].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "\nWire types: `{}` ({} rows) over pyarrow.flight, as sent by default and with \
             `x-amar-arrow-view-types: true`, interleaved, medians:\n\n\
             | form | text columns | Arrow IPC MB | median s |\n|---|---|---:|---:|\n\
             | plain (default) | {} | {:.2} | {:.4} |\n\
             | views (asked for) | {} | {:.2} | {:.4} |\n\n\
             Plain / views: bytes {:.2}×, time {:.2}×.\n",
            w["sql"].as_str().unwrap_or(""),
            w["plain"]["rows"],
            w["plain"]["types"],
            f("plain", "ipc_bytes") / 1e6,
            f("plain", "median_s"),
            w["views"]["types"],
            f("views", "ipc_bytes") / 1e6,
            f("views", "median_s"),
            f("plain", "ipc_bytes") / f("views", "ipc_bytes"),
            f("plain", "median_s") / f("views", "median_s"),
        ));
    }
    Ok(table)
}
