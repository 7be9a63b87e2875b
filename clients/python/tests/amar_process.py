"""Starting the real `amar` binary (AMAR_BIN; scripts/test.sh sets it) for the tests
that need a server of their own: a user file, `amar serve` on port 0 with the addresses
read from its log, and the operations endpoints."""

import os
import re
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest


def amar_binary():
    """AMAR_BIN, or the test is skipped."""
    binary = os.environ.get("AMAR_BIN")
    if not binary:
        pytest.skip("AMAR_BIN is not set (scripts/test.sh sets it)")
    return binary


def add_user(binary, d, name="stats", password="pw", role="admin"):
    """A users file in `d` with one user; returns its path."""
    users = d / "users.toml"
    subprocess.run(
        [binary, "user", "add", name, "--role", role, "--password-stdin", "--users-file", str(users)],
        input=f"{password}\n".encode(),
        check=True,
        capture_output=True,
    )
    return users


@dataclass
class Server:
    process: subprocess.Popen
    pg: int
    flight: int
    http: str
    portal: str

    def stop(self):
        self.process.terminate()
        return self.process.wait(timeout=60)


def start(binary, d, config):
    """`amar serve --config config` with its data in `d/data` and its log in
    `d/amar.log`; returns once every front end is listening."""
    log = open(d / "amar.log", "w+")
    process = subprocess.Popen(
        [binary, "serve", "--config", str(config), "--data-dir", str(d / "data"),
         "--pg-listen", "127.0.0.1:0", "--flight-listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0",
         "--portal-listen", "127.0.0.1:0"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    for _ in range(600):
        text = (d / "amar.log").read_text()
        pg = re.search(r"psql:.*@127\.0\.0\.1:(\d+)/amar", text)
        flight = re.search(r"Flight SQL.*grpc(?:\+tls)?://127\.0\.0\.1:(\d+)", text)
        http = re.search(r"http://(127\.0\.0\.1:\d+)/metrics", text)
        portal = re.search(r"Portal.*https?://(127\.0\.0\.1:\d+)/", text)
        if pg and flight and http and portal:
            return Server(process, int(pg.group(1)), int(flight.group(1)), http.group(1), portal.group(1))
        assert process.poll() is None, text
        time.sleep(0.1)
    process.kill()
    raise AssertionError((d / "amar.log").read_text())


def http_get(addr, path):
    """Status and body of GET http://addr/path, errors included."""
    try:
        with urllib.request.urlopen(f"http://{addr}{path}", timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()
