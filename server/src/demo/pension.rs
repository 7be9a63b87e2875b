//! The pension department's extract (Parquet): pensioners, and monthly pension payments
//! split over several files in one folder.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Decimal128Builder, Float32Builder, Float64Builder, Int16Builder,
    Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, ZstdLevel};
use datafusion::parquet::file::properties::WriterProperties;

use super::names::{self, PROVINCES};
use super::rng::Rng;
use super::world::{self, World, periods, random_date};

const PAYMENT_FILES: usize = 4;

fn days(d: chrono::NaiveDate) -> i32 {
    (d - chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default()).num_days() as i32
}

fn writer(path: &Path, schema: SchemaRef) -> anyhow::Result<ArrowWriter<File>> {
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(3)?))
        .set_max_row_group_row_count(Some(128 * 1024))
        .build();
    Ok(ArrowWriter::try_new(
        File::create(path)?,
        schema,
        Some(props),
    )?)
}

struct Pensioner {
    id: i64,
    province: usize,
    branch_code: i32,
    base: i64,
    retired_on: chrono::NaiveDate,
}

/// Writes `pensioners.parquet` and `payments/part-N.parquet`; returns rows written.
pub fn write(dir: &Path, world: &World, scale: f64, seed: u64) -> anyhow::Result<u64> {
    let mut rng = Rng::new(seed);
    let count = ((20_000.0 * scale) as usize).max(100);
    let weights: Vec<f64> = PROVINCES.iter().map(|p| p.population_m).collect();
    let type_weights: Vec<f64> = names::PENSION_TYPES.iter().map(|t| t.1).collect();

    let schema = Arc::new(Schema::new(vec![
        Field::new("pensioner_id", DataType::Int64, false),
        Field::new("national_id", DataType::Utf8, false),
        Field::new("first_name", DataType::Utf8, false),
        Field::new("last_name", DataType::Utf8, false),
        Field::new("gender", DataType::Utf8, false),
        Field::new("birth_date", DataType::Date32, false),
        Field::new("province_code", DataType::Int16, false),
        Field::new("branch_code", DataType::Int32, false),
        Field::new("pension_type", DataType::Utf8, false),
        Field::new("retired_on", DataType::Date32, false),
        Field::new("base_pension", DataType::Decimal128(14, 0), false),
        Field::new("disability_percent", DataType::Float32, true),
    ]));
    let mut id = Int64Builder::new();
    let mut nid = StringBuilder::new();
    let mut first = StringBuilder::new();
    let mut last = StringBuilder::new();
    let mut gender = StringBuilder::new();
    let mut birth = Date32Builder::new();
    let mut province = Int16Builder::new();
    let mut branch = Int32Builder::new();
    let mut ptype = StringBuilder::new();
    let mut retired = Date32Builder::new();
    let mut base = Decimal128Builder::new();
    let mut disability = Float32Builder::new();
    let mut pensioners = Vec::with_capacity(count);
    let date = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default();
    for i in 0..count {
        let p = rng.weighted(&weights);
        let branches: Vec<&world::Branch> =
            world.branches.iter().filter(|b| b.province == p).collect();
        let b = rng.pick(&branches);
        let female = rng.chance(0.22);
        let t = rng.weighted(&type_weights);
        let retired_on = random_date(&mut rng, date(1995, 1, 1), date(2024, 3, 1));
        let base_pension = ((world::minimum_wage(1403) as f64 * (0.9 + rng.lognormal(0.35) * 0.5))
            / 1000.0)
            .round() as i64
            * 1000;
        id.append_value(2_000_000 + i as i64);
        nid.append_value(world::national_id(&mut rng));
        first.append_value(if female {
            rng.pick(&names::FEMALE_NAMES)
        } else {
            rng.pick(&names::MALE_NAMES)
        });
        last.append_value(rng.pick(&names::LAST_NAMES));
        gender.append_value(if female { "F" } else { "M" });
        birth.append_value(days(random_date(
            &mut rng,
            date(1935, 1, 1),
            date(1975, 1, 1),
        )));
        province.append_value(PROVINCES[p].code);
        branch.append_value(b.code);
        ptype.append_value(names::PENSION_TYPES[t].0);
        retired.append_value(days(retired_on));
        base.append_value(base_pension as i128);
        if t == 1 {
            disability.append_value(33.0 + rng.below(67) as f32);
        } else {
            disability.append_null();
        }
        pensioners.push(Pensioner {
            id: 2_000_000 + i as i64,
            province: p,
            branch_code: b.code,
            base: base_pension,
            retired_on,
        });
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(nid.finish()),
        Arc::new(first.finish()),
        Arc::new(last.finish()),
        Arc::new(gender.finish()),
        Arc::new(birth.finish()),
        Arc::new(province.finish()),
        Arc::new(branch.finish()),
        Arc::new(ptype.finish()),
        Arc::new(retired.finish()),
        Arc::new(base.finish().with_precision_and_scale(14, 0)?),
        Arc::new(disability.finish()),
    ];
    let mut w = writer(&dir.join("pensioners.parquet"), schema.clone())?;
    w.write(&RecordBatch::try_new(schema, columns)?)?;
    w.close()?;
    let mut rows = count as u64;

    // Payments for the twelve months of 1403, to everyone retired by then.
    let payments_dir = dir.join("payments");
    std::fs::create_dir_all(&payments_dir)?;
    let schema = Arc::new(Schema::new(vec![
        Field::new("payment_id", DataType::Int64, false),
        Field::new("pensioner_id", DataType::Int64, false),
        Field::new("province_code", DataType::Int16, false),
        Field::new("branch_code", DataType::Int32, false),
        Field::new("period", DataType::Date32, false),
        Field::new("amount", DataType::Decimal128(14, 0), false),
        Field::new("increase_rate", DataType::Float64, false),
        Field::new(
            "paid_at",
            DataType::Timestamp(TimeUnit::Microsecond, None),
            false,
        ),
    ]));
    let months: Vec<_> = periods()
        .into_iter()
        .filter(|(j, _)| j.year == 1403)
        .collect();
    let per_file = months.len().div_ceil(PAYMENT_FILES);
    let mut payment_id = 1i64;
    for (part, chunk) in months.chunks(per_file).enumerate() {
        let mut w = writer(
            &payments_dir.join(format!("part-{part}.parquet")),
            schema.clone(),
        )?;
        for (_, start) in chunk {
            let mut pid = Int64Builder::new();
            let mut pens = Int64Builder::new();
            let mut prov = Int16Builder::new();
            let mut br = Int32Builder::new();
            let mut period = Date32Builder::new();
            let mut amount = Decimal128Builder::new();
            let mut rate = Float64Builder::new();
            let mut paid_at = TimestampMicrosecondBuilder::new();
            let mut emit = |pensioner_id: i64,
                            province: usize,
                            branch_code: i32,
                            value: i64,
                            rng: &mut Rng| {
                pid.append_value(payment_id);
                payment_id += 1;
                pens.append_value(pensioner_id);
                prov.append_value(PROVINCES[province].code);
                br.append_value(branch_code);
                period.append_value(days(*start));
                amount.append_value(value as i128);
                rate.append_value(0.35);
                let day = *start + chrono::Duration::days(24 + rng.below(5) as i64);
                let secs = 6 * 3600 + rng.below(3600) as i64;
                paid_at.append_value(
                    day.and_hms_opt(0, 0, 0)
                        .unwrap_or_default()
                        .and_utc()
                        .timestamp_micros()
                        + secs * 1_000_000,
                );
            };
            for p in pensioners.iter().filter(|p| p.retired_on < *start) {
                emit(p.id, p.province, p.branch_code, p.base, &mut rng);
            }
            // Planted for the validation rule "payments only to known pensioners".
            let orphans = ((2.0 * scale).ceil() as usize).max(1);
            for k in 0..orphans {
                emit(9_000_000 + k as i64, 23, 2301, 80_000_000, &mut rng);
            }
            let columns: Vec<ArrayRef> = vec![
                Arc::new(pid.finish()),
                Arc::new(pens.finish()),
                Arc::new(prov.finish()),
                Arc::new(br.finish()),
                Arc::new(period.finish()),
                Arc::new(amount.finish().with_precision_and_scale(14, 0)?),
                Arc::new(rate.finish()),
                Arc::new(paid_at.finish()),
            ];
            let batch = RecordBatch::try_new(schema.clone(), columns)?;
            rows += batch.num_rows() as u64;
            w.write(&batch)?;
        }
        w.close()?;
    }
    Ok(rows)
}
