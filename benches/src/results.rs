//! Keeping `benches/RESULTS.md` current: each scenario's latest table replaces its
//! previous one, between markers.

use std::path::Path;

use crate::Options;

pub fn record(options: &Options, scenario: &str, machine: &str, table: &str) -> anyhow::Result<()> {
    let start = format!("<!-- scenario:{scenario} -->");
    let end = format!("<!-- end:{scenario} -->");
    let section = format!(
        "{start}\n## {scenario}\n\nMeasured {} on {machine}.\n\n```sh\ncargo build --release --bin amar\ncargo run -p amar-benches --release -- {}\n```\n\n{table}\n{end}",
        chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
        options.command
    );
    let path: &Path = &options.results;
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|_| "# Benchmark results\n".to_string());
    let updated = match (text.find(&start), text.find(&end)) {
        (Some(a), Some(b)) if b > a => format!("{}{section}{}", &text[..a], &text[b + end.len()..]),
        _ => format!("{}\n{section}\n", text.trim_end()),
    };
    std::fs::write(path, updated)?;
    Ok(())
}
