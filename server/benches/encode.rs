//! Rows per second of pgwire's DataRow encoding, text and binary, over one scan-sized
//! batch shaped like the demo's contributions (bigints, smallints, a date, numerics,
//! a timestamp, Persian text).
//!
//! `cargo bench -p amar-server --bench encode`; each reports time per 8192-row batch.

use std::sync::Arc;

use amar_server::pgwire::encode::encode_batch;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{
    ArrayRef, Date32Array, Decimal128Array, Int16Array, Int64Array, RecordBatch, StringArray,
    TimestampMicrosecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use pgwire::api::results::{FieldFormat, FieldInfo};
use postgres_types::Type;

const ROWS: usize = 8192;

fn batch() -> RecordBatch {
    let n = ROWS as i64;
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("province_code", DataType::Int16, false),
        Field::new("period", DataType::Date32, false),
        Field::new("wage", DataType::Decimal128(14, 0), false),
        Field::new(
            "paid_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            true,
        ),
        Field::new("economic_sector", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(0..n)),
        Arc::new(Int16Array::from_iter_values(
            (0..n).map(|i| (i % 31) as i16 + 1),
        )),
        Arc::new(Date32Array::from_iter_values(
            (0..n).map(|i| 19_400 + (i % 700) as i32),
        )),
        Arc::new(
            Decimal128Array::from_iter_values((0..n).map(|i| 71_661_840 + i as i128 * 1000))
                .with_precision_and_scale(14, 0)
                .unwrap(),
        ),
        Arc::new(TimestampMicrosecondArray::from_iter((0..n).map(|i| {
            (i % 10 != 0).then_some(1_700_000_000_000_000 + i * 1_000_000)
        }))),
        Arc::new(StringArray::from_iter_values((0..n).map(|i| {
            ["ساختمان", "صنعت", "خدمات", "کشاورزی"][i as usize % 4]
        }))),
    ];
    RecordBatch::try_new(schema, columns).unwrap()
}

fn fields(format: FieldFormat) -> Arc<Vec<FieldInfo>> {
    let types = [
        ("id", Type::INT8),
        ("province_code", Type::INT2),
        ("period", Type::DATE),
        ("wage", Type::NUMERIC),
        ("paid_at", Type::TIMESTAMP),
        ("economic_sector", Type::TEXT),
    ];
    Arc::new(
        types
            .into_iter()
            .map(|(n, t)| FieldInfo::new(n.to_string(), None, None, t, format))
            .collect(),
    )
}

fn bench(c: &mut Criterion) {
    let batch = batch();
    let mut group = c.benchmark_group("pgwire_encode");
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, format) in [("text", FieldFormat::Text), ("binary", FieldFormat::Binary)] {
        let fields = fields(format);
        group.bench_function(name, |b| {
            b.iter(|| {
                let rows = encode_batch(&fields, &batch);
                assert_eq!(rows.len(), ROWS);
                rows
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
