//! The one way a computed catalog table is served: the pg_catalog tables Amar answers
//! itself and every `amar.*` system table (sources, query_log, policy_status, the
//! indicator and glossary listings, indicator_status) implement [`CatalogRows`] and
//! are served as [`Computed`]: their rows computed for the reading session at each
//! scan (its visibility is among the session's extensions), then projected.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{Session, TableProvider};
use datafusion::datasource::TableType;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::error::Result;
use datafusion::logical_expr::Expr;
use datafusion::physical_plan::ExecutionPlan;

/// A catalog table computed when it is scanned.
#[async_trait]
pub trait CatalogRows: Send + Sync + Debug + 'static {
    fn schema(&self) -> SchemaRef;

    /// Every row the reading session (`state`) may see.
    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch>;

    /// How the table is listed: PostgreSQL's catalogs are tables; Amar's system
    /// tables, computed from the server's state, are views.
    fn table_type(&self) -> TableType {
        TableType::Base
    }
}

/// A [`CatalogRows`] served as a table.
#[derive(Debug)]
pub struct Computed<T>(pub T);

impl<T: CatalogRows> Computed<T> {
    /// The table, as the catalog holds it.
    pub fn table(rows: T) -> Arc<dyn TableProvider> {
        Arc::new(Computed(rows))
    }
}

#[async_trait]
impl<T: CatalogRows> TableProvider for Computed<T> {
    fn schema(&self) -> SchemaRef {
        self.0.schema()
    }

    fn table_type(&self) -> TableType {
        self.0.table_type()
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let batch = self.0.rows(state).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.0.schema(),
            projection.cloned(),
        )?)
    }
}

/// Runs `read` (files on disk: the audit log's, the source probes') off the async
/// threads, for a table's rows.
pub async fn read_blocking<T: Send + 'static>(
    read: impl FnOnce() -> T + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(read)
        .await
        .map_err(|e| datafusion::error::DataFusionError::External(Box::new(e)))
}
