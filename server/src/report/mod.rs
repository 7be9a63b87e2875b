//! `amar report quarterly`: the statistics office's report to the organisation's
//! head, every three months, on how the official-statistics directive is carried out.
//!
//! The command is a client of a running server, like `amar release`: it signs in over
//! the PostgreSQL protocol as the user named and runs the report's queries (the
//! [`queries`] of a quarter) in that user's session, so the policy decides what the
//! report may read and the audit log records it. Every figure in the report is a
//! query's output as the server returned it; the appendix prints each query, so any
//! reader can run it again and get the same figure. The report is written in Persian
//! (right to left, Jalali dates, Persian digits) and in English, as HTML files that
//! carry their own font, and printed to PDF by headless Chromium when asked.

mod html;
mod pdf;
pub mod queries;

use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::release_cli::{ServerArgs, answer, connect, describe};
pub use queries::{Quarter, Query};

#[derive(Subcommand, Debug)]
pub enum ReportCommand {
    /// The quarterly report on the directive: sources, validation, indicators,
    /// releases, the evaluation of units and the use of the system, in one quarter.
    Quarterly(QuarterlyArgs),
}

#[derive(Args, Debug)]
pub struct QuarterlyArgs {
    #[command(flatten)]
    pub server: ServerArgs,
    /// The Jalali quarter, e.g. 1404Q2.
    #[arg(long)]
    pub quarter: String,
    /// The folder to write the report into.
    #[arg(long, default_value = ".")]
    pub out: PathBuf,
    /// The languages, separated by commas: fa, en.
    #[arg(long, default_value = "fa,en")]
    pub lang: String,
    /// Also print each language's report to PDF with headless Chromium.
    #[arg(long)]
    pub pdf: bool,
    /// The Chromium to print with.
    #[arg(long, default_value = "/usr/bin/chromium")]
    pub chromium: PathBuf,
}

/// One query's answer, every value as the server wrote it (NULL as None).
#[derive(Debug, Clone)]
pub struct Answer {
    pub query: Query,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl Answer {
    /// The first row's value of `column`.
    pub fn first(&self, column: &str) -> Option<&str> {
        let i = self.columns.iter().position(|c| c == column)?;
        self.rows.first()?.get(i)?.as_deref()
    }
}

/// What a report is made of: its quarter, who ran it, where, when, and the answers.
#[derive(Debug)]
pub struct Gathered {
    pub quarter: Quarter,
    pub user: String,
    pub server: String,
    /// When the report's queries ran, in Jalali, Tehran time.
    pub made_at: String,
    pub answers: Vec<Answer>,
}

/// Signs in and runs the quarter's queries. A query that fails stops the report,
/// naming the query: a report with a section missing is not a report.
pub async fn gather(
    server: &ServerArgs,
    password: &str,
    quarter: Quarter,
) -> anyhow::Result<Gathered> {
    let client = connect(server, password, "amar report").await?;
    let failed = |what: &str, e: tokio_postgres::Error| {
        anyhow::anyhow!("the report's query {what} failed: {}", describe(&e))
    };
    // The evaluation compares the latest month evaluated by the quarter's end with
    // the month three before it.
    let (_, rows) = answer(&client, &queries::latest_evaluated(quarter))
        .await
        .map_err(|e| failed("for the evaluated month", e))?;
    let evaluated = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|p| queries::Month::parse(&p));
    let (_, rows) = answer(
        &client,
        "SELECT jalali_format(now(), 'yyyy/MM/dd HH:mm') AS made_at",
    )
    .await
    .map_err(|e| failed("for the time", e))?;
    let made_at = rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_default();
    let mut answers = vec![];
    for query in queries::queries(quarter, evaluated) {
        let (columns, rows) = answer(&client, &query.sql)
            .await
            .map_err(|e| failed(&format!("{} ({})", query.id, query.title.1), e))?;
        answers.push(Answer {
            query,
            columns,
            rows,
        });
    }
    Ok(Gathered {
        quarter,
        user: server.user.clone(),
        server: server.url.clone(),
        made_at,
        answers,
    })
}

/// Writes the report of `args` (its password given); the files written.
pub async fn execute(args: QuarterlyArgs, password: &str) -> anyhow::Result<Vec<PathBuf>> {
    let quarter = Quarter::parse(&args.quarter).ok_or_else(|| {
        anyhow::anyhow!(
            "--quarter {}: a Jalali quarter is written like 1404Q2",
            args.quarter
        )
    })?;
    let langs = args
        .lang
        .split(',')
        .map(|l| crate::display::Lang::parse(l).map_err(|e| anyhow::anyhow!("--lang {e}")))
        .collect::<anyhow::Result<Vec<_>>>()?;
    if args.pdf {
        anyhow::ensure!(
            args.chromium.exists(),
            "--pdf needs Chromium at {} (Debian's chromium package), or --chromium",
            args.chromium.display()
        );
    }
    let gathered = gather(&args.server, password, quarter).await?;
    std::fs::create_dir_all(&args.out)
        .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", args.out.display()))?;
    let mut written = vec![];
    for lang in langs {
        let page = html::render(&gathered, lang);
        let name = format!("amar-report-{}.{}", quarter.key(), lang.code());
        let path = args.out.join(format!("{name}.html"));
        std::fs::write(&path, page)
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
        written.push(path.clone());
        if args.pdf {
            let target = args.out.join(format!("{name}.pdf"));
            pdf::print(&args.chromium, &path, &target).await?;
            written.push(target);
        }
    }
    Ok(written)
}

pub fn report(command: ReportCommand) -> anyhow::Result<()> {
    let password = crate::release_cli::password()?;
    let runtime = crate::serve::runtime(Some(1))?;
    match command {
        ReportCommand::Quarterly(args) => {
            for path in runtime.block_on(execute(args, &password))? {
                println!("{}", path.display());
            }
        }
    }
    Ok(())
}

/// The arguments of `amar report`, as the command line gives them (after
/// `amar report`).
pub fn parse(args: &[&str]) -> anyhow::Result<ReportCommand> {
    #[derive(clap::Parser, Debug)]
    struct Report {
        #[command(subcommand)]
        command: ReportCommand,
    }
    let parsed = <Report as clap::Parser>::try_parse_from(
        std::iter::once("amar report").chain(args.iter().copied()),
    )?;
    Ok(parsed.command)
}
