//! Rows per second of the Jalali and Persian functions over one scan-sized batch,
//! called as DataFusion calls them (one array in, one array out).
//!
//! `cargo bench -p amar-catalog --bench persian`; each reports time per 8192-row batch,
//! so rows/s = 8192 / time. Results are in benches/RESULTS.md.

use std::sync::Arc;

use amar_catalog::persian::functions;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use datafusion::arrow::array::{ArrayRef, Date32Array, StringArray, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF};
use datafusion::scalar::ScalarValue;

const ROWS: usize = 8192;

fn call(f: &ScalarUDF, args: Vec<ColumnarValue>, types: &[DataType]) -> ColumnarValue {
    let arg_fields = types
        .iter()
        .map(|t| Arc::new(Field::new("a", t.clone(), true)))
        .collect();
    let return_type = f.return_type(types).unwrap();
    f.invoke_with_args(ScalarFunctionArgs {
        args,
        arg_fields,
        number_rows: ROWS,
        return_field: Arc::new(Field::new("r", return_type, true)),
        config_options: Arc::new(ConfigOptions::default()),
    })
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let by_name = |name: &str| functions().into_iter().find(|f| f.name() == name).unwrap();
    // Dates spread over 1380–1410, as a contributions table holds.
    let dates: ArrayRef = Arc::new(Date32Array::from_iter_values(
        (0..ROWS as i32).map(|i| 11_400 + (i * 7) % 11_000),
    ));
    let stamps: ArrayRef = Arc::new(
        TimestampMicrosecondArray::from_iter_values(
            (0..ROWS as i64).map(|i| 1_000_000_000_000_000 + i * 3_600_000_000 * 13),
        )
        .with_timezone("+00:00"),
    );
    let names: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..ROWS).map(|i| format!("علي  كريمي‌زاده {i}")),
    ));
    let mut group = c.benchmark_group("persian");
    group.throughput(Throughput::Elements(ROWS as u64));
    for (name, input, t) in [
        ("jalali_year", &dates, DataType::Date32),
        ("jalali_month", &dates, DataType::Date32),
        ("fa_normalize", &names, DataType::Utf8),
        ("fa_fold", &names, DataType::Utf8),
    ] {
        let f = by_name(name);
        group.bench_function(format!("{name}({t})"), |b| {
            b.iter(|| {
                call(
                    &f,
                    vec![ColumnarValue::Array(input.clone())],
                    std::slice::from_ref(&t),
                )
            })
        });
    }
    let tz = DataType::Timestamp(
        datafusion::arrow::datatypes::TimeUnit::Microsecond,
        Some("+00:00".into()),
    );
    let f = by_name("jalali_year");
    group.bench_function("jalali_year(timestamptz)", |b| {
        b.iter(|| {
            call(
                &f,
                vec![ColumnarValue::Array(stamps.clone())],
                std::slice::from_ref(&tz),
            )
        })
    });
    let f = by_name("jalali_period");
    group.bench_function("jalali_period('quarter', date)", |b| {
        b.iter(|| {
            call(
                &f,
                vec![
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some("quarter".into()))),
                    ColumnarValue::Array(dates.clone()),
                ],
                &[DataType::Utf8, DataType::Date32],
            )
        })
    });
    let f = by_name("jalali_format");
    group.bench_function("jalali_format(date, 'yyyy/MM/dd')", |b| {
        b.iter(|| {
            call(
                &f,
                vec![
                    ColumnarValue::Array(dates.clone()),
                    ColumnarValue::Scalar(ScalarValue::Utf8(Some("yyyy/MM/dd".into()))),
                ],
                &[DataType::Date32, DataType::Utf8],
            )
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
