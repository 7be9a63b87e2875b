//! Printing the report's HTML to PDF with headless Chromium (Debian's `chromium`),
//! offline: the page carries its font and asks for nothing else.

use std::path::Path;
use std::time::Duration;

/// The longest a print may take.
const PRINT_TIMEOUT: Duration = Duration::from_secs(180);

/// Prints `html` to `pdf`.
pub async fn print(chromium: &Path, html: &Path, pdf: &Path) -> anyhow::Result<()> {
    let html = std::fs::canonicalize(html)
        .map_err(|e| anyhow::anyhow!("cannot find {}: {e}", html.display()))?;
    // A profile of its own, so that a Chromium the user has open does not matter.
    let profile = tempfile::tempdir()?;
    let mut command = tokio::process::Command::new(chromium);
    command
        .arg("--headless")
        .arg("--disable-gpu")
        .arg("--no-first-run")
        .arg("--no-default-browser-check")
        .arg("--disable-extensions")
        .arg("--disable-background-networking")
        .arg("--no-pdf-header-footer")
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("--print-to-pdf={}", pdf.display()))
        .arg(format!("file://{}", html.display()))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    // Chromium's sandbox cannot start as root (as in containers); /proc/self belongs
    // to this process's user.
    use std::os::unix::fs::MetadataExt;
    if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        command.arg("--no-sandbox");
    }
    let _ = std::fs::remove_file(pdf);
    let child = command
        .spawn()
        .map_err(|e| anyhow::anyhow!("cannot start {}: {e}", chromium.display()))?;
    let output = tokio::time::timeout(PRINT_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "Chromium did not print {} within {} s",
                html.display(),
                PRINT_TIMEOUT.as_secs()
            )
        })??;
    let printed = std::fs::metadata(pdf).map(|m| m.len() > 0).unwrap_or(false);
    if !output.status.success() || !printed {
        let said = String::from_utf8_lossy(&output.stderr);
        let last: Vec<&str> = said.lines().rev().take(5).collect();
        anyhow::bail!(
            "Chromium could not print {} ({}): {}",
            html.display(),
            output.status,
            last.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}
