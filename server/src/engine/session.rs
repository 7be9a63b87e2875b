//! One connection's view of the engine ([`Session`]): its user, settings and
//! DataFusion context; parsing, planning under the policy, and execution.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use amar_catalog::statistics::IndicatorView;
use amar_policies::enforce::Report;
use amar_policies::{SessionAccess, User};
use chrono::{DateTime, Utc};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::LogicalPlan;
use datafusion::prelude::{SQLOptions, SessionContext};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement;

use super::planned::{Planned, Pushed};
use super::{Engine, Peer, SYSTEM_SCHEMAS, Settings, SqlError, TURN_WAIT, TableEntry, code};
use super::{audited, cursor, named, output, run, sql, timeout};
use crate::audit::AuditEntry;

/// The definition of the indicator a scan reads (as this session sees it: the
/// public's is the disclosure-controlled one, denied columns are left out).
fn definition_of(
    scan: &datafusion::logical_expr::TableScan,
) -> datafusion::error::Result<Option<LogicalPlan>> {
    use datafusion::logical_expr::{Expr, LogicalPlanBuilder};
    let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source) else {
        return Ok(None);
    };
    if let Some(view) = IndicatorView::of(provider.as_ref()) {
        return Ok(Some(view.definition().clone()));
    }
    let Some(without) = provider.downcast_ref::<amar_catalog::visible::WithoutColumns>() else {
        return Ok(None);
    };
    let Some(view) = IndicatorView::of(without.inner().as_ref()) else {
        return Ok(None);
    };
    let definition = view.definition();
    let columns = without
        .kept()
        .iter()
        .map(|i| {
            Expr::Column(datafusion::common::Column::from(
                definition.schema().qualified_field(*i),
            ))
        })
        .collect::<Vec<_>>();
    Ok(Some(
        LogicalPlanBuilder::from(definition.clone())
            .project(columns)?
            .build()?,
    ))
}

/// An indicator's view as one reader reads it (`plan`: its definition inlined with
/// their row filters), as rows kept for that plan where they can be (see
/// `amar_catalog::statistics`' `kept`).
fn kept_of(
    scan: &datafusion::logical_expr::TableScan,
    plan: LogicalPlan,
) -> datafusion::error::Result<LogicalPlan> {
    let Ok(provider) = datafusion::datasource::source_as_provider(&scan.source) else {
        return Ok(plan);
    };
    let view = IndicatorView::of(provider.as_ref()).or_else(|| {
        provider
            .downcast_ref::<amar_catalog::visible::WithoutColumns>()
            .and_then(|without| IndicatorView::of(without.inner().as_ref()))
    });
    match view {
        Some(view) => view.kept(plan),
        None => Ok(plan),
    }
}

/// An EXPLAIN shows the indicator's own plan, not a scan of kept rows.
fn as_defined(
    _: &datafusion::logical_expr::TableScan,
    plan: LogicalPlan,
) -> datafusion::error::Result<LogicalPlan> {
    Ok(plan)
}

/// The read a DESCRIBE stands for: `DESCRIBE t` reads `t`, `DESCRIBE <query>` the
/// query.
fn described(statement: &Statement) -> Option<Statement> {
    use datafusion::sql::sqlparser::ast::DescribeAlias;
    match statement {
        Statement::ExplainTable {
            describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
            table_name,
            ..
        } => sql::parse(&format!("SELECT * FROM {table_name}"))
            .ok()?
            .into_iter()
            .next(),
        Statement::Explain {
            describe_alias: DescribeAlias::Describe | DescribeAlias::Desc,
            statement,
            ..
        } => Some(statement.as_ref().clone()),
        _ => None,
    }
}

/// Whether this user may see the plan of `plan` (42501 if not). A plan's text and
/// its run-time counts are computed on every row a scan reads, before any row
/// filter or suppression: `EXPLAIN ANALYZE` of a row-filtered read counts other
/// provinces' rows, and the public role's plans run over cells it must not see.
fn explainable(
    plan: &LogicalPlan,
    access: &amar_policies::UserAccess,
    report: &Report,
) -> Result<(), SqlError> {
    if access.is_admin() {
        return Ok(());
    }
    let analyze = matches!(plan, LogicalPlan::Analyze(_));
    if !analyze && !matches!(plan, LogicalPlan::Explain(_)) {
        return Ok(());
    }
    if access.user().is_public() {
        return Err(SqlError::new(
            code::INSUFFICIENT_PRIVILEGE,
            "permission denied: EXPLAIN is not available to the public role (plans of published statistics are computed on cells it may not see)",
        ));
    }
    if analyze && !report.filtered.is_empty() {
        return Err(SqlError::new(
            code::INSUFFICIENT_PRIVILEGE,
            format!(
                "permission denied: EXPLAIN ANALYZE counts rows your row filter hides (on {}); use EXPLAIN without ANALYZE",
                report.filtered.join(", ")
            ),
        ));
    }
    Ok(())
}

/// One connection's view of the engine.
pub struct Session {
    pub id: u64,
    pub user: User,
    pub peer: Peer,
    pub(super) ctx: SessionContext,
    pub(super) settings: Arc<Mutex<Arc<Settings>>>,
    pub(super) cursors: Arc<cursor::Cursors>,
    /// Statements prepared with SQL's PREPARE.
    pub(super) named: named::NamedStatements,
    /// The user's policy decisions, cached for the session.
    pub(super) access: Arc<SessionAccess>,
    pub(super) engine: Arc<Engine>,
    /// Cancelled by a cancel request; replaced by a fresh one after.
    pub(super) cancel: Mutex<tokio_util::sync::CancellationToken>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("id", &self.id)
            .field("user", &self.user.name)
            .finish_non_exhaustive()
    }
}

impl Session {
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Stops the statements running in this session now (57014); later ones run.
    pub fn cancel_running(&self) {
        let mut token = self.cancel.lock().unwrap_or_else(|e| e.into_inner());
        token.cancel();
        *token = tokio_util::sync::CancellationToken::new();
    }

    fn cancel_token(&self) -> tokio_util::sync::CancellationToken {
        self.cancel
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The session's SQL cursors (`DECLARE … CURSOR`).
    pub fn cursors(&self) -> &cursor::Cursors {
        &self.cursors
    }

    /// Parses SQL as PostgreSQL clients write it.
    /// A statement that does not parse is audited here, with its text.
    pub fn parse(&self, sql: &str) -> Result<Vec<Statement>, SqlError> {
        let arrived = (Utc::now(), Instant::now());
        let parsed = if let Err(e) = self.check_standing() {
            Err(e)
        } else if sql.contains('\u{FFFD}') {
            // The front end replaced bytes that were not UTF-8: refuse rather than run
            // a statement that is not what the client sent.
            Err(SqlError::new(
                code::CHARACTER_NOT_IN_REPERTOIRE,
                "invalid byte sequence for encoding \"UTF8\" (or a U+FFFD replacement character) in the statement",
            ))
        } else if sql.len() > MAX_SQL_BYTES {
            Err(SqlError::new(
                code::PROGRAM_LIMIT_EXCEEDED,
                format!(
                    "statement is too long ({} bytes; the limit is {MAX_SQL_BYTES})",
                    sql.len()
                ),
            ))
        } else {
            sql::parse(sql)
        };
        if let Err(e) = &parsed {
            // Keep the log readable: a 4 MiB statement is logged by its head.
            let text = match sql.char_indices().nth(MAX_LOGGED_CHARS) {
                Some((cut, _)) => format!("{}…", &sql[..cut]),
                None => sql.to_string(),
            };
            self.audit(&text, arrived, &Report::default(), "none", 0, 0, Some(e));
        }
        parsed
    }

    /// Refuses (28000, which ends the connection) once the user has been disabled or
    /// their password changed since this session signed in: a revoked person keeps
    /// no open door.
    pub fn check_standing(&self) -> Result<(), SqlError> {
        match self.engine.users.lookup(&self.user.name) {
            Some(now) if !now.disabled && now.verifier == self.user.verifier => Ok(()),
            _ => Err(SqlError::new(
                code::INVALID_AUTHORIZATION,
                format!(
                    "the session of user \"{}\" has ended: the user was disabled or their password changed; sign in again",
                    self.user.name
                ),
            )),
        }
    }

    /// Writes one audit entry for this session.
    #[allow(clippy::too_many_arguments)]
    pub fn audit(
        &self,
        statement: &str,
        (at, started): (DateTime<Utc>, Instant),
        report: &Report,
        decision: &str,
        rows: u64,
        bytes: u64,
        error: Option<&SqlError>,
    ) {
        self.engine.audit.record(self.entry(
            statement,
            at,
            started.elapsed(),
            report,
            decision,
            rows,
            bytes,
            error,
        ));
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn entry(
        &self,
        statement: &str,
        at: DateTime<Utc>,
        took: Duration,
        report: &Report,
        decision: &str,
        rows: u64,
        bytes: u64,
        error: Option<&SqlError>,
    ) -> AuditEntry {
        AuditEntry {
            at,
            session: self.id,
            user: self.user.name.clone(),
            client: self.peer.addr.to_string(),
            protocol: self.peer.protocol.to_string(),
            application: self
                .settings()
                .get("application_name")
                .ok()
                .filter(|a| !a.is_empty())
                .unwrap_or_else(|| self.peer.application.clone()),
            statement: statement.to_string(),
            objects: report.objects.clone(),
            decision: decision.to_string(),
            rows,
            bytes,
            duration_ms: took.as_secs_f64() * 1000.0,
            sqlstate: error.map(|e| e.code.to_string()),
            error: error.map(|e| e.message.clone()),
        }
    }

    /// The one planning function: a statement to a logical plan this user may run.
    /// Statements that would change data or definitions are refused (25006). The
    /// statement path ([`run`]) audits the statement, refused or run.
    pub async fn plan(&self, statement: &Statement) -> Result<Planned, SqlError> {
        self.plan_typed(statement, Arc::from([])).await
    }

    /// [`Self::plan`] with the parameter types a client declared (the protocol's
    /// Parse message), which decide the types DataFusion cannot infer.
    pub async fn plan_typed(
        &self,
        statement: &Statement,
        declared: Arc<[Option<DataType>]>,
    ) -> Result<Planned, SqlError> {
        // Read before the decisions, so that a reload (or a release, or a source's
        // new tables) meanwhile only plans again.
        let generation = self.engine.plan_generation();
        // DESCRIBE shows a table's or a query's columns without scanning anything:
        // what it describes is planned (and refused) as a read first.
        if let Some(described) = described(statement) {
            Box::pin(self.plan(&described)).await?;
        }
        // set_config('name', 'value', …) in a query sets the parameter, as SET does.
        let mut with_values;
        let statement = if sql::calls_set_config(statement) {
            with_values = statement.clone();
            for set in sql::take_set_configs(&mut with_values) {
                self.update_settings(|s| s.set(&set.name, &set.value))?;
            }
            &with_values
        } else {
            statement
        };
        let state = self.ctx.state();
        let rewritten = self.engine.rewriter.rewrite(statement, &self.user.name);
        let plan = state
            .statement_to_plan(DfStatement::Statement(Box::new(rewritten)))
            .await?;
        let plan = super::parameters::typed(plan, &declared)?;
        SQLOptions::new()
            .with_allow_ddl(false)
            .with_allow_dml(false)
            .with_allow_statements(false)
            .verify_plan(&plan)?;
        let default_schema = state.config_options().catalog.default_schema.clone();
        let parse = |sql: &str, schema: &datafusion::common::DFSchema| {
            state.create_logical_expr(sql, schema)
        };
        let access = self.access.current();
        let planner = amar_policies::enforce::Planner {
            default_schema: &default_schema,
            definer_schema: amar_catalog::DEFAULT_SCHEMA,
            parse: &parse,
            definer: &definition_of,
            keep: if matches!(plan, LogicalPlan::Explain(_) | LogicalPlan::Analyze(_)) {
                &as_defined
            } else {
                &kept_of
            },
            mask_key: &self.engine.mask_key,
        };
        let int4 = output::int4_columns(&plan);
        let (plan, report) = amar_policies::enforce::enforce(plan, &access, &planner)?;
        explainable(&plan, &access, &report)?;
        let schema = plan.schema().as_arrow().clone();
        let names = output::postgres_names(statement, schema.fields().len());
        let output = output::output_schema(&schema, &names, &self.settings().time_zone(), &int4);
        Ok(Planned {
            pushed: Pushed::new(plan.clone()),
            plan,
            output,
            report: Arc::new(report),
            params: None,
            parsed: Arc::new(statement.clone()),
            declared,
            generation,
        })
    }

    /// A prepared statement planned under an older policy or over tables since
    /// replaced, planned again under the one in force over the tables served now (so
    /// a withdrawn table, a new row filter or a snapshot's new copy reaches it at its
    /// next execution), with its values bound again.
    async fn replan(&self, old: Planned) -> Result<Planned, SqlError> {
        let fresh = self.current_plan(&old).await?;
        match old.params {
            Some(params) => fresh.bind(params),
            None => Ok(fresh),
        }
    }

    /// `planned` if it is current; otherwise the statement it was prepared from
    /// planned again, unbound. The new plan is kept with the
    /// statement, so its later executions do not plan again. A plan whose columns or
    /// parameter types would change is refused, as PostgreSQL refuses it
    /// ([`CHANGED_RESULT`]); a timestamp column's time zone may change (it is the
    /// session's, and a value's type is the same).
    pub(crate) async fn current_plan(&self, planned: &Planned) -> Result<Planned, SqlError> {
        let generation = self.engine.plan_generation();
        if planned.generation == generation {
            return Ok(planned.clone());
        }
        if let Some(fresh) = planned
            .pushed
            .replanned()
            .filter(|fresh| fresh.generation == generation)
        {
            return Ok(fresh);
        }
        let fresh = self
            .plan_typed(&planned.parsed, planned.declared.clone())
            .await?;
        let same_type = |a: &DataType, b: &DataType| match (a, b) {
            (DataType::Timestamp(x, Some(_)), DataType::Timestamp(y, Some(_))) => x == y,
            _ => a == b,
        };
        let same_columns = |a: &SchemaRef, b: &SchemaRef| {
            a.fields().len() == b.fields().len()
                && a.fields()
                    .iter()
                    .zip(b.fields())
                    .all(|(x, y)| x.name() == y.name() && same_type(x.data_type(), y.data_type()))
        };
        if !same_columns(&planned.output, &fresh.output)
            || planned.parameter_types()? != fresh.parameter_types()?
        {
            return Err(SqlError::new(code::FEATURE_NOT_SUPPORTED, CHANGED_RESULT));
        }
        planned.pushed.keep_replanned(&fresh);
        self.engine.metrics().planned_again();
        Ok(fresh)
    }

    /// Optimises and runs a plan, streaming its batches in the output schema. The
    /// session's `statement_timeout` covers the whole stream.
    ///
    /// The statement's audit entry, carried by `ledger`, is written when the stream
    /// ends (or fails, or is dropped), with the rows and bytes it returned; or now,
    /// if it cannot start; or when this is dropped before it starts.
    pub(crate) async fn execute(
        &self,
        planned: Planned,
        mut ledger: run::Ledger<'_>,
    ) -> Result<SendableRecordBatchStream, SqlError> {
        ledger.reads(planned.report.clone());
        if let Err(e) = self.check_standing() {
            return Err(ledger.deny(e));
        }
        let planned = if planned.generation == self.engine.plan_generation() {
            planned
        } else {
            match self.replan(planned).await {
                Ok(planned) => planned,
                Err(e) => return Err(ledger.fail(e)),
            }
        };
        ledger.reads(planned.report.clone());
        // The session's statement_timeout, never beyond the server's.
        let limit = match (
            self.settings().statement_timeout(),
            self.engine.statement_timeout,
        ) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        let turn = match self
            .engine
            .turn(&self.user.name, limit.unwrap_or(TURN_WAIT))
            .await
        {
            Ok(turn) => turn,
            Err(e) => return Err(ledger.fail(e)),
        };
        // Counted as running until its stream ends or is dropped.
        let running = (self.engine.metrics().running(), turn);
        let decision = if self.access.current().is_admin() {
            "allowed".to_string()
        } else {
            planned.report.decision()
        };
        ledger.decide(decision);
        let stream = async {
            let pushed = match &planned.params {
                Some(params) => match planned.pushed.ready(&self.ctx).await {
                    Some(ready) => {
                        self.engine.metrics().planned_once();
                        Some(Pushed::execute(ready, params, &self.ctx).await?)
                    }
                    None => None,
                },
                None => None,
            };
            let batches = match pushed {
                Some(batches) => batches,
                None => {
                    let df = self.ctx.execute_logical_plan(planned.plan).await?;
                    df.execute_stream().await?
                }
            };
            Ok::<_, SqlError>(output::adapt(batches, planned.output))
        }
        .await;
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => return Err(ledger.fail(e)),
        };
        let stream = match limit {
            Some(limit) => timeout::limit(stream, limit),
            None => stream,
        };
        let stream = timeout::cancelable(stream, self.cancel_token());
        let (entry, started) = ledger.into_entry();
        Ok(Box::pin(audited::Audited::new(
            stream,
            self.engine.audit.clone(),
            entry,
            started,
            running,
        )))
    }

    /// Every table this session can see.
    pub async fn tables(&self) -> Result<Vec<TableEntry>, SqlError> {
        use datafusion::common::Constraint;
        use datafusion::datasource::TableType;
        let Some(catalog) = self.ctx.catalog(amar_catalog::DATABASE) else {
            return Ok(vec![]);
        };
        let mut out = vec![];
        let mut schemas = catalog.schema_names();
        schemas.sort();
        for schema_name in schemas {
            let Some(schema) = catalog.schema(&schema_name) else {
                continue;
            };
            let mut names = schema.table_names();
            names.sort();
            for name in names {
                let Some(table) = schema.table(&name).await? else {
                    continue;
                };
                let arrow = table.schema();
                let primary_key = table
                    .constraints()
                    .and_then(|c| {
                        c.iter().find_map(|c| match c {
                            Constraint::PrimaryKey(cols) => Some(cols.clone()),
                            _ => None,
                        })
                    })
                    .unwrap_or_default()
                    .into_iter()
                    .filter_map(|i| arrow.fields().get(i).map(|f| f.name().clone()))
                    .collect();
                let kind = if SYSTEM_SCHEMAS.contains(&schema_name.as_str()) {
                    "SYSTEM TABLE"
                } else if table.table_type() == TableType::View {
                    "VIEW"
                } else {
                    "TABLE"
                };
                out.push(TableEntry {
                    schema: schema_name.clone(),
                    name,
                    kind,
                    arrow,
                    primary_key,
                });
            }
        }
        Ok(out)
    }

    /// The current settings (shared: a change makes a new copy).
    pub fn settings(&self) -> Arc<Settings> {
        self.settings
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Changes settings and applies the ones the engine honours.
    pub fn update_settings<T>(
        &self,
        f: impl FnOnce(&mut Settings) -> Result<T, SqlError>,
    ) -> Result<T, SqlError> {
        let result = {
            let mut settings = self.settings.lock().unwrap_or_else(|e| e.into_inner());
            let mut next = Settings::clone(&settings);
            let result = f(&mut next)?;
            *settings = Arc::new(next);
            result
        };
        self.apply_settings();
        Ok(result)
    }

    /// Pushes time zone and default schema into the DataFusion session. Like
    /// PostgreSQL, schemas in `search_path` that do not exist are skipped.
    pub(super) fn apply_settings(&self) {
        let settings = self.settings();
        let catalog = self.engine.catalog.provider();
        let schema = settings
            .search_path()
            .into_iter()
            .find(|s| catalog.schema(s).is_some())
            .unwrap_or_else(|| amar_catalog::DEFAULT_SCHEMA.to_string());
        let state = self.ctx.state_ref();
        let mut state = state.write();
        let options = state.config_mut().options_mut();
        options.execution.time_zone = Some(settings.time_zone());
        options.catalog.default_schema = schema;
    }
}

/// A session's settings as the catalog reads them (`current_setting`, `pg_settings`).
pub(super) struct SharedSettings(pub Arc<Mutex<Arc<Settings>>>);

impl amar_catalog::pg::compat::SettingsCatalog for SharedSettings {
    fn list(&self) -> Vec<(String, String, String)> {
        self.current().all()
    }

    fn get(&self, name: &str) -> Option<String> {
        self.current().get(name).ok()
    }
}

impl SharedSettings {
    fn current(&self) -> Arc<Settings> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The longest SQL text accepted: 4 MiB, several times the longest statement BI tools
/// generate (a dashboard filter with thousands of values).
/// Why a prepared statement planned again is refused (0A000), in PostgreSQL's words.
pub const CHANGED_RESULT: &str = "cached plan must not change result type (the policy or the source changed the statement's columns; prepare it again)";

pub const MAX_SQL_BYTES: usize = 4 * 1024 * 1024;

/// How much of a statement that does not parse goes to the audit log.
const MAX_LOGGED_CHARS: usize = 64 * 1024;
