//! Policy overhead: `tehran`'s queries (filter and mask added by the server) against
//! `admin` running the same filter and mask written by hand.

use crate::Options;
use crate::server::Amar;

pub fn run(options: &Options, server: &Amar) -> anyhow::Result<String> {
    let (pg, rounds) = (server.pg_port.to_string(), options.rounds.to_string());
    let output = crate::python::run(
        options,
        "policy.py",
        &["--pg-port", &pg, "--rounds", &rounds],
    )?;
    let report: serde_json::Value = serde_json::from_slice(&output)?;
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
