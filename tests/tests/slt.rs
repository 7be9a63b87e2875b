//! SQL behaviour as `.slt` files (tests/slt/*.slt), run through the Postgres wire
//! protocol with the sqllogictest crate, so that they test what a client sees.
//!
//! Values come back in PostgreSQL's text format; NULL is written `NULL` and the empty
//! string `(empty)`. Errors read `[SQLSTATE] message`, so records can match codes:
//! `statement error \[42P01\]`. A file whose first lines hold `# user: NAME` runs as
//! that demo user (password = name); others run as admin.

use std::path::{Path, PathBuf};

use amar_tests::shared_demo;
use async_trait::async_trait;
use sqllogictest::{AsyncDB, DBOutput, DefaultColumnType};
use tokio_postgres::SimpleQueryMessage;

use crate::support::connect;

#[derive(Debug)]
struct SqlError(String);

impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SqlError {}

impl From<tokio_postgres::Error> for SqlError {
    fn from(e: tokio_postgres::Error) -> Self {
        match e.as_db_error() {
            Some(db) => SqlError(format!("[{}] {}", db.code().code(), db.message())),
            None => SqlError(e.to_string()),
        }
    }
}

struct Amar {
    client: tokio_postgres::Client,
}

#[async_trait]
impl AsyncDB for Amar {
    type Error = SqlError;
    type ColumnType = DefaultColumnType;

    async fn run(&mut self, sql: &str) -> Result<DBOutput<DefaultColumnType>, SqlError> {
        let messages = self.client.simple_query(sql).await?;
        let mut columns = None;
        let mut rows = vec![];
        let mut affected = 0;
        for m in messages {
            match m {
                SimpleQueryMessage::RowDescription(d) => columns = Some(d.len()),
                SimpleQueryMessage::Row(r) => rows.push(
                    (0..r.len())
                        .map(|i| match r.get(i) {
                            None => "NULL".to_string(),
                            Some("") => "(empty)".to_string(),
                            Some(v) => v.to_string(),
                        })
                        .collect(),
                ),
                SimpleQueryMessage::CommandComplete(n) => affected = n,
                _ => {}
            }
        }
        Ok(match columns {
            Some(n) => DBOutput::Rows {
                types: vec![DefaultColumnType::Any; n],
                rows,
            },
            None => DBOutput::StatementComplete(affected),
        })
    }

    async fn shutdown(&mut self) {}

    fn engine_name(&self) -> &str {
        "amar"
    }

    async fn sleep(dur: std::time::Duration) {
        tokio::time::sleep(dur).await;
    }
}

fn slt_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("slt");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/slt exists")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "slt"))
        .collect();
    files.sort();
    files
}

fn user_of(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .take(5)
        .find_map(|l| l.strip_prefix("# user:").map(|u| u.trim().to_string()))
        .unwrap_or_else(|| "admin".to_string())
}

#[tokio::test]
async fn slt_files_pass_through_pgwire() {
    let files = slt_files();
    assert!(!files.is_empty(), "no .slt files found");
    let mut failures = vec![];
    for file in &files {
        let user = user_of(file);
        let mut runner = sqllogictest::Runner::new(|| {
            let user = user.clone();
            async move {
                let client = connect(shared_demo(), &user, &user)
                    .await
                    .map_err(SqlError::from)?;
                Ok(Amar { client })
            }
        });
        if let Err(e) = runner.run_file_async(file).await {
            failures.push(format!("{}:\n{e}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} .slt file(s) failed:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
