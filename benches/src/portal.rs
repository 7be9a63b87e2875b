//! The portal against the SQL behind it (`benches/python/portal.py`): an uncached page
//! costs at most 1.2× its own queries run over pgwire as the same user; a cached page
//! is at least 10× faster than an uncached one; and 20 browsers at once keep the 95th
//! percentile under 100 ms.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<serde_json::Value> {
    let out = crate::python::run(options, "portal.py", args)?;
    Ok(serde_json::from_slice(&out)?)
}

pub fn run(options: &Options, demo: &Amar) -> anyhow::Result<String> {
    let (pg, portal) = (demo.pg_port.to_string(), demo.portal_port.to_string());
    let report = python(
        options,
        &[
            "measure",
            "--port",
            &pg,
            "--portal",
            &portal,
            "--rounds",
            &options.rounds.to_string(),
            "--queries",
            "10",
            "--data-dir",
            &demo.data_dir().display().to_string(),
        ],
    )?;
    let load = python(
        options,
        &[
            "browsers",
            "--portal",
            &portal,
            "--clients",
            "20",
            "--seconds",
            "20",
        ],
    )?;
    let mut out = format!(
        "Anonymous visitor (the `public` role). Each of {} interleaved rounds runs {} \
         uncached views (a query parameter the page ignores makes each URL new), the \
         page's own SQL {} times over psycopg as `public` (the statements its session \
         logged, parameters bound as the page bound them), and {} cached views; medians.\n\n\
         | page | statements | uncached ms | its SQL over pgwire ms | page / SQL | cached ms | uncached / cached |\n\
         |---|---:|---:|---:|---:|---:|---:|\n",
        report["rounds"], report["queries"], report["queries"], report["queries"],
    );
    let mut worst_ratio: f64 = 0.0;
    let mut worst_cache: f64 = f64::INFINITY;
    for name in ["home", "indicator", "scorecard"] {
        let page = &report["pages"][name];
        let ms = |k: &str| page["median_ms"][k].as_f64().unwrap_or(f64::NAN);
        let ratio = ms("page_uncached") / ms("sql");
        let cache = ms("page_uncached") / ms("page_cached");
        worst_ratio = worst_ratio.max(ratio);
        worst_cache = worst_cache.min(cache);
        out.push_str(&format!(
            "| `{}` | {} | {:.2} | {:.2} | {:.2} | {:.3} | {:.0} |\n",
            page["path"].as_str().unwrap_or(name),
            page["statements"],
            ms("page_uncached"),
            ms("sql"),
            ratio,
            ms("page_cached"),
            cache
        ));
    }
    let f = |k: &str| load[k].as_f64().unwrap_or(f64::NAN);
    out.push_str(&format!(
        "\nWorst page / SQL = {worst_ratio:.2} (target ≤ 1.2); worst uncached / cached = \
         {worst_cache:.0} (target ≥ 10).\n\n\
         {} browsers at once for {} s, each with a keep-alive connection, going round \
         home, an indicator (three), the style sheet, the scorecard, a unit, the glossary \
         and a CSV download: {} requests ({:.0}/s); latency p50 {:.2} ms, p95 {:.2} ms, \
         p99 {:.2} ms, max {:.1} ms (target p95 < 100 ms).\n",
        load["clients"],
        load["seconds"],
        load["requests"],
        f("per_second"),
        f("p50_ms"),
        f("p95_ms"),
        f("p99_ms"),
        f("max_ms"),
    ));
    out.push_str(
        "\nWhat every dashboard reads, over psycopg: `SELECT * FROM amar.indicator_status` and \
         `SELECT * FROM indicators.active_insured`, the first read after the data under it \
         changed (the demo's SQLite file touched, a new data version: computed), and the reads \
         after it while the data stays (current: the kept result; target p50 ≤ 20 ms). `tehran` \
         reads under a row filter (province 23).\n\n\
         | table | reader | rows | computed ms (median) | current p50 ms |\n|---|---|---:|---:|---:|\n",
    );
    for s in report["status"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "| `{}` | {} | {} | {:.1} | {:.2} |\n",
            s["table"].as_str().unwrap_or("?"),
            s["reader"].as_str().unwrap_or("?"),
            s["rows"],
            s["computed_ms"].as_f64().unwrap_or(f64::NAN),
            s["current_p50_ms"].as_f64().unwrap_or(f64::NAN),
        ));
    }
    Ok(out)
}
