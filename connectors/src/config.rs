//! Typed source configuration: what a `[[source]]` entry means once validated.
//!
//! The server parses and checks the TOML (and reports errors with file and key); this
//! crate receives only these typed values.

use std::path::PathBuf;

/// Whether a source is queried at query time or copied locally on a schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Live,
    Snapshot,
}

impl Mode {
    pub fn as_str(&self) -> &'static str {
        match self {
            Mode::Live => "live",
            Mode::Snapshot => "snapshot",
        }
    }
}

/// One configured source.
#[derive(Debug, Clone)]
pub struct SourceConfig {
    /// The schema name users see.
    pub name: String,
    pub mode: Mode,
    pub kind: SourceKind,
    /// Its tables held in memory as Arrow (file-backed and snapshot sources).
    pub accelerate: bool,
}

/// The kind of a source, with the options that kind needs.
#[derive(Debug, Clone)]
pub enum SourceKind {
    Sqlite(SqliteOptions),
    Files(FilesOptions),
    Drop(DropOptions),
    Postgres(DatabaseOptions),
    Mysql(DatabaseOptions),
    Plugin(PluginOptions),
}

impl SourceKind {
    pub fn name(&self) -> &'static str {
        match self {
            SourceKind::Sqlite(_) => "sqlite",
            SourceKind::Files(_) => "files",
            SourceKind::Drop(_) => "drop",
            SourceKind::Postgres(_) => "postgres",
            SourceKind::Mysql(_) => "mysql",
            SourceKind::Plugin(_) => "plugin",
        }
    }
}

/// A connector plugin: its library, and the options it is given.
#[derive(Debug, Clone)]
pub struct PluginOptions {
    pub library: PathBuf,
    /// The `[source.options]` table, checked against what the plugin declares when
    /// it is loaded.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// Relative `path` options are relative to this folder (the config file's).
    pub base_dir: Option<PathBuf>,
}

/// A live database server (PostgreSQL, MySQL/MariaDB).
#[derive(Clone)]
pub struct DatabaseOptions {
    pub host: String,
    pub port: u16,
    pub user: String,
    /// Already taken from the environment; never logged.
    pub password: Option<String>,
    pub database: String,
    /// PostgreSQL: the schema whose tables the source shows (default `public`).
    pub schema: Option<String>,
    /// Only these tables, when given; otherwise every table and view.
    pub tables: Option<Vec<String>>,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full` (PostgreSQL);
    /// `disabled`, `preferred` or `required` (MySQL).
    pub sslmode: String,
    /// A CA certificate (PEM) for `verify-ca`/`verify-full`.
    pub sslrootcert: Option<PathBuf>,
    /// Connections the pool keeps at most.
    pub pool_size: u32,
    /// How long opening a connection may take.
    pub connect_timeout: std::time::Duration,
    /// Snapshot mode: where the copies live, and how often they are refreshed.
    pub snapshot_dir: Option<PathBuf>,
    pub refresh: Option<std::time::Duration>,
    /// Snapshot mode: the key columns each table's copy is sorted by, where the config
    /// declares them; other tables are sorted by their primary key.
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
}

impl std::fmt::Debug for DatabaseOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "<hidden>"))
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("tables", &self.tables)
            .field("sslmode", &self.sslmode)
            .field("pool_size", &self.pool_size)
            .finish_non_exhaustive()
    }
}

/// The SQL dialect of a database source: which server it talks to (PostgreSQL or
/// MySQL/MariaDB), so how its statements are written and quoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Postgres,
    Mysql,
}

impl Dialect {
    pub fn as_str(&self) -> &'static str {
        match self {
            Dialect::Postgres => "postgres",
            Dialect::Mysql => "mysql",
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// The database file; opened read-only.
    pub path: PathBuf,
    /// Only these tables, when given; otherwise every table and view.
    pub tables: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct FilesOptions {
    /// A folder: each file, or each sub-folder of same-format files, is one table.
    pub path: PathBuf,
    /// The format of every table, when given; otherwise each file's extension decides.
    pub format: Option<FileFormat>,
    /// CSV only: whether the first line names the columns (default true).
    pub has_header: bool,
    /// CSV only: the field delimiter (default `,`).
    pub delimiter: u8,
}

/// A watched drop folder whose files are taken into a local Parquet store.
#[derive(Debug, Clone)]
pub struct DropOptions {
    /// The folder departments drop files into; only read, never changed.
    pub path: PathBuf,
    /// Where accepted files are kept as Parquet (set by the server, in its data folder).
    pub store: PathBuf,
    /// CSV only: whether the first line names the columns (default true).
    pub has_header: bool,
    /// CSV only: the field delimiter (default `,`).
    pub delimiter: u8,
    /// Spreadsheets: the sheet to read (default the first).
    pub sheet: Option<String>,
    /// Tables whose rows come from many files: (table, file-name pattern), in table
    /// order; the first that matches wins. Other files are a table each, by name.
    pub append: Vec<(String, glob::Pattern)>,
    /// How often the folder is looked at.
    pub scan_every: std::time::Duration,
    /// How long a file must stay unchanged before it is read.
    pub settle: std::time::Duration,
    /// The key columns each table's copies are sorted by (lookups by them prune).
    pub keys: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Parquet,
    Csv,
    Json,
}

impl FileFormat {
    pub fn from_extension(ext: &str) -> Option<Self> {
        match ext.to_ascii_lowercase().as_str() {
            "parquet" => Some(FileFormat::Parquet),
            "csv" => Some(FileFormat::Csv),
            "json" | "ndjson" | "jsonl" => Some(FileFormat::Json),
            _ => None,
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::from_extension(name)
    }

    pub fn extension(&self) -> &'static str {
        match self {
            FileFormat::Parquet => ".parquet",
            FileFormat::Csv => ".csv",
            FileFormat::Json => ".json",
        }
    }
}
