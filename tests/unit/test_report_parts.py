"""The report's pure parts: masks of what it shows of people, its SQL's declared tables, its lineage graph."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from importlib import resources

import pytest

from stedi import models
from stedi.report import mask
from stedi.report.data import TableFacts, needs, query_text
from stedi.report.lineage import dot_source
from stedi.tables import TABLES

PERSON = {"customerName": "Santosh Clayton", "email": "Santosh.Clayton@test.com", "phone": "801-555-1212",
          "birthDay": "1965-04-01", "serialNumber": "50f7b4f3-7af5-4b07-a421-7b902c8d2b7c"}


def test_sample_rows_are_masked_column_by_column() -> None:
    shown = mask.row({**PERSON, "registrationDate": 1655564376361, "shareWithPublicAsOfDate": None,
                      "customer_key": "5b19008c0e8c" + "a" * 52})
    assert shown == {"customerName": "S*** C***", "email": "S***@t***.com", "phone": "***-***-1212",
                     "birthDay": "1965-**-**", "serialNumber": "50f7…", "registrationDate": 1655564376361,
                     "shareWithPublicAsOfDate": None, "customer_key": "5b19008c0e8c…"}
    assert mask.birthday("1st of May") == "****" and mask.phone("12") == "***" and mask.name("  ") == "***"


@pytest.mark.parametrize("raw", [
    json.dumps(PERSON),  # a whole record
    json.dumps({**PERSON, "phone": 8015551212}),  # a wrongly typed phone
    json.dumps(PERSON)[:-40],  # cut short (invalid_json), inside the serial number
    json.dumps([PERSON["customerName"], PERSON["email"], PERSON["phone"]]),  # not an object
    'junk Santosh.Clayton@test.com, call +1 (801) 555-1212 {"customerName": "Santosh Clayton"',
    json.dumps({"customerName": "O'Brien \"Bo\" Smith", "email": "o.b@x.org"}),  # escaped quotes
])
def test_raw_text_shows_no_identifier(raw: str) -> None:
    shown = mask.text(raw)
    for value in [*PERSON.values(), "8015551212", "O'Brien", "o.b@x.org", "Clayton"]:
        assert value not in shown, (value, shown)
    assert "customerName" in shown or "[" in shown or "junk" in shown  # what is wrong stays readable


def test_raw_text_keeps_what_is_not_personal() -> None:
    raw = '{"user": "a.b@c.com", "timestamp": "1655564115075", "x": 1.5, "y": "1.5", "z": true}'
    assert mask.text(raw) == '{"user": "a***@c***.com", "timestamp": "1***", "x": 1.5, "y": "1.5", "z": true}'
    assert mask.text('{"sensorReadingTime": 1655564115075, "distanceFromObject": -3}') == \
        '{"sensorReadingTime": 1655564115075, "distanceFromObject": -3}'  # epoch ms are not phone numbers


def test_each_query_declares_the_tables_it_reads() -> None:
    folder = resources.files("stedi.report").joinpath("sql")
    names = [f.name[:-4] for f in folder.iterdir() if f.name.endswith(".sql")]
    names += [f"funnel/{f.name[:-4]}" for f in folder.joinpath("funnel").iterdir() if f.name.endswith(".sql")]
    assert len(names) > 15
    for name in names:
        fill = {"table": "customer_quarantine", "source": "customer", "time_column": "run_at", "limit": 1,
                "examples": 1, "bins": 2}
        declared = needs(name, **{k: str(v) for k, v in fill.items()})
        assert set(declared) == set(models.parse(query_text(name).format(**fill))[0]), name
        assert all(t in TABLES or t == "quality_checks" for t in declared), name


def test_the_lineage_graph_links_every_table() -> None:
    facts = {name: TableFacts(t, name != "runs", 5 if name != "runs" else None, None, None)
             for name, t in TABLES.items()}
    dot = dot_source(facts, {"customer": (2, 1_500_000)})
    for name in TABLES:
        assert f'URL="#table-{name}"' in dot
    assert '"files:customer" [label="customer\\n2 files, 1.5 MB"' in dot
    assert '"customer_trusted" -> "customers_curated";' in dot
    assert 'label="runs\\nnot built"' in dot


def test_a_count_of_one_is_singular() -> None:
    from stedi.report.page import _plural

    facts = {name: TableFacts(t, True, 1, None, None) for name, t in TABLES.items()}
    dot = dot_source(facts, {"customer": (1, 900)})
    assert '[label="customer\\n1 file, 900 B"' in dot and '[label="customer_landing\\n1 row"' in dot
    assert " 1 files" not in dot and " 1 rows" not in dot
    assert (_plural(1, "row"), _plural(2, "row"), _plural(None, "row")) == ("1 row", "2 rows", "– rows")


def test_the_cli_starts_without_the_report_libraries() -> None:
    import subprocess
    import sys

    code = ("import sys, stedi.cli.main; "
            "print(sorted(m for m in ('altair', 'vl_convert', 'jinja2') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def _axis_labels(svg: str) -> list[list[str]]:
    """The labels of each axis of a chart's SVG."""
    return [re.findall(r"<text[^>]*>([^<]*)</text>", group)
            for group in re.findall(r'class="mark-text role-axis-label"[^>]*>(.*?)</g>', svg)]


@pytest.mark.parametrize("seconds", [0.2, 3, 40, 700, 5 * 3600, 30 * 3600, 9 * 86400, 400 * 86400])
def test_run_history_ticks_are_distinct_and_hold_every_run(seconds: float) -> None:
    """Runs a fraction of a second to a year apart: every tick label differs (runs seconds apart had four
    ticks labelled with the same minute), the ticks are few enough for the chart, and span every run."""
    from stedi.report import charts, timeaxis

    start = datetime(2026, 12, 7, 20, 40, 22, 217833, tzinfo=UTC)
    times = [start + timedelta(seconds=seconds * i) for i in range(4)]
    for width in (260, 360):
        axis = timeaxis.axis(times, width)
        labels = axis.labels()
        assert len(set(labels)) == len(labels) >= 2, labels
        assert len(labels) <= max(2, width // 60) and axis.domain[0] <= times[0] and times[-1] <= axis.domain[1]
    runs = [{"run_id": f"r{i}", "started_at": t.isoformat(), "run_at": t.isoformat(), "command": "run",
             "action": "built", "rows_out": 10 + i, "source": "customer", "rule": "r", "rows": i}
            for i, t in enumerate(times)]
    for svg, width in ((charts.rows_by_run("customer_landing", runs), charts.SMALL["width"]),
                       (charts.rule_counts(runs), charts.WIDTH - 200)):
        assert _axis_labels(svg)[0] == timeaxis.axis(times, width).labels()  # drawn as planned, none dropped


def test_one_day_of_readings_sits_between_its_neighbours() -> None:
    from stedi.report import timeaxis

    assert timeaxis.axis([date(2022, 6, 18)] * 3, 380, "day").labels() == ["2022-06-17", "2022-06-18", "2022-06-19"]
    assert timeaxis.axis(["2026-12-07T23:59:50+00:00", "2026-12-08T00:00:20+00:00"], 260).days == \
        "2026-12-07 to 2026-12-08"
