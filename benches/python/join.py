"""Cross-source join: contributions in PostgreSQL joined with insured persons in a
Parquet file. Through Amar (a `postgres` and a `files` source in one statement) against
what a DuckDB user does: load the PostgreSQL side as Arrow (ADBC, with the same filter
and columns Amar pushes down) and join it with the Parquet file in DuckDB. Both paths
run the whole way each round, interleaved. Prints JSON.

Usage:
  python join.py setup --pg URL --schema S --rows N --dir D
  python join.py measure --pg URL --schema S --dir D --amar-port P --rounds R
  python join.py drop --pg URL --schema S
"""

import argparse
import json
import statistics
import time

import adbc_driver_postgresql.dbapi as pg_adbc
import duckdb
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

FILTER = "period >= DATE '2024-01-01'"
AMAR = (
    "SELECT p.gender, c.province_code, count(*) AS n, sum(c.contribution) AS total "
    "FROM dept.contributions c JOIN people.persons p ON p.id = c.insured_id "
    f"WHERE c.{FILTER} GROUP BY p.gender, c.province_code ORDER BY 1, 2"
)
DUCK = (
    "SELECT p.gender, c.province_code, count(*) AS n, sum(c.contribution) AS total "
    "FROM c JOIN read_parquet('{parquet}') p ON p.id = c.insured_id "
    "GROUP BY p.gender, c.province_code ORDER BY 1, 2"
)


def persons(a):
    return max(1000, a.rows // 10)


def setup(a):
    with psycopg.connect(a.pg, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")
        c.execute(f"CREATE SCHEMA {a.schema}")
        c.execute(
            f"CREATE TABLE {a.schema}.contributions (id bigint PRIMARY KEY, insured_id bigint NOT NULL, "
            "province_code smallint NOT NULL, period date NOT NULL, contribution bigint NOT NULL)"
        )
        c.execute(
            f"INSERT INTO {a.schema}.contributions SELECT g, (g::bigint * 7919) %% %s + 1, (g %% 31) + 1, "
            "date '2023-01-01' + ((g / 1000) %% 730)::int, 2300000 + (g %% 50000) * 23 "
            "FROM generate_series(1, %s) g",
            (persons(a), a.rows),
        )
        c.execute(f"ANALYZE {a.schema}.contributions")
    n = persons(a)
    ids = pa.array(range(1, n + 1), pa.int64())
    table = pa.table(
        {
            "id": ids,
            "gender": pa.array(["زن" if i % 3 == 0 else "مرد" for i in range(1, n + 1)]),
            "province_code": pa.array([i % 31 + 1 for i in range(1, n + 1)], pa.int16()),
        }
    )
    pq.write_table(table, f"{a.dir}/persons.parquet")


def drop(a):
    with psycopg.connect(a.pg, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")


def through_amar(conn):
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(AMAR)
        rows = cur.fetchall()
    return rows, time.perf_counter() - start


def through_duckdb(a):
    start = time.perf_counter()
    with pg_adbc.connect(a.pg) as pgc, pgc.cursor() as cur:
        cur.execute(
            f"SELECT insured_id, province_code, contribution FROM {a.schema}.contributions WHERE {FILTER}"
        )
        c = cur.fetch_arrow_table()
    con = duckdb.connect()
    con.register("c", c)
    rows = con.execute(DUCK.format(parquet=f"{a.dir}/persons.parquet")).fetchall()
    con.close()
    return rows, time.perf_counter() - start


def measure(a):
    amar = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench", autocommit=True
    )
    ours, _ = through_amar(amar)
    theirs, _ = through_duckdb(a)
    norm = lambda rows: [(g, int(p), int(n), int(t)) for g, p, n, t in rows]
    if norm(ours) != norm(theirs):
        raise SystemExit(f"answers differ: {ours[:3]} vs {theirs[:3]}")
    times = {"duckdb": [], "amar": []}
    for _ in range(a.rounds):
        times["duckdb"].append(through_duckdb(a)[1])
        times["amar"].append(through_amar(amar)[1])
    print(
        json.dumps(
            {
                "rounds": a.rounds,
                "groups": len(ours),
                "persons": persons(a),
                "duckdb_median_s": statistics.median(times["duckdb"]),
                "amar_median_s": statistics.median(times["amar"]),
                "runs_s": times,
                "duckdb_version": duckdb.__version__,
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["setup", "measure", "drop"])
    p.add_argument("--pg", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--rows", type=int, default=2_000_000)
    p.add_argument("--dir")
    p.add_argument("--amar-port", type=int)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    {"setup": setup, "measure": measure, "drop": drop}[a.action](a)


if __name__ == "__main__":
    main()
