//! Simple and extended query protocol: statements to responses, through the session.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::{arrow_schema_to_pg_fields, into_pg_type};
use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ParamValues;
use datafusion::sql::sqlparser::ast::Statement;
use futures::{Sink, SinkExt, StreamExt, stream};
use pgwire::api::copy::send_copy_out_response;
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_execution_response};
use pgwire::api::results::{DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::results::{DescribePortalResponse, DescribeResponse, DescribeStatementResponse};
use pgwire::api::stmt::QueryParser;
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::api::{ConnectionHandle, DEFAULT_NAME, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, Describe, Execute, Sync as PgSync, TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;
use pgwire::types::format::FormatOptions;

use super::encode::encode_batch;
use super::errors::{to_info, to_pgwire};
use super::{SessionHandle, copy};
use crate::engine::settings::REPORTED;
use crate::engine::{Command, Planned, Session, Settings, SqlError, code};

/// A statement kept for the extended protocol (Parse → Bind → Execute).
#[derive(Debug, Clone)]
pub struct Prepared {
    kind: PreparedKind,
    /// The statement's text, for the audit log.
    text: Arc<str>,
}

#[derive(Debug, Clone)]
enum PreparedKind {
    /// A query, planned once with its `$n` placeholders.
    Query(Box<Planned>),
    /// A session command (SET, SHOW, BEGIN…), COPY or a cursor command; for FETCH,
    /// the cursor's result schema as it was at Parse (Describe needs it).
    Command(Command, Option<datafusion::arrow::datatypes::SchemaRef>),
}

/// An extended-protocol exchange in progress, counted as responding from its first
/// Execute until Sync's ReadyForQuery has been flushed to the socket. A slow reader's
/// last rows and ReadyForQuery may sit in the write buffer well after the statement
/// ended; a graceful stop waits for them rather than cutting the answer short.
#[derive(Default)]
struct Exchange(std::sync::Mutex<Option<crate::metrics::Held>>);

impl Exchange {
    fn hold(&self, responding: impl FnOnce() -> crate::metrics::Held) {
        let mut held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if held.is_none() {
            *held = Some(responding());
        }
    }

    fn release(&self) {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}

pub struct QueryHandler {
    parser: Arc<Parser>,
}

impl QueryHandler {
    pub fn new() -> Self {
        Self {
            parser: Arc::new(Parser),
        }
    }
}

fn session_of<C: ClientInfo + ?Sized>(client: &C) -> PgWireResult<Arc<Session>> {
    client
        .session_extensions()
        .get::<SessionHandle>()
        .map(|h| h.0.clone())
        .ok_or_else(|| {
            to_pgwire(SqlError::new(
                code::INVALID_AUTHORIZATION,
                "not authenticated",
            ))
        })
}

/// How a session's settings shape text output.
fn format_options(session: &Session) -> Arc<FormatOptions> {
    let settings = session.settings();
    let mut options = FormatOptions::default();
    options.date_style = settings
        .get("DateStyle")
        .unwrap_or_else(|_| "ISO, MDY".into());
    options.interval_style = settings
        .get("IntervalStyle")
        .unwrap_or_else(|_| "postgres".into());
    options.bytea_output = settings
        .get("bytea_output")
        .unwrap_or_else(|_| "hex".into());
    options.time_zone = settings.time_zone();
    options.extra_float_digits = settings
        .get("extra_float_digits")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    Arc::new(options)
}

/// Checks a Bind's result formats against the column count (a malformed list would
/// otherwise index past its end).
fn check_formats(format: &Format, columns: usize) -> PgWireResult<()> {
    if let Format::Individual(codes) = format
        && codes.len() != columns
    {
        return Err(to_pgwire(SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message has {} result formats but query has {columns} columns",
                codes.len()
            ),
        )));
    }
    if let Format::Individual(codes) = format
        && codes.iter().any(|c| *c != 0 && *c != 1)
    {
        return Err(to_pgwire(SqlError::new(
            code::PROTOCOL_VIOLATION,
            "unsupported format code",
        )));
    }
    Ok(())
}

/// The RowDescription of a result schema.
///
/// pg_catalog columns such as `pg_class.relnamespace` are plain `oid` in PostgreSQL;
/// datafusion-pg-catalog tags them `regnamespace`, `regclass`… so that name
/// comparisons resolve, and arrow-pg would report that tag as the column's type.
/// Drivers read reg* columns as text (psycopg gives `'16394'`, not `16394`), which
/// breaks their joins on OIDs, so they go out as `oid`, their PostgreSQL type.
pub fn fields_for(
    schema: &Schema,
    format: &Format,
    options: Option<Arc<FormatOptions>>,
) -> PgWireResult<Vec<FieldInfo>> {
    check_formats(format, schema.fields().len())?;
    let fields = arrow_schema_to_pg_fields(schema, format, options).map_err(|e| {
        to_pgwire(SqlError::not_supported(format!(
            "a result column has a type the wire protocol cannot carry: {e}"
        )))
    })?;
    Ok(fields
        .into_iter()
        .map(|f| {
            let is_reg = matches!(
                *f.datatype(),
                Type::REGCLASS
                    | Type::REGNAMESPACE
                    | Type::REGTYPE
                    | Type::REGPROC
                    | Type::REGROLE
                    | Type::REGPROCEDURE
                    | Type::REGOPER
                    | Type::REGOPERATOR
                    | Type::REGCONFIG
                    | Type::REGDICTIONARY
                    | Type::REGCOLLATION
            );
            if is_reg {
                FieldInfo::new(
                    f.name().to_string(),
                    f.table_id(),
                    f.column_id(),
                    Type::OID,
                    f.format(),
                )
                .with_format_options(f.format_options().clone())
            } else {
                f
            }
        })
        .collect())
}

/// Runs a plan and streams it as rows in the given formats.
async fn run_query(
    session: &Session,
    planned: Planned,
    format: &Format,
) -> PgWireResult<QueryResponse> {
    let options = format_options(session);
    let fields = Arc::new(fields_for(&planned.output, format, Some(options))?);
    let batches = session.execute(planned).await.map_err(to_pgwire)?;
    let row_fields = fields.clone();
    let rows = batches
        .map(move |batch| {
            let rows = match batch {
                Ok(batch) => encode_batch(&row_fields, &batch),
                Err(e) => vec![Err(stream_error(&e))],
            };
            stream::iter(rows)
        })
        .flatten();
    Ok(QueryResponse::new(fields, rows))
}

/// The one-row answer of `SHOW name`.
fn show_response(name: &str, value: &str) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::TEXT,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(QueryResponse::new(fields, stream::iter(vec![Ok(row)])))
}

fn show_all_response(session: &Session) -> PgWireResult<QueryResponse> {
    let fields = Arc::new(
        ["name", "setting", "description"]
            .iter()
            .map(|n| FieldInfo::new(n.to_string(), None, None, Type::TEXT, FieldFormat::Text))
            .collect::<Vec<_>>(),
    );
    let mut rows = vec![];
    for (name, setting, description) in session.settings().all() {
        let mut encoder = DataRowEncoder::new(fields.clone());
        encoder.encode_field(&Some(name))?;
        encoder.encode_field(&Some(setting))?;
        encoder.encode_field(&Some(description))?;
        rows.push(Ok(encoder.take_row()));
    }
    Ok(QueryResponse::new(fields, stream::iter(rows)))
}

/// The SQLSTATE and message of an error as the client receives it.
fn error_parts(e: &PgWireError) -> (String, String) {
    match e {
        PgWireError::UserError(info) => (info.code.clone(), info.message.clone()),
        PgWireError::QueryCanceled => (
            code::QUERY_CANCELED.to_string(),
            "canceling statement due to user request".to_string(),
        ),
        other => (code::CONNECTION_FAILURE.to_string(), other.to_string()),
    }
}

/// Audits a statement answered without the engine, or refused before it.
fn audit_here(
    session: &Session,
    text: &str,
    arrived: (chrono::DateTime<chrono::Utc>, std::time::Instant),
    error: Option<&PgWireError>,
) {
    let parts = error.map(error_parts);
    session.audit_command(
        text,
        arrived,
        parts.as_ref().map(|(c, m)| (c.as_str(), m.as_str())),
    );
}

fn arrived() -> (chrono::DateTime<chrono::Utc>, std::time::Instant) {
    (chrono::Utc::now(), std::time::Instant::now())
}

/// Runs a statement. Queries, COPY and DECLARE are audited by the engine as they
/// plan and run; every other command is audited here once it has run.
async fn run_command<C>(
    client: &mut C,
    session: &Session,
    command: Command,
    format: &Format,
    text: &str,
) -> PgWireResult<Response>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let by_engine = matches!(
        command,
        Command::Query(_) | Command::Copy { .. } | Command::Declare { .. }
    );
    let start = arrived();
    let result = run_command_inner(client, session, command, format).await;
    if !by_engine {
        audit_here(session, text, start, result.as_ref().err());
    }
    result
}

async fn run_command_inner<C>(
    client: &mut C,
    session: &Session,
    command: Command,
    format: &Format,
) -> PgWireResult<Response>
where
    C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
    C::PortalStore: PortalStore,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let status = client.transaction_status();
    match command {
        Command::Query(statement) => {
            let plan = session.plan(&statement).await.map_err(to_pgwire)?;
            Ok(Response::Query(run_query(session, plan, format).await?))
        }
        Command::Set { name, value } => {
            let canonical = session
                .update_settings(|s| s.set(&name, &value))
                .map_err(to_pgwire)?;
            report(client, session, canonical).await?;
            Ok(Response::Execution(Tag::new("SET")))
        }
        Command::Reset { name } => {
            let canonical = session
                .update_settings(|s| s.reset(&name))
                .map_err(to_pgwire)?;
            report(client, session, canonical).await?;
            Ok(Response::Execution(Tag::new("RESET")))
        }
        Command::ResetAll => {
            session
                .update_settings(|s| {
                    s.reset_all();
                    Ok(())
                })
                .map_err(to_pgwire)?;
            Ok(Response::Execution(Tag::new("RESET")))
        }
        Command::DiscardAll => {
            if status != TransactionStatus::Idle {
                return Err(to_pgwire(SqlError::new(
                    "25001",
                    "DISCARD ALL cannot run inside a transaction block",
                )));
            }
            session
                .update_settings(|s| {
                    s.reset_all();
                    Ok(())
                })
                .map_err(to_pgwire)?;
            session.deallocate(None).map_err(to_pgwire)?;
            Ok(Response::Execution(Tag::new("DISCARD ALL")))
        }
        Command::Show { name } => {
            let value = session.settings().get(&name).map_err(to_pgwire)?;
            let column = name.to_ascii_lowercase().replace(' ', "_");
            let column = if column == "time_zone" {
                "TimeZone".to_string()
            } else {
                column
            };
            Ok(Response::Query(show_response(&column, &value)?))
        }
        Command::ShowAll => Ok(Response::Query(show_all_response(session)?)),
        Command::Begin => {
            if status != TransactionStatus::Idle {
                // PostgreSQL warns and carries on.
                return Ok(Response::Execution(Tag::new("BEGIN")));
            }
            Ok(Response::TransactionStart(Tag::new("BEGIN")))
        }
        Command::Commit => {
            session.cursors().end_transaction().await;
            Ok(Response::TransactionEnd(Tag::new(
                if status == TransactionStatus::Error {
                    "ROLLBACK"
                } else {
                    "COMMIT"
                },
            )))
        }
        Command::Rollback => {
            session.cursors().end_transaction().await;
            Ok(Response::TransactionEnd(Tag::new("ROLLBACK")))
        }
        Command::NoOp(tag) => Ok(Response::Execution(Tag::new(tag))),
        Command::Deallocate { name } => {
            if let Err(e) = session.deallocate(name.as_deref()) {
                // A statement prepared through the protocol shares the namespace
                // (psycopg deallocates its own with this command).
                match name.as_deref() {
                    Some(n) if client.portal_store().get_statement(n).is_some() => {
                        client.portal_store().rm_statement(n);
                    }
                    _ => return Err(to_pgwire(e)),
                }
            }
            Ok(Response::Execution(Tag::new(if name.is_some() {
                "DEALLOCATE"
            } else {
                "DEALLOCATE ALL"
            })))
        }
        Command::Prepare {
            name,
            types,
            statement,
        } => {
            session
                .prepare_named(&name, &types, *statement)
                .await
                .map_err(to_pgwire)?;
            Ok(Response::Execution(Tag::new("PREPARE")))
        }
        Command::Execute { name, values } => {
            let planned = session
                .bind_named(&name, &values)
                .await
                .map_err(to_pgwire)?;
            Ok(Response::Query(run_query(session, planned, format).await?))
        }
        Command::Copy { query, format } => {
            let plan = session.plan(&query).await.map_err(to_pgwire)?;
            let response = copy::copy_out(session, plan, format, format_options(session)).await?;
            Ok(Response::CopyOut(response))
        }
        Command::Declare { name, query, hold } => {
            if status == TransactionStatus::Idle && !hold {
                return Err(to_pgwire(SqlError::new(
                    "25P01",
                    "DECLARE CURSOR can only be used in transaction blocks",
                )));
            }
            let planned = session.plan(&query).await.map_err(to_pgwire)?;
            let stream = session.execute(planned).await.map_err(to_pgwire)?;
            session
                .cursors()
                .declare(&name, query.to_string(), stream, hold)
                .await
                .map_err(to_pgwire)?;
            Ok(Response::Execution(Tag::new("DECLARE CURSOR")))
        }
        Command::Fetch { name, count } => {
            let (schema, batches) = session
                .cursors()
                .fetch(&name, count)
                .await
                .map_err(to_pgwire)?;
            let fields = Arc::new(fields_for(&schema, format, Some(format_options(session)))?);
            let rows: Vec<_> = batches
                .iter()
                .flat_map(|b| encode_batch(&fields, b))
                .collect();
            let mut response = QueryResponse::new(fields, stream::iter(rows));
            response.set_command_tag("FETCH");
            Ok(Response::Query(response))
        }
        Command::Close { name } => {
            session
                .cursors()
                .close(name.as_deref())
                .await
                .map_err(to_pgwire)?;
            Ok(Response::Execution(Tag::new("CLOSE CURSOR")))
        }
    }
}

/// Sends ParameterStatus when a reported parameter changes.
async fn report<C>(client: &mut C, session: &Session, name: &str) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    if REPORTED.contains(&name) {
        let value = session.settings().get(name).map_err(to_pgwire)?;
        client
            .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                name.to_string(),
                value,
            )))
            .await?;
    }
    Ok(())
}

fn bind(planned: Planned, params: &ParamValues) -> PgWireResult<Planned> {
    planned.bind(params.clone()).map_err(to_pgwire)
}

/// In a failed transaction block only ROLLBACK (or COMMIT, which rolls back) runs.
fn check_not_failed(status: TransactionStatus, command: &Command) -> PgWireResult<()> {
    if status == TransactionStatus::Error && !matches!(command, Command::Rollback | Command::Commit)
    {
        return Err(to_pgwire(SqlError::new(
            code::IN_FAILED_SQL_TRANSACTION,
            "current transaction is aborted, commands ignored until end of transaction block",
        )));
    }
    Ok(())
}

#[async_trait]
impl SimpleQueryHandler for QueryHandler {
    /// pgwire's own, counted as responding until ReadyForQuery is sent (a stop waits
    /// for that).
    async fn on_query<C>(&self, client: &mut C, query: Query) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let _responding = session_of(client)
            .ok()
            .map(|s| s.engine().metrics().responding());
        self._on_query(client, query).await
    }

    async fn do_query<C>(&self, client: &mut C, query: &str) -> PgWireResult<Vec<Response>>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let statements = session.parse(query).map_err(to_pgwire)?;
        if statements.is_empty() {
            return Ok(vec![Response::EmptyQuery]);
        }
        let mut responses = Vec::with_capacity(statements.len());
        // Transaction state as it will be after the responses so far.
        let mut status = client.transaction_status();
        for statement in statements {
            let text = statement.to_string();
            let start = arrived();
            let outcome = async {
                let command = match Command::classify(statement)
                    .map_err(to_pgwire)
                    .and_then(|c| check_not_failed(status, &c).map(|()| c))
                {
                    Ok(command) => command,
                    Err(e) => {
                        audit_here(&session, &text, start, Some(&e));
                        return Err(e);
                    }
                };
                run_command(client, &session, command, &Format::UnifiedText, &text).await
            }
            .await;
            match outcome {
                Ok(response) => {
                    status = match &response {
                        Response::TransactionStart(_) => TransactionStatus::Transaction,
                        Response::TransactionEnd(_) => TransactionStatus::Idle,
                        _ => status,
                    };
                    responses.push(response);
                }
                Err(PgWireError::UserError(info)) => {
                    // PostgreSQL stops at the first failing statement of a query string.
                    responses.push(Response::Error(info));
                    break;
                }
                Err(other) => return Err(other),
            }
        }
        Ok(responses)
    }
}

/// Turns SQL into [`Prepared`] statements for the extended protocol.
pub struct Parser;

#[async_trait]
impl QueryParser for Parser {
    type Statement = Prepared;

    async fn parse_sql<C>(
        &self,
        client: &C,
        sql: &str,
        _types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client)?;
        let mut statements = session.parse(sql).map_err(to_pgwire)?;
        let statement: Statement = match statements.len() {
            0 => return Ok(None),
            1 => statements.remove(0),
            _ => {
                return Err(to_pgwire(SqlError::syntax(
                    "cannot insert multiple commands into a prepared statement",
                )));
            }
        };
        let text: Arc<str> = statement.to_string().into();
        let start = arrived();
        let command = Command::classify(statement)
            .map_err(to_pgwire)
            .inspect_err(|e| {
                audit_here(&session, &text, start, Some(e));
            })?;
        let kind = match command {
            Command::Query(statement) => {
                PreparedKind::Query(Box::new(session.plan(&statement).await.map_err(to_pgwire)?))
            }
            Command::Fetch { name, count } => {
                let schema = session.cursors().schema(&name).await.ok();
                PreparedKind::Command(Command::Fetch { name, count }, schema)
            }
            Command::Execute { name, values } => {
                let schema = session.named_output(&name);
                PreparedKind::Command(Command::Execute { name, values }, schema)
            }
            other => PreparedKind::Command(other, None),
        };
        Ok(Some(Prepared { kind, text }))
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        match &stmt.kind {
            PreparedKind::Query(planned) => Ok(planned
                .parameter_types()
                .map_err(to_pgwire)?
                .into_iter()
                .map(|t| t.and_then(|t| into_pg_type(&t).ok()).unwrap_or(Type::TEXT))
                .collect()),
            PreparedKind::Command(..) => Ok(vec![]),
        }
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.cloned().unwrap_or_default();
        match &stmt.kind {
            PreparedKind::Query(planned) => fields_for(&planned.output, &format, None),
            PreparedKind::Command(
                Command::Fetch { .. } | Command::Execute { .. },
                Some(schema),
            ) => fields_for(schema, &format, None),
            PreparedKind::Command(Command::Show { name }, _) => Ok(vec![FieldInfo::new(
                Settings::display_name(name),
                None,
                None,
                Type::TEXT,
                FieldFormat::Text,
            )]),
            PreparedKind::Command(Command::ShowAll, _) => Ok(["name", "setting", "description"]
                .iter()
                .map(|n| FieldInfo::new(n.to_string(), None, None, Type::TEXT, FieldFormat::Text))
                .collect()),
            PreparedKind::Command(..) => Ok(vec![]),
        }
    }
}

#[async_trait]
impl ExtendedQueryHandler for QueryHandler {
    type Statement = Prepared;
    type QueryParser = Parser;

    fn query_parser(&self) -> Arc<Parser> {
        self.parser.clone()
    }

    /// pgwire's own (ReadyForQuery, flushed), then the exchange is over: a stop
    /// waiting for answers may close this connection from here on.
    async fn on_sync<C>(&self, client: &mut C, _message: PgSync) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        client.portal_store().rm_portal(DEFAULT_NAME);
        client
            .send(PgWireBackendMessage::ReadyForQuery(ReadyForQuery::new(
                client.transaction_status(),
            )))
            .await?;
        client.flush().await?;
        if let Some(exchange) = client.session_extensions().get::<Exchange>() {
            exchange.release();
        }
        Ok(())
    }

    /// Bind, as pgwire's, but BindComplete is not flushed by itself: it goes out
    /// with the rest of the exchange at Sync or Flush, as PostgreSQL sends it.
    async fn on_bind<C>(&self, client: &mut C, message: Bind) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let statement_name = message.statement_name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal_name = message.portal_name.as_deref().unwrap_or(DEFAULT_NAME);
        match client.portal_store().get_statement(statement_name) {
            Some(Entry::Value(statement)) => {
                let portal = Portal::try_new(&message, statement)?;
                client.portal_store().put_portal(Arc::new(portal));
            }
            Some(Entry::Empty) => {
                if !message.parameters.is_empty() {
                    return Err(to_pgwire(SqlError::new(
                        code::PROTOCOL_VIOLATION,
                        format!(
                            "bind message supplies {} parameters, but prepared statement \"{statement_name}\" requires 0",
                            message.parameters.len()
                        ),
                    )));
                }
                client.portal_store().put_empty_portal(portal_name);
            }
            None => return Err(PgWireError::StatementNotFound(statement_name.to_owned())),
        }
        client
            .feed(PgWireBackendMessage::BindComplete(
                pgwire::messages::extendedquery::BindComplete::new(),
            ))
            .await?;
        Ok(())
    }

    /// Describe, where a portal may also be a cursor made by `DECLARE` (in
    /// PostgreSQL the two share one namespace; psycopg describes its server-side
    /// cursors this way). As pgwire's otherwise, but the description is not flushed
    /// by itself: libpq sends Bind, Describe, Execute, Sync for every prepared
    /// execution, and the whole answer leaves in one packet at Sync, as PostgreSQL's.
    async fn on_describe<C>(&self, client: &mut C, message: Describe) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if message.target_type == TARGET_TYPE_BYTE_PORTAL
            && let Some(name) = message.name.as_deref()
            && client.portal_store().get_portal(name).is_none()
            && let Ok(session) = session_of(client)
            && let Ok(schema) = session.cursors().schema(name).await
        {
            let fields = fields_for(
                &schema,
                &Format::UnifiedText,
                Some(format_options(&session)),
            )?;
            feed_describe_response(client, &DescribePortalResponse::new(fields)).await?;
            return Ok(());
        }
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => match client.portal_store().get_statement(name) {
                Some(Entry::Value(statement)) => {
                    let response = self.do_describe_statement(client, &statement).await?;
                    feed_describe_response(client, &response).await
                }
                Some(Entry::Empty) => {
                    feed_describe_response(client, &DescribeStatementResponse::no_data()).await
                }
                None => Err(PgWireError::StatementNotFound(name.to_owned())),
            },
            TARGET_TYPE_BYTE_PORTAL => match client.portal_store().get_portal(name) {
                Some(Entry::Value(portal)) => {
                    let response = self.do_describe_portal(client, &portal).await?;
                    feed_describe_response(client, &response).await
                }
                Some(Entry::Empty) => {
                    feed_describe_response(client, &DescribePortalResponse::no_data()).await
                }
                None => Err(PgWireError::PortalNotFound(name.to_owned())),
            },
            other => Err(PgWireError::InvalidTargetType(other)),
        }
    }

    /// Execute, with results streamed.
    ///
    /// pgwire's default collects a portal's rows into memory before sending them
    /// when the client asks for all of them (`max_rows` 0, what psycopg, JDBC without
    /// a fetch size and most drivers send), so a 10-million-row result would be
    /// held whole. Here those rows go to the socket as they are produced; a client
    /// that asks for a bounded number still gets PortalSuspended after each batch.
    async fn on_execute<C>(&self, client: &mut C, message: Execute) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        if !matches!(client.state(), PgWireConnectionState::ReadyForQuery) {
            return Err(PgWireError::NotReadyForQuery);
        }
        // Held until Sync's ReadyForQuery is on the wire (see `on_sync`).
        if let Ok(session) = session_of(client) {
            client
                .session_extensions()
                .get_or_insert_with(Exchange::default)
                .hold(|| session.engine().metrics().responding());
        }
        let max_rows = message.max_rows.max(0) as usize;
        let portal_name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        let portal = match client.portal_store().get_portal(portal_name) {
            Some(Entry::Value(portal)) => portal,
            // Everything else (empty portals, unknown names) as pgwire does it.
            _ => return self._on_execute(client, message).await,
        };
        let initial = matches!(*portal.state().lock().await, PortalExecutionState::Initial);
        let response = if initial {
            client.set_state(PgWireConnectionState::QueryInProgress);
            let cancel = match client.session_extensions().get::<Arc<ConnectionHandle>>() {
                Some(handle) => Some(handle.start_query().await),
                None => None,
            };
            let run = ExtendedQueryHandler::do_query(self, client, portal.as_ref(), max_rows);
            let response = match cancel {
                Some(cancel) => match futures::future::select(Box::pin(run), cancel).await {
                    futures::future::Either::Left((result, _)) => result,
                    futures::future::Either::Right(_) => Err(PgWireError::QueryCanceled),
                },
                None => run.await,
            };
            client.set_state(PgWireConnectionState::ReadyForQuery);
            match response? {
                Response::Query(results) => results,
                // Commands, COPY, transaction control: pgwire's own path, which
                // re-runs nothing because the portal is still Initial only for it.
                other => {
                    return self.send_other(client, other).await;
                }
            }
        } else {
            let state = portal.state();
            let mut state = state.lock().await;
            match std::mem::replace(&mut *state, PortalExecutionState::Finished) {
                PortalExecutionState::Suspended(results) => results,
                PortalExecutionState::Finished => {
                    drop(state);
                    client
                        .send(PgWireBackendMessage::CommandComplete(
                            Tag::new("SELECT").with_rows(0).into(),
                        ))
                        .await?;
                    return Ok(());
                }
                PortalExecutionState::Initial => unreachable!("checked above"),
            }
        };
        let mut results = response;
        let suspended = send_rows(client, &mut results, max_rows).await?;
        *portal.state().lock().await = if suspended {
            PortalExecutionState::Suspended(results)
        } else {
            PortalExecutionState::Finished
        };
        Ok(())
    }

    async fn do_query<C>(
        &self,
        client: &mut C,
        portal: &Portal<Prepared>,
        _max_rows: usize,
    ) -> PgWireResult<Response>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let text = &portal.statement.statement.text;
        match &portal.statement.statement.kind {
            PreparedKind::Query(planned) => {
                let start = arrived();
                let bound = check_not_failed(client.transaction_status(), &Command::NoOp(""))
                    .and_then(|()| decode_parameters(portal, planned))
                    .and_then(|params| bind((**planned).clone(), &params));
                let planned = match bound {
                    Ok(planned) => planned,
                    Err(e) => {
                        audit_here(&session, text, start, Some(&e));
                        return Err(e);
                    }
                };
                Ok(Response::Query(
                    run_query(&session, planned, &portal.result_column_format).await?,
                ))
            }
            PreparedKind::Command(command, _) => {
                if let Err(e) = check_not_failed(client.transaction_status(), command) {
                    audit_here(&session, text, arrived(), Some(&e));
                    return Err(e);
                }
                run_command(
                    client,
                    &session,
                    command.clone(),
                    &portal.result_column_format,
                    text,
                )
                .await
            }
        }
    }
}

impl QueryHandler {
    /// Sends a non-query response of an Execute the way pgwire would.
    async fn send_other<C>(&self, client: &mut C, response: Response) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let status = client.transaction_status();
        match response {
            Response::EmptyQuery => {
                client
                    .send(PgWireBackendMessage::EmptyQueryResponse(
                        EmptyQueryResponse::new(),
                    ))
                    .await?;
            }
            Response::Execution(tag) => send_execution_response(client, tag).await?,
            Response::TransactionStart(tag) => {
                send_execution_response(client, tag).await?;
                client.set_transaction_status(status.to_in_transaction_state());
            }
            Response::TransactionEnd(tag) => {
                send_execution_response(client, tag).await?;
                client.set_transaction_status(status.to_idle_state());
            }
            Response::Error(e) => {
                client
                    .send(PgWireBackendMessage::ErrorResponse((*e).into()))
                    .await?;
                client.set_transaction_status(status.to_error_state());
            }
            Response::CopyOut(result) => send_copy_out_response(client, result).await?,
            Response::Query(_) | Response::CopyIn(_) | Response::CopyBoth(_) => {
                return Err(to_pgwire(SqlError::not_supported(
                    "COPY FROM is not supported",
                )));
            }
        }
        Ok(())
    }
}

/// Sends up to `max_rows` of an Execute's rows (all with 0), then CommandComplete or
/// PortalSuspended; `true` if rows remain. Like pgwire's `send_partial_query_response`
/// but without flushing at the end: as in PostgreSQL, what an Execute answers goes
/// out with the ReadyForQuery of the Sync after it (or at a Flush, or when the
/// buffer fills), so a point query's answer is one packet, not two.
async fn send_rows<C>(
    client: &mut C,
    results: &mut QueryResponse,
    max_rows: usize,
) -> PgWireResult<bool>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    let command_tag = results.command_tag().to_string();
    let data_rows = results.data_rows();
    let mut rows = 0;
    while max_rows == 0 || rows < max_rows {
        match data_rows.next().await {
            Some(row) => {
                client.feed(PgWireBackendMessage::DataRow(row?)).await?;
                rows += 1;
            }
            None => {
                let tag = Tag::new(&command_tag).with_rows(rows);
                client
                    .feed(PgWireBackendMessage::CommandComplete(tag.into()))
                    .await?;
                return Ok(false);
            }
        }
    }
    client
        .feed(PgWireBackendMessage::PortalSuspended(
            pgwire::messages::extendedquery::PortalSuspended::new(),
        ))
        .await?;
    Ok(true)
}

/// Decodes bound parameters, using the client's declared types where given and the
/// types DataFusion inferred otherwise.
fn decode_parameters(portal: &Portal<Prepared>, planned: &Planned) -> PgWireResult<ParamValues> {
    let inferred = planned.parameter_types().map_err(to_pgwire)?;
    if portal.parameter_len() != inferred.len() {
        return Err(to_pgwire(SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                portal.parameter_len(),
                inferred.len()
            ),
        )));
    }
    let inferred_refs: Vec<Option<&DataType>> = inferred.iter().map(|t| t.as_ref()).collect();
    // Which format the bad value came in decides the code, as in PostgreSQL.
    let binary = (0..portal.parameter_len()).any(|i| portal.parameter_format.is_binary(i));
    arrow_pg::datatypes::df::deserialize_parameters(portal, &inferred_refs).map_err(|e| match e {
        PgWireError::UserError(info) => PgWireError::UserError(info),
        other => to_pgwire(SqlError::new(
            if binary {
                code::INVALID_BINARY_REPRESENTATION
            } else {
                code::INVALID_TEXT_REPRESENTATION
            },
            format!("invalid parameter value: {other}"),
        )),
    })
}

/// An engine error met while a response streams, as the client receives it.
pub fn stream_error(e: &datafusion::error::DataFusionError) -> PgWireError {
    PgWireError::UserError(Box::new(to_info(SqlError::from_datafusion(e))))
}

/// pgwire's `send_describe_response`, fed rather than sent: the description goes out
/// with the rest of the exchange at Sync or Flush.
async fn feed_describe_response<C, D>(client: &mut C, response: &D) -> PgWireResult<()>
where
    C: Sink<PgWireBackendMessage> + Unpin,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    D: DescribeResponse,
{
    if let Some(types) = response.parameters() {
        let oids = types.iter().map(|t| t.oid()).collect();
        client
            .feed(PgWireBackendMessage::ParameterDescription(
                ParameterDescription::new(oids),
            ))
            .await?;
    }
    let message = if response.is_no_data() {
        PgWireBackendMessage::NoData(NoData::new())
    } else {
        PgWireBackendMessage::RowDescription(RowDescription::new(
            response.fields().iter().map(Into::into).collect(),
        ))
    };
    client.feed(message).await?;
    Ok(())
}
