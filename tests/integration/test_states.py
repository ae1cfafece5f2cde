"""Every state of the lakehouse can be seen, named, reproduced and restored (issue 16): time travel, tags,
export, erasure of tagged states, rollback. The states compared are the tables as they really were,
captured by reading them at the time (support.contents), never through the feature under test."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from stedi import Lakehouse
from stedi.errors import StateError, StorageError
from stedi.storage.files import local_path
from stedi.tables import TABLES

from support import Batches, Expected, assert_field_ids, contents, key_of, latest_figures, rows, stedi_process

DATA_TABLES = [name for name, t in TABLES.items() if t.kind != "history"]
KILLED = -9


def as_of(lake: Lakehouse, spec: str) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every data table as `stedi sql --as-of spec` answers it (a table not built then: no rows)."""
    state = lake.state(spec)
    return {name: Counter(tuple(r.values()) for r in lake.sql(f"select * from {name}", as_of=spec).to_pylist())
            if name in state.snapshots else Counter() for name in DATA_TABLES}


def metadata_refs(lake: Lakehouse, name: str) -> dict[str, Any]:
    """The refs of a table as any Iceberg reader sees them: its current metadata file."""
    ice = lake.catalog.load(TABLES[name], fresh=True)
    assert ice is not None
    return dict(json.loads(Path(local_path(ice.metadata_location)).read_text())["refs"])


@pytest.fixture
def two_days(tmp_path: Path, batches: Batches) -> tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]:
    """A lakehouse after day one (run R1, tables C1) and day two (run R2, tables C2)."""
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(batches.first)
    first = lake.run().run_id
    before = contents(lake)
    lake.ingest(batches.second)
    second = lake.run().run_id
    return lake, first, before, second, contents(lake)


def test_time_travel_answers_every_table_as_it_stood(two_days: tuple[Lakehouse, str, dict[str, Any], str,
                                                                      dict[str, Any]]) -> None:
    lake, first, c1, second, c2 = two_days
    assert c1 != c2
    assert as_of(lake, first) == c1
    assert as_of(lake, second) == c2
    ends = {r["run_id"]: r["ended_at"] for r in lake.history()}
    starts = {r["run_id"]: r["started_at"] for r in lake.history()}
    assert ends[first] < starts[second]
    assert as_of(lake, ends[first]) == c1  # a time: the state the last command ended by then left
    assert as_of(lake, datetime.now(UTC).isoformat()) == c2
    # the histories: the commands up to that state
    assert rows(lake, "select distinct run_id from runs") != [(first,)]
    assert lake.sql("select distinct run_id from runs", as_of=first).to_pylist() == [{"run_id": first}]
    assert lake.sql("select distinct run_id from reconciliation", as_of=first).to_pylist() == [{"run_id": first}]
    assert lake.state(first).snapshots == {r["table_name"]: r["snapshot_id"] for r in lake.history()
                                           if r["run_id"] == first}


def test_a_state_before_a_table_was_built_and_unknown_states(tmp_path: Path, batches: Batches) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(batches.first)
    only = lake.run(["customer_trusted"]).run_id
    lake.run()
    with pytest.raises(Exception, match=f"table machine_learning_curated was not built in run {only}"):
        lake.sql("select * from machine_learning_curated", as_of=only)
    assert lake.sql("select count(*) as n from customer_trusted", as_of=only).to_pylist() == \
        lake.sql("select count(*) as n from customer_trusted").to_pylist()
    with pytest.raises(StateError, match="'nope' names no tag, run or time of the lakehouse; the states that "
                                         "remain: 2 run"):
        lake.state("nope")
    with pytest.raises(StateError, match="no state of the lakehouse at 2020-01-01: the first recorded command "
                                         "ended at 20"):
        lake.state("2020-01-01")


def test_an_expired_state_says_which_remain(two_days: tuple[Lakehouse, str, dict[str, Any], str,
                                                            dict[str, Any]]) -> None:
    lake, first, c1, second, c2 = two_days
    lake.tag("day1", run=first)
    lake.optimize(retention_days=0, grace_minutes=0)
    optimized = lake.history(limit=1)[0]["run_id"]
    assert lake.history(limit=1)[0]["command"] == "optimize"
    with pytest.raises(StateError, match=f"run {second} is no longer available: table .*'s snapshot .* has been "
                                         rf"expired.*the states that remain: tags day1; 2 run\(s\) from {first} "
                                         rf"\(ended .*\) to {optimized}"):
        lake.sql("select 1", as_of=second)
    assert as_of(lake, "day1") == as_of(lake, first) == c1  # the tag kept it
    assert as_of(lake, optimized) == c2  # the compacted tables hold the same rows
    assert contents(lake) == c2


def test_tags_are_iceberg_refs_that_survive_runs_rebuilds_and_optimize(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, c1, second, c2 = two_days
    info = lake.tag("model-v1", run=first)
    assert (info.name, info.run_id, info.tables, info.complete) == ("model-v1", first, len(DATA_TABLES), True)
    snapshots = lake.state(first).snapshots
    for name in DATA_TABLES:  # what Spark, Athena or Trino read: a tag ref in the table's metadata
        assert metadata_refs(lake, name)["model-v1"] == {"snapshot-id": snapshots[name], "type": "tag"}
    # another Iceberg reader (pyiceberg's own SqlCatalog, through SQLAlchemy) reads the tagged rows by name
    from pyiceberg.catalog.sql import SqlCatalog

    theirs = SqlCatalog("stedi", **lake.settings.catalog_properties()).load_table(("stedi", "customers_curated"))
    tagged = theirs.snapshot_by_name("model-v1")
    assert tagged is not None
    assert Counter(tuple(r.values()) for r in theirs.scan(snapshot_id=tagged.snapshot_id).to_arrow().to_pylist()
                   ) == c1["customers_curated"]
    lake.tag("now")
    assert lake.tag("now").snapshots == lake.state().snapshots  # the same state again: nothing changes
    with pytest.raises(StateError, match="tag now already names another state"):
        lake.tag("now", run=first)
    for bad in ("main", "1abc", "a b", "2026-11-30"):
        with pytest.raises(StateError, match="cannot name a tag"):
            lake.tag(bad)

    lake.run(full_refresh=True)
    lake.optimize(retention_days=0, grace_minutes=0)
    assert [t.name for t in lake.tags()] == ["model-v1", "now"]
    assert as_of(lake, "model-v1") == c1
    assert as_of(lake, "now") == c2
    assert contents(lake) == c2

    assert lake.untag("now") == len(DATA_TABLES)
    assert "now" not in metadata_refs(lake, "machine_learning_curated")
    with pytest.raises(StateError, match="no tag 'now'; the tags are: model-v1"):
        lake.untag("now")


def test_export_reproduces_a_training_set_byte_for_byte(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]], tmp_path: Path) -> None:
    lake, first, c1, _second, _c2 = two_days
    lake.tag("train", run=first)
    manifest = lake.export("machine_learning_curated", tmp_path / "a", as_of="train")
    written = json.loads((tmp_path / "a" / "manifest.json").read_text())
    assert written["table"] == "machine_learning_curated" and written["tag"] == "train"
    assert written["run_id"] == first and written["snapshot_ids"] == lake.state("train").snapshots
    assert written["rows"] == sum(c1["machine_learning_curated"].values()) == manifest.rows > 0
    exported: Counter[tuple[Any, ...]] = Counter()
    for entry in written["files"]:
        data = (tmp_path / "a" / entry["path"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["sha256"] and len(data) == entry["bytes"]
        table = pq.read_table(tmp_path / "a" / entry["path"])
        assert table.num_rows == entry["rows"]
        exported.update(tuple(r.values()) for r in table.to_pylist())
    assert exported == c1["machine_learning_curated"]

    lake.optimize(retention_days=0, grace_minutes=0)  # files compacted, the tagged ones kept
    again = lake.export("machine_learning_curated", tmp_path / "b", as_of="train")
    assert [(f.rows, f.sha256) for f in again.files] == [(f.rows, f.sha256) for f in manifest.files]

    with pytest.raises(StorageError, match="is not an empty folder"):
        lake.export("machine_learning_curated", tmp_path / "a")
    with pytest.raises(StateError, match="runs is a history of runs"):
        lake.export("runs", tmp_path / "c")


def test_rollback_restores_a_run_and_a_run_then_converges(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]], expected: Expected) -> None:
    lake, first, c1, second, c2 = two_days
    report = lake.rollback(run=first)
    assert contents(lake) == c1
    assert {t.table: t.status for t in report.tables} == {name: "restored" for name in DATA_TABLES}
    back = [r for r in lake.history(limit=1)]
    assert {(r["command"], r["action"], r["outcome"]) for r in back} == {("rollback", "restored", "succeeded")}
    lake.verify_reconciliation()  # its figures, counted from the restored tables, are recorded
    assert all(f["balanced"] == "true" for f in lake.reconcile())
    assert as_of(lake, second) == c2  # the history is kept: the later state is still there

    lake.run()  # reads the landed files the restored state had not read
    assert contents(lake) == expected.tables == c2
    assert latest_figures(lake) == expected.figures

    lake.rollback(run=first)
    lake.rollback(run=second)  # and a rollback is undone by another
    assert contents(lake) == c2


def test_rollback_refuses_a_state_whose_files_are_gone(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, _c1, _second, c2 = two_days
    lake.tag("old", run=first)
    lake.run(full_refresh=True)  # today's tables in files of their own: the tagged ones are the tag's alone
    state = lake.state("old")
    from stedi.iceberg.refs import snapshot_state

    tagged = snapshot_state(lake.catalog, TABLES["machine_learning_curated"],
                            state.snapshots["machine_learning_curated"])
    assert tagged is not None and tagged.files
    Path(local_path(tagged.files[0])).unlink()
    with pytest.raises(StateError, match="tag old cannot be restored: table machine_learning_curated's data file "
                                         ".* is gone"):
        lake.rollback(tag="old")
    assert contents(lake) == c2  # nothing changed
    with pytest.raises(StateError, match="no tag 'nope'"):
        lake.rollback(tag="nope")
    with pytest.raises(StateError, match="no run 'nope' is recorded"):
        lake.rollback(run="nope")


def _person(lake: Lakehouse, spec: str) -> tuple[str, set[str]]:
    """A consenting customer with machine-learning rows in state `spec`, and the serial numbers only they have."""
    curated = lake.sql("select email from customers_curated", as_of=spec).to_pylist()
    keys = {r["customer_key"] for r in lake.sql("select customer_key from machine_learning_curated",
                                                as_of=spec).to_pylist()}
    email = min(r["email"] for r in curated if key_of(r["email"]) in keys)  # the keys are pseudonyms
    owners: dict[str, set[str]] = {}
    for r in lake.sql("select email, serialNumber from customer_landing", as_of=spec).to_pylist():
        owners.setdefault(r["serialNumber"], set()).add(r["email"].strip().lower())
    own = {s for s, who in owners.items() if who == {email.strip().lower()}}
    return email, own


def _without(table: Counter[tuple[Any, ...]], columns: list[str], email: str, serials: set[str]
             ) -> Counter[tuple[Any, ...]]:
    """The rows that name nobody erased (computed here, independently of stedi.privacy)."""
    person, key = email.strip().lower(), key_of(email)

    def names(row: tuple[Any, ...]) -> bool:
        for column, value in zip(columns, row, strict=True):
            if not isinstance(value, str):
                continue
            if column == "raw" and any(n in value.lower() for n in [person, *(s.lower() for s in serials)]):
                return True
            if column in ("email", "user") and value.strip().lower() == person:
                return True
            if (column == "serialNumber" and value in serials) or (column == "customer_key" and value == key):
                return True
        return False

    return Counter({r: n for r, n in table.items() if not names(r)})


def test_erasure_rewrites_tagged_states_and_rollback_to_them_stays_clean(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, c1, second, _c2 = two_days
    lake.tag("day1", run=first)
    lake.tag("untouched", run=second)
    email, serials = _person(lake, "day1")
    was = lake.state("day1").snapshots

    receipt = lake.erase([email])

    assert "day1" in receipt.tags_rewritten
    assert email not in json.dumps(receipt.__dict__)
    then = as_of(lake, "day1")
    expected = {name: _without(c1[name], TABLES[name].column_names, email, serials) for name in DATA_TABLES}
    assert then == expected
    assert then["machine_learning_curated"] != c1["machine_learning_curated"]  # the person had rows there
    moved = lake.state("day1").snapshots
    assert moved["machine_learning_curated"] != was["machine_learning_curated"]
    assert all(t.erasure == receipt.receipt_id for t in lake.tags())
    log = json.loads((Path(lake.settings.home) / "privacy" / "erasures.jsonl").read_text().splitlines()[-1])
    assert "day1" in log["tags_rewritten"]
    assert_field_ids(lake)  # the tagged states' files rewritten without the person, too

    with pytest.raises(StateError, match=f"run {first} is from before erasure {receipt.receipt_id}"):
        lake.rollback(run=first)
    lake.rollback(tag="day1")  # rewritten without the person: allowed
    assert contents(lake) == expected
    assert all(f["balanced"] == "true" for f in lake.reconcile())
    lake.verify_reconciliation()
    assert rows(lake, f"select count(*) from customer_landing where lower(email) = lower('{email}')") == [(0,)]


def test_a_rollback_killed_midway_is_finished_by_running_it_again(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, c1, _second, _c2 = two_days
    home = Path(lake.settings.home)
    killed = stedi_process(home, "rollback", "--run", first, kill_at="rollback:table-restored@3")
    assert killed.returncode == KILLED, killed.stderr
    assert contents(Lakehouse(home)) != c1  # three tables restored, the others not yet
    again = stedi_process(home, "rollback", "--run", first)
    assert again.returncode == 0, again.stderr
    assert contents(Lakehouse(home)) == c1


def test_a_tag_killed_midway_is_completed_by_tagging_again(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, c1, _second, _c2 = two_days
    home = Path(lake.settings.home)
    killed = stedi_process(home, "tag", "v1", "--run", first, kill_at="tag:table-tagged@4")
    assert killed.returncode == KILLED, killed.stderr
    [info] = Lakehouse(home).tags()
    assert (info.tables, info.complete) == (4, False)
    listed = stedi_process(home, "tags")
    assert "no (tag it again)" in listed.stdout
    assert stedi_process(home, "tag", "v1", "--run", first).returncode == 0
    [info] = Lakehouse(home).tags()
    assert (info.tables, info.complete) == (len(DATA_TABLES), True)
    assert as_of(Lakehouse(home), "v1") == c1


def test_an_erasure_killed_after_rewriting_a_tag_is_finished(
        two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]]) -> None:
    lake, first, c1, _second, _c2 = two_days
    lake.tag("day1", run=first)
    email, serials = _person(lake, "day1")
    home = Path(lake.settings.home)
    killed = stedi_process(home, "erase", "--email", email, kill_at="erase:tag-rewritten")
    assert killed.returncode == KILLED, killed.stderr
    again = stedi_process(home, "erase", "--email", email)
    assert again.returncode == 0, again.stderr
    log = json.loads((home / "privacy" / "erasures.jsonl").read_text().splitlines()[-1])
    assert log["tags_rewritten"] == ["day1"]
    assert as_of(Lakehouse(home), "day1") == {
        name: _without(c1[name], TABLES[name].column_names, email, serials) for name in DATA_TABLES}


def test_the_commands(two_days: tuple[Lakehouse, str, dict[str, Any], str, dict[str, Any]],
                      tmp_path: Path) -> None:
    lake, first, c1, second, c2 = two_days
    home = Path(lake.settings.home)
    count = sum(c1["machine_learning_curated"].values())
    out = stedi_process(home, "sql", "--as-of", first, "--format", "csv", "select count(*) as n from "
                        "machine_learning_curated")
    assert out.returncode == 0 and out.stdout.split() == ["n", str(count)], out.stderr
    assert stedi_process(home, "tag", "v1", "--run", first).returncode == 0
    listed = stedi_process(home, "tags", "--format", "json")
    assert [(t["tag"], t["run_id"], t["tables"]) for t in json.loads(listed.stdout)] == [
        ("v1", first, len(DATA_TABLES))]
    exported = stedi_process(home, "export", "machine_learning_curated", "--as-of", "v1", "--out", tmp_path / "x")
    assert exported.returncode == 0 and f"{count:,} rows of machine_learning_curated (tag v1" in exported.stdout
    rolled = stedi_process(home, "rollback", "--tag", "v1")
    assert rolled.returncode == 0 and "restored 12 tables" in rolled.stdout, rolled.stderr
    assert contents(Lakehouse(home)) == c1
    both = stedi_process(home, "rollback", "--tag", "v1", "--run", second)
    assert both.returncode == 2 and "give one of --run RUN_ID or --tag NAME" in both.stderr
    assert stedi_process(home, "untag", "v1").stdout.strip() == "removed tag v1 from 12 tables"
    expired = stedi_process(home, "sql", "--as-of", "v1", "select 1")
    assert expired.returncode == 1 and "error: 'v1' names no tag, run or time" in expired.stderr
    assert as_of(Lakehouse(home), second) == c2
