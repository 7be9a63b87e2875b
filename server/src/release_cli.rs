//! `amar release`: the statistics office's release actions from a terminal.
//!
//! The command is a client of a running server: it signs in over the PostgreSQL
//! protocol as the user named, and runs the same procedures a SQL client runs
//! (`CALL amar.release(…)`, `CALL amar.verify_releases()`, `amar.releases`), so the
//! same policy decides and the same audit log records every action. The password is
//! read from `AMAR_PASSWORD`, or else the first line of standard input.

use clap::{Args, Subcommand};
use tokio_postgres::{NoTls, SimpleQueryMessage};

#[derive(Subcommand, Debug)]
pub enum ReleaseCommand {
    /// Release indicators for a period now.
    Publish(PublishArgs),
    /// Release indicators for a period at a later time (under embargo until then).
    Prepare {
        #[command(flatten)]
        release: PublishArgs,
    },
    /// Release again figures released before: needs --class and --reason.
    Revise(PublishArgs),
    /// Check every release against its manifest; exits with 1 if one does not match.
    Verify(ServerArgs),
    /// The releases and their state.
    List(ServerArgs),
    /// The release calendar as an iCalendar file, on standard output.
    Calendar(ServerArgs),
}

#[derive(Args, Debug)]
pub struct ServerArgs {
    /// The server's PostgreSQL port, as a libpq URL.
    #[arg(long, default_value = "postgres://127.0.0.1:6543/amar")]
    pub url: String,
    /// The user to sign in as.
    #[arg(long)]
    pub user: String,
}

#[derive(Args, Debug)]
pub struct PublishArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The indicators, separated by commas.
    #[arg(long)]
    pub indicators: String,
    /// The period: 1403Q4, 1403-12, 1403.
    #[arg(long)]
    pub period: String,
    /// When the figures become official (YYYY-MM-DD HH:MM, Tehran time, or with a
    /// zone); now when not given.
    #[arg(long)]
    pub at: Option<String>,
    /// Why the figures are released again: revision, recalculation, method, correction.
    #[arg(long)]
    pub class: Option<String>,
    /// The reason, in words, for a revision.
    #[arg(long)]
    pub reason: Option<String>,
    /// Release indicators whose validation rules did not pass, for this written reason.
    #[arg(long)]
    pub force: Option<String>,
}

/// A SQL string literal.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn call(args: &PublishArgs) -> String {
    let mut parts = vec![
        format!("indicators => {}", quoted(&args.indicators)),
        format!("period => {}", quoted(&args.period)),
    ];
    for (name, value) in [
        ("publish_at", &args.at),
        ("class", &args.class),
        ("reason", &args.reason),
        ("force", &args.force),
    ] {
        if let Some(value) = value {
            parts.push(format!("{name} => {}", quoted(value)));
        }
    }
    format!("CALL amar.release({})", parts.join(", "))
}

/// Rows, each as (column, value) pairs.
type Rows = Vec<Vec<(String, String)>>;

/// Rows as the command prints them: a `name: value` block per row.
fn blocks(rows: &Rows) -> String {
    let mut out = String::new();
    for row in rows {
        for (name, value) in row {
            out.push_str(&format!("{name}: {value}\n"));
        }
        out.push('\n');
    }
    out
}

/// Signs in to the server as its user, naming the command as the application.
pub(crate) async fn connect(
    server: &ServerArgs,
    password: &str,
    application: &str,
) -> anyhow::Result<tokio_postgres::Client> {
    let mut config: tokio_postgres::Config = server
        .url
        .parse()
        .map_err(|e| anyhow::anyhow!("--url {}: {e}", server.url))?;
    config.user(&server.user).password(password);
    if config.get_dbname().is_none() {
        config.dbname(amar_catalog::DATABASE);
    }
    config.application_name(application);
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("cannot sign in to {}: {}", server.url, describe(&e)))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// Runs `sql` in the client's session: its columns, and its rows as text (NULL as
/// None), as the server wrote them.
pub(crate) async fn answer(
    client: &tokio_postgres::Client,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), tokio_postgres::Error> {
    let mut columns = vec![];
    let mut rows = vec![];
    for message in client.simple_query(sql).await? {
        match message {
            SimpleQueryMessage::RowDescription(fields) => {
                columns = fields.iter().map(|f| f.name().to_string()).collect();
            }
            SimpleQueryMessage::Row(row) => {
                if columns.is_empty() {
                    columns = row.columns().iter().map(|c| c.name().to_string()).collect();
                }
                rows.push(
                    (0..row.len())
                        .map(|i| row.get(i).map(str::to_string))
                        .collect(),
                );
            }
            _ => {}
        }
    }
    Ok((columns, rows))
}

/// Runs `sql` as the user; the rows.
async fn query(server: &ServerArgs, password: &str, sql: &str) -> anyhow::Result<Rows> {
    let client = connect(server, password, "amar release").await?;
    let (columns, rows) = answer(&client, sql)
        .await
        .map_err(|e| anyhow::anyhow!("{}", describe(&e)))?;
    Ok(rows
        .into_iter()
        .map(|row| {
            columns
                .iter()
                .cloned()
                .zip(row.into_iter().map(Option::unwrap_or_default))
                .collect()
        })
        .collect())
}

/// A server error as psql shows it: its message and SQLSTATE.
pub(crate) fn describe(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    }
}

/// The password of the command's user: `AMAR_PASSWORD`, or the first line of
/// standard input.
pub(crate) fn password() -> anyhow::Result<String> {
    match std::env::var("AMAR_PASSWORD") {
        Ok(p) => Ok(p),
        Err(_) => crate::cli::read_password(),
    }
}

pub fn release(command: ReleaseCommand) -> anyhow::Result<()> {
    let password = password()?;
    let runtime = crate::serve::runtime(Some(1))?;
    let out = runtime.block_on(execute(command, &password))?;
    print!("{out}");
    Ok(())
}

/// The arguments of `amar release`, as the command line gives them (after
/// `amar release`).
pub fn parse(args: &[&str]) -> anyhow::Result<ReleaseCommand> {
    #[derive(clap::Parser, Debug)]
    struct Release {
        #[command(subcommand)]
        command: ReleaseCommand,
    }
    let parsed = <Release as clap::Parser>::try_parse_from(
        std::iter::once("amar release").chain(args.iter().copied()),
    )?;
    Ok(parsed.command)
}

/// Runs one `amar release` command as its user (signed in with `password`); what it
/// prints. Refusals and failures are errors, with the server's message and SQLSTATE.
pub async fn execute(command: ReleaseCommand, password: &str) -> anyhow::Result<String> {
    match command {
        ReleaseCommand::Publish(args) => {
            anyhow::ensure!(args.at.is_none(), "publish releases now; use prepare --at");
            Ok(blocks(&query(&args.server, password, &call(&args)).await?))
        }
        ReleaseCommand::Prepare { release } => {
            anyhow::ensure!(
                release.at.is_some(),
                "prepare needs --at, the time of publication"
            );
            Ok(blocks(
                &query(&release.server, password, &call(&release)).await?,
            ))
        }
        ReleaseCommand::Revise(args) => {
            anyhow::ensure!(
                args.class.is_some() && args.reason.is_some(),
                "revise needs --class and --reason"
            );
            Ok(blocks(&query(&args.server, password, &call(&args)).await?))
        }
        ReleaseCommand::Verify(server) => {
            let rows = query(&server, password, "CALL amar.verify_releases()").await?;
            let broken = rows
                .iter()
                .filter(|r| r.iter().any(|(n, v)| n == "status" && v == "broken"))
                .count();
            anyhow::ensure!(
                broken == 0,
                "{}{broken} releases do not match their manifest",
                blocks(&rows)
            );
            Ok(format!(
                "{}{} releases match their manifests\n",
                blocks(&rows),
                rows.len()
            ))
        }
        ReleaseCommand::Calendar(server) => {
            let rows = query(
                &server,
                password,
                "SELECT indicators, period, \
                     CAST(extract(epoch FROM scheduled_at) AS BIGINT) AS at \
                     FROM amar.release_calendar",
            )
            .await?;
            let mut plans = vec![];
            for row in rows {
                let field = |name: &str| {
                    row.iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, v)| v.clone())
                        .unwrap_or_default()
                };
                let seconds: i64 = field("at").parse()?;
                plans.push(amar_catalog::releases::calendar::Planned {
                    indicators: field("indicators")
                        .split(", ")
                        .map(str::to_string)
                        .collect(),
                    period: field("period"),
                    at: chrono::DateTime::from_timestamp(seconds, 0)
                        .ok_or_else(|| anyhow::anyhow!("a scheduled time out of range"))?,
                    moves: vec![],
                });
            }
            let host = server
                .url
                .parse::<tokio_postgres::Config>()
                .ok()
                .and_then(|c| match c.get_hosts().first() {
                    Some(tokio_postgres::config::Host::Tcp(h)) => Some(h.clone()),
                    _ => None,
                })
                .unwrap_or_else(|| "amar".to_string());
            Ok(amar_catalog::releases::calendar::ics(&plans, &host))
        }
        ReleaseCommand::List(server) => Ok(blocks(
            &query(
                &server,
                password,
                "SELECT release_id, period, indicators, status, publish_at_jalali, class, reason \
                 FROM amar.releases ORDER BY publish_at, release_id",
            )
            .await?,
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_release_is_one_call_with_its_values_quoted() {
        let args = PublishArgs {
            server: ServerArgs {
                url: String::new(),
                user: String::new(),
            },
            indicators: "a, b".into(),
            period: "1403Q4".into(),
            at: None,
            class: Some("correction".into()),
            reason: Some("Fars' figures".into()),
            force: None,
        };
        assert_eq!(
            call(&args),
            "CALL amar.release(indicators => 'a, b', period => '1403Q4', class => 'correction', reason => 'Fars'' figures')"
        );
    }
}
