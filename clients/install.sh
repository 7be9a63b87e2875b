#!/usr/bin/env bash
# Installs what the client tests need, from this repository's own lists:
#   - pgjdbc from Debian's libpostgresql-jdbc-java (the driver Metabase and DBeaver use),
#   - a Python virtual environment in .venv with clients/python/requirements.txt.
# Safe to run again: it only installs what is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

if [ ! -f /usr/share/java/postgresql.jar ]; then
    echo "installing Debian's libpostgresql-jdbc-java"
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq libpostgresql-jdbc-java >/dev/null
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
