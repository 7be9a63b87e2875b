//! SQL cursors: `DECLARE … CURSOR`, `FETCH`, `CLOSE`, as psycopg's server-side cursors
//! and SQLAlchemy's `stream_results` use them.
//!
//! A cursor holds its query's running record-batch stream; each FETCH takes the next
//! rows from it, so a cursor over a large result uses memory for one batch, not the
//! result. Cursors scan forward only. Those declared without `WITH HOLD` close when
//! their transaction ends, as in PostgreSQL.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::execution::SendableRecordBatchStream;
use futures::StreamExt;
use tokio::sync::Mutex;

use amar_catalog::pg::{CursorCatalog, CursorRow};

use super::{SqlError, code};

struct Cursor {
    statement: String,
    created: std::time::SystemTime,
    stream: SendableRecordBatchStream,
    /// Rows taken from the stream but not yet fetched.
    pending: Option<RecordBatch>,
    hold: bool,
    done: bool,
}

/// A connection's open cursors.
#[derive(Default)]
pub struct Cursors {
    open: Mutex<HashMap<String, Cursor>>,
}

fn no_cursor(name: &str) -> SqlError {
    SqlError::new(
        code::INVALID_CURSOR_NAME,
        format!("cursor \"{name}\" does not exist"),
    )
}

fn exists(name: &str) -> SqlError {
    SqlError::new("42P03", format!("cursor \"{name}\" already exists"))
}

impl Cursors {
    /// Refuses (42P03) a name an open cursor has.
    pub async fn check_free(&self, name: &str) -> Result<(), SqlError> {
        if self.open.lock().await.contains_key(name) {
            return Err(exists(name));
        }
        Ok(())
    }

    pub async fn declare(
        &self,
        name: &str,
        statement: String,
        stream: SendableRecordBatchStream,
        hold: bool,
    ) -> Result<(), SqlError> {
        let mut open = self.open.lock().await;
        if open.contains_key(name) {
            return Err(exists(name));
        }
        open.insert(
            name.to_string(),
            Cursor {
                statement,
                created: std::time::SystemTime::now(),
                stream,
                pending: None,
                hold,
                done: false,
            },
        );
        Ok(())
    }

    /// The result schema of an open cursor.
    pub async fn schema(&self, name: &str) -> Result<SchemaRef, SqlError> {
        let open = self.open.lock().await;
        open.get(name)
            .map(|c| c.stream.schema())
            .ok_or_else(|| no_cursor(name))
    }

    /// Up to `count` next rows (all remaining when `None`), as batches.
    pub async fn fetch(
        &self,
        name: &str,
        count: Option<u64>,
    ) -> Result<(SchemaRef, Vec<RecordBatch>), SqlError> {
        let mut open = self.open.lock().await;
        let cursor = open.get_mut(name).ok_or_else(|| no_cursor(name))?;
        let schema = cursor.stream.schema();
        let mut wanted = count.map(|c| c as usize).unwrap_or(usize::MAX);
        let mut out = vec![];
        while wanted > 0 {
            let batch = match cursor.pending.take() {
                Some(b) => b,
                None if cursor.done => break,
                None => match cursor.stream.next().await {
                    Some(Ok(b)) => b,
                    Some(Err(e)) => {
                        cursor.done = true;
                        return Err(SqlError::from_datafusion(&e));
                    }
                    None => {
                        cursor.done = true;
                        break;
                    }
                },
            };
            if batch.num_rows() <= wanted {
                wanted -= batch.num_rows();
                out.push(batch);
            } else {
                out.push(batch.slice(0, wanted));
                cursor.pending = Some(batch.slice(wanted, batch.num_rows() - wanted));
                wanted = 0;
            }
        }
        Ok((schema, out))
    }

    pub async fn close(&self, name: Option<&str>) -> Result<(), SqlError> {
        let mut open = self.open.lock().await;
        match name {
            None => open.clear(),
            Some(name) => {
                open.remove(name).ok_or_else(|| no_cursor(name))?;
            }
        }
        Ok(())
    }

    /// At COMMIT or ROLLBACK: cursors not declared WITH HOLD close.
    pub async fn end_transaction(&self) {
        self.open.lock().await.retain(|_, c| c.hold);
    }
}

/// What `pg_catalog.pg_cursors` shows of this session.
impl CursorCatalog for Cursors {
    fn list(&self) -> Vec<CursorRow> {
        // A session runs one statement at a time, so the lock is free whenever
        // pg_cursors is read.
        let Ok(open) = self.open.try_lock() else {
            return vec![];
        };
        open.iter()
            .map(|(name, c)| CursorRow {
                name: name.clone(),
                statement: c.statement.clone(),
                holdable: c.hold,
                created: c.created,
            })
            .collect()
    }
}

/// A new, empty set of cursors for a session.
pub fn registry() -> Arc<Cursors> {
    Arc::new(Cursors::default())
}
