"""The statistics portal in a real browser: Debian's Chromium driven by Selenium through
Debian's chromedriver (nothing is downloaded). Opens home, follows to an indicator,
switches language, downloads the CSV and compares it with the SQL answer, signs in as
tehran and sees only Tehran, and checks that the browser asked no other host for
anything. Screenshots of every page, at a laptop's and a phone's width, go to
$AMAR_SCREENSHOTS (default target/portal-screenshots) for a person to look at."""

import csv
import io
import json
import os
import pathlib
import time

import psycopg
import pytest

from conftest import _dsn
from portal_client import portal_address

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"

LAPTOP = (1366, 900)
PHONE = (390, 844)


def screenshots_dir():
    root = pathlib.Path(__file__).resolve().parents[3]
    d = pathlib.Path(os.environ.get("AMAR_SCREENSHOTS", root / "target" / "portal-screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


@pytest.fixture
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    for path in (CHROMIUM, CHROMEDRIVER):
        if not os.path.exists(path):
            if os.environ.get("AMAR_REQUIRE_SERVICES") == "1":
                pytest.fail(f"{path} is missing: clients/install.sh installs Debian's chromium and chromium-driver")
            pytest.skip(f"{path} is missing")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    options.add_argument("--headless=new")
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")
    options.add_argument("--disable-dev-shm-usage")
    options.add_argument(f"--window-size={LAPTOP[0]},{LAPTOP[1]}")
    options.add_argument("--hide-scrollbars")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(120)
    driver.downloads = downloads
    yield driver
    driver.quit()


def shoot(driver, name):
    """The whole page at a laptop's and a phone's width."""
    out = screenshots_dir()
    for label, (width, height) in (("laptop", LAPTOP), ("phone", PHONE)):
        driver.set_window_size(width, height)
        full = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(width, min(max(full + 140, height), 6000))
        path = out / f"{name}-{label}.png"
        driver.save_screenshot(str(path))
        assert path.stat().st_size > 10_000, path
    driver.set_window_size(*LAPTOP)


def requested_urls(driver):
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def sql(user, query, params=None):
    with psycopg.connect(_dsn(user, user)) as c:
        cur = c.execute(query, params)
        return [d.name for d in cur.description], cur.fetchall()


def wait_for(predicate, timeout=30):
    """predicate's first true value; while a page is still loading, its elements may
    not be there yet (NoSuchElement, StaleElement), which is waited out too."""
    from selenium.common.exceptions import WebDriverException

    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except WebDriverException as e:
            last = e
        time.sleep(0.1)
    raise AssertionError(f"timed out; last error: {last}")


def test_a_visitor_reads_an_indicator_downloads_it_and_tehran_sees_only_tehran(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    host, port = portal_address()
    base = f"http://{host}:{port}"
    b = browser
    b.get(base + "/")
    html = b.find_element(By.TAG_NAME, "html")
    assert html.get_attribute("lang") == "fa" and html.get_attribute("dir") == "rtl"
    # The font is the embedded one, and it loaded.
    wait_for(lambda: b.execute_script("return document.fonts.check('16px Vazirmatn')"))
    shoot(b, "home")
    # Keyboard: the first Tab reaches "skip to content".
    b.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    assert b.switch_to.active_element.get_attribute("class") == "skip"

    # Follow the first indicator with a trend.
    first = b.find_element(By.CSS_SELECTOR, ".card:has(svg.spark) h3 a")
    title = first.text
    first.click()
    wait_for(lambda: "/indicators/" in b.current_url)
    assert b.find_element(By.TAG_NAME, "h1").text == title
    assert b.find_element(By.CSS_SELECTOR, "svg.chart title").get_attribute("textContent")
    indicator = b.current_url.split("/indicators/")[1].split("?")[0]
    shoot(b, "indicator")

    # Switch language: the same page, in English.
    b.find_element(By.CSS_SELECTOR, 'a[lang="en"]').click()
    wait_for(lambda: b.find_element(By.TAG_NAME, "html").get_attribute("lang") == "en")
    assert f"/indicators/{indicator}" in b.current_url
    assert b.find_element(By.TAG_NAME, "html").get_attribute("dir") == "ltr"
    shoot(b, "indicator-en")

    # Download the CSV and compare it with the SQL answer (as the public).
    b.find_element(By.CSS_SELECTOR, 'a[href*="/data.csv"]').click()
    path = wait_for(lambda: next((p for p in b.downloads.glob("*.csv")), None))
    wait_for(lambda: path.stat().st_size > 0 and not list(b.downloads.glob("*.crdownload")))
    raw = path.read_bytes()
    assert raw[:3] == b"\xef\xbb\xbf"
    rows = list(csv.reader(io.StringIO(raw[3:].decode())))
    columns, body = rows[0], rows[1:]
    period = body[0][columns.index("period")]
    schema = "official" if "release_id" in columns else "indicators"
    order = "province_code" if "province_code" in columns else "period"
    want_columns, want = sql(
        "public", f"SELECT * FROM {schema}.{indicator} WHERE period = %s ORDER BY {order}", (period,)
    )
    assert columns[: len(want_columns)] == want_columns
    assert len(body) == len(want)
    value = want_columns.index("value")
    for got, expected in zip(body, want):
        if expected[value] is None:
            assert got[value] == ""
        else:
            assert abs(float(got[value]) - float(expected[value])) < 1e-6

    # The scorecard as the public, then sign in as tehran.
    b.get(base + "/units")
    assert len(b.find_elements(By.CSS_SELECTOR, "tbody tr")) >= 10
    shoot(b, "units")
    b.find_element(By.CSS_SELECTOR, 'a[href^="/signin"]').click()
    b.find_element(By.ID, "user").send_keys("tehran")
    b.find_element(By.ID, "password").send_keys("tehran")
    b.find_element(By.CSS_SELECTOR, "form.signin button").click()
    wait_for(lambda: "tehran" in b.find_element(By.CSS_SELECTOR, ".who").text)
    b.get(base + "/units")
    rows = b.find_elements(By.CSS_SELECTOR, "tbody tr")
    assert len(rows) == 1 and "تهران" in rows[0].text
    shoot(b, "units-tehran")
    rows[0].find_element(By.CSS_SELECTOR, "th a").click()
    wait_for(lambda: b.current_url.endswith("/units/23"))
    assert "تهران" in b.find_element(By.TAG_NAME, "h1").text
    shoot(b, "unit")
    b.get(base + "/indicators/active_insured")
    table = b.find_element(By.CSS_SELECTOR, "#units ~ .scroll table, section[aria-labelledby=units] table")
    assert len(table.find_elements(By.CSS_SELECTOR, "tbody tr")) == 1
    # Another province by URL: not found.
    b.get(base + "/units/01")
    assert "پیدا نشد" in b.find_element(By.TAG_NAME, "h1").text
    b.get(base + "/office")
    shoot(b, "office-tehran")

    # Nothing was asked of any other host.
    urls = requested_urls(b)
    assert urls
    for url in urls:
        assert url.startswith(base) or url.startswith("data:"), url
