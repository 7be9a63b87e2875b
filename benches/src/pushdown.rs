//! Pushdown: an aggregate over a 5M-row table through Amar (a `postgres` and a `mysql`
//! source, federated: the database computes the groups) against the same query sent
//! straight to PostgreSQL and to MariaDB. Target: Amar within 1.2× of direct.

use crate::Options;
use crate::server::Amar;

fn python(options: &Options, args: &[&str]) -> anyhow::Result<Vec<u8>> {
    crate::python::run(options, "pushdown.py", args)
}

pub fn run(options: &Options) -> anyhow::Result<String> {
    let pg = crate::server::postgres_url();
    let schema = format!("amar_bench_{}", std::process::id());
    // The same name serves as MariaDB's database.
    let mysql = ["--mysql-db", schema.as_str()];
    let rows = ((5_000_000.0 * options.scale) as u64).max(10_000);
    python(
        options,
        &[
            "setup",
            "--pg",
            &pg,
            "--schema",
            &schema,
            "--rows",
            &rows.to_string(),
            mysql[0],
            mysql[1],
        ],
    )?;
    let result = measure(options, &pg, &schema);
    let _ = python(
        options,
        &["drop", "--pg", &pg, "--schema", &schema, mysql[0], mysql[1]],
    );
    let report = result?;
    let direct = report["direct_median_s"].as_f64().unwrap_or(f64::NAN);
    let amar = report["amar_median_s"].as_f64().unwrap_or(f64::NAN);
    let m = &report["mysql"];
    let m_direct = m["direct_median_s"].as_f64().unwrap_or(f64::NAN);
    let m_amar = m["amar_median_s"].as_f64().unwrap_or(f64::NAN);
    Ok(format!(
        "{} rounds interleaved (direct, amar, …), median. `SELECT province_code, sum(contribution), count(*) … WHERE period >= … GROUP BY 1` over {rows} rows in each database; {} groups; aggregate pushed down: PostgreSQL {}, MariaDB {}.\n\n| path | median s | ratio |\n|---|---:|---:|\n| PostgreSQL direct (psycopg) | {direct:.4} | 1.00 |\n| Amar `postgres` source (psycopg → pgwire) | {amar:.4} | {:.2} |\n| MariaDB direct (PyMySQL) | {m_direct:.4} | 1.00 |\n| Amar `mysql` source (psycopg → pgwire) | {m_amar:.4} | {:.2} |\n",
        report["rounds"],
        report["groups"],
        report["pushed_down"],
        m["pushed_down"],
        amar / direct,
        m_amar / m_direct
    ))
}

fn measure(options: &Options, pg: &str, schema: &str) -> anyhow::Result<serde_json::Value> {
    let server = Amar::with_sources(
        &options.amar,
        &format!(
            "{}\n[[source]]\nname = \"mdept\"\nkind = \"mysql\"\nurl = \"mysql://root@127.0.0.1:3306/{schema}\"\nsslmode = \"disabled\"\n",
            crate::server::postgres_source("dept", pg, schema)
        ),
    )?;
    let out = python(
        options,
        &[
            "measure",
            "--pg",
            pg,
            "--schema",
            schema,
            "--amar-port",
            &server.pg_port.to_string(),
            "--rounds",
            &options.rounds.to_string(),
            "--mysql-db",
            schema,
        ],
    );
    drop(server);
    Ok(serde_json::from_slice(&out?)?)
}
