//! The `amar` database: one schema per source, plus the system schemas.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use amar_connectors::{Source, SourceTable};
use async_trait::async_trait;
use datafusion::catalog::{
    CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider, TableProvider,
};
use datafusion::error::{DataFusionError, Result as DfResult};

use crate::error::{CatalogError, Result};
use crate::{DEFAULT_SCHEMA, SYSTEM_SCHEMA};

/// Schema names a source may not take.
const RESERVED: &[&str] = &[
    SYSTEM_SCHEMA,
    DEFAULT_SCHEMA,
    "pg_catalog",
    "information_schema",
    "indicators",
    "official",
];

/// One source as a schema: its tables, as last read from the source.
#[derive(Debug)]
pub struct SourceSchema {
    source: Arc<dyn Source>,
    tables: RwLock<BTreeMap<String, SourceTable>>,
    /// Why the last refresh failed, while it did.
    last_error: RwLock<Option<amar_connectors::ConnectorError>>,
}

impl SourceSchema {
    /// Reads the source's tables now. A live database that does not answer yet
    /// starts with no tables (its health says why) and fills in on a later refresh;
    /// any other source that fails to load fails the start.
    pub async fn load(source: Arc<dyn Source>) -> Result<Self> {
        let schema = Self {
            source,
            tables: RwLock::new(BTreeMap::new()),
            last_error: RwLock::new(None),
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
        let map = tables.into_iter().map(|t| (t.name.clone(), t)).collect();
        *self.tables.write().unwrap_or_else(|e| e.into_inner()) = map;
        *self.last_error.write().unwrap_or_else(|e| e.into_inner()) = None;
        Ok(())
    }

    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
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

/// The `amar` database and the sources behind it.
#[derive(Debug)]
pub struct AmarCatalog {
    catalog: Arc<MemoryCatalogProvider>,
    sources: Vec<Arc<SourceSchema>>,
    system: Arc<crate::system::SystemSchema>,
}

impl AmarCatalog {
    /// Loads every source's table list and builds the catalog. A source that fails to
    /// load fails the start, with its name in the error.
    pub async fn load(sources: Vec<Arc<dyn Source>>) -> Result<Self> {
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(DEFAULT_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
        let mut schemas = vec![];
        for source in sources {
            let name = source.name().to_string();
            if RESERVED.contains(&name.as_str()) {
                return Err(CatalogError::ReservedName(name));
            }
            if catalog.schema(&name).is_some() {
                return Err(CatalogError::DuplicateSource(name));
            }
            let schema = Arc::new(SourceSchema::load(source).await?);
            catalog.register_schema(&name, schema.clone())?;
            schemas.push(schema);
        }
        let system = Arc::new(crate::system::SystemSchema::new(schemas.clone()));
        catalog.register_schema(SYSTEM_SCHEMA, system.clone())?;
        Ok(Self {
            catalog,
            sources: schemas,
            system,
        })
    }

    /// The DataFusion catalog to register as the `amar` database.
    pub fn provider(&self) -> Arc<dyn CatalogProvider> {
        self.catalog.clone()
    }

    pub fn sources(&self) -> &[Arc<SourceSchema>] {
        &self.sources
    }

    /// The `amar` system schema, where the server adds the tables it owns.
    pub fn system(&self) -> &crate::system::SystemSchema {
        &self.system
    }

    /// The comment of `schema.table`, if its source has one.
    pub fn table_comment(&self, schema: &str, table: &str) -> Option<String> {
        self.sources
            .iter()
            .find(|s| s.source().name() == schema)?
            .entries()
            .into_iter()
            .find(|t| t.name == table)?
            .comment
    }
}
