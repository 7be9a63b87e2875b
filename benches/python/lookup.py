"""Point lookups on Parquet: `SELECT … WHERE id = $1` on a table of N rows that Amar
copied from PostgreSQL into Parquet (a `postgres` source in snapshot mode: the copy is
sorted by the primary key, with the page index and a bloom filter on it), asked
through Amar over pgwire (psycopg, prepared), against the same lookup straight to
PostgreSQL (its primary-key index) and DuckDB reading the same Parquet file
in-process (prepared). Blocks of lookups alternate between the three; every lookup's
time is kept, and the report gives p50 and p99. Prints JSON.

Usage:
  python lookup.py setup --pg URL --schema S --rows N
  python lookup.py measure --pg URL --schema S --rows N --amar-port P --parquet FILE --rounds R
  python lookup.py drop --pg URL --schema S
"""

import argparse
import json
import random
import time

import duckdb
import psycopg

from latency import pct
from pushdown import drop, setup  # noqa: F401

COLUMNS = "id, insured_id, province_code, period, wage, contribution"


def measure(a):
    rng = random.Random(5)
    amar = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench",
        autocommit=True,
    )
    direct = psycopg.connect(a.pg, autocommit=True)
    duck = duckdb.connect()
    duck.execute("SET threads = 2")
    ours = f"SELECT {COLUMNS} FROM dept.contributions WHERE id = %s"
    theirs = f"SELECT {COLUMNS} FROM {a.schema}.contributions WHERE id = %s"
    in_duck = f"SELECT {COLUMNS} FROM read_parquet('{a.parquet}') WHERE id = $1"

    def norm(rows):
        return [tuple(str(v) for v in r) for r in rows]

    key = a.rows // 3
    want = norm(direct.execute(theirs, (key,)).fetchall())
    got = norm(amar.execute(ours, (key,), prepare=True).fetchall())
    duck_got = norm(duck.execute(in_duck, [key]).fetchall())
    if not (want == got and len(want) == 1 and len(duck_got) == 1):
        raise SystemExit(f"answers differ: {want} {got} {duck_got}")
    lat = {"direct": [], "amar": [], "duckdb": []}
    per_round = max(1, a.queries // a.rounds)
    for _ in range(a.rounds):
        keys = [rng.randint(1, a.rows) for _ in range(per_round)]
        for k in keys:
            start = time.perf_counter()
            direct.execute(theirs, (k,)).fetchall()
            lat["direct"].append(time.perf_counter() - start)
        for k in keys:
            start = time.perf_counter()
            amar.execute(ours, (k,), prepare=True).fetchall()
            lat["amar"].append(time.perf_counter() - start)
        for k in keys:
            start = time.perf_counter()
            duck.execute(in_duck, [k]).fetchall()
            lat["duckdb"].append(time.perf_counter() - start)
    plan = "\n".join(
        r[1] if len(r) > 1 else r[0]
        for r in amar.execute("EXPLAIN ANALYZE " + ours.replace("%s", str(key))).fetchall()
    )
    report = {
        "rounds": a.rounds,
        "n": len(lat["amar"]),
        "plan": plan,
        "duckdb_version": duckdb.__version__,
    }
    for path, xs in lat.items():
        report[f"{path}_p50_ms"] = 1000 * pct(xs, 50)
        report[f"{path}_p99_ms"] = 1000 * pct(xs, 99)
    print(json.dumps(report))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["setup", "measure", "drop"])
    p.add_argument("--pg", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--amar-port", type=int)
    p.add_argument("--parquet")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=2000)
    a = p.parse_args()
    {"setup": setup, "measure": measure, "drop": drop}[a.action](a)


if __name__ == "__main__":
    main()
