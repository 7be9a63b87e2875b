"""Pushdown: an aggregate over a table of N rows in PostgreSQL and the same in
MariaDB, asked through Amar (a `postgres` and a `mysql` source, federated) and sent
straight to each database, interleaved. The ratio amar / direct is what federation
costs. Prints JSON.

Usage:
  python pushdown.py setup --pg URL --schema S --rows N [--mysql-db DB]
  python pushdown.py measure --pg URL --schema S --amar-port P --rounds R [--mysql-db DB]
  python pushdown.py drop --pg URL --schema S [--mysql-db DB]
"""

import argparse
import json
import statistics
import time

import psycopg
import pymysql

import dataset


def mysql(a, db=None):
    return pymysql.connect(
        host=a.mysql_host, port=a.mysql_port, user="root", database=db, autocommit=True
    )

QUERY = (
    "SELECT province_code, sum(contribution) AS total, count(*) AS n FROM {t} "
    "WHERE period >= DATE '2024-01-01' GROUP BY province_code ORDER BY province_code"
)


def setup(a):
    """The benchmarks' dataset (dataset.py) in PostgreSQL, and in MariaDB if asked."""
    dataset.write_postgres(a)
    if getattr(a, "mysql_db", None):
        dataset.write_mariadb(a)


def drop(a):
    with psycopg.connect(a.pg, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")
    if getattr(a, "mysql_db", None):
        with mysql(a) as m, m.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {a.mysql_db}")


def timed(conn, sql):
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    return rows, time.perf_counter() - start


def measure(a):
    direct = psycopg.connect(a.pg, autocommit=True)
    amar = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench", autocommit=True
    )
    ours_sql = QUERY.format(t="dept.contributions")
    theirs_sql = QUERY.format(t=f"{a.schema}.contributions")
    ours, _ = timed(amar, ours_sql)
    theirs, _ = timed(direct, theirs_sql)
    if [tuple(map(str, r)) for r in ours] != [tuple(map(str, r)) for r in theirs]:
        raise SystemExit(f"answers differ: {ours[:3]} vs {theirs[:3]}")
    times = {"direct": [], "amar": []}
    for _ in range(a.rounds):
        times["direct"].append(timed(direct, theirs_sql)[1])
        times["amar"].append(timed(amar, ours_sql)[1])
    with amar.cursor() as cur:
        cur.execute("EXPLAIN " + ours_sql)
        plan = "\n".join(r[1] for r in cur.fetchall())
    report = {
        "rounds": a.rounds,
        "groups": len(ours),
        "direct_median_s": statistics.median(times["direct"]),
        "amar_median_s": statistics.median(times["amar"]),
        "runs_s": times,
        "pushed_down": "GROUP BY" in plan and "VirtualExecutionPlan" in plan,
    }
    if a.mysql_db:
        m = mysql(a, a.mysql_db)
        theirs_sql = QUERY.format(t="contributions")
        ours_sql = QUERY.format(t="mdept.contributions")

        def mtimed(sql):
            start = time.perf_counter()
            with m.cursor() as cur:
                cur.execute(sql)
                rows = cur.fetchall()
            return rows, time.perf_counter() - start

        ours, _ = timed(amar, ours_sql)
        theirs, _ = mtimed(theirs_sql)
        if [tuple(map(str, r)) for r in ours] != [tuple(map(str, r)) for r in theirs]:
            raise SystemExit(f"MariaDB answers differ: {ours[:3]} vs {theirs[:3]}")
        mt = {"direct": [], "amar": []}
        for _ in range(a.rounds):
            mt["direct"].append(mtimed(theirs_sql)[1])
            mt["amar"].append(timed(amar, ours_sql)[1])
        with amar.cursor() as cur:
            cur.execute("EXPLAIN " + ours_sql)
            plan = "\n".join(r[1] for r in cur.fetchall())
        report["mysql"] = {
            "direct_median_s": statistics.median(mt["direct"]),
            "amar_median_s": statistics.median(mt["amar"]),
            "runs_s": mt,
            "pushed_down": "GROUP BY" in plan and "VirtualExecutionPlan" in plan,
        }
    print(json.dumps(report))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["setup", "measure", "drop"])
    p.add_argument("--pg", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--rows", type=int, default=5_000_000)
    p.add_argument("--amar-port", type=int)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--mysql-db")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    a = p.parse_args()
    {"setup": setup, "measure": measure, "drop": drop}[a.action](a)


if __name__ == "__main__":
    main()
