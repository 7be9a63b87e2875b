//! Official releases: reading `official.<id>` (frozen cells, served from memory)
//! against the same rows as a Parquet file read by the same server, and against
//! computing `indicators.<id>` live on the demo. Targets: official ≤ 1.1× Parquet, and
//! at least 10× faster than live.
//!
//! The Parquet file joins the release's own files. It is read by the same server as a
//! table of the demo's `health` files source: the demo's data folder is copied, the
//! file put beside the health CSVs, and a second demo started on the copy, so that
//! both paths meet the same catalog, policy and user.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = crate::python::run(options, "releases.py", args)?;
    Ok(serde_json::from_slice(&out)?)
}

/// The indicator measured: monthly, by province (31 × 24 cells on the demo).
const INDICATOR: &str = "active_insured";

/// Copies a folder (the demo's data: a few files and folders, no links).
fn copy_dir(from: &std::path::Path, to: &std::path::Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

pub fn run(options: &Options, demo: &Amar) -> anyhow::Result<String> {
    let port = demo.pg_port.to_string();
    python(
        options,
        &["release", "--port", &port, "--indicator", INDICATOR],
    )?;
    let copy = std::env::temp_dir().join(format!("amar-bench-releases-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&copy);
    copy_dir(demo.data_dir(), &copy)?;
    let result = (|| {
        let files = copy
            .join("releases")
            .join("*")
            .join(format!("{INDICATOR}.full.parquet"));
        let table = format!("released_{INDICATOR}");
        let out = copy
            .join("demo")
            .join("health")
            .join(format!("{table}.parquet"));
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
        let server = Amar::demo_in(&options.amar, &copy, options.scale)?;
        python(
            options,
            &[
                "measure",
                "--port",
                &server.pg_port.to_string(),
                "--parquet",
                &out.display().to_string(),
                "--table",
                &format!("health.{table}"),
                "--indicator",
                INDICATOR,
                "--rounds",
                &options.rounds.to_string(),
                "--queries",
                "50",
            ],
        )
    })();
    let _ = std::fs::remove_dir_all(&copy);
    let report = result?;
    let ms = |k: &str| report["median_ms"][k].as_f64().unwrap_or(f64::NAN);
    let rows = |k: &str| report["rows"][k].as_u64().unwrap_or(0);
    Ok(format!(
        "`SELECT <the cells' columns> FROM …` of indicator `{INDICATOR}` released for every \
         period ({} rows), over psycopg as admin, {} queries per path in each of {} \
         interleaved rounds (official, Parquet, official with its release columns, live, …); \
         median latency. The Parquet file holds the same rows (the release's own files \
         joined) and is read by the same server, as a table of the demo's `health` files \
         source.\n\n\
         | path | rows | median ms | ratio to official |\n|---|---:|---:|---:|\n\
         | `official.{INDICATOR}` (the cells' columns) | {} | {:.3} | 1.00 |\n\
         | Parquet file through Amar (the same columns) | {} | {:.3} | {:.2} |\n\
         | `official.{INDICATOR}` (`*`: with release_id, revision, released_at) | {} | {:.3} | {:.2} |\n\
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
        rows("official_all"),
        ms("official_all"),
        ms("official_all") / ms("official"),
        rows("live"),
        ms("live"),
        ms("live") / ms("official"),
        ms("official") / ms("parquet"),
        ms("live") / ms("official"),
    ))
}
