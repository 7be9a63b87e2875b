"""Operating the real `amar` binary (AMAR_BIN; scripts/test.sh sets it): SIGTERM drains
(running statements finish, new clients are refused, /ready turns 503, the process
exits 0 and starts again with nothing lost), Prometheus can scrape /metrics, and
`amar check-config` reports every problem of a broken config at once."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import urllib.request

import psycopg
import pytest


@pytest.fixture(scope="module")
def amar_bin():
    binary = os.environ.get("AMAR_BIN")
    if not binary:
        pytest.skip("AMAR_BIN is not set (scripts/test.sh sets it)")
    return binary


def start(binary, d, config):
    log = open(d / "amar.log", "w+")
    server = subprocess.Popen(
        [binary, "serve", "--config", str(config), "--data-dir", str(d / "data"),
         "--pg-listen", "127.0.0.1:0", "--flight-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        text = (d / "amar.log").read_text()
        pg = re.search(r"psql:.*@127\.0\.0\.1:(\d+)/amar", text)
        http = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", text)
        if pg and http:
            return server, int(pg.group(1)), http.group(1)
        assert server.poll() is None, text
        time.sleep(0.1)
    raise AssertionError((d / "amar.log").read_text())


def users_file(binary, d):
    users = d / "users.toml"
    subprocess.run(
        [binary, "user", "add", "stats", "--role", "admin", "--password-stdin", "--users-file", str(users)],
        input=b"pw\n",
        check=True,
        capture_output=True,
    )
    return users


def http_get(addr, path):
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_sigterm_drains_and_a_restart_loses_nothing(amar_bin, tmp_path):
    users = users_file(amar_bin, tmp_path)
    config = tmp_path / "amar.toml"
    config.write_text(f'[server]\nusers_file = "{users}"\n\n[limits]\nshutdown_grace = "30s"\n')
    server, port, http = start(amar_bin, tmp_path, config)
    dsn = f"host=127.0.0.1 port={port} dbname=amar user=stats password=pw"
    result = {}

    def long_read():
        # Autocommit: nothing to send after the statement, when the server is gone.
        with psycopg.connect(dsn, autocommit=True) as c, c.cursor() as cur:
            n = 0
            for i, _ in enumerate(cur.stream("SELECT * FROM generate_series(1, 300000) a")):
                if i == 0:
                    result["started"] = True
                    time.sleep(1.5)  # the client reads slowly: the statement keeps running
                n += 1
            result["rows"] = n

    reader = threading.Thread(target=long_read)
    reader.start()
    while "started" not in result:
        time.sleep(0.02)
    server.send_signal(signal.SIGTERM)
    time.sleep(0.3)
    status, body = http_get(http, "/ready")
    assert status == 503 and json.loads(body)["draining"] is True
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)
    reader.join(timeout=60)
    assert result.get("rows") == 300000, "the running statement finished whole"
    assert server.wait(timeout=60) == 0
    log = (tmp_path / "amar.log").read_text()
    assert "stopping: no new connections" in log and "stopped" in log

    # Started again on the same data: the statements before the stop are in the log.
    server, port, http = start(amar_bin, tmp_path, config)
    try:
        dsn = f"host=127.0.0.1 port={port} dbname=amar user=stats password=pw"
        with psycopg.connect(dsn) as c:
            n = c.execute(
                "SELECT count(*) FROM amar.query_log WHERE statement LIKE '%generate_series(1, 300000)%'"
            ).fetchone()[0]
        assert n >= 1
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_metrics_scrape_as_prometheus_reads_them(amar_bin, tmp_path):
    users = users_file(amar_bin, tmp_path)
    config = tmp_path / "amar.toml"
    config.write_text(f'[server]\nusers_file = "{users}"\n')
    server, port, http = start(amar_bin, tmp_path, config)
    try:
        with psycopg.connect(f"host=127.0.0.1 port={port} dbname=amar user=stats password=pw") as c:
            c.execute("SELECT 1").fetchall()
            with pytest.raises(psycopg.Error):
                c.execute("SELECT * FROM nowhere.nothing")
        status, text = http_get(http, "/metrics")
        assert status == 200
        samples = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        assert samples['amar_statements_total{protocol="pgwire",outcome="ok"}'] >= 1
        assert samples['amar_statements_total{protocol="pgwire",outcome="error"}'] >= 1
        assert samples["amar_statements_running"] == 0
        assert any(k.startswith("amar_statement_duration_seconds_bucket") for k in samples)
        assert samples["amar_resident_memory_bytes"] > 0
        assert text.rstrip().endswith("# EOF")
    finally:
        server.terminate()
        server.wait(timeout=60)


def test_check_config_reports_every_problem_at_once(amar_bin, tmp_path):
    users = users_file(amar_bin, tmp_path)
    good = tmp_path / "good.toml"
    good.write_text(
        f'[server]\nusers_file = "{users}"\n\n'
        '[[indicator]]\nid = "one"\ntitle_fa = "x"\ntitle_en = "x"\nunit = "u"\n'
        'periodicity = "monthly"\nadditivity = "flow"\nsql = "SELECT 1 AS value"\n'
    )
    done = subprocess.run([amar_bin, "check-config", str(good)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fine (0 sources, 1 indicators, 0 rules)" in done.stdout

    policy = tmp_path / "policy.csv"
    policy.write_text("p, role:x, insurance.*\n")
    broken = tmp_path / "broken.toml"
    broken.write_text(
        f'[server]\nusers_file = "{users}"\npolicy_file = "{policy}"\n\n'
        '[[source]]\nname = "away"\nkind = "postgres"\nurl = "postgres://postgres@127.0.0.1:1/test"\n'
        'sslmode = "disable"\nconnect_timeout_s = 2\n'
    )
    done = subprocess.run([amar_bin, "check-config", str(broken)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    problems = [l for l in done.stdout.splitlines() if l.startswith("problem: ")]
    assert any("policy" in p for p in problems), done.stdout
    assert any('source "away"' in p for p in problems), done.stdout
    assert len(problems) >= 2

    typo = tmp_path / "typo.toml"
    typo.write_text(f'[server]\nusers_file = "{users}"\n\n[limits]\nmax_conections = 5\n')
    done = subprocess.run([amar_bin, "check-config", str(typo)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "typo.toml:5" in done.stderr and "max_conections" in done.stderr, done.stderr
