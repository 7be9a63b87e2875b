//! The files connector: a folder of Parquet, CSV or JSON files, each file or sub-folder
//! one table, scanned by DataFusion's own listing tables (streaming, with projection,
//! filter and limit pushdown and Parquet row-group pruning).
//!
//! `path/claims.csv` is table `claims`; `path/payments/` holding `part-0.parquet`,
//! `part-1.parquet`, … is table `payments`. Schemas are inferred from the files when
//! the table list is read. Hidden files (starting with `.`) are skipped, so a writer
//! can drop `.claims.csv.tmp` and rename it when complete.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::datasource::file_format::FileFormat as DfFileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::prelude::SessionContext;

use crate::config::{FileFormat, FilesOptions, Mode};
use crate::error::{ConnectorError, Result};
use crate::source::{Health, Pushdown, Source, SourceTable};

/// A folder of data files as a source.
#[derive(Debug)]
pub struct FilesSource {
    name: String,
    mode: Mode,
    options: FilesOptions,
}

/// One table found in the folder.
#[derive(Debug, Clone)]
struct FoundTable {
    name: String,
    path: PathBuf,
    is_dir: bool,
    format: FileFormat,
}

impl FilesSource {
    /// Checks that the folder exists.
    pub fn open(name: &str, mode: Mode, options: FilesOptions) -> Result<Self> {
        if !options.path.is_dir() {
            return Err(ConnectorError::Path {
                source_name: name.to_string(),
                path: options.path.clone(),
                message: "is not a folder".to_string(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            mode,
            options,
        })
    }

    /// The tables of a folder of Parquet files that Amar wrote itself (snapshot
    /// generations, drop-folder stores): each sub-folder or file one table.
    pub async fn parquet_tables(name: &str, path: PathBuf) -> Result<Vec<SourceTable>> {
        FilesSource::open(
            name,
            Mode::Snapshot,
            FilesOptions {
                path,
                format: Some(FileFormat::Parquet),
                has_header: true,
                delimiter: b',',
            },
        )?
        .tables()
        .await
    }

    fn path_error(&self, path: &Path, message: impl Into<String>) -> ConnectorError {
        ConnectorError::Path {
            source_name: self.name.clone(),
            path: path.to_path_buf(),
            message: message.into(),
        }
    }

    /// The tables in the folder, by name.
    fn find_tables(&self) -> Result<Vec<FoundTable>> {
        let entries = std::fs::read_dir(&self.options.path)
            .map_err(|e| self.path_error(&self.options.path, e.to_string()))?;
        let mut found = vec![];
        for entry in entries {
            let entry = entry.map_err(|e| self.path_error(&self.options.path, e.to_string()))?;
            let path = entry.path();
            let file_name = entry.file_name().to_string_lossy().into_owned();
            if file_name.starts_with('.') {
                continue;
            }
            if path.is_dir() {
                if let Some(format) = self.folder_format(&path)? {
                    found.push(FoundTable {
                        name: file_name,
                        path,
                        is_dir: true,
                        format,
                    });
                }
            } else if let Some((stem, ext)) = file_name.rsplit_once('.')
                && let Some(format) = FileFormat::from_extension(ext)
                && self.options.format.is_none_or(|f| f == format)
            {
                found.push(FoundTable {
                    name: stem.to_string(),
                    path,
                    is_dir: false,
                    format,
                });
            }
        }
        found.sort_by(|a, b| a.name.cmp(&b.name));
        for pair in found.windows(2) {
            if pair[0].name == pair[1].name {
                return Err(self.path_error(
                    &pair[1].path,
                    format!(
                        "two entries make table \"{}\" ({} and {}); rename one",
                        pair[0].name,
                        pair[0].path.display(),
                        pair[1].path.display()
                    ),
                ));
            }
        }
        Ok(found)
    }

    /// The one format of the files in a sub-folder, if it holds any data files.
    fn folder_format(&self, dir: &Path) -> Result<Option<FileFormat>> {
        let mut format = None;
        let entries = std::fs::read_dir(dir).map_err(|e| self.path_error(dir, e.to_string()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            let Some(f) = name
                .rsplit_once('.')
                .and_then(|(_, e)| FileFormat::from_extension(e))
            else {
                continue;
            };
            match format {
                None => format = Some(f),
                Some(existing) if existing != f => {
                    return Err(self.path_error(dir, "mixes file formats; one table is one format"));
                }
                _ => {}
            }
        }
        Ok(self
            .options
            .format
            .or(format)
            .filter(|f| Some(*f) == format))
    }

    fn listing_options(&self, format: FileFormat) -> ListingOptions {
        let file_format: Arc<dyn DfFileFormat> = match format {
            FileFormat::Parquet => {
                Arc::new(ParquetFormat::default().with_options(crate::lookup::reader_options()))
            }
            FileFormat::Csv => Arc::new(
                CsvFormat::default()
                    .with_has_header(self.options.has_header)
                    .with_delimiter(self.options.delimiter),
            ),
            FileFormat::Json => Arc::new(JsonFormat::default()),
        };
        ListingOptions::new(file_format).with_file_extension(format.extension())
    }

    async fn open_table(&self, ctx: &SessionContext, table: &FoundTable) -> Result<SourceTable> {
        let mut location = table.path.to_string_lossy().into_owned();
        if table.is_dir && !location.ends_with('/') {
            location.push('/');
        }
        let url = ListingTableUrl::parse(&location)
            .map_err(|e| self.path_error(&table.path, e.to_string()))?;
        let options = self.listing_options(table.format);
        let schema = options
            .infer_schema(&ctx.state(), &url)
            .await
            .map_err(|e| self.path_error(&table.path, format!("cannot read its schema: {e}")))?;
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(schema);
        let provider = ListingTable::try_new(config)
            .map_err(|e| self.path_error(&table.path, e.to_string()))?;
        Ok(SourceTable {
            name: table.name.clone(),
            provider: Arc::new(provider),
            comment: None,
        })
    }
}

#[async_trait]
impl Source for FilesSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "files"
    }

    fn data_version(&self) -> Option<String> {
        crate::source::files_version(&self.options.path)
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown::SCANS
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        let found = self.find_tables()?;
        let ctx = SessionContext::new();
        let mut tables = Vec::with_capacity(found.len());
        for table in &found {
            tables.push(self.open_table(&ctx, table).await?);
        }
        Ok(tables)
    }

    async fn health(&self) -> Health {
        let start = Instant::now();
        match std::fs::read_dir(&self.options.path) {
            Ok(_) => Health::ok(start.elapsed()),
            Err(e) => Health::failed(
                format!("{}: {e}", self.options.path.display()),
                start.elapsed(),
            ),
        }
    }
}
