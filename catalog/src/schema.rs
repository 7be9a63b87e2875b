//! One source as a schema ([`SourceSchema`]): its tables as last read from the source,
//! re-read by `refresh`; read-only.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use amar_connectors::{Source, SourceTable};
use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{SchemaProvider, TableProvider};
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::error::{CatalogError, Result};

/// One source as a schema: its tables, as last read from the source.
#[derive(Debug)]
pub struct SourceSchema {
    source: Arc<dyn Source>,
    /// Tables held in memory (`accelerate = true`): see [`crate::accelerated`].
    accelerate: bool,
    tables: RwLock<BTreeMap<String, SourceTable>>,
    /// Why the last refresh failed, while it did.
    last_error: RwLock<Option<amar_connectors::ConnectorError>>,
    /// How many times what the tables serve changed: a plan made before holds the
    /// tables it was made with (a snapshot's previous copy, a database's old columns).
    replaced: AtomicU64,
    /// What the tables served at the last refresh: the source's data version and
    /// each table's name and columns.
    served: Mutex<Option<Served>>,
}

type Served = (Option<String>, Vec<(String, SchemaRef)>);

impl SourceSchema {
    /// Reads the source's tables now. A live database that does not answer yet
    /// starts with no tables (its health says why) and fills in on a later refresh;
    /// any other source that fails to load fails the start.
    pub async fn load(source: Arc<dyn Source>, accelerate: bool) -> Result<Self> {
        let schema = Self {
            source,
            accelerate,
            tables: RwLock::new(BTreeMap::new()),
            last_error: RwLock::new(None),
            replaced: AtomicU64::new(0),
            served: Mutex::new(None),
        };
        match schema.refresh().await {
            Ok(()) => {}
            Err(CatalogError::Connector(
                e @ amar_connectors::ConnectorError::Unavailable { .. },
            )) => {
                tracing::warn!("{e}; its tables appear when it answers");
            }
            Err(e) => return Err(e),
        }
        Ok(schema)
    }

    /// Re-reads the table list (new files in a drop folder, new tables in a database).
    /// On error the previous list stays.
    pub async fn refresh(&self) -> Result<()> {
        let tables = match self.source.tables().await {
            Ok(t) => t,
            Err(e) => {
                let message = match &e {
                    amar_connectors::ConnectorError::Unavailable { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                *self.last_error.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(amar_connectors::ConnectorError::Unavailable {
                        source_name: self.source.name().to_string(),
                        message,
                    });
                return Err(e.into());
            }
        };
        let mut map: BTreeMap<String, SourceTable> =
            tables.into_iter().map(|t| (t.name.clone(), t)).collect();
        if self.accelerate {
            let old = self.tables.read().unwrap_or_else(|e| e.into_inner());
            for table in map.values_mut() {
                // A table already held keeps its copy (its version decides whether
                // the copy is current); a new or changed table is wrapped anew.
                let kept = old.get(&table.name).filter(|o| {
                    crate::accelerated::Accelerated::of(o.provider.as_ref())
                        .is_some_and(|a| a.schema() == table.provider.schema())
                });
                table.provider = match kept {
                    Some(o) => o.provider.clone(),
                    None => Arc::new(crate::accelerated::Accelerated::new(
                        format!("{}.{}", self.source.name(), table.name),
                        table.provider.clone(),
                        self.source.clone(),
                    )),
                };
            }
        }
        let served: Served = (
            self.source.data_version(),
            map.iter()
                .map(|(name, t)| (name.clone(), t.provider.schema()))
                .collect(),
        );
        *self.tables.write().unwrap_or_else(|e| e.into_inner()) = map;
        *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = None;
        // A re-read that found the same tables over the same data (a database's
        // list read again every minute) leaves the plans made before as they are.
        let mut last = self.served.lock().unwrap_or_else(|e| e.into_inner());
        if last.as_ref() != Some(&served) {
            *last = Some(served);
            self.replaced.fetch_add(1, Ordering::Release);
        }
        Ok(())
    }

    /// Grows whenever a refresh finds other tables, other columns or another
    /// version of the source's data than the refresh before.
    pub fn replaced(&self) -> u64 {
        self.replaced.load(Ordering::Acquire)
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Its tables held in memory, or why not; empty when not accelerated.
    pub fn accelerations(&self) -> Vec<crate::accelerated::Acceleration> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter_map(|t| crate::accelerated::Accelerated::of(t.provider.as_ref()))
            .map(|a| a.status())
            .collect()
    }

    /// The table entries (with comments), by name.
    pub fn entries(&self) -> Vec<SourceTable> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect()
    }
}

#[async_trait]
impl SchemaProvider for SourceSchema {
    fn table_names(&self) -> Vec<String> {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let found = self
            .tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|t| t.provider.clone());
        if found.is_none()
            && let Some(amar_connectors::ConnectorError::Unavailable {
                source_name,
                message,
            }) = &*self.last_error.read().unwrap_or_else(|e| e.into_inner())
        {
            // Not "no such table": the source that would know is not answering.
            return Err(DataFusionError::External(Box::new(
                amar_connectors::ConnectorError::Unavailable {
                    source_name: source_name.clone(),
                    message: message.clone(),
                },
            )));
        }
        Ok(found)
    }

    fn table_exist(&self, name: &str) -> bool {
        self.tables
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .contains_key(name)
    }

    fn register_table(
        &self,
        name: String,
        _table: Arc<dyn TableProvider>,
    ) -> DfResult<Option<Arc<dyn TableProvider>>> {
        Err(DataFusionError::Plan(format!(
            "cannot create table \"{name}\" in schema \"{}\": sources are read-only",
            self.source.name()
        )))
    }
}
