"""Policy overhead: the same answer asked by `tehran` (whose row filter and mask the
server adds) and by `admin` with the same filter and mask written into the SQL.
The ratio tehran / admin is the cost of enforcement. Rounds are interleaved
(admin, tehran, admin, tehran …) and each side reports its median. Prints JSON.

Usage: python policy.py --pg-port P [--rounds 7] [--points 300]
"""

import argparse
import json
import statistics
import time

import psycopg

TEHRAN = 23

SCENARIOS = {
    # name: (tehran's SQL, admin's equivalent SQL, kind)
    "point query": (
        "SELECT id, wage, paid_amount FROM insurance.contributions WHERE id = %s",
        f"SELECT id, wage, paid_amount FROM insurance.contributions WHERE id = %s AND province_code = {TEHRAN}",
        "point",
    ),
    "full scan (aggregate)": (
        "SELECT count(*), sum(wage), sum(paid_amount) FROM insurance.contributions",
        f"SELECT count(*), sum(wage), sum(paid_amount) FROM insurance.contributions WHERE province_code = {TEHRAN}",
        "scan",
    ),
    "full scan (masked rows)": (
        "SELECT id, national_id, last_name FROM insurance.insured_persons",
        "SELECT id, encode(sha256(CAST(national_id AS TEXT)), 'hex') AS national_id, last_name "
        f"FROM insurance.insured_persons WHERE province_code = {TEHRAN}",
        "scan",
    ),
}


def connect(port, user):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} dbname=amar user={user} password={user}",
        autocommit=True,
    )


def run(conn, sql, kind, ids):
    start = time.perf_counter()
    rows = 0
    with conn.cursor(binary=True) as cur:
        if kind == "point":
            for i in ids:
                cur.execute(sql, (i,))
                rows += len(cur.fetchall())
        else:
            cur.execute(sql)
            rows = len(cur.fetchall())
    return rows, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--pg-port", type=int, required=True)
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--points", type=int, default=300)
    a = p.parse_args()
    admin = connect(a.pg_port, "admin")
    tehran = connect(a.pg_port, "tehran")
    with admin.cursor() as cur:
        cur.execute(
            f"SELECT id FROM insurance.contributions WHERE province_code = {TEHRAN} ORDER BY id LIMIT %s",
            (a.points,),
        )
        ids = [r[0] for r in cur.fetchall()]
    results = {}
    for name, (mine, theirs, kind) in SCENARIOS.items():
        # Warm up both, and check they agree before timing anything.
        n_t, _ = run(tehran, mine, kind, ids)
        n_a, _ = run(admin, theirs, kind, ids)
        if n_t != n_a:
            raise SystemExit(f"{name}: tehran got {n_t} rows, admin {n_a}")
        times = {"admin": [], "tehran": []}
        for _ in range(a.rounds):
            times["admin"].append(run(admin, theirs, kind, ids)[1])
            times["tehran"].append(run(tehran, mine, kind, ids)[1])
        results[name] = {
            "rows": n_t,
            "statements": len(ids) if kind == "point" else 1,
            "admin_median_s": statistics.median(times["admin"]),
            "tehran_median_s": statistics.median(times["tehran"]),
            "runs_s": times,
        }
    print(json.dumps({"rounds": a.rounds, "results": results}))


if __name__ == "__main__":
    main()
