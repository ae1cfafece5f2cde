"""The report's pure parts: masks of what it shows of people, its SQL's declared tables, its lineage graph."""

from __future__ import annotations

import json
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
