"""Quality results people can act on: each rule's count per run (`quality_checks`), the records that broke a
`warn` rule kept (`quality_failures`), and the run summary's "Quality rules" block. Every count and row
is compared with the rule's own SQL run here, on DuckDB, over the landing tables."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from stedi import Lakehouse
from stedi.privacy.erasure import find_traces

from support import FIXTURES, assert_field_ids, rows, stedi_process, write_jsonl

EDGE = FIXTURES / "edge"
SHIPPED = Path(__import__("stedi").__file__).parent / "landing" / "checks"
# Two warn rules of the test's own, one per source, each matching several edge records.
OLD = "-- action: warn\n-- reason: born before 1994\nselect * from customer where birthDay < '1994'\n"
HIGH_X = "-- action: warn\n-- reason: x above 0.5\nselect * from accelerometer where x > 0.5\n"
NEWER = {"customerName": "Zed Older", "email": "zed@test.com", "phone": "8015550999", "birthDay": "1950-01-01",
         "serialNumber": "SN-ZED", "registrationDate": 1655560000000, "lastUpdateDate": 1655560000000,
         "shareWithResearchAsOfDate": 1655560000000}


def with_rules(home: Path, **rules: str) -> Lakehouse:
    """A lakehouse at `home` with rules `<source>__<name>=sql` in its checks folder and the edge data landed."""
    for key, sql in rules.items():
        source, name = key.split("__")
        path = home / "checks" / source / f"{name}.sql"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(sql)
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    return lake


def rule_sql(home: Path, source: str, rule: str) -> str:
    own = home / "checks" / source / f"{rule}.sql"
    return (own if own.exists() else SHIPPED / source / f"{rule}.sql").read_text()


def selected(lake: Lakehouse, source: str, sql: str) -> list[dict[str, Any]]:
    """The landing rows a rule's SQL selects, run here over the landing table (not by stedi's reader)."""
    landing: pa.Table = lake.sql(f"select * from {source}_landing")
    con = duckdb.connect()
    con.register(source, landing)
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description or []]
    found = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    con.close()
    return found


def recorded(lake: Lakehouse, run_id: str) -> dict[tuple[str, str], tuple[str, int]]:
    return {(r["source"], r["rule"]): (r["action"], r["rows"]) for r in lake.quality_checks(run_id)}


def independent(lake: Lakehouse, home: Path, run_id: str) -> dict[tuple[str, str], tuple[str, int]]:
    """Each recorded rule's count worked out here: a warn rule's rows over the landing table; a quarantine
    rule's rows are in the quarantine table under its reason."""
    out = {}
    for (source, rule), (action, _n) in recorded(lake, run_id).items():
        if action == "warn":
            out[(source, rule)] = (action, len(selected(lake, source, rule_sql(home, source, rule))))
        else:
            [(n,)] = rows(lake, f"select count(*) from {source}_quarantine where reason = 'check:{rule}'")
            out[(source, rule)] = (action, n)
    return out


def failures(lake: Lakehouse) -> Counter[tuple[Any, ...]]:
    """quality_failures as (source, rule, record's fields), a multiset."""
    return Counter((s, r, json.dumps(json.loads(raw), sort_keys=True))
                   for s, r, raw in rows(lake, "select source, rule, raw from quality_failures"))


def expected_failures(lake: Lakehouse, home: Path, rules: dict[tuple[str, str], str]) -> Counter[tuple[Any, ...]]:
    return Counter((source, rule, json.dumps(row, sort_keys=True))
                   for (source, rule), sql in rules.items() for row in selected(lake, source, sql))


def test_each_rule_is_counted_per_run_and_equals_its_own_sql(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    report = lake.run()
    counts = recorded(lake, report.run_id)
    # every rule of every source, the shipped ones with their 0s, none summed with another
    assert sorted(counts) == sorted([
        ("customer", "birthday_plausible"), ("customer", "consent_before_registration"),
        ("customer", "dates_in_range"), ("customer", "old"), ("accelerometer", "timestamp_in_range"),
        ("accelerometer", "values_plausible"), ("accelerometer", "high_x"), ("step_trainer", "distance_plausible"),
        ("step_trainer", "timestamp_in_range")])
    assert counts == independent(lake, home, report.run_id)
    assert counts[("customer", "old")] == ("warn", 5)  # alice, bob, carol, dave's two records
    assert counts[("accelerometer", "high_x")][1] > 0
    # the reconciliation's `warnings` is the sum of the warn rules' counts, kept for its history
    by_source = {f.source: f.warnings for f in report.reconciliation}
    assert by_source["customer"] == 5 and by_source["accelerometer"] == counts[("accelerometer", "high_x")][1]
    assert [(r.source, r.rule, r.rows) for r in report.rules if r.rows] == [
        ("customer", "old", 5), ("accelerometer", "high_x", counts[("accelerometer", "high_x")][1])]


def test_a_run_with_landing_up_to_date_records_the_same_counts(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    first = lake.run()
    second = lake.run()
    assert {t.table: t.status for t in second.tables}["customer_landing"] == "up to date"
    assert recorded(lake, second.run_id) == recorded(lake, first.run_id) == independent(lake, home, second.run_id)
    [(n,)] = rows(lake, "select count(distinct run_id) from quality_checks")
    assert n == 2
    assert lake.history()[0]["run_id"] == second.run_id


def test_failures_hold_exactly_the_records_a_warn_rule_selects(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    report = lake.run()
    rules = {("customer", "old"): OLD, ("accelerometer", "high_x"): HIGH_X}
    assert failures(lake) == expected_failures(lake, home, rules)
    assert sum(failures(lake).values()) > 5
    assert set(rows(lake, "select file, reason, run_id from quality_failures where rule = 'old'")) == {
        ("customer/customer-edge.json", "born before 1994", report.run_id)}
    # the records stay in their landing table and downstream: a warning never costs a consent
    assert rows(lake, "select count(*) from customer_trusted where email in ('alice@test.com', 'bob@test.com')") \
        == [(2,)]


def test_an_appended_batch_adds_its_counts_and_failures(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    first = lake.run()
    before = rows(lake, "select * from quality_failures where source = 'accelerometer'")
    lake.ingest(write_jsonl(tmp_path / "more" / "customer" / "customer-more.json", [NEWER]))
    grown = lake.run()
    status = {t.table: t.status for t in grown.tables}
    assert status["customer_landing"] == "appended" and status["accelerometer_landing"] == "up to date"
    assert [r for r in lake.history() if r["run_id"] == grown.run_id and r["table_name"] == "quality_failures"
            ][0]["action"] == "appended"
    counts = recorded(lake, grown.run_id)
    assert counts[("customer", "old")] == ("warn", recorded(lake, first.run_id)[("customer", "old")][1] + 1)
    assert counts == independent(lake, home, grown.run_id)
    rules = {("customer", "old"): OLD, ("accelerometer", "high_x"): HIGH_X}
    assert failures(lake) == expected_failures(lake, home, rules)  # no failure twice
    assert rows(lake, "select * from quality_failures where source = 'accelerometer'") == before  # untouched
    assert rows(lake, "select run_id from quality_failures where raw like '%zed@test.com%'") == [(grown.run_id,)]


def test_a_rebuilt_landing_table_replaces_its_failures_and_keeps_the_other_sources(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    first = lake.run()
    accelerometer = Counter(rows(lake, "select * from quality_failures where source = 'accelerometer'"))
    stricter = OLD.replace("'1994'", "'1992'")  # a changed rule: the customer landing table is read again
    (home / "checks" / "customer" / "old.sql").write_text(stricter)
    rebuilt = lake.run()
    assert {t.table: t.status for t in rebuilt.tables}["customer_landing"] == "built"
    assert failures(lake) == expected_failures(lake, home, {("customer", "old"): stricter,
                                                            ("accelerometer", "high_x"): HIGH_X})
    assert recorded(lake, rebuilt.run_id)[("customer", "old")] == ("warn", 2)  # alice, bob
    assert Counter(rows(lake, "select * from quality_failures where source = 'accelerometer'")) == accelerometer
    assert set(rows(lake, "select run_id from quality_failures where source = 'customer'")) == {(rebuilt.run_id,)}
    assert first.run_id != rebuilt.run_id
    # a full refresh rebuilds every landing table: the same failures, none twice
    lake.run(full_refresh=True)
    assert failures(lake) == expected_failures(lake, home, {("customer", "old"): stricter,
                                                            ("accelerometer", "high_x"): HIGH_X})


def test_a_run_killed_between_the_landing_commits_and_the_failures_converges(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    lake.run()
    lake.ingest(write_jsonl(tmp_path / "more" / "customer" / "customer-more.json", [NEWER]))
    killed = stedi_process(home, "run", kill_at="run:landing-committed@1")  # customer_landing grew; no failures
    assert killed.returncode != 0
    assert rows(lake, "select count(*) from customer_landing where email = 'zed@test.com'") == [(1,)]
    assert rows(lake, "select count(*) from quality_failures where raw like '%zed@test.com%'") == [(0,)]
    rerun = Lakehouse(home).run()
    assert {t.table: t.status for t in rerun.tables}["customer_landing"] == "built"  # read again, whole
    rules = {("customer", "old"): OLD, ("accelerometer", "high_x"): HIGH_X}
    assert failures(lake) == expected_failures(lake, home, rules)
    assert recorded(lake, rerun.run_id) == independent(lake, home, rerun.run_id)


def test_an_erasure_removes_the_persons_failures(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = with_rules(home, customer__old=OLD, accelerometer__high_x=HIGH_X)
    lake.run()
    alice = rows(lake, "select count(*) from quality_failures where raw like '%alice@test.com%'")[0][0]
    assert alice >= 2  # her customer record and readings broke the rules
    lake.erase(["alice@test.com"])
    assert rows(lake, "select count(*) from quality_failures where raw like '%alice@test.com%'") == [(0,)]
    assert rows(lake, "select count(*) from quality_failures where raw like '%SN-ALICE%'") == [(0,)]
    rules = {("customer", "old"): OLD, ("accelerometer", "high_x"): HIGH_X}
    assert failures(lake) == expected_failures(lake, home, rules)  # everyone else's failures stay
    assert find_traces(home, ["alice@test.com", "SN-ALICE"]) == []
    assert_field_ids(lake)


def test_the_run_summary_shows_quality_rules_apart_from_the_reconciliation(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    with_rules(home, customer__old=OLD)
    out = stedi_process(home, "run")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    heading = "Every landed record accounted for (read = kept + filtered + quarantined + duplicates):"
    block = text[text.index(heading):].split("\n\n")[0].splitlines()
    assert block[1].split() == ["source", "read", "kept", "filtered", "quarantined", "duplicates", "suppressed"]
    assert "warnings" not in text
    rules = text[text.index("\nQuality rules"):].strip().splitlines()
    assert rules[0].startswith("Quality rules (landed records each rule matched")
    assert rules[1].split() == ["source", "rule", "action", "rows"]
    assert [line.split() for line in rules[3:]] == [["customer", "old", "warn", "5"]]  # only rules that matched
    again = stedi_process(home, "run")  # up to date: the same block
    assert again.stdout[again.stdout.index("\nQuality rules"):] == text[text.index("\nQuality rules"):]
    shown = stedi_process(home, "reconcile")
    assert "warnings" not in shown.stdout.split("\n\n")[0]
    assert "customer  old" in shown.stdout and "Quality rules" in shown.stdout
