//! One user's view of the catalog: what they may read is listed, what they may not
//! is absent from every listing (psql's `\dt`, JDBC metadata, Flight's GetTables,
//! information_schema), and columns denied to them do not exist.
//!
//! A forbidden table still resolves by name, so that reading it fails with 42501
//! "permission denied" (from the plan rewrite) rather than pretending it does not
//! exist; it is only absent from listings. The decision itself is the caller's,
//! behind [`Visibility`]: this crate knows nothing of policies.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, SchemaProvider, Session, TableProvider,
};
use datafusion::common::{Constraints, Result};
use datafusion::datasource::TableType;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;

/// What one user may see.
pub trait Visibility: Send + Sync + Debug {
    /// The user reads everything (listings need no filtering).
    fn sees_everything(&self) -> bool;
    fn table_visible(&self, schema: &str, table: &str) -> bool;
    fn hidden_columns(&self, schema: &str, table: &str) -> Vec<String>;
    /// Whether the user's view of the table computes something (masks) that must
    /// run in Amar: such a table is not handed to a source's SQL federation, whose
    /// dialect may lack the functions (PostgreSQL has no sha256(text)).
    fn computed_here(&self, _schema: &str, _table: &str) -> bool {
        false
    }
    /// Whether the user reads every row and column of the table as stored (no row
    /// filter, no mask, no hidden column).
    fn sees_all_rows(&self, schema: &str, table: &str) -> bool {
        self.sees_everything()
            || (self.table_visible(schema, table)
                && !self.computed_here(schema, table)
                && self.hidden_columns(schema, table).is_empty())
    }
    /// Whether the user reads indicators only in their disclosure-controlled form
    /// (the public role): small cells suppressed.
    fn disclosure_control(&self) -> bool {
        false
    }
    /// Whether the policy lets the user do `action` (beyond reading) to
    /// `schema.table`: `release` an indicator, see an official figure under
    /// embargo (`prerelease`).
    fn allowed(&self, _action: &str, _schema: &str, _table: &str) -> bool {
        self.sees_everything()
    }
}

/// The session's visibility, as a DataFusion config extension, for tables computed at
/// scan time (pg_catalog) that must show each user their own view.
#[derive(Clone, Debug)]
pub struct SessionVisibility(pub Arc<dyn Visibility>);

/// Schemas everyone sees (their contents are filtered where computed).
pub const ALWAYS_LISTED: &[&str] = &["pg_catalog", "information_schema", crate::DEFAULT_SCHEMA];

#[derive(Debug)]
pub struct VisibleCatalogList {
    pub inner: Arc<dyn CatalogProviderList>,
    pub visibility: Arc<dyn Visibility>,
    /// The schemas whose tables each reader sees in a form of their own, by name.
    pub per_reader: Arc<PerReaderSchemas>,
}

/// A schema whose tables a reader who does not see everything sees in a form of
/// their own: the public reads indicators with small cells suppressed
/// (`indicators`), and official figures under embargo only with `prerelease` access
/// (`official`, `official_history`). A reader who sees everything gets the schema's
/// own tables.
#[async_trait]
pub trait PerReader: Debug + Send + Sync {
    /// `table` as `reader` sees it (`None`: there is no such table).
    async fn table_for(
        &self,
        table: &str,
        reader: &dyn Visibility,
    ) -> Result<Option<Arc<dyn TableProvider>>>;
}

/// The schemas that serve their tables per reader, by schema name.
pub type PerReaderSchemas = std::collections::HashMap<String, Arc<dyn PerReader>>;

impl CatalogProviderList for VisibleCatalogList {
    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.inner.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.inner.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let inner = self.inner.catalog(name)?;
        if self.visibility.sees_everything() {
            return Some(inner);
        }
        Some(Arc::new(VisibleCatalog {
            inner,
            visibility: self.visibility.clone(),
            per_reader: self.per_reader.clone(),
        }))
    }
}

#[derive(Debug)]
struct VisibleCatalog {
    inner: Arc<dyn CatalogProvider>,
    visibility: Arc<dyn Visibility>,
    per_reader: Arc<PerReaderSchemas>,
}

impl CatalogProvider for VisibleCatalog {
    fn schema_names(&self) -> Vec<String> {
        self.inner
            .schema_names()
            .into_iter()
            .filter(|s| {
                ALWAYS_LISTED.contains(&s.as_str())
                    || self.inner.schema(s).is_some_and(|schema| {
                        schema
                            .table_names()
                            .iter()
                            .any(|t| self.visibility.table_visible(s, t))
                    })
            })
            .collect()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        let inner = self.inner.schema(name)?;
        if ALWAYS_LISTED.contains(&name) {
            return Some(inner);
        }
        Some(Arc::new(VisibleSchema {
            name: name.to_string(),
            inner,
            visibility: self.visibility.clone(),
            per_reader: self.per_reader.get(name).cloned(),
        }))
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        self.inner.register_schema(name, schema)
    }
}

#[derive(Debug)]
struct VisibleSchema {
    name: String,
    inner: Arc<dyn SchemaProvider>,
    visibility: Arc<dyn Visibility>,
    /// Offered by the schema, if it serves its tables per reader.
    per_reader: Option<Arc<dyn PerReader>>,
}

#[async_trait]
impl SchemaProvider for VisibleSchema {
    fn table_names(&self) -> Vec<String> {
        self.inner
            .table_names()
            .into_iter()
            .filter(|t| self.visibility.table_visible(&self.name, t))
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let table = match &self.per_reader {
            Some(schema) => schema.table_for(name, self.visibility.as_ref()).await?,
            None => self.inner.table(name).await?,
        };
        let Some(table) = table else {
            return Ok(None);
        };
        let hidden = self.visibility.hidden_columns(&self.name, name);
        if hidden.is_empty() && !self.visibility.computed_here(&self.name, name) {
            return Ok(Some(table));
        }
        Ok(Some(Arc::new(WithoutColumns::new(table, &hidden)?)))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.inner.table_exist(name)
    }
}

/// A table with some columns removed: they are not in its schema, so they cannot be
/// named, selected with `*`, or listed.
#[derive(Debug)]
pub struct WithoutColumns {
    inner: Arc<dyn TableProvider>,
    /// For each visible column, its index in the inner table.
    kept: Vec<usize>,
    schema: SchemaRef,
    constraints: Constraints,
}

impl WithoutColumns {
    pub fn new(inner: Arc<dyn TableProvider>, hidden: &[String]) -> Result<Self> {
        let full = inner.schema();
        let kept: Vec<usize> = full
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| !hidden.contains(f.name()))
            .map(|(i, _)| i)
            .collect();
        let schema = Arc::new(full.project(&kept)?);
        // Keys survive only if all their columns do.
        let constraints = inner
            .constraints()
            .map(|c| {
                Constraints::new_unverified(
                    c.iter()
                        .filter_map(|c| match c {
                            datafusion::common::Constraint::PrimaryKey(cols) => cols
                                .iter()
                                .map(|i| kept.iter().position(|k| k == i))
                                .collect::<Option<Vec<_>>>()
                                .map(datafusion::common::Constraint::PrimaryKey),
                            datafusion::common::Constraint::Unique(cols) => cols
                                .iter()
                                .map(|i| kept.iter().position(|k| k == i))
                                .collect::<Option<Vec<_>>>()
                                .map(datafusion::common::Constraint::Unique),
                        })
                        .collect(),
                )
            })
            .unwrap_or_default();
        Ok(Self {
            inner,
            kept,
            schema,
            constraints,
        })
    }

    /// The table with every column.
    pub fn inner(&self) -> &Arc<dyn TableProvider> {
        &self.inner
    }

    /// For each visible column, its index in the inner table.
    pub fn kept(&self) -> &[usize] {
        &self.kept
    }

    fn inner_projection(&self, projection: Option<&Vec<usize>>) -> Vec<usize> {
        match projection {
            Some(p) => p.iter().map(|i| self.kept[*i]).collect(),
            None => self.kept.clone(),
        }
    }
}

#[async_trait]
impl TableProvider for WithoutColumns {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn constraints(&self) -> Option<&Constraints> {
        Some(&self.constraints)
    }

    fn table_type(&self) -> TableType {
        self.inner.table_type()
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        // Filters name visible columns only, which the inner table has by the same names.
        self.inner.supports_filters_pushdown(filters)
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let projection = self.inner_projection(projection);
        if let ([], Some(first)) = (projection.as_slice(), self.kept.first()) {
            // No column at all (`count(*)`): the SQL tables answer an empty projection
            // with a column anyway, which the plan above does not expect. Read one
            // visible column and keep only the row counts.
            use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
            let plan = self
                .inner
                .scan(state, Some(&vec![*first]), filters, limit)
                .await?;
            return Ok(Arc::new(ProjectionExec::try_new(
                Vec::<ProjectionExpr>::new(),
                plan,
            )?));
        }
        self.inner
            .scan(state, Some(&projection), filters, limit)
            .await
    }
}
