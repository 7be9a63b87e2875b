//! A release `amar serve` on its demo, in a temporary data folder, as a child process.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// The PostgreSQL the peers run on (`AMAR_TEST_POSTGRES`, the test default otherwise).
pub fn postgres_url() -> String {
    std::env::var("AMAR_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_string())
}

/// A `[[source]]` entry for one schema of that PostgreSQL.
pub fn postgres_source(name: &str, url: &str, schema: &str) -> String {
    format!(
        "[[source]]\nname = \"{name}\"\nkind = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\nsslmode = \"disable\"\n"
    )
}

pub struct Amar {
    child: Child,
    pub pg_port: u16,
    pub flight_port: u16,
    /// The statistics portal's port.
    pub portal_port: u16,
    data: TempDir,
    _config: Option<TempDir>,
}

/// A folder removed on drop (std has no temp dirs; this crate needs no more).
struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn port_after(line: &str, marker: &str) -> Option<u16> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

impl Amar {
    /// On the embedded demo at `scale`.
    pub fn start(binary: &Path, scale: f64) -> anyhow::Result<Amar> {
        Self::launch(
            binary,
            "demo",
            &["--demo-scale".to_string(), scale.to_string()],
        )
    }

    /// On `sources` (`[[source]]` entries of amar.toml), with one admin user `bench`
    /// (password `bench`); the config and users live in the server's data folder.
    pub fn with_sources(binary: &Path, sources: &str) -> anyhow::Result<Amar> {
        let dir = std::env::temp_dir().join(format!(
            "amar-bench-config-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0)
        ));
        std::fs::create_dir_all(&dir)?;
        let users = dir.join("users.toml");
        let mut add = Command::new(binary)
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
            .stdout(Stdio::null())
            .spawn()?;
        std::io::Write::write_all(&mut add.stdin.take().context("no stdin")?, b"bench\n")?;
        if !add.wait()?.success() {
            bail!("amar user add failed");
        }
        let config = dir.join("amar.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nusers_file = \"{}\"\n\n{sources}",
                users.display()
            ),
        )?;
        let mut server = Self::with_config(binary, &config)?;
        server._config = Some(TempDir(dir));
        Ok(server)
    }

    /// On a config file.
    pub fn with_config(binary: &Path, config: &Path) -> anyhow::Result<Amar> {
        Self::launch(
            binary,
            "config",
            &["--config".to_string(), config.display().to_string()],
        )
    }

    /// On the embedded demo in `dir`, a data folder made before (a copy of another
    /// server's, say); removed when the server is dropped.
    pub fn demo_in(binary: &Path, dir: &Path, scale: f64) -> anyhow::Result<Amar> {
        Self::launch_in(
            binary,
            TempDir(dir.to_path_buf()),
            &["--demo-scale".to_string(), scale.to_string()],
        )
    }

    fn launch(binary: &Path, tag: &str, extra: &[String]) -> anyhow::Result<Amar> {
        let data = std::env::temp_dir().join(format!("amar-bench-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&data)?;
        Self::launch_in(binary, TempDir(data), extra)
    }

    fn launch_in(binary: &Path, data: TempDir, extra: &[String]) -> anyhow::Result<Amar> {
        let mut child = Command::new(binary)
            .args(["serve", "--data-dir"])
            .arg(&data.0)
            .args(extra)
            .args([
                "--pg-listen",
                "127.0.0.1:0",
                "--flight-listen",
                "127.0.0.1:0",
                "--http-listen",
                "127.0.0.1:0",
                "--portal-listen",
                "127.0.0.1:0",
            ])
            .env("AMAR_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let stdout = child.stdout.take().context("no stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let (mut pg, mut flight, mut portal) = (None, None, None);
        let deadline = Instant::now() + Duration::from_secs(600);
        while (pg.is_none() || flight.is_none() || portal.is_none()) && Instant::now() < deadline {
            let Some(line) = lines.next() else {
                bail!("amar serve exited before listening");
            };
            let line = line?;
            pg = pg.or_else(|| {
                line.contains("psql:")
                    .then(|| port_after(&line, "127.0.0.1:"))
                    .flatten()
            });
            flight = flight.or_else(|| {
                line.contains("Flight SQL")
                    .then(|| port_after(&line, "grpc://127.0.0.1:"))
                    .flatten()
            });
            portal = portal.or_else(|| {
                line.contains("Portal")
                    .then(|| port_after(&line, "http://127.0.0.1:"))
                    .flatten()
            });
        }
        let (Some(pg_port), Some(flight_port), Some(portal_port)) = (pg, flight, portal) else {
            bail!("amar serve did not report its ports");
        };
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Ok(Amar {
            child,
            pg_port,
            flight_port,
            portal_port,
            data,
            _config: None,
        })
    }
}

impl Amar {
    /// The server's data folder.
    pub fn data_dir(&self) -> &Path {
        &self.data.0
    }

    /// The server's resident memory now and at its peak (VmRSS, VmHWM), in MiB.
    pub fn memory_mib(&self) -> Option<(f64, f64)> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let field = |name: &str| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
                .map(|kb| kb / 1024.0)
        };
        Some((field("VmRSS:")?, field("VmHWM:")?))
    }
}

impl Drop for Amar {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
