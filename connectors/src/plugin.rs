//! Plugin sources: connectors in shared libraries, loaded at run time.
//!
//! A `[[source]] kind = "plugin"` names a library built with `amar-plugin-sdk`.
//! Loading it checks, before calling anything in it, that it exports the entry
//! symbol, that the entry starts with the Amar magic, that it was built for this
//! plugin ABI and for this DataFusion major version. Then it asks the plugin to
//! describe itself, checks the source's options against the options it declares,
//! and opens the source: a schema whose tables cross as `datafusion-ffi` table
//! providers.
//!
//! A library that cannot be loaded, or a source that cannot be opened, makes the
//! source unavailable (with why, in `amar.sources` and in the error of any query
//! that names it); every other source goes on. Libraries stay loaded until the
//! process ends: the plugin's threads and the code of every table it gave out must
//! outlive any query.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use amar_plugin_sdk::{
    ABI_VERSION, DATAFUSION_VERSION, ENTRY_SYMBOL, MAGIC, OpenRequest, OptionSpec, PluginEntry,
    PluginInfo,
};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, Session, TableProvider};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result as DfResult, Statistics};
use datafusion::datasource::TableType;
use datafusion::execution::{SendableRecordBatchStream, TaskContext, TaskContextProvider};
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use datafusion::prelude::SessionContext;
use datafusion_ffi::execution::FFI_TaskContextProvider;
use datafusion_ffi::util::FFI_Result;
use futures::TryStreamExt;

use crate::config::{Mode, PluginOptions};
use crate::error::{ConnectorError, Result};
use crate::source::{Health, Pushdown, Source, SourceTable};

/// A plugin library, checked and loaded for good.
pub struct PluginLibrary {
    pub path: PathBuf,
    pub info: PluginInfo,
    pub abi_version: u32,
    pub datafusion_version: &'static str,
    entry: &'static PluginEntry,
}

impl fmt::Debug for PluginLibrary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginLibrary")
            .field("path", &self.path)
            .field("info", &self.info)
            .finish()
    }
}

/// Libraries loaded so far, by canonical path.
fn loaded() -> &'static Mutex<HashMap<PathBuf, Arc<PluginLibrary>>> {
    static LOADED: OnceLock<Mutex<HashMap<PathBuf, Arc<PluginLibrary>>>> = OnceLock::new();
    LOADED.get_or_init(Default::default)
}

/// The major version of a `major.minor.patch` string.
fn major(version: &str) -> Option<u64> {
    version.split('.').next()?.parse().ok()
}

impl PluginLibrary {
    /// Loads the library at `path` and checks that it is an Amar plugin this server
    /// can use. The error says why not, in words for whoever installed it.
    pub fn load(path: &Path) -> std::result::Result<Arc<PluginLibrary>, String> {
        let canonical = path.canonicalize().map_err(|e| e.to_string())?;
        let mut loaded = loaded().lock().unwrap_or_else(|e| e.into_inner());
        if let Some(library) = loaded.get(&canonical) {
            return Ok(library.clone());
        }
        // SAFETY: loading a library runs its initialisers. That is what installing a
        // plugin means; nothing else of it runs before the checks below.
        let library = unsafe { libloading::Library::new(&canonical) }
            .map_err(|e| format!("not a loadable shared library: {e}"))?;
        // SAFETY: only the address of the symbol is taken here.
        let entry: *const PluginEntry = unsafe {
            match library.get::<*const PluginEntry>(ENTRY_SYMBOL.as_bytes()) {
                Ok(symbol) => Some(*symbol),
                Err(_) => None,
            }
        }
        .filter(|p| !p.is_null())
        .ok_or_else(|| {
            format!("not an Amar plugin: it exports no {ENTRY_SYMBOL} (build it with amar-plugin-sdk's export_plugin!)")
        })?;
        // SAFETY: the header (magic, ABI version, DataFusion version) is frozen
        // across ABI versions; nothing past it is read until the ABI matches.
        let (magic, abi_version, datafusion) = unsafe {
            let magic = std::ptr::read_unaligned(entry as *const [u8; 8]);
            if magic != MAGIC {
                return Err(format!(
                    "not an Amar plugin: its {ENTRY_SYMBOL} does not start with the Amar magic"
                ));
            }
            (
                magic,
                (*entry).abi_version,
                (*entry).datafusion_version.read(),
            )
        };
        debug_assert_eq!(magic, MAGIC);
        if abi_version != ABI_VERSION {
            return Err(format!(
                "built for plugin ABI {abi_version}, and this Amar loads ABI {ABI_VERSION}: rebuild it against this Amar's amar-plugin-sdk"
            ));
        }
        let datafusion =
            datafusion.ok_or_else(|| "its DataFusion version is unreadable".to_string())?;
        if major(datafusion) != major(DATAFUSION_VERSION) {
            return Err(format!(
                "built with DataFusion {datafusion}, and this Amar runs DataFusion {DATAFUSION_VERSION}: the major versions must match; rebuild it against this Amar's amar-plugin-sdk"
            ));
        }
        // SAFETY: the ABI matches, so `describe` has the signature declared here.
        let info = match unsafe { ((*entry).describe)() } {
            FFI_Result::Ok(json) => serde_json::from_str::<PluginInfo>(json.as_str())
                .map_err(|e| format!("its description is not readable: {e}"))?,
            FFI_Result::Err(e) => return Err(format!("it cannot describe itself: {}", e.as_str())),
        };
        // Loaded for good: see the module's notes.
        Box::leak(Box::new(library));
        let library = Arc::new(PluginLibrary {
            path: canonical.clone(),
            info,
            abi_version,
            datafusion_version: datafusion,
            // SAFETY: the library is never unloaded, so the entry lives forever.
            entry: unsafe { &*entry },
        });
        loaded.insert(canonical, library.clone());
        Ok(library)
    }

    /// Checks `options` against the plugin's declared options and opens a source.
    fn open(
        &self,
        source: &str,
        options: &PluginOptions,
        context: &Arc<dyn TaskContextProvider>,
    ) -> std::result::Result<Arc<dyn SchemaProvider>, String> {
        let checked = OptionSpec::check_all(
            &self.info.options,
            &options.options,
            options.base_dir.as_deref(),
        )?;
        let request = serde_json::to_string(&OpenRequest {
            source: source.to_string(),
            options: checked,
        })
        .map_err(|e| e.to_string())?;
        // SAFETY: the ABI was checked at load.
        let opened = unsafe {
            (self.entry.open)(
                request.as_str().into(),
                FFI_TaskContextProvider::from(context),
            )
        };
        let schema = match opened {
            FFI_Result::Ok(schema) => schema,
            FFI_Result::Err(e) => return Err(e.as_str().to_string()),
        };
        // SAFETY: a function of the plugin's DataFusion-FFI structure.
        let version = unsafe { (schema.version)() };
        if version != datafusion_ffi::version() {
            return Err(format!(
                "its tables use datafusion-ffi {version}, and this Amar datafusion-ffi {}",
                datafusion_ffi::version()
            ));
        }
        Ok((&schema).into())
    }
}

/// A source served by a plugin.
pub struct PluginSource {
    name: String,
    options: PluginOptions,
    /// What the plugin decodes scan filters with; it holds only a weak reference.
    context: Arc<SessionContext>,
    /// The open source, or why not and when that was found.
    state: Mutex<std::result::Result<Opened, (String, Instant)>>,
}

/// A source that could not be opened is tried again after this long (when its
/// tables or health are next asked for), not on every look.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(10);

#[derive(Clone)]
struct Opened {
    library: Arc<PluginLibrary>,
    schema: Arc<dyn SchemaProvider>,
}

impl fmt::Debug for PluginSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PluginSource")
            .field("name", &self.name)
            .field("library", &self.options.library)
            .finish()
    }
}

impl PluginSource {
    /// Loads the library and opens the source. Failing either, the source is
    /// unavailable with the reason, and is tried again when its tables are next read.
    pub fn open(name: &str, options: PluginOptions) -> Self {
        let context = Arc::new(SessionContext::new());
        let source = PluginSource {
            name: name.to_string(),
            options,
            context,
            state: Mutex::new(Err((String::new(), Instant::now()))),
        };
        let state = source.try_open();
        *source.state.lock().unwrap_or_else(|e| e.into_inner()) = state;
        source
    }

    fn try_open(&self) -> std::result::Result<Opened, (String, Instant)> {
        let path = &self.options.library;
        let opened = PluginLibrary::load(path)
            .map_err(|e| format!("plugin library {}: {e}", path.display()))
            .and_then(|library| {
                let context = self.context.clone() as Arc<dyn TaskContextProvider>;
                match library.open(&self.name, &self.options, &context) {
                    Ok(schema) => Ok(Opened { library, schema }),
                    Err(e) => Err(format!(
                        "plugin \"{}\" could not open it: {e}",
                        library.info.name
                    )),
                }
            });
        match opened {
            Ok(opened) => {
                tracing::info!(
                    "source \"{}\": plugin \"{}\" {} from {}",
                    self.name,
                    opened.library.info.name,
                    opened.library.info.version,
                    opened.library.path.display()
                );
                Ok(opened)
            }
            Err(e) => {
                tracing::error!("source \"{}\": {e}", self.name);
                Err((e, Instant::now()))
            }
        }
    }

    fn opened(&self) -> Result<Opened> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if let Err((_, when)) = &*state
            && when.elapsed() >= RETRY_AFTER
        {
            *state = self.try_open();
        }
        state
            .clone()
            .map_err(|(message, _)| ConnectorError::Unavailable {
                source_name: self.name.clone(),
                message,
            })
    }

    /// The plugin serving this source, once loaded.
    pub fn library(&self) -> Option<Arc<PluginLibrary>> {
        let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.as_ref().ok().map(|o| o.library.clone())
    }
}

#[async_trait]
impl Source for PluginSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "plugin"
    }

    fn mode(&self) -> Mode {
        Mode::Live
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown::SCANS
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        let opened = self.opened()?;
        let plugin: Arc<str> = opened.library.info.name.as_str().into();
        let mut tables = vec![];
        for name in opened.schema.table_names() {
            let found = opened
                .schema
                .table(&name)
                .await
                .map_err(|e| plugin_error(&self.name, &plugin, e))?;
            let Some(inner) = found else { continue };
            let table = PluginTable::new(self.name.as_str().into(), plugin.clone(), inner);
            let comment = table.schema.metadata().get(crate::COMMENT_KEY).cloned();
            tables.push(SourceTable {
                name,
                provider: Arc::new(table),
                comment,
            });
        }
        Ok(tables)
    }

    async fn health(&self) -> Health {
        let started = Instant::now();
        match self.opened() {
            Ok(opened) => {
                let _ = opened.schema.table_names();
                Health::ok(started.elapsed())
            }
            Err(e) => Health::failed(
                match e {
                    ConnectorError::Unavailable { message, .. } => message,
                    other => other.to_string(),
                },
                started.elapsed(),
            ),
        }
    }
}

/// An error of the plugin, naming the source and the plugin.
fn plugin_error(source: &str, plugin: &str, e: DataFusionError) -> ConnectorError {
    let message = match e {
        DataFusionError::Ffi(m) | DataFusionError::Execution(m) => m,
        other => other.to_string(),
    };
    // The plugin's own DataFusion error, as text once it has crossed.
    let message = message
        .strip_prefix("Execution error: ")
        .map(str::to_string)
        .unwrap_or(message);
    ConnectorError::Plugin {
        source_name: source.to_string(),
        plugin: plugin.to_string(),
        message,
    }
}

fn plugin_df_error(source: &str, plugin: &str, e: DataFusionError) -> DataFusionError {
    match e {
        e @ DataFusionError::External(_) => e,
        e => DataFusionError::External(Box::new(plugin_error(source, plugin, e))),
    }
}

/// Filters that may cross to a plugin: no function calls (the plugin could not
/// decode Amar's own functions), no subqueries, no parameters.
fn crossable(expr: &Expr) -> bool {
    let mut ok = true;
    let _ = expr.apply(|e| {
        ok &= !matches!(
            e,
            Expr::ScalarFunction(_)
                | Expr::AggregateFunction(_)
                | Expr::WindowFunction(_)
                | Expr::ScalarSubquery(_)
                | Expr::Exists(_)
                | Expr::InSubquery(_)
                | Expr::OuterReferenceColumn(..)
                | Expr::Placeholder(_)
                | Expr::ScalarVariable(..)
        );
        Ok(if ok {
            TreeNodeRecursion::Continue
        } else {
            TreeNodeRecursion::Stop
        })
    });
    ok
}

/// A plugin's table, as Amar plans with it.
#[derive(Debug)]
struct PluginTable {
    source: Arc<str>,
    plugin: Arc<str>,
    inner: Arc<dyn TableProvider>,
    schema: SchemaRef,
}

impl PluginTable {
    fn new(source: Arc<str>, plugin: Arc<str>, inner: Arc<dyn TableProvider>) -> Self {
        let schema = inner.schema();
        PluginTable {
            source,
            plugin,
            inner,
            schema,
        }
    }
}

#[async_trait]
impl TableProvider for PluginTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let mut answers = vec![TableProviderFilterPushDown::Unsupported; filters.len()];
        let asked: Vec<usize> = (0..filters.len())
            .filter(|&i| crossable(filters[i]))
            .collect();
        if asked.is_empty() {
            return Ok(answers);
        }
        let subset: Vec<&Expr> = asked.iter().map(|&i| filters[i]).collect();
        match self.inner.supports_filters_pushdown(&subset) {
            Ok(given) if given.len() == subset.len() => {
                for (i, answer) in asked.into_iter().zip(given) {
                    answers[i] = answer;
                }
            }
            Ok(_) => tracing::warn!(
                "source \"{}\": plugin \"{}\" answered for the wrong number of filters; filtering in Amar",
                self.source,
                self.plugin
            ),
            Err(e) => tracing::warn!(
                "source \"{}\": plugin \"{}\" could not choose filters ({e}); filtering in Amar",
                self.source,
                self.plugin
            ),
        }
        Ok(answers)
    }

    fn statistics(&self) -> Option<Statistics> {
        self.inner.statistics()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let plan = self
            .inner
            .scan(state, projection, filters, limit)
            .await
            .map_err(|e| plugin_df_error(&self.source, &self.plugin, e))?;
        Ok(Arc::new(PluginScanExec {
            source: self.source.clone(),
            plugin: self.plugin.clone(),
            properties: plan.properties().clone(),
            inner: plan,
        }))
    }
}

/// A scan by a plugin: its errors name the source and the plugin.
#[derive(Debug)]
struct PluginScanExec {
    source: Arc<str>,
    plugin: Arc<str>,
    inner: Arc<dyn ExecutionPlan>,
    properties: Arc<PlanProperties>,
}

impl DisplayAs for PluginScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "PluginScanExec: source={}, plugin={}: {}",
            self.source,
            self.plugin,
            self.inner.name()
        )
    }
}

impl ExecutionPlan for PluginScanExec {
    fn name(&self) -> &'static str {
        "PluginScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    amar_plugin_sdk::leaf_plan_methods!();

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let stream = self
            .inner
            .execute(partition, context)
            .map_err(|e| plugin_df_error(&self.source, &self.plugin, e))?;
        let (source, plugin) = (self.source.clone(), self.plugin.clone());
        let schema = stream.schema();
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            schema,
            stream.map_err(move |e| plugin_df_error(&source, &plugin, e)),
        )))
    }
}
