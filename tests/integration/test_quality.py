"""Data quality through the whole pipeline: every landing record accounted for, bad ones quarantined
with a reason, rules with actions, and trusted tables unaffected by any of it."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stedi import Lakehouse, QualityError
from stedi.tables import TABLES, build_order

from support import FIXTURES, rows

EDGE = FIXTURES / "edge"
DERIVED = [t.name for t in build_order() if t.kind == "derived"]
GOOD_READING = {"user": "alice@test.com", "timestamp": 1655564409000, "x": 0.25, "y": 0.5, "z": 0.75}


def tables(lake: Lakehouse, names: list[str]) -> dict[str, Counter[tuple[Any, ...]]]:
    return {name: Counter(rows(lake, f"select * from {name}")) for name in names}


def quarantine(lake: Lakehouse, source: str) -> list[tuple[Any, ...]]:
    return rows(lake, f"select file, position, reason from {source}_quarantine order by file, position")


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[tuple[Any, ...]]]:
    lake = Lakehouse(tmp_path_factory.mktemp("baseline") / "lake")
    lake.ingest(EDGE)
    lake.run()
    return tables(lake, DERIVED)


def lake_with(home: Path, source: str, name: str, content: bytes, **settings: Any) -> Lakehouse:
    """The edge fixtures plus one more landed file."""
    lake = Lakehouse(home, max_quarantine_share=settings.pop("max_quarantine_share", 0.5), **settings)
    lake.ingest(EDGE)
    extra = home.parent / "extra" / source / name
    extra.parent.mkdir(parents=True, exist_ok=True)
    extra.write_bytes(content)
    lake.ingest(extra)
    return lake


def line(record: Any) -> bytes:
    return json.dumps(record).encode() + b"\n"


GOOD = line(GOOD_READING)
# One small file per defect class: (source, content, expected quarantine (position, reason)).
DEFECTS = {
    "truncated_json": ("accelerometer", GOOD + b'{"user": "alice@test.com", "timestamp": 16555\n' + GOOD,
                       [(2, "invalid_json")]),
    "not_an_object": ("accelerometer", GOOD + b'[1, 2, 3]\n"a string"\n', [(2, "not_an_object"),
                                                                          (3, "not_an_object")]),
    "missing_user": ("accelerometer", line({"timestamp": 1655564409000, "x": 1.0}) + GOOD, [(1, "missing_key")]),
    "null_timestamp": ("accelerometer", line({**GOOD_READING, "timestamp": None}), [(1, "missing_key")]),
    "customer_without_email": ("customer", line({"customerName": "No Email", "serialNumber": "SN-X",
                                                 "lastUpdateDate": 1}), [(1, "missing_key")]),
    "string_for_number": ("accelerometer", line({**GOOD_READING, "timestamp": "1655564409000"}),
                          [(1, "wrong_type")]),
    "list_for_string": ("step_trainer", line({"sensorReadingTime": 1655564401000, "serialNumber": ["SN-ALICE"],
                                              "distanceFromObject": 1}), [(1, "wrong_type")]),
    "float_for_integer": ("step_trainer", line({"sensorReadingTime": 1655564401000.5, "serialNumber": "SN-ALICE",
                                                "distanceFromObject": 1}), [(1, "wrong_type")]),
    "bool_for_double": ("accelerometer", line({**GOOD_READING, "x": True}), [(1, "wrong_type")]),
    "int32_overflow": ("step_trainer", line({"sensorReadingTime": 1655564401000, "serialNumber": "SN-ALICE",
                                             "distanceFromObject": 2**31}), [(1, "out_of_range")]),
    "int64_overflow": ("accelerometer", GOOD.replace(b"1655564409000", b"99999999999999999999"),
                       [(1, "out_of_range")]),
    "invalid_utf8": ("customer", b'{"customerName": "Bad \xff\xfe", "email": "x@test.com", "serialNumber": "S", '
                                 b'"lastUpdateDate": 1}\n', [(1, "invalid_utf8")]),
    "nul_bytes": ("accelerometer", b"\x00" * 100_000, [(1, "invalid_json")]),
}


@pytest.mark.parametrize("case", list(DEFECTS))
def test_each_defect_is_quarantined_with_its_reason(case: str, tmp_path: Path,
                                                    baseline: dict[str, Counter[tuple[Any, ...]]]) -> None:
    source, content, expected = DEFECTS[case]
    lake = lake_with(tmp_path / "lake", source, f"{source}-{case}.json", content)
    report = lake.run()
    assert quarantine(lake, source) == [(f"{source}/{source}-{case}.json", pos, reason) for pos, reason in expected]
    messages = [m for (m,) in rows(lake, f"select message from {source}_quarantine")]
    assert messages and all(messages), "every quarantined record says what is wrong"
    figures = {f.source: f for f in report.reconciliation}
    assert all(f.balanced for f in figures.values())
    assert figures[source].quarantined == len(expected)
    # The trusted and curated tables hold exactly what they hold without the bad file (the good readings
    # of alice in the same file add one accelerometer reading, which we take out again).
    got = tables(lake, DERIVED)
    extra = GOOD_READING["user"], GOOD_READING["timestamp"], *(GOOD_READING[k] for k in "xyz")
    got["accelerometer_trusted"] -= Counter({extra: got["accelerometer_trusted"][extra]})
    assert got == baseline


def test_raw_text_position_and_run_id_are_recorded(tmp_path: Path) -> None:
    bad = b'{"user": "alice@test.com", "timestamp": "soon", "x": 1.0}'
    lake = lake_with(tmp_path / "lake", "accelerometer", "a.json", GOOD + bad + b"\n" + GOOD)
    report = lake.run()
    [(file, position, reason, message, raw, run_id)] = rows(lake, "select * from accelerometer_quarantine")
    assert (file, position, reason, raw, run_id) == ("accelerometer/a.json", 2, "wrong_type", bad.decode(),
                                                      report.run_id)
    assert "timestamp" in message and "string" in message


def test_a_huge_line_is_quarantined_without_loading_it(tmp_path: Path) -> None:
    huge = b'{"user": "alice@test.com", "timestamp": 1655564409000, "note": "' + b"x" * (50 << 20) + b'"}\n'
    lake = lake_with(tmp_path / "lake", "accelerometer", "huge.json", GOOD + huge + GOOD)
    lake.run()
    [(position, reason, raw)] = rows(lake, "select position, reason, raw from accelerometer_quarantine")
    assert (position, reason) == (2, "too_large")
    assert len(raw) < 5000 and "truncated" in raw


@pytest.mark.parametrize("variant", ["array", "bom", "crlf", "no_final_newline", "array_bom_crlf"])
def test_every_landing_format_gives_the_same_rows(variant: str, tmp_path: Path) -> None:
    records = [GOOD_READING, {**GOOD_READING, "timestamp": 1655564409001, "x": -1.0}]
    text = "\n".join(json.dumps(r) for r in records) + "\n"
    content = {
        "array": json.dumps(records, indent=2),
        "bom": "\ufeff" + text,
        "crlf": text.replace("\n", "\r\n"),
        "no_final_newline": text.rstrip("\n"),
        "array_bom_crlf": "\ufeff" + json.dumps(records, indent=1).replace("\n", "\r\n"),
    }[variant].encode()
    lake = lake_with(tmp_path / "lake", "accelerometer", f"{variant}.json", content)
    report = lake.run()
    assert quarantine(lake, "accelerometer") == []
    got = rows(lake, "select * from accelerometer_landing where timestamp >= 1655564409000 order by timestamp")
    assert got == [tuple(r.values()) for r in records]
    assert {f.source: f.read for f in report.reconciliation}["accelerometer"] == 12 + 2


def test_an_empty_file_is_read_as_no_records(tmp_path: Path) -> None:
    lake = lake_with(tmp_path / "lake", "accelerometer", "empty.json", b"")
    report = lake.run()
    assert {f.source: f.read for f in report.reconciliation}["accelerometer"] == 12
    assert quarantine(lake, "accelerometer") == []


def test_unknown_fields_are_kept_out_of_the_tables_and_reported(tmp_path: Path) -> None:
    lake = lake_with(tmp_path / "lake", "accelerometer", "extra.json",
                     line({**GOOD_READING, "battery": 0.9, "os": "android"}))
    messages: list[str] = []
    lake.run(progress=messages.append)
    assert quarantine(lake, "accelerometer") == []
    assert lake.sql("select * from accelerometer_landing limit 0").column_names == ["user", "timestamp", "x", "y", "z"]
    assert any("fields outside the schema" in m and "battery (1)" in m and "os (1)" in m for m in messages)
    state = lake.catalog.state(TABLES["accelerometer_landing"])
    assert state is not None and json.loads(state.summary["stedi.unknown-fields"]) == {"battery": 1, "os": 1}


def test_duplicates_and_superseded_versions_are_counted(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    figures = {f.source: f for f in lake.run().reconciliation}
    # customers: 14 records of 9 emails (dave, erin, frank, gina twice; hank's exact duplicate) -> 5;
    # kept: alice bob erin frank gina hank ivan; filtered: carol, dave (withdrew).
    assert (figures["customer"].read, figures["customer"].kept, figures["customer"].filtered,
            figures["customer"].duplicates) == (14, 7, 2, 5)
    assert figures["accelerometer"].duplicates == 1 and figures["step_trainer"].duplicates >= 1
    assert all(f.balanced and f.quarantined == 0 for f in figures.values())


def test_reconcile_lists_the_latest_run(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    first = lake.run()
    second = lake.run(full_refresh=True)
    latest = lake.reconcile()
    assert [r["source"] for r in latest] == ["customer", "accelerometer", "step_trainer"]
    assert {r["run_id"] for r in latest} == {second.run_id}
    assert {r["run_id"] for r in lake.reconcile(first.run_id)} == {first.run_id}
    assert lake.describe("reconciliation").rows == 6



def test_a_run_counts_only_what_changed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A run's filtered and duplicates are the last run's plus the change it counted: a rerun with nothing
    new counts nothing, a new reading is counted alone (over the new rows), and --full-refresh counts
    every source over its whole tables."""
    import stedi.pipeline.reconcile

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    first = lake.run()
    real = stedi.pipeline.reconcile.BuildCounts._delta
    counted: list[tuple[str, bool]] = []  # (landing table, counted whole)

    def counting(self: Any, terms: Any, was: Any, states: Any, new: Any, affected: Any) -> Any:
        counted.append((terms.landing, not was[terms.landing] and new == states[terms.landing].files))
        return real(self, terms, was, states, new, affected)

    monkeypatch.setattr(stedi.pipeline.reconcile.BuildCounts, "_delta", counting)
    second = lake.run()
    assert counted == [] and second.reconciliation == first.reconciliation
    assert {r["run_id"] for r in lake.reconcile()} == {second.run_id}  # still recorded, run by run

    new = tmp_path / "new" / "accelerometer" / "late.json"
    new.parent.mkdir(parents=True)
    new.write_bytes(line({**GOOD_READING, "timestamp": 1655564409001}))
    lake.ingest(new)
    third = {f.source: f for f in lake.run().reconciliation}
    # the customer's figures are carried; the step trainer's are counted in customers_curated, which
    # the new reading made grow: both count their change only
    assert counted == [("accelerometer_landing", False), ("step_trainer_landing", False)]
    before = {f.source: f for f in first.reconciliation}
    assert third["accelerometer"].read == before["accelerometer"].read + 1
    assert third["accelerometer"].kept == before["accelerometer"].kept + 1 and third["accelerometer"].balanced
    assert third["customer"] == before["customer"]

    counted.clear()
    lake.run(full_refresh=True)
    assert sorted(counted) == [("accelerometer_landing", True), ("customer_landing", True),
                               ("step_trainer_landing", True)]


@pytest.mark.parametrize("term", ["filtered", "duplicates"])
def test_a_miscounted_term_fails_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, term: str) -> None:
    """No term is the remainder of the others: one counted wrong (here, one too many accelerometer
    readings) breaks the balance and fails the run, its figures in the history."""
    import stedi.pipeline.reconcile

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    real = stedi.pipeline.reconcile.BuildCounts._delta

    def miscounting(self: Any, terms: Any, *args: Any) -> Any:
        delta = dict(real(self, terms, *args))
        if terms.landing == "accelerometer_landing":
            delta[term] += 1
        return delta

    monkeypatch.setattr(stedi.pipeline.reconcile.BuildCounts, "_delta", miscounting)
    with pytest.raises(QualityError, match="do not balance: accelerometer"):
        lake.run()
    [figures] = [f for f in lake.reconcile() if f["source"] == "accelerometer"]
    assert figures["balanced"] in ("false", False)


def test_a_miscount_that_balances_fails_the_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    """A reading counted as filtered instead of duplicate still balances; the recount catches it."""
    import stedi.pipeline.reconcile
    from stedi.errors import ReconciliationError

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    real = stedi.pipeline.reconcile.BuildCounts._delta

    def miscounting(self: Any, terms: Any, *args: Any) -> Any:
        delta = dict(real(self, terms, *args))
        if terms.landing == "accelerometer_landing":
            delta["filtered"] += 1
            delta["duplicates"] -= 1
        return delta

    monkeypatch.setattr(stedi.pipeline.reconcile.BuildCounts, "_delta", miscounting)
    with pytest.raises(ReconciliationError, match="accelerometer: filtered recorded"):
        lake.run()


# -- quality rules ------------------------------------------------------------------------------------
def test_a_quarantine_rule_moves_rows_and_leaves_the_rest(tmp_path: Path,
                                                          baseline: dict[str, Counter[tuple[Any, ...]]]) -> None:
    old = line({**GOOD_READING, "timestamp": 631152000000})  # 1990: before 2000
    lake = lake_with(tmp_path / "lake", "accelerometer", "old.json", old)
    lake.run()
    assert rows(lake, "select reason, position, message from accelerometer_quarantine") == [
        ("check:timestamp_in_range", None, "timestamp before 2000-01-01 or more than a day in the future")]
    assert tables(lake, DERIVED) == baseline


def test_a_warning_rule_keeps_the_customer_and_counts(tmp_path: Path) -> None:
    # A birthday after the customer registered (2022-06-18) is worth a warning, never worth losing a consent.
    old = {"customerName": "Old Timer", "email": "old@test.com", "phone": "1", "birthDay": "2023-05-01",
           "serialNumber": "SN-OLD", "registrationDate": 1655560000000, "lastUpdateDate": 1655560000000,
           "shareWithResearchAsOfDate": 1655560000000}
    lake = lake_with(tmp_path / "lake", "customer", "old.json", line(old))
    messages: list[str] = []
    figures = {f.source: f for f in lake.run(progress=messages.append).reconciliation}
    assert figures["customer"].warnings == 1
    assert any(m.strip().startswith("warning: 1 customer records") and "birthday_plausible" in m for m in messages)
    assert rows(lake, "select count(*) from customer_quarantine") == [(0,)]
    assert rows(lake, "select email from customer_trusted where email = 'old@test.com'") == [("old@test.com",)]


def test_a_fail_rule_stops_the_run_before_any_commit(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    lake.run()
    before = {t.name: t.snapshot_id for t in lake.tables() if t.name != "runs"}
    rule = home / "checks" / "step_trainer" / "no_bob.sql"
    rule.parent.mkdir(parents=True)
    rule.write_text("-- action: fail\n-- reason: bob's device must not report\n"
                    "select * from step_trainer where serialNumber = 'SN-BOB'\n")
    with pytest.raises(QualityError, match=r"check no_bob .* failed on 1 step_trainer records: bob's device"):
        lake.run()
    assert {t.name: t.snapshot_id for t in lake.tables() if t.name != "runs"} == before
    [failed] = [r for r in lake.history() if r["outcome"] == "failed"]  # only the history says it failed
    assert failed["table_name"] is None and "no_bob" in failed["error"]


def test_a_user_rule_replaces_a_default_of_the_same_name(tmp_path: Path) -> None:
    home = tmp_path / "lake"
    rule = home / "checks" / "customer" / "birthday_plausible.sql"
    rule.parent.mkdir(parents=True)
    rule.write_text("-- action: warn\n-- reason: never\nselect * from customer where false\n")
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    report = lake.run()
    [result] = [r for r in report.checks if r.check.name == "birthday_plausible"]
    assert (result.rows, result.check.reason) == (0, "never")


def test_too_much_quarantined_fails_the_run_and_commits_nothing(tmp_path: Path) -> None:
    bad = b"".join(line({**GOOD_READING, "timestamp": "x"}) for _ in range(2))  # 2 of 14: 14%
    lake = lake_with(tmp_path / "lake", "accelerometer", "bad.json", bad, max_quarantine_share=0.05)
    with pytest.raises(QualityError, match=r"2 of 14 accelerometer records \(14.3%\) would be quarantined.*"
                                           r"max_quarantine_share = 5%.*wrong_type \(2\)"):
        lake.run()
    assert not any(t.built for t in lake.tables() if t.name != "runs")  # only the failure is recorded
    assert [(r["outcome"], r["table_name"]) for r in lake.history()] == [("failed", None)]


def test_a_small_share_over_the_limit_is_not_shown_as_the_limit(tmp_path: Path) -> None:
    """A share above max_quarantine_share = 0% reads more than 0% (it read `(0.0%)`, "more than 0%")."""
    many = b"".join(line({**GOOD_READING, "timestamp": GOOD_READING["timestamp"] + i}) for i in range(2_100))
    many += line({**GOOD_READING, "timestamp": "x"})
    lake = lake_with(tmp_path / "lake", "accelerometer", "many.json", many, max_quarantine_share=0)
    with pytest.raises(QualityError) as failed:
        lake.run()
    found = re.search(r"(\d+) of ([\d,]+) accelerometer records \(([\d.]+)%\) would be quarantined, more than "
                      r"max_quarantine_share = 0%", str(failed.value))
    assert found, failed.value
    bad, total = int(found[1]), int(found[2].replace(",", ""))
    assert 0 < bad / total < 0.001 and float(found[3]) == pytest.approx(100 * bad / total, rel=0.01)


# -- the real data, made dirty -------------------------------------------------------------------------
@pytest.mark.slow
def test_a_dirty_copy_of_the_real_data_yields_exactly_the_clean_tables(tmp_path: Path, shared_data: Path,
                                                                       real_lake: Lakehouse) -> None:
    dirty = tmp_path / "dirty"
    shutil.copytree(shared_data, dirty)
    customers = [json.loads(x) for x in next((dirty / "customer" / "landing").glob("*.json")).read_text().splitlines()]
    consenting = [c for c in customers if c.get("shareWithResearchAsOfDate")][:20]
    older = [{**c, "lastUpdateDate": c["lastUpdateDate"] - 1000, "shareWithResearchAsOfDate": None,
              "phone": "0000000000"} for c in consenting]  # superseded versions
    accel_lines = next((dirty / "accelerometer" / "landing").glob("*.json")).read_text().splitlines()[:300]
    invalid = [b"{not json", b'{"user": "x@test.com", "timestamp": "yesterday"}', b"[]", b'{"x": 1.0}'] * 5
    (dirty / "customer" / "landing" / "customer-older-versions.json").write_text(
        "".join(json.dumps(c) + "\n" for c in older))
    (dirty / "accelerometer" / "landing" / "accelerometer-resent.json").write_text("\n".join(accel_lines) + "\n")
    (dirty / "accelerometer" / "landing" / "accelerometer-junk.json").write_bytes(b"\n".join(invalid) + b"\n")

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(dirty)
    figures = {f.source: f for f in lake.run().reconciliation}
    derived = [t for t in DERIVED]
    assert tables(lake, derived) == tables(real_lake, derived)
    assert figures["customer"].duplicates == 20 and figures["customer"].read == 956 + 20
    assert figures["accelerometer"].quarantined == 20 and figures["accelerometer"].duplicates == 300
    assert figures["accelerometer"].read == 81_273 + 300 + 20
    assert all(f.balanced for f in figures.values())


# -- property: whatever the damage, the run never crashes and always balances ---------------------------
MUTATIONS = st.sampled_from(["truncate", "swap_type", "drop_key", "junk", "bad_utf8", "huge_number", "nest",
                             "random_bytes", "crlf", "keep"])


def mutate(record: dict[str, Any], how: str, data: st.DataObject) -> bytes:
    text = json.dumps(record)
    key = data.draw(st.sampled_from(sorted(record)))
    if how == "truncate":
        return text[: data.draw(st.integers(0, max(0, len(text) - 1)))].encode()
    if how == "swap_type":
        return json.dumps({**record, key: data.draw(st.sampled_from([str(record[key]), [record[key]], True,
                                                                     None, 1.5, {"v": 1}]))}).encode()
    if how == "drop_key":
        return json.dumps({k: v for k, v in record.items() if k != key}).encode()
    if how == "junk":
        return text.encode() + data.draw(st.binary(min_size=1, max_size=8)).replace(b"\n", b"")
    if how == "bad_utf8":
        return text.encode().replace(b'"', b'"\xc3\x28', 1)
    if how == "huge_number":
        return json.dumps({**record, key: 10 ** data.draw(st.integers(19, 400))}).encode()
    if how == "nest":
        depth = data.draw(st.integers(1, 5000))
        return json.dumps({**record, key: None}).replace("null", "[" * depth + "]" * depth).encode()
    if how == "random_bytes":
        return data.draw(st.binary(min_size=1, max_size=40)).replace(b"\n", b"")
    if how == "crlf":
        return text.encode() + b"\r"
    return text.encode()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_random_damage_never_crashes_and_always_balances(tmp_path_factory: pytest.TempPathFactory,
                                                        data: st.DataObject) -> None:
    home = tmp_path_factory.mktemp("prop") / "lake"
    lake = Lakehouse(home, max_quarantine_share=1.0)
    lake.ingest(EDGE)
    readings = [{**GOOD_READING, "timestamp": 1655564409000 + i} for i in range(6)]
    lines = [mutate(r, data.draw(MUTATIONS), data) for r in readings]
    extra = home.parent / "in" / "accelerometer" / "accelerometer-damaged.json"
    extra.parent.mkdir(parents=True)
    extra.write_bytes(b"\n".join(lines) + b"\n")
    lake.ingest(extra)
    report = lake.run()
    figures = {f.source: f for f in report.reconciliation}
    assert all(f.balanced for f in figures.values())
    non_blank = sum(1 for x in lines if x.strip())
    assert figures["accelerometer"].read == 12 + non_blank


# -- the safety net and the command --------------------------------------------------------------------
def test_figures_that_do_not_balance_fail_the_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault injected into a table's SQL (every reading twice) is caught by the reconciliation."""
    import stedi.pipeline.derived

    real = stedi.pipeline.derived.table_sql

    def doubled(table: Any) -> str:
        sql = real(table)
        return f"select * from ({sql}) union all select * from ({sql})" if table.name == "accelerometer_trusted" \
            else sql

    monkeypatch.setattr(stedi.pipeline.derived, "table_sql", doubled)
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    with pytest.raises(QualityError, match=r"do not balance: accelerometer: read 12 != kept 16 \+ filtered 3"):
        lake.run()
    [figures] = [r for r in lake.reconcile() if r["source"] == "accelerometer"]
    assert figures["balanced"] == "false"


def test_reconcile_command_prints_the_documented_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from stedi.cli.main import main

    home = tmp_path / "lake"
    Lakehouse(home).ingest(EDGE)
    with pytest.raises(SystemExit) as exit_code:
        main(["--home", str(home), "reconcile"])
    assert exit_code.value.code == 1
    assert "error: no run has been reconciled yet; run `stedi run` first" in capsys.readouterr().err
    Lakehouse(home).run()
    with pytest.raises(SystemExit) as exit_code:
        main(["--home", str(home), "reconcile", "--format", "json"])
    assert exit_code.value.code == 0
    figures = json.loads(capsys.readouterr().out)
    assert [sorted(f) for f in figures] == [sorted(["source", "read", "kept", "filtered", "quarantined",
                                                    "duplicates"])] * 3
    assert figures[0] == {"source": "customer", "read": 14, "kept": 7, "filtered": 2, "quarantined": 0,
                          "duplicates": 5}


def test_the_latest_reconciliation_is_the_last_recorded_even_within_one_second(tmp_path: Path) -> None:
    """Runs can end within the same second: `reconcile()` still gives the last one's figures."""
    from stedi.pipeline.reconcile import Figures, record

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)  # (readers refuse a root where nothing has landed)
    for run_id in ("run-b", "run-a", "run-c"):  # recorded in this order, ids not in order
        record(lake.catalog, run_id, [Figures("customer", 1, 1, 0, 0, 0, 0)], {})
    assert {r["run_id"] for r in lake.reconcile()} == {"run-c"}
