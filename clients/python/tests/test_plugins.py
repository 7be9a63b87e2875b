"""A connector plugin in a running `amar serve`, from the real Python clients: the
fixed-width plugin (built by the test command, found in AMAR_PLUGIN_DIR) serves a
legacy payroll export; psycopg and ADBC Flight SQL read it, and `amar plugins check`
describes the library. scripts/test.sh sets AMAR_BIN and AMAR_PLUGIN_DIR."""

import datetime
import decimal
import os
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import psycopg
import pytest

from amar_process import add_user, amar_binary, start

LAYOUT = """
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
width = 12
type = "text"

[[table.column]]
name = "amount"
start = 23
width = 12
type = "decimal"
scale = 2

[[table.column]]
name = "paid_on"
start = 35
width = 8
type = "date"
format = "jalali"
"""

# 1 Farvardin 1403 is 20 March 2024; 29 Esfand 1402 is 19 March 2024.
ROWS = [
    ("0012345678", "علی رضایی", "000001234550", "14030101"),
    ("0087654321", "مریم احمدی", "000000050000", "14021229"),
    ("0011111111", "حسین کریمی", "            ", "00000000"),
]


def library():
    d = os.environ.get("AMAR_PLUGIN_DIR")
    if not d:
        pytest.skip("AMAR_PLUGIN_DIR is not set (scripts/test.sh sets it)")
    return os.path.join(d, "libamar_plugin_fixed_width.so")


@pytest.fixture(scope="module")
def plugin_server(tmp_path_factory):
    binary = amar_binary()
    lib = library()
    d = tmp_path_factory.mktemp("plugin")
    (d / "exports").mkdir()
    (d / "layout.toml").write_text(LAYOUT)
    lines = "".join(f"{i}{n:<12}{a}{p}\n" for i, n, a, p in ROWS)
    (d / "exports" / "payroll_140301.txt").write_text(lines, encoding="utf-8")
    users = add_user(binary, d)
    config = d / "amar.toml"
    config.write_text(
        "[server]\n"
        f'users_file = "{users}"\n\n'
        "[[source]]\n"
        'name = "payroll"\n'
        'kind = "plugin"\n'
        f'library = "{lib}"\n'
        "[source.options]\n"
        'dir = "exports"\n'
        'layout = "layout.toml"\n'
    )
    server = start(binary, d, config)
    yield {"pg": server.pg, "flight": server.flight}
    server.stop()


def test_psycopg_reads_the_plugins_table_with_its_types(plugin_server):
    dsn = f"host=127.0.0.1 port={plugin_server['pg']} dbname=amar user=stats password=pw"
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT national_id, name, amount, paid_on FROM payroll.payments ORDER BY national_id"
        ).fetchall()
        assert rows == [
            ("0011111111", "حسین کریمی", None, None),
            ("0012345678", "علی رضایی", decimal.Decimal("12345.50"), datetime.date(2024, 3, 20)),
            ("0087654321", "مریم احمدی", decimal.Decimal("500.00"), datetime.date(2024, 3, 19)),
        ]
        # Binary results, a parameter, and a filter that runs inside the plugin.
        with conn.cursor(binary=True) as cur:
            cur.execute("SELECT name FROM payroll.payments WHERE amount > %s", (decimal.Decimal("1000"),))
            assert cur.fetchall() == [("علی رضایی",)]
        plan = "\n".join(r[1] for r in conn.execute(
            "EXPLAIN SELECT name FROM payroll.payments WHERE paid_on < DATE '2024-03-20'"
        ).fetchall())
        assert "PluginScanExec: source=payroll, plugin=fixed-width" in plan
        assert "filters=[paid_on < " in plan


def test_adbc_flight_sql_gets_arrow_from_the_plugin(plugin_server):
    with flight_sql.connect(
        f"grpc://127.0.0.1:{plugin_server['flight']}",
        db_kwargs={"username": "stats", "password": "pw"},
        autocommit=True,
    ) as conn, conn.cursor() as cur:
        cur.execute("SELECT national_id, amount, paid_on FROM payroll.payments ORDER BY national_id")
        table = cur.fetch_arrow_table()
    assert table.schema.field("amount").type == pa.decimal128(18, 2)
    assert table.schema.field("paid_on").type == pa.date32()
    assert table.column("amount").to_pylist() == [None, decimal.Decimal("12345.50"), decimal.Decimal("500.00")]


def test_plugins_check_describes_the_library():
    binary = amar_binary()
    out = subprocess.run([binary, "plugins", "check", library()], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "plugin      fixed-width" in out.stdout
    assert "loads: yes" in out.stdout
    bad = subprocess.run([binary, "plugins", "check", "/nonexistent/libx.so"], capture_output=True, text=True)
    assert bad.returncode == 1
    assert "cannot load: No such file or directory" in bad.stdout
