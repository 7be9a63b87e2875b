"""The benchmarks' dataset: N contribution rows of the social-security dataset,
deterministic (every value is a function of the row's id), written the same to
PostgreSQL, MariaDB, Parquet and SQLite, so that every scenario, and every sink, holds
the same rows. Each sink is written by the fastest path it has: PostgreSQL from
generate_series and MariaDB from its sequence engine (the server computes the rows),
SQLite from a recursive CTE inside one transaction, Parquet from numpy in 1M-row
row groups.

contributions(id bigint PRIMARY KEY, insured_id bigint, province_code smallint,
              period date, wage numeric(14,0), contribution numeric(14,0))
  insured_id    = (id * 7919) % persons + 1       persons = max(1000, N / 10)
  province_code = id % 31 + 1
  period        = 2023-01-01 + (id / 1000) % 730 days
  wage          = 10,000,000 + (id % 50,000) * 100
  contribution  = wage * 23 / 100 = 2,300,000 + (id % 50,000) * 23

Usage:
  python dataset.py write --rows N --sinks postgres,mariadb,parquet,sqlite
                          [--pg URL --schema S] [--mysql-db DB] [--dir D]
  python dataset.py expect --rows N
  python dataset.py check --rows N --amar-port P [--sources pg,maria,pq,lite]
  python dataset.py drop [--pg URL --schema S] [--mysql-db DB] [--dir D]
`write` prints, as JSON, each sink's seconds and size; `expect` the checksums every
sink must give (count, sums, last period); `check` asks each through Amar and fails
unless all give them.
"""

import argparse
import datetime
import json
import os
import sqlite3
import time

CHUNK = 1_000_000
EPOCH = datetime.date(2023, 1, 1)


def persons(rows):
    return max(1000, rows // 10)


def expect(rows):
    """The checksums the formulas give (exact integers, numpy in chunks)."""
    import numpy as np

    n, p = rows, persons(rows)
    sums = {"contribution": 0, "wage": 0, "province": 0, "insured": 0}
    last_day = 0
    for lo in range(1, n + 1, CHUNK):
        g = np.arange(lo, min(n, lo + CHUNK - 1) + 1, dtype=np.int64)
        k = g % 50_000
        sums["contribution"] += int((2_300_000 + k * 23).sum())
        sums["wage"] += int((10_000_000 + k * 100).sum())
        sums["province"] += int((g % 31 + 1).sum())
        sums["insured"] += int(((g * 7919) % p + 1).sum())
        last_day = max(last_day, int(((g // 1000) % 730).max()))
    return {
        "rows": n,
        "sum_contribution": sums["contribution"],
        "sum_wage": sums["wage"],
        "sum_province": sums["province"],
        "sum_insured": sums["insured"],
        "max_period": (EPOCH + datetime.timedelta(days=last_day)).isoformat(),
    }


PG_DDL = (
    "CREATE TABLE {t} (id bigint PRIMARY KEY, insured_id bigint NOT NULL, province_code smallint NOT NULL, "
    "period date NOT NULL, wage numeric(14,0) NOT NULL, contribution numeric(14,0) NOT NULL)"
)


def write_postgres(a):
    import psycopg

    t = f"{a.schema}.contributions"
    with psycopg.connect(a.pg, autocommit=True) as c:
        c.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")
        c.execute(f"CREATE SCHEMA {a.schema}")
        c.execute(PG_DDL.format(t=t).replace(" PRIMARY KEY", ""))
        c.execute(
            f"INSERT INTO {t} SELECT g, (g * 7919) %% %s + 1, (g %% 31) + 1, "
            "date '2023-01-01' + ((g / 1000) %% 730)::int, 10000000 + (g %% 50000) * 100, "
            "2300000 + (g %% 50000) * 23 FROM generate_series(1::bigint, %s) g",
            (persons(a.rows), a.rows),
        )
        # The key after the load: one sorted build, not N index insertions.
        c.execute(f"ALTER TABLE {t} ADD PRIMARY KEY (id)")
        c.execute(f"ANALYZE {t}")
        size = c.execute("SELECT pg_total_relation_size(%s)", (t,)).fetchone()[0]
    return size


def mysql(a, db=None):
    import pymysql

    return pymysql.connect(
        host=a.mysql_host, port=a.mysql_port, user="root", database=db, autocommit=True
    )


def write_mariadb(a):
    db = a.mysql_db
    with mysql(a) as m, m.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {db}")
        cur.execute(f"CREATE DATABASE {db}")
        cur.execute(f"USE {db}")  # seq_1_to_N lives in the current database
        cur.execute(
            f"CREATE TABLE {db}.contributions (id BIGINT PRIMARY KEY, insured_id BIGINT NOT NULL, "
            "province_code SMALLINT NOT NULL, period DATE NOT NULL, wage DECIMAL(14,0) NOT NULL, "
            "contribution DECIMAL(14,0) NOT NULL)"
        )
        p = persons(a.rows)
        # The sequence engine: seq_1_to_N is a table of 1..N. In key order, a
        # million rows a statement (one transaction each, bounded undo).
        for lo in range(1, a.rows + 1, CHUNK):
            hi = min(a.rows, lo + CHUNK - 1)
            cur.execute(
                f"INSERT INTO {db}.contributions SELECT seq, (seq * 7919) % {p} + 1, (seq % 31) + 1, "
                "DATE '2023-01-01' + INTERVAL ((seq DIV 1000) % 730) DAY, 10000000 + (seq % 50000) * 100, "
                f"2300000 + (seq % 50000) * 23 FROM seq_{lo}_to_{hi}"
            )
        cur.execute(f"ANALYZE TABLE {db}.contributions")
        cur.execute(
            "SELECT data_length + index_length FROM information_schema.tables "
            "WHERE table_schema = %s AND table_name = 'contributions'",
            (db,),
        )
        return int(cur.fetchone()[0])


def write_sqlite(a):
    path = os.path.join(a.dir, "contributions.db")
    for suffix in ("", "-journal", "-wal"):
        if os.path.exists(path + suffix):
            os.remove(path + suffix)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode = OFF")
    con.execute("PRAGMA synchronous = OFF")
    con.execute(
        "CREATE TABLE contributions (id INTEGER PRIMARY KEY, insured_id BIGINT NOT NULL, "
        "province_code SMALLINT NOT NULL, period DATE NOT NULL, wage NUMERIC(14,0) NOT NULL, "
        "contribution NUMERIC(14,0) NOT NULL)"
    )
    p = persons(a.rows)
    with con:
        for lo in range(1, a.rows + 1, CHUNK):
            hi = min(a.rows, lo + CHUNK - 1)
            con.execute(
                "WITH RECURSIVE g(x) AS (SELECT ? UNION ALL SELECT x + 1 FROM g WHERE x < ?) "
                "INSERT INTO contributions SELECT x, (x * 7919) % ? + 1, x % 31 + 1, "
                "date('2023-01-01', '+' || ((x / 1000) % 730) || ' days'), "
                "10000000 + (x % 50000) * 100, 2300000 + (x % 50000) * 23 FROM g",
                (lo, hi, p),
            )
    con.close()
    return os.path.getsize(path)


def write_parquet(a):
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = os.path.join(a.dir, "parquet", "contributions", "part-0.parquet")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    money = pa.decimal128(14, 0)
    schema = pa.schema(
        [
            pa.field("id", pa.int64(), nullable=False),
            pa.field("insured_id", pa.int64(), nullable=False),
            pa.field("province_code", pa.int16(), nullable=False),
            pa.field("period", pa.date32(), nullable=False),
            pa.field("wage", money, nullable=False),
            pa.field("contribution", money, nullable=False),
        ]
    )
    p = persons(a.rows)
    epoch_days = (EPOCH - datetime.date(1970, 1, 1)).days
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for lo in range(1, a.rows + 1, CHUNK):
            hi = min(a.rows, lo + CHUNK - 1)
            g = np.arange(lo, hi + 1, dtype=np.int64)
            k = g % 50_000
            columns = [
                pa.array(g),
                pa.array((g * 7919) % p + 1),
                pa.array((g % 31 + 1).astype(np.int16)),
                pa.array((epoch_days + (g // 1000) % 730).astype(np.int32)).cast(pa.date32()),
                pa.array(10_000_000 + k * 100).cast(pa.decimal128(19, 0)).cast(money),
                pa.array(2_300_000 + k * 23).cast(pa.decimal128(19, 0)).cast(money),
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    return os.path.getsize(path)


WRITERS = {
    "postgres": write_postgres,
    "mariadb": write_mariadb,
    "sqlite": write_sqlite,
    "parquet": write_parquet,
}


def write(a):
    out = {}
    for sink in a.sinks.split(","):
        start = time.perf_counter()
        size = WRITERS[sink](a)
        seconds = time.perf_counter() - start
        out[sink] = {"seconds": seconds, "bytes": size, "rows_per_s": a.rows / seconds}
    print(json.dumps({"rows": a.rows, "sinks": out}))


CHECKSUM = (
    "SELECT count(*), sum(contribution), sum(wage), sum(province_code), sum(insured_id), "
    "max(period) FROM {t}"
)


def check(a):
    """Each source's checksums through Amar (psycopg → pgwire), timed, against the
    formulas: every sink must hold exactly the dataset."""
    import psycopg

    want = expect(a.rows)
    out = {}
    dsn = f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench"
    with psycopg.connect(dsn, autocommit=True) as c:
        for source in a.sources.split(","):
            start = time.perf_counter()
            row = c.execute(CHECKSUM.format(t=f"{source}.contributions")).fetchone()
            seconds = time.perf_counter() - start
            got = {
                "rows": int(row[0]),
                "sum_contribution": int(row[1]),
                "sum_wage": int(row[2]),
                "sum_province": int(row[3]),
                "sum_insured": int(row[4]),
                "max_period": row[5].isoformat(),
            }
            if got != want:
                raise SystemExit(f"{source} differs from the dataset: {got} != {want}")
            out[source] = {"seconds": seconds}
    print(json.dumps({"rows": a.rows, "checksums": want, "sources": out}))


def drop(a):
    if a.pg and a.schema:
        import psycopg

        with psycopg.connect(a.pg, autocommit=True) as c:
            c.execute(f"DROP SCHEMA IF EXISTS {a.schema} CASCADE")
    if a.mysql_db:
        with mysql(a) as m, m.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS {a.mysql_db}")
    if a.dir:
        import shutil

        for name in ("contributions.db", "parquet"):
            path = os.path.join(a.dir, name)
            if os.path.isdir(path):
                shutil.rmtree(path)
            elif os.path.exists(path):
                os.remove(path)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["write", "expect", "check", "drop"])
    p.add_argument("--amar-port", type=int)
    p.add_argument("--sources", default="pg,maria,pq,lite")
    p.add_argument("--rows", type=int)
    p.add_argument("--sinks", default="postgres,mariadb,parquet,sqlite")
    p.add_argument("--pg")
    p.add_argument("--schema")
    p.add_argument("--mysql-db")
    p.add_argument("--mysql-host", default="127.0.0.1")
    p.add_argument("--mysql-port", type=int, default=3306)
    p.add_argument("--dir")
    a = p.parse_args()
    if a.command == "write":
        write(a)
    elif a.command == "check":
        check(a)
    elif a.command == "expect":
        print(json.dumps(expect(a.rows)))
    else:
        drop(a)


if __name__ == "__main__":
    main()
