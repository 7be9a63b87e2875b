"""The portal: a page against the SQL behind it, a cached page against an uncached one,
and 20 browsers at once. Prints JSON.

The SQL behind a page is exactly what the page ran: each anonymous request has an
engine session of its own, so the statements of that session in amar.query_log are the
page's queries; they are replayed over psycopg as the same user (public), with the
page's parameters bound where the page bound them.

Each round runs, in turn, a block of uncached page views (each URL made unique by a
query parameter the page ignores, so the cache cannot answer), a block of the page's
SQL, and a block of cached views of one URL; medians over all rounds.

Usage:
  python portal.py measure --port P --portal PORT --rounds R --queries N
  python portal.py browsers --portal PORT --clients 20 --seconds S
"""

import argparse
import http.client
import json
import os
import statistics
import threading
import time

import psycopg

# The pages measured, and the value each of their parameters is bound to.
PAGES = {
    "home": ("/", {}),
    "indicator": (
        "/indicators/claims_per_thousand",
        {
            "amar.indicators": "claims_per_thousand",
            "amar.classifications": "province",
            "amar.indicator_status": "claims_per_thousand",
        },
    ),
    "scorecard": ("/units", {}),
}


def connect(port, user):
    return psycopg.connect(
        f"host=127.0.0.1 port={port} dbname=amar user={user} password={user}",
        autocommit=True,
    )


class Browser:
    """One keep-alive connection, as a browser keeps one."""

    def __init__(self, port):
        self.port = port
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path):
        start = time.perf_counter()
        self.conn.request("GET", path)
        r = self.conn.getresponse()
        body = r.read()
        took = time.perf_counter() - start
        if r.status != 200:
            raise SystemExit(f"GET {path}: {r.status} {body[:200]!r}")
        return took, len(body)


def page_sql(admin, url):
    """The statements the page's session ran, in order, for GET url."""
    rows = admin.execute(
        "SELECT session_id, statement FROM amar.query_log WHERE protocol = 'portal' ORDER BY at"
    ).fetchall()
    session = next(s for s, text in rows if text == f"GET {url}")
    return [text for s, text in rows if s == session and not text.startswith("GET ")]


def replay(conn, statements, params):
    for text in statements:
        if "$1" in text:
            table = next(t for t in params if t in text)
            conn.execute(text.replace("$1", "%s"), (params[table],)).fetchall()
        else:
            conn.execute(text).fetchall()


def measure(args):
    admin = connect(args.port, "admin")
    public = connect(args.port, "public")
    browser = Browser(args.portal)
    n = 0
    report = {}
    for name, (path, params) in PAGES.items():
        sep = "&" if "?" in path else "?"
        n += 1
        first = f"{path}{sep}bench={n}"
        browser.get(first)
        time.sleep(0.3)
        statements = page_sql(admin, first)
        replay(public, statements, params)  # warm
        browser.get(path)  # cached from now on
        times = {"page_uncached": [], "sql": [], "page_cached": []}
        size = 0
        for _ in range(args.rounds):
            for _ in range(args.queries):
                n += 1
                took, size = browser.get(f"{path}{sep}bench={n}")
                times["page_uncached"].append(took)
            for _ in range(args.queries):
                start = time.perf_counter()
                replay(public, statements, params)
                times["sql"].append(time.perf_counter() - start)
            for _ in range(args.queries):
                took, _ = browser.get(path)
                times["page_cached"].append(took)
        ms = {k: statistics.median(v) * 1000 for k, v in times.items()}
        report[name] = {"path": path, "statements": len(statements), "bytes": size, "median_ms": ms}
    print(
        json.dumps(
            {
                "rounds": args.rounds,
                "queries": args.queries,
                "pages": report,
                "status": status(args, admin, public, connect(args.port, "tehran")),
            }
        )
    )


def status(args, admin, public, tehran):
    """What every dashboard reads, `amar.indicator_status` and an indicator's view,
    as admin, the public and a provincial reader (a row filter): the first read after
    the data under it changed (a demo file touched: a new data version, so it is
    computed) and the reads after it (current: served from the kept result)."""
    reads = [
        ("amar.indicator_status", "SELECT * FROM amar.indicator_status"),
        ("indicators.active_insured", "SELECT * FROM indicators.active_insured"),
    ]
    demo = os.path.join(args.data_dir, "demo")
    touched = os.path.join(demo, "insurance.db")
    out = []
    for table, sql in reads:
        for name, conn in (("admin", admin), ("public", public), ("tehran", tehran)):
            computed, current = [], []
            for _ in range(args.rounds):
                os.utime(touched)
                start = time.perf_counter()
                rows = conn.execute(sql).fetchall()
                computed.append(time.perf_counter() - start)
                for _ in range(args.queries * 2):
                    start = time.perf_counter()
                    again = conn.execute(sql).fetchall()
                    current.append(time.perf_counter() - start)
                    if again != rows:
                        raise SystemExit(f"{table} changed without a data change")
            out.append(
                {
                    "table": table,
                    "reader": name,
                    "rows": len(rows),
                    "computed_ms": statistics.median(computed) * 1000,
                    "current_p50_ms": statistics.median(current) * 1000,
                }
            )
    return out


def browsers(args):
    """`clients` browsers, each going through the site's pages for `seconds`."""
    paths = [
        "/",
        "/assets/portal.css",
        "/indicators/claims_per_thousand",
        "/indicators/active_insured",
        "/indicators/contribution_collection_rate?lang=en",
        "/units",
        "/units/23",
        "/glossary",
        "/indicators/active_insured/data.csv",
    ]
    warm = Browser(args.portal)
    for p in paths:
        warm.get(p)
    latencies = []
    lock = threading.Lock()
    stop = time.perf_counter() + args.seconds

    slowest = [(0.0, "", 0.0)]

    def run(i):
        b = Browser(args.portal)
        mine = []
        k = i
        while time.perf_counter() < stop:
            path = paths[k % len(paths)]
            at = time.perf_counter() - (stop - args.seconds)
            took, _ = b.get(path)
            mine.append(took)
            if took > slowest[0][0]:
                slowest[0] = (took, path, at)
            k += 1
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(args.clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    latencies.sort()

    def pct(p):
        return latencies[min(len(latencies) - 1, int(p * len(latencies)))] * 1000

    print(
        json.dumps(
            {
                "clients": args.clients,
                "seconds": args.seconds,
                "requests": len(latencies),
                "per_second": len(latencies) / args.seconds,
                "p50_ms": pct(0.50),
                "p95_ms": pct(0.95),
                "p99_ms": pct(0.99),
                "max_ms": latencies[-1] * 1000,
                "slowest": {"path": slowest[0][1], "ms": slowest[0][0] * 1000, "at_s": slowest[0][2]},
            }
        )
    )


def main():
    p = argparse.ArgumentParser()
    p.add_argument("command", choices=["measure", "browsers"])
    p.add_argument("--port", type=int)
    p.add_argument("--portal", type=int)
    p.add_argument("--data-dir")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--queries", type=int, default=10)
    p.add_argument("--clients", type=int, default=20)
    p.add_argument("--seconds", type=float, default=20)
    args = p.parse_args()
    {"measure": measure, "browsers": browsers}[args.command](args)


if __name__ == "__main__":
    main()
