"""psqlODBC, driven by pyodbc, as Tableau, Excel and Power BI use it on Windows.

The driver is Debian's `odbc-postgresql` (clients/install.sh), loaded by unixODBC from a
connection string that names its file, so nothing is registered in odbcinst.ini. Every
test runs twice: with the driver's defaults, which read a whole result at once, and with
`UseDeclareFetch=1`, Tableau's setting, under which the driver opens a transaction and
reads a result through `DECLARE ... CURSOR` and `FETCH`. SQLTables and SQLColumns are
the driver's own catalog queries on pg_catalog, not ours."""

import glob
import os
import uuid
from contextlib import closing

import psycopg
import pyodbc
import pytest

# What a Tableau data source sets: cursors, read 1000 rows a FETCH.
MODES = {"defaults": "", "declare_fetch": "UseDeclareFetch=1;Fetch=1000;"}


def _driver():
    found = sorted(glob.glob("/usr/lib/*/odbc/psqlodbcw.so"))
    if not found:
        pytest.fail("psqlODBC is not installed: run clients/install.sh")
    return found[0]


def _connect(mode, user="admin", password="admin", application_name="amar-odbc-test"):
    host = os.environ.get("AMAR_PG_HOST", "127.0.0.1")
    port = os.environ.get("AMAR_PG_PORT", "6543")
    return pyodbc.connect(
        f"Driver={_driver()};Server={host};Port={port};Database=amar;Uid={user};Pwd={password};"
        f"pqopt={{application_name={application_name}}};{MODES[mode]}"
    )


@pytest.fixture(params=MODES)
def mode(request):
    return request.param


@pytest.fixture
def odbc(mode):
    with closing(_connect(mode)) as c:
        yield c


def test_odbc_connects_to_a_postgresql_16(odbc):
    assert odbc.getinfo(pyodbc.SQL_DBMS_NAME) == "PostgreSQL"
    assert odbc.getinfo(pyodbc.SQL_DBMS_VER).startswith("16.")
    assert odbc.cursor().execute("SELECT 1").fetchone()[0] == 1


def test_odbc_lists_schemas_and_tables(odbc):
    cur = odbc.cursor()
    # SQLTables with schema "%" and empty catalog and table names lists schemas only.
    schemas = {row.table_schem for row in cur.tables(catalog="", schema="%", table="", tableType="")}
    assert {"insurance", "pension", "health", "amar"} <= schemas
    tables = {row.table_name: row.table_type for row in cur.tables(schema="insurance")}
    assert tables.get("provinces") == "TABLE"
    assert tables.get("contributions") == "TABLE"
    only_tables = {row.table_name for row in cur.tables(schema="insurance", tableType="TABLE")}
    assert {"provinces", "contributions", "insured_persons"} <= only_tables


def test_odbc_reads_columns_with_their_types(odbc):
    cur = odbc.cursor()
    provinces = [
        (row.column_name, row.type_name, row.data_type, row.nullable, row.ordinal_position)
        for row in cur.columns(table="provinces", schema="insurance")
    ]
    # psqlODBC's Unicode driver reports text as SQL_WLONGVARCHAR (TextAsLongVarchar=1).
    assert provinces == [
        ("code", "int2", pyodbc.SQL_SMALLINT, pyodbc.SQL_NO_NULLS, 1),
        ("name_fa", "text", pyodbc.SQL_WLONGVARCHAR, pyodbc.SQL_NO_NULLS, 2),
        ("name_en", "text", pyodbc.SQL_WLONGVARCHAR, pyodbc.SQL_NO_NULLS, 3),
        ("center_fa", "text", pyodbc.SQL_WLONGVARCHAR, pyodbc.SQL_NO_NULLS, 4),
    ]
    contributions = {row.column_name: row for row in cur.columns(table="contributions", schema="insurance")}
    assert contributions["id"].type_name == "int8" and contributions["id"].data_type == pyodbc.SQL_BIGINT
    wage = contributions["wage"]
    assert (wage.type_name, wage.data_type, wage.column_size, wage.decimal_digits) == ("numeric", pyodbc.SQL_NUMERIC, 14, 0)
    assert contributions["period"].data_type == pyodbc.SQL_TYPE_DATE
    assert contributions["paid_at"].data_type == pyodbc.SQL_TYPE_TIMESTAMP
    assert contributions["paid_at"].nullable == pyodbc.SQL_NULLABLE


def test_odbc_binds_persian_text_and_numbers(odbc):
    cur = odbc.cursor()
    cur.execute("SELECT code, name_fa, name_en FROM insurance.provinces WHERE name_fa = ?", "خراسان رضوی")
    assert [tuple(row) for row in cur.fetchall()] == [(9, "خراسان رضوی", "Razavi Khorasan")]
    assert [d[1] for d in cur.description] == [int, str, str]
    cur.execute("SELECT name_fa FROM insurance.provinces WHERE code = ?", 23)
    assert cur.fetchone()[0] == "تهران"
    cur.execute("SELECT count(*) FROM insurance.contributions WHERE province_code = ? AND wage > ?", 23, 0)
    assert cur.fetchone()[0] > 0


def test_odbc_reads_a_large_result_in_pages(mode, dsn):
    # A name of its own, to find this connection's statements in the query log.
    application_name = f"amar-odbc-{uuid.uuid4().hex[:12]}"
    with closing(_connect(mode, application_name=application_name)) as odbc:
        cur = odbc.cursor()
        total = cur.execute("SELECT count(*) FROM insurance.contributions").fetchone()[0]
        assert total > 10_000
        cur.execute("SELECT id, wage FROM insurance.contributions ORDER BY id")
        seen, pages, last = 0, 0, -1
        while rows := cur.fetchmany(5000):
            pages += 1
            for cid, wage in rows:
                assert cid > last and wage > 0
                last = cid
            seen += len(rows)
        assert seen == total
        assert pages == -(-total // 5000)

    # What the driver sent: with UseDeclareFetch=1, a cursor read 1000 rows a FETCH.
    with psycopg.connect(dsn.replace("user=admin password=admin", "user=auditor password=auditor")) as auditor:
        sent = [
            s
            for (s,) in auditor.execute(
                "SELECT statement FROM amar.query_log WHERE application_name = %s", (application_name,)
            )
        ]
    declares = [s for s in sent if s.startswith("DECLARE ") and s.endswith("FROM insurance.contributions ORDER BY id")]
    fetches = [s for s in sent if s.startswith("FETCH 1000 IN ")]
    if mode == "declare_fetch":
        assert len(declares) == 1 and " CURSOR WITH HOLD FOR SELECT id, wage " in declares[0], sent
        assert len(fetches) >= total // 1000, sent
    else:
        assert declares == [] and fetches == [], sent


def test_odbc_tehran_sees_only_tehran(mode):
    with closing(_connect(mode, "tehran", "tehran")) as c:
        cur = c.cursor()
        cur.execute("SELECT DISTINCT province_code FROM insurance.contributions")
        assert [tuple(row) for row in cur.fetchall()] == [(23,)]
        cur.execute("SELECT count(*) FROM insurance.contributions WHERE province_code <> ?", 23)
        assert cur.fetchone()[0] == 0


def test_odbc_refuses_a_wrong_password():
    with pytest.raises(pyodbc.Error) as e:
        _connect("defaults", "admin", "nope")
    assert "password authentication failed" in str(e.value)
