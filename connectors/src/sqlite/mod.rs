//! The SQLite connector: a database file, opened read-only, each table a DataFusion table.
//!
//! Tables and their declared column types are read from the file at open
//! (`sqlite_master`, `PRAGMA table_info`); primary keys become DataFusion constraints.
//! SQLite has no `COMMENT ON`; a table named [`COMMENTS_TABLE`] with columns
//! `(table_name, column_name, comment)` supplies comments instead (a NULL column
//! name comments the table) and is itself not listed.
//! Scans run on a blocking thread per query with their own read-only connection and
//! stream record batches through a small bounded channel, so a large table is never held
//! in memory and a client that goes away stops the scan.

mod filter;
mod table;
pub mod types;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::common::{Constraint, Constraints};
use rusqlite::{Connection, OpenFlags};

use crate::config::{Mode, SqliteOptions};
use crate::error::{ConnectorError, Result};
use crate::source::{Health, Pushdown, Source, SourceTable};
pub use table::SqliteTable;

/// The table holding table and column comments, by convention.
pub const COMMENTS_TABLE: &str = "_amar_comments";

/// A SQLite database file as a source.
#[derive(Debug)]
pub struct SqliteSource {
    name: String,
    mode: Mode,
    options: SqliteOptions,
}

impl SqliteSource {
    /// Checks that the file exists and is a SQLite database.
    pub fn open(name: &str, mode: Mode, options: SqliteOptions) -> Result<Self> {
        let source = Self {
            name: name.to_string(),
            mode,
            options,
        };
        if !source.options.path.is_file() {
            return Err(ConnectorError::SqliteOpen {
                source_name: source.name.clone(),
                path: source.options.path.clone(),
                message: "no such file".to_string(),
            });
        }
        let conn = source.connect()?;
        conn.query_row("SELECT count(*) FROM sqlite_master", [], |_| Ok(()))
            .map_err(|e| source.open_error(e))?;
        Ok(source)
    }

    fn connect(&self) -> Result<Connection> {
        connect(&self.options.path).map_err(|e| self.open_error(e))
    }

    fn open_error(&self, e: rusqlite::Error) -> ConnectorError {
        ConnectorError::SqliteOpen {
            source_name: self.name.clone(),
            path: self.options.path.clone(),
            message: e.to_string(),
        }
    }

    fn sqlite_error(&self, e: rusqlite::Error) -> ConnectorError {
        ConnectorError::Sqlite {
            source_name: self.name.clone(),
            message: e.to_string(),
        }
    }

    fn read_tables(&self) -> Result<Vec<SourceTable>> {
        let conn = self.connect()?;
        let mut stmt = conn
            .prepare(
                "SELECT name, type FROM sqlite_master \
                 WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%' ORDER BY name",
            )
            .map_err(|e| self.sqlite_error(e))?;
        let names: Vec<(String, String)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite_error(e))?;
        let comments = self.read_comments(&conn, names.iter().any(|(n, _)| n == COMMENTS_TABLE))?;
        let mut tables = vec![];
        for (table_name, object_type) in names {
            if table_name == COMMENTS_TABLE {
                continue;
            }
            if let Some(wanted) = &self.options.tables
                && !wanted.iter().any(|w| w == &table_name)
            {
                continue;
            }
            tables.push(self.describe_table(&conn, &table_name, &object_type, &comments)?);
        }
        if let Some(wanted) = &self.options.tables {
            for w in wanted {
                if !tables.iter().any(|t| &t.name == w) {
                    return Err(ConnectorError::Other {
                        source_name: self.name.clone(),
                        message: format!(
                            "table \"{w}\" is listed in `tables` but is not in {}",
                            self.options.path.display()
                        ),
                    });
                }
            }
        }
        Ok(tables)
    }

    /// Comments by (table, column); column `None` is the table's own comment.
    fn read_comments(
        &self,
        conn: &Connection,
        present: bool,
    ) -> Result<HashMap<(String, Option<String>), String>> {
        if !present {
            return Ok(HashMap::new());
        }
        let mut stmt = conn
            .prepare(&format!(
                "SELECT table_name, column_name, comment FROM {} WHERE comment IS NOT NULL",
                filter::quote_ident(COMMENTS_TABLE)
            ))
            .map_err(|e| self.sqlite_error(e))?;
        let rows: Vec<(String, Option<String>, String)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite_error(e))?;
        Ok(rows
            .into_iter()
            .map(|(t, c, text)| ((t, c), text))
            .collect())
    }

    fn describe_table(
        &self,
        conn: &Connection,
        table: &str,
        object_type: &str,
        comments: &HashMap<(String, Option<String>), String>,
    ) -> Result<SourceTable> {
        let mut stmt = conn
            .prepare(&format!(
                "PRAGMA table_info({})",
                filter::quote_ident(table)
            ))
            .map_err(|e| self.sqlite_error(e))?;
        // (name, declared type, not null, primary-key position)
        let columns: Vec<(String, String, bool, i64)> = stmt
            .query_map([], |row| {
                Ok((
                    row.get::<_, String>(1)?,
                    row.get::<_, Option<String>>(2)?.unwrap_or_default(),
                    row.get::<_, i64>(3)? != 0,
                    row.get::<_, i64>(5)?,
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(|e| self.sqlite_error(e))?;
        let fields: Vec<Field> = columns
            .iter()
            .map(|(name, declared, not_null, pk)| {
                // SQLite lets primary-key columns hold NULL unless declared NOT NULL, but
                // an INTEGER PRIMARY KEY is the rowid and never NULL.
                let nullable =
                    !(*not_null || (*pk > 0 && declared.eq_ignore_ascii_case("INTEGER")));
                let field = Field::new(name, types::arrow_type(declared), nullable);
                match comments.get(&(table.to_string(), Some(name.clone()))) {
                    Some(c) => field.with_metadata(HashMap::from([(
                        crate::COMMENT_KEY.to_string(),
                        c.clone(),
                    )])),
                    None => field,
                }
            })
            .collect();
        let mut key: Vec<(i64, usize)> = columns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.3 > 0)
            .map(|(i, c)| (c.3, i))
            .collect();
        key.sort();
        let constraints = if key.is_empty() {
            Constraints::default()
        } else {
            Constraints::new_unverified(vec![Constraint::PrimaryKey(
                key.into_iter().map(|(_, i)| i).collect(),
            )])
        };
        // Large base tables are scanned in rowid ranges, one per core; the span of
        // rowids (from the b-tree's two ends, not a count) says whether it pays.
        let rowid_shadowed = columns.iter().any(|c| {
            ["rowid", "_rowid_", "oid"]
                .iter()
                .any(|r| c.0.eq_ignore_ascii_case(r))
        });
        let rowid_span = if object_type == "view" || rowid_shadowed {
            None
        } else {
            // Each end from its own subquery: SQLite reads a lone min or max from
            // the b-tree's end, but scans the table for both in one aggregate.
            let quoted = filter::quote_ident(table);
            conn.query_row(
                &format!(
                    "SELECT coalesce((SELECT max(rowid) FROM {quoted}) - (SELECT min(rowid) FROM {quoted}) + 1, 0)"
                ),
                [],
                |row| row.get::<_, i64>(0),
            )
            .ok()
        };
        let declared: Vec<String> = columns.into_iter().map(|c| c.1).collect();
        let provider = SqliteTable::new(
            self.name.clone(),
            self.options.path.clone(),
            table.to_string(),
            Arc::new(Schema::new(fields)),
            declared,
            constraints,
            if object_type == "view" {
                table::Shape::View
            } else {
                table::Shape::Table { rowid_span }
            },
        );
        Ok(SourceTable {
            name: table.to_string(),
            provider: Arc::new(provider),
            comment: comments.get(&(table.to_string(), None)).cloned(),
        })
    }
}

/// A read-only connection; `query_only` also refuses writes through attached databases.
pub(crate) fn connect(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI,
    )?;
    conn.pragma_update(None, "query_only", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    Ok(conn)
}

#[async_trait]
impl Source for SqliteSource {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "sqlite"
    }

    /// The database file and its write-ahead log as they are on disk.
    fn data_version(&self) -> Option<String> {
        let db = crate::source::files_version(&self.options.path)?;
        let mut wal = self.options.path.clone().into_os_string();
        wal.push("-wal");
        let wal = crate::source::files_version(std::path::Path::new(&wal)).unwrap_or_default();
        Some(format!("{db}{wal}"))
    }

    fn mode(&self) -> Mode {
        self.mode
    }

    fn pushdown(&self) -> Pushdown {
        Pushdown::SCANS
    }

    async fn tables(&self) -> Result<Vec<SourceTable>> {
        let this = SqliteSource {
            name: self.name.clone(),
            mode: self.mode,
            options: self.options.clone(),
        };
        tokio::task::spawn_blocking(move || this.read_tables())
            .await
            .map_err(|e| ConnectorError::Other {
                source_name: self.name.clone(),
                message: format!("reading the table list failed: {e}"),
            })?
    }

    async fn health(&self) -> Health {
        let path: PathBuf = self.options.path.clone();
        let start = Instant::now();
        let result = tokio::task::spawn_blocking(move || {
            connect(&path)
                .and_then(|c| c.query_row("SELECT 1", [], |_| Ok(())))
                .map_err(|e| e.to_string())
        })
        .await;
        match result {
            Ok(Ok(())) => Health::ok(start.elapsed()),
            Ok(Err(e)) => Health::failed(e, start.elapsed()),
            Err(e) => Health::failed(e.to_string(), start.elapsed()),
        }
    }
}
