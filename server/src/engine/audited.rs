//! A result stream that writes its statement's audit entry when it ends: at its last
//! batch, at its first error, or when the client drops it early.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::Stream;

use super::error::SqlError;
use crate::audit::{AuditEntry, AuditLog};

pub struct Audited {
    inner: SendableRecordBatchStream,
    schema: SchemaRef,
    log: Arc<AuditLog>,
    /// Filled in as the stream runs; taken when written.
    entry: Option<AuditEntry>,
    started: Instant,
    /// Time spent before the stream started (planning), in milliseconds.
    before_ms: f64,
    /// Counts the statement as running, and holds its user's turn, until it is
    /// written.
    running: Option<(
        crate::metrics::Held,
        Option<tokio::sync::OwnedSemaphorePermit>,
    )>,
}

impl Audited {
    pub fn new(
        inner: SendableRecordBatchStream,
        log: Arc<AuditLog>,
        entry: AuditEntry,
        started: Instant,
        running: (
            crate::metrics::Held,
            Option<tokio::sync::OwnedSemaphorePermit>,
        ),
    ) -> Self {
        let before_ms = entry.duration_ms;
        Audited {
            schema: inner.schema(),
            inner,
            log,
            entry: Some(entry),
            started,
            before_ms,
            running: Some(running),
        }
    }

    fn finish(&mut self, error: Option<SqlError>) {
        if let Some(mut entry) = self.entry.take() {
            entry.duration_ms = self.before_ms + self.started.elapsed().as_secs_f64() * 1000.0;
            if let Some(e) = error {
                entry.sqlstate = Some(e.code.to_string());
                entry.error = Some(e.message);
            }
            self.log.record(entry);
        }
        self.running = None;
    }
}

impl Stream for Audited {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(batch))) => {
                if let Some(entry) = self.entry.as_mut() {
                    entry.rows += batch.num_rows() as u64;
                    entry.bytes += batch.get_array_memory_size() as u64;
                }
            }
            Poll::Ready(Some(Err(e))) => {
                let error = SqlError::from_datafusion(e);
                self.finish(Some(error));
            }
            Poll::Ready(None) => self.finish(None),
            Poll::Pending => {}
        }
        polled
    }
}

impl RecordBatchStream for Audited {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

impl Drop for Audited {
    fn drop(&mut self) {
        if let Some(entry) = self.entry.as_mut() {
            entry.error = Some(format!(
                "ended by the client after {} rows, before the last",
                entry.rows
            ));
        }
        self.finish(None);
    }
}
