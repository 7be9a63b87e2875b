//! The real psql against the demo: `\dt *.*`, `\d insurance.contributions`, `\dn`.

use std::process::Command;

use amar_tests::{services_required, shared_demo};

/// Runs a psql meta-command against the shared demo; `None` when psql is not
/// installed (and the run does not require it).
fn psql(command: &str) -> Option<String> {
    psql_as("admin", command)
}

/// The same as a demo user, whose password is their name.
fn psql_as(user: &str, command: &str) -> Option<String> {
    let server = shared_demo();
    let output = Command::new("psql")
        .args([
            "-X",
            "-h",
            &server.pg_addr.ip().to_string(),
            "-p",
            &server.pg_addr.port().to_string(),
            "-U",
            user,
            "-d",
            "amar",
            "-c",
            command,
        ])
        .env("PGPASSWORD", user)
        .output();
    match output {
        Ok(out) => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "psql {command} failed: {stderr}");
            assert!(!stderr.contains("ERROR"), "psql {command}: {stderr}");
            Some(String::from_utf8_lossy(&out.stdout).into_owned())
        }
        Err(e) if !services_required() => {
            eprintln!("skipping: psql is not installed ({e})");
            None
        }
        Err(e) => panic!("psql is required (AMAR_REQUIRE_SERVICES=1) but cannot run: {e}"),
    }
}

#[test]
fn psql_lists_every_demo_table() {
    let Some(out) = psql("\\dt *.*") else { return };
    for (schema, table) in [
        ("insurance", "contributions"),
        ("insurance", "provinces"),
        ("insurance", "insured_persons"),
        ("pension", "pensioners"),
        ("pension", "payments"),
        ("health", "claims"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.contains(schema) && l.contains(&format!(" {table} "))),
            "{schema}.{table} missing from \\dt *.*:\n{out}"
        );
    }
}

#[test]
fn psql_describes_contributions_with_types_and_primary_key() {
    let Some(out) = psql("\\d insurance.contributions") else {
        return;
    };
    assert!(out.contains("Table \"insurance.contributions\""), "{out}");
    for (column, ty) in [
        ("id", "bigint"),
        ("province_code", "smallint"),
        ("branch_code", "integer"),
        ("period", "date"),
        ("wage", "numeric(14,0)"),
        ("paid_at", "timestamp without time zone"),
        ("economic_sector", "text"),
    ] {
        assert!(
            out.lines()
                .any(|l| l.trim_start().starts_with(column) && l.contains(ty)),
            "{column} {ty} missing:\n{out}"
        );
    }
    assert!(
        out.contains("\"contributions_pkey\" PRIMARY KEY, btree (id)"),
        "{out}"
    );
}

#[test]
fn psql_shows_persian_comments_with_describe_plus() {
    let Some(out) = psql("\\d+ insurance.contributions") else {
        return;
    };
    assert!(out.contains("دستمزد مشمول کسر حق بیمه (ریال)"), "{out}");
    let Some(out) = psql("\\dt+ insurance.provinces") else {
        return;
    };
    assert!(out.contains("استان‌های کشور"), "{out}");
}

#[test]
fn psql_lists_schemas_and_describes_parquet_and_csv_tables() {
    let Some(out) = psql("\\dn") else { return };
    for schema in ["insurance", "pension", "health", "amar", "public"] {
        assert!(out.contains(schema), "{schema} missing:\n{out}");
    }
    let Some(out) = psql("\\d pension.payments") else {
        return;
    };
    assert!(
        out.contains("amount") && out.contains("numeric(14,0)") && out.contains("double precision"),
        "{out}"
    );
    let Some(out) = psql("\\d health.claims") else {
        return;
    };
    assert!(out.contains("claim_date") && out.contains("date"), "{out}");
}

#[test]
fn psql_lists_only_what_a_restricted_user_may_read() {
    let Some(auditor) = psql_as("auditor", "\\dtv *.*") else {
        return;
    };
    assert!(auditor.contains("query_log"), "{auditor}");
    for hidden in ["contributions", "pensioners", "claims"] {
        assert!(
            !auditor.contains(hidden),
            "{hidden} shown to the auditor:\n{auditor}"
        );
    }
    let Some(tehran) = psql_as("tehran", "\\dtv *.*") else {
        return;
    };
    assert!(tehran.contains("contributions"), "{tehran}");
    assert!(!tehran.contains("query_log"), "{tehran}");
}

#[test]
fn psql_shows_provinces_that_miss_their_norms_and_lists_the_indicator_views() {
    let Some(out) = psql(
        "SELECT unit, indicator, status, unit_rank FROM amar.indicator_status \
         WHERE status <> 'on target' ORDER BY unit_rank, indicator",
    ) else {
        return;
    };
    assert!(
        out.lines()
            .any(|l| l.contains("warning") || l.contains("off target")),
        "{out}"
    );
    assert!(!out.contains("(0 rows)"), "{out}");
    let Some(views) = psql("\\dv indicators.*") else {
        return;
    };
    assert!(views.contains("active_insured"), "{views}");
    assert!(views.contains("rehabilitation_claims"), "{views}");
    let Some(public) = psql_as(
        "public",
        "SELECT count(*) FILTER (WHERE suppressed) AS hidden FROM indicators.rehabilitation_claims",
    ) else {
        return;
    };
    assert!(public.contains(" 141"), "{public}");
}
