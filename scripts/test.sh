#!/usr/bin/env bash
# The whole test suite, as on a fresh machine:
#   1. installs what the client tests need (clients/install.sh),
#   2. runs every Rust test (unit, end-to-end through tokio-postgres, psql, .slt),
#   3. starts `amar serve` on its demo and runs the real clients against it:
#      psycopg, SQLAlchemy and pandas, psqlODBC through pyodbc, ADBC Flight SQL (pytest;
#      TLS with a server of its own), the portal over HTTP and in Debian's Chromium
#      (Selenium), pgjdbc, node-postgres (pinned and current) and Go's lib/pq.
# Set AMAR_REQUIRE_SERVICES=1 to fail, not skip, when PostgreSQL or MariaDB is away.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

./clients/install.sh

cargo test --workspace --no-fail-fast
# The binary the client tests run. The same package selection and targets as
# `cargo test --workspace`, so that features unify the same way and the libraries
# built for the tests are reused: this only links the binary.
cargo build --workspace --bins --tests

# The plugin guide's check, with the real binary, on the plugin built for the tests.
target="${CARGO_TARGET_DIR:-$root/target}/debug"
# (Not `tee /dev/stderr`: when stderr is a file, that reopens and truncates it.)
checked="$("$target/amar" plugins check "$target/deps/libamar_plugin_hello.so")"
echo "$checked"
grep -qx "loads: yes" <<<"$checked"

# A server on a small demo for the client tests; the OS picks the port.
data="$(mktemp -d)"
log="$data/amar.log"
"${CARGO_TARGET_DIR:-$root/target}/debug/amar" serve --data-dir "$data" --demo-scale 0.05 \
    --pg-listen 127.0.0.1:0 --flight-listen 127.0.0.1:0 --http-listen 127.0.0.1:0 --portal-listen 127.0.0.1:0 >"$log" 2>&1 &
server=$!
cleanup() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
    rm -rf "$data"
}
trap cleanup EXIT

port=""
for _ in $(seq 1 600); do
    port="$(sed -n 's/.*psql:.*@127\.0\.0\.1:\([0-9]*\)\/amar.*/\1/p' "$log" | head -n 1)"
    [ -n "$port" ] && break
    if ! kill -0 "$server" 2>/dev/null; then
        echo "amar serve exited:"; cat "$log"; exit 1
    fi
    sleep 0.1
done
[ -n "$port" ] || { echo "amar serve did not start:"; cat "$log"; exit 1; }
flight_port="$(sed -n 's/.*Flight SQL.*grpc:\/\/127\.0\.0\.1:\([0-9]*\).*/\1/p' "$log" | head -n 1)"
portal_port="$(sed -n 's/.*Portal.*http:\/\/127\.0\.0\.1:\([0-9]*\)\/.*/\1/p' "$log" | head -n 1)"
echo "client tests against amar serve: pgwire 127.0.0.1:$port, Flight SQL 127.0.0.1:$flight_port, portal 127.0.0.1:$portal_port"

AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT="$port" AMAR_FLIGHT_PORT="$flight_port" AMAR_PORTAL_PORT="$portal_port" AMAR_PID="$server" \
    AMAR_BIN="$target/amar" AMAR_PLUGIN_DIR="$target/deps" \
    "$root/.venv/bin/python" -m pytest -q -s clients/python/tests

# The drivers' tests again with their current releases (.venv-current).
AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT="$port" AMAR_PID="$server" AMAR_BIN="$target/amar" \
    "$root/.venv-current/bin/python" -m pytest -q -s clients/python/tests/test_psycopg.py \
    clients/python/tests/test_sqlalchemy.py clients/python/tests/test_odbc.py clients/python/tests/test_tools.py

mkdir -p clients/java/build
javac -d clients/java/build -cp /usr/share/java/postgresql.jar clients/java/AmarJdbcTest.java
java -cp /usr/share/java/postgresql.jar:clients/java/build AmarJdbcTest 127.0.0.1 "$port"

# node-postgres: the release pinned in clients/node, then the current one.
for modules in clients/node clients/node/current; do
    AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT="$port" AMAR_NODE_MODULES="$modules" node --test clients/node/test.mjs
done

# Go's lib/pq, Debian's, in GOPATH mode (nothing from the Go module proxy).
AMAR_PG_HOST=127.0.0.1 AMAR_PG_PORT="$port" GO111MODULE=off GOPATH=/usr/share/gocode \
    go test -count=1 -v ./clients/go

echo "all tests passed"
