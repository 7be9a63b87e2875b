//! Policy overhead: `tehran`'s queries (filter and mask added by the server) against
//! `admin` running the same filter and mask written by hand.

use std::process::Command;

use anyhow::{Context, bail};

use crate::Options;
use crate::server::Amar;

pub fn run(options: &Options, server: &Amar) -> anyhow::Result<String> {
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/policy.py");
    let output = Command::new(&options.python)
        .arg(&script)
        .args(["--pg-port", &server.pg_port.to_string()])
        .args(["--rounds", &options.rounds.to_string()])
        .output()
        .with_context(|| {
            format!(
                "running {} (run ./clients/install.sh first)",
                options.python.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "policy.py failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let report: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    let mut table = format!(
        "{} rounds interleaved (admin, tehran, …), median. Overhead: tehran / admin − 1.\n\n| query | rows | statements | admin s | tehran s | overhead |\n|---|---:|---:|---:|---:|---:|\n",
        report["rounds"]
    );
    if let Some(results) = report["results"].as_object() {
        for (name, r) in results {
            let admin = r["admin_median_s"].as_f64().unwrap_or(f64::NAN);
            let tehran = r["tehran_median_s"].as_f64().unwrap_or(f64::NAN);
            table.push_str(&format!(
                "| {name} | {} | {} | {admin:.4} | {tehran:.4} | {:+.1}% |\n",
                r["rows"],
                r["statements"],
                (tehran / admin - 1.0) * 100.0
            ));
        }
    }
    Ok(table)
}
