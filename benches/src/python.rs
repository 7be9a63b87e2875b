//! Running a scenario's Python side (benches/python/*.py) with the project's venv.

use std::process::Command;

use anyhow::{Context, bail};

use crate::Options;

/// Runs `benches/python/<script>` with `args`; returns its standard output (JSON).
pub fn run(options: &Options, script: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("python")
        .join(script);
    let output = Command::new(&options.python)
        .arg(&path)
        .args(args)
        .output()
        .with_context(|| {
            format!(
                "running {} (run ./clients/install.sh first)",
                options.python.display()
            )
        })?;
    if !output.status.success() {
        bail!(
            "{script} {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(output.stdout)
}
