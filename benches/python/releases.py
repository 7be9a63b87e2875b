"""Official releases: reading a released indicator (`official.<id>`) against reading
the same rows from a Parquet file through the same Amar (a table of the demo's `files`
source), and against computing the indicator live (`indicators.<id>`). Each path runs
a block of queries in turn (official, parquet, live, official, …); the report gives
each path's median latency. Prints JSON.

Usage:
  python releases.py release --port P --indicator ID
        (as admin: releases every period of the indicator; prints the release ids)
  python releases.py parquet --dir D --out FILE
        (joins a release folder's full Parquet files into one file)
  python releases.py measure --port P --parquet FILE --table T --indicator ID --rounds R --queries N
        (FILE is the Parquet file the server reads as table T)
"""

import argparse
import glob
import json
import statistics
import time

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq


def connect(port, user="admin"):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} dbname=amar user={user} password={user}",
        autocommit=True,
    )


def release(args):
    with connect(args.port) as conn:
        periods = [
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT period FROM indicators.{args.indicator} ORDER BY 1"
            ).fetchall()
        ]
        ids = []
        for period in periods:
            row = conn.execute(
                f"CALL amar.release(indicators => '{args.indicator}', period => '{period}')"
            ).fetchone()
            ids.append(row[0])
    print(json.dumps({"releases": ids}))


def parquet(args):
    tables = [pq.read_table(path) for path in sorted(glob.glob(args.dir))]
    pq.write_table(pa.concat_tables(tables), args.out)
    print(json.dumps({"rows": sum(t.num_rows for t in tables)}))


def block(conn, sql, n):
    times = []
    rows = 0
    for _ in range(n):
        start = time.perf_counter()
        rows = len(conn.execute(sql).fetchall())
        times.append(time.perf_counter() - start)
    return times, rows


def measure(args):
    # The same columns on both paths: the cells as released (official.<id> adds the
    # release's id, revision and time, measured apart as "official_all").
    columns = ", ".join(f'"{name}"' for name in pq.read_schema(args.parquet).names)
    paths = {
        "official": f"SELECT {columns} FROM official.{args.indicator}",
        "parquet": f"SELECT {columns} FROM {args.table}",
        "official_all": f"SELECT * FROM official.{args.indicator}",
        "live": f"SELECT * FROM indicators.{args.indicator}",
    }
    conns = {name: connect(args.port) for name in paths}
    times = {name: [] for name in paths}
    rows = {}
    for name, sql in paths.items():
        block(conns[name], sql, 3)  # warm
    for _ in range(args.rounds):
        for name, sql in paths.items():
            t, rows[name] = block(conns[name], sql, args.queries)
            times[name].extend(t)
    ms = {name: statistics.median(ts) * 1000 for name, ts in times.items()}
    print(
        json.dumps(
            {
                "queries": args.queries,
                "rounds": args.rounds,
                "rows": rows,
                "median_ms": ms,
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["release", "parquet", "measure"])
    p.add_argument("--port", type=int)
    p.add_argument("--parquet")
    p.add_argument("--table")
    p.add_argument("--indicator")
    p.add_argument("--dir")
    p.add_argument("--out")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=50)
    args = p.parse_args()
    {"release": release, "parquet": parquet, "measure": measure}[args.command](args)


if __name__ == "__main__":
    main()
