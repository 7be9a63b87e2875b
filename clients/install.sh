#!/usr/bin/env bash
# Installs what the client tests need, from this repository's own lists:
#   - Debian's packages below (pgjdbc, Chromium, poppler),
#   - a Python virtual environment in .venv with clients/python/requirements.txt.
# Safe to run again: it only installs what is missing.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"

# Debian's packages the tests use, installed when one is missing:
#   libpostgresql-jdbc-java  pgjdbc, the driver Metabase and DBeaver use;
#   chromium                 prints the quarterly report to PDF (amar report --pdf),
#                            and is the browser of the portal's browser tests;
#   chromium-driver          chromedriver, through which Selenium drives it;
#   poppler-utils            pdftoppm and pdftotext, to check the printed report.
missing=()
[ -f /usr/share/java/postgresql.jar ] || missing+=(libpostgresql-jdbc-java)
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
command -v pdftoppm >/dev/null || missing+=(poppler-utils)
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
