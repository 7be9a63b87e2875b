#!/usr/bin/env bash
# Installs what the client tests need, from this repository's own lists:
#   - Debian's packages below (pgjdbc, psqlODBC, Go's lib/pq, Chromium, poppler),
#   - a Python virtual environment in .venv with clients/python/requirements.txt, and
#     one in .venv-current with the current release of each driver (requirements-current.txt),
#   - node-postgres twice: pinned by clients/node/package-lock.json, and its current
#     release in clients/node/current, so that a new release that breaks shows up.
# Safe to run again: it only installs what is missing, and a newer current node-postgres.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# Debian's packages the tests use, installed when one is missing:
#   libpostgresql-jdbc-java  pgjdbc, the driver Metabase and DBeaver use;
#   chromium                 prints the quarterly report to PDF (amar report --pdf),
#                            and is the browser of the portal's browser tests;
#   chromium-driver          chromedriver, through which Selenium drives it;
#   poppler-utils            pdftoppm and pdftotext, to check the printed report;
#   odbc-postgresql          psqlODBC, the driver Tableau, Excel and Power BI use on Windows,
#   unixodbc                 and the driver manager through which pyodbc loads it;
#   golang-go                Go 1.19 and, in /usr/share/gocode, lib/pq (Grafana's driver),
#   golang-github-lib-pq-dev built in GOPATH mode, with nothing from the Go module proxy;
#   nodejs, npm              for node-postgres, when the machine has no Node.js of its own.
installed() { dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null | grep -qx installed; }
missing=()
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
for package in odbc-postgresql unixodbc golang-go golang-github-lib-pq-dev; do
    installed "$package" || missing+=("$package")
done
command -v npm >/dev/null || missing+=(nodejs npm)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "installing Debian's ${missing[*]}"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
stamp="$venv/.requirements.sha"
want="$(sha256sum "$root/clients/python/requirements.txt" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$root/clients/python/requirements.txt"
    echo "$want" > "$stamp"
fi

# The current releases of the Python drivers, in a virtual environment of their own,
# upgraded on every run (clients/python/requirements-current.txt).
current="$root/.venv-current"
if [ ! -x "$current/bin/python" ]; then
    python3 -m venv "$current"
fi
"$current/bin/pip" install -q --disable-pip-version-check --upgrade -r "$root/clients/python/requirements-current.txt"

# node-postgres and pg-cursor: the pinned versions exactly as locked, and the current
# release of each (asked of the npm registry on every run) in a directory of its own.
node="$root/clients/node"
stamp="$node/node_modules/.package-lock.sha"
want="$(sha256sum "$node/package-lock.json" | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    (cd "$node" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" > "$stamp"
fi
mkdir -p "$node/current"
npm install --prefix "$node/current" --no-save --no-package-lock --no-audit --no-fund --loglevel=error \
    pg@latest pg-cursor@latest
