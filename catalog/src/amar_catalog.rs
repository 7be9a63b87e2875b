//! The `amar` database ([`AmarCatalog`]): one schema per source, plus the system schemas.

use std::sync::Arc;

use amar_connectors::Source;
use datafusion::catalog::{CatalogProvider, MemoryCatalogProvider, MemorySchemaProvider};

use crate::error::{CatalogError, Result};
use crate::schema::SourceSchema;
use crate::{DEFAULT_SCHEMA, SYSTEM_SCHEMA};

/// Schema names a source may not take.
const RESERVED: &[&str] = &[
    SYSTEM_SCHEMA,
    DEFAULT_SCHEMA,
    "pg_catalog",
    "information_schema",
    "indicators",
    "official",
    "official_history",
];

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
    /// Each source comes with whether its tables are held in memory (`accelerate`).
    pub async fn load(sources: Vec<(Arc<dyn Source>, bool)>) -> Result<Self> {
        let catalog = Arc::new(MemoryCatalogProvider::new());
        catalog.register_schema(DEFAULT_SCHEMA, Arc::new(MemorySchemaProvider::new()))?;
        let mut schemas = vec![];
        for (source, accelerate) in sources {
            let name = source.name().to_string();
            if RESERVED.contains(&name.as_str()) {
                return Err(CatalogError::ReservedName(name));
            }
            if catalog.schema(&name).is_some() {
                return Err(CatalogError::DuplicateSource(name));
            }
            let schema = Arc::new(SourceSchema::load(source, accelerate).await?);
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

    /// Grows whenever what a source's tables serve changes (a snapshot switched, a
    /// drop folder's copy made, a database's tables or columns changed): a plan made
    /// before may hold a table that is no longer served, and is planned again. The
    /// sources are fixed at load, so the sum only grows.
    pub fn tables_generation(&self) -> u64 {
        self.sources.iter().map(|s| s.replaced()).sum()
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
