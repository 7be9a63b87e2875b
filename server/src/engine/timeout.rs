//! `statement_timeout` and cancel requests: a stream that ends with 57014 when its
//! time is up or its session is asked to cancel.
//!
//! Dropping the inner stream cancels the plan (DataFusion stops its tasks when their
//! output is dropped), so a stopped query frees its memory at once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::error::Result;
use datafusion::execution::{RecordBatchStream, SendableRecordBatchStream};
use futures::Stream;

use super::error::{SqlError, code};

struct TimeLimited {
    inner: Option<SendableRecordBatchStream>,
    schema: SchemaRef,
    deadline: Pin<Box<tokio::time::Sleep>>,
    limit: Duration,
}

pub fn limit(stream: SendableRecordBatchStream, limit: Duration) -> SendableRecordBatchStream {
    let schema = stream.schema();
    Box::pin(TimeLimited {
        inner: Some(stream),
        schema,
        deadline: Box::pin(tokio::time::sleep(limit)),
        limit,
    })
}

impl Stream for TimeLimited {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(item) = inner.as_mut().poll_next(cx) {
            return Poll::Ready(item);
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            self.inner = None;
            let message = format!(
                "canceling statement due to statement timeout ({} ms)",
                self.limit.as_millis()
            );
            return Poll::Ready(Some(Err(
                SqlError::new(code::QUERY_CANCELED, message).into_datafusion()
            )));
        }
        Poll::Pending
    }
}

impl RecordBatchStream for TimeLimited {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

struct Cancelable {
    inner: Option<SendableRecordBatchStream>,
    schema: SchemaRef,
    cancelled: Pin<Box<tokio_util::sync::WaitForCancellationFutureOwned>>,
}

/// Ends `stream` with 57014 when `token` is cancelled (a client's CancelRequest).
pub fn cancelable(
    stream: SendableRecordBatchStream,
    token: tokio_util::sync::CancellationToken,
) -> SendableRecordBatchStream {
    let schema = stream.schema();
    Box::pin(Cancelable {
        inner: Some(stream),
        schema,
        cancelled: Box::pin(token.cancelled_owned()),
    })
}

impl Stream for Cancelable {
    type Item = Result<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.inner.is_none() {
            return Poll::Ready(None);
        }
        if self.cancelled.as_mut().poll(cx).is_ready() {
            self.inner = None;
            return Poll::Ready(Some(Err(SqlError::new(
                code::QUERY_CANCELED,
                "canceling statement due to user request",
            )
            .into_datafusion())));
        }
        match self.inner.as_mut() {
            Some(inner) => inner.as_mut().poll_next(cx),
            None => Poll::Ready(None),
        }
    }
}

impl RecordBatchStream for Cancelable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
