//! PostgreSQL catalog functions our users' tools call and datafusion-pg-catalog lacks:
//! `col_description`, `obj_description`, `shobj_description`, `pg_get_indexdef`,
//! `pg_get_constraintdef` (for our primary keys), `to_regtype`, `version()`.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Builder, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::error::Result;
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, TypeSignature,
    Volatility,
};

use super::directory::{OidDirectory, TableInfo};
use crate::visible::Visibility;

/// Looks up a row's answer from the OID directory, as one user sees it.
type Lookup = fn(&Seen, &[ArrayRef], usize) -> Option<String>;

/// The OID directory through one user's eyes: a table they may not read has no
/// comment, index or constraint, and a column hidden from them no comment.
pub(super) struct Seen<'a> {
    pub dir: &'a OidDirectory,
    pub visibility: Option<&'a dyn Visibility>,
}

impl Seen<'_> {
    fn visible(&self, table: Arc<TableInfo>) -> Option<Arc<TableInfo>> {
        match self.visibility {
            Some(v) if !v.table_visible(&table.schema, &table.name) => None,
            _ => Some(table),
        }
    }

    pub fn table(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.visible(self.dir.table(oid)?)
    }

    fn by_index(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.visible(self.dir.by_index(oid)?)
    }

    fn by_constraint(&self, oid: i32) -> Option<Arc<TableInfo>> {
        self.visible(self.dir.by_constraint(oid)?)
    }

    /// Whether column `attnum` of `table` is hidden from this user.
    pub fn column_hidden(&self, table: &TableInfo, attnum: i16) -> bool {
        let Some(v) = self.visibility else {
            return false;
        };
        let name = usize::try_from(attnum - 1)
            .ok()
            .and_then(|i| table.column_names.get(i));
        match name {
            Some(name) => v
                .hidden_columns(&table.schema, &table.name)
                .iter()
                .any(|h| h == name),
            None => true,
        }
    }
}

/// A text-valued catalog function answered from the directory.
struct DirectoryFunction {
    name: &'static str,
    signature: Signature,
    directory: Arc<OidDirectory>,
    /// The session's user; none answers for everything (the base session).
    visibility: Option<Arc<dyn Visibility>>,
    lookup: Lookup,
}

impl std::fmt::Debug for DirectoryFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryFunction")
            .field("name", &self.name)
            .finish()
    }
}

impl PartialEq for DirectoryFunction {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for DirectoryFunction {}

impl Hash for DirectoryFunction {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

impl ScalarUDFImpl for DirectoryFunction {
    fn name(&self) -> &str {
        self.name
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
        let seen = Seen {
            dir: &self.directory,
            visibility: self.visibility.as_deref(),
        };
        for row in 0..n {
            out.append_option((self.lookup)(&seen, &arrays, row));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

fn int_arg(arrays: &[ArrayRef], i: usize, row: usize) -> Option<i64> {
    let a = arrays.get(i)?;
    if a.is_null(row) {
        return None;
    }
    match a.data_type() {
        DataType::Int64 => Some(a.as_primitive::<Int64Type>().value(row)),
        _ => None,
    }
}

fn str_arg(arrays: &[ArrayRef], i: usize, row: usize) -> Option<String> {
    let a = arrays.get(i)?;
    if a.is_null(row) {
        return None;
    }
    match a.data_type() {
        DataType::Utf8 => Some(a.as_string::<i32>().value(row).to_string()),
        DataType::Utf8View => Some(a.as_string_view().value(row).to_string()),
        DataType::LargeUtf8 => Some(a.as_string::<i64>().value(row).to_string()),
        _ => None,
    }
}

fn col_description(dir: &Seen, args: &[ArrayRef], row: usize) -> Option<String> {
    let table = dir.table(int_arg(args, 0, row)? as i32)?;
    let attnum = int_arg(args, 1, row)? as i16;
    if dir.column_hidden(&table, attnum) {
        return None;
    }
    table
        .column_comments
        .iter()
        .find(|(a, _)| *a == attnum)
        .map(|(_, c)| c.clone())
}

fn obj_description(dir: &Seen, args: &[ArrayRef], row: usize) -> Option<String> {
    let oid = int_arg(args, 0, row)? as i32;
    // With a catalog name, only pg_class objects have comments here.
    if args.len() > 1 && str_arg(args, 1, row).is_some_and(|c| c != "pg_class") {
        return None;
    }
    dir.table(oid)?.comment.clone()
}

fn no_description(_: &Seen, _: &[ArrayRef], _: usize) -> Option<String> {
    None
}

fn pg_get_indexdef(dir: &Seen, args: &[ArrayRef], row: usize) -> Option<String> {
    let table = dir.by_index(int_arg(args, 0, row)? as i32)?;
    match int_arg(args, 1, row).unwrap_or(0) {
        0 => Some(table.index_definition()),
        k => table
            .primary_key
            .get(k as usize - 1)
            .map(|(_, c)| super::directory::quote_ident(c)),
    }
}

fn pg_get_constraintdef(dir: &Seen, args: &[ArrayRef], row: usize) -> Option<String> {
    Some(
        dir.by_constraint(int_arg(args, 0, row)? as i32)?
            .constraint_definition(),
    )
}

/// A view's definition, for a user who may read the view; NULL otherwise (and for
/// a table, where PostgreSQL would complain: tools call it on views only).
fn pg_get_viewdef(dir: &Seen, args: &[ArrayRef], row: usize) -> Option<String> {
    dir.table(int_arg(args, 0, row)? as i32)?.definition.clone()
}

fn signature(shapes: Vec<Vec<DataType>>) -> Signature {
    Signature::one_of(
        shapes.into_iter().map(TypeSignature::Exact).collect(),
        Volatility::Stable,
    )
}

/// The directory-backed functions.
pub fn directory_functions(
    directory: Arc<OidDirectory>,
    visibility: Option<Arc<dyn Visibility>>,
) -> Vec<ScalarUDF> {
    use DataType::{Boolean, Int64, Utf8};
    let make = |name: &'static str, shapes: Vec<Vec<DataType>>, lookup: Lookup| {
        ScalarUDF::new_from_impl(DirectoryFunction {
            name,
            signature: signature(shapes),
            directory: directory.clone(),
            visibility: visibility.clone(),
            lookup,
        })
    };
    vec![
        make("col_description", vec![vec![Int64, Int64]], col_description),
        make(
            "obj_description",
            vec![vec![Int64], vec![Int64, Utf8]],
            obj_description,
        ),
        make("shobj_description", vec![vec![Int64, Utf8]], no_description),
        make(
            "pg_get_indexdef",
            vec![vec![Int64], vec![Int64, Int64, Boolean]],
            pg_get_indexdef,
        ),
        make(
            "pg_get_viewdef",
            vec![vec![Int64], vec![Int64, Boolean]],
            pg_get_viewdef,
        ),
        make(
            "pg_get_constraintdef",
            vec![vec![Int64], vec![Int64, Boolean]],
            pg_get_constraintdef,
        ),
    ]
}

/// A function of one OID (given as a number or as quoted text, as psql writes it)
/// whose answer does not depend on it.
#[derive(Debug)]
pub struct Constant {
    name: &'static str,
    signature: Signature,
    value: bool,
}

impl Constant {
    pub fn boolean(name: &'static str, value: bool) -> Self {
        use DataType::{Int32, Int64, Utf8};
        Self {
            name,
            signature: signature(vec![vec![Int32], vec![Int64], vec![Utf8]]),
            value,
        }
    }
}

impl PartialEq for Constant {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.value == other.value
    }
}

impl Eq for Constant {}

impl Hash for Constant {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.value.hash(state);
    }
}

impl ScalarUDFImpl for Constant {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn invoke_with_args(&self, _args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        Ok(ColumnarValue::Scalar(
            datafusion::scalar::ScalarValue::Boolean(Some(self.value)),
        ))
    }
}

/// `to_regtype(text)`: a type's OID from its name, or NULL.
#[derive(Debug)]
struct ToRegtype {
    signature: Signature,
    types: HashMap<String, i32>,
}

impl PartialEq for ToRegtype {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for ToRegtype {}

impl Hash for ToRegtype {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "to_regtype".hash(state);
    }
}

/// SQL spellings of built-in types, to their `pg_type.typname`.
const TYPE_ALIASES: &[(&str, &str)] = &[
    ("integer", "int4"),
    ("int", "int4"),
    ("smallint", "int2"),
    ("bigint", "int8"),
    ("real", "float4"),
    ("double precision", "float8"),
    ("boolean", "bool"),
    ("character varying", "varchar"),
    ("character", "bpchar"),
    ("decimal", "numeric"),
    ("timestamp without time zone", "timestamp"),
    ("timestamp with time zone", "timestamptz"),
    ("time without time zone", "time"),
    ("time with time zone", "timetz"),
];

impl ToRegtype {
    fn resolve(&self, name: &str) -> Option<i32> {
        let mut name = name.trim().to_ascii_lowercase();
        if let Some(rest) = name.strip_prefix("pg_catalog.") {
            name = rest.to_string();
        }
        name = name.trim_matches('"').to_string();
        // Drop a type modifier: varchar(20) is varchar.
        if let Some((base, _)) = name.split_once('(') {
            name = base.trim().to_string();
        }
        let array = name.ends_with("[]");
        let base = name.trim_end_matches("[]").trim();
        let base = TYPE_ALIASES
            .iter()
            .find(|(alias, _)| *alias == base)
            .map(|(_, t)| *t)
            .unwrap_or(base);
        let key = if array {
            format!("_{base}")
        } else {
            base.to_string()
        };
        self.types.get(&key).copied()
    }
}

impl ScalarUDFImpl for ToRegtype {
    fn name(&self) -> &str {
        "to_regtype"
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
            out.append_option(str_arg(&arrays, 0, row).and_then(|name| self.resolve(&name)));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// `to_regtype` over the given `typname → oid` table.
pub fn to_regtype(types: HashMap<String, i32>) -> ScalarUDF {
    ScalarUDF::new_from_impl(ToRegtype {
        signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
        types,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_names_resolve_as_postgres_spells_them() {
        let t = ToRegtype {
            signature: Signature::exact(vec![DataType::Utf8], Volatility::Stable),
            types: HashMap::from([
                ("int4".to_string(), 23),
                ("_int4".to_string(), 1007),
                ("varchar".to_string(), 1043),
                ("timestamptz".to_string(), 1184),
            ]),
        };
        assert_eq!(t.resolve("integer"), Some(23));
        assert_eq!(t.resolve("pg_catalog.int4"), Some(23));
        assert_eq!(t.resolve("int4[]"), Some(1007));
        assert_eq!(t.resolve("character varying(20)"), Some(1043));
        assert_eq!(t.resolve("timestamp with time zone"), Some(1184));
        assert_eq!(t.resolve("hstore"), None);
    }
}

/// `information_schema._pg_expandarray(anyarray)`: PostgreSQL returns a set of
/// `(x, n)` records, the elements and their 1-based positions. Here it returns them
/// as a list of structs, and the SQL rewriter wraps each call in `unnest`, so
/// `(information_schema._pg_expandarray(i.indkey)).n` (pgjdbc's getPrimaryKeys) plans.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ExpandArray {
    signature: Signature,
}

impl Default for ExpandArray {
    fn default() -> Self {
        Self {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

fn expanded_type(list: &DataType) -> Result<DataType> {
    let element = match list {
        DataType::List(f) | DataType::LargeList(f) => f.data_type().clone(),
        other => {
            return Err(datafusion::error::DataFusionError::Plan(format!(
                "_pg_expandarray expects an array, got {other}"
            )));
        }
    };
    let fields = datafusion::arrow::datatypes::Fields::from(vec![
        datafusion::arrow::datatypes::Field::new("x", element, true),
        datafusion::arrow::datatypes::Field::new("n", DataType::Int32, false),
    ]);
    Ok(DataType::List(Arc::new(
        datafusion::arrow::datatypes::Field::new_list_field(DataType::Struct(fields), true),
    )))
}

impl ScalarUDFImpl for ExpandArray {
    fn name(&self) -> &str {
        "_pg_expandarray"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        expanded_type(&arg_types[0])
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        use datafusion::arrow::array::{Int32Array, ListArray, StructArray};
        use datafusion::arrow::buffer::OffsetBuffer;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let list = arrays[0].as_list::<i32>();
        let DataType::List(item) = expanded_type(list.data_type())? else {
            unreachable!("expanded_type returns a list");
        };
        let DataType::Struct(fields) = item.data_type().clone() else {
            unreachable!("the list holds structs");
        };
        let offsets = list.offsets();
        let mut positions = Vec::with_capacity(list.values().len());
        for w in offsets.windows(2) {
            positions.extend(1..=(w[1] - w[0]));
        }
        // The struct covers every value of the list array, so slice-aligned offsets
        // stay valid.
        let first = offsets[0] as usize;
        let last = offsets[offsets.len() - 1] as usize;
        let values = list.values().slice(first, last - first);
        let structs = StructArray::try_new(
            fields,
            vec![values, Arc::new(Int32Array::from(positions))],
            None,
        )?;
        let rebased = OffsetBuffer::new(
            offsets
                .iter()
                .map(|o| o - offsets[0])
                .collect::<Vec<_>>()
                .into(),
        );
        let out = ListArray::try_new(item, rebased, Arc::new(structs), list.nulls().cloned())?;
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `format_type(oid, typmod)`: the crate's, except that `numeric` with a type modifier
/// prints as PostgreSQL prints it, `numeric(14,0)` — SQLAlchemy and Metabase read
/// precision and scale from this text, and `numeric(14)` gives them neither.
#[derive(Debug)]
pub struct FormatType {
    inner: Arc<ScalarUDF>,
}

impl FormatType {
    pub fn new(inner: Arc<ScalarUDF>) -> Self {
        Self { inner }
    }
}

impl PartialEq for FormatType {
    fn eq(&self, _other: &Self) -> bool {
        true
    }
}

impl Eq for FormatType {}

impl Hash for FormatType {
    fn hash<H: Hasher>(&self, state: &mut H) {
        "format_type".hash(state);
    }
}

const NUMERIC_OID: i64 = 1700;

impl ScalarUDFImpl for FormatType {
    fn name(&self) -> &str {
        "format_type"
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.inner.return_type(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let as_i64 = |a: &ArrayRef| datafusion::arrow::compute::cast(a, &DataType::Int64);
        let oids = as_i64(&arrays[0])?;
        let oids = oids.as_primitive::<Int64Type>();
        let mods = match arrays.get(1) {
            Some(a) => Some(as_i64(a)?),
            None => None,
        };
        let answer = self.inner.invoke_with_args(args)?;
        let answer = answer.into_array(n)?;
        let answer = datafusion::arrow::compute::cast(&answer, &DataType::Utf8)?;
        let answer = answer.as_string::<i32>();
        let mut out = StringBuilder::with_capacity(n, n * 16);
        for row in 0..n {
            let typmod = mods
                .as_ref()
                .map(|m| m.as_primitive::<Int64Type>())
                .filter(|m| !m.is_null(row))
                .map(|m| m.value(row));
            match typmod {
                Some(m) if !oids.is_null(row) && oids.value(row) == NUMERIC_OID && m >= 4 => {
                    let m = m - 4;
                    out.append_value(format!("numeric({},{})", (m >> 16) & 0xffff, m & 0xffff));
                }
                _ if answer.is_null(row) => out.append_null(),
                _ => out.append_value(answer.value(row)),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

/// PostgreSQL's `pg_size_pretty(bigint)`: bytes in the largest unit that keeps at
/// least 10 of it, halves rounded away from zero, as PostgreSQL prints them.
pub fn size_pretty(bytes: i64) -> String {
    const LIMIT: i64 = 10 * 1024;
    const LIMIT2: i64 = LIMIT * 2 - 1;
    if bytes.abs() < LIMIT {
        return format!("{bytes} bytes");
    }
    let half_rounded = |v: i64| (v + if v < 0 { -1 } else { 1 }) / 2;
    // In half-units from here on, as PostgreSQL does.
    let mut size = bytes >> 9;
    for unit in ["kB", "MB", "GB", "TB"] {
        if size.abs() < LIMIT2 {
            return format!("{} {unit}", half_rounded(size));
        }
        size >>= 10;
    }
    format!("{} PB", half_rounded(size))
}

pub fn pg_size_pretty() -> ScalarUDF {
    datafusion::logical_expr::create_udf(
        "pg_size_pretty",
        vec![DataType::Int64],
        DataType::Utf8,
        Volatility::Immutable,
        Arc::new(|args: &[ColumnarValue]| {
            let arrays = ColumnarValue::values_to_arrays(args)?;
            let sizes = arrays[0].as_primitive::<Int64Type>();
            let out: datafusion::arrow::array::StringArray =
                sizes.iter().map(|v| v.map(size_pretty)).collect();
            Ok(ColumnarValue::Array(Arc::new(out)))
        }),
    )
}

#[cfg(test)]
mod size_tests {
    use super::size_pretty;

    #[test]
    fn sizes_print_as_postgres_prints_them() {
        assert_eq!(size_pretty(0), "0 bytes");
        assert_eq!(size_pretty(10239), "10239 bytes");
        assert_eq!(size_pretty(10240), "10 kB");
        assert_eq!(size_pretty(1_000_000), "977 kB");
        assert_eq!(size_pretty(100_000_000), "95 MB");
        assert_eq!(size_pretty(1i64 << 40), "1024 GB");
    }
}
