//! Official releases: reading `official.<id>` (frozen cells, served from memory)
//! against the same rows as a Parquet file read through Amar, and against computing
//! `indicators.<id>` live on the demo. Targets: official ≤ 1.1× Parquet, and at least
//! 10× faster than live.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = crate::python::run(options, "releases.py", args)?;
    Ok(serde_json::from_slice(&out)?)
}

/// The indicator measured: monthly, by province (31 × 24 cells on the demo).
const INDICATOR: &str = "active_insured";

pub fn run(options: &Options, demo: &Amar) -> anyhow::Result<String> {
    let port = demo.pg_port.to_string();
    python(
        options,
        &["release", "--port", &port, "--indicator", INDICATOR],
    )?;
    let dir = std::env::temp_dir().join(format!("amar-bench-releases-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        let files = demo
            .data_dir()
            .join("releases")
            .join("*")
            .join(format!("{INDICATOR}.full.parquet"));
        let out = dir.join(format!("{INDICATOR}.parquet"));
        python(
            options,
            &[
                "parquet",
                "--dir",
                &files.display().to_string(),
                "--out",
                &out.display().to_string(),
            ],
        )?;
        let parquet = Amar::with_sources(
            &options.amar,
            &format!(
                "[[source]]\nname = \"released\"\nkind = \"files\"\npath = \"{}\"\n",
                dir.display()
            ),
        )?;
        python(
            options,
            &[
                "measure",
                "--port",
                &port,
                "--parquet-port",
                &parquet.pg_port.to_string(),
                "--indicator",
                INDICATOR,
                "--rounds",
                &options.rounds.to_string(),
                "--queries",
                "50",
            ],
        )
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let report = result?;
    let ms = |k: &str| report["median_ms"][k].as_f64().unwrap_or(f64::NAN);
    let rows = |k: &str| report["rows"][k].as_u64().unwrap_or(0);
    Ok(format!(
        "`SELECT * FROM …` of indicator `{INDICATOR}` released for every period ({} rows), \
         over psycopg, {} queries per path in each of {} interleaved rounds (official, \
         Parquet, live, …); median latency. The Parquet file holds the same rows \
         (the release's own files joined), read by a second Amar through a `files` source.\n\n\
         | path | rows | median ms | ratio to official |\n|---|---:|---:|---:|\n\
         | `official.{INDICATOR}` | {} | {:.3} | 1.00 |\n\
         | Parquet file through Amar | {} | {:.3} | {:.2} |\n\
         | `indicators.{INDICATOR}` (live) | {} | {:.3} | {:.2} |\n\n\
         official / Parquet = {:.2} (target ≤ 1.1); live / official = {:.1} (target ≥ 10).\n",
        rows("official"),
        report["queries"],
        report["rounds"],
        rows("official"),
        ms("official"),
        rows("parquet"),
        ms("parquet"),
        ms("parquet") / ms("official"),
        rows("live"),
        ms("live"),
        ms("live") / ms("official"),
        ms("official") / ms("parquet"),
        ms("live") / ms("official"),
    ))
}
