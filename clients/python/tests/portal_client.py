"""A visitor of the statistics portal over plain HTTP (http.client): its own cookies,
no redirects followed unless asked, and a source address of its choice (127.0.0.x), so
that the tests of sign-in limits, which count per address, do not lock out the rest."""

import http.client
import os
import re
from dataclasses import dataclass
from urllib.parse import urlencode

import pytest


def portal_address():
    """host, port of the shared server's portal (scripts/test.sh sets AMAR_PORTAL_PORT)."""
    port = os.environ.get("AMAR_PORTAL_PORT")
    if not port:
        pytest.skip("AMAR_PORTAL_PORT is not set (scripts/test.sh sets it)")
    return os.environ.get("AMAR_PG_HOST", "127.0.0.1"), int(port)


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes

    @property
    def text(self):
        return self.body.decode("utf-8")

    def header(self, name):
        return self.headers.get(name)


class Visitor:
    def __init__(self, host, port, source="127.0.0.1"):
        self.host = host
        self.port = port
        self.source = source
        self.cookies = {}

    def request(self, method, path, form=None, follow=False):
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=120, source_address=(self.source, 0)
        )
        headers = {}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        r = connection.getresponse()
        data = r.read()
        connection.close()
        for cookie in r.headers.get_all("Set-Cookie") or []:
            name, _, rest = cookie.partition("=")
            value = rest.split(";", 1)[0]
            if "Max-Age=0" in cookie:
                self.cookies.pop(name, None)
            else:
                self.cookies[name] = value
        response = Response(r.status, r.headers, data)
        if follow and response.status in (301, 302, 303, 307):
            return self.request("GET", response.header("Location"), follow=True)
        return response

    def get(self, path, follow=False):
        return self.request("GET", path, follow=follow)

    def form_token(self):
        page = self.get("/signin")
        assert page.status == 200, page.text
        return re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)

    def sign_in(self, user, password=None, follow=False):
        token = self.form_token()
        return self.request(
            "POST",
            "/signin",
            {"csrf": token, "user": user, "password": password or user, "next": "/"},
            follow=follow,
        )

    def signed_in(self, user, password=None):
        r = self.sign_in(user, password)
        assert r.status == 303, (r.status, r.text)
        assert "amar_session" in self.cookies
        return self


def links(html):
    """Every href and src of a page."""
    return re.findall(r'(?:href|src)="([^"]*)"', html)
