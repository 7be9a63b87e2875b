//! The FlightSqlService: statements, prepared statements and metadata commands.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::flight_service_server::FlightService;
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, Any, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetPrimaryKeys, CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables,
    CommandGetXdbcTypeInfo, CommandPreparedStatementQuery, CommandStatementQuery,
    DoPutPreparedStatementResult, ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use bytes::Bytes;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ParamValues;
use datafusion::execution::SendableRecordBatchStream;
use datafusion::scalar::ScalarValue;
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use tonic::metadata::MetadataValue;
use tonic::{Request, Response, Status, Streaming};

use super::auth::Tokens;
use super::metadata;
use crate::engine::{Accept, Engine, Outcome, Prepared, Session, SqlError, Transaction, code};

type DoGetStream =
    Pin<Box<dyn Stream<Item = Result<arrow_flight::FlightData, Status>> + Send + 'static>>;

/// The one mapping from engine errors to gRPC status: the code by class, the
/// message as pgwire sends it, and the SQLSTATE in `x-amar-sqlstate`.
pub fn to_status(e: SqlError) -> Status {
    let mut status = Status::new(tonic::Code::from_i32(e.grpc_code()), e.message.clone());
    if let Ok(value) = MetadataValue::try_from(e.code) {
        status.metadata_mut().insert("x-amar-sqlstate", value);
    }
    status
}

/// The call header with which a client asks for Arrow's view types (`Utf8View`,
/// `BinaryView`) where the engine produced them (`true`). Without it results go out in
/// the plain types every Arrow client reads (`Utf8`, `Binary`), in the bytes the data
/// takes: a view column carries 16 bytes per value besides the text.
pub const VIEW_TYPES_HEADER: &str = "x-amar-arrow-view-types";

/// Whether the call asks for view types.
fn wants_views(metadata: &tonic::metadata::MetadataMap) -> bool {
    metadata
        .get(VIEW_TYPES_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            matches!(
                v.trim().to_ascii_lowercase().as_str(),
                "true" | "on" | "1" | "yes"
            )
        })
}

/// `data_type` with view types replaced by their plain forms, inside lists, structs
/// and maps too.
fn plain_type(data_type: &DataType) -> DataType {
    use datafusion::arrow::datatypes::Fields;
    let field =
        |f: &Arc<Field>| Arc::new(f.as_ref().clone().with_data_type(plain_type(f.data_type())));
    match data_type {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) | DataType::ListView(f) => DataType::List(field(f)),
        DataType::LargeList(f) | DataType::LargeListView(f) => DataType::LargeList(field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(field(f), *n),
        DataType::Struct(fields) => DataType::Struct(fields.iter().map(field).collect::<Fields>()),
        DataType::Map(f, sorted) => DataType::Map(field(f), *sorted),
        other => other.clone(),
    }
}

/// The schema a client gets: view types kept when it asked for them (`views`),
/// plain otherwise.
pub fn wire_schema(schema: &SchemaRef, views: bool) -> SchemaRef {
    if views {
        return schema.clone();
    }
    let plain: Vec<Field> = schema
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_data_type(plain_type(f.data_type())))
        .collect();
    if plain
        .iter()
        .zip(schema.fields())
        .all(|(a, b)| a.data_type() == b.data_type())
    {
        return schema.clone();
    }
    Arc::new(Schema::new_with_metadata(plain, schema.metadata().clone()))
}

/// A statement GetFlightInfo planned, kept for the DoGet its ticket names, so that a
/// statement is planned once, not in both calls. Kept for [`TICKET_LIFE`] (a client
/// may fetch a ticket again, as Flight allows); a plan made under a policy or release,
/// or over a source's tables, since replaced is planned again when it runs, as a
/// prepared statement is.
struct PlannedTicket {
    session: u64,
    prepared: Prepared,
    at: std::time::Instant,
}

/// How long a planned statement's ticket can be fetched.
const TICKET_LIFE: std::time::Duration = std::time::Duration::from_secs(300);
/// Planned tickets a session holds at most; a new one replaces its oldest.
const TICKETS_PER_SESSION: usize = 64;
/// The start of a planned statement's ticket (no SQL text starts with a NUL byte);
/// any other ticket is a statement's text, planned when it is fetched.
const PLANNED_TICKET: &[u8] = b"\0amar-planned:";

/// A statement prepared by one session.
struct PreparedStatement {
    session: u64,
    prepared: Prepared,
    parameter_types: Vec<Option<DataType>>,
    parameters: Option<ParamValues>,
}

pub struct AmarFlightSql {
    tokens: Arc<Tokens>,
    prepared: RwLock<HashMap<Bytes, PreparedStatement>>,
    planned: std::sync::Mutex<HashMap<Bytes, PlannedTicket>>,
}

impl AmarFlightSql {
    pub fn new(engine: Arc<Engine>) -> Self {
        Self {
            tokens: Arc::new(Tokens::new(engine)),
            prepared: RwLock::new(HashMap::new()),
            planned: std::sync::Mutex::new(HashMap::new()),
        }
    }

    fn session<T>(&self, request: &Request<T>) -> Result<Arc<Session>, Status> {
        self.tokens
            .session(request.metadata(), request.remote_addr())
    }

    /// Prepares one query; Flight SQL carries queries, not session commands (the
    /// session refuses those, and audits the refusal).
    async fn prepare(&self, session: &Session, sql: &str) -> Result<Prepared, Status> {
        let sql = numbered_parameters(sql);
        match session.prepare(&sql, Accept::Queries).await {
            Ok(Some(prepared)) => Ok(prepared),
            Ok(None) => Err(Status::invalid_argument("the statement is empty")),
            // The request, not the server, is at fault: INVALID_ARGUMENT, as before
            // the statement path took the refusal over.
            Err(e) if e.message == crate::engine::run::QUERIES_ONLY => {
                let mut status = Status::invalid_argument(e.message);
                if let Ok(value) = MetadataValue::try_from(e.code) {
                    status.metadata_mut().insert("x-amar-sqlstate", value);
                }
                Err(status)
            }
            Err(e) => Err(to_status(e)),
        }
    }

    /// The columns a prepared query returns.
    fn output(prepared: &Prepared) -> Result<SchemaRef, Status> {
        prepared
            .output()
            .cloned()
            .ok_or_else(|| Status::internal("a prepared query has no result columns"))
    }

    /// Runs a prepared query with its values (`None`: as prepared) and streams it.
    async fn run(
        session: &Session,
        prepared: &Prepared,
        values: Option<ParamValues>,
        views: bool,
    ) -> Result<Response<DoGetStream>, Status> {
        let outcome = session
            .run_prepared(prepared, Transaction::Idle, |types| match values {
                Some(values) => Ok(Some(values)),
                None if types.is_empty() => Ok(None),
                None => Err(SqlError::new(
                    code::UNDEFINED_PARAMETER,
                    "bind the statement's parameters (DoPut) before running it",
                )),
            })
            .await
            .map_err(to_status)?;
        match outcome {
            Outcome::Rows { stream, .. } => {
                let schema = wire_schema(&stream.schema(), views);
                Ok(Response::new(Self::stream(schema, stream)))
            }
            other => Err(Status::internal(format!(
                "a query answered {other:?}, not rows"
            ))),
        }
    }

    fn flight_info(
        schema: &Schema,
        ticket: Vec<u8>,
        descriptor: FlightDescriptor,
    ) -> Result<FlightInfo, Status> {
        let endpoint = FlightEndpoint::new().with_ticket(Ticket {
            ticket: ticket.into(),
        });
        Ok(FlightInfo::new()
            .try_with_schema(schema)
            .map_err(|e| Status::internal(format!("cannot encode the result schema: {e}")))?
            .with_endpoint(endpoint)
            .with_descriptor(descriptor))
    }

    /// Streams batches as Flight data, as they are produced, in `schema`'s types
    /// (a view column cast to its plain type, by the engine's own [`adapt`]).
    ///
    /// [`adapt`]: crate::engine::output::adapt
    fn stream(schema: SchemaRef, batches: SendableRecordBatchStream) -> DoGetStream {
        let batches = crate::engine::output::adapt(batches, schema.clone())
            .map_err(|e| FlightError::Tonic(Box::new(to_status(SqlError::from_datafusion(&e)))));
        let encoded = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(|e| match e {
                FlightError::Tonic(status) => *status,
                other => Status::internal(other.to_string()),
            });
        Box::pin(encoded)
    }

    /// A metadata request's answer, computed and audited by the session like a
    /// statement (the request and its arguments, the rows returned), then sent as
    /// one batch.
    async fn metadata_answer(
        session: &Session,
        request: String,
        answer: impl std::future::Future<Output = Result<RecordBatch, SqlError>>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = session
            .metadata(format!("-- Flight SQL {request}"), answer)
            .await
            .map_err(to_status)?;
        Self::one_batch(Ok::<_, Status>(batch))
    }

    fn one_batch<E: std::fmt::Display>(
        batch: Result<RecordBatch, E>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = batch.map_err(|e| Status::internal(e.to_string()))?;
        let schema = batch.schema();
        let stream = FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(|e| Status::internal(e.to_string()));
        Ok(Response::new(Box::pin(stream)))
    }

    fn ipc_schema(schema: &Schema) -> Result<Bytes, Status> {
        let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
            .try_into()
            .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
        Ok(message.0)
    }

    /// Keeps a statement planned for `session` and returns its ticket; drops tickets
    /// past their life, and the session's oldest beyond [`TICKETS_PER_SESSION`].
    fn keep_planned(&self, session: &Session, prepared: Prepared) -> Bytes {
        let mut handle = PLANNED_TICKET.to_vec();
        handle.extend_from_slice(&rand::random::<[u8; 16]>());
        let handle = Bytes::from(handle);
        let mut planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
        planned.retain(|_, t| t.at.elapsed() < TICKET_LIFE);
        let mut mine: Vec<(std::time::Instant, Bytes)> = planned
            .iter()
            .filter(|(_, t)| t.session == session.id)
            .map(|(h, t)| (t.at, h.clone()))
            .collect();
        if mine.len() >= TICKETS_PER_SESSION {
            mine.sort();
            for (_, old) in &mine[..=mine.len() - TICKETS_PER_SESSION] {
                planned.remove(old);
            }
        }
        planned.insert(
            handle.clone(),
            PlannedTicket {
                session: session.id,
                prepared,
                at: std::time::Instant::now(),
            },
        );
        handle
    }

    /// The statement a ticket names: one planned by GetFlightInfo for this session,
    /// or a statement's text, planned now.
    async fn ticket_statement(&self, session: &Session, handle: &[u8]) -> Result<Prepared, Status> {
        if handle.starts_with(PLANNED_TICKET) {
            let planned = self.planned.lock().unwrap_or_else(|e| e.into_inner());
            return match planned.get(handle) {
                Some(t) if t.session == session.id && t.at.elapsed() < TICKET_LIFE => {
                    Ok(t.prepared.clone())
                }
                _ => Err(Status::not_found(
                    "no such statement ticket in this session (tickets last five minutes); ask GetFlightInfo again",
                )),
            };
        }
        let sql = std::str::from_utf8(handle)
            .map_err(|_| Status::invalid_argument("the ticket is not a statement"))?;
        self.prepare(session, sql).await
    }

    /// Takes the prepared statement `handle` for `session`, or NOT_FOUND.
    fn with_prepared<T>(
        &self,
        handle: &Bytes,
        session: &Session,
        f: impl FnOnce(&mut PreparedStatement) -> Result<T, Status>,
    ) -> Result<T, Status> {
        let mut prepared = self.prepared.write().unwrap_or_else(|e| e.into_inner());
        match prepared.get_mut(handle) {
            Some(p) if p.session == session.id => f(p),
            _ => Err(Status::not_found(
                "no such prepared statement in this session",
            )),
        }
    }
}

/// An error building a metadata answer: the server's fault, not the request's.
fn internal(e: impl std::fmt::Display) -> SqlError {
    SqlError::new(code::INTERNAL_ERROR, e.to_string())
}

/// ADBC and JDBC write parameters as `?`; PostgreSQL's SQL numbers them (`$1`).
/// Question marks in string literals, quoted names and comments stay as they are.
pub fn numbered_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 8);
    let mut chars = sql.chars().peekable();
    let mut n = 0;
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                out.push(c);
                while let Some(d) = chars.next() {
                    out.push(d);
                    if d == c {
                        // A doubled quote is an escaped quote, not the end.
                        if chars.peek() == Some(&c) {
                            out.push(c);
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                out.push(c);
                for d in chars.by_ref() {
                    out.push(d);
                    if d == '\n' {
                        break;
                    }
                }
            }
            '/' if chars.peek() == Some(&'*') => {
                out.push(c);
                let mut previous = ' ';
                for d in chars.by_ref() {
                    out.push(d);
                    if previous == '*' && d == '/' {
                        break;
                    }
                    previous = d;
                }
            }
            '?' => {
                n += 1;
                out.push_str(&format!("${n}"));
            }
            _ => out.push(c),
        }
    }
    out
}

#[tonic::async_trait]
impl FlightSqlService for AmarFlightSql {
    type FlightService = AmarFlightSql;

    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let authorization = request
            .metadata()
            .get("authorization")
            .ok_or_else(|| Status::unauthenticated("the handshake needs Basic authorization"))?
            .to_str()
            .map_err(|_| Status::unauthenticated("the authorization header is not text"))?
            .to_string();
        let addr: Option<SocketAddr> = request.remote_addr();
        let tokens = self.tokens.clone();
        // Password checks derive keys (PBKDF2): off the async threads.
        let (token, _) = tokio::task::spawn_blocking(move || tokens.login(&authorization, addr))
            .await
            .map_err(|e| Status::internal(e.to_string()))??;
        let output = futures::stream::iter(vec![Ok(HandshakeResponse {
            protocol_version: 0,
            payload: token.clone().into(),
        })]);
        let mut response: Response<Pin<Box<dyn Stream<Item = _> + Send>>> =
            Response::new(Box::pin(output));
        let bearer = MetadataValue::try_from(format!("Bearer {token}"))
            .map_err(|e| Status::internal(e.to_string()))?;
        response.metadata_mut().insert("authorization", bearer);
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request)?;
        let views = wants_views(request.metadata());
        let prepared = self.prepare(&session, &query.query).await?;
        let schema = wire_schema(&Self::output(&prepared)?, views);
        let ticket = TicketStatementQuery {
            statement_handle: self.keep_planned(&session, prepared),
        };
        let info = Self::flight_info(
            schema.as_ref(),
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )?;
        Ok(Response::new(info))
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let views = wants_views(request.metadata());
        let prepared = self
            .ticket_statement(&session, &ticket.statement_handle)
            .await?;
        Self::run(&session, &prepared, None, views).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let session = self.session(&request)?;
        let prepared = self.prepare(&session, &query.query).await?;
        let parameter_types = prepared.parameter_types().map_err(to_status)?;
        let parameter_schema = Schema::new(
            parameter_types
                .iter()
                .enumerate()
                .map(|(i, t)| {
                    Field::new(
                        format!("${}", i + 1),
                        t.clone().unwrap_or(DataType::Utf8),
                        true,
                    )
                })
                .collect::<Vec<_>>(),
        );
        let handle: Bytes = rand::random::<[u8; 16]>().to_vec().into();
        let result = ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.clone(),
            dataset_schema: Self::ipc_schema(
                wire_schema(&Self::output(&prepared)?, wants_views(request.metadata())).as_ref(),
            )?,
            parameter_schema: Self::ipc_schema(&parameter_schema)?,
        };
        self.prepared
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(
                handle,
                PreparedStatement {
                    session: session.id,
                    prepared,
                    parameter_types,
                    parameters: None,
                },
            );
        Ok(result)
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let session = self.session(&request)?;
        let flight_data = request
            .into_inner()
            .map_err(|e| FlightError::Tonic(Box::new(e)));
        let mut batches =
            arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight_data);
        let mut rows = vec![];
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(|e| {
                Status::invalid_argument(format!("cannot read the parameters: {e}"))
            })?;
            if batch.num_rows() > 0 {
                rows.push(batch);
            }
        }
        let handle = query.prepared_statement_handle.clone();
        self.with_prepared(&handle, &session, |p| {
            let total: usize = rows.iter().map(|b| b.num_rows()).sum();
            if total > 1 {
                return Err(Status::invalid_argument(
                    "a query takes one set of parameters; send one row",
                ));
            }
            let Some(batch) = rows.first() else {
                p.parameters = None;
                return Ok(());
            };
            if batch.num_columns() != p.parameter_types.len() {
                return Err(Status::invalid_argument(format!(
                    "the statement has {} parameters, {} were sent",
                    p.parameter_types.len(),
                    batch.num_columns()
                )));
            }
            let mut values = Vec::with_capacity(batch.num_columns());
            for (column, wanted) in batch.columns().iter().zip(&p.parameter_types) {
                let value = ScalarValue::try_from_array(column, 0)
                    .map_err(|e| Status::invalid_argument(e.to_string()))?;
                let value = match wanted {
                    Some(t) if value.data_type() != *t => value.cast_to(t).map_err(|e| {
                        to_status(SqlError::new(
                            code::INVALID_TEXT_REPRESENTATION,
                            format!("parameter cannot be read as {t}: {e}"),
                        ))
                    })?,
                    _ => value,
                };
                values.push(value);
            }
            p.parameters = Some(ParamValues::List(
                values.into_iter().map(Into::into).collect(),
            ));
            Ok(())
        })?;
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let session = self.session(&request)?;
        let views = wants_views(request.metadata());
        let schema = self.with_prepared(&cmd.prepared_statement_handle, &session, |p| {
            Ok(wire_schema(&Self::output(&p.prepared)?, views))
        })?;
        let info = Self::flight_info(&schema, cmd.as_any().encode_to_vec(), request.into_inner())?;
        Ok(Response::new(info))
    }

    async fn do_get_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let (prepared, values) =
            self.with_prepared(&cmd.prepared_statement_handle, &session, |p| {
                Ok((p.prepared.clone(), p.parameters.clone()))
            })?;
        Self::run(&session, &prepared, values, wants_views(request.metadata())).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<(), Status> {
        let session = self.session(&request)?;
        self.with_prepared(&query.prepared_statement_handle, &session, |_| Ok(()))?;
        self.prepared
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&query.prepared_statement_handle);
        Ok(())
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let schema = query.into_builder().schema();
        Ok(Response::new(Self::flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        Self::metadata_answer(&session, "GetCatalogs".to_string(), async {
            let mut builder = query.into_builder();
            builder.append(amar_catalog::DATABASE);
            builder.build().map_err(internal)
        })
        .await
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(Self::flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let command = format!(
            "GetDbSchemas catalog={:?} db_schema_filter_pattern={:?}",
            query.catalog, query.db_schema_filter_pattern
        );
        let session = self.session(&request)?;
        Self::metadata_answer(&session, command, async {
            let mut schemas: Vec<String> = session
                .tables()
                .await?
                .into_iter()
                .map(|t| t.schema)
                .collect();
            schemas.dedup();
            let mut builder = query.into_builder();
            for schema in schemas {
                builder.append(amar_catalog::DATABASE, schema);
            }
            builder.build().map_err(internal)
        })
        .await
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let schema = query.clone().into_builder().schema();
        Ok(Response::new(Self::flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let command = format!(
            "GetTables catalog={:?} db_schema_filter_pattern={:?} table_name_filter_pattern={:?} table_types={:?} include_schema={}",
            query.catalog,
            query.db_schema_filter_pattern,
            query.table_name_filter_pattern,
            query.table_types,
            query.include_schema
        );
        let session = self.session(&request)?;
        Self::metadata_answer(&session, command, async {
            let tables = session.tables().await?;
            let mut builder = query.into_builder();
            for t in tables {
                builder
                    .append(amar_catalog::DATABASE, &t.schema, &t.name, t.kind, &t.arrow)
                    .map_err(internal)?;
            }
            builder.build().map_err(internal)
        })
        .await
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let batch = metadata::table_types().map_err(|e| Status::internal(e.to_string()))?;
        Ok(Response::new(Self::flight_info(
            &batch.schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        Self::metadata_answer(&session, "GetTableTypes".to_string(), async {
            metadata::table_types().map_err(internal)
        })
        .await
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let schema = query.clone().into_builder(&metadata::SQL_INFO).schema();
        Ok(Response::new(Self::flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let command = format!("GetSqlInfo info={:?}", query.info);
        Self::metadata_answer(&session, command, async {
            query
                .into_builder(&metadata::SQL_INFO)
                .build()
                .map_err(internal)
        })
        .await
    }

    async fn get_flight_info_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        Ok(Response::new(Self::flight_info(
            &metadata::primary_keys_schema(),
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_primary_keys(
        &self,
        query: CommandGetPrimaryKeys,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let command = format!(
            "GetPrimaryKeys catalog={:?} db_schema={:?} table={:?}",
            query.catalog, query.db_schema, query.table
        );
        let session = self.session(&request)?;
        Self::metadata_answer(&session, command, async {
            let tables = session.tables().await?;
            let table = tables.iter().find(|t| {
                t.name == query.table
                    && query.db_schema.as_ref().is_none_or(|s| s == &t.schema)
                    && query
                        .catalog
                        .as_ref()
                        .is_none_or(|c| c == amar_catalog::DATABASE)
            });
            metadata::primary_keys(table).map_err(internal)
        })
        .await
    }

    async fn get_flight_info_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        self.session(&request)?;
        let schema = query.into_builder(&metadata::XDBC_TYPES).schema();
        Ok(Response::new(Self::flight_info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )?))
    }

    async fn do_get_xdbc_type_info(
        &self,
        query: CommandGetXdbcTypeInfo,
        request: Request<Ticket>,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        let session = self.session(&request)?;
        let command = format!("GetXdbcTypeInfo data_type={:?}", query.data_type);
        Self::metadata_answer(&session, command, async {
            query
                .into_builder(&metadata::XDBC_TYPES)
                .build()
                .map_err(internal)
        })
        .await
    }

    async fn do_get_fallback(
        &self,
        request: Request<Ticket>,
        message: Any,
    ) -> Result<Response<<Self as FlightService>::DoGetStream>, Status> {
        self.session(&request)?;
        Err(Status::unimplemented(format!(
            "unsupported ticket {}",
            message.type_url
        )))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}

#[cfg(test)]
mod tests {
    use super::numbered_parameters;

    #[test]
    fn question_marks_become_numbered_parameters_outside_literals() {
        assert_eq!(numbered_parameters("SELECT ? + ?"), "SELECT $1 + $2");
        assert_eq!(
            numbered_parameters("SELECT '?', \"a?\", ? -- why?\n, ? /* ? */"),
            "SELECT '?', \"a?\", $1 -- why?\n, $2 /* ? */"
        );
        assert_eq!(
            numbered_parameters("SELECT 'it''s ?', ?"),
            "SELECT 'it''s ?', $1"
        );
    }
}
