"""Connection settings for the client tests: a running `amar serve`, found through
AMAR_PG_HOST / AMAR_PG_PORT (scripts/test.sh starts one and sets them), and the
binary itself (AMAR_BIN) for the tests that run it."""

import os

import psycopg
import pytest
import sqlalchemy

from amar_process import amar_binary


def _dsn(user="admin", password="admin"):
    host = os.environ.get("AMAR_PG_HOST", "127.0.0.1")
    port = os.environ.get("AMAR_PG_PORT", "6543")
    return f"host={host} port={port} dbname=amar user={user} password={password}"


@pytest.fixture(scope="session")
def amar_bin():
    return amar_binary()


@pytest.fixture
def dsn():
    return _dsn()


@pytest.fixture
def conn():
    with psycopg.connect(_dsn()) as c:
        yield c


@pytest.fixture
def engine():
    host = os.environ.get("AMAR_PG_HOST", "127.0.0.1")
    port = os.environ.get("AMAR_PG_PORT", "6543")
    e = sqlalchemy.create_engine(f"postgresql+psycopg://admin:admin@{host}:{port}/amar")
    yield e
    e.dispose()


@pytest.fixture
def flight_uri():
    host = os.environ.get("AMAR_FLIGHT_HOST", "127.0.0.1")
    port = os.environ.get("AMAR_FLIGHT_PORT", "6544")
    return f"grpc://{host}:{port}"
