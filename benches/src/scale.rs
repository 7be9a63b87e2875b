//! Scale: how the federated aggregate's time, and Amar's memory, grow with the data.
//! For each size (1M and 10M rows by default; `--sizes 1000000,10000000,50000000`), a
//! fresh PostgreSQL table and a fresh Amar: the aggregate through Amar and straight to
//! PostgreSQL (interleaved, median), then the whole table streamed out of Amar over
//! Flight SQL, with Amar's resident memory before and its peak after. Time should grow
//! no faster than the rows; memory should not grow with them (results stream).

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, script: &str, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, script, args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let mut table = format!(
        "Per size: `SELECT province_code, sum(contribution), count(*) … WHERE period >= … GROUP BY 1` through Amar (pushed down) and direct, {} rounds interleaved, median; \
         then `SELECT * FROM dept.contributions` streamed over Flight SQL (ADBC record batches, not kept), with Amar's resident memory before the stream and its peak (VmHWM) after.\n\n\
         | rows | direct s | Amar s | ratio | Amar s per M rows | stream s | stream rows/s | RSS before MiB | peak MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        options.rounds
    );
    for &rows in &options.sizes {
        let schema = format!("amar_bench_scale_{}_{rows}", std::process::id());
        let rows_text = rows.to_string();
        python(
            options,
            "pushdown.py",
            &[
                "setup", "--pg", &pg, "--schema", &schema, "--rows", &rows_text,
            ],
        )?;
        let measured = (|| {
            let server = Amar::with_sources(
                &options.amar,
                &crate::server::postgres_source("dept", &pg, &schema),
            )?;
            let out = python(
                options,
                "pushdown.py",
                &[
                    "measure",
                    "--pg",
                    &pg,
                    "--schema",
                    &schema,
                    "--amar-port",
                    &server.pg_port.to_string(),
                    "--rounds",
                    &options.rounds.to_string(),
                ],
            )?;
            let aggregate: serde_json::Value = serde_json::from_slice(&out)?;
            let before = server.memory_mib().map(|m| m.0).unwrap_or(f64::NAN);
            let out = python(
                options,
                "stream.py",
                &[
                    "--flight-port",
                    &server.flight_port.to_string(),
                    "--sql",
                    "SELECT * FROM dept.contributions",
                ],
            )?;
            let stream: serde_json::Value = serde_json::from_slice(&out)?;
            let peak = server.memory_mib().map(|m| m.1).unwrap_or(f64::NAN);
            Ok::<_, anyhow::Error>((aggregate, stream, before, peak))
        })();
        let _ = python(
            options,
            "pushdown.py",
            &["drop", "--pg", &pg, "--schema", &schema],
        );
        let (aggregate, stream, before, peak) = measured?;
        let direct = aggregate["direct_median_s"].as_f64().unwrap_or(f64::NAN);
        let amar = aggregate["amar_median_s"].as_f64().unwrap_or(f64::NAN);
        let streamed = stream["seconds"].as_f64().unwrap_or(f64::NAN);
        let streamed_rows = stream["rows"].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "| {rows} | {direct:.4} | {amar:.4} | {:.2} | {:.4} | {streamed:.2} | {:.0} | {before:.0} | {peak:.0} |\n",
            amar / direct,
            amar / (rows as f64 / 1e6),
            streamed_rows / streamed
        ));
    }
    Ok(table)
}
