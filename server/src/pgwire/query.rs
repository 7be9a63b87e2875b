//! Simple and extended query protocol: messages to the session's statement path, and
//! its outcomes to responses. What a statement does (and its audit entry) is the
//! engine's ([`crate::engine::run`]); this file only translates.

use std::fmt::Debug;
use std::sync::Arc;

use arrow_pg::datatypes::into_pg_type;
use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::{Sink, SinkExt, StreamExt, TryStreamExt, stream};
use pgwire::api::copy::send_copy_out_response;
use pgwire::api::portal::PortalExecutionState;
use pgwire::api::portal::{Format, Portal};
use pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler, send_execution_response};
use pgwire::api::results::{DescribePortalResponse, DescribeResponse, DescribeStatementResponse};
use pgwire::api::results::{FieldInfo, QueryResponse, Response, Tag};
use pgwire::api::stmt::{QueryParser, StoredStatement};
use pgwire::api::store::Entry;
use pgwire::api::store::PortalStore;
use pgwire::api::{ClientInfo, ClientPortalStore, Type};
use pgwire::api::{ConnectionHandle, DEFAULT_NAME, PgWireConnectionState};
use pgwire::error::{PgWireError, PgWireResult};
use pgwire::messages::PgWireBackendMessage;
use pgwire::messages::data::{NoData, ParameterDescription, RowDescription};
use pgwire::messages::extendedquery::{
    Bind, Close, CloseComplete, Describe, Execute, Parse, ParseComplete, Sync as PgSync,
    TARGET_TYPE_BYTE_PORTAL, TARGET_TYPE_BYTE_STATEMENT,
};
use pgwire::messages::response::EmptyQueryResponse;
use pgwire::messages::response::{ReadyForQuery, TransactionStatus};
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::ParameterStatus;

use super::encode::{encode_batch, fields_for, format_options};
use super::errors::{stream_error, to_pgwire};
use super::{SessionHandle, copy};
use crate::engine::{Accept, Outcome, Session, SqlError, Transaction, code};

/// What the extended protocol keeps between Parse and Execute: the engine's.
pub use crate::engine::Prepared;

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

/// Where the connection's transaction block stands, for the engine.
fn transaction(status: TransactionStatus) -> Transaction {
    match status {
        TransactionStatus::Idle => Transaction::Idle,
        TransactionStatus::Transaction => Transaction::Open,
        TransactionStatus::Error => Transaction::Failed,
    }
}

/// A statement's outcome as a pgwire response, rows encoded in `format`; a changed
/// reported setting is sent (as ParameterStatus) ahead of it.
async fn respond<C>(
    client: &mut C,
    session: &Session,
    outcome: Outcome,
    format: &Format,
) -> PgWireResult<Response>
where
    C: Sink<PgWireBackendMessage> + Unpin + Send,
    C::Error: Debug,
    PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
{
    Ok(match outcome {
        Outcome::Rows { stream, tag } => {
            let options = format_options(session);
            let fields = Arc::new(fields_for(&stream.schema(), format, Some(options))?);
            let row_fields = fields.clone();
            let rows = stream
                .map(move |batch| {
                    let rows = match batch {
                        Ok(batch) => encode_batch(&row_fields, &batch),
                        Err(e) => vec![Err(stream_error(&e))],
                    };
                    stream::iter(rows)
                })
                .flatten();
            let mut response = QueryResponse::new(fields, rows);
            response.set_command_tag(tag);
            Response::Query(response)
        }
        Outcome::Done { tag, reported } => {
            if let Some((name, value)) = reported {
                client
                    .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                        name, value,
                    )))
                    .await?;
            }
            Response::Execution(Tag::new(tag))
        }
        Outcome::Begin => Response::TransactionStart(Tag::new("BEGIN")),
        Outcome::End { tag } => Response::TransactionEnd(Tag::new(tag)),
        Outcome::CopyOut { stream, format } => {
            Response::CopyOut(copy::copy_out(stream, format, format_options(session))?)
        }
    })
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
        let count = statements.len();
        for (i, statement) in statements.into_iter().enumerate() {
            let outcome = match session.run(statement, transaction(status)).await {
                // As in PostgreSQL, a statement ends before the next one starts: the
                // rows of all but the last are read now, so one that fails while
                // running stops the string there.
                Ok(outcome) if i + 1 < count => match finished(outcome).await {
                    Ok(outcome) => respond(client, &session, outcome, &Format::UnifiedText).await,
                    Err(e) => Err(to_pgwire(e)),
                },
                Ok(outcome) => respond(client, &session, outcome, &Format::UnifiedText).await,
                Err(e) => Err(to_pgwire(e)),
            };
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

/// An outcome whose rows have all been produced (held in memory), or the error that
/// stopped them.
async fn finished(outcome: Outcome) -> Result<Outcome, SqlError> {
    Ok(match outcome {
        Outcome::Rows { stream, tag } => Outcome::Rows {
            stream: collect(stream).await?,
            tag,
        },
        Outcome::CopyOut { stream, format } => Outcome::CopyOut {
            stream: collect(stream).await?,
            format,
        },
        other => other,
    })
}

async fn collect(stream: SendableRecordBatchStream) -> Result<SendableRecordBatchStream, SqlError> {
    let schema = stream.schema();
    let batches: Vec<_> = stream
        .try_collect()
        .await
        .map_err(|e| SqlError::from_datafusion(&e))?;
    Ok(Box::pin(RecordBatchStreamAdapter::new(
        schema,
        stream::iter(batches.into_iter().map(Ok)),
    )))
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
        types: &[Option<Type>],
    ) -> PgWireResult<Option<Prepared>>
    where
        C: ClientInfo + Unpin + Send + Sync,
    {
        let session = session_of(client)?;
        let declared: Vec<Option<DataType>> = types
            .iter()
            .map(|t| {
                t.as_ref()
                    .and_then(crate::engine::parameters::declared_type)
            })
            .collect();
        session
            .prepare_typed(sql, Accept::All, &declared)
            .await
            .map_err(to_pgwire)
    }

    fn get_parameter_types(&self, stmt: &Prepared) -> PgWireResult<Vec<Type>> {
        Ok(stmt
            .parameter_types()
            .map_err(to_pgwire)?
            .into_iter()
            .map(|t| t.and_then(|t| into_pg_type(&t).ok()).unwrap_or(Type::TEXT))
            .collect())
    }

    fn get_result_schema(
        &self,
        stmt: &Prepared,
        column_format: Option<&Format>,
    ) -> PgWireResult<Vec<FieldInfo>> {
        let format = column_format.cloned().unwrap_or_default();
        match stmt.output() {
            Some(schema) => fields_for(schema, &format, None),
            None => Ok(vec![]),
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

    /// Parse, as pgwire's, with the statement's name taken in the session, whose
    /// statements (these and SQL's PREPARE) share one namespace: DEALLOCATE and
    /// DISCARD ALL remove these too, and a name in use is refused (42P05).
    async fn on_parse<C>(&self, client: &mut C, message: Parse) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let session = session_of(client)?;
        let name = message
            .name
            .clone()
            .unwrap_or_else(|| DEFAULT_NAME.to_owned());
        let parsed = StoredStatement::parse(client, &message, self.query_parser()).await?;
        if name != DEFAULT_NAME {
            session.name_protocol_statement(&name).map_err(to_pgwire)?;
        }
        match parsed {
            Some(statement) => client.portal_store().put_statement(Arc::new(statement)),
            None => client.portal_store().put_empty_statement(&name),
        }
        client
            .send(PgWireBackendMessage::ParseComplete(ParseComplete::new()))
            .await?;
        Ok(())
    }

    /// Close, as pgwire's, with a statement's name freed in the session too.
    async fn on_close<C>(&self, client: &mut C, message: Close) -> PgWireResult<()>
    where
        C: ClientInfo + ClientPortalStore + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::PortalStore: PortalStore<Statement = Prepared>,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let name = message.name.as_deref().unwrap_or(DEFAULT_NAME);
        match message.target_type {
            TARGET_TYPE_BYTE_STATEMENT => {
                client.portal_store().rm_statement(name);
                if let Ok(session) = session_of(client)
                    && name != DEFAULT_NAME
                {
                    session.forget_protocol_statement(name);
                }
            }
            TARGET_TYPE_BYTE_PORTAL => client.portal_store().rm_portal(name),
            _ => {}
        }
        client
            .send(PgWireBackendMessage::CloseComplete(CloseComplete::new()))
            .await?;
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
        check_statement(client, statement_name)?;
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
            TARGET_TYPE_BYTE_STATEMENT => match check_statement(client, name)
                .ok()
                .and_then(|()| client.portal_store().get_statement(name))
            {
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
        let outcome = session
            .run_prepared(
                &portal.statement.statement,
                transaction(client.transaction_status()),
                |types| decode_parameters(portal, types).map(Some),
            )
            .await
            .map_err(to_pgwire)?;
        respond(client, &session, outcome, &portal.result_column_format).await
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
fn decode_parameters(
    portal: &Portal<Prepared>,
    inferred: &[Option<DataType>],
) -> Result<ParamValues, SqlError> {
    if portal.parameter_len() != inferred.len() {
        return Err(SqlError::new(
            code::PROTOCOL_VIOLATION,
            format!(
                "bind message supplies {} parameters, but prepared statement requires {}",
                portal.parameter_len(),
                inferred.len()
            ),
        ));
    }
    let inferred_refs: Vec<Option<&DataType>> = inferred.iter().map(|t| t.as_ref()).collect();
    // Which format the bad value came in decides the code, as in PostgreSQL.
    let binary = (0..portal.parameter_len()).any(|i| portal.parameter_format.is_binary(i));
    let fallback = if binary {
        code::INVALID_BINARY_REPRESENTATION
    } else {
        code::INVALID_TEXT_REPRESENTATION
    };
    arrow_pg::datatypes::df::deserialize_parameters(portal, &inferred_refs).map_err(|e| match e {
        PgWireError::UserError(info) => {
            let mut e = SqlError::new(code::known(&info.code).unwrap_or(fallback), info.message);
            e.detail = info.detail;
            e.hint = info.hint;
            e
        }
        other => SqlError::new(fallback, format!("invalid parameter value: {other}")),
    })
}

/// Refuses (26000) a statement name the session no longer has (DEALLOCATE or
/// DISCARD ALL removed it, though the protocol's store still holds it).
fn check_statement<C: ClientInfo>(client: &C, name: &str) -> PgWireResult<()> {
    match session_of(client) {
        Ok(session) if name != DEFAULT_NAME && !session.has_protocol_statement(name) => {
            Err(PgWireError::StatementNotFound(name.to_owned()))
        }
        _ => Ok(()),
    }
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
