//! Amar's benchmark runner: starts a release `amar serve` on its demo, runs each
//! scenario side by side with its peer (interleaved rounds, medians, ratios), prints
//! a markdown table and records it in `benches/RESULTS.md` with the machine, the
//! commit and the command.
//!
//! ```sh
//! cargo build --release --bin amar
//! cargo run -p amar-benches --release -- transfer policy pushdown latency join --rounds 5 --scale 1
//! ```

mod accelerated;
mod generate;
mod join;
mod latency;
mod lookup;
mod machine;
mod plugin;
mod policy;
mod portal;
mod pushdown;
mod python;
mod releases;
mod results;
mod scale;
mod server;
mod transfer;

use std::path::PathBuf;

use anyhow::{Context, bail};

/// What to run and how.
pub struct Options {
    pub scenarios: Vec<String>,
    pub rounds: usize,
    pub scale: f64,
    /// Table sizes for the scale and generate scenarios.
    pub sizes: Vec<u64>,
    pub amar: PathBuf,
    pub python: PathBuf,
    pub results: PathBuf,
    pub command: String,
}

fn parse_args() -> anyhow::Result<Options> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut options = Options {
        scenarios: vec![],
        rounds: 5,
        scale: 1.0,
        sizes: vec![1_000_000, 10_000_000],
        amar: default_amar(&root),
        python: root.join(".venv/bin/python"),
        results: root.join("benches/RESULTS.md"),
        command: std::env::args().skip(1).collect::<Vec<_>>().join(" "),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().with_context(|| format!("{name} needs a value"));
        match arg.as_str() {
            "--rounds" => options.rounds = value("--rounds")?.parse()?,
            "--scale" => options.scale = value("--scale")?.parse()?,
            "--sizes" => {
                options.sizes = value("--sizes")?
                    .split(',')
                    .map(|n| n.trim().parse::<u64>())
                    .collect::<Result<_, _>>()?
            }
            "--amar" => options.amar = value("--amar")?.into(),
            "--python" => options.python = value("--python")?.into(),
            "--results" => options.results = value("--results")?.into(),
            "-h" | "--help" => {
                println!(
                    "amar-benches [generate] [lookup] [accelerated] [transfer] [policy] [releases] [portal] [pushdown] [latency] [join] [scale] [plugin] [--sizes N,N,…] [--rounds N] [--scale S] [--amar PATH] [--python PATH] [--results FILE]"
                );
                std::process::exit(0);
            }
            s if s.starts_with('-') => bail!("unknown option {s}"),
            s => options.scenarios.push(s.to_string()),
        }
    }
    if options.scenarios.is_empty() {
        options.scenarios = vec!["transfer".into()];
    }
    if options.rounds < 3 {
        bail!("--rounds must be at least 3 for a median to mean something");
    }
    Ok(options)
}

/// The release `amar` of this checkout (in `CARGO_TARGET_DIR` when that is set).
fn default_amar(root: &std::path::Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target"))
        .join("release/amar")
}

/// What a fresh clone lacks, so that one command runs the benchmarks: the release
/// server (built, or brought up to date, when `--amar` is not given; a no-op when it
/// is current) and the Python clients and peers (`clients/install.sh`, when the
/// default interpreter is missing).
fn prepare(options: &Options) -> anyhow::Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    if options.amar == default_amar(&root) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let mut build = std::process::Command::new(cargo);
        build
            .args(["build", "--release", "--bin", "amar"])
            .current_dir(&root);
        // What `cargo run` set for this package is not the server's: build scripts
        // that watch such variables would otherwise rebuild (ring, and all above it).
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy();
            if key.starts_with("CARGO_PKG_")
                || key.starts_with("CARGO_BIN_")
                || key.starts_with("CARGO_MANIFEST_")
                || ["CARGO_CRATE_NAME", "CARGO_PRIMARY_PACKAGE", "OUT_DIR"].contains(&&*key)
            {
                build.env_remove(&*key);
            }
        }
        let status = build
            .status()
            .context("running cargo build --release --bin amar")?;
        if !status.success() {
            bail!("cargo build --release --bin amar failed");
        }
    }
    if !options.amar.exists() {
        bail!("{} not found", options.amar.display());
    }
    if options.python == root.join(".venv/bin/python") && !options.python.exists() {
        let status = std::process::Command::new(root.join("clients/install.sh"))
            .status()
            .context("running clients/install.sh")?;
        if !status.success() {
            bail!("clients/install.sh failed");
        }
    }
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let options = parse_args()?;
    prepare(&options)?;
    let machine = machine::describe();
    let mut demo = None;
    for scenario in &options.scenarios {
        let table = match scenario.as_str() {
            "generate" => generate::run(&options)?,
            "pushdown" => pushdown::run(&options)?,
            "latency" => latency::run(&options)?,
            "lookup" => lookup::run(&options)?,
            "accelerated" => accelerated::run(&options)?,
            "join" => join::run(&options)?,
            "scale" => scale::run(&options)?,
            "plugin" => plugin::run(&options)?,
            "transfer" | "policy" | "releases" | "portal" => {
                if demo.is_none() {
                    demo = Some(server::Amar::start(&options.amar, options.scale)?);
                }
                let server = demo.as_ref().context("the demo server")?;
                match scenario.as_str() {
                    "transfer" => transfer::run(&options, server)?,
                    "policy" => policy::run(&options, server)?,
                    "portal" => portal::run(&options, server)?,
                    _ => releases::run(&options, server)?,
                }
            }
            other => bail!(
                "unknown scenario {other}; known: generate, lookup, accelerated, transfer, policy, releases, portal, pushdown, latency, join, scale, plugin"
            ),
        };
        println!("{table}");
        results::record(&options, scenario, &machine, &table)?;
    }
    Ok(())
}
