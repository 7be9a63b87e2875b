//! Reading a dropped spreadsheet (Excel, ODS): one sheet into one batch, each
//! column typed by the cells it holds.

use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Date32Builder, Float64Builder, RecordBatch, StringBuilder,
    TimestampMillisecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

use crate::config::DropOptions;

/// A cell's address in A1 notation (row and column from 0).
fn cell_name(row: usize, col: usize) -> String {
    let mut letters = vec![];
    let mut n = col + 1;
    while n > 0 {
        letters.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    letters.reverse();
    format!("{}{}", String::from_utf8_lossy(&letters), row + 1)
}

/// What a spreadsheet column holds, as cells are seen.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Empty,
    Bool,
    Float,
    Date,
    Timestamp,
    Text,
}

impl Kind {
    fn join(self, other: Kind) -> Kind {
        use Kind::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Empty, x) | (x, Empty) => x,
            (Date, Timestamp) | (Timestamp, Date) => Timestamp,
            _ => Text,
        }
    }
}

/// Days from 0001-01-01 (chrono's CE day 1) to 1970-01-01.
const UNIX_EPOCH_DAYS_CE: i32 = 719_163;

pub(super) fn read_spreadsheet(
    options: &DropOptions,
    path: &Path,
) -> std::result::Result<Vec<RecordBatch>, String> {
    use calamine::{Data, DataType as _, Reader, open_workbook_auto};
    use chrono::{Datelike, NaiveDate, NaiveDateTime, Timelike};
    let mut workbook =
        open_workbook_auto(path).map_err(|e| format!("not a readable spreadsheet: {e}"))?;
    let sheet = match &options.sheet {
        Some(sheet) => sheet.clone(),
        None => workbook
            .sheet_names()
            .first()
            .cloned()
            .ok_or("the workbook has no sheets")?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .map_err(|e| format!("sheet \"{sheet}\": {e}"))?;
    let (first_row, first_col) = range.start().unwrap_or((0, 0));
    let (first_row, first_col) = (first_row as usize, first_col as usize);
    let mut rows = range
        .rows()
        .enumerate()
        .filter(|(_, r)| r.iter().any(|c| *c != Data::Empty));
    let Some((header_at, header)) = rows.next() else {
        return Err(format!("sheet \"{sheet}\" is empty"));
    };
    let mut names = vec![];
    for (i, cell) in header.iter().enumerate() {
        let at = cell_name(first_row + header_at, first_col + i);
        let name = match cell {
            Data::String(s) => s.trim().to_string(),
            Data::Int(n) => n.to_string(),
            Data::Float(f) => f.to_string(),
            Data::Empty => String::new(),
            other => other.to_string(),
        };
        if name.is_empty() {
            // Trailing empty header cells only end the table.
            if header[i..].iter().all(|c| *c == Data::Empty) {
                break;
            }
            return Err(format!(
                "sheet \"{sheet}\", cell {at}: a column has no name"
            ));
        }
        if names.contains(&name) {
            return Err(format!(
                "sheet \"{sheet}\", cell {at}: two columns are named \"{name}\""
            ));
        }
        names.push(name);
    }
    let width = names.len();
    let data: Vec<(usize, &[Data])> = rows.map(|(i, r)| (first_row + i, r)).collect();
    // Error cells reject the file; values beyond the named columns too.
    let datetime = |d: &calamine::ExcelDateTime| -> Option<NaiveDateTime> {
        let (y, mo, da, h, mi, s, ms) = d.to_ymd_hms_milli();
        NaiveDate::from_ymd_opt(i32::from(y), u32::from(mo), u32::from(da))?.and_hms_milli_opt(
            u32::from(h),
            u32::from(mi),
            u32::from(s),
            u32::from(ms),
        )
    };
    let mut kinds = vec![Kind::Empty; width];
    for (row, cells) in &data {
        for (i, cell) in cells.iter().enumerate() {
            let at = || format!("sheet \"{sheet}\", cell {}", cell_name(*row, first_col + i));
            if i >= width {
                if *cell != Data::Empty {
                    return Err(format!("{}: a value in a column with no name", at()));
                }
                continue;
            }
            let kind = match cell {
                Data::Empty => Kind::Empty,
                Data::Bool(_) => Kind::Bool,
                // Excel keeps every number as a double: whole numbers this month
                // and fractions the next must land in the same column type.
                Data::Int(_) | Data::Float(_) => Kind::Float,
                Data::DateTime(d) if d.is_datetime() => match datetime(d) {
                    Some(t) if t.time() == chrono::NaiveTime::MIN => Kind::Date,
                    Some(_) => Kind::Timestamp,
                    None => return Err(format!("{}: not a valid date", at())),
                },
                Data::Error(e) => return Err(format!("{}: holds the error {e}", at())),
                _ => Kind::Text,
            };
            kinds[i] = kinds[i].join(kind);
        }
    }
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| {
                let t = match kind {
                    Kind::Bool => DataType::Boolean,
                    Kind::Float => DataType::Float64,
                    Kind::Date => DataType::Date32,
                    Kind::Timestamp => DataType::Timestamp(TimeUnit::Millisecond, None),
                    Kind::Empty | Kind::Text => DataType::Utf8,
                };
                Field::new(name, t, true)
            })
            .collect::<Vec<_>>(),
    ));
    let text = |cell: &Data| -> Option<String> {
        match cell {
            Data::Empty => None,
            Data::String(s) => Some(s.clone()),
            Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                Some(format!("{}", *f as i64))
            }
            Data::DateTime(d) if d.is_datetime() => datetime(d).map(|t| {
                if t.time() == chrono::NaiveTime::MIN {
                    t.date().to_string()
                } else {
                    t.to_string()
                }
            }),
            other => Some(other.to_string()),
        }
    };
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(width);
    for (i, kind) in kinds.iter().enumerate() {
        let cells = data.iter().map(|(_, r)| r.get(i).unwrap_or(&Data::Empty));
        let column: ArrayRef = match kind {
            Kind::Bool => {
                let mut b = BooleanBuilder::new();
                cells.for_each(|c| b.append_option(c.get_bool()));
                Arc::new(b.finish())
            }
            Kind::Float => {
                let mut b = Float64Builder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::Int(n) => Some(*n as f64),
                        Data::Float(f) => Some(*f),
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Date => {
                let mut b = Date32Builder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::DateTime(d) => {
                            datetime(d).map(|t| t.date().num_days_from_ce() - UNIX_EPOCH_DAYS_CE)
                        }
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Timestamp => {
                let mut b = TimestampMillisecondBuilder::new();
                cells.for_each(|c| {
                    b.append_option(match c {
                        Data::DateTime(d) => datetime(d).map(|t| {
                            t.and_utc().timestamp() * 1000 + i64::from(t.nanosecond() / 1_000_000)
                        }),
                        _ => None,
                    })
                });
                Arc::new(b.finish())
            }
            Kind::Empty | Kind::Text => {
                let mut b = StringBuilder::new();
                cells.for_each(|c| b.append_option(text(c)));
                Arc::new(b.finish())
            }
        };
        columns.push(column);
    }
    let batch = RecordBatch::try_new(schema, columns).map_err(|e| e.to_string())?;
    Ok(vec![batch])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cell_names() {
        assert_eq!(cell_name(0, 0), "A1");
        assert_eq!(cell_name(6, 2), "C7");
        assert_eq!(cell_name(0, 25), "Z1");
        assert_eq!(cell_name(0, 26), "AA1");
        assert_eq!(cell_name(9, 701), "ZZ10");
    }
}
