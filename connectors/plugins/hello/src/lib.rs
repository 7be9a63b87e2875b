//! The smallest Amar connector plugin: one table, `greetings`, whose rows come
//! from the source's options. docs/plugins.md builds it step by step.

use std::sync::Arc;

use amar_plugin_sdk::datafusion::arrow::array::{RecordBatch, StringArray};
use amar_plugin_sdk::datafusion::arrow::datatypes::{DataType, Field, Schema};
use amar_plugin_sdk::datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider};
use amar_plugin_sdk::{OptionKind, OptionSpec, Options, Plugin, PluginInfo, export_plugin};

pub struct Hello;

impl Plugin for Hello {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "hello".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "greets in the language it is given".to_string(),
            options: vec![OptionSpec::new(
                "greeting",
                OptionKind::String,
                true,
                "what to say",
            )],
        }
    }

    fn open(source: &str, options: &Options) -> Result<Arc<dyn SchemaProvider>, String> {
        let greeting = options.string("greeting").unwrap_or_default();
        let schema = Arc::new(Schema::new(vec![
            Field::new("source", DataType::Utf8, false),
            Field::new("greeting", DataType::Utf8, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(vec![source])),
                Arc::new(StringArray::from(vec![greeting])),
            ],
        )
        .map_err(|e| e.to_string())?;
        let table = MemTable::try_new(schema, vec![vec![batch]]).map_err(|e| e.to_string())?;
        let tables = MemorySchemaProvider::new();
        tables
            .register_table("greetings".to_string(), Arc::new(table))
            .map_err(|e| e.to_string())?;
        Ok(Arc::new(tables))
    }
}

export_plugin!(Hello);
