"""Acceleration: the demo's pension payments (Parquet files) held in memory by Amar
(`accelerate = true`) against the same files read per query (the same server, a second
source over the same folder), ROAPI serving them from memory over Flight SQL, DuckDB
reading the files in-process, and the same bytes over a loopback socket. Flight is
timed with pyarrow.flight (GetFlightInfo + DoGet into a Table) for every server; the
aggregate over psycopg for Amar and in-process for DuckDB. Rounds interleave the paths;
medians. Prints JSON.

Usage:
  python accelerated.py --amar-flight F --amar-pg P --roapi-flight R --parquet DIR --rounds N
"""

import argparse
import json
import statistics
import time

import duckdb
import psycopg

from transfer import flight_table, ipc_bytes, loopback_run

SELECT = "SELECT * FROM {t}"
AGGREGATE = (
    "SELECT province_code, count(*) AS n, sum(amount) AS total FROM {t} "
    "GROUP BY province_code ORDER BY province_code"
)


def flight(port, sql, auth):
    credentials = ("bench", "bench") if auth else None
    return flight_table(f"grpc://127.0.0.1:{port}", sql, credentials)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--amar-flight", type=int, required=True)
    p.add_argument("--amar-pg", type=int, required=True)
    p.add_argument("--roapi-flight", type=int, required=True)
    p.add_argument("--parquet", required=True)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    amar = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_pg} dbname=amar user=bench password=bench", autocommit=True
    )
    duck = duckdb.connect()
    duck.execute("SET threads = 2")
    files = f"read_parquet('{a.parquet}/*.parquet')"

    # Warm every path (the accelerated copy is read at its first query), and check
    # that they agree.
    accelerated, _ = flight(a.amar_flight, SELECT.format(t="pension.payments"), True)
    from_files, _ = flight(a.amar_flight, SELECT.format(t="pension_files.payments"), True)
    roapi, _ = flight(a.roapi_flight, SELECT.format(t="payments"), False)
    if not (accelerated.num_rows == from_files.num_rows == roapi.num_rows):
        raise SystemExit(f"rows differ: {accelerated.num_rows} {from_files.num_rows} {roapi.num_rows}")
    nbytes = ipc_bytes(accelerated)
    roapi_bytes = ipc_bytes(roapi)
    ours = amar.execute(AGGREGATE.format(t="pension.payments")).fetchall()
    theirs = duck.execute(AGGREGATE.format(t=files)).fetchall()
    if [tuple(map(str, r)) for r in ours] != [tuple(map(str, r)) for r in theirs]:
        raise SystemExit(f"aggregates differ: {ours[:2]} {theirs[:2]}")
    sources = amar.execute(
        "SELECT accelerated FROM amar.sources WHERE name = 'pension'"
    ).fetchone()[0]

    paths = {
        "flight/accelerated": lambda: flight(a.amar_flight, SELECT.format(t="pension.payments"), True)[1],
        "flight/files": lambda: flight(a.amar_flight, SELECT.format(t="pension_files.payments"), True)[1],
        "flight/roapi": lambda: flight(a.roapi_flight, SELECT.format(t="payments"), False)[1],
        "flight/loopback": lambda: loopback_run(nbytes)[1],
    }

    def timed_query(conn_execute, sql):
        start = time.perf_counter()
        conn_execute(sql).fetchall()
        return time.perf_counter() - start

    aggregates = {
        "aggregate/accelerated": lambda: timed_query(amar.execute, AGGREGATE.format(t="pension.payments")),
        "aggregate/files": lambda: timed_query(amar.execute, AGGREGATE.format(t="pension_files.payments")),
        "aggregate/duckdb": lambda: timed_query(duck.execute, AGGREGATE.format(t=files)),
    }
    times = {name: [] for name in [*paths, *aggregates]}
    for _ in range(a.rounds):
        for name, run in paths.items():
            times[name].append(run())
        for _ in range(5):
            for name, run in aggregates.items():
                times[name].append(run())
    print(
        json.dumps(
            {
                "rounds": a.rounds,
                "rows": accelerated.num_rows,
                "ipc_bytes": nbytes,
                "roapi_ipc_bytes": roapi_bytes,
                "accelerated": sources,
                "duckdb": duckdb.__version__,
                "median_s": {k: statistics.median(v) for k, v in times.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
