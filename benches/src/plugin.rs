//! Plugin overhead: the same rows as fixed-width exports read by the fixed-width
//! plugin, and as CSV read by the built-in files connector, through `amar serve` over
//! pgwire; and the plugin's own table linked into this process against the same
//! table loaded from the shared library through the FFI boundary, in one DataFusion
//! session. Interleaved rounds, medians, ratios.

use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use amar_connectors::{PluginOptions, PluginSource, Source};
use amar_plugin_sdk::{Options as PluginOptionValues, Plugin};
use anyhow::Context;
use datafusion::prelude::SessionContext;
use futures::StreamExt;

use crate::Options;
use crate::server::Amar;

const NAMES: [&str; 4] = ["علی رضایی", "مریم احمدی", "حسین کریمی", "زهرا موسوی"];

const LAYOUT: &str = r#"
[[table]]
name = "payments"
files = "payroll_*.txt"

[[table.column]]
name = "national_id"
start = 1
width = 10
type = "text"

[[table.column]]
name = "name"
start = 11
width = 20
type = "text"

[[table.column]]
name = "province"
start = 31
width = 2
type = "integer"

[[table.column]]
name = "amount"
start = 33
width = 12
type = "integer"

[[table.column]]
name = "paid_on"
start = 45
width = 8
type = "date"
format = "jalali"
"#;

/// The queries, as `{t}` for the table.
pub const QUERIES: [(&str, &str); 2] = [
    (
        "aggregate",
        "SELECT province, count(*) AS n, sum(amount) AS total FROM {t} \
         WHERE paid_on >= DATE '2024-05-01' GROUP BY province ORDER BY province",
    ),
    ("every row", "SELECT * FROM {t}"),
];

/// `rows` payments in two monthly files, fixed-width in `dir` and CSV in
/// `dir/csv/payments/`.
fn write_data(dir: &Path, rows: u64) -> anyhow::Result<()> {
    std::fs::write(dir.join("layout.toml"), LAYOUT)?;
    let csv_dir = dir.join("csv").join("payments");
    std::fs::create_dir_all(&csv_dir)?;
    // Jalali 1403/01/15 and 1403/02/15, and the same days in ISO.
    for (month, (jalali, iso)) in [("14030115", "2024-04-03"), ("14030215", "2024-05-04")]
        .into_iter()
        .enumerate()
    {
        let mut fw = std::io::BufWriter::new(std::fs::File::create(
            dir.join(format!("payroll_{}.txt", month + 1)),
        )?);
        let mut csv = std::io::BufWriter::new(std::fs::File::create(
            csv_dir.join(format!("part-{}.csv", month + 1)),
        )?);
        writeln!(csv, "national_id,name,province,amount,paid_on")?;
        for i in 0..rows / 2 {
            let id = 1_000_000_000 + i;
            let name = NAMES[(i % 4) as usize];
            let province = i % 31 + 1;
            let amount = 10_000_000 + (i % 50_000) * 100;
            writeln!(fw, "{id:010}{name:<20}{province:02}{amount:012}{jalali}")?;
            writeln!(csv, "{id},{name},{province},{amount},{iso}")?;
        }
        fw.flush()?;
        csv.flush()?;
    }
    Ok(())
}

/// The fixed-width plugin's shared library of this build (a dependency of this
/// crate, so built beside it).
fn plugin_library(amar: &Path) -> anyhow::Result<PathBuf> {
    let file = format!(
        "{}amar_plugin_fixed_width{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let dir = amar.parent().context("the amar binary's folder")?;
    [dir.join(&file), dir.join("deps").join(&file)]
        .into_iter()
        .find(|p| p.exists())
        .with_context(|| format!("{file} not found beside {}", amar.display()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// Runs `sql` to the end in `ctx`; returns the rows and the seconds.
async fn run_in(ctx: &SessionContext, sql: &str) -> anyhow::Result<(usize, f64)> {
    let started = Instant::now();
    let mut stream = ctx.sql(sql).await?.execute_stream().await?;
    let mut rows = 0;
    while let Some(batch) = stream.next().await {
        rows += batch?.num_rows();
    }
    Ok((rows, started.elapsed().as_secs_f64()))
}

/// The same table linked in and through the boundary, in one session.
fn in_process(
    options: &Options,
    dir: &Path,
    library: &Path,
) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let mut values = serde_json::Map::new();
        values.insert("dir".into(), dir.display().to_string().into());
        values.insert(
            "layout".into(),
            dir.join("layout.toml").display().to_string().into(),
        );
        let direct = amar_plugin_fixed_width::FixedWidth::open(
            "direct",
            &PluginOptionValues::new(values.clone()),
        )
        .map_err(anyhow::Error::msg)?;
        let ffi = PluginSource::open(
            "ffi",
            PluginOptions {
                library: library.to_path_buf(),
                options: values,
                base_dir: None,
            },
        );
        let ctx = SessionContext::new();
        let direct_table = direct
            .table("payments")
            .await?
            .context("the payments table")?;
        ctx.register_table("direct_payments", direct_table)?;
        let ffi_table = ffi
            .tables()
            .await?
            .into_iter()
            .find(|t| t.name == "payments")
            .context("the payments table through FFI")?;
        ctx.register_table("ffi_payments", ffi_table.provider)?;
        let mut out = vec![];
        for (name, query) in QUERIES {
            let direct_sql = query.replace("{t}", "direct_payments");
            let ffi_sql = query.replace("{t}", "ffi_payments");
            let (a, _) = run_in(&ctx, &direct_sql).await?;
            let (b, _) = run_in(&ctx, &ffi_sql).await?;
            anyhow::ensure!(a == b, "{name}: {a} rows linked in, {b} through FFI");
            let (mut d, mut f) = (vec![], vec![]);
            for _ in 0..options.rounds {
                d.push(run_in(&ctx, &direct_sql).await?.1);
                f.push(run_in(&ctx, &ffi_sql).await?.1);
            }
            out.push((name.to_string(), median(d), median(f)));
        }
        Ok(out)
    })
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let rows = ((4_000_000.0 * options.scale) as u64).max(20_000);
    let dir = std::env::temp_dir().join(format!("amar-bench-plugin-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = (|| {
        write_data(&dir, rows)?;
        let library = plugin_library(&options.amar)?;
        let linked = in_process(options, &dir, &library)?;
        let server = Amar::with_sources(
            &options.amar,
            &format!(
                "[[source]]\nname = \"fw\"\nkind = \"plugin\"\nlibrary = \"{}\"\n[source.options]\ndir = \"{}\"\nlayout = \"{}\"\n\n\
                 [[source]]\nname = \"csv\"\nkind = \"files\"\npath = \"{}\"\n",
                library.display(),
                dir.display(),
                dir.join("layout.toml").display(),
                dir.join("csv").display()
            ),
        )?;
        let out = crate::python::run(
            options,
            "plugin.py",
            &[
                "--amar-port",
                &server.pg_port.to_string(),
                "--rounds",
                &options.rounds.to_string(),
            ],
        )?;
        let report: serde_json::Value = serde_json::from_slice(&out)?;
        Ok::<_, anyhow::Error>((linked, report))
    })();
    let _ = std::fs::remove_dir_all(&dir);
    let (linked, report) = result?;
    let mut table = format!(
        "{} rounds interleaved, median. {rows} payments (two monthly files; Persian names, Jalali dates) as fixed-width text and as CSV.\n\n\
         Through `amar serve` (psycopg → pgwire): the fixed-width plugin against the built-in files connector reading the same rows as CSV. \
         The plugin filters while it reads; the CSV scan's filter runs in DataFusion.\n\n\
         | query | built-in CSV s | plugin s | ratio |\n|---|---:|---:|---:|\n",
        options.rounds
    );
    for (name, _) in QUERIES {
        let q = &report[name];
        let csv = q["csv_median_s"].as_f64().unwrap_or(f64::NAN);
        let fw = q["plugin_median_s"].as_f64().unwrap_or(f64::NAN);
        let _ = writeln!(
            table,
            "| {name} ({} rows out) | {csv:.4} | {fw:.4} | {:.2} |",
            q["rows"],
            fw / csv
        );
    }
    let _ = write!(
        table,
        "\nThe boundary alone: the plugin's table linked into one DataFusion session, against the same table loaded from the shared library (`datafusion-ffi`: plans, streams and Arrow C data interface batches cross it).\n\n\
         | query | linked in s | through FFI s | ratio |\n|---|---:|---:|---:|\n"
    );
    for (name, direct, ffi) in linked {
        let _ = writeln!(
            table,
            "| {name} | {direct:.4} | {ffi:.4} | {:.2} |",
            ffi / direct
        );
    }
    Ok(table)
}
