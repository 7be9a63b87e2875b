//! `amar.policy_status`: the policy file in force, and why a newer one was refused.

use std::sync::Arc;

use amar_policies::PolicyStore;
use async_trait::async_trait;
use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::catalog::Session;
use datafusion::datasource::TableType;
use datafusion::error::Result;

#[derive(Debug)]
pub struct PolicyStatusTable {
    store: Arc<PolicyStore>,
    schema: SchemaRef,
}

impl PolicyStatusTable {
    pub fn new(store: Arc<PolicyStore>) -> Self {
        let schema = Arc::new(Schema::new(vec![
            Field::new("policy_file", DataType::Utf8, true),
            Field::new(
                "loaded_at",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
            Field::new("rules", DataType::Int64, false),
            Field::new("generation", DataType::Int64, false),
            Field::new("ok", DataType::Boolean, false),
            Field::new("error", DataType::Utf8, true),
        ]));
        PolicyStatusTable { store, schema }
    }

    fn batch(&self) -> Result<RecordBatch> {
        let status = self.store.status();
        let loaded_at = status
            .loaded_at
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                status.path.as_ref().map(|p| p.display().to_string()),
            ])),
            Arc::new(TimestampMicrosecondArray::from(vec![loaded_at]).with_timezone("UTC")),
            Arc::new(Int64Array::from(vec![status.rules as i64])),
            Arc::new(Int64Array::from(vec![self.store.generation() as i64])),
            Arc::new(BooleanArray::from(vec![status.error.is_none()])),
            Arc::new(StringArray::from(vec![status.error])),
        ];
        Ok(RecordBatch::try_new(self.schema.clone(), columns)?)
    }
}

#[async_trait]
impl amar_catalog::computed::CatalogRows for PolicyStatusTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::View
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        self.batch()
    }
}
