//! Point and small queries: p50 and p99 latency of 10,000 short statements through Amar
//! (a `postgres` source) and straight to PostgreSQL, with 1 and 32 concurrent clients.
//! Target: Amar's p50 within 2× of PostgreSQL's.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, "latency.py", args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let schema = format!("amar_bench_latency_{}", std::process::id());
    let rows = ((1_000_000.0 * options.scale) as u64)
        .max(10_000)
        .to_string();
    python(
        options,
        &["setup", "--pg", &pg, "--schema", &schema, "--rows", &rows],
    )?;
    let result = (|| {
        let server = Amar::with_sources(
            &options.amar,
            &format!(
                "{}pool_size = 32\n",
                crate::server::postgres_source("dept", &pg, &schema)
            ),
        )?;
        let out = python(
            options,
            &[
                "measure",
                "--pg",
                &pg,
                "--schema",
                &schema,
                "--rows",
                &rows,
                "--amar-port",
                &server.pg_port.to_string(),
                "--rounds",
                &options.rounds.to_string(),
            ],
        )?;
        let flight = python(
            options,
            &[
                "flight",
                "--pg",
                &pg,
                "--schema",
                &schema,
                "--rows",
                &rows,
                "--amar-port",
                &server.pg_port.to_string(),
                "--flight-port",
                &server.flight_port.to_string(),
                "--rounds",
                &options.rounds.to_string(),
                "--queries",
                "3000",
            ],
        )?;
        Ok::<_, anyhow::Error>((
            serde_json::from_slice::<serde_json::Value>(&out)?,
            serde_json::from_slice::<serde_json::Value>(&flight)?,
        ))
    })();
    let _ = python(options, &["drop", "--pg", &pg, "--schema", &schema]);
    let (report, flight) = result?;
    let mut table = format!(
        "{} queries per path and case, in {} interleaved blocks (direct, byte proxy, amar, …); a {rows}-row PostgreSQL table with a primary key. \
         `point`: `SELECT … WHERE id = $1`; `small`: `SELECT period, sum(contribution) … WHERE id BETWEEN $1 AND $1 + 200 GROUP BY period`. \
         Clients are threads of one Python process, each with its own psycopg connection. \
         `proxy`: the same statements to PostgreSQL through socat, which copies bytes and does nothing else \
         (what any server between client and database costs before it does any work).\n\n\
         | query | clients | PostgreSQL p50 ms | proxy p50 ms | proxy ratio | Amar p50 ms | p50 ratio | PostgreSQL p99 ms | Amar p99 ms | p99 ratio |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        report["queries"], report["rounds"]
    );
    for case in report["cases"].as_array().into_iter().flatten() {
        let f = |k: &str| case[k].as_f64().unwrap_or(f64::NAN);
        table.push_str(&format!(
            "| {} | {} | {:.3} | {:.3} | {:.2} | {:.3} | {:.2} | {:.3} | {:.3} | {:.2} |\n",
            case["query"].as_str().unwrap_or(""),
            case["clients"],
            f("direct_p50_ms"),
            f("proxy_p50_ms"),
            f("proxy_p50_ms") / f("direct_p50_ms"),
            f("amar_p50_ms"),
            f("amar_p50_ms") / f("direct_p50_ms"),
            f("direct_p99_ms"),
            f("amar_p99_ms"),
            f("amar_p99_ms") / f("direct_p99_ms"),
        ));
    }
    let f = |k: &str| flight[k].as_f64().unwrap_or(f64::NAN);
    table.push_str(&format!(
        "\nThe point query prepared once and run with a bound parameter, to Amar over both protocols \
         ({} executions each, one client, {} alternating blocks): Flight SQL through ADBC \
         (bind = DoPut, run = GetFlightInfo + DoGet) against pgwire through psycopg (Bind, Execute, Sync). \
         Target: Flight within 2× of pgwire.\n\n\
         | path | p50 ms | p99 ms |\n|---|---:|---:|\n\
         | pgwire (psycopg, prepared) | {:.3} | {:.3} |\n\
         | Flight SQL (ADBC, prepared) | {:.3} | {:.3} |\n\
         | Flight / pgwire | {:.2} | {:.2} |\n",
        flight["n"],
        flight["rounds"],
        f("pgwire_p50_ms"),
        f("pgwire_p99_ms"),
        f("flight_p50_ms"),
        f("flight_p99_ms"),
        f("flight_p50_ms") / f("pgwire_p50_ms"),
        f("flight_p99_ms") / f("pgwire_p99_ms"),
    ));
    Ok(table)
}
