//! The one statement path: what every front end hands the engine, and what it gets back.
//!
//! A front end parses nothing and decides nothing. It gives a session a statement
//! ([`Session::run`]), or prepares one ([`Session::prepare`]) and runs it later with
//! its values ([`Session::run_prepared`]), or asks a metadata question
//! ([`Session::metadata`]); it gets an [`Outcome`] (rows, a command tag, a change of
//! transaction block, a COPY stream) and puts that into its protocol. The session
//! applies every command (SET, SHOW, BEGIN, PREPARE, DECLARE, …) here, and writes
//! exactly one audit entry for every statement, answered, refused or failed:
//!
//! Each statement's entry is a [`Ledger`] opened when it arrives. It is written when
//! the statement is answered or refused; a statement that runs hands it to
//! [`Session::execute`], whose stream writes it when the rows end, with what it read
//! and returned; one whose front end gives up on it (a cancel request, a client
//! gone) writes it when dropped. No other code writes an entry, except
//! [`Session::parse`] for text that does not parse.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use amar_policies::enforce::Report;
use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::sql::sqlparser::ast::Statement;

use super::command::{Command, CopyFormat};
use super::error::{SqlError, code};
use super::settings::{REPORTED, Settings};
use super::{Planned, Session};
use crate::audit::AuditEntry;

/// Where the connection's transaction block stands, as its front end tracks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transaction {
    Idle,
    Open,
    /// A statement in the block failed: only ROLLBACK (or COMMIT, which rolls back)
    /// runs until it ends.
    Failed,
}

/// What a statement produced, for its front end to put into its protocol.
pub enum Outcome {
    /// Rows of a query, EXECUTE, FETCH or SHOW, as they are produced; `tag` is the
    /// command tag's word (`SELECT`, `FETCH`, `SHOW`).
    Rows {
        stream: SendableRecordBatchStream,
        tag: &'static str,
    },
    /// A command that ran. `reported` is a setting the client is told the new value
    /// of (PostgreSQL's ParameterStatus), as `(name, value)`.
    Done {
        tag: &'static str,
        reported: Option<(String, String)>,
    },
    /// `BEGIN` outside a block: a block starts.
    Begin,
    /// `COMMIT` or `ROLLBACK`: the block ends; `tag` says which happened (a failed
    /// block's COMMIT rolls back).
    End { tag: &'static str },
    /// `COPY (query) TO STDOUT`: the rows, to be written in `format`.
    CopyOut {
        stream: SendableRecordBatchStream,
        format: CopyFormat,
    },
}

impl std::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Outcome::Rows { tag, .. } => write!(f, "Rows({tag})"),
            Outcome::Done { tag, reported } => write!(f, "Done({tag}, {reported:?})"),
            Outcome::Begin => f.write_str("Begin"),
            Outcome::End { tag } => write!(f, "End({tag})"),
            Outcome::CopyOut { format, .. } => write!(f, "CopyOut({format:?})"),
        }
    }
}

/// Which statements a front end carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accept {
    /// Queries and every session command (the PostgreSQL protocol).
    All,
    /// Queries only (Flight SQL): a session command is refused (0A000) before it runs.
    Queries,
}

/// Why a front end that carries queries only refuses a session command.
pub const QUERIES_ONLY: &str = "Flight SQL runs queries; session commands (SET, BEGIN, COPY, cursors) belong to the PostgreSQL protocol";

/// A statement prepared for later runs (the extended protocol's Parse, Flight SQL's
/// CreatePreparedStatement): a query planned once, or a command kept as it is.
#[derive(Debug, Clone)]
pub struct Prepared {
    kind: Kind,
    /// The statement's text, for the audit log.
    text: Arc<str>,
    /// The columns its runs return, where known when it was prepared.
    output: Option<SchemaRef>,
}

#[derive(Debug, Clone)]
enum Kind {
    Query(Box<Planned>),
    Command(Command),
}

impl Prepared {
    /// The statement's text as logged.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The columns a run returns: a query's, a SHOW's, an EXECUTE's or a FETCH's (of
    /// a statement or cursor that existed when this was prepared); `None` for a
    /// command that returns no rows.
    pub fn output(&self) -> Option<&SchemaRef> {
        self.output.as_ref()
    }

    /// The types of `$1…$n`, in order (`None` where none could be inferred); a
    /// command takes none.
    pub fn parameter_types(&self) -> Result<Vec<Option<DataType>>, SqlError> {
        match &self.kind {
            Kind::Query(planned) => planned.parameter_types(),
            Kind::Command(_) => Ok(vec![]),
        }
    }
}

/// The audit entry of one statement, from its arrival: written exactly once, when the
/// statement is answered or refused, or, for one that runs, by the stream of its rows
/// when that ends ([`Session::execute`] takes the ledger over); or, if its front end
/// stops waiting for it (a cancel request, a client gone), when it is dropped.
pub(crate) struct Ledger<'a> {
    session: &'a Session,
    text: Arc<str>,
    arrived: (DateTime<Utc>, Instant),
    /// What the statement reads and what the policy did, once planned.
    report: Arc<Report>,
    /// The policy's decision, once known; otherwise the error decides.
    decision: Option<String>,
    /// Rows the answer carried (SHOW, FETCH, a metadata request).
    rows: u64,
    /// Written, or passed on.
    settled: bool,
}

impl<'a> Ledger<'a> {
    fn open(session: &'a Session, text: impl Into<Arc<str>>) -> Self {
        Ledger {
            session,
            text: text.into(),
            arrived: (Utc::now(), Instant::now()),
            report: Arc::new(Report::default()),
            decision: None,
            rows: 0,
            settled: false,
        }
    }

    /// This ledger's duty, passed on to a new owner (the statement's execution).
    fn pass(&mut self) -> Ledger<'a> {
        self.settled = true;
        Ledger {
            session: self.session,
            text: self.text.clone(),
            arrived: self.arrived,
            report: self.report.clone(),
            decision: self.decision.take(),
            rows: self.rows,
            settled: false,
        }
    }

    /// Nothing to write: a statement prepared, to be audited when it runs.
    fn discard(mut self) {
        self.settled = true;
    }

    pub(crate) fn reads(&mut self, report: Arc<Report>) {
        self.report = report;
    }

    pub(crate) fn decide(&mut self, decision: String) {
        self.decision = Some(decision);
    }

    /// Writes the entry of a statement refused or failed before it ran.
    pub(crate) fn fail(mut self, e: SqlError) -> SqlError {
        self.write(Some(&e));
        e
    }

    /// Writes the entry of a statement refused by the access control.
    pub(crate) fn deny(mut self, e: SqlError) -> SqlError {
        self.decision = Some("denied".into());
        self.fail(e)
    }

    /// The entry the stream of a running statement fills in and writes, and when
    /// the statement arrived.
    pub(crate) fn into_entry(mut self) -> (AuditEntry, Instant) {
        self.settled = true;
        let decision = self.decision.take().unwrap_or_else(|| "allowed".into());
        let entry = self.session.entry(
            &self.text,
            self.arrived.0,
            std::time::Duration::ZERO,
            &self.report,
            &decision,
            0,
            0,
            None,
        );
        (entry, self.arrived.1)
    }

    /// Writes the entry of an answered statement, unless its duty was passed on.
    fn close<T>(mut self, result: &Result<T, SqlError>) {
        if !self.settled {
            self.write(result.as_ref().err());
        }
    }

    fn write(&mut self, error: Option<&SqlError>) {
        self.settled = true;
        let decision = match (self.decision.take(), error) {
            (_, Some(e)) if e.code == code::INSUFFICIENT_PRIVILEGE => "denied".to_string(),
            (Some(decision), _) => decision,
            (None, None) => "allowed".to_string(),
            (None, Some(_)) => "none".to_string(),
        };
        self.session.audit(
            &self.text,
            self.arrived,
            &self.report,
            &decision,
            self.rows,
            0,
            error,
        );
    }
}

impl Drop for Ledger<'_> {
    /// A statement its front end stopped waiting for.
    fn drop(&mut self) {
        if !self.settled {
            let e = SqlError::new(
                code::QUERY_CANCELED,
                "canceling statement due to user request",
            );
            self.write(Some(&e));
        }
    }
}

/// Refuses what a block's state does not admit: in a failed block, everything but
/// ROLLBACK and COMMIT.
fn admitted(transaction: Transaction, command: Option<&Command>) -> Result<(), SqlError> {
    if transaction == Transaction::Failed
        && !matches!(command, Some(Command::Rollback | Command::Commit))
    {
        return Err(SqlError::new(
            code::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        ));
    }
    Ok(())
}

/// Text columns holding the given rows, as one stream.
fn text_rows(
    names: &[&str],
    rows: Vec<Vec<String>>,
) -> Result<SendableRecordBatchStream, SqlError> {
    let schema = text_schema(names);
    let columns: Vec<ArrayRef> = (0..names.len())
        .map(|i| {
            Arc::new(StringArray::from_iter_values(
                rows.iter().map(|r| r[i].as_str()),
            )) as ArrayRef
        })
        .collect();
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .map_err(|e| SqlError::new(code::INTERNAL_ERROR, e.to_string()))?;
    Ok(batches(schema, vec![batch]))
}

fn text_schema(names: &[&str]) -> SchemaRef {
    Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, true))
            .collect::<Vec<_>>(),
    ))
}

fn batches(schema: SchemaRef, batches: Vec<RecordBatch>) -> SendableRecordBatchStream {
    Box::pin(RecordBatchStreamAdapter::new(
        schema,
        futures::stream::iter(batches.into_iter().map(Ok)),
    ))
}

const SHOW_ALL: [&str; 3] = ["name", "setting", "description"];

impl Session {
    /// Runs one statement, as the simple query protocol sends it.
    pub async fn run(
        &self,
        statement: Statement,
        transaction: Transaction,
    ) -> Result<Outcome, SqlError> {
        let ledger = Ledger::open(self, statement.to_string());
        let command = match Command::classify(statement)
            .and_then(|c| admitted(transaction, Some(&c)).map(|()| c))
        {
            Ok(command) => command,
            Err(e) => return Err(ledger.fail(e)),
        };
        self.apply(command, transaction, ledger).await
    }

    /// Parses SQL holding at most one statement and prepares it: a query is planned
    /// now (and refused now if it may not run), a command is kept for its runs.
    /// `None` for SQL with no statement. Several statements are refused (42601).
    pub async fn prepare(&self, sql: &str, accept: Accept) -> Result<Option<Prepared>, SqlError> {
        self.prepare_typed(sql, accept, &[]).await
    }

    /// [`Self::prepare`] with the parameter types the client declared (`None`
    /// where it left one to the server), as the protocol's Parse message gives them.
    pub async fn prepare_typed(
        &self,
        sql: &str,
        accept: Accept,
        declared: &[Option<DataType>],
    ) -> Result<Option<Prepared>, SqlError> {
        let mut statements = self.parse(sql)?;
        let statement = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            _ => {
                return Err(Ledger::open(self, sql).fail(SqlError::syntax(
                    "cannot insert multiple commands into a prepared statement",
                )));
            }
        };
        let text: Arc<str> = statement.to_string().into();
        let ledger = Ledger::open(self, text.clone());
        let command = match Command::classify(statement) {
            Ok(Command::Query(statement)) => {
                let planned = match self.plan_typed(&statement, Arc::from(declared)).await {
                    Ok(planned) => planned,
                    Err(e) => return Err(ledger.fail(e)),
                };
                // Audited when it runs.
                ledger.discard();
                return Ok(Some(Prepared {
                    output: Some(planned.output.clone()),
                    kind: Kind::Query(Box::new(planned)),
                    text,
                }));
            }
            Ok(_) if accept == Accept::Queries => {
                return Err(ledger.fail(SqlError::not_supported(QUERIES_ONLY)));
            }
            Ok(command) => command,
            Err(e) => return Err(ledger.fail(e)),
        };
        // Audited when it runs.
        ledger.discard();
        let output = match &command {
            Command::Fetch { name, .. } => self.cursors.schema(name).await.ok(),
            Command::Execute { name, .. } => self.named_output(name),
            Command::Show { name } => Some(text_schema(&[&Settings::display_name(name)])),
            Command::ShowAll => Some(text_schema(&SHOW_ALL)),
            Command::Call { procedure, .. } => {
                super::procedures::columns(procedure).map(text_schema)
            }
            _ => None,
        };
        Ok(Some(Prepared {
            kind: Kind::Command(command),
            text,
            output,
        }))
    }

    /// Runs a prepared statement. `bind` turns the protocol's values into the
    /// values of `$1…$n`, given their types (`None`: the statement runs as
    /// prepared); a value that cannot be read is refused, and audited, here.
    pub async fn run_prepared(
        &self,
        prepared: &Prepared,
        transaction: Transaction,
        bind: impl FnOnce(&[Option<DataType>]) -> Result<Option<ParamValues>, SqlError>,
    ) -> Result<Outcome, SqlError> {
        let ledger = Ledger::open(self, prepared.text.clone());
        match &prepared.kind {
            Kind::Query(planned) => {
                // Planned again first if it went out of date, so that the values are
                // typed and bound once, into the plan that runs.
                let planned = match admitted(transaction, None) {
                    Ok(()) => match self.current_plan(planned).await {
                        Ok(planned) => planned,
                        Err(e) => return Err(ledger.fail(e)),
                    },
                    Err(e) => return Err(ledger.fail(e)),
                };
                let bound = planned
                    .parameter_types()
                    .and_then(|types| bind(&types))
                    .and_then(|values| match values {
                        Some(values) => planned.bind(values),
                        None => Ok(planned),
                    });
                let planned = match bound {
                    Ok(planned) => planned,
                    Err(e) => return Err(ledger.fail(e)),
                };
                Ok(Outcome::Rows {
                    stream: self.execute(planned, ledger).await?,
                    tag: "SELECT",
                })
            }
            Kind::Command(command) => {
                if let Err(e) = admitted(transaction, Some(command)) {
                    return Err(ledger.fail(e));
                }
                self.apply(command.clone(), transaction, ledger).await
            }
        }
    }

    /// Answers a metadata request (Flight SQL's GetTables and the like) computed by
    /// `answer`, audited like a statement: `request` names it with its arguments.
    pub async fn metadata(
        &self,
        request: String,
        answer: impl Future<Output = Result<RecordBatch, SqlError>>,
    ) -> Result<RecordBatch, SqlError> {
        let mut ledger = Ledger::open(self, request);
        let result = match self.check_standing() {
            Ok(()) => answer.await,
            Err(e) => Err(e),
        };
        if let Ok(batch) = &result {
            ledger.rows = batch.num_rows() as u64;
        }
        ledger.close(&result);
        result
    }

    /// Applies a command and audits it.
    async fn apply(
        &self,
        command: Command,
        transaction: Transaction,
        mut ledger: Ledger<'_>,
    ) -> Result<Outcome, SqlError> {
        let result = self.apply_inner(command, transaction, &mut ledger).await;
        ledger.close(&result);
        result
    }

    async fn apply_inner(
        &self,
        command: Command,
        transaction: Transaction,
        ledger: &mut Ledger<'_>,
    ) -> Result<Outcome, SqlError> {
        let done = |tag| Outcome::Done {
            tag,
            reported: None,
        };
        Ok(match command {
            Command::Query(statement) => {
                let planned = self.plan(&statement).await?;
                Outcome::Rows {
                    stream: self.execute(planned, ledger.pass()).await?,
                    tag: "SELECT",
                }
            }
            Command::Execute { name, values } => {
                let planned = self.bind_named(&name, &values).await?;
                Outcome::Rows {
                    stream: self.execute(planned, ledger.pass()).await?,
                    tag: "SELECT",
                }
            }
            Command::Copy { query, format } => {
                let planned = self.plan(&query).await?;
                Outcome::CopyOut {
                    stream: self.execute(planned, ledger.pass()).await?,
                    format,
                }
            }
            Command::Declare { name, query, hold } => {
                if transaction == Transaction::Idle && !hold {
                    return Err(SqlError::new(
                        "25P01",
                        "DECLARE CURSOR can only be used in transaction blocks",
                    ));
                }
                self.cursors.check_free(&name).await?;
                let planned = self.plan(&query).await?;
                let stream = self.execute(planned, ledger.pass()).await?;
                self.cursors
                    .declare(&name, query.to_string(), stream, hold)
                    .await?;
                done("DECLARE CURSOR")
            }
            Command::Fetch { name, count } => {
                let (schema, fetched) = self.cursors.fetch(&name, count).await?;
                ledger.rows = fetched.iter().map(|b| b.num_rows() as u64).sum();
                Outcome::Rows {
                    stream: batches(schema, fetched),
                    tag: "FETCH",
                }
            }
            Command::Close { name } => {
                self.cursors.close(name.as_deref()).await?;
                done("CLOSE CURSOR")
            }
            Command::Set { name, value } => {
                let canonical = self.update_settings(|s| s.set(&name, &value))?;
                Outcome::Done {
                    tag: "SET",
                    reported: self.reported(canonical)?,
                }
            }
            Command::Reset { name } => {
                let canonical = self.update_settings(|s| s.reset(&name))?;
                Outcome::Done {
                    tag: "RESET",
                    reported: self.reported(canonical)?,
                }
            }
            Command::ResetAll => {
                self.update_settings(|s| {
                    s.reset_all();
                    Ok(())
                })?;
                done("RESET")
            }
            Command::DiscardAll => {
                if transaction != Transaction::Idle {
                    return Err(SqlError::new(
                        "25001",
                        "DISCARD ALL cannot run inside a transaction block",
                    ));
                }
                self.update_settings(|s| {
                    s.reset_all();
                    Ok(())
                })?;
                self.deallocate(None)?;
                self.cursors.close(None).await?;
                done("DISCARD ALL")
            }
            Command::Show { name } => {
                let value = self.settings().get(&name)?;
                ledger.rows = 1;
                Outcome::Rows {
                    stream: text_rows(&[&Settings::display_name(&name)], vec![vec![value]])?,
                    tag: "SHOW",
                }
            }
            Command::ShowAll => {
                let rows: Vec<Vec<String>> = self
                    .settings()
                    .all()
                    .into_iter()
                    .map(|(name, setting, description)| {
                        vec![
                            name.to_string(),
                            setting.to_string(),
                            description.to_string(),
                        ]
                    })
                    .collect();
                ledger.rows = rows.len() as u64;
                Outcome::Rows {
                    stream: text_rows(&SHOW_ALL, rows)?,
                    tag: "SHOW",
                }
            }
            Command::Begin => match transaction {
                Transaction::Idle => Outcome::Begin,
                // PostgreSQL warns and carries on.
                _ => done("BEGIN"),
            },
            Command::Commit => {
                self.cursors.end_transaction().await;
                Outcome::End {
                    tag: if transaction == Transaction::Failed {
                        "ROLLBACK"
                    } else {
                        "COMMIT"
                    },
                }
            }
            Command::Rollback => {
                self.cursors.end_transaction().await;
                Outcome::End { tag: "ROLLBACK" }
            }
            Command::NoOp(tag) => done(tag),
            Command::Call { procedure, args } => {
                let (names, rows) = self.call(&procedure, args).await?;
                ledger.rows = rows.len() as u64;
                Outcome::Rows {
                    stream: text_rows(names, rows)?,
                    tag: "CALL",
                }
            }
            Command::Deallocate { name } => {
                self.deallocate(name.as_deref())?;
                done(if name.is_some() {
                    "DEALLOCATE"
                } else {
                    "DEALLOCATE ALL"
                })
            }
            Command::Prepare {
                name,
                types,
                statement,
            } => {
                self.prepare_named(&name, &types, *statement).await?;
                done("PREPARE")
            }
        })
    }

    /// The setting a client is told the new value of, if `name` is one.
    fn reported(&self, name: &str) -> Result<Option<(String, String)>, SqlError> {
        if !REPORTED.contains(&name) {
            return Ok(None);
        }
        Ok(Some((name.to_string(), self.settings().get(name)?)))
    }
}
