"""TLS from the real Python clients: psycopg (libpq) with sslmode=verify-full and ADBC
Flight SQL over grpc+tls, against an `amar serve` started here with the certificate
`amar cert dev` makes and `require_tls = true`. The binary is AMAR_BIN (scripts/test.sh
sets it)."""

import http.client
import re
import ssl
import subprocess

import adbc_driver_flightsql.dbapi as flight_sql
import psycopg
import pytest

from amar_process import add_user, amar_binary, start


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory):
    binary = amar_binary()
    d = tmp_path_factory.mktemp("tls")
    subprocess.run([binary, "cert", "dev", "--dir", str(d / "tls")], check=True, capture_output=True)
    users = add_user(binary, d)
    config = d / "amar.toml"
    config.write_text(
        "[server]\n"
        f'users_file = "{users}"\n'
        f'tls_cert = "{d / "tls" / "server.crt"}"\n'
        f'tls_key = "{d / "tls" / "server.key"}"\n'
        "require_tls = true\n"
    )
    server = start(binary, d, config)
    yield {
        "pg": server.pg,
        "flight": server.flight,
        "portal": int(server.portal.split(":")[1]),
        "ca": d / "tls" / "ca.crt",
    }
    server.stop()


def test_psycopg_verify_full(tls_server):
    dsn = (
        f"host=localhost port={tls_server['pg']} dbname=amar user=stats password=pw "
        f"sslmode=verify-full sslrootcert={tls_server['ca']}"
    )
    with psycopg.connect(dsn) as conn:
        assert conn.pgconn.ssl_in_use
        assert conn.execute("SELECT 40 + 2").fetchone()[0] == 42


def test_psycopg_without_tls_is_refused(tls_server):
    dsn = f"host=127.0.0.1 port={tls_server['pg']} dbname=amar user=stats password=pw sslmode=disable"
    with pytest.raises(psycopg.OperationalError, match="accepts only TLS"):
        psycopg.connect(dsn)


def test_adbc_over_grpc_tls(tls_server):
    uri = f"grpc+tls://localhost:{tls_server['flight']}"
    with flight_sql.connect(
        uri,
        db_kwargs={
            "username": "stats",
            "password": "pw",
            "adbc.flight.sql.client_option.tls_root_certs": tls_server["ca"].read_text(),
        },
        autocommit=True,
    ) as conn, conn.cursor() as cur:
        cur.execute("SELECT 40 + 2 AS answer")
        assert cur.fetch_arrow_table().column("answer")[0].as_py() == 42


def test_portal_over_https_sets_secure_cookies(tls_server):
    context = ssl.create_default_context(cafile=str(tls_server["ca"]))

    def request(method, path, body=None, cookies=""):
        c = http.client.HTTPSConnection("localhost", tls_server["portal"], context=context, timeout=60)
        headers = {"Cookie": cookies} if cookies else {}
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        c.request(method, path, body=body, headers=headers)
        r = c.getresponse()
        data = r.read().decode()
        c.close()
        return r, data

    form, text = request("GET", "/signin")
    assert form.status == 200 and form.getheader("Content-Security-Policy")
    csrf_cookie = form.getheader("Set-Cookie")
    assert "Secure" in csrf_cookie and "HttpOnly" in csrf_cookie
    token = re.search(r'name="csrf" value="([^"]+)"', text).group(1)
    signed, _ = request(
        "POST", "/signin", f"csrf={token}&user=stats&password=pw&next=%2F", cookies=f"amar_csrf={token}"
    )
    assert signed.status == 303
    session = signed.getheader("Set-Cookie")
    assert session.startswith("amar_session=") and "Secure" in session and "HttpOnly" in session
    # Plain HTTP on the HTTPS port gets no page.
    plain = http.client.HTTPConnection("127.0.0.1", tls_server["portal"], timeout=10)
    try:
        plain.request("GET", "/")
        response = plain.getresponse()
        assert response.status != 200
    except (http.client.HTTPException, ConnectionError, OSError):
        pass
    finally:
        plain.close()
