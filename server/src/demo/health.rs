//! The health department's dropped files (CSV): treatment providers and claims.

use std::fs::File;
use std::io::BufWriter;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, Date32Builder, Int16Builder, Int64Builder, RecordBatch, StringBuilder,
};
use datafusion::arrow::csv::WriterBuilder;
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::names::{self, PROVINCES};
use super::rng::Rng;
use super::world::{World, periods};

const BATCH: usize = 50_000;

/// Writes `providers.csv` and `claims.csv`; returns rows written.
pub fn write(dir: &Path, world: &World, scale: f64, seed: u64) -> anyhow::Result<u64> {
    let mut rng = Rng::new(seed);
    let weights: Vec<f64> = PROVINCES.iter().map(|p| p.population_m).collect();

    let provider_count = 600usize;
    let mut provider_province = Vec::with_capacity(provider_count);
    let schema = Arc::new(Schema::new(vec![
        Field::new("provider_id", DataType::Int64, false),
        Field::new("name_fa", DataType::Utf8, false),
        Field::new("kind", DataType::Utf8, false),
        Field::new("province_code", DataType::Int16, false),
    ]));
    let mut id = Int64Builder::new();
    let mut name = StringBuilder::new();
    let mut kind = StringBuilder::new();
    let mut province = Int16Builder::new();
    for i in 0..provider_count {
        let p = rng.weighted(&weights);
        let k = rng.pick(&names::PROVIDER_KINDS);
        id.append_value(3_000 + i as i64);
        name.append_value(format!(
            "{k} {} {}",
            rng.pick(&names::EMPLOYER_WORDS),
            PROVINCES[p].center_fa
        ));
        kind.append_value(k);
        province.append_value(PROVINCES[p].code);
        provider_province.push(p);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(id.finish()),
        Arc::new(name.finish()),
        Arc::new(kind.finish()),
        Arc::new(province.finish()),
    ];
    let mut w = WriterBuilder::new()
        .with_header(true)
        .build(BufWriter::new(File::create(dir.join("providers.csv"))?));
    w.write(&RecordBatch::try_new(schema, columns)?)?;
    let mut rows = provider_count as u64;
    let providers_of: Vec<Vec<usize>> = (0..PROVINCES.len())
        .map(|p| {
            (0..provider_count)
                .filter(|i| provider_province[*i] == p)
                .collect()
        })
        .collect();

    let schema = Arc::new(Schema::new(vec![
        Field::new("claim_id", DataType::Int64, false),
        Field::new("insured_id", DataType::Int64, false),
        Field::new("province_code", DataType::Int16, false),
        Field::new("provider_id", DataType::Int64, false),
        Field::new("service_type", DataType::Utf8, false),
        Field::new("claim_date", DataType::Date32, false),
        Field::new("amount", DataType::Int64, false),
        Field::new("approved_amount", DataType::Int64, true),
        Field::new("status", DataType::Utf8, false),
    ]));
    let service_weights: Vec<f64> = names::SERVICE_TYPES.iter().map(|s| s.1).collect();
    let status_weights: Vec<f64> = names::CLAIM_STATUSES.iter().map(|s| s.1).collect();
    let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap_or_default();
    let first_day = periods()[0].1;
    let span = (periods()[23].1 + chrono::Duration::days(29) - first_day).num_days() as u64;
    let claim_count = ((120_000.0 * scale) as usize).max(500);
    let mut w = WriterBuilder::new()
        .with_header(true)
        .build(BufWriter::new(File::create(dir.join("claims.csv"))?));
    let mut next = 0usize;
    while next < claim_count {
        let n = BATCH.min(claim_count - next);
        let mut claim = Int64Builder::with_capacity(n);
        let mut insured = Int64Builder::with_capacity(n);
        let mut prov = Int16Builder::with_capacity(n);
        let mut provider = Int64Builder::with_capacity(n);
        let mut service = StringBuilder::with_capacity(n, n * 12);
        let mut date = Date32Builder::with_capacity(n);
        let mut amount = Int64Builder::with_capacity(n);
        let mut approved = Int64Builder::with_capacity(n);
        let mut status = StringBuilder::with_capacity(n, n * 16);
        for i in next..next + n {
            let person = &world.persons[rng.below(world.persons.len() as u64) as usize];
            let p = world.province_of_employer(person.employer);
            let providers = &providers_of[p];
            let provider_id = if providers.is_empty() {
                3_000 + rng.below(provider_count as u64) as i64
            } else {
                3_000 + *rng.pick(providers) as i64
            };
            let s = rng.weighted(&service_weights);
            let base = match s {
                2 => 150_000_000.0,
                4 => 40_000_000.0,
                _ => 6_000_000.0,
            };
            let value = ((base * rng.lognormal(0.7)) / 1000.0).round() as i64 * 1000;
            let st = rng.weighted(&status_weights);
            claim.append_value(10_000_000 + i as i64);
            insured.append_value(person.id);
            prov.append_value(PROVINCES[p].code);
            provider.append_value(provider_id);
            service.append_value(names::SERVICE_TYPES[s].0);
            let day = first_day + chrono::Duration::days(rng.below(span) as i64);
            date.append_value((day - epoch).num_days() as i32);
            amount.append_value(value);
            match st {
                0 => approved
                    .append_value((value as f64 * (0.7 + 0.3 * rng.unit())) as i64 / 1000 * 1000),
                1 => approved.append_value(0),
                _ => approved.append_null(),
            }
            status.append_value(names::CLAIM_STATUSES[st].0);
        }
        let columns: Vec<ArrayRef> = vec![
            Arc::new(claim.finish()),
            Arc::new(insured.finish()),
            Arc::new(prov.finish()),
            Arc::new(provider.finish()),
            Arc::new(service.finish()),
            Arc::new(date.finish()),
            Arc::new(amount.finish()),
            Arc::new(approved.finish()),
            Arc::new(status.finish()),
        ];
        w.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        next += n;
        rows += n as u64;
    }
    Ok(rows)
}
