"""Point and small queries: latency of many short statements, through Amar (a `postgres`
source: each lookup goes to PostgreSQL as one SQL statement) and straight to
PostgreSQL, with 1 and with 32 concurrent clients. Blocks of queries alternate
between the two paths (A B A B …); every query's time is kept, and the report gives
p50 and p99 over all of them. Prints JSON.

Usage:
  python latency.py setup --pg URL --schema S --rows N
  python latency.py measure --pg URL --schema S --amar-port P --rounds R --queries Q
  python latency.py drop --pg URL --schema S
  python latency.py flight --schema S --amar-port P --flight-port F --rounds R --queries Q --rows N

`flight`: the point query as a prepared statement with a bound parameter, over Flight
SQL (ADBC: bind is a DoPut, execution a GetFlightInfo and a DoGet) and over pgwire
(psycopg: Bind, Execute, Sync), both to Amar, one client, blocks alternating.

Clients are threads, each with its own connection (psycopg releases the GIL while it
waits on the socket); the same harness drives both paths, so its cost is in both.
"""

import argparse
import json
import random
import shutil
import socket
import statistics
import subprocess
import threading
import time
import urllib.parse

import psycopg

POINT = "SELECT id, province_code, period, wage, contribution FROM {t} WHERE id = %s"
SMALL = (
    "SELECT period, sum(contribution) FROM {t} WHERE id BETWEEN %s AND %s + 200 "
    "GROUP BY period ORDER BY period"
)


# The same table as the pushdown scenario's (PostgreSQL only).
from pushdown import drop, setup  # noqa: E402


def block(dsns, sql, keys, clients):
    """Runs one query per key over `clients` connections at once; returns latencies."""
    per = [keys[i::clients] for i in range(clients)]
    out = [[] for _ in range(clients)]
    conns = dsns

    def work(i):
        with conns[i].cursor() as cur:
            for k in per[i]:
                start = time.perf_counter()
                cur.execute(sql, k)
                cur.fetchall()
                out[i].append(time.perf_counter() - start)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [x for xs in out for x in xs]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def byte_proxy(pg):
    """socat between the client and PostgreSQL, copying bytes and nothing else: what
    any server in the middle costs before it does any work (one more loopback hop
    each way, one more process woken). `None` (and the path left out) without socat."""
    if shutil.which("socat") is None:
        return None, None
    url = urllib.parse.urlsplit(pg)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            "socat",
            f"TCP-LISTEN:{port},bind=127.0.0.1,reuseaddr,fork,nodelay",
            f"TCP:{url.hostname or '127.0.0.1'}:{url.port or 5432},nodelay",
        ]
    )
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            time.sleep(0.05)
    proxied = url._replace(netloc=f"{url.username or ''}@127.0.0.1:{port}" if url.username else f"127.0.0.1:{port}")
    return proc, urllib.parse.urlunsplit(proxied)


def measure(a):
    amar_dsn = f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench"
    rng = random.Random(7)
    report = {"rounds": a.rounds, "queries": a.queries, "cases": []}
    proxy, proxy_dsn = byte_proxy(a.pg)
    try:
        measure_all(a, amar_dsn, rng, report, proxy_dsn)
    finally:
        if proxy is not None:
            proxy.terminate()
            proxy.wait()
    print(json.dumps(report))


def measure_all(a, amar_dsn, rng, report, proxy_dsn):
    for name, template, arity in (("point", POINT, 1), ("small", SMALL, 2)):
        for clients in (1, 32):
            direct = [psycopg.connect(a.pg, autocommit=True) for _ in range(clients)]
            proxied = (
                [psycopg.connect(proxy_dsn, autocommit=True) for _ in range(clients)]
                if proxy_dsn
                else []
            )
            amar = [psycopg.connect(amar_dsn, autocommit=True) for _ in range(clients)]
            theirs = template.format(t=f"{a.schema}.contributions")
            ours = template.format(t="dept.contributions")
            # The same answers, and every path warmed up (prepared, pools filled).
            key = (12345,) * arity
            for c in direct + proxied + amar:
                c.execute(ours if c in amar else theirs, key).fetchall()
            if [tuple(map(str, r)) for r in direct[0].execute(theirs, key).fetchall()] != [
                tuple(map(str, r)) for r in amar[0].execute(ours, key).fetchall()
            ]:
                raise SystemExit(f"{name}: answers differ")
            per_round = max(clients, a.queries // a.rounds)
            lat = {"direct": [], "proxy": [], "amar": []}
            for _ in range(a.rounds):
                keys = [(rng.randint(1, a.rows - 300),) * arity for _ in range(per_round)]
                lat["direct"] += block(direct, theirs, keys, clients)
                if proxied:
                    lat["proxy"] += block(proxied, theirs, keys, clients)
                lat["amar"] += block(amar, ours, keys, clients)
            for c in direct + proxied + amar:
                c.close()
            proxy = {}
            if lat["proxy"]:
                proxy = {
                    "proxy_p50_ms": 1000 * pct(lat["proxy"], 50),
                    "proxy_p99_ms": 1000 * pct(lat["proxy"], 99),
                }
            report["cases"].append(
                {
                    **proxy,
                    "query": name,
                    "clients": clients,
                    "n": len(lat["amar"]),
                    "direct_p50_ms": 1000 * pct(lat["direct"], 50),
                    "direct_p99_ms": 1000 * pct(lat["direct"], 99),
                    "amar_p50_ms": 1000 * pct(lat["amar"], 50),
                    "amar_p99_ms": 1000 * pct(lat["amar"], 99),
                    "direct_mean_ms": 1000 * statistics.mean(lat["direct"]),
                    "amar_mean_ms": 1000 * statistics.mean(lat["amar"]),
                }
            )


def flight(a):
    import adbc_driver_flightsql.dbapi as flight_sql

    rng = random.Random(11)
    pg = psycopg.connect(
        f"host=127.0.0.1 port={a.amar_port} dbname=amar user=bench password=bench",
        autocommit=True,
    )
    fl = flight_sql.connect(
        f"grpc://127.0.0.1:{a.flight_port}",
        db_kwargs={"username": "bench", "password": "bench"},
        autocommit=True,
    )
    ours = POINT.format(t="dept.contributions")
    theirs = ours.replace("%s", "?")
    pgc, flc = pg.cursor(), fl.cursor()
    # Prepared on both (psycopg prepares from the fifth execution unless told).
    pgc.execute(ours, (12345,), prepare=True)
    want = [tuple(map(str, r)) for r in pgc.fetchall()]
    flc.execute(theirs, (12345,))
    got = [tuple(map(str, r)) for r in flc.fetchall()]
    if want != got:
        raise SystemExit(f"flight: answers differ: {want} {got}")
    lat = {"pgwire": [], "flight": []}
    per_round = max(1, a.queries // a.rounds)
    for _ in range(a.rounds):
        keys = [rng.randint(1, a.rows - 300) for _ in range(per_round)]
        for k in keys:
            start = time.perf_counter()
            pgc.execute(ours, (k,), prepare=True)
            pgc.fetchall()
            lat["pgwire"].append(time.perf_counter() - start)
        for k in keys:
            start = time.perf_counter()
            flc.execute(theirs, (k,))
            flc.fetchall()
            lat["flight"].append(time.perf_counter() - start)
    flc.close()
    fl.close()
    pg.close()
    print(
        json.dumps(
            {
                "n": len(lat["flight"]),
                "rounds": a.rounds,
                "pgwire_p50_ms": 1000 * pct(lat["pgwire"], 50),
                "pgwire_p99_ms": 1000 * pct(lat["pgwire"], 99),
                "flight_p50_ms": 1000 * pct(lat["flight"], 50),
                "flight_p99_ms": 1000 * pct(lat["flight"], 99),
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("action", choices=["setup", "measure", "drop", "flight"])
    p.add_argument("--pg", required=True)
    p.add_argument("--schema", required=True)
    p.add_argument("--rows", type=int, default=1_000_000)
    p.add_argument("--amar-port", type=int)
    p.add_argument("--flight-port", type=int)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=10_000)
    a = p.parse_args()
    {"setup": setup, "measure": measure, "drop": drop, "flight": flight}[a.action](a)


if __name__ == "__main__":
    main()
