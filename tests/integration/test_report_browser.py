"""The report and `stedi serve` in a real browser: Debian's headless Chromium, driven by Playwright.

Checked as a person would meet them: no console error, no request leaving the page (the file, or the
local server, serves everything), the lineage and every chart drawn with content and legible (no text cut
at a picture's edge, no axis labels on top of each other or the same twice), and the SQL box at the top of
the page, inside its margins, answering a query with its rows, refusing a write, and downloading the CSV.
The server makes the report once per state: a page loaded again, or a query, makes nothing; a run does.
"""

from __future__ import annotations

import csv
import io
import shutil
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse
from stedi.serve.server import ReportServer

from support import Batches, built, rows

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if CHROMIUM is None:
        pytest.fail("headless Chromium is needed for the browser tests: `make setup-dev` installs Debian's "
                    "chromium package", pytrace=False)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # root in a container: Chromium's sandbox needs user namespaces it may not have
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def lake(tmp_path_factory: pytest.TempPathFactory, batches: Batches) -> Lakehouse:
    return built(tmp_path_factory.mktemp("browser") / "lake", batches.first, batches.second)


class Watched:
    """A page with its console errors and every request it made."""

    def __init__(self, browser: Any) -> None:
        self.page = browser.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: self.requests.append(r.url))


def assert_drawn(page: Any) -> None:
    """The lineage and every chart: an SVG with a size and marks in it."""
    svgs = page.locator("svg")
    assert svgs.count() >= 5
    for i in range(svgs.count()):
        svg = svgs.nth(i)
        box = svg.bounding_box()
        assert box is not None and box["width"] > 20 and box["height"] > 20, i
        assert svg.locator("path, rect, circle, line, polygon, ellipse, text").count() > 0, i
    lineage = page.locator("#lineage svg")
    assert lineage.count() == 1
    for name in ("customer_landing", "customer_trusted", "machine_learning_curated"):
        assert lineage.locator(f"text=/{name}/").count() >= 1, name


# Per chart: texts outside the picture's box (cut off), and per axis: labels that overlap or repeat (of those
# shown: Vega hides a label it drops for overlapping with opacity 0).
LEGIBILITY = """() => {
  const out = {cut: [], overlapping: [], repeated: []};
  const shown = t => t.textContent.trim() && parseFloat(getComputedStyle(t).opacity) > 0;
  const inside = (r, box) => r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1
                             && r.bottom <= box.bottom + 1;
  document.querySelectorAll(".figure svg").forEach((svg, i) => {
    const box = svg.getBoundingClientRect();
    svg.querySelectorAll("text").forEach(t => {
      if (shown(t) && !inside(t.getBoundingClientRect(), box)) out.cut.push(i + ": " + t.textContent);
    });
    svg.querySelectorAll("g.role-axis-label").forEach(axis => {
      const labels = [...axis.querySelectorAll("text")].filter(shown);
      const names = labels.map(t => t.textContent);
      if (new Set(names).size !== names.length) out.repeated.push(i + ": " + names.join(" | "));
      labels.forEach((a, j) => labels.slice(j + 1).forEach(b => {
        const p = a.getBoundingClientRect(), q = b.getBoundingClientRect();
        if (p.left < q.right - 0.5 && q.left < p.right - 0.5 && p.top < q.bottom - 0.5 && q.top < p.bottom - 0.5)
          out.overlapping.push(i + ": " + a.textContent + " / " + b.textContent);
      }));
    });
  });
  return out;
}"""


def assert_legible(page: Any, lake: Lakehouse) -> None:
    """No chart text cut or overlapping, no axis label twice; the latest run's id as it is (not upper-cased)."""
    assert page.evaluate(LEGIBILITY) == {"cut": [], "overlapping": [], "repeated": []}
    [(latest,)] = rows(lake, "select run_id from reconciliation order by run_at desc limit 1")
    assert page.inner_text("#quality h4 code") == latest


def test_the_report_file_renders_offline(browser: Any, lake: Lakehouse, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    lake.report(out)
    watched = Watched(browser)
    watched.page.goto(out.as_uri())
    watched.page.wait_for_load_state("load")
    assert watched.errors == []
    assert [u for u in watched.requests if u != out.as_uri() and not u.startswith("data:")] == []
    assert_drawn(watched.page)
    assert_legible(watched.page, lake)
    watched.page.close()


@pytest.fixture
def served(lake: Lakehouse) -> Iterator[ReportServer]:
    server = ReportServer(lake, port=0)
    server.start()
    yield server
    server.shutdown()
    server.server_close()


# The page's content box: the main column inside its padding.
CONTENT = """() => {
  const main = document.querySelector("main"), box = main.getBoundingClientRect(), style = getComputedStyle(main);
  return {left: box.left + parseFloat(style.paddingLeft), right: box.right - parseFloat(style.paddingRight)};
}"""


def assert_box_first(page: Any) -> None:
    """The SQL box is seen without scrolling, inside the page's margins, and linked first in the navigation."""
    assert page.evaluate("window.scrollY") == 0
    height = page.viewport_size["height"]
    content = page.evaluate(CONTENT)
    for part in ("#sql h2", "#sql-query", "#sql-run"):
        box = page.locator(part).bounding_box()
        assert box is not None and 0 <= box["y"] and box["y"] + box["height"] <= height, (part, box, height)
        assert content["left"] - 0.5 <= box["x"] and box["x"] + box["width"] <= content["right"] + 0.5, (part, box)
    assert page.locator("nav a").first.get_attribute("href") == "#sql"
    assert page.locator("#sql").bounding_box()["y"] < page.locator("#lineage").bounding_box()["y"]


def test_the_served_report_and_its_sql_box(browser: Any, lake: Lakehouse, served: ReportServer) -> None:
    watched = Watched(browser)
    page = watched.page
    page.goto(served.url)
    assert_box_first(page)
    assert_drawn(page)
    assert_legible(page, lake)
    assert served.renders == 1
    page.reload()
    assert_box_first(page)
    assert served.renders == 1  # the same state: the page kept, not made again

    query = "select customer_key, count(*) as n from machine_learning_curated group by 1 order by 2 desc, 1 limit 7"
    page.fill("#sql-query", query)
    page.click("#sql-run")
    page.wait_for_selector("#sql-result table")
    shown = [[cell.inner_text() for cell in row.locator("td").all()]
             for row in page.locator("#sql-result tbody tr").all()]
    expected = [[str(v) for v in r.values()] for r in lake.sql(query).to_pylist()]
    assert shown == expected and len(shown) == 7
    assert page.inner_text("#sql-status") == "7 rows"

    with page.expect_download() as download:
        page.click("#sql-csv")
    text = Path(download.value.path()).read_text()
    assert list(csv.reader(io.StringIO(text))) == [["customer_key", "n"], *expected]

    page.fill("#sql-query", "drop table machine_learning_curated")
    page.click("#sql-run")
    page.wait_for_selector("#sql-status.error")
    assert page.inner_text("#sql-status").startswith("error: only queries are allowed")
    assert lake.describe("machine_learning_curated").rows > 0

    origin = served.url.rstrip("/")
    assert [u for u in watched.requests if not u.startswith(origin) and not u.startswith("data:")] == []
    assert served.renders == 1  # queries make no report
    # the failed write answered 400, which Chromium logs; nothing else may be an error
    assert [e for e in watched.errors if "400" not in e] == []
    page.close()


def test_a_run_makes_the_served_page_anew(browser: Any, batches: Batches, tmp_path: Path) -> None:
    """A page is kept while the lakehouse stays as it is, and made again once a run changed it."""
    lake = built(tmp_path / "lake", batches.first)
    server = ReportServer(lake, port=0)
    server.start()
    try:
        page = Watched(browser).page
        page.goto(server.url)
        first = lake.state().run_id
        assert first is not None and first in page.inner_text("header") and server.renders == 1
        page.reload()
        assert server.renders == 1
        lake.ingest(batches.second)
        lake.run()
        second = lake.state().run_id
        assert second is not None and second != first
        page.reload()
        assert server.renders == 2 and second in page.inner_text("header")
        rows_now = lake.describe("machine_learning_curated").rows
        assert f"{rows_now:,} rows" in page.inner_text("#table-machine_learning_curated .facts")
        page.goto(f"{server.url}?as_of={first}")  # a past state: its own page, made once
        assert server.renders == 3 and first in page.inner_text("header")
        page.goto(server.url)
        assert server.renders == 3 and second in page.inner_text("header")  # both kept
        page.close()
    finally:
        server.shutdown()
        server.server_close()


def test_the_server_answers_only_on_its_own_host(served: ReportServer) -> None:
    request = urllib.request.Request(served.url, headers={"Host": "attacker.example:80"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 421
    assert served.server_address[0] == "127.0.0.1"


def test_stedi_serve_on_the_command_line(lake: Lakehouse) -> None:
    """The command a person runs: it says where it listens, on 127.0.0.1, and serves the report with its box."""
    import os
    import re
    import signal
    import subprocess

    from support import STEDI, TEST_KEY

    process = subprocess.Popen([str(STEDI), "--home", str(lake.settings.home), "serve", "--port", "0"],
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY})
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"at (http://127\.0\.0\.1:\d+/) \(Ctrl-C stops\)", line)
        assert found, line
        with urllib.request.urlopen(found.group(1), timeout=60) as response:
            html = response.read().decode()
            assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
        assert '<section id="sql"' in html and '<section id="lineage">' in html
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
