"""psycopg 3 against Amar: what a Python analyst does first."""

import datetime
import decimal

import psycopg
import pytest


def test_parameter_status_has_what_drivers_read(conn):
    info = conn.info
    assert info.parameter_status("server_version") == "16.4"
    assert info.parameter_status("client_encoding") == "UTF8"
    assert info.parameter_status("DateStyle").startswith("ISO")
    assert info.parameter_status("integer_datetimes") == "on"
    assert info.parameter_status("standard_conforming_strings") == "on"
    assert info.server_version == 160004


def test_demo_types_decode_in_text_and_binary(conn):
    sql = (
        "SELECT c.id, c.province_code, c.branch_code, c.wage, c.period, c.paid_at, c.economic_sector, "
        "p.is_active FROM insurance.contributions c JOIN insurance.insured_persons p ON p.id = c.insured_id "
        "WHERE c.id = 1"
    )
    for binary in (False, True):
        cur = conn.cursor(binary=binary)
        row = cur.execute(sql).fetchone()
        cid, province, branch, wage, period, paid_at, sector, active = row
        assert cid == 1
        assert isinstance(province, int) and branch // 100 == province
        assert isinstance(wage, decimal.Decimal) and wage > 0
        assert period == datetime.date(2023, 3, 21)
        assert paid_at is None or isinstance(paid_at, datetime.datetime)
        assert isinstance(sector, str) and "\u064a" not in sector and "\u0643" not in sector
        assert isinstance(active, bool)


def test_parameters_and_persian_text(conn):
    cur = conn.cursor()
    cur.execute("SELECT code FROM insurance.provinces WHERE name_fa = %s", ("خراسان رضوی",))
    assert cur.fetchone() == (9,)
    cur.execute(
        "SELECT count(*) FROM insurance.contributions WHERE province_code = %s AND period BETWEEN %s AND %s",
        (23, datetime.date(2024, 3, 20), datetime.date(2025, 3, 20)),
    )
    (n,) = cur.fetchone()
    assert n > 0


def test_errors_have_sqlstates_and_the_connection_survives(conn):
    with pytest.raises(psycopg.errors.UndefinedTable):
        conn.execute("SELECT * FROM insurance.missing")
    conn.rollback()
    with pytest.raises(psycopg.errors.SyntaxError):
        conn.execute("SELEC 1")
    conn.rollback()
    assert conn.execute("SELECT 1").fetchone() == (1,)


def test_wrong_password_is_refused(dsn):
    with pytest.raises(psycopg.OperationalError) as e:
        psycopg.connect(dsn.replace("password=admin", "password=nope"))
    assert "password authentication failed" in str(e.value)


def test_copy_to_stdout(conn):
    with conn.cursor().copy(
        "COPY (SELECT code, name_en FROM insurance.provinces ORDER BY code LIMIT 3) TO STDOUT WITH (FORMAT csv)"
    ) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    assert data.decode() == "0,Markazi\n1,Gilan\n2,Mazandaran\n"


def test_transactions_as_psycopg_opens_them(conn):
    # psycopg opens a transaction before the first statement (autocommit off).
    conn.execute("SELECT 1")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS
    conn.commit()
    conn.autocommit = True
    conn.execute("SELECT 1")
    assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE


def test_server_side_cursor_pages_through_a_large_result(conn):
    total = conn.execute("SELECT count(*) FROM insurance.contributions").fetchone()[0]
    seen = 0
    last = -1
    with conn.cursor(name="contributions_by_id") as cur:
        cur.itersize = 5000
        cur.execute("SELECT id, wage FROM insurance.contributions ORDER BY id")
        for cid, wage in cur:
            assert cid > last
            last = cid
            seen += 1
    assert seen == total
    conn.commit()


def test_cursor_commands_follow_postgres(conn):
    conn.autocommit = True
    with pytest.raises(psycopg.errors.InvalidCursorName):
        conn.execute("FETCH 1 FROM nowhere")
    with pytest.raises(psycopg.errors.NoActiveSqlTransaction):
        conn.execute("DECLARE c CURSOR FOR SELECT 1")
    conn.execute("DECLARE h CURSOR WITH HOLD FOR SELECT code FROM insurance.provinces ORDER BY code")
    assert conn.execute("FETCH 2 FROM h").fetchall() == [(0,), (1,)]
    assert conn.execute("FETCH NEXT FROM h").fetchall() == [(2,)]
    assert len(conn.execute("FETCH ALL FROM h").fetchall()) == 28
    assert conn.execute("FETCH 5 FROM h").fetchall() == []
    conn.execute("CLOSE h")
    with pytest.raises(psycopg.errors.InvalidCursorName):
        conn.execute("CLOSE h")


def test_prepared_statements_psycopg_evicts_are_deallocated(conn):
    # psycopg prepares a statement once it has run `prepare_threshold` times and,
    # past `prepared_max`, deallocates the oldest with SQL `DEALLOCATE name`: a
    # protocol-level statement, which that command must close without an error.
    conn.autocommit = True
    conn.prepare_threshold = 0
    conn.prepared_max = 2
    for code in range(6):
        sql = f"SELECT name_en FROM insurance.provinces WHERE code = %s AND {code} >= 0"
        assert conn.execute(sql, (23,)).fetchone() == ("Tehran",)
        assert conn.execute(sql, (7,)).fetchone() == ("Fars",)
    # SQL-level PREPARE and EXECUTE, as a psql user writes them.
    conn.execute("PREPARE by_code(smallint) AS SELECT name_en FROM insurance.provinces WHERE code = $1")
    assert conn.execute("EXECUTE by_code(23)").fetchone() == ("Tehran",)
    with pytest.raises(psycopg.errors.DuplicatePreparedStatement):
        conn.execute("PREPARE by_code AS SELECT 1")
    conn.execute("DEALLOCATE by_code")
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        conn.execute("EXECUTE by_code(23)")
