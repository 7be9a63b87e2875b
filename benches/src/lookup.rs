//! Point lookups on Parquet: `WHERE id = $1` on a 5 M-row table Amar copied from
//! PostgreSQL (snapshot mode: sorted by the key, page index, bloom filter), through
//! Amar over pgwire, against PostgreSQL's own index and DuckDB on the same file.
//! Target: Amar's p50 ≤ 5 ms.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, "lookup.py", args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let schema = format!("amar_bench_lookup_{}", std::process::id());
    let rows = ((5_000_000.0 * options.scale) as u64)
        .max(100_000)
        .to_string();
    python(
        options,
        &["setup", "--pg", &pg, "--schema", &schema, "--rows", &rows],
    )?;
    let result = (|| {
        let started = Instant::now();
        let server = Amar::with_sources(
            &options.amar,
            &format!(
                "{}mode = \"snapshot\"\n",
                crate::server::postgres_source("dept", &pg, &schema)
            ),
        )?;
        // The first copy is made at start.
        let snapshots = server.data_dir().join("snapshots").join("dept");
        let deadline = Instant::now() + Duration::from_secs(1200);
        let parquet = loop {
            if let Ok(generation) = std::fs::read_to_string(snapshots.join("CURRENT")) {
                let file = snapshots
                    .join(generation.trim())
                    .join("contributions.parquet");
                if file.exists() {
                    break file;
                }
            }
            if Instant::now() > deadline {
                bail!("no snapshot of dept after 20 minutes");
            }
            std::thread::sleep(Duration::from_millis(200));
        };
        let copied = started.elapsed();
        let bytes = std::fs::metadata(&parquet)
            .context("the snapshot file")?
            .len();
        let out = python(
            options,
            &[
                "measure",
                "--pg",
                &pg,
                "--schema",
                &schema,
                "--rows",
                &rows,
                "--amar-port",
                &server.pg_port.to_string(),
                "--parquet",
                &parquet.display().to_string(),
                "--rounds",
                &options.rounds.to_string(),
            ],
        )?;
        let report: serde_json::Value = serde_json::from_slice(&out)?;
        Ok::<_, anyhow::Error>((report, copied, bytes))
    })();
    let _ = python(options, &["drop", "--pg", &pg, "--schema", &schema]);
    let (report, copied, bytes) = result?;
    let f = |k: &str| report[k].as_f64().unwrap_or(f64::NAN);
    let mut table = format!(
        "`SELECT id, insured_id, province_code, period, wage, contribution … WHERE id = $1` on a {rows}-row table: \
         a PostgreSQL table with a primary key, copied by Amar into Parquet at start (snapshot mode; \
         server start and copy took {:.1} s, {:.1} MB), asked through Amar over pgwire (psycopg, prepared); \
         the same lookup straight to PostgreSQL, and DuckDB {} reading the same Parquet file in-process (prepared). \
         {} random keys per path, in {} alternating rounds.\n\n\
         | path | p50 ms | p99 ms | p50 / PostgreSQL |\n|---|---:|---:|---:|\n",
        copied.as_secs_f64(),
        bytes as f64 / 1e6,
        report["duckdb_version"].as_str().unwrap_or("1.4.1"),
        report["n"],
        report["rounds"],
    );
    for (path, name) in [
        ("direct", "PostgreSQL (index)"),
        ("amar", "Amar on the Parquet copy"),
        ("duckdb", "DuckDB on the same file"),
    ] {
        table.push_str(&format!(
            "| {name} | {:.3} | {:.3} | {:.2} |\n",
            f(&format!("{path}_p50_ms")),
            f(&format!("{path}_p99_ms")),
            f(&format!("{path}_p50_ms")) / f("direct_p50_ms"),
        ));
    }
    let plan = report["plan"].as_str().unwrap_or("");
    let scan: Vec<&str> = plan
        .lines()
        .filter(|l| l.contains("DataSourceExec") || l.contains("ParquetExec"))
        .collect();
    if !scan.is_empty() {
        table.push_str(&format!(
            "\nThe scan in `EXPLAIN ANALYZE` (what was pruned):\n\n```\n{}\n```\n",
            scan.join("\n").trim()
        ));
    }
    Ok(table)
}
