//! An Amar connector plugin for fixed-width text exports of legacy systems.
//!
//! Many departments' older systems (payroll, pensions registers) can only export
//! flat files: one record per line, each field at a fixed position and width,
//! padded with spaces, numbers with leading zeros and implied decimals, dates as
//! Jalali `yyyymmdd`, often in Windows-1256. A layout file (see [`layout`]) names
//! the tables, the files that make each one, and every column's place and type.
//!
//! ```toml
//! [[source]]
//! name = "payroll"
//! kind = "plugin"
//! library = "plugins/libamar_plugin_fixed_width.so"
//! [source.options]
//! dir = "/srv/exports/payroll"
//! layout = "payroll-layout.toml"
//! ```
//!
//! Scans read only the columns a query uses, evaluate its filters while reading,
//! stop at its limit, and read one file per partition.

pub mod layout;
mod table;
pub mod values;

use std::sync::Arc;

use amar_plugin_sdk::datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use amar_plugin_sdk::{OptionKind, OptionSpec, Options, Plugin, PluginInfo, export_plugin};

/// Rows per record batch, unless `batch_rows` says otherwise.
const BATCH_ROWS: usize = 8192;

pub struct FixedWidth;

impl Plugin for FixedWidth {
    fn info() -> PluginInfo {
        PluginInfo {
            name: "fixed-width".to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            description: "fixed-width text exports of legacy systems, described by a layout file"
                .to_string(),
            options: vec![
                OptionSpec::new(
                    "dir",
                    OptionKind::Path,
                    true,
                    "the folder the exported files are in",
                ),
                OptionSpec::new(
                    "layout",
                    OptionKind::Path,
                    true,
                    "the layout file: tables, their files, and each column's start, width and type",
                ),
                OptionSpec::new(
                    "batch_rows",
                    OptionKind::Integer,
                    false,
                    "rows per record batch (default 8192)",
                ),
            ],
        }
    }

    fn open(source: &str, options: &Options) -> Result<Arc<dyn SchemaProvider>, String> {
        let dir = options.required_path("dir")?;
        if !dir.is_dir() {
            return Err(format!(
                "source \"{source}\": dir {} is not a folder",
                dir.display()
            ));
        }
        let tables = layout::load(&options.required_path("layout")?)?;
        let batch_rows = match options.integer("batch_rows") {
            None => BATCH_ROWS,
            Some(n) if (1..=1_000_000).contains(&n) => n as usize,
            Some(n) => return Err(format!("batch_rows = {n} must be between 1 and 1000000")),
        };
        let schema = MemorySchemaProvider::new();
        for t in tables {
            let name = t.name.clone();
            schema
                .register_table(
                    name,
                    Arc::new(table::FixedWidthTable::new(dir.clone(), t, batch_rows)),
                )
                .map_err(|e| e.to_string())?;
        }
        Ok(Arc::new(schema))
    }
}

export_plugin!(FixedWidth);
