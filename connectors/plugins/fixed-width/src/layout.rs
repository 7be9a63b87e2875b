//! The layout file: which files make each table, and where each column sits in a
//! line.
//!
//! ```toml
//! [[table]]
//! name = "payments"
//! files = "payroll_*.txt"      # a file-name pattern inside the source's `dir`
//! encoding = "windows-1256"    # or "utf-8" (the default)
//! skip_lines = 1               # header lines
//!
//! [[table.column]]
//! name = "national_id"
//! start = 1                    # the first character is 1
//! width = 10
//! type = "text"                # text, integer, decimal, date, boolean
//!
//! [[table.column]]
//! name = "amount"
//! start = 11
//! width = 12
//! type = "decimal"
//! scale = 2                    # "000001234550" is 12345.50
//!
//! [[table.column]]
//! name = "paid_on"
//! start = 23
//! width = 8
//! type = "date"
//! format = "jalali"            # 14030115; or "yyyymmdd" (Gregorian)
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use amar_plugin_sdk::datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use serde::Deserialize;

/// Decimal columns are `Decimal128(18, scale)`: 18 digits fit any legacy amount
/// field and an `i64` on the way in.
pub const DECIMAL_PRECISION: u8 = 18;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLayout {
    #[serde(default)]
    table: Vec<RawTable>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    name: String,
    files: String,
    encoding: Option<String>,
    #[serde(default)]
    skip_lines: usize,
    comment: Option<String>,
    #[serde(default)]
    column: Vec<RawColumn>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    name: String,
    start: usize,
    width: usize,
    #[serde(rename = "type")]
    kind: String,
    scale: Option<i8>,
    format: Option<String>,
    comment: Option<String>,
}

/// What a column holds, and how its text is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Text,
    Integer,
    /// Digits with this many implied decimals (an explicit `.` is also read).
    Decimal(i8),
    /// `yyyymmdd`, Gregorian.
    Date,
    /// `yyyymmdd` of the Solar Hijri (Jalali) calendar.
    JalaliDate,
    /// `1`/`0`, `Y`/`N`, `T`/`F`.
    Boolean,
}

impl Kind {
    pub fn data_type(self) -> DataType {
        match self {
            Kind::Text => DataType::Utf8,
            Kind::Integer => DataType::Int64,
            Kind::Decimal(scale) => DataType::Decimal128(DECIMAL_PRECISION, scale),
            Kind::Date | Kind::JalaliDate => DataType::Date32,
            Kind::Boolean => DataType::Boolean,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Column {
    pub name: String,
    /// Character offset of the first character, from 0.
    pub offset: usize,
    pub width: usize,
    pub kind: Kind,
}

#[derive(Debug, Clone)]
pub struct Table {
    pub name: String,
    /// The file-name pattern, inside the source's folder.
    pub files: String,
    pub encoding: &'static encoding_rs::Encoding,
    pub skip_lines: usize,
    pub columns: Vec<Column>,
    pub schema: SchemaRef,
}

/// Reads and checks a layout file. Errors name the file, the table and the column.
pub fn load(path: &Path) -> Result<Vec<Table>, String> {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("layout {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("layout {}: {e}", path.display()))
}

pub fn parse(text: &str) -> Result<Vec<Table>, String> {
    let raw: RawLayout = toml::from_str(text).map_err(|e| e.to_string())?;
    if raw.table.is_empty() {
        return Err("no [[table]] entries".to_string());
    }
    let mut names = BTreeSet::new();
    let mut tables = vec![];
    for t in raw.table {
        if !valid_name(&t.name) {
            return Err(format!(
                "\"{}\" cannot be a table name (letters, digits and _)",
                t.name
            ));
        }
        if !names.insert(t.name.clone()) {
            return Err(format!("table \"{}\" is declared twice", t.name));
        }
        tables.push(table(t)?);
    }
    Ok(tables)
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
}

fn table(t: RawTable) -> Result<Table, String> {
    let at =
        |column: &str, why: String| format!("table \"{}\", column \"{column}\": {why}", t.name);
    if t.files.contains('/') || t.files.contains("..") || t.files.is_empty() {
        return Err(format!(
            "table \"{}\": files = \"{}\" must be a file-name pattern inside the source's folder",
            t.name, t.files
        ));
    }
    glob::Pattern::new(&t.files)
        .map_err(|e| format!("table \"{}\": files = \"{}\": {e}", t.name, t.files))?;
    let label = t.encoding.as_deref().unwrap_or("utf-8");
    let encoding = encoding_rs::Encoding::for_label(label.as_bytes()).ok_or_else(|| {
        format!(
            "table \"{}\": unknown encoding \"{label}\" (e.g. utf-8, windows-1256)",
            t.name
        )
    })?;
    if t.column.is_empty() {
        return Err(format!("table \"{}\" has no [[table.column]]", t.name));
    }
    let mut seen = BTreeSet::new();
    let mut columns = vec![];
    let mut fields = vec![];
    for c in t.column {
        if !valid_name(&c.name) {
            return Err(at(&c.name, "not a valid column name".into()));
        }
        if !seen.insert(c.name.clone()) {
            return Err(at(&c.name, "declared twice".into()));
        }
        if c.start == 0 || c.width == 0 {
            return Err(at(
                &c.name,
                "start counts from 1, and width must be at least 1".into(),
            ));
        }
        let kind = match (c.kind.as_str(), c.scale, c.format.as_deref()) {
            ("text", None, None) => Kind::Text,
            ("integer", None, None) => Kind::Integer,
            ("decimal", scale, None) => {
                let scale = scale.unwrap_or(0);
                if !(0..=DECIMAL_PRECISION as i8).contains(&scale) {
                    return Err(at(&c.name, "scale must be between 0 and 18".into()));
                }
                Kind::Decimal(scale)
            }
            ("date", None, None | Some("yyyymmdd")) => Kind::Date,
            ("date", None, Some("jalali")) => Kind::JalaliDate,
            ("date", None, Some(other)) => {
                return Err(at(
                    &c.name,
                    format!("date format \"{other}\" is unknown (use yyyymmdd or jalali)"),
                ));
            }
            ("boolean", None, None) => Kind::Boolean,
            ("text" | "integer" | "decimal" | "date" | "boolean", _, _) => {
                return Err(at(
                    &c.name,
                    "scale is only for decimal columns, format only for dates".into(),
                ));
            }
            (other, _, _) => {
                return Err(at(
                    &c.name,
                    format!(
                        "type \"{other}\" is unknown (use text, integer, decimal, date or boolean)"
                    ),
                ));
            }
        };
        let mut field = Field::new(&c.name, kind.data_type(), true);
        if let Some(comment) = &c.comment {
            field = field.with_metadata(
                [(amar_plugin_sdk::COMMENT_KEY.to_string(), comment.clone())].into(),
            );
        }
        fields.push(field);
        columns.push(Column {
            name: c.name,
            offset: c.start - 1,
            width: c.width,
            kind,
        });
    }
    let mut metadata = std::collections::HashMap::new();
    if let Some(comment) = t.comment {
        metadata.insert(amar_plugin_sdk::COMMENT_KEY.to_string(), comment);
    }
    Ok(Table {
        name: t.name,
        files: t.files,
        encoding,
        skip_lines: t.skip_lines,
        columns,
        schema: std::sync::Arc::new(Schema::new_with_metadata(fields, metadata)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[[table]]
name = "payments"
files = "payroll_*.txt"
encoding = "windows-1256"
comment = "پرداخت‌ها"

[[table.column]]
name = "national_id"
start = 1
width = 10
type = "text"

[[table.column]]
name = "amount"
start = 11
width = 12
type = "decimal"
scale = 2

[[table.column]]
name = "paid_on"
start = 23
width = 8
type = "date"
format = "jalali"
"#;

    #[test]
    fn a_layout_becomes_typed_columns() {
        let tables = parse(GOOD).unwrap();
        let t = &tables[0];
        assert_eq!(t.encoding, encoding_rs::WINDOWS_1256);
        assert_eq!(t.columns[1].offset, 10);
        assert_eq!(t.columns[1].kind, Kind::Decimal(2));
        assert_eq!(t.columns[2].kind, Kind::JalaliDate);
        assert_eq!(
            t.schema.field(1).data_type(),
            &DataType::Decimal128(DECIMAL_PRECISION, 2)
        );
    }

    #[test]
    fn mistakes_name_the_table_and_column() {
        let bad = GOOD.replace("scale = 2", "scale = 2\nformat = \"jalali\"");
        assert_eq!(
            parse(&bad).unwrap_err(),
            "table \"payments\", column \"amount\": scale is only for decimal columns, format only for dates"
        );
        let bad = GOOD.replace("type = \"text\"", "type = \"txt\"");
        assert!(parse(&bad).unwrap_err().contains("type \"txt\" is unknown"));
        let bad = GOOD.replace("windows-1256", "klingon");
        assert!(
            parse(&bad)
                .unwrap_err()
                .contains("unknown encoding \"klingon\"")
        );
        let bad = GOOD.replace("payroll_*.txt", "../etc/*");
        assert!(
            parse(&bad)
                .unwrap_err()
                .contains("must be a file-name pattern")
        );
        let bad = GOOD.replace("start = 11", "start = 0");
        assert!(parse(&bad).unwrap_err().contains("start counts from 1"));
    }
}
