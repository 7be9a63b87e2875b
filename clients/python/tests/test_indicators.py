"""The statistics catalog from Python: a dashboard's queries through psycopg (binary and
text), the public role over ADBC Flight SQL, and `amar validate` as a cron job runs it
(the binary is AMAR_BIN; scripts/test.sh sets it)."""

import subprocess

import psycopg
import pytest

from conftest import _dsn
from test_flight import connect


def test_dashboard_ranks_provinces_that_miss_their_norms(conn):
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        rows = cur.execute(
            "SELECT unit, indicator, value, target, status, unit_score, unit_rank "
            "FROM amar.indicator_status WHERE status <> %s ORDER BY unit_rank, indicator",
            ("on target",),
        ).fetchall()
        assert rows
        assert {r[4] for r in rows} <= {"warning", "off target"}
        ranks = [r[6] for r in rows]
        assert ranks == sorted(ranks) and ranks[0] >= 1
        assert all(isinstance(r[2], float) and 0 <= r[5] <= 100 for r in rows)


def test_jalali_quarters_group_the_demo_contributions(conn):
    rows = conn.execute(
        "SELECT jalali_period('quarter', period) AS q, sum(paid_amount) AS paid "
        "FROM insurance.contributions GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert [r[0] for r in rows] == [f"{y}Q{q}" for y in (1402, 1403) for q in (1, 2, 3, 4)]
    # The same quarters as the indicator, summed over provinces.
    by_indicator = dict(
        conn.execute(
            "SELECT period, sum(value) FROM indicators.contributions_collected GROUP BY period"
        ).fetchall()
    )
    assert {q: int(p) for q, p in rows} == {q: int(v) for q, v in by_indicator.items()}


def test_public_reads_suppressed_indicators_over_flight_sql(flight_uri):
    with connect(flight_uri, "public", "public") as c, c.cursor() as cur:
        cur.execute(
            "SELECT count(*) AS cells, sum(CASE WHEN suppressed THEN 1 ELSE 0 END) AS hidden, "
            "sum(CASE WHEN value < 5 THEN 1 ELSE 0 END) AS small FROM indicators.rehabilitation_claims"
        )
        cells, hidden, small = cur.fetchone()
        assert cells > 0 and hidden > 0
        assert small in (0, None)
        with pytest.raises(Exception, match="permission denied"):
            cur.execute("SELECT * FROM health.claims LIMIT 1")
            cur.fetchall()


def test_public_over_psycopg_cannot_reach_tables():
    with psycopg.connect(_dsn("public", "public")) as c:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            c.execute("SELECT count(*) FROM insurance.contributions")


def test_amar_validate_reports_the_planted_violation(amar_bin, tmp_path):
    done = subprocess.run(
        [amar_bin, "validate", "--data-dir", str(tmp_path), "--demo-scale", "0.02"],
        capture_output=True,
        text=True,
        timeout=600,
    )
    out = done.stdout
    assert done.returncode == 1, out + done.stderr
    lines = {line.split()[2]: line for line in out.splitlines() if line[:4] in ("ok  ", "FAIL", "ERR ")}
    assert lines["payments_to_known_pensioners"].startswith("FAIL error")
    assert '"pensioner_id":"9000000"' in lines["payments_to_known_pensioners"]
    assert lines["claims_for_known_insured"].startswith("ok   error")
    assert lines["full_month_minimum_wage"].startswith("FAIL warning")
    assert "1 error-severity rules not passed" in out
    assert "error-severity rules did not pass" in done.stderr
    # Kept for the server: the next start shows this run in amar.validation_results.
    assert (tmp_path / "validation" / "results.jsonl").read_text().count("amar validate") == 6


def test_amar_validate_passes_a_clean_catalog(amar_bin, tmp_path):
    users = tmp_path / "users.toml"
    users.write_text("")
    config = tmp_path / "amar.toml"
    config.write_text(
        f'[server]\nusers_file = "{users}"\n\n'
        '[[validation]]\nid = "nothing_wrong"\ntitle_fa = "x"\ntitle_en = "x"\n'
        'severity = "error"\nsql = "SELECT 1 WHERE false"\n\n'
        '[[validation]]\nid = "a_warning"\ntitle_fa = "x"\ntitle_en = "x"\n'
        'severity = "warning"\nsql = "SELECT 1"\n'
    )
    done = subprocess.run(
        [amar_bin, "validate", "--config", str(config), "--data-dir", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 rules, 1 passed; 0 error-severity rules not passed" in done.stdout
