//! Flight SQL's metadata answers (GetSqlInfo, GetXdbcTypeInfo, GetTableTypes,
//! GetPrimaryKeys) in the exact schemas the specification defines; catalogs,
//! schemas and tables use arrow-flight's own builders, which already do.

use std::sync::{Arc, LazyLock};

use arrow_flight::sql::metadata::{
    SqlInfoData, SqlInfoDataBuilder, XdbcTypeInfo, XdbcTypeInfoData, XdbcTypeInfoDataBuilder,
};
use arrow_flight::sql::{Nullable, Searchable, SqlInfo, SqlSupportedTransaction, XdbcDataType};
use datafusion::arrow::array::{Int32Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;

use crate::engine::TableEntry;

/// What Amar tells Flight SQL clients about itself.
pub static SQL_INFO: LazyLock<SqlInfoData> = LazyLock::new(|| {
    let mut b = SqlInfoDataBuilder::new();
    b.append(SqlInfo::FlightSqlServerName, "Amar");
    b.append(SqlInfo::FlightSqlServerVersion, env!("CARGO_PKG_VERSION"));
    // The Arrow columnar format version (Schema.fbs MetadataVersion V5).
    b.append(SqlInfo::FlightSqlServerArrowVersion, "1.5");
    b.append(SqlInfo::FlightSqlServerReadOnly, true);
    b.append(SqlInfo::FlightSqlServerSql, true);
    b.append(SqlInfo::FlightSqlServerSubstrait, false);
    b.append(
        SqlInfo::FlightSqlServerTransaction,
        SqlSupportedTransaction::None as i32,
    );
    b.append(SqlInfo::FlightSqlServerCancel, false);
    b.append(SqlInfo::FlightSqlServerStatementTimeout, 0i32);
    b.append(SqlInfo::SqlDdlCatalog, false);
    b.append(SqlInfo::SqlDdlSchema, false);
    b.append(SqlInfo::SqlDdlTable, false);
    b.append(SqlInfo::SqlIdentifierQuoteChar, "\"");
    b.append(SqlInfo::SqlSchemaTerm, "schema");
    b.append(SqlInfo::SqlCatalogTerm, "database");
    b.append(SqlInfo::SqlTransactionsSupported, false);
    b.build().expect("static SqlInfo data builds")
});

fn xdbc(
    name: &str,
    data_type: XdbcDataType,
    size: Option<i32>,
    radix: Option<i32>,
) -> XdbcTypeInfo {
    XdbcTypeInfo {
        type_name: name.into(),
        data_type,
        column_size: size,
        literal_prefix: None,
        literal_suffix: None,
        create_params: None,
        nullable: Nullable::NullabilityNullable,
        case_sensitive: matches!(data_type, XdbcDataType::XdbcVarchar),
        searchable: Searchable::Full,
        unsigned_attribute: radix.map(|_| false),
        fixed_prec_scale: false,
        auto_increment: Some(false),
        local_type_name: Some(name.into()),
        minimum_scale: None,
        maximum_scale: None,
        sql_data_type: data_type,
        datetime_subcode: None,
        num_prec_radix: radix,
        interval_precision: None,
    }
}

/// The types Amar's results carry, as XDBC type info.
pub static XDBC_TYPES: LazyLock<XdbcTypeInfoData> = LazyLock::new(|| {
    let mut b = XdbcTypeInfoDataBuilder::new();
    for info in [
        xdbc("bigint", XdbcDataType::XdbcBigint, Some(19), Some(10)),
        xdbc("boolean", XdbcDataType::XdbcBit, Some(1), None),
        xdbc("bytea", XdbcDataType::XdbcBinary, None, None),
        xdbc("date", XdbcDataType::XdbcDate, Some(10), None),
        xdbc(
            "double precision",
            XdbcDataType::XdbcDouble,
            Some(15),
            Some(2),
        ),
        xdbc("integer", XdbcDataType::XdbcInteger, Some(10), Some(10)),
        xdbc("numeric", XdbcDataType::XdbcNumeric, Some(38), Some(10)),
        xdbc("real", XdbcDataType::XdbcReal, Some(7), Some(2)),
        xdbc("smallint", XdbcDataType::XdbcSmallint, Some(5), Some(10)),
        xdbc("text", XdbcDataType::XdbcVarchar, None, None),
        xdbc("timestamp", XdbcDataType::XdbcTimestamp, Some(26), None),
    ] {
        b.append(info);
    }
    b.build().expect("static XDBC type data builds")
});

/// The table types Amar has.
pub const TABLE_TYPES: &[&str] = &["SYSTEM TABLE", "TABLE", "VIEW"];

/// GetTableTypes: `table_type utf8 not null`.
pub fn table_types() -> Result<RecordBatch, ArrowError> {
    let schema = Arc::new(Schema::new(vec![Field::new(
        "table_type",
        DataType::Utf8,
        false,
    )]));
    let mut b = StringBuilder::new();
    for t in TABLE_TYPES {
        b.append_value(t);
    }
    RecordBatch::try_new(schema, vec![Arc::new(b.finish())])
}

/// GetPrimaryKeys' schema, as the specification defines it.
pub fn primary_keys_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("catalog_name", DataType::Utf8, true),
        Field::new("db_schema_name", DataType::Utf8, true),
        Field::new("table_name", DataType::Utf8, false),
        Field::new("column_name", DataType::Utf8, false),
        Field::new("key_name", DataType::Utf8, true),
        Field::new("key_sequence", DataType::Int32, false),
    ]))
}

/// The primary key of one table, one row per column in key order.
pub fn primary_keys(table: Option<&TableEntry>) -> Result<RecordBatch, ArrowError> {
    let mut catalog = StringBuilder::new();
    let mut schema = StringBuilder::new();
    let mut name = StringBuilder::new();
    let mut column = StringBuilder::new();
    let mut key = StringBuilder::new();
    let mut sequence = Int32Builder::new();
    if let Some(t) = table {
        for (i, c) in t.primary_key.iter().enumerate() {
            catalog.append_value(amar_catalog::DATABASE);
            schema.append_value(&t.schema);
            name.append_value(&t.name);
            column.append_value(c);
            key.append_value(format!("{}_pkey", t.name));
            sequence.append_value(i as i32 + 1);
        }
    }
    RecordBatch::try_new(
        primary_keys_schema(),
        vec![
            Arc::new(catalog.finish()),
            Arc::new(schema.finish()),
            Arc::new(name.finish()),
            Arc::new(column.finish()),
            Arc::new(key.finish()),
            Arc::new(sequence.finish()),
        ],
    )
}
