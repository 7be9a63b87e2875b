"""Streams one query's whole result over Flight SQL without keeping it (batch by batch),
for the server's memory while it serves a large result. Prints JSON: rows, seconds.

Usage: python stream.py --flight-port F --user U --password P --sql "..."
"""

import argparse
import json
import time

import adbc_driver_flightsql.dbapi as flight_sql


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--flight-port", type=int, required=True)
    p.add_argument("--user", default="bench")
    p.add_argument("--password", default="bench")
    p.add_argument("--sql", required=True)
    a = p.parse_args()
    uri = f"grpc://127.0.0.1:{a.flight_port}"
    rows = 0
    with flight_sql.connect(uri, db_kwargs={"username": a.user, "password": a.password}, autocommit=True) as conn:
        with conn.cursor() as cur:
            start = time.perf_counter()
            cur.execute(a.sql)
            reader = cur.fetch_record_batch()
            for batch in reader:
                rows += batch.num_rows
            took = time.perf_counter() - start
    print(json.dumps({"rows": rows, "seconds": took}))


if __name__ == "__main__":
    main()
