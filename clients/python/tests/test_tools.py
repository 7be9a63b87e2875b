"""What BI tools and their drivers send on connect and on their first screens,
through psycopg (issue 25): settings as functions, session statements, parameters
whose type the client leaves to the server, integer and numeric types as
PostgreSQL gives them. Run with the pinned and the current psycopg
(scripts/test.sh)."""

import datetime
import decimal

import psycopg
import pytest


def test_grafana_reads_the_version_with_current_setting(conn):
    cur = conn.execute("SELECT current_setting('server_version_num')::int / 100")
    assert cur.fetchone() == (1600,)
    assert conn.execute("SELECT current_setting('search_path')").fetchone()[0].endswith("public")
    with pytest.raises(psycopg.errors.UndefinedObject):
        conn.execute("SELECT current_setting('no_such_setting')")
    conn.rollback()


def test_set_config_sets_and_pg_settings_shows_it(conn):
    conn.autocommit = True
    assert conn.execute("SELECT set_config('application_name', 'superset', false)").fetchone() == ("superset",)
    assert conn.execute("SHOW application_name").fetchone() == ("superset",)
    assert conn.execute("SELECT setting FROM pg_settings WHERE name = 'application_name'").fetchone() == ("superset",)


def test_server_functions_answer_as_postgresql(conn):
    row = conn.execute(
        "SELECT version(), pg_backend_pid(), pg_is_in_recovery(), txid_current(), current_catalog, "
        "current_schema(), pg_postmaster_start_time(), inet_server_addr()"
    ).fetchone()
    version, pid, recovery, txid, catalog, schema, started, addr = row
    assert conn.execute("SELECT version()").description[0].name == "version"
    assert version.startswith("PostgreSQL 16.4")
    assert isinstance(pid, int) and pid > 0
    assert recovery is False
    assert isinstance(txid, int)
    assert (catalog, schema) == ("amar", "public")
    assert isinstance(started, datetime.datetime) and started.tzinfo is not None
    assert started <= datetime.datetime.now(datetime.timezone.utc)
    assert str(addr) == "127.0.0.1"


def test_parameters_the_client_leaves_untyped(conn):
    cur = conn.execute("SELECT %s, %s, %s", (1, datetime.date(2024, 3, 20), 1.5))
    assert cur.fetchone() == (1, datetime.date(2024, 3, 20), 1.5)
    cur = conn.execute("SELECT %s, length(%s)", ("تهران", "abc"))
    assert cur.fetchone() == ("تهران", 3)
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        cur.execute("SELECT %s, %s", (decimal.Decimal("12.50"), True))
        value, flag = cur.fetchone()
        assert value == decimal.Decimal("12.5") and flag is True


def test_a_float_compared_with_a_numeric_column_compares_as_a_float(conn):
    smallest = conn.execute("SELECT min(wage) FROM insurance.contributions").fetchone()[0]
    total = conn.execute("SELECT count(*) FROM insurance.contributions").fetchone()[0]
    below = conn.execute(
        "SELECT count(*) FROM insurance.contributions WHERE wage > %s", (float(smallest) - 0.5,)
    ).fetchone()[0]
    above = conn.execute(
        "SELECT count(*) FROM insurance.contributions WHERE wage > %s", (float(smallest) + 0.5,)
    ).fetchone()[0]
    assert below == total
    assert above < total


def test_integers_are_typed_as_postgresql_types_them(conn):
    cur = conn.execute("SELECT 1 AS one, 3000000000 AS big, code + 1 AS next, count(*) OVER () AS n "
                       "FROM insurance.provinces LIMIT 1")
    oids = [d.type_code for d in cur.description]
    assert oids == [23, 20, 23, 20]
    with pytest.raises(psycopg.errors.NumericValueOutOfRange):
        conn.execute("SELECT 2147483647 + 1")
    conn.rollback()


def test_numeric_columns_carry_precision_and_scale(conn):
    cur = conn.execute("SELECT wage, sum(wage) OVER () FROM insurance.contributions LIMIT 1")
    # numeric(14,0): PostgreSQL's type modifier, (14 << 16 | 0) + 4.
    assert cur.pgresult.fmod(0) == (14 << 16) + 4
    assert cur.description[0].precision == 14 and cur.description[0].scale == 0


def test_psql_describes_functions_and_types(conn):
    rows = conn.execute(
        "SELECT p.proname, pg_catalog.pg_get_function_result(p.oid), pg_catalog.pg_get_function_arguments(p.oid) "
        "FROM pg_catalog.pg_proc p WHERE p.proname = 'upper'"
    ).fetchall()
    assert ("upper", "text", "text") in rows


def test_tableau_cursor_with_hold(conn):
    conn.autocommit = True
    conn.execute('DECLARE "SQL_CUR0x55" CURSOR WITH HOLD FOR SELECT code, name_fa FROM insurance.provinces ORDER BY code')
    first = conn.execute('FETCH 10 IN "SQL_CUR0x55"').fetchall()
    second = conn.execute('FETCH 10 IN "SQL_CUR0x55"').fetchall()
    rest = conn.execute('FETCH ALL IN "SQL_CUR0x55"').fetchall()
    conn.execute('CLOSE "SQL_CUR0x55"')
    assert [r[0] for r in first] == list(range(10))
    assert [r[0] for r in second] == list(range(10, 20))
    assert (23, "تهران") in rest


def test_json_built_from_rows(conn):
    (doc,) = conn.execute(
        "SELECT json_build_object('code', code, 'name', name_fa) FROM insurance.provinces WHERE code = 23"
    ).fetchone()
    import json

    assert json.loads(doc) == {"code": 23, "name": "تهران"}
    (agg,) = conn.execute("SELECT json_agg(code ORDER BY code) FROM insurance.provinces WHERE code < 4").fetchone()
    assert json.loads(agg) == [0, 1, 2, 3]
