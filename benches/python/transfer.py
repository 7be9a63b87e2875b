"""Transfer benchmark: one query's full result into this Python process, over
Arrow Flight SQL (ADBC, to a pyarrow Table) and over the PostgreSQL protocol
(psycopg, to Python rows, binary and text), interleaved A B C A B C … and reported
as the median of the rounds; and, as the peer, PostgreSQL serving the same rows
(copied from Amar into a scratch schema first) to the same client; and, as the bound
for Flight, the same number of bytes as the result's Arrow IPC stream sent over a
loopback TCP socket. Prints one JSON object.

Usage: python transfer.py --pg-port P --flight-port F [--rounds 5]
                          [--postgres URL --schema S]
"""

import argparse
import json
import socket
import statistics
import threading
import time

import adbc_driver_flightsql.dbapi as flight_sql
import pyarrow as pa
import psycopg


def flight_run(uri, sql):
    with flight_sql.connect(uri, db_kwargs={"username": "admin", "password": "admin"}, autocommit=True) as conn:
        with conn.cursor() as cur:
            start = time.perf_counter()
            cur.execute(sql)
            table = cur.fetch_arrow_table()
            return table.num_rows, time.perf_counter() - start


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _field(number, payload):
    """A length-delimited protobuf field."""
    return bytes([number << 3 | 2]) + _varint(len(payload)) + payload


def statement_query(sql):
    """A Flight SQL CommandStatementQuery packed in google.protobuf.Any, written out by
    hand (two length-delimited fields each) so that no protobuf package is needed."""
    command = _field(1, sql.encode())
    type_url = b"type.googleapis.com/arrow.flight.protocol.sql.CommandStatementQuery"
    return _field(1, type_url) + _field(2, command)


def flight_cpp_run(uri, sql):
    """The same query through Arrow's own C++ Flight client (pyarrow.flight): the
    Flight SQL command by hand, then DoGet on the ticket into a pyarrow Table. Beside
    ADBC (whose Flight SQL driver is Go, handing batches over the C data interface),
    it tells the client's share of the time from the server's."""
    import pyarrow.flight as fl

    client = fl.FlightClient(uri)
    try:
        header = client.authenticate_basic_token("admin", "admin")
        options = fl.FlightCallOptions(headers=[header])
        start = time.perf_counter()
        info = client.get_flight_info(fl.FlightDescriptor.for_command(statement_query(sql)), options)
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        return table.num_rows, time.perf_counter() - start
    finally:
        client.close()


def flight_table(uri, sql, credentials=("admin", "admin"), views=False):
    """pyarrow.flight as in flight_cpp_run, signed in with `credentials` (None: no
    sign-in, for other servers), asking for Arrow's view types (`views`) with Amar's
    call header or not; returns (the table, seconds)."""
    import pyarrow.flight as fl

    client = fl.FlightClient(uri)
    try:
        headers = [client.authenticate_basic_token(*credentials)] if credentials else []
        if views:
            headers.append((b"x-amar-arrow-view-types", b"true"))
        options = fl.FlightCallOptions(headers=headers)
        start = time.perf_counter()
        info = client.get_flight_info(fl.FlightDescriptor.for_command(statement_query(sql)), options)
        table = client.do_get(info.endpoints[0].ticket, options).read_all()
        return table, time.perf_counter() - start
    finally:
        client.close()


def wire_types(uri, sql, rounds):
    """The same text-heavy result from Parquet in plain types (the default) and in
    view types (asked for), interleaved: Arrow IPC bytes and median seconds."""
    out = {"sql": sql}
    for views in (False, True):
        flight_table(uri, sql, views=views)
    times = {False: [], True: []}
    tables = {}
    for _ in range(rounds):
        for views in (False, True):
            table, s = flight_table(uri, sql, views=views)
            times[views].append(s)
            tables[views] = table
    for views, name in ((False, "plain"), (True, "views")):
        table = tables[views]
        out[name] = {
            "types": sorted({str(f.type) for f in table.schema if "string" in str(f.type)}),
            "ipc_bytes": ipc_bytes(table),
            "rows": table.num_rows,
            "median_s": statistics.median(times[views]),
        }
    return out


def result_table(uri, sql):
    """The result, as Amar's Flight SQL sends it (its batches as they came)."""
    with flight_sql.connect(uri, db_kwargs={"username": "admin", "password": "admin"}, autocommit=True) as conn:
        with conn.cursor() as cur:
            cur.execute(sql)
            return cur.fetch_arrow_table()


def ipc_bytes(table):
    """How many bytes the result is as an Arrow IPC stream (what Flight moves)."""
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().size


# Arrow's own Flight server (C++, pyarrow.flight), serving a table it holds in memory:
# what Flight itself costs on this machine, with no query, no source and no SQL.
REFERENCE_SERVER = """
import sys
import pyarrow as pa
import pyarrow.flight as fl

class Reference(fl.FlightServerBase):
    def __init__(self, table):
        super().__init__("grpc://127.0.0.1:0")
        self.table = table

    def do_get(self, context, ticket):
        return fl.RecordBatchStream(self.table)

with pa.memory_map(sys.argv[1]) as source:
    table = pa.ipc.open_stream(source).read_all()
server = Reference(table)
print(server.port, flush=True)
server.serve()
"""


class ReferenceFlight:
    """A reference Flight server in a process of its own, holding `table`."""

    def __init__(self, table):
        import subprocess
        import sys
        import tempfile

        self.file = tempfile.NamedTemporaryFile(suffix=".arrows")
        with pa.OSFile(self.file.name, "wb") as sink, pa.ipc.new_stream(sink, table.schema) as writer:
            for batch in table.to_batches():
                writer.write_batch(batch)
        self.process = subprocess.Popen(
            [sys.executable, "-c", REFERENCE_SERVER, self.file.name], stdout=subprocess.PIPE
        )
        self.port = int(self.process.stdout.readline())

    def run(self):
        import pyarrow.flight as fl

        client = fl.FlightClient(f"grpc://127.0.0.1:{self.port}")
        try:
            start = time.perf_counter()
            table = client.do_get(fl.Ticket(b"result")).read_all()
            return table.num_rows, time.perf_counter() - start
        finally:
            client.close()

    def close(self):
        self.process.terminate()
        self.process.wait()
        self.file.close()


def loopback_run(nbytes):
    """The same number of bytes over a loopback TCP socket, from a thread to this
    one, 1 MiB at a time: the bandwidth bound Flight is held against."""
    server = socket.create_server(("127.0.0.1", 0))
    chunk = memoryview(bytearray(1 << 20))

    def send():
        with socket.create_connection(server.getsockname()) as c:
            left = nbytes
            while left > 0:
                n = min(left, len(chunk))
                c.sendall(chunk[:n])
                left -= n

    start = time.perf_counter()
    sender = threading.Thread(target=send)
    sender.start()
    conn, _ = server.accept()
    got = 0
    buf = bytearray(1 << 20)
    with conn:
        while True:
            n = conn.recv_into(buf)
            if n == 0:
                break
            got += n
    sender.join()
    elapsed = time.perf_counter() - start
    server.close()
    return got, elapsed


def pg_run(dsn, sql, binary):
    with psycopg.connect(dsn, autocommit=True) as conn:
        with conn.cursor(binary=binary) as cur:
            start = time.perf_counter()
            cur.execute(sql)
            rows = cur.fetchall()
            return len(rows), time.perf_counter() - start


COLUMNS = (
    "id bigint, insured_id bigint, employer_id bigint, province_code smallint, branch_code integer, "
    "period date, days_worked smallint, wage numeric(14,0), contribution numeric(14,0), "
    "paid_amount numeric(14,0), paid_at timestamp, economic_sector text"
)


def copy_to_postgres(dsn, url, schema):
    """The demo's contributions, as Amar serves them, into PostgreSQL."""
    with psycopg.connect(url, autocommit=True) as pg, psycopg.connect(dsn, autocommit=True) as amar:
        pg.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        pg.execute(f"CREATE SCHEMA {schema}")
        pg.execute(f"CREATE TABLE {schema}.contributions ({COLUMNS})")
        with amar.cursor(binary=True) as src, pg.cursor() as dst:
            src.execute("SELECT * FROM insurance.contributions")
            with dst.copy(f"COPY {schema}.contributions FROM STDIN") as copy:
                for row in src:
                    copy.write_row(row)
        pg.execute(f"ANALYZE {schema}.contributions")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--flight-port", type=int, required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--sql", default="SELECT * FROM insurance.contributions")
    # Further results over Flight only, each against its own loopback and reference:
    # one from the demo's Parquet files rather than its SQLite database, and one with no
    # source at all, so that Flight is measured where reading a source is not the bound.
    p.add_argument(
        "--flight-only",
        nargs="*",
        default=[
            "parquet=SELECT * FROM pension.payments",
            "no source=SELECT g, g * 2 AS h, g * 3 AS i, g * 4 AS j FROM generate_series(1, 2000000) AS t(g)",
        ],
        help="name=SQL pairs",
    )
    p.add_argument("--postgres")
    p.add_argument("--schema")
    a = p.parse_args()
    dsn = f"host=127.0.0.1 port={a.pg_port} dbname=amar user=admin password=admin"
    uri = f"grpc://127.0.0.1:{a.flight_port}"
    table = result_table(uri, a.sql)
    nbytes = ipc_bytes(table)
    reference = ReferenceFlight(table)
    batches = table.to_batches()
    del table
    clients = {
        "flight": lambda: flight_run(uri, a.sql),
        "flight-cpp": lambda: flight_cpp_run(uri, a.sql),
        "flight-reference": reference.run,
        # rows here are bytes: the Flight result's size as Arrow IPC.
        "loopback": lambda: loopback_run(nbytes),
        "pgwire-binary": lambda: pg_run(dsn, a.sql, True),
        "pgwire-text": lambda: pg_run(dsn, a.sql, False),
    }
    extras = []
    for pair in a.flight_only:
        name, sql = pair.split("=", 1)
        result = result_table(uri, sql)
        extra = {
            "name": name,
            "sql": sql,
            "ipc_bytes": ipc_bytes(result),
            "rows": result.num_rows,
            "batches": len(result.to_batches()),
            "reference": ReferenceFlight(result),
        }
        del result
        extras.append(extra)
        clients[f"{name}/flight"] = lambda sql=sql: flight_run(uri, sql)
        clients[f"{name}/flight-cpp"] = lambda sql=sql: flight_cpp_run(uri, sql)
        clients[f"{name}/flight-reference"] = extra["reference"].run
        clients[f"{name}/loopback"] = lambda n=extra["ipc_bytes"]: loopback_run(n)
    if a.postgres:
        copy_to_postgres(dsn, a.postgres, a.schema)
        theirs = a.sql.replace("insurance.contributions", f"{a.schema}.contributions")
        clients["postgres-binary"] = lambda: pg_run(a.postgres, theirs, True)
        clients["postgres-text"] = lambda: pg_run(a.postgres, theirs, False)
    # One warm-up round, not counted.
    for run in clients.values():
        run()
    seconds = {name: [] for name in clients}
    rows = {}
    for _ in range(a.rounds):
        for name, run in clients.items():
            n, s = run()
            rows[name] = n
            seconds[name].append(s)
    result = {
        name: {
            "rows": rows[name],
            "median_s": statistics.median(times),
            "rows_per_s": rows[name] / statistics.median(times),
            "runs_s": times,
        }
        for name, times in seconds.items()
    }
    reference.close()
    for extra in extras:
        extra.pop("reference").close()
    if a.postgres:
        with psycopg.connect(a.postgres, autocommit=True) as pg:
            pg.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")
    rows_per_batch = statistics.median(b.num_rows for b in batches) if batches else 0
    print(
        json.dumps(
            {
                "sql": a.sql,
                "rounds": a.rounds,
                "ipc_bytes": nbytes,
                "batches": len(batches),
                "rows_per_batch": rows_per_batch,
                "flight_only": extras,
                "results": result,
                "wire_types": wire_types(uri, "SELECT * FROM pension.pensioners", a.rounds),
            }
        )
    )


if __name__ == "__main__":
    main()
