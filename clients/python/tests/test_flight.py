"""Arrow Flight SQL from Python: ADBC's DB-API (to pyarrow, pandas and polars),
adbc_get_objects and get_table_schema, and raw pyarrow.flight GetFlightInfo/DoGet."""

import os
import time

import adbc_driver_flightsql.dbapi as flight_sql
import adbc_driver_manager
import polars as pl
import pyarrow as pa
import pyarrow.flight as flight
import pytest


def connect(uri, user="admin", password="admin"):
    return flight_sql.connect(
        uri,
        db_kwargs={"username": user, "password": password},
        autocommit=True,
    )


def test_query_to_arrow_pandas_and_polars(flight_uri):
    with connect(flight_uri) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT p.name_en, count(*) AS claims FROM health.claims c "
            "JOIN insurance.provinces p ON p.code = c.province_code GROUP BY p.name_en ORDER BY claims DESC"
        )
        table = cur.fetch_arrow_table()
        assert table.schema.field("claims").type == pa.int64()
        assert table.num_rows == 31
        assert table.column("name_en")[0].as_py() == "Tehran"
        cur.execute("SELECT code, name_fa FROM insurance.provinces ORDER BY code")
        df = cur.fetch_df()
        assert df.shape == (31, 2)
        assert df["name_fa"][23] == "تهران"
        cur.execute("SELECT id, wage, period FROM insurance.contributions ORDER BY id LIMIT 1000")
        frame = pl.from_arrow(cur.fetch_arrow_table())
        assert frame.height == 1000
        assert frame.schema["period"] == pl.Date
        assert str(frame.schema["wage"]).startswith("Decimal")


def test_parameters(flight_uri):
    with connect(flight_uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT name_en FROM insurance.provinces WHERE code = ?", parameters=(9,))
        assert cur.fetchall() == [("Razavi Khorasan",)]
        cur.execute(
            "SELECT count(*) FROM insurance.contributions WHERE province_code = ? AND days_worked >= ?",
            parameters=(23, 30),
        )
        (n,) = cur.fetchone()
        assert n > 0


def test_get_objects_and_table_schema(flight_uri):
    with connect(flight_uri) as conn:
        objects = conn.adbc_get_objects(depth="tables", db_schema_filter="insurance").read_all().to_pylist()
        assert objects[0]["catalog_name"] == "amar"
        schemas = objects[0]["catalog_db_schemas"]
        assert [s["db_schema_name"] for s in schemas] == ["insurance"]
        tables = {t["table_name"] for t in schemas[0]["db_schema_tables"]}
        assert {"contributions", "provinces", "insured_persons"} <= tables
        schema = conn.adbc_get_table_schema("contributions", db_schema_filter="insurance")
        assert schema.field("wage").type == pa.decimal128(14, 0)
        assert schema.field("period").type == pa.date32()
        info = conn.adbc_get_info()
        assert info["vendor_name"] == "Amar"


def test_errors_and_authentication(flight_uri):
    with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
        connect(flight_uri, password="wrong")
    assert "UNAUTHENTICATED" in str(e.value)
    with connect(flight_uri) as conn, conn.cursor() as cur:
        with pytest.raises(adbc_driver_manager.ProgrammingError) as e:
            cur.execute("SELECT * FROM insurance.nowhere")
        assert "NOT_FOUND" in str(e.value) and "does not exist" in str(e.value)
        cur.execute("SELECT 1 AS one")
        assert cur.fetchall() == [(1,)]


def test_raw_pyarrow_flight_get_flight_info_and_do_get(flight_uri):
    client = flight.FlightClient(flight_uri)
    token = client.authenticate_basic_token(b"admin", b"admin")
    options = flight.FlightCallOptions(headers=[token])
    # A Flight SQL CommandStatementQuery, encoded by hand: field 1 (query), a string.
    sql = b"SELECT code, name_en FROM insurance.provinces ORDER BY code"
    command = b"\x0a" + bytes([len(sql)]) + sql
    any_msg = (
        b"\x0a" + bytes([len(b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery")])
        + b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
        + b"\x12" + bytes([len(command)]) + command
    )
    info = client.get_flight_info(flight.FlightDescriptor.for_command(any_msg), options)
    assert info.schema.names == ["code", "name_en"]
    table = client.do_get(info.endpoints[0].ticket, options).read_all()
    assert table.num_rows == 31
    assert table.column("name_en")[0].as_py() == "Markazi"


def test_a_large_result_arrives_fast(flight_uri):
    with connect(flight_uri) as conn, conn.cursor() as cur:
        started = time.monotonic()
        cur.execute("SELECT * FROM insurance.contributions")
        table = cur.fetch_arrow_table()
        elapsed = time.monotonic() - started
        cur.execute("SELECT count(*) FROM insurance.contributions")
        assert table.num_rows == cur.fetchone()[0]
        print(f"Flight SQL: {table.num_rows:,} rows in {elapsed:.2f} s")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.skipif("AMAR_PID" not in os.environ, reason="needs the PID of a separate amar serve")
def test_a_client_that_disconnects_cancels_its_query(flight_uri):
    pid = int(os.environ["AMAR_PID"])
    with connect(flight_uri) as conn, conn.cursor() as cur:
        cur.execute("SELECT value, value * 2 AS twice FROM generate_series(1, 2000000000) AS t(value)")
        reader = cur.fetch_record_batch()
        first = reader.read_next_batch()
        assert first.num_rows > 0
        reader.close()
    time.sleep(1.0)
    before = cpu_seconds(pid)
    time.sleep(2.0)
    busy = cpu_seconds(pid) - before
    assert busy < 0.5, f"the server kept computing ({busy:.2f} CPU s in 2 s) after the client left"
