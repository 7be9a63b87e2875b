//! Downloads of what a page shows, as CSV (UTF-8 with a byte-order mark, so that
//! Excel opens Persian text correctly), XLSX (a right-to-left sheet for Persian) and
//! JSON. A download is a table the page's own queries returned in the visitor's
//! session: exactly what they may see, never more.

use serde_json::{Map, Value as Json};

use super::query::{Table, Value};
use crate::display::Lang;

/// A download's format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Xlsx,
    Json,
}

impl Format {
    /// The format of a file name's extension.
    pub fn of(file: &str) -> Option<(Format, &str)> {
        let (stem, ext) = file.rsplit_once('.')?;
        let format = match ext {
            "csv" => Format::Csv,
            "xlsx" => Format::Xlsx,
            "json" => Format::Json,
            _ => return None,
        };
        Some((format, stem))
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::Csv => "text/csv; charset=utf-8",
            Format::Xlsx => "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            Format::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Xlsx => "xlsx",
            Format::Json => "json",
        }
    }
}

/// `table` as a file of `format`; `title` names the sheet and the JSON document.
pub fn encode(table: &Table, format: Format, title: &str, lang: Lang) -> anyhow::Result<Vec<u8>> {
    match format {
        Format::Csv => csv(table),
        Format::Xlsx => xlsx(table, title, lang),
        Format::Json => json(table, title),
    }
}

fn csv(table: &Table) -> anyhow::Result<Vec<u8>> {
    let mut out = vec![0xEF, 0xBB, 0xBF];
    {
        let mut writer = ::csv::WriterBuilder::new()
            .terminator(::csv::Terminator::CRLF)
            .from_writer(&mut out);
        writer.write_record(&table.columns)?;
        for row in &table.rows {
            writer.write_record(row.iter().map(Value::plain))?;
        }
        writer.flush()?;
    }
    Ok(out)
}

fn xlsx(table: &Table, title: &str, lang: Lang) -> anyhow::Result<Vec<u8>> {
    use rust_xlsxwriter::{Format as Style, Workbook};
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    // Sheet names: at most 31 characters, none of []:*?/\.
    let name: String = title
        .chars()
        .filter(|c| !"[]:*?/\\".contains(*c))
        .take(31)
        .collect();
    if !name.is_empty() {
        sheet.set_name(name)?;
    }
    sheet.set_right_to_left(lang == Lang::Fa);
    let bold = Style::new().set_bold();
    for (c, column) in table.columns.iter().enumerate() {
        sheet.write_string_with_format(0, c as u16, column, &bold)?;
        sheet.set_column_width(c as u16, 16)?;
    }
    for (r, row) in table.rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, value) in row.iter().enumerate() {
            let c = c as u16;
            match value {
                Value::Null => {}
                Value::Int(i) => {
                    sheet.write_number(r, c, *i as f64)?;
                }
                Value::Num(n) if n.is_finite() => {
                    sheet.write_number(r, c, *n)?;
                }
                Value::Bool(b) => {
                    sheet.write_boolean(r, c, *b)?;
                }
                other => {
                    sheet.write_string(r, c, other.plain())?;
                }
            }
        }
    }
    Ok(book.save_to_buffer()?)
}

fn json(table: &Table, title: &str) -> anyhow::Result<Vec<u8>> {
    let rows: Vec<Json> = table
        .rows
        .iter()
        .map(|row| {
            let mut object = Map::new();
            for (column, value) in table.columns.iter().zip(row) {
                let v = match value {
                    Value::Null => Json::Null,
                    Value::Int(i) => Json::from(*i),
                    Value::Num(n) => {
                        serde_json::Number::from_f64(*n).map_or(Json::Null, Json::Number)
                    }
                    Value::Bool(b) => Json::Bool(*b),
                    other => Json::String(other.plain()),
                };
                object.insert(column.clone(), v);
            }
            Json::Object(object)
        })
        .collect();
    let document = serde_json::json!({
        "title": title,
        "columns": table.columns,
        "rows": rows,
    });
    let mut out = serde_json::to_vec_pretty(&document)?;
    out.push(b'\n');
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Table {
        Table {
            columns: vec!["unit_fa".into(), "value".into(), "suppressed".into()],
            rows: vec![
                vec![
                    Value::Text("تهران".into()),
                    Value::Num(94.5),
                    Value::Bool(false),
                ],
                vec![
                    Value::Text("قم, \"x\"".into()),
                    Value::Null,
                    Value::Bool(true),
                ],
            ],
        }
    }

    #[test]
    fn csv_starts_with_a_byte_order_mark_and_quotes_what_needs_it() {
        let bytes = encode(&table(), Format::Csv, "t", Lang::Fa).unwrap();
        assert_eq!(&bytes[..3], &[0xEF, 0xBB, 0xBF]);
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        assert_eq!(
            text,
            "unit_fa,value,suppressed\r\nتهران,94.5,false\r\n\"قم, \"\"x\"\"\",,true\r\n"
        );
    }

    #[test]
    fn json_keeps_types_and_nulls() {
        let bytes = encode(&table(), Format::Json, "t", Lang::En).unwrap();
        let doc: Json = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(doc["rows"][0]["value"], Json::from(94.5));
        assert_eq!(doc["rows"][1]["value"], Json::Null);
        assert_eq!(doc["rows"][1]["suppressed"], Json::Bool(true));
    }

    #[test]
    fn xlsx_is_a_zip_file() {
        let bytes = encode(&table(), Format::Xlsx, "active_insured", Lang::Fa).unwrap();
        assert_eq!(&bytes[..2], b"PK");
    }
}
