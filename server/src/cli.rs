//! The `amar` command line.

use std::collections::BTreeMap;
use std::io::BufRead;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use amar_policies::UsersFile;
use amar_policies::identity::parse_attribute;
use anyhow::Context;
use clap::{Args, Parser, Subcommand};

use crate::config::{Config, Overrides};
use crate::serve::{ServeOptions, start};

#[derive(Parser, Debug)]
#[command(
    name = "amar",
    version,
    about = "Amar: one SQL server in front of every department's data"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Serve SQL over the Postgres wire protocol. Without --config, serves the embedded demo.
    Serve(ServeArgs),
    /// Manage the users who may log in.
    #[command(subcommand)]
    User(UserCommand),
    /// Copy a snapshot source's tables now and switch to the copy (a running server
    /// picks it up within a minute).
    Snapshot(SnapshotArgs),
    /// Certificates for TLS.
    #[command(subcommand)]
    Cert(CertCommand),
    /// Check a config without serving it: its keys, the users and policy files, each
    /// source (opened and reached), and every indicator and rule (planned). Reports
    /// every problem found and exits with 1 if there is any.
    CheckConfig {
        /// The config file (amar.toml).
        file: PathBuf,
    },
    /// Run every validation rule now and report the violations. Exits with 1 when an
    /// error-severity rule is violated or cannot run. Without --config, validates the
    /// embedded demo.
    Validate(ValidateArgs),
    /// Connector plugins: what a library is and whether this server can load it.
    #[command(subcommand)]
    Plugins(PluginsCommand),
    /// Official releases, on a running server: publish, prepare (embargo), revise,
    /// verify, list.
    #[command(subcommand)]
    Release(crate::release_cli::ReleaseCommand),
    /// Reports of the statistics office, from a running server: the quarterly report
    /// on the directive, in Persian and English, HTML and PDF.
    #[command(subcommand)]
    Report(crate::report::ReportCommand),
}

#[derive(Subcommand, Debug)]
enum PluginsCommand {
    /// The plugin sources of a config, and the libraries in folders or paths given:
    /// name, version, ABI and DataFusion version, or why each cannot load. Exits with
    /// 1 if any cannot.
    List {
        /// A config file whose `kind = "plugin"` sources to list.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Folders of plugin libraries, or libraries.
        paths: Vec<PathBuf>,
    },
    /// Load one library and show what it is and the options it takes. With
    /// --option, also open a source with them and list its tables.
    Check {
        /// The plugin's shared library.
        library: PathBuf,
        /// An option of the plugin, key=value (repeat for more).
        #[arg(long = "option", value_name = "KEY=VALUE")]
        options: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct ValidateArgs {
    /// The config file (amar.toml).
    #[arg(long)]
    config: Option<PathBuf>,
    /// The data folder, if the server runs with --data-dir (results are kept there).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Size of the embedded demo, as the server was started with.
    #[arg(long)]
    demo_scale: Option<f64>,
}

#[derive(Subcommand, Debug)]
enum CertCommand {
    /// Make a development CA and a server certificate it signed (ca.crt, server.crt,
    /// server.key), to try TLS; not for production.
    Dev {
        /// The folder to write them into.
        #[arg(long, default_value = "amar-tls")]
        dir: PathBuf,
        /// A host name or IP address the certificate is for; repeatable
        /// (default: localhost and 127.0.0.1).
        #[arg(long = "host")]
        hosts: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct SnapshotArgs {
    /// The source's name, as in its `[[source]]` entry.
    source: String,
    /// The config file that defines the source.
    #[arg(long)]
    config: PathBuf,
    /// The data folder, if the server runs with --data-dir.
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// The config file (amar.toml). Without it Amar generates and serves its demo.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Where Amar keeps its data (demo, users, snapshots); overrides the config.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// HOST:PORT for the Postgres wire protocol (default 127.0.0.1:6543).
    #[arg(long)]
    pg_listen: Option<SocketAddr>,
    /// HOST:PORT for Arrow Flight SQL (default 127.0.0.1:6544).
    #[arg(long)]
    flight_listen: Option<SocketAddr>,
    /// HOST:PORT for health and metrics over HTTP (default 127.0.0.1:6545).
    #[arg(long)]
    http_listen: Option<SocketAddr>,
    /// HOST:PORT for the statistics portal's web pages (default 127.0.0.1:6546).
    #[arg(long)]
    portal_listen: Option<SocketAddr>,
    /// Size of the embedded demo: 1 is about a million rows.
    #[arg(long)]
    demo_scale: Option<f64>,
}

#[derive(Args, Debug)]
struct UsersFileArgs {
    /// The users file to change.
    #[arg(long)]
    users_file: Option<PathBuf>,
    /// Take the users file from this config's `[server] users_file`.
    #[arg(long, conflicts_with = "users_file")]
    config: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum UserCommand {
    /// Add a user. The password is read from standard input (one line).
    Add {
        name: String,
        /// A role; repeat for several (e.g. --role analyst). `admin` reads everything.
        #[arg(long = "role")]
        roles: Vec<String>,
        /// An attribute policies may use, e.g. --attr province_code=23; repeatable.
        #[arg(long = "attr")]
        attributes: Vec<String>,
        /// Read the password from standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Set a user's password (read from standard input) and enable the user.
    Passwd {
        name: String,
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// Stop a user from logging in.
    Disable {
        name: String,
        #[command(flatten)]
        file: UsersFileArgs,
    },
    /// List users, their roles and attributes.
    List {
        #[command(flatten)]
        file: UsersFileArgs,
    },
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging();
    let result = match cli.command {
        Command::Serve(args) => serve(args),
        Command::User(command) => user(command),
        Command::Snapshot(args) => snapshot(args),
        Command::Cert(CertCommand::Dev { dir, hosts }) => cert_dev(dir, hosts),
        Command::Validate(args) => validate(args),
        Command::CheckConfig { file } => check_config(file),
        Command::Plugins(command) => plugins(command),
        Command::Release(command) => crate::release_cli::release(command),
        Command::Report(command) => crate::report::report(command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amar: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn cert_dev(dir: PathBuf, mut hosts: Vec<String>) -> anyhow::Result<()> {
    if hosts.is_empty() {
        hosts = vec!["localhost".to_string(), "127.0.0.1".to_string()];
    }
    let [ca, cert, key] = crate::tls::make_dev_pair(&dir, &hosts)?;
    println!(
        "Wrote {} (the CA clients trust), {} and {} (for {}).",
        ca.display(),
        cert.display(),
        key.display(),
        hosts.join(", ")
    );
    println!(
        "In amar.toml:\n  [server]\n  tls_cert = \"{}\"\n  tls_key = \"{}\"",
        cert.display(),
        key.display()
    );
    println!(
        "Then: psql \"host=localhost port=6543 dbname=amar user=admin sslmode=verify-full sslrootcert={}\"",
        ca.display()
    );
    Ok(())
}

fn snapshot(args: SnapshotArgs) -> anyhow::Result<()> {
    let overrides = Overrides {
        data_dir: args.data_dir,
        ..Overrides::default()
    };
    let config = crate::config::Config::load(&args.config, &overrides)?;
    let Some(source) = config.sources.iter().find(|s| s.name == args.source) else {
        anyhow::bail!(
            "{}: no source named \"{}\"",
            args.config.display(),
            args.source
        );
    };
    if source.mode != amar_connectors::Mode::Snapshot {
        anyhow::bail!(
            "source \"{}\" is not in snapshot mode (set mode = \"snapshot\")",
            args.source
        );
    }
    let runtime = crate::serve::runtime(None)?;
    runtime.block_on(async move {
        let opened = amar_connectors::open_source(source).await?;
        if let amar_connectors::SourceKind::Drop(_) = &source.kind {
            let (files, rows) = opened.refresh_snapshot().await?.unwrap_or((0, 0));
            println!(
                "drop folder \"{}\": {files} new files taken in, {rows} rows",
                args.source
            );
            let rejected = opened.skipped();
            for line in &rejected {
                println!("rejected: {line}");
            }
            if !rejected.is_empty() {
                anyhow::bail!("{} files rejected", rejected.len());
            }
            return Ok(());
        }
        match opened.refresh_snapshot().await? {
            Some((tables, rows)) => {
                println!(
                    "snapshot of \"{}\": {tables} tables, {rows} rows",
                    args.source
                );
                Ok(())
            }
            None => anyhow::bail!("source \"{}\" keeps no snapshots", args.source),
        }
    })
}

fn validate(args: ValidateArgs) -> anyhow::Result<()> {
    use amar_catalog::statistics::{RuleOutcome, Severity, Trigger};
    let runtime = crate::serve::runtime(None)?;
    runtime.block_on(async move {
        let options = ServeOptions {
            config: args.config,
            overrides: Overrides {
                data_dir: args.data_dir,
                ..Overrides::default()
            },
            demo_scale: args.demo_scale,
        };
        let prepared = crate::serve::prepare(&options).await?;
        let runs = prepared
            .engine
            .statistics()
            .validate(Trigger::Command, None)
            .await;
        let mut failed = 0;
        for run in &runs {
            let mark = match run.outcome {
                RuleOutcome::Passed => "ok  ",
                RuleOutcome::Violated => "FAIL",
                RuleOutcome::Failed => "ERR ",
            };
            let detail = match run.outcome {
                RuleOutcome::Passed => String::new(),
                RuleOutcome::Violated => format!(
                    ": {} violating rows, e.g. {}",
                    run.violations,
                    first_sample(run.sample.as_deref())
                ),
                RuleOutcome::Failed => format!(": {}", run.error.as_deref().unwrap_or("")),
            };
            println!(
                "{mark} {:<7} {} ({:.0} ms){detail}",
                run.severity.as_str(),
                run.rule,
                run.duration_ms
            );
            if run.severity == Severity::Error && run.outcome != RuleOutcome::Passed {
                failed += 1;
            }
        }
        println!(
            "{} rules, {} passed; {failed} error-severity rules not passed",
            runs.len(),
            runs.iter()
                .filter(|r| r.outcome == RuleOutcome::Passed)
                .count()
        );
        let audit = prepared.engine.audit().clone();
        let _ = tokio::task::spawn_blocking(move || audit.close()).await;
        anyhow::ensure!(failed == 0, "{failed} error-severity rules did not pass");
        Ok(())
    })
}

fn check_config(file: PathBuf) -> anyhow::Result<()> {
    let config = Config::load(&file, &Overrides::default())?;
    let counts = (
        config.sources.len(),
        config.definitions.indicators.len(),
        config.definitions.rules.len(),
    );
    let runtime = crate::serve::runtime(None)?;
    let problems = runtime.block_on(async move {
        let mut problems: Vec<String> = vec![];
        let users = match amar_policies::UserDirectory::from_file(&config.server.users_file) {
            Ok(u) => Some(u),
            Err(e) => {
                problems.push(format!("{}: {e}", config.server.users_file.display()));
                None
            }
        };
        if let Err(e) = amar_policies::PolicyStore::load(
            config.server.policy_file.as_deref(),
            None,
            &users.as_ref().map(|u| u.all()).unwrap_or_default(),
        )
        .await
        {
            problems.push(e.to_string());
        }
        if let Some(files) = &config.server.tls
            && let Err(e) = crate::tls::Tls::load(files)
        {
            problems.push(format!("{e:#}"));
        }
        let mut opened = true;
        for source in &config.sources {
            match amar_connectors::open_source(source).await {
                Ok(s) => {
                    let health = s.health().await;
                    if health.ok {
                        println!("source \"{}\" ({}): reached", source.name, s.kind());
                    } else {
                        opened = false;
                        problems.push(format!(
                            "source \"{}\": cannot be reached: {}",
                            source.name,
                            health.message.unwrap_or_default()
                        ));
                    }
                }
                Err(e) => {
                    opened = false;
                    problems.push(format!("source \"{}\": {e}", source.name));
                }
            }
        }
        // Indicators and rules need the sources' tables to be planned.
        if let (true, true, Some(users)) = (opened, problems.is_empty(), users) {
            let scratch = std::env::temp_dir().join(format!("amar-check-{}", std::process::id()));
            let audit = crate::audit::AuditLog::open(&crate::audit::AuditConfig::in_dir(
                scratch.join("audit"),
            ));
            match audit {
                Ok(audit) => {
                    match crate::engine::Engine::open(
                        &config.sources,
                        users,
                        config.server.policy_file.as_deref(),
                        audit.clone(),
                        crate::engine::EngineSetup {
                            definitions: config.definitions.clone(),
                            ..Default::default()
                        },
                    )
                    .await
                    {
                        Ok(engine) => problems.extend(engine.statistics().problems().await),
                        Err(e) => problems.push(format!("{e:#}")),
                    }
                    audit.close();
                }
                Err(e) => problems.push(format!("{e:#}")),
            }
            let _ = std::fs::remove_dir_all(&scratch);
        }
        problems
    });
    for p in &problems {
        println!("problem: {p}");
    }
    anyhow::ensure!(
        problems.is_empty(),
        "{}: {} problems",
        file.display(),
        problems.len()
    );
    println!(
        "{}: fine ({} sources, {} indicators, {} rules)",
        file.display(),
        counts.0,
        counts.1,
        counts.2
    );
    Ok(())
}

fn plugins(command: PluginsCommand) -> anyhow::Result<()> {
    let report = match command {
        PluginsCommand::List { config, paths } => {
            let config = match config {
                Some(file) => Some(Config::load(&file, &Overrides::default())?),
                None => None,
            };
            crate::plugins::list(config.as_ref(), &paths)
        }
        PluginsCommand::Check { library, options } => {
            let options = if options.is_empty() {
                None
            } else {
                Some(
                    options
                        .iter()
                        .map(|o| crate::plugins::parse_option(o))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| anyhow::anyhow!(e))?,
                )
            };
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(crate::plugins::check(&library, options))
        }
    };
    print!("{}", report.text);
    anyhow::ensure!(report.ok, "a plugin cannot be used; see above");
    Ok(())
}

/// The first sample row of a run, compact.
fn first_sample(sample: Option<&str>) -> String {
    sample
        .and_then(|s| serde_json::from_str::<serde_json::Value>(s).ok())
        .and_then(|v| v.get(0).cloned())
        .map(|v| v.to_string())
        .unwrap_or_default()
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("AMAR_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    let runtime = crate::serve::runtime(None)?;
    runtime.block_on(async move {
        let options = ServeOptions {
            config: args.config,
            overrides: Overrides {
                data_dir: args.data_dir,
                pg_listen: args.pg_listen,
                flight_listen: args.flight_listen,
                http_listen: args.http_listen,
                portal_listen: args.portal_listen,
            },
            demo_scale: args.demo_scale,
        };
        let server = start(options).await?;
        println!("{}", server.connection_help());
        wait_for_signal().await;
        let grace = server.config.server.limits.shutdown_grace;
        tracing::info!(
            grace_s = grace.as_secs(),
            "stopping: no new connections; running statements may finish"
        );
        server.drain(grace).await;
        tracing::info!("stopped");
        Ok(())
    })
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
                return;
            }
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

fn users_file_path(args: &UsersFileArgs) -> anyhow::Result<PathBuf> {
    if let Some(path) = &args.users_file {
        return Ok(path.clone());
    }
    let config = match &args.config {
        Some(path) => Config::load(path, &Overrides::default())?,
        None => Config::defaults(&Overrides::default()),
    };
    Ok(config.server.users_file)
}

pub(crate) fn read_password() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    anyhow::ensure!(
        !password.is_empty(),
        "the password on standard input is empty"
    );
    Ok(password)
}

fn user(command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Add {
            name,
            roles,
            attributes,
            file,
            ..
        } => {
            let path = users_file_path(&file)?;
            let attributes = attributes
                .iter()
                .map(|a| parse_attribute(a))
                .collect::<Result<BTreeMap<_, _>, _>>()?;
            let password = read_password()?;
            let mut users = UsersFile::load(&path)?;
            users.add(&name, roles, attributes, &password)?;
            users.save()?;
            println!("added user \"{name}\" to {}", path.display());
        }
        UserCommand::Passwd { name, file, .. } => {
            let path = users_file_path(&file)?;
            let password = read_password()?;
            let mut users = UsersFile::load(&path)?;
            users.set_password(&name, &password)?;
            users.save()?;
            println!("changed the password of \"{name}\" in {}", path.display());
        }
        UserCommand::Disable { name, file } => {
            let path = users_file_path(&file)?;
            let mut users = UsersFile::load(&path)?;
            users.disable(&name)?;
            users.save()?;
            println!("disabled user \"{name}\" in {}", path.display());
        }
        UserCommand::List { file } => {
            let path = users_file_path(&file)?;
            let users = UsersFile::load(&path)?;
            for u in users.users() {
                let attrs: Vec<String> = u
                    .attributes
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                println!(
                    "{}\troles={}\t{}{}",
                    u.name,
                    u.roles.join(","),
                    attrs.join(" "),
                    if u.disabled { "\t(disabled)" } else { "" }
                );
            }
        }
    }
    Ok(())
}
