"""Plugin overhead through the server: each query on the fixed-width plugin's table
and on the same rows as CSV through the built-in files connector, interleaved, with
psycopg. Prints JSON.

Usage:
  python plugin.py --amar-port P --rounds R
"""

import argparse
import json
import statistics
import time

import psycopg

QUERIES = {
    "aggregate": "SELECT province, count(*) AS n, sum(amount) AS total FROM {t} "
    "WHERE paid_on >= DATE '2024-05-01' GROUP BY province ORDER BY province",
    "every row": "SELECT * FROM {t}",
}


def timed(conn, sql):
    start = time.perf_counter()
    with conn.cursor() as cur:
        cur.execute(sql)
        rows = cur.fetchall()
    return rows, time.perf_counter() - start


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--amar-port", type=int, required=True)
    p.add_argument("--rounds", type=int, default=5)
    a = p.parse_args()
    conn = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench", autocommit=True
    )
    report = {}
    for name, query in QUERIES.items():
        csv_sql, fw_sql = query.format(t="csv.payments"), query.format(t="fw.payments")
        theirs, _ = timed(conn, csv_sql)
        ours, _ = timed(conn, fw_sql)
        if name == "aggregate":
            if [tuple(map(str, r)) for r in ours] != [tuple(map(str, r)) for r in theirs]:
                raise SystemExit(f"answers differ: {ours[:3]} vs {theirs[:3]}")
        elif len(ours) != len(theirs):
            raise SystemExit(f"{len(ours)} rows from the plugin, {len(theirs)} from CSV")
        times = {"csv": [], "plugin": []}
        for _ in range(a.rounds):
            times["csv"].append(timed(conn, csv_sql)[1])
            times["plugin"].append(timed(conn, fw_sql)[1])
        report[name] = {
            "rows": len(ours),
            "csv_median_s": statistics.median(times["csv"]),
            "plugin_median_s": statistics.median(times["plugin"]),
            "runs_s": times,
        }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
