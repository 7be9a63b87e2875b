//! `COPY (SELECT …) TO STDOUT` in PostgreSQL's text and CSV formats, streamed.
//!
//! Values are rendered by the same text encoder as query results (`encode`), then
//! escaped for the COPY format, so a value looks the same in `SELECT` and `COPY`.

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use datafusion::execution::SendableRecordBatchStream;
use futures::{StreamExt, stream};
use pgwire::api::portal::Format;
use pgwire::api::results::CopyResponse;
use pgwire::error::PgWireResult;
use pgwire::messages::copy::CopyData;
use pgwire::messages::data::DataRow;
use pgwire::types::format::FormatOptions;

use super::encode::{encode_batch, fields_for};
use super::errors::stream_error;
use crate::engine::CopyFormat;

/// The rows of a COPY's query as COPY data, header first where asked for.
pub fn copy_out(
    batches: SendableRecordBatchStream,
    format: CopyFormat,
    options: Arc<FormatOptions>,
) -> PgWireResult<CopyResponse> {
    let schema = batches.schema();
    let fields = Arc::new(fields_for(&schema, &Format::UnifiedText, Some(options))?);
    let columns = fields.len();
    let header = (format.csv && format.header).then(|| {
        let names: Vec<Vec<u8>> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_bytes().to_vec())
            .collect();
        let mut line = vec![];
        for (i, name) in names.iter().enumerate() {
            if i > 0 {
                line.push(format.delimiter as u8);
            }
            csv_field(&mut line, Some(name), &format);
        }
        line.push(b'\n');
        Ok(CopyData::new(line.into()))
    });
    let format = Arc::new(format);
    let rows = batches
        .map(move |batch| {
            let lines: Vec<PgWireResult<CopyData>> = match batch {
                Ok(batch) => encode_batch(&fields, &batch)
                    .into_iter()
                    .map(|row| row.map(|row| CopyData::new(line(row, &format).into())))
                    .collect(),
                Err(e) => vec![Err(stream_error(&e))],
            };
            stream::iter(lines)
        })
        .flatten();
    let data = stream::iter(header).chain(rows);
    Ok(CopyResponse::new(0, columns, data))
}

/// One row as a COPY line.
fn line(row: DataRow, format: &CopyFormat) -> Vec<u8> {
    let mut out = Vec::with_capacity(row.data.len() + 8);
    let mut data: BytesMut = row.data;
    for i in 0..row.field_count {
        if i > 0 {
            out.push(format.delimiter as u8);
        }
        let len = if data.remaining() >= 4 {
            data.get_i32()
        } else {
            -1
        };
        let value = if len < 0 {
            None
        } else {
            let len = (len as usize).min(data.remaining());
            Some(data.split_to(len))
        };
        if format.csv {
            csv_field(&mut out, value.as_deref(), format);
        } else {
            text_field(&mut out, value.as_deref(), format);
        }
    }
    out.push(b'\n');
    out
}

fn text_field(out: &mut Vec<u8>, value: Option<&[u8]>, format: &CopyFormat) {
    let Some(value) = value else {
        out.extend_from_slice(format.null.as_bytes());
        return;
    };
    for &b in value {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b if b == format.delimiter as u8 => {
                out.push(b'\\');
                out.push(b);
            }
            b => out.push(b),
        }
    }
}

fn csv_field(out: &mut Vec<u8>, value: Option<&[u8]>, format: &CopyFormat) {
    let Some(value) = value else {
        out.extend_from_slice(format.null.as_bytes());
        return;
    };
    let needs_quotes = value.is_empty()
        || value == format.null.as_bytes()
        || value
            .iter()
            .any(|b| *b == format.delimiter as u8 || matches!(b, b'"' | b'\n' | b'\r'));
    if needs_quotes {
        out.push(b'"');
        for &b in value {
            if b == b'"' {
                out.push(b'"');
            }
            out.push(b);
        }
        out.push(b'"');
    } else {
        out.extend_from_slice(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> CopyFormat {
        CopyFormat {
            csv: false,
            header: false,
            delimiter: '\t',
            null: "\\N".into(),
        }
    }

    fn csv() -> CopyFormat {
        CopyFormat {
            csv: true,
            header: true,
            delimiter: ',',
            null: String::new(),
        }
    }

    #[test]
    fn text_format_escapes_as_postgres_does() {
        let mut out = vec![];
        text_field(&mut out, Some(b"a\tb\\c\nd"), &text());
        assert_eq!(out, b"a\\tb\\\\c\\nd");
        let mut out = vec![];
        text_field(&mut out, None, &text());
        assert_eq!(out, b"\\N");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        let mut out = vec![];
        csv_field(&mut out, Some("تهران".as_bytes()), &csv());
        assert_eq!(out, "تهران".as_bytes());
        let mut out = vec![];
        csv_field(&mut out, Some(b"a,\"b\""), &csv());
        assert_eq!(out, b"\"a,\"\"b\"\"\"");
        let mut out = vec![];
        csv_field(&mut out, Some(b""), &csv());
        assert_eq!(out, b"\"\"");
        let mut out = vec![];
        csv_field(&mut out, None, &csv());
        assert_eq!(out, b"");
    }
}
