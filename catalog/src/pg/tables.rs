//! Our pg_catalog tables: the crate's `pg_class`, `pg_attribute` and
//! `pg_description` completed with what Amar knows of user tables, and our own
//! `pg_constraint` and `pg_index` holding the sources' primary keys.
//!
//! The crate's static `pg_constraint` and `pg_index` rows describe a real
//! PostgreSQL's system tables under that server's OIDs, which match nothing in this
//! catalog; clients joining them to `pg_class` got nonsense, so ours replace them.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Int16Array, Int16Builder, Int32Array, ListBuilder,
    RecordBatch, StringArray,
};
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::{DataType, Field, Int16Type, Int32Type, Schema, SchemaRef};
use datafusion::catalog::{SchemaProvider, Session};
use datafusion::error::Result;
use datafusion::physical_plan::collect;
use datafusion::scalar::ScalarValue;
use datafusion_pg_catalog::pg_catalog::oid_field::{kind, oid_field};

use super::directory::{OidDirectory, TableInfo};
pub use crate::computed::{CatalogRows, Computed};
use crate::visible::{ALWAYS_LISTED, SessionVisibility, Visibility};

/// The asking session's view of the catalog, when it does not see everything.
fn viewer(state: &dyn Session) -> Option<Arc<dyn Visibility>> {
    state
        .config()
        .get_extension::<SessionVisibility>()
        .map(|v| v.0.clone())
        .filter(|v| !v.sees_everything())
}

/// Keeps the rows for which `keep` holds.
fn keep_rows(batch: RecordBatch, keep: impl Fn(usize) -> bool) -> Result<RecordBatch> {
    let mask: BooleanArray = (0..batch.num_rows()).map(|i| Some(keep(i))).collect();
    Ok(datafusion::arrow::compute::filter_record_batch(
        &batch, &mask,
    )?)
}

/// Whether a user table (or the table of a key index) is visible to `viewer`.
fn relation_visible(directory: &OidDirectory, viewer: &dyn Visibility, oid: i32) -> Option<bool> {
    directory
        .table(oid)
        .or_else(|| directory.by_index(oid))
        .map(|t| viewer.table_visible(&t.schema, &t.name))
}

/// Whether a schema shows: always-listed ones do, others when any of their tables is
/// visible.
fn schema_visible(directory: &OidDirectory, viewer: &dyn Visibility, schema: &str) -> bool {
    ALWAYS_LISTED.contains(&schema)
        || directory
            .schema_tables(schema)
            .iter()
            .any(|t| viewer.table_visible(schema, t))
}

/// `pg_class`'s OID, the `classoid` of table and column descriptions.
const PG_CLASS_OID: i32 = 1259;
const BTREE_AM_OID: i32 = 403;

/// What every table here needs: the crate's pg_catalog, to read its tables and
/// OIDs, and the directory.
#[derive(Debug, Clone)]
pub struct Context {
    pub inner: Arc<dyn SchemaProvider>,
    pub directory: Arc<OidDirectory>,
}

impl Context {
    async fn refresh(&self, state: &dyn Session) -> Result<()> {
        self.directory.refresh(state, self.inner.as_ref()).await
    }

    /// Every row of one of the crate's tables, in one batch.
    async fn inner_rows(
        &self,
        state: &dyn Session,
        table: &str,
    ) -> Result<(SchemaRef, RecordBatch)> {
        let provider = self.inner.table(table).await?.ok_or_else(|| {
            datafusion::error::DataFusionError::Internal(format!("pg_catalog.{table} is missing"))
        })?;
        let schema = provider.schema();
        let plan = provider.scan(state, None, &[], None).await?;
        let batches = collect(plan, state.task_ctx()).await?;
        let batch = concat_batches(&schema, &batches)?;
        Ok((schema, batch))
    }
}

/// A batch of `n` rows for `schema`, with the given columns and every other column at
/// its default (NULL when nullable, else zero, false or empty).
fn rows_with(
    schema: &SchemaRef,
    n: usize,
    mut set: HashMap<&str, ArrayRef>,
) -> Result<RecordBatch> {
    let columns = schema
        .fields()
        .iter()
        .map(|f| match set.remove(f.name().as_str()) {
            Some(array) if array.data_type() == f.data_type() => Ok(array),
            Some(array) => Ok(datafusion::arrow::compute::cast(&array, f.data_type())?),
            None if f.is_nullable() => ScalarValue::try_from(f.data_type())?.to_array_of_size(n),
            None => ScalarValue::new_default(f.data_type())?.to_array_of_size(n),
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

fn int2_lists(lists: impl IntoIterator<Item = Vec<i16>>) -> ArrayRef {
    let mut b = ListBuilder::new(Int16Builder::new());
    for list in lists {
        for v in list {
            b.values().append_value(v);
        }
        b.append(true);
    }
    Arc::new(b.finish())
}

fn strings(values: impl IntoIterator<Item = String>) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(values))
}

fn ints(values: impl IntoIterator<Item = i32>) -> ArrayRef {
    Arc::new(Int32Array::from_iter_values(values))
}

fn bools(value: bool, n: usize) -> ArrayRef {
    Arc::new(BooleanArray::from(vec![value; n]))
}

/// `pg_class`: the crate's rows, with `relhasindex` set for tables with a primary
/// key, plus one row per primary-key index (`<table>_pkey`, relkind `i`).
#[derive(Debug)]
pub struct PgClass {
    pub context: Context,
    pub schema: SchemaRef,
}

#[async_trait]
impl CatalogRows for PgClass {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.context.refresh(state).await?;
        let (schema, batch) = self.context.inner_rows(state, "pg_class").await?;
        let keyed: Vec<Arc<TableInfo>> = self
            .context
            .directory
            .tables()
            .into_iter()
            .filter(|t| !t.primary_key.is_empty())
            .collect();
        // relhasindex for tables with a key.
        let oids = batch
            .column(schema.index_of("oid")?)
            .as_primitive::<Int32Type>()
            .clone();
        let has_index: BooleanArray = (0..batch.num_rows())
            .map(|i| Some(keyed.iter().any(|t| t.oid == oids.value(i))))
            .collect();
        let mut columns = batch.columns().to_vec();
        columns[schema.index_of("relhasindex")?] = Arc::new(has_index);
        let existing = RecordBatch::try_new(schema.clone(), columns)?;
        let n = keyed.len();
        let indexes = rows_with(
            &schema,
            n,
            HashMap::from([
                ("oid", ints(keyed.iter().map(|t| t.index_oid()))),
                ("relname", strings(keyed.iter().map(|t| t.index_name()))),
                ("relnamespace", ints(keyed.iter().map(|t| t.namespace_oid))),
                ("relam", ints(keyed.iter().map(|_| BTREE_AM_OID))),
                ("relfilenode", ints(keyed.iter().map(|t| t.index_oid()))),
                ("relpages", ints(keyed.iter().map(|_| 1))),
                ("relkind", strings(keyed.iter().map(|_| "i".to_string()))),
                (
                    "relpersistence",
                    strings(keyed.iter().map(|_| "p".to_string())),
                ),
                (
                    "relreplident",
                    strings(keyed.iter().map(|_| "n".to_string())),
                ),
                ("relispopulated", bools(true, n)),
                (
                    "relnatts",
                    Arc::new(Int16Array::from_iter_values(
                        keyed.iter().map(|t| t.primary_key.len() as i16),
                    )) as ArrayRef,
                ),
                ("relpartbound", strings(keyed.iter().map(|_| String::new()))),
            ]),
        )?;
        let mut all = concat_batches(&schema, &[existing, indexes])?;
        if let Some(viewer) = viewer(state) {
            let directory = &self.context.directory;
            let oids = all
                .column(schema.index_of("oid")?)
                .as_primitive::<Int32Type>()
                .clone();
            let names = datafusion::arrow::compute::cast(
                all.column(schema.index_of("relname")?),
                &DataType::Utf8,
            )?;
            let names = names.as_string::<i32>().clone();
            let spaces = all
                .column(schema.index_of("relnamespace")?)
                .as_primitive::<Int32Type>()
                .clone();
            all = keep_rows(all, |i| {
                if let Some(v) = relation_visible(directory, viewer.as_ref(), oids.value(i)) {
                    return v;
                }
                match directory.namespace(spaces.value(i)) {
                    Some(s) if ALWAYS_LISTED.contains(&s.as_str()) => true,
                    Some(s) => viewer.table_visible(&s, names.value(i)),
                    None => true,
                }
            })?;
        }
        with_extra_columns(&self.schema, all)
    }
}

/// Columns PostgreSQL 16 has that the crate's table lacks (all NULL here), e.g.
/// `pg_class.reloptions`, which SQLAlchemy's index reflection reads.
pub fn extended_schema(inner: &SchemaRef, extra: &[(&str, DataType)]) -> SchemaRef {
    let mut fields: Vec<Field> = inner.fields().iter().map(|f| f.as_ref().clone()).collect();
    for (name, data_type) in extra {
        if inner.index_of(name).is_err() {
            fields.push(Field::new(*name, data_type.clone(), true));
        }
    }
    Arc::new(Schema::new_with_metadata(fields, inner.metadata().clone()))
}

fn with_extra_columns(schema: &SchemaRef, batch: RecordBatch) -> Result<RecordBatch> {
    let mut columns = batch.columns().to_vec();
    for f in schema.fields().iter().skip(columns.len()) {
        columns.push(ScalarValue::try_from(f.data_type())?.to_array_of_size(batch.num_rows())?);
    }
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}

/// Text-array columns PostgreSQL's `pg_class` has and the crate's does not.
pub fn pg_class_extra() -> Vec<(&'static str, DataType)> {
    let text_array = DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true)));
    vec![("reloptions", text_array.clone()), ("relacl", text_array)]
}

/// An empty table with the given schema (catalogs of features Amar has not, whose
/// static rows in the crate carry arrays as text).
#[derive(Debug)]
pub struct Empty {
    pub schema: SchemaRef,
}

#[async_trait]
impl CatalogRows for Empty {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, _state: &dyn Session) -> Result<RecordBatch> {
        Ok(RecordBatch::new_empty(self.schema.clone()))
    }
}

/// `pg_attribute`: the crate's rows with `atttypmod` set for numerics of known
/// precision (so clients show `numeric(14,2)`, not `numeric`), plus the key columns
/// of each primary-key index.
#[derive(Debug)]
pub struct PgAttribute {
    pub context: Context,
    pub schema: SchemaRef,
}

#[async_trait]
impl CatalogRows for PgAttribute {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.context.refresh(state).await?;
        let (schema, batch) = self.context.inner_rows(state, "pg_attribute").await?;
        let tables = self.context.directory.tables();
        let typmods: HashMap<(i32, i16), i32> = tables
            .iter()
            .flat_map(|t| {
                t.numeric_typmods
                    .iter()
                    .map(move |(attnum, m)| ((t.oid, *attnum), *m))
            })
            .collect();
        let relids = batch
            .column(schema.index_of("attrelid")?)
            .as_primitive::<Int32Type>();
        let attnums = batch
            .column(schema.index_of("attnum")?)
            .as_primitive::<Int16Type>();
        let old = batch
            .column(schema.index_of("atttypmod")?)
            .as_primitive::<Int32Type>();
        let fixed: Int32Array = (0..batch.num_rows())
            .map(|i| {
                Some(
                    typmods
                        .get(&(relids.value(i), attnums.value(i)))
                        .copied()
                        .unwrap_or_else(|| old.value(i)),
                )
            })
            .collect();
        let mut columns = batch.columns().to_vec();
        columns[schema.index_of("atttypmod")?] = Arc::new(fixed);
        let existing = RecordBatch::try_new(schema.clone(), columns)?;
        // Index columns, as PostgreSQL lists them for an index relation.
        let mut relid = vec![];
        let mut name = vec![];
        let mut num = vec![];
        for t in tables.iter().filter(|t| !t.primary_key.is_empty()) {
            for (pos, (_, column)) in t.primary_key.iter().enumerate() {
                relid.push(t.index_oid());
                name.push(column.clone());
                num.push(pos as i16 + 1);
            }
        }
        // Copy type information from the table's own column rows.
        let mut type_id = vec![];
        let mut len = vec![];
        let typid_col = batch
            .column(schema.index_of("atttypid")?)
            .as_primitive::<Int32Type>();
        let len_col = batch
            .column(schema.index_of("attlen")?)
            .as_primitive::<Int16Type>();
        for t in tables.iter().filter(|t| !t.primary_key.is_empty()) {
            for (attnum, _) in &t.primary_key {
                let row = (0..batch.num_rows())
                    .find(|i| relids.value(*i) == t.oid && attnums.value(*i) == *attnum);
                type_id.push(row.map(|r| typid_col.value(r)).unwrap_or(0));
                len.push(row.map(|r| len_col.value(r)).unwrap_or(-1));
            }
        }
        let n = relid.len();
        let index_columns = rows_with(
            &schema,
            n,
            HashMap::from([
                ("attrelid", ints(relid)),
                ("attname", strings(name)),
                ("atttypid", ints(type_id)),
                ("attlen", Arc::new(Int16Array::from(len)) as ArrayRef),
                ("attnum", Arc::new(Int16Array::from(num)) as ArrayRef),
                ("atttypmod", ints(std::iter::repeat_n(-1, n))),
                ("attstattarget", ints(std::iter::repeat_n(-1, n))),
                ("attnotnull", bools(true, n)),
                ("attislocal", bools(true, n)),
                ("attalign", strings(std::iter::repeat_n("i".to_string(), n))),
                (
                    "attstorage",
                    strings(std::iter::repeat_n("p".to_string(), n)),
                ),
            ]),
        )?;
        let mut all = concat_batches(&schema, &[existing, index_columns])?;
        if let Some(viewer) = viewer(state) {
            let directory = &self.context.directory;
            let relids = all
                .column(schema.index_of("attrelid")?)
                .as_primitive::<Int32Type>()
                .clone();
            let names = datafusion::arrow::compute::cast(
                all.column(schema.index_of("attname")?),
                &DataType::Utf8,
            )?;
            let names = names.as_string::<i32>().clone();
            all = keep_rows(all, |i| match directory.table(relids.value(i)) {
                Some(t) => {
                    viewer.table_visible(&t.schema, &t.name)
                        && !viewer
                            .hidden_columns(&t.schema, &t.name)
                            .iter()
                            .any(|c| c == names.value(i))
                }
                None => {
                    relation_visible(directory, viewer.as_ref(), relids.value(i)).unwrap_or(true)
                }
            })?;
        }
        Ok(all.with_schema(self.schema.clone())?)
    }
}

/// `pg_description`: the crate's descriptions of built-in objects, plus the comments
/// of user tables and columns.
#[derive(Debug)]
pub struct PgDescription {
    pub context: Context,
    pub schema: SchemaRef,
}

#[async_trait]
impl CatalogRows for PgDescription {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.context.refresh(state).await?;
        let (schema, builtin) = self.context.inner_rows(state, "pg_description").await?;
        let mut objoid = vec![];
        let mut objsubid = vec![];
        let mut text = vec![];
        let viewer = viewer(state);
        for t in self.context.directory.tables() {
            let hidden = match &viewer {
                Some(v) if !v.table_visible(&t.schema, &t.name) => continue,
                Some(v) => v.hidden_columns(&t.schema, &t.name),
                None => vec![],
            };
            if let Some(c) = &t.comment {
                objoid.push(t.oid);
                objsubid.push(0);
                text.push(c.clone());
            }
            for (attnum, c) in &t.column_comments {
                let column = t.column_names.get((*attnum - 1) as usize);
                if column.is_some_and(|name| hidden.contains(name)) {
                    continue;
                }
                objoid.push(t.oid);
                objsubid.push(*attnum as i32);
                text.push(c.clone());
            }
        }
        let n = objoid.len();
        // 'pg_class'::regclass resolves through the crate's pg_class, where pg_class has
        // an OID of its own; descriptions must carry that one to be found.
        let class_oid = self
            .context
            .directory
            .relation(Some("pg_catalog"), "pg_class")
            .unwrap_or(PG_CLASS_OID);
        let ours = rows_with(
            &schema,
            n,
            HashMap::from([
                ("objoid", ints(objoid)),
                ("classoid", ints(std::iter::repeat_n(class_oid, n))),
                ("objsubid", ints(objsubid)),
                ("description", strings(text)),
            ]),
        )?;
        let all = concat_batches(&schema, &[builtin, ours])?;
        Ok(all.with_schema(self.schema.clone())?)
    }
}

/// The visible tables with a primary key whose columns are all visible.
fn keyed_tables(context: &Context, state: &dyn Session) -> Vec<Arc<TableInfo>> {
    let viewer = viewer(state);
    context
        .directory
        .tables()
        .into_iter()
        .filter(|t| !t.primary_key.is_empty())
        .filter(|t| match &viewer {
            Some(v) => {
                let hidden = v.hidden_columns(&t.schema, &t.name);
                v.table_visible(&t.schema, &t.name)
                    && !t.primary_key.iter().any(|(_, c)| hidden.contains(c))
            }
            None => true,
        })
        .collect()
}

/// One of the crate's tables, filtered to what the asking user may see by the
/// schema and table names in the given columns.
#[derive(Debug)]
pub struct Filtered {
    pub context: Context,
    pub table: &'static str,
    pub schema: SchemaRef,
    /// The column holding the schema name, and the one holding the table name (if
    /// rows are tables).
    pub schema_column: &'static str,
    pub table_column: Option<&'static str>,
}

#[async_trait]
impl CatalogRows for Filtered {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let (schema, batch) = self.context.inner_rows(state, self.table).await?;
        let Some(viewer) = viewer(state) else {
            return Ok(batch);
        };
        self.context.refresh(state).await?;
        let as_text = |name: &str| -> Result<StringArray> {
            let column = datafusion::arrow::compute::cast(
                batch.column(schema.index_of(name)?),
                &DataType::Utf8,
            )?;
            Ok(column.as_string::<i32>().clone())
        };
        let schemas = as_text(self.schema_column)?;
        let tables = match self.table_column {
            Some(c) => Some(as_text(c)?),
            None => None,
        };
        let directory = &self.context.directory;
        keep_rows(batch, |i| {
            let s = schemas.value(i);
            match &tables {
                Some(t) => ALWAYS_LISTED.contains(&s) || viewer.table_visible(s, t.value(i)),
                None => schema_visible(directory, viewer.as_ref(), s),
            }
        })
    }
}

/// `pg_constraint`: one primary-key row per user table that has one.
#[derive(Debug)]
pub struct PgConstraint {
    pub context: Context,
    pub schema: SchemaRef,
}

impl PgConstraint {
    pub fn table_schema() -> SchemaRef {
        let int2_array = DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true)));
        let oid_array = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
        Arc::new(Schema::new(vec![
            oid_field("oid", kind::OID, false),
            Field::new("conname", DataType::Utf8, false),
            oid_field("connamespace", kind::REGNAMESPACE, false),
            Field::new("contype", DataType::Utf8, false),
            Field::new("condeferrable", DataType::Boolean, false),
            Field::new("condeferred", DataType::Boolean, false),
            Field::new("convalidated", DataType::Boolean, false),
            oid_field("conrelid", kind::REGCLASS, false),
            oid_field("contypid", kind::REGTYPE, false),
            oid_field("conindid", kind::REGCLASS, false),
            oid_field("conparentid", kind::OID, false),
            oid_field("confrelid", kind::REGCLASS, false),
            Field::new("confupdtype", DataType::Utf8, false),
            Field::new("confdeltype", DataType::Utf8, false),
            Field::new("confmatchtype", DataType::Utf8, false),
            Field::new("conislocal", DataType::Boolean, false),
            Field::new("coninhcount", DataType::Int16, false),
            Field::new("connoinherit", DataType::Boolean, false),
            Field::new("conkey", int2_array.clone(), true),
            Field::new("confkey", int2_array.clone(), true),
            Field::new("conpfeqop", oid_array.clone(), true),
            Field::new("conppeqop", oid_array.clone(), true),
            Field::new("conffeqop", oid_array.clone(), true),
            Field::new("confdelsetcols", int2_array, true),
            Field::new("conexclop", oid_array, true),
            Field::new("conbin", DataType::Utf8, true),
        ]))
    }
}

#[async_trait]
impl CatalogRows for PgConstraint {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.context.refresh(state).await?;
        let keyed = keyed_tables(&self.context, state);
        let n = keyed.len();
        rows_with(
            &self.schema,
            n,
            HashMap::from([
                ("oid", ints(keyed.iter().map(|t| t.constraint_oid()))),
                ("conname", strings(keyed.iter().map(|t| t.index_name()))),
                ("connamespace", ints(keyed.iter().map(|t| t.namespace_oid))),
                ("contype", strings(keyed.iter().map(|_| "p".to_string()))),
                ("convalidated", bools(true, n)),
                ("conrelid", ints(keyed.iter().map(|t| t.oid))),
                ("conindid", ints(keyed.iter().map(|t| t.index_oid()))),
                (
                    "confupdtype",
                    strings(keyed.iter().map(|_| " ".to_string())),
                ),
                (
                    "confdeltype",
                    strings(keyed.iter().map(|_| " ".to_string())),
                ),
                (
                    "confmatchtype",
                    strings(keyed.iter().map(|_| " ".to_string())),
                ),
                ("conislocal", bools(true, n)),
                ("connoinherit", bools(true, n)),
                (
                    "conkey",
                    int2_lists(
                        keyed
                            .iter()
                            .map(|t| t.primary_key.iter().map(|(a, _)| *a).collect()),
                    ),
                ),
            ]),
        )
    }
}

/// `pg_index`: one unique primary-key index per user table that has a key.
#[derive(Debug)]
pub struct PgIndex {
    pub context: Context,
    pub schema: SchemaRef,
}

impl PgIndex {
    pub fn table_schema() -> SchemaRef {
        let int2_array = DataType::List(Arc::new(Field::new_list_field(DataType::Int16, true)));
        let oid_array = DataType::List(Arc::new(Field::new_list_field(DataType::Int32, true)));
        Arc::new(Schema::new(vec![
            oid_field("indexrelid", kind::REGCLASS, false),
            oid_field("indrelid", kind::REGCLASS, false),
            Field::new("indnatts", DataType::Int16, false),
            Field::new("indnkeyatts", DataType::Int16, false),
            Field::new("indisunique", DataType::Boolean, false),
            Field::new("indnullsnotdistinct", DataType::Boolean, false),
            Field::new("indisprimary", DataType::Boolean, false),
            Field::new("indisexclusion", DataType::Boolean, false),
            Field::new("indimmediate", DataType::Boolean, false),
            Field::new("indisclustered", DataType::Boolean, false),
            Field::new("indisvalid", DataType::Boolean, false),
            Field::new("indcheckxmin", DataType::Boolean, false),
            Field::new("indisready", DataType::Boolean, false),
            Field::new("indislive", DataType::Boolean, false),
            Field::new("indisreplident", DataType::Boolean, false),
            Field::new("indkey", int2_array.clone(), false),
            Field::new("indcollation", oid_array.clone(), false),
            Field::new("indclass", oid_array, false),
            Field::new("indoption", int2_array, false),
            Field::new("indexprs", DataType::Utf8, true),
            Field::new("indpred", DataType::Utf8, true),
        ]))
    }
}

#[async_trait]
impl CatalogRows for PgIndex {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        self.context.refresh(state).await?;
        let keyed = keyed_tables(&self.context, state);
        let n = keyed.len();
        let counts: ArrayRef = Arc::new(Int16Array::from_iter_values(
            keyed.iter().map(|t| t.primary_key.len() as i16),
        ));
        let oid_lists = |value: i32| {
            let mut b = ListBuilder::new(datafusion::arrow::array::Int32Builder::new());
            for t in &keyed {
                for _ in &t.primary_key {
                    b.values().append_value(value);
                }
                b.append(true);
            }
            Arc::new(b.finish()) as ArrayRef
        };
        rows_with(
            &self.schema,
            n,
            HashMap::from([
                ("indexrelid", ints(keyed.iter().map(|t| t.index_oid()))),
                ("indrelid", ints(keyed.iter().map(|t| t.oid))),
                ("indnatts", counts.clone()),
                ("indnkeyatts", counts),
                ("indisunique", bools(true, n)),
                ("indisprimary", bools(true, n)),
                ("indimmediate", bools(true, n)),
                ("indisvalid", bools(true, n)),
                ("indisready", bools(true, n)),
                ("indislive", bools(true, n)),
                (
                    "indkey",
                    int2_lists(
                        keyed
                            .iter()
                            .map(|t| t.primary_key.iter().map(|(a, _)| *a).collect()),
                    ),
                ),
                ("indcollation", oid_lists(0)),
                ("indclass", oid_lists(0)),
                (
                    "indoption",
                    int2_lists(keyed.iter().map(|t| vec![0; t.primary_key.len()])),
                ),
            ]),
        )
    }
}

/// The regproc columns of `pg_type`.
const TYPE_PROCS: &[&str] = &[
    "typsubscript",
    "typinput",
    "typoutput",
    "typreceive",
    "typsend",
    "typmodin",
    "typmodout",
    "typanalyze",
];

/// `pg_type` with its regproc columns as OIDs.
///
/// The crate stores `typreceive` and its kind as function names, so drivers that
/// join them to `pg_proc.oid` (Npgsql's type loading, which Power BI runs) fail to
/// cast `'boolrecv'` to a number. PostgreSQL stores OIDs there; so do we. The
/// table is static, so it is converted once.
#[derive(Debug)]
pub struct PgType {
    pub context: Context,
    pub schema: SchemaRef,
    pub cache: tokio::sync::OnceCell<RecordBatch>,
}

impl PgType {
    pub fn table_schema(inner: &SchemaRef) -> SchemaRef {
        let fields: Vec<Field> = inner
            .fields()
            .iter()
            .map(|f| {
                if TYPE_PROCS.contains(&f.name().as_str()) {
                    oid_field(f.name(), kind::REGPROC, false)
                } else {
                    f.as_ref().clone()
                }
            })
            .collect();
        Arc::new(Schema::new_with_metadata(fields, inner.metadata().clone()))
    }
}

#[async_trait]
impl CatalogRows for PgType {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        let batch = self
            .cache
            .get_or_try_init(|| async {
                let (proc_schema, procs) = self.context.inner_rows(state, "pg_proc").await?;
                let proc_oids = procs
                    .column(proc_schema.index_of("oid")?)
                    .as_primitive::<Int32Type>();
                let proc_names = datafusion::arrow::compute::cast(
                    procs.column(proc_schema.index_of("proname")?),
                    &DataType::Utf8,
                )?;
                let proc_names = proc_names.as_string::<i32>();
                let mut by_name: HashMap<String, i32> = HashMap::new();
                for i in 0..procs.num_rows() {
                    if !proc_names.is_null(i) {
                        let oid = proc_oids.value(i);
                        by_name
                            .entry(proc_names.value(i).to_string())
                            .and_modify(|o| *o = (*o).min(oid))
                            .or_insert(oid);
                    }
                }
                let (schema, batch) = self.context.inner_rows(state, "pg_type").await?;
                let mut columns = batch.columns().to_vec();
                for name in TYPE_PROCS {
                    let Ok(index) = schema.index_of(name) else {
                        continue;
                    };
                    let names = datafusion::arrow::compute::cast(&columns[index], &DataType::Utf8)?;
                    let names = names.as_string::<i32>();
                    let oids: Int32Array = (0..batch.num_rows())
                        .map(|i| {
                            let name = if names.is_null(i) {
                                "-"
                            } else {
                                names.value(i)
                            };
                            Some(by_name.get(name).copied().unwrap_or(0))
                        })
                        .collect();
                    columns[index] = Arc::new(oids);
                }
                Ok::<_, datafusion::error::DataFusionError>(RecordBatch::try_new(
                    self.schema.clone(),
                    columns,
                )?)
            })
            .await?;
        Ok(batch.clone())
    }
}

/// A session's open SQL cursors, as `pg_cursors` shows them.
#[derive(Debug, Clone)]
pub struct CursorRow {
    pub name: String,
    pub statement: String,
    pub holdable: bool,
    pub created: std::time::SystemTime,
}

/// Whatever holds a session's cursors.
pub trait CursorCatalog: Send + Sync {
    fn list(&self) -> Vec<CursorRow>;
}

/// The cursors of the session a query runs in, as a DataFusion config extension.
#[derive(Clone)]
pub struct SessionCursors(pub Arc<dyn CursorCatalog>);

/// `pg_cursors`: the asking session's cursors (psycopg checks it before closing a
/// server-side cursor).
#[derive(Debug)]
pub struct PgCursors {
    pub schema: SchemaRef,
}

impl PgCursors {
    pub fn table_schema() -> SchemaRef {
        use datafusion::arrow::datatypes::TimeUnit;
        Arc::new(Schema::new(vec![
            Field::new("name", DataType::Utf8, false),
            Field::new("statement", DataType::Utf8, false),
            Field::new("is_holdable", DataType::Boolean, false),
            Field::new("is_binary", DataType::Boolean, false),
            Field::new("is_scrollable", DataType::Boolean, false),
            Field::new(
                "creation_time",
                DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
                false,
            ),
        ]))
    }
}

#[async_trait]
impl CatalogRows for PgCursors {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    async fn rows(&self, state: &dyn Session) -> Result<RecordBatch> {
        use datafusion::arrow::array::TimestampMicrosecondArray;
        let cursors = state
            .config()
            .get_extension::<SessionCursors>()
            .map(|c| c.0.list())
            .unwrap_or_default();
        let n = cursors.len();
        let created: TimestampMicrosecondArray = cursors
            .iter()
            .map(|c| {
                c.created
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_micros() as i64)
                    .unwrap_or(0)
            })
            .collect::<Vec<_>>()
            .into();
        Ok(RecordBatch::try_new(
            self.schema.clone(),
            vec![
                strings(cursors.iter().map(|c| c.name.clone())),
                strings(cursors.iter().map(|c| c.statement.clone())),
                Arc::new(BooleanArray::from(
                    cursors.iter().map(|c| c.holdable).collect::<Vec<_>>(),
                )),
                bools(false, n),
                bools(false, n),
                Arc::new(created.with_timezone("UTC")),
            ],
        )?)
    }
}
