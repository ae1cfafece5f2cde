"""`stedi report` (issue 17): one self-contained HTML page whose figures are the tables' own, in any
state, with no direct identifier anywhere in it."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest

from stedi import EngineError, Lakehouse, __version__
from stedi.report import render_report
from stedi.tables import TABLES

from support import Batches, rows, stedi_process

# A customer whose records are quarantined (wrong types) and a record that is not JSON, both naming them:
# the report shows masked examples of them and must not show who they are.
QUARANTINED = {"customerName": "Quentin Quarantaine", "email": "quentin.q@quarantine.example",
               "phone": "+1 (415) 555-0199", "birthDay": "1971-07-13",
               "serialNumber": "0b6a4c1e-9d1f-4f7e-8a35-2c4f0e9b7d13"}
BAD_LINES = [
    json.dumps({**QUARANTINED, "registrationDate": "1655564376361", "lastUpdateDate": 1655564376361,
                "shareWithResearchAsOfDate": 1655564376361}),
    '{"customerName": "Quentin Quarantaine", "email": "quentin.q@quarantine.example", "phone": 4155550199, '
    '"birthDay": "1971-07-13", "serialNumber": "0b6a4c1e-9d1f-4f7e-8a35-2c4f0e9b7d13", "lastUpdateDate": 1',
]


@pytest.fixture(scope="module")
def two_days(tmp_path_factory: pytest.TempPathFactory, batches: Batches) -> tuple[Lakehouse, str, str]:
    """Day one, then day two with two damaged customer records: (the lakehouse, day one's run, day two's)."""
    home = tmp_path_factory.mktemp("report") / "lake"
    lake = Lakehouse(home, max_quarantine_share=0.5)
    lake.ingest(batches.first)
    first = lake.run().run_id
    bad = tmp_path_factory.mktemp("bad") / "customer" / "customer-bad.json"
    bad.parent.mkdir(parents=True)
    bad.write_text("\n".join(BAD_LINES) + "\n", encoding="utf-8")
    lake.ingest(batches.second, bad.parent)
    second = lake.run().run_id
    return lake, first, second


@pytest.fixture(scope="module")
def page(two_days: tuple[Lakehouse, str, str]) -> str:
    return render_report(two_days[0])


def section(page: str, anchor: str) -> str:
    """The HTML of the section with id `anchor` (up to the next section of the same level or the end)."""
    start = page.index(f'<section id="{anchor}"')
    depth, at = 0, start
    for match in re.finditer(r"<section\b|</section>", page[start:]):
        depth += 1 if match.group(0) == "<section" else -1
        if depth == 0:
            at = start + match.end()
            break
    return page[start:at]


def table_rows(fragment: str) -> list[list[str]]:
    """The cells of every body row of the HTML tables in `fragment`, as text."""
    body = "".join(re.findall(r"<tbody>(.*?)</tbody>", fragment, flags=re.S))
    return [[html.unescape(re.sub(r"<[^>]+>", "", cell)).strip()
             for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]


def number(text: str) -> int:
    return int(text.replace(",", ""))


def count(lake: Lakehouse, query: str, as_of: str | None = None) -> int:
    return int(lake.sql(query, as_of=as_of).column(0)[0].as_py())


def test_the_page_is_self_contained(page: str) -> None:
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, flags=re.I)
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(?:https?:)?//", page, flags=re.I)
    assert "<script" not in page and "<link" not in page and "<iframe" not in page
    assert "<?xml" not in page and "<!DOCTYPE svg" not in page  # inline SVG, not a document in a document
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids))  # many inline SVGs: no id twice, or one chart would clip another
    for target in re.findall(r'href="#([^"]+)"', page):  # every internal link lands somewhere
        assert target in ids, target
    assert len(page.encode()) < 3_000_000
    assert f"by stedi {__version__} from" in page


def test_every_section_has_real_content(two_days: tuple[Lakehouse, str, str], page: str) -> None:
    lake = two_days[0]
    lineage = section(page, "lineage")
    nodes = dict(re.findall(r'<g id="lineage-node\d+" class="node">\s*<title>([^<]+)</title>(.*?)</g>\s*</g>',
                            lineage, flags=re.S))
    for info in lake.tables():  # a node per table, with its rows, linking to its section
        assert f'href="#table-{info.name}"' in nodes[info.name]
        assert f">{info.rows:,} rows<" in nodes[info.name]
        assert f'id="table-{info.name}"' in page
    for source in ("customer", "accelerometer", "step_trainer"):
        assert f"files:{source}" in nodes
    for info in lake.tables():
        part = section(page, f"table-{info.name}")
        assert f"{info.rows:,} rows" in part and str(info.snapshot_id) in part
        for column in TABLES[info.name].columns:
            assert f"<code>{column.name}</code>" in part
        assert "class=\"marks\"" in part  # rows across runs
        if info.rows:
            assert len(table_rows(part)) > len(TABLES[info.name].columns)  # the columns and sample rows
    for name in ("funnel", "quality", "data"):
        charts = re.findall(r'<svg[^>]*class="marks".*?</svg>', section(page, name), flags=re.S)
        assert charts and all(re.search(r'class="mark-(?:rect|line|symbol)', c) for c in charts), name
    data = section(page, "data")
    assert data.count('class="marks"') == 3  # one customer over time, distributions, readings per day
    assert "role-mark" in section(page, "quality")


def test_funnel_figures_equal_the_tables(two_days: tuple[Lakehouse, str, str], page: str) -> None:
    lake = two_days[0]
    expected = [
        [count(lake, "select count(distinct email) from customer_landing"),
         count(lake, "select count(*) from accelerometer_landing"),
         count(lake, "select count(*) from step_trainer_landing")],
        [count(lake, "select count(*) from customer_trusted"),
         count(lake, "select count(*) from accelerometer_trusted"),
         count(lake, "select count(*) from step_trainer_landing s where exists "
                     "(select 1 from customer_trusted c where c.serialNumber = s.serialNumber)")],
        [count(lake, "select count(*) from customers_curated"),
         count(lake, "select count(*) from accelerometer_trusted a where exists "
                     "(select 1 from customers_curated c where c.email = a.user)"),
         count(lake, "select count(*) from step_trainer_trusted")],
        [count(lake, "select count(distinct customer_key) from machine_learning_curated"),
         count(lake, "select count(*) from (select distinct customer_key, sensorReadingTime, x, y, z "
                     "from machine_learning_curated)"),
         count(lake, "select count(*) from (select distinct customer_key, sensorReadingTime, distanceFromObject "
                     "from machine_learning_curated)")],
    ]
    shown = table_rows(section(page, "funnel"))
    assert [[number(r[1]), number(r[3]), number(r[5])] for r in shown] == expected
    for before, after, row in zip(expected[:-1], expected[1:], shown[1:], strict=True):  # left out at each step
        assert [number(row[2]), number(row[4]), number(row[6])] == [b - a for b, a in zip(before, after, strict=True)]
    assert number(shown[-1][7]) == count(lake, "select count(*) from machine_learning_curated")
    assert expected[0][0] > expected[1][0] > 0 and expected[0][1] > expected[1][1]  # the data does filter


def test_quality_shows_reconciliation_and_masked_quarantine(two_days: tuple[Lakehouse, str, str], page: str) -> None:
    lake, _, second = two_days
    quality = section(page, "quality")
    latest = table_rows(quality)[:3]
    figures = lake.reconcile()
    assert [r[0] for r in latest] == [f["source"] for f in figures]
    for shown, recorded in zip(latest, figures, strict=True):
        # the balance's terms; the warn rules are shown apart, rule by rule (issue 17)
        assert [number(v) for v in shown[1:6]] == [recorded[k] for k in ("read", "kept", "filtered", "quarantined",
                                                                          "duplicates")]
        assert shown[6] in ("true", "false") and "warnings" not in quality.split("Quarantine")[0]
    assert second in quality
    reasons = rows(lake, "select reason, count(*) from customer_quarantine group by reason")
    assert reasons  # the damaged records were quarantined
    quarantine_rows = [r for r in table_rows(quality) if len(r) == 4]
    for reason, records in reasons:
        row = next(r for r in quarantine_rows if r[0] == "customer" and r[1] == reason)
        assert number(row[2]) == records and "customer-bad.json" in row[3]
    assert "q***@q***.example" in quality  # the example is shown, masked
    assert "keeps no per-run history of its quality rules" not in quality  # the rules' counts per run are shown
    assert "birthday_plausible" in quality and "distance_plausible" in quality


def test_no_direct_identifier_appears(two_days: tuple[Lakehouse, str, str], page: str) -> None:
    lake = two_days[0]
    people = rows(lake, "select customerName, email, phone, birthDay, serialNumber from customer_landing")
    values = {v for person in people for v in person if v} | set(QUARANTINED.values()) | {"4155550199"}
    keys = {r[0] for r in rows(lake, "select distinct customer_key from machine_learning_curated")}
    text = html.unescape(page).lower()
    assert values and keys
    leaked = sorted(v for v in values if str(v).lower() in text)
    assert not leaked
    assert not [k for k in keys if k in text]  # pseudonyms are shortened too
    assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", re.sub(r"\w\*\*\*@\w\*\*\*", "", text))


def test_a_past_state_gives_its_own_figures(two_days: tuple[Lakehouse, str, str], page: str) -> None:
    lake, first, _ = two_days
    past = render_report(lake, as_of=first)
    assert f"run {first}" in past
    then = count(lake, "select count(*) from accelerometer_landing", as_of=first)
    now = count(lake, "select count(*) from accelerometer_landing")
    assert then < now
    assert number(table_rows(section(past, "funnel"))[0][3]) == then
    assert number(table_rows(section(page, "funnel"))[0][3]) == now
    assert f">{then:,} rows<" in section(past, "lineage")
    # the history as of then: one run of reconciliation, no quarantine yet
    assert "No record is quarantined in this state." in section(past, "quality")


def test_a_lakehouse_with_only_some_tables_built(tmp_path: Path, batches: Batches) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(batches.first)
    lake.run(["accelerometer_trusted"])  # and what it needs: no step trainer table, nothing curated
    page = render_report(lake)
    assert "not built in this state" in section(page, "table-machine_learning_curated")
    assert ">not built<" in section(page, "lineage")
    funnel = {r[0]: r for r in table_rows(section(page, "funnel"))}
    assert list(funnel) == ["landed", "consented to research (customer_trusted)"]  # what can be counted
    assert number(funnel["landed"][1]) == count(lake, "select count(distinct email) from customer_landing")
    assert number(funnel["landed"][3]) == count(lake, "select count(*) from accelerometer_landing")
    assert funnel["landed"][5] == "–"  # step_trainer_landing was not built
    assert number(funnel["consented to research (customer_trusted)"][1]) == count(
        lake, "select count(*) from customer_trusted")
    assert "machine_learning_curated holds no rows in this state." in section(page, "data")
    assert 'class="marks"' in section(page, "data")  # readings per day of the accelerometer tables
    assert "not built in this state" not in section(page, "table-accelerometer_trusted")


def test_without_the_quality_checks_history(batches: Batches, tmp_path: Path) -> None:
    """A lakehouse without the per-rule history (made by a stedi before it, or the table dropped): its chart
    is left out, the rest is made. (The table is dropped from the catalog: removing it from TABLES would
    reorder that dict for every later test.)"""
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(batches.first)
    lake.run()
    lake.catalog.open_for_writing()
    assert lake.catalog.drop(TABLES["quality_checks"])
    page = render_report(lake)
    assert "keeps no per-run history of its quality rules" in section(page, "quality")
    assert '<section id="lineage">' in page and 'id="table-machine_learning_curated"' in page


def test_lakehouse_report_writes_the_file(two_days: tuple[Lakehouse, str, str], tmp_path: Path) -> None:
    lake, first, _ = two_days
    where = lake.report()  # default: report.html in the current folder
    assert Path(where) == Path.cwd() / "report.html" and Path(where).read_text().startswith("<!DOCTYPE html>")
    out = tmp_path / "deep" / "past.html"
    assert lake.report(out, as_of=first) == str(out) and f"run {first}" in out.read_text()
    assert oct(out.stat().st_mode & 0o777) == oct(0o644)


def test_the_command(two_days: tuple[Lakehouse, str, str], tmp_path: Path) -> None:
    lake, first, _ = two_days
    out = tmp_path / "report.html"
    done = stedi_process(lake.settings.home, "report", "--out", out, "--as-of", first)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"wrote {out} (") and f"run {first}" in out.read_text()
    unknown = stedi_process(lake.settings.home, "report", "--out", out, "--as-of", "no-such-tag")
    assert unknown.returncode == 1 and unknown.stderr.startswith("error: 'no-such-tag' names no tag, run or time")
    empty = tmp_path / "bin"
    empty.mkdir()
    no_dot = stedi_process(lake.settings.home, "report", "--out", tmp_path / "x.html", env={"PATH": str(empty)})
    assert no_dot.returncode == 1 and "install graphviz" in no_dot.stderr.lower()
    assert not (tmp_path / "x.html").exists()


def test_no_lakehouse(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="nothing has landed in"):
        Lakehouse(tmp_path / "nothing").report(tmp_path / "r.html")


def test_missing_graphviz_is_an_engine_error(two_days: tuple[Lakehouse, str, str],
                                             monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EngineError, match="Graphviz, which is not installed"):
        render_report(two_days[0])
