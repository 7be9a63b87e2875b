//! Cross-source join: a PostgreSQL table joined with a Parquet file through Amar,
//! against loading the PostgreSQL side into DuckDB as Arrow (ADBC) and joining there.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, "join.py", args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let schema = format!("amar_bench_join_{}", std::process::id());
    let rows = ((2_000_000.0 * options.scale) as u64)
        .max(10_000)
        .to_string();
    let dir = std::env::temp_dir().join(format!("amar-bench-join-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let dir_text = dir.display().to_string();
    let result = (|| {
        python(
            options,
            &[
                "setup", "--pg", &pg, "--schema", &schema, "--rows", &rows, "--dir", &dir_text,
            ],
        )?;
        let server = Amar::with_sources(
            &options.amar,
            &format!(
                "{}\n\
                 [[source]]\nname = \"people\"\nkind = \"files\"\npath = \"{dir_text}\"\n",
                crate::server::postgres_source("dept", &pg, &schema)
            ),
        )?;
        let out = python(
            options,
            &[
                "measure",
                "--pg",
                &pg,
                "--schema",
                &schema,
                "--dir",
                &dir_text,
                "--amar-port",
                &server.pg_port.to_string(),
                "--rounds",
                &options.rounds.to_string(),
            ],
        )?;
        Ok::<_, anyhow::Error>(serde_json::from_slice::<serde_json::Value>(&out)?)
    })();
    let _ = python(options, &["drop", "--pg", &pg, "--schema", &schema]);
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    let duck = report["duckdb_median_s"].as_f64().unwrap_or(f64::NAN);
    let amar = report["amar_median_s"].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "{} rounds interleaved (duckdb, amar, …), median. {rows} contributions in PostgreSQL (half of them after the filter) joined with {} persons in Parquet, `GROUP BY gender, province_code`: {} groups. \
         DuckDB {}: the filtered PostgreSQL columns fetched as Arrow with ADBC, then joined in DuckDB; the fetch is part of its time, as Amar's reading of the source is part of Amar's.\n\n\
         | path | median s | ratio |\n|---|---:|---:|\n| DuckDB (ADBC load + join) | {duck:.4} | 1.00 |\n| Amar (`postgres` × `files`, psycopg → pgwire) | {amar:.4} | {:.2} |\n",
        report["rounds"],
        report["persons"],
        report["groups"],
        report["duckdb_version"].as_str().unwrap_or(""),
        amar / duck
    ))
}
