"""The statistics portal over HTTP, as each kind of visitor: anonymous (the public
role), public signed in, tehran (a provincial analyst), statistician, auditor and
admin. Pages and downloads must show exactly what the same user's SQL shows, never
more; URLs that are tampered with reveal nothing; forms need their token; sign-in
attempts are limited; sessions end; every view is audited."""

import csv
import io
import json
import re
import time
import zipfile
from html import unescape

import psycopg
import pytest

from amar_process import add_user, amar_binary, start
from conftest import _dsn
from portal_client import Visitor, links, portal_address

PERSIAN_DIGITS = re.compile("[۰-۹]")


@pytest.fixture
def portal():
    return portal_address()


def visitor(portal, source="127.0.0.1"):
    return Visitor(*portal, source=source)


def sql(user, query, params=None):
    with psycopg.connect(_dsn(user, user)) as c:
        cur = c.execute(query, params)
        columns = [d.name for d in cur.description]
        return columns, cur.fetchall()


def test_home_is_persian_first_self_contained_and_lists_every_indicator(portal):
    r = visitor(portal).get("/")
    assert r.status == 200
    assert r.header("Content-Type") == "text/html; charset=utf-8"
    html = r.text
    assert '<html lang="fa" dir="rtl">' in html
    assert PERSIAN_DIGITS.search(html)
    csp = r.header("Content-Security-Policy")
    assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert r.header("X-Content-Type-Options") == "nosniff"
    # Everything it asks for is on this host, and no page needs a script.
    for link in links(html):
        assert link.startswith("/") or link.startswith("#") or link.startswith("?"), link
    assert "<script" not in html
    _, ids = sql("public", "SELECT id FROM amar.indicators")
    assert len(ids) >= 5
    for (i,) in ids:
        assert f'href="/indicators/{i}"' in html, i
    # Names, not codes: departments and units read in Persian.
    assert "بیمه" in html and "نفر" in html


def test_every_asset_is_served_from_the_binary(portal):
    v = visitor(portal)
    html = v.get("/").text
    assets = sorted(set(re.findall(r'(/assets/[^"?]+)\?v=[0-9a-f]+', html)))
    assert "/assets/portal.css" in assets
    for path in assets:
        r = v.get(path)
        assert r.status == 200 and len(r.body) > 100, path
        assert "immutable" in r.header("Cache-Control")
    css = v.get("/assets/portal.css").text
    for font in re.findall(r"url\((/assets/[^)]+)\)", css):
        r = v.get(font)
        assert r.status == 200 and r.header("Content-Type") == "font/woff2", font
    assert v.get("/assets/nothing.js").status == 404


def test_english_switch_keeps_the_page_and_its_query(portal):
    v = visitor(portal)
    fa = v.get("/units?sort=score&dir=desc")
    assert fa.status == 200
    switch = re.search(r'<a href="([^"]+)" lang="en"', fa.text).group(1).replace("&amp;", "&")
    assert switch.startswith("/units?") and "sort=score" in switch and "lang=en" in switch
    en = v.get(switch)
    assert '<html lang="en" dir="ltr">' in en.text
    assert "Evaluation of units" in en.text
    back = re.search(r'<a href="([^"]+)" lang="fa"', en.text).group(1).replace("&amp;", "&")
    assert back == "/units?sort=score&dir=desc"


def test_indicator_page_shows_definition_norm_chart_table_and_release(portal):
    v = visitor(portal)
    _, released = sql(
        "public",
        "SELECT release_id, revision, period FROM official.claims_per_thousand ORDER BY period DESC LIMIT 1",
    )
    assert released, "the demo has released claims_per_thousand"
    release_id, revision, period = released[0]
    r = v.get("/indicators/claims_per_thousand?lang=en")
    assert r.status == 200
    html = r.text
    _, meta = sql("public", "SELECT title_en, definition_en FROM amar.indicators WHERE id = 'claims_per_thousand'")
    text = unescape(html)
    assert meta[0][0] in text and meta[0][1] in text
    assert release_id in html and "Cite this" in html
    assert f"/indicators/claims_per_thousand?release={release_id}" in html
    assert '<svg class="chart"' in html and "<title id=\"chart-title\">" in html
    assert "The chart's data as a table" in text
    # The norm, and glossary terms linked.
    assert "Norm" in html and 'href="/glossary?lang=en#claim"' in html
    # The permalink shows that release for good.
    permalink = v.get(f"/indicators/claims_per_thousand?release={release_id}&lang=en")
    assert permalink.status == 200 and release_id in permalink.text


def test_by_unit_table_sorts_without_script(portal):
    v = visitor(portal)
    by_value = v.get("/indicators/active_insured?sort=value&dir=desc&lang=en").text
    table = by_value[by_value.index('id="units"'):]
    values = [
        float(x.replace(",", ""))
        for x in re.findall(r'<td class="num" data-label="Value">([\d,\.]+)</td>', table)
    ]
    assert len(values) >= 10
    assert values == sorted(values, reverse=True)
    assert 'aria-sort="descending"' in table


def parse_csv(body):
    assert body[:3] == b"\xef\xbb\xbf", "CSV starts with a UTF-8 byte-order mark"
    rows = list(csv.reader(io.StringIO(body[3:].decode("utf-8"))))
    return rows[0], rows[1:]


def same(cell, value):
    if value is None:
        return cell == ""
    if isinstance(value, bool):
        return cell == str(value).lower()
    if isinstance(value, (int, float)) or hasattr(value, "as_tuple"):
        return abs(float(cell) - float(value)) < 1e-9 * max(1.0, abs(float(value)))
    return cell == str(value)


def check_download(v, user, indicator, schema):
    """The CSV, JSON and XLSX of an indicator equal the user's own SQL answer."""
    r = v.get(f"/indicators/{indicator}/data.csv")
    assert r.status == 200, r.text
    assert r.header("Content-Type").startswith("text/csv")
    assert "attachment" in r.header("Content-Disposition")
    columns, rows = parse_csv(r.body)
    period = rows[0][columns.index("period")]
    order = "province_code" if "province_code" in columns else "period"
    want_columns, want = sql(
        user,
        f"SELECT * FROM {schema}.{indicator} WHERE period = %s ORDER BY {order}",
        (period,),
    )
    assert columns[: len(want_columns)] == want_columns
    assert len(rows) == len(want)
    for got, expected in zip(rows, want):
        for cell, value, name in zip(got, expected, want_columns):
            if name in ("released_at",):
                continue
            assert same(cell, value), (indicator, name, cell, value)
    doc = json.loads(v.get(f"/indicators/{indicator}/data.json").body)
    assert doc["columns"] == columns and len(doc["rows"]) == len(rows)
    xlsx = v.get(f"/indicators/{indicator}/data.xlsx")
    assert xlsx.header("Content-Type").startswith("application/vnd.openxmlformats")
    sheet = zipfile.ZipFile(io.BytesIO(xlsx.body)).read("xl/worksheets/sheet1.xml").decode()
    assert sheet.count("<row ") == len(rows) + 1
    return columns, rows


@pytest.mark.parametrize("user", [None, "public", "tehran", "statistician", "admin"])
def test_downloads_are_exactly_the_users_sql(portal, user):
    v = visitor(portal)
    if user:
        v.signed_in(user)
    as_user = user or "public"
    # A provisional (live) indicator and an officially released one.
    columns, rows = check_download(v, as_user, "active_insured", "indicators")
    check_download(v, as_user, "claims_per_thousand", "official")
    if user == "tehran":
        codes = {r[columns.index("province_code")] for r in rows}
        assert codes == {"23"}
        assert {r[columns.index("unit_fa")] for r in rows} == {"تهران"}


def test_tehran_sees_only_tehran_whatever_the_url_says(portal):
    v = visitor(portal).signed_in("tehran")
    units = v.get("/units").text
    assert units.count('<th scope="row">') == 1 and "تهران" in units
    assert v.get("/units/23").status == 200
    # Another province's page is "not found", exactly like a unit that does not exist.
    other = v.get("/units/01")
    missing = v.get("/units/99999")
    assert other.status == missing.status == 404
    assert other.text.replace("/units/01", "/x") == missing.text.replace("/units/99999", "/x")
    page = v.get("/indicators/contribution_collection_rate?sort=value").text
    table = page[page.index('id="units"'):]
    assert table.count('<th scope="row">') == 1 and "تهران" in table
    # Query strings a page does not know change nothing.
    assert v.get("/indicators/contribution_collection_rate?unit=01&province_code=01").text.count("اصفهان") == 0


def test_hidden_and_missing_indicators_answer_alike(portal):
    # The auditor may read no indicator: one that exists is as absent as one that doesn't.
    v = visitor(portal).signed_in("auditor")
    hidden = v.get("/indicators/active_insured")
    missing = v.get("/indicators/no_such_indicator")
    assert hidden.status == missing.status == 404
    assert hidden.text.replace("active_insured", "x") == missing.text.replace("no_such_indicator", "x")
    assert v.get("/indicators/active_insured/data.csv").status == 404
    assert v.get("/indicators/claims_per_thousand?release=../../etc").status == 404
    assert visitor(portal).get("/indicators/claims_per_thousand?release=nope").status == 404


def test_public_never_gets_a_suppressed_cell(portal):
    _, hidden_live = sql(
        "public",
        "SELECT province_code FROM indicators.rehabilitation_claims WHERE suppressed "
        "AND period = (SELECT max(period) FROM indicators.rehabilitation_claims)",
    )
    assert hidden_live, "the demo has small cells the public may not see"
    _, truth = sql(
        "admin",
        "SELECT province_code, value FROM indicators.rehabilitation_claims "
        "WHERE period = (SELECT max(period) FROM indicators.rehabilitation_claims)",
    )
    true_value = {str(code): value for code, value in truth}
    v = visitor(portal)
    columns, rows = parse_csv(v.get("/indicators/rehabilitation_claims/data.csv").body)
    by_code = {r[columns.index("province_code")]: r for r in rows}
    for (code,) in hidden_live:
        code = str(code)
        row = by_code[code]
        assert row[columns.index("value")] == "" and row[columns.index("suppressed")] == "true"
        assert true_value[code] is not None
    # The Excel file has no cell where the public's value is suppressed.
    xlsx = v.get("/indicators/rehabilitation_claims/data.xlsx").body
    sheet = zipfile.ZipFile(io.BytesIO(xlsx)).read("xl/worksheets/sheet1.xml").decode()
    letter = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"[columns.index("value")]
    hidden_codes = {str(c) for (c,) in hidden_live}
    for i, row in enumerate(rows):
        cell = f'<c r="{letter}{i + 2}"'
        if row[columns.index("province_code")] in hidden_codes:
            assert cell not in sheet, (row, cell)
        elif row[columns.index("value")] != "":
            assert cell in sheet, (row, cell)
    doc = json.loads(v.get("/indicators/rehabilitation_claims/data.json").body)
    for row in doc["rows"]:
        if row["province_code"] in {c for (c,) in hidden_live}:  # integers in JSON
            assert row["value"] is None
    page = v.get("/indicators/rehabilitation_claims?lang=en").text
    table = page[page.index('id="units"'):page.index("</table>", page.index('id="units"'))]
    assert table.count("suppressed") >= len(hidden_live)
    assert "Suppressed: this cell" in page
    # Official figures in their public form: the same.
    _, official = sql("public", "SELECT province_code FROM official.contributions_collected WHERE suppressed")
    assert official, "the demo's released contributions_collected has suppressed cells for the public"
    columns, rows = parse_csv(v.get("/indicators/contributions_collected/data.csv").body)
    hidden = {str(c) for (c,) in official}
    for row in rows:
        if row[columns.index("province_code")] in hidden:
            assert row[columns.index("value")] == ""
    # The home page publishes no total that would add the hidden cells up.
    assert "No national total is published" in v.get("/?lang=en").text
    # The public's scorecard says its scores leave suppressed figures out; staff's counts all.
    assert "counts its published figures only" in v.get("/units?lang=en").text
    # The same user signed in as staff sees the values.
    staff = visitor(portal).signed_in("statistician")
    columns, rows = parse_csv(staff.get("/indicators/rehabilitation_claims/data.csv").body)
    assert all(r[columns.index("value")] != "" for r in rows)
    assert "counts its published figures only" not in staff.get("/units?lang=en").text


def test_sign_in_needs_the_forms_token(portal):
    v = visitor(portal)
    v.form_token()
    refused = v.request("POST", "/signin", {"user": "admin", "password": "admin", "next": "/"})
    assert refused.status == 403
    assert "amar_session" not in v.cookies
    # A token that is not the cookie's (another site's form) is refused too.
    refused = v.request("POST", "/signin", {"csrf": "x" * 43, "user": "admin", "password": "admin"})
    assert refused.status == 403 and "amar_session" not in v.cookies
    # Sign-out without the session's token does not sign out.
    v.signed_in("admin")
    assert v.request("POST", "/signout", {"csrf": "wrong"}).status == 403
    assert "Signed in as" in v.get("/?lang=en").text
    token = re.search(r'action="/signout"><input type="hidden" name="csrf" value="([^"]+)"', v.get("/").text).group(1)
    out = v.request("POST", "/signout", {"csrf": token})
    assert out.status == 303 and "amar_session" not in v.cookies
    assert "Staff sign-in" in v.get("/?lang=en").text


def test_wrong_password_is_refused_and_attempts_are_limited(portal):
    # From an address of its own, so that no other test is locked out.
    v = visitor(portal, source="127.0.0.2")
    wrong = v.sign_in("statistician", "not-the-password")
    assert wrong.status == 401
    assert "نام کاربری یا گذرواژه درست نیست" in wrong.text
    assert "amar_session" not in v.cookies
    for _ in range(4):
        assert v.sign_in("statistician", "still-wrong").status == 401
    limited = v.sign_in("statistician")  # the right password, too late
    assert limited.status == 429
    assert int(limited.header("Retry-After")) > 60
    assert "amar_session" not in v.cookies
    assert "دقیقه" in limited.text
    # Another address is not affected.
    assert visitor(portal, source="127.0.0.3").sign_in("statistician").status == 303


def test_staff_pages_follow_the_policy(portal):
    anonymous = visitor(portal).get("/office")
    assert anonymous.status == 303 and anonymous.header("Location").startswith("/signin?next=")
    statistician = visitor(portal).signed_in("statistician").get("/office?lang=en")
    assert statistician.status == 200
    for section in ("Validation", "Data sources", "Release calendar"):
        assert section in statistician.text
    # The auditor reads the query log only: no section of the office is theirs.
    assert visitor(portal).signed_in("auditor").get("/office").status == 403
    assert visitor(portal).signed_in("public").get("/office").status == 403
    assert visitor(portal).get("/glossary").status == 200


def test_every_page_view_and_download_is_audited(portal):
    v = visitor(portal).signed_in("tehran")
    marker = f"/units?audit={time.time_ns()}"
    assert v.get(marker).status == 200
    assert v.get(marker).status == 200  # the second from the cache
    assert v.get("/indicators/active_insured/data.csv").status == 200
    time.sleep(0.5)
    _, rows = sql(
        "admin",
        "SELECT statement, protocol, decision FROM amar.query_log WHERE user_name = 'tehran' AND protocol = 'portal'",
    )
    statements = [r[0] for r in rows]
    assert f"GET {marker}" in statements
    assert f"GET {marker} (cached)" in statements
    assert any(s.startswith("GET /indicators/active_insured/data.csv") for s in statements)
    # The page's own SQL ran in tehran's session, through the policy.
    assert any("amar.indicator_status" in s for s in statements)
    assert "portal sign-in" in statements


def test_unknown_pages_are_404_with_the_frame(portal):
    r = visitor(portal).get("/no/such/page?lang=en")
    assert r.status == 404 and "Page not found" in r.text
    assert '<html lang="en" dir="ltr">' in r.text


def test_a_session_ends_after_its_idle_time(tmp_path):
    binary = amar_binary()
    users = add_user(binary, tmp_path, name="boss", password="pw", role="admin")
    config = tmp_path / "amar.toml"
    config.write_text(
        f'[server]\nusers_file = "{users}"\n\n[portal]\nidle_timeout = "2s"\nanonymous_user = ""\n'
    )
    server = start(binary, tmp_path, config)
    try:
        host, port = server.portal.split(":")
        v = Visitor(host, int(port))
        # With no anonymous user, every page asks for a sign-in.
        first = v.get("/units")
        assert first.status == 303 and first.header("Location") == "/signin?next=%2Funits"
        assert v.sign_in("boss", "pw").status == 303
        assert v.get("/glossary?lang=en").status == 200
        assert "Signed in as" in v.get("/glossary?lang=en").text
        time.sleep(3)
        ended = v.get("/glossary")
        assert ended.status == 303 and ended.header("Location").startswith("/signin")
        assert "amar_session" not in v.cookies
        assert v.sign_in("boss", "pw").status == 303
    finally:
        server.stop()


EXPECTED_OFFICE = {None: 303, "public": 403, "tehran": 200, "statistician": 200, "admin": 200}


@pytest.mark.parametrize("user", [None, "public", "tehran", "statistician", "admin"])
def test_every_page_answers_every_kind_of_visitor(portal, user):
    """Each page the visitor may see, in both languages: every indicator, every
    release of it, the scorecard and a unit, the glossary; and the office as the
    policy allows. No page fails."""
    v = visitor(portal)
    if user:
        v.signed_in(user)
    as_user = user or "public"
    _, ids = sql(as_user, "SELECT id FROM amar.indicators ORDER BY id")
    _, releases = sql(
        as_user, "SELECT release_id, indicators FROM amar.releases WHERE status IN ('published', 'superseded')"
    )
    pages = ["/", "/units", "/glossary"]
    pages += [f"/indicators/{i}" for (i,) in ids]
    pages += [
        f"/indicators/{i}?release={r}" for r, listed in releases for i in listed.split(", ")
    ]
    _, units = sql(as_user, "SELECT DISTINCT unit FROM amar.indicator_status WHERE unit IS NOT NULL")
    pages += [f"/units/{u}" for (u,) in units[:3]]
    assert len(pages) >= 15
    for page in pages:
        for lang in ("", "lang=en"):
            url = page if not lang else page + ("&" if "?" in page else "?") + lang
            r = v.get(url)
            assert r.status == 200, (user, url, r.status)
            assert "</html>" in r.text
            assert "SQLSTATE" not in r.text, (user, url)
    assert v.get("/office").status == EXPECTED_OFFICE[user]
