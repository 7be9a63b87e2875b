"""Operating the real `amar` binary (AMAR_BIN; scripts/test.sh sets it): SIGTERM drains
(running statements finish, over pgwire and Flight SQL, new clients are refused, /ready turns 503, the process
exits 0 and starts again with nothing lost), Prometheus can scrape /metrics, and
`amar check-config` reports every problem of a broken config at once."""

import json
import signal
import subprocess
import threading
import time

import psycopg
import pytest

from amar_process import add_user, http_get, start
from test_flight import connect


def test_sigterm_drains_and_a_restart_loses_nothing(amar_bin, tmp_path):
    users = add_user(amar_bin, tmp_path)
    config = tmp_path / "amar.toml"
    config.write_text(f'[server]\nusers_file = "{users}"\n\n[limits]\nshutdown_grace = "30s"\n')
    server = start(amar_bin, tmp_path, config)
    dsn = f"host=127.0.0.1 port={server.pg} dbname=amar user=stats password=pw"
    result = {}
    signalled = threading.Event()

    # Answers larger than the kernel's socket buffers can hold (tcp_rmem + tcp_wmem),
    # so that part of each is still in the server's hands when the stop comes.
    def long_read():
        # Autocommit: nothing to send after the statement, when the server is gone.
        with psycopg.connect(dsn, autocommit=True) as c, c.cursor() as cur:
            n = 0
            for i, _ in enumerate(cur.stream("SELECT * FROM generate_series(1, 3000000) a")):
                if i == 0:
                    result["started"] = True
                    # The client reads slowly: the answer is still on its way at the stop.
                    signalled.wait(60)
                    time.sleep(1.0)
                n += 1
            result["rows"] = n

    def long_flight_read():
        # The same over Flight SQL: one batch, a pause, then the rest of the stream.
        c = connect(f"grpc://127.0.0.1:{server.flight}", "stats", "pw")
        cur = c.cursor()
        try:
            cur.execute("SELECT * FROM generate_series(1, 10000000) a")
            batches = cur.fetch_record_batch()
            n = batches.read_next_batch().num_rows
            result["flight_started"] = True
            signalled.wait(60)
            time.sleep(1.0)
            for batch in batches:
                n += batch.num_rows
            result["flight_rows"] = n
        finally:
            # Closing is one more call (ClosePreparedStatement), which a stopping
            # server refuses like any new call (gRPC's graceful stop).
            for close in (cur.close, c.close):
                try:
                    close()
                except Exception:
                    pass

    reader_errors = []

    def recorded(read):
        def run():
            try:
                read()
            except Exception as e:  # reported by the assertions below
                reader_errors.append(repr(e))

        return run

    reader = threading.Thread(target=recorded(long_read))
    reader.start()
    flight_reader = threading.Thread(target=recorded(long_flight_read))
    flight_reader.start()
    deadline = time.time() + 60
    while "started" not in result or "flight_started" not in result:
        assert time.time() < deadline and not reader_errors, reader_errors
        time.sleep(0.02)
    server.process.send_signal(signal.SIGTERM)
    signalled.set()
    time.sleep(0.3)
    status, body = http_get(server.http, "/ready")
    assert status == 503 and json.loads(body)["draining"] is True
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(dsn, connect_timeout=3)
    reader.join(timeout=60)
    flight_reader.join(timeout=60)
    assert not reader_errors, reader_errors
    assert result.get("rows") == 3000000, "the running statement finished whole"
    assert result.get("flight_rows") == 10000000, "the Flight stream finished whole"
    assert server.process.wait(timeout=60) == 0
    log = (tmp_path / "amar.log").read_text()
    assert "stopping: no new connections" in log and "stopped" in log

    # Started again on the same data: the statements before the stop are in the log.
    server = start(amar_bin, tmp_path, config)
    try:
        dsn = f"host=127.0.0.1 port={server.pg} dbname=amar user=stats password=pw"
        with psycopg.connect(dsn) as c:
            n = c.execute(
                "SELECT count(*) FROM amar.query_log WHERE statement LIKE '%generate_series(1, 3000000)%'"
            ).fetchone()[0]
        assert n >= 1
    finally:
        server.stop()


def test_metrics_scrape_as_prometheus_reads_them(amar_bin, tmp_path):
    users = add_user(amar_bin, tmp_path)
    config = tmp_path / "amar.toml"
    config.write_text(f'[server]\nusers_file = "{users}"\n')
    server = start(amar_bin, tmp_path, config)
    try:
        with psycopg.connect(f"host=127.0.0.1 port={server.pg} dbname=amar user=stats password=pw") as c:
            c.execute("SELECT 1").fetchall()
            with pytest.raises(psycopg.Error):
                c.execute("SELECT * FROM nowhere.nothing")
        status, text = http_get(server.http, "/metrics")
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
        server.stop()


def test_check_config_reports_every_problem_at_once(amar_bin, tmp_path):
    users = add_user(amar_bin, tmp_path)
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
