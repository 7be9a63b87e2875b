//! Pushdown: an aggregate over a 5M-row PostgreSQL table through Amar (a `postgres`
//! source, federated: PostgreSQL computes the groups) against the same query sent
//! straight to PostgreSQL. Target: Amar within 1.5× of direct.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{Context, bail};

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, "pushdown.py", args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = std::env::var("AMAR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string());
    let schema = format!("amar_bench_{}", std::process::id());
    let rows = ((5_000_000.0 * options.scale) as u64).max(10_000);
    python(
        options,
        &[
            "setup",
            "--pg",
            &pg,
            "--schema",
            &schema,
            "--rows",
            &rows.to_string(),
        ],
    )?;
    let result = measure(options, &pg, &schema);
    let _ = python(options, &["drop", "--pg", &pg, "--schema", &schema]);
    let report = result?;
    let direct = report["direct_median_s"].as_f64().unwrap_or(f64::NAN);
    let amar = report["amar_median_s"].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "{} rounds interleaved (direct, amar, …), median. `SELECT province_code, sum(contribution), count(*) … WHERE period >= … GROUP BY 1` over {rows} rows; {} groups; aggregate pushed down to PostgreSQL: {}.\n\n| path | median s | ratio |\n|---|---:|---:|\n| PostgreSQL direct (psycopg) | {direct:.4} | 1.00 |\n| Amar `postgres` source (psycopg → pgwire) | {amar:.4} | {:.2} |\n",
        report["rounds"],
        report["groups"],
        report["pushed_down"],
        amar / direct
    ))
}

fn measure(options: &Options, pg: &str, schema: &str) -> anyhow::Result<serde_json::Value> {
    let dir = std::env::temp_dir().join(format!("amar-bench-pushdown-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let users = dir.join("users.toml");
    let mut add = Command::new(&options.amar)
        .args([
            "user",
            "add",
            "bench",
            "--role",
            "admin",
            "--password-stdin",
            "--users-file",
        ])
        .arg(&users)
        .stdin(Stdio::piped())
        .spawn()?;
    add.stdin
        .take()
        .context("no stdin")?
        .write_all(b"bench\n")?;
    if !add.wait()?.success() {
        bail!("amar user add failed");
    }
    let config = dir.join("amar.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nusers_file = \"{}\"\n\n[[source]]\nname = \"dept\"\nkind = \"postgres\"\nurl = \"{pg}\"\nschema = \"{schema}\"\nsslmode = \"disable\"\n",
            users.display()
        ),
    )?;
    let server = Amar::with_config(&options.amar, &config)?;
    let out = python(
        options,
        &[
            "measure",
            "--pg",
            pg,
            "--schema",
            schema,
            "--amar-port",
            &server.pg_port.to_string(),
            "--rounds",
            &options.rounds.to_string(),
        ],
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(serde_json::from_slice(&out?)?)
}
