//! The dataset generator as a scenario: for each size, the same deterministic
//! contribution rows written to PostgreSQL, MariaDB, Parquet and SQLite
//! (`benches/python/dataset.py`), each sink timed; then one Amar with the four as
//! sources, and each source's checksums (count, sums, last period) asked through Amar
//! and held against the formulas, so every sink is known to hold exactly the dataset.
//! The data is dropped afterwards.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = crate::python::run(options, "dataset.py", args)?;
    Ok(serde_json::from_slice(&out)?)
}

const SINKS: [(&str, &str); 4] = [
    ("postgres", "pg"),
    ("mariadb", "maria"),
    ("parquet", "pq"),
    ("sqlite", "lite"),
];

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let mut table = String::from(
        "Per size: the dataset written to each sink by `benches/python/dataset.py` (PostgreSQL from generate_series, then its key; MariaDB from the sequence engine, a million rows a statement; Parquet from numpy, zstd, 1 M-row row groups; SQLite from a recursive CTE, one transaction), \
         then through one Amar with the four as sources, `SELECT count(*), sum(contribution), sum(wage), sum(province_code), sum(insured_id), max(period)` on each, held against the formulas (all agree, or the run fails).\n\n\
         | rows | sink | write s | rows/s written | size MiB | checksum through Amar s |\n|---:|---|---:|---:|---:|---:|\n",
    );
    for &rows in &options.sizes {
        let name = format!("amar_bench_data_{}_{rows}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir)?;
        let dir_text = dir.display().to_string();
        let rows_text = rows.to_string();
        let place = [
            "--pg",
            pg.as_str(),
            "--schema",
            name.as_str(),
            "--mysql-db",
            name.as_str(),
            "--dir",
            dir_text.as_str(),
        ];
        let measured = (|| {
            let mut args = vec!["write", "--rows", &rows_text];
            args.extend(place);
            let written = python(options, &args)?;
            let sources = format!(
                "{}\n\
                 [[source]]\nname = \"maria\"\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306/{name}\"\nsslmode = \"disabled\"\n\n\
                 [[source]]\nname = \"pq\"\nkind = \"files\"\npath = \"{dir_text}/parquet\"\n\n\
                 [[source]]\nname = \"lite\"\nkind = \"sqlite\"\npath = \"{dir_text}/contributions.db\"\n",
                crate::server::postgres_source("pg", &pg, &name)
            );
            let server = Amar::with_sources(&options.amar, &sources)?;
            let port = server.pg_port.to_string();
            let checked = python(
                options,
                &["check", "--rows", &rows_text, "--amar-port", &port],
            )?;
            Ok::<_, anyhow::Error>((written, checked))
        })();
        let mut args = vec!["drop"];
        args.extend(place);
        let _ = crate::python::run(options, "dataset.py", &args);
        let _ = std::fs::remove_dir_all(&dir);
        let (written, checked) = measured?;
        for (sink, source) in SINKS {
            let w = &written["sinks"][sink];
            table.push_str(&format!(
                "| {rows} | {sink} | {:.1} | {:.0} | {:.0} | {:.2} |\n",
                w["seconds"].as_f64().unwrap_or(f64::NAN),
                w["rows_per_s"].as_f64().unwrap_or(f64::NAN),
                w["bytes"].as_f64().unwrap_or(f64::NAN) / (1024.0 * 1024.0),
                checked["sources"][source]["seconds"]
                    .as_f64()
                    .unwrap_or(f64::NAN),
            ));
        }
    }
    Ok(table)
}
