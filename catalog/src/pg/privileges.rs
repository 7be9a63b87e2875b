//! `has_table_privilege` and its family, and the text functions tools build object
//! names with (`format`, `to_regclass`).
//!
//! Amar serves its sources read-only: reading privileges (SELECT, USAGE, CONNECT)
//! are granted, changing ones (INSERT, UPDATE, DELETE, CREATE…) never. Tools such as
//! Metabase read these answers to decide whether a table can be written to.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanBuilder, Int32Builder, StringBuilder,
};
use datafusion::arrow::datatypes::DataType;
use datafusion::error::{DataFusionError, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::directory::{OidDirectory, quote_ident};
use crate::visible::Visibility;

/// The privileges Amar grants on what a user may see.
const READ_PRIVILEGES: &[&str] = &[
    "select",
    "usage",
    "connect",
    "references",
    "temporary",
    "temp",
    "execute",
];

fn text(array: &ArrayRef, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    match array.data_type() {
        DataType::Utf8 => Some(array.as_string::<i32>().value(row).to_string()),
        DataType::LargeUtf8 => Some(array.as_string::<i64>().value(row).to_string()),
        DataType::Utf8View => Some(array.as_string_view().value(row).to_string()),
        _ => datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Utf8)
            .ok()
            .map(|a| a.as_string::<i32>().value(0).to_string()),
    }
}

/// True when every privilege in a PostgreSQL privilege list (`'SELECT, INSERT'`,
/// `'select WITH GRANT OPTION'`) is a reading one.
pub fn only_reads(list: &str) -> bool {
    list.split(',')
        .map(|p| p.trim().to_ascii_lowercase())
        .map(|p| p.trim_end_matches("with grant option").trim().to_string())
        .all(|p| READ_PRIVILEGES.contains(&p.as_str()))
}

struct HasPrivilege {
    name: &'static str,
    signature: Signature,
    /// The tables, and what this session's user may see of them: a table or column
    /// they may not read has no privilege (none: the base session, which sees all).
    seen: Option<(Arc<OidDirectory>, Arc<dyn Visibility>)>,
}

impl std::fmt::Debug for HasPrivilege {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HasPrivilege")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl PartialEq for HasPrivilege {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for HasPrivilege {}

impl Hash for HasPrivilege {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl HasPrivilege {
    /// Whether the user may read the table (and column) a row names; true for what
    /// the directory does not hold (pg_catalog's own tables, schemas, functions).
    fn readable(&self, arrays: &[ArrayRef], row: usize) -> bool {
        let Some((directory, visibility)) = &self.seen else {
            return true;
        };
        let (table_arg, column_arg) = match (self.name, arrays.len()) {
            ("has_table_privilege" | "has_any_column_privilege", 2) => (0, None),
            ("has_table_privilege" | "has_any_column_privilege", 3) => (1, None),
            ("has_column_privilege", 3) => (0, Some(1)),
            ("has_column_privilege", 4) => (1, Some(2)),
            _ => return true,
        };
        let Some(array) = arrays.get(table_arg) else {
            return true;
        };
        let oid = if array.data_type().is_integer() {
            datafusion::arrow::compute::cast(&array.slice(row, 1), &DataType::Int64)
                .ok()
                .and_then(|a| {
                    let a = a.as_primitive::<datafusion::arrow::datatypes::Int64Type>();
                    a.is_valid(0).then(|| a.value(0) as i32)
                })
        } else {
            text(array, row).and_then(|name| match split_qualified(&name).as_slice() {
                [table] => directory.relation(None, table),
                [schema, table] | [_, schema, table] => directory.relation(Some(schema), table),
                _ => None,
            })
        };
        let Some(table) = oid.and_then(|oid| directory.table(oid)) else {
            return true;
        };
        if !visibility.table_visible(&table.schema, &table.name) {
            return false;
        }
        match column_arg
            .and_then(|i| arrays.get(i))
            .and_then(|a| text(a, row))
        {
            Some(column) => !visibility
                .hidden_columns(&table.schema, &table.name)
                .iter()
                .any(|h| h.eq_ignore_ascii_case(&column)),
            None => true,
        }
    }
}

impl ScalarUDFImpl for HasPrivilege {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let privileges = arrays
            .last()
            .ok_or_else(|| DataFusionError::Plan(format!("{} needs a privilege", self.name)))?;
        let mut out = BooleanBuilder::with_capacity(n);
        for row in 0..n {
            out.append_option(
                text(privileges, row).map(|p| only_reads(&p) && self.readable(&arrays, row)),
            );
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// The has_*_privilege functions, answering for one user when `seen` says who.
pub fn privilege_functions(
    seen: Option<(Arc<OidDirectory>, Arc<dyn Visibility>)>,
) -> Vec<ScalarUDF> {
    [
        "has_table_privilege",
        "has_any_column_privilege",
        "has_column_privilege",
        "has_schema_privilege",
        "has_database_privilege",
        "has_function_privilege",
        "has_sequence_privilege",
    ]
    .into_iter()
    .map(|name| {
        ScalarUDF::new_from_impl(HasPrivilege {
            name,
            seen: seen.clone(),
            signature: Signature::one_of(
                vec![
                    TypeSignature::Any(2),
                    TypeSignature::Any(3),
                    TypeSignature::Any(4),
                ],
                Volatility::Stable,
            ),
        })
    })
    .collect()
}

/// PostgreSQL's `format(fmt, args…)` with `%s`, `%I`, `%L` and `%%`.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Format {
    signature: Signature,
}

/// Formats one row; `None` when an `%I` argument is NULL (PostgreSQL raises an error
/// there; here the result is NULL).
pub fn format_row(fmt: &str, args: &[Option<String>]) -> Result<Option<String>> {
    let mut out = String::with_capacity(fmt.len() + 16);
    let mut chars = fmt.chars().peekable();
    let mut next = 0usize;
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let spec = chars.next().ok_or_else(|| {
            DataFusionError::Execution("unterminated format() type specifier".into())
        })?;
        if spec == '%' {
            out.push('%');
            continue;
        }
        let arg = args
            .get(next)
            .ok_or_else(|| DataFusionError::Execution("too few arguments for format()".into()))?;
        next += 1;
        match spec {
            's' => out.push_str(arg.as_deref().unwrap_or("")),
            'I' => match arg {
                Some(a) => out.push_str(&quote_ident(a)),
                None => return Ok(None),
            },
            'L' => match arg {
                Some(a) => out.push_str(&format!("'{}'", a.replace('\'', "''"))),
                None => out.push_str("NULL"),
            },
            other => {
                return Err(DataFusionError::Execution(format!(
                    "unrecognized format() type specifier \"{other}\""
                )));
            }
        }
    }
    Ok(Some(out))
}

impl ScalarUDFImpl for Format {
    fn name(&self) -> &str {
        "format"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = StringBuilder::with_capacity(n, n * 16);
        for row in 0..n {
            let Some(fmt) = arrays.first().and_then(|a| text(a, row)) else {
                out.append_null();
                continue;
            };
            let values: Vec<Option<String>> = arrays[1..].iter().map(|a| text(a, row)).collect();
            out.append_option(format_row(&fmt, &values)?);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

pub fn format_function() -> ScalarUDF {
    ScalarUDF::new_from_impl(Format {
        signature: Signature::variadic_any(Volatility::Immutable),
    })
}

/// `to_regclass(text)`: a relation's OID from its (possibly qualified, possibly
/// quoted) name, or NULL.
struct ToRegclass {
    signature: Signature,
    directory: Arc<OidDirectory>,
}

impl std::fmt::Debug for ToRegclass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ToRegclass")
    }
}

impl PartialEq for ToRegclass {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for ToRegclass {}

impl Hash for ToRegclass {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "to_regclass".hash(state);
    }
}

/// Splits `schema.name` (each part optionally double-quoted) into its parts.
pub fn split_qualified(name: &str) -> Vec<String> {
    let mut parts = vec![];
    let mut current = String::new();
    let mut quoted = false;
    let mut chars = name.trim().chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                current.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut current)),
            c if quoted => current.push(c),
            c => current.push(c.to_ascii_lowercase()),
        }
    }
    parts.push(current);
    parts
}

impl ScalarUDFImpl for ToRegclass {
    fn name(&self) -> &str {
        "to_regclass"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let mut out = Int32Builder::with_capacity(n);
        for row in 0..n {
            let oid =
                text(&arrays[0], row).and_then(|name| match split_qualified(&name).as_slice() {
                    [table] => self.directory.relation(None, table),
                    [schema, table] => self.directory.relation(Some(schema), table),
                    [_database, schema, table] => self.directory.relation(Some(schema), table),
                    _ => None,
                });
            out.append_option(oid);
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

pub fn to_regclass(directory: Arc<OidDirectory>) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToRegclass {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        directory,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_privileges_are_granted() {
        assert!(only_reads("SELECT"));
        assert!(only_reads("select, usage"));
        assert!(only_reads("SELECT WITH GRANT OPTION"));
        assert!(!only_reads("INSERT"));
        assert!(!only_reads("SELECT, UPDATE"));
        assert!(!only_reads("create"));
    }

    #[test]
    fn format_follows_postgres() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            format_row("%I.%I", &[s("insurance"), s("Contributions")]).unwrap(),
            s("insurance.\"Contributions\"")
        );
        assert_eq!(
            format_row("%s = %L", &[s("a"), s("O'Neil")]).unwrap(),
            s("a = 'O''Neil'")
        );
        assert_eq!(
            format_row("%L and %s", &[None, None]).unwrap(),
            s("NULL and ")
        );
        assert_eq!(format_row("100%%", &[]).unwrap(), s("100%"));
        assert!(format_row("%s %s", &[s("x")]).is_err());
    }

    #[test]
    fn qualified_names_split_like_identifiers() {
        assert_eq!(
            split_qualified("insurance.contributions"),
            vec!["insurance", "contributions"]
        );
        assert_eq!(
            split_qualified("\"My Schema\".\"a\"\"b\""),
            vec!["My Schema", "a\"b"]
        );
        assert_eq!(split_qualified("Public.T"), vec!["public", "t"]);
    }
}
