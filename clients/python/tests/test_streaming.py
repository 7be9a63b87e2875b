"""A 10-million-row result streams through the server in constant memory.

The server under test is the `amar serve` process scripts/test.sh started; its PID
comes in AMAR_PID, and its peak resident memory (VmHWM) is read from /proc before
and after the result is streamed to psycopg in single-row mode."""

import os

import psycopg
import pytest

ROWS = 10_000_000


def peak_rss_mb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.mark.skipif("AMAR_PID" not in os.environ, reason="needs the PID of a separate amar serve")
def test_ten_million_rows_stream_in_constant_memory(dsn):
    pid = int(os.environ["AMAR_PID"])
    with psycopg.connect(dsn) as conn:
        # Warm up: the engine's first query allocates its pools.
        list(conn.cursor().stream("SELECT value FROM generate_series(1, 100000) AS t(value)"))
        before = peak_rss_mb(pid)
        count = 0
        total = 0
        # Each row carries ~100 bytes: held in memory, the result would take >1 GB.
        for value, padding in conn.cursor().stream(
            f"SELECT value, repeat('x', 100) AS padding FROM generate_series(1, {ROWS}) AS t(value)"
        ):
            count += 1
            total += value
        after = peak_rss_mb(pid)
    assert count == ROWS
    assert total == ROWS * (ROWS + 1) // 2
    growth = after - before
    print(f"server peak RSS {before:.0f} MB -> {after:.0f} MB (+{growth:.0f} MB) for {ROWS:,} rows")
    assert growth < 200, f"the server's peak memory grew by {growth:.0f} MB while streaming"
