"""expire_and_clean: one snapshot left, every unreferenced file under the table gone, nothing else touched.

The scenario is the one right-to-erasure needs: a customer is in the first build, withdraws consent, and
the tables are rebuilt without them; the old snapshots' files still hold their rows until cleaned.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from stedi import TABLES, Lakehouse, StorageError
from stedi.iceberg.maintenance import CleanReport, expire_and_clean
from stedi.storage.files import local_path

from support import rows, write_jsonl

T0 = 1_600_000_000_000  # 2020-09-13: inside every quality check's range
SECRET = "zz-erased@example.com"  # sorts last: the upper bound of every string stat it is in
KEEP = "keep@example.com"
SELECT = ["accelerometer_trusted"]  # needs no pseudonym key, and builds customer_trusted on the way
QUERY = "select * from accelerometer_trusted order by user, timestamp"


@pytest.fixture(autouse=True)
def pseudonym_key(monkeypatch: pytest.MonkeyPatch) -> None:
    # machine_learning_curated may require it (only the all-tables test builds that table)
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", "test-key-0123456789abcdef0123456789abcdef")


def customer(email: str, updated: int = 1, consent: bool = True) -> dict[str, Any]:
    return {"customerName": f"Name {email}", "email": email, "phone": "8015550100", "birthDay": "1990-01-01",
            "serialNumber": f"SN-{email}", "registrationDate": T0, "lastUpdateDate": T0 + updated,
            "shareWithResearchAsOfDate": T0 if consent else None, "shareWithPublicAsOfDate": None,
            "shareWithFriendsAsOfDate": None}


def reading(user: str, t: int) -> dict[str, Any]:
    return {"user": user, "timestamp": T0 + t, "x": 0.5, "y": 1.5, "z": -2.0}


def land(lake: Lakehouse, src: Path, source: str, name: str, records: list[dict[str, Any]]) -> None:
    lake.ingest(write_jsonl(src / source / name, records))  # the folder name says the source


@pytest.fixture
def src(tmp_path: Path) -> Path:
    return tmp_path / "src"


@pytest.fixture
def built(lake: Lakehouse, src: Path) -> Lakehouse:
    """Four builds: SECRET's rows are only in the first snapshot's files; old files are orphaned."""
    land(lake, src, "customer", "c1.json", [customer(SECRET), customer(KEEP)])
    land(lake, src, "accelerometer", "a1.json", [reading(SECRET, 1), reading(KEEP, 2)])
    lake.run(SELECT)
    land(lake, src, "customer", "c2.json", [customer(SECRET, updated=5, consent=False)])  # withdraws consent
    lake.run(SELECT)
    land(lake, src, "accelerometer", "a2.json", [reading(KEEP, 3)])
    lake.run(SELECT)
    lake.run(SELECT, full_refresh=True)
    return lake


def ice(lake: Lakehouse, name: str) -> Any:
    table = lake.catalog.load(TABLES[name])
    assert table is not None
    return table


def files_under(lake: Lakehouse, name: str) -> dict[str, int]:
    """Every file under the table's location, with its size."""
    root = local_path(ice(lake, name).location())
    return {os.path.join(d, f): os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(root) for f in fs}


def referenced(lake: Lakehouse, name: str) -> set[str]:
    """What the current state needs, found the way a reader finds it (scan planning for data files)."""
    table = ice(lake, name)
    paths = {table.metadata_location}
    snapshot = table.current_snapshot()
    if snapshot is not None:
        paths.add(snapshot.manifest_list)
        paths |= {m.manifest_path for m in snapshot.manifests(table.io)}
        paths |= {task.file.file_path for task in table.scan().plan_files()}
    return {os.path.normpath(local_path(p)) for p in paths}


def holding(paths: list[str], value: str) -> list[str]:
    """The files that contain `value`: Parquet files by their values, the others by their bytes."""
    found = []
    for path in paths:
        if path.endswith(".parquet"):
            columns = pq.read_table(path).to_pydict().values()
            if any(value in column for column in columns):
                found.append(path)
        elif value.encode() in Path(path).read_bytes():
            found.append(path)
    return found


def test_keeps_only_the_current_snapshot_and_the_rows(built: Lakehouse) -> None:
    before = ice(built, "accelerometer_trusted")
    current = before.current_snapshot().snapshot_id
    assert len(before.metadata.snapshots) == 4
    expected = [(KEEP, T0 + 2, 0.5, 1.5, -2.0), (KEEP, T0 + 3, 0.5, 1.5, -2.0)]
    assert rows(built, QUERY) == expected

    report = expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)

    assert isinstance(report, CleanReport)
    assert report.table == "accelerometer_trusted" and report.snapshots_expired == 3
    after = ice(built, "accelerometer_trusted")
    assert [s.snapshot_id for s in after.metadata.snapshots] == [current]
    assert after.current_snapshot().snapshot_id == current
    assert list(after.metadata.refs) == ["main"]
    assert rows(built, QUERY) == expected
    assert rows(built, "select count(*) from accelerometer_trusted") == [(2,)]
    assert after.scan().to_arrow().num_rows == 2  # pyiceberg reads it too, from the remaining files


def test_deletes_exactly_the_unreferenced_files(built: Lakehouse) -> None:
    before = files_under(built, "accelerometer_trusted")
    report = expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    assert report is not None
    after = files_under(built, "accelerometer_trusted")

    needed = referenced(built, "accelerometer_trusted")
    assert set(after) == needed  # nothing needed is gone, nothing unneeded is left
    current_json = local_path(ice(built, "accelerometer_trusted").metadata_location)
    assert set(after) - set(before) == {current_json}  # written by the expiry's commit
    gone = set(before) - set(after)
    assert gone == set(before) - needed
    assert report.files_deleted == len(gone) > 0
    assert report.bytes_deleted == sum(before[p] for p in gone)
    assert [p for p in after if p.endswith(".metadata.json")] == [current_json]
    old_json = [p for p in before if p.endswith(".metadata.json")]
    assert len(old_json) >= 5 and all(p not in after for p in old_json)  # the catalog names only the new one


def test_a_value_only_old_snapshots_had_is_gone(built: Lakehouse) -> None:
    for name in ("accelerometer_trusted", "customer_trusted"):
        table = ice(built, name)
        first = table.metadata.snapshots[0].snapshot_id
        old_files = [local_path(t.file.file_path) for t in table.scan(snapshot_id=first).plan_files()]
        assert holding(old_files, SECRET), "the first build held the erased customer"
        assert holding(list(files_under(built, name)), SECRET)

        expire_and_clean(built.catalog, TABLES[name], grace_seconds=0)

        assert not any(os.path.exists(p) for p in old_files)
        assert holding(list(files_under(built, name)), SECRET) == []
        assert SECRET not in str(rows(built, f"select * from {name}"))


def test_removes_directories_left_empty(built: Lakehouse) -> None:
    root = Path(local_path(ice(built, "accelerometer_trusted").location()))
    runs_before = sorted(p.name for p in (root / "data").iterdir())
    assert len(runs_before) == 4  # one folder per build

    expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)

    live = {Path(local_path(t.file.file_path)).parent
            for t in ice(built, "accelerometer_trusted").scan().plan_files()}
    assert set((root / "data").iterdir()) == live
    assert (root / "metadata").is_dir() and root.is_dir()


def test_a_second_call_deletes_nothing(built: Lakehouse) -> None:
    expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    files = files_under(built, "accelerometer_trusted")

    again = expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)

    assert again == CleanReport("accelerometer_trusted", 0, 0, 0)
    assert files_under(built, "accelerometer_trusted") == files


def test_a_later_run_commits_on_top(built: Lakehouse, src: Path) -> None:
    expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    kept = ice(built, "accelerometer_trusted").current_snapshot().snapshot_id

    land(built, src, "accelerometer", "a3.json", [reading(KEEP, 4)])
    built.run(SELECT)

    table = ice(built, "accelerometer_trusted")
    assert table.current_snapshot().parent_snapshot_id == kept
    assert [r[1] for r in rows(built, QUERY)] == [T0 + 2, T0 + 3, T0 + 4]
    report = expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    assert report is not None and report.snapshots_expired == 1 and report.files_deleted > 0
    assert [r[1] for r in rows(built, QUERY)] == [T0 + 2, T0 + 3, T0 + 4]


def test_touches_nothing_outside_the_table(built: Lakehouse) -> None:
    home = Path(built.settings.home)
    outside = {str(p): p.read_bytes() for p in home.rglob("*")
               if p.is_file() and "accelerometer_trusted" not in p.parts and p.name != "catalog.db"}
    stray = home / "warehouse" / "stedi" / "stray.txt"
    stray.write_text("not a table's")

    expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)

    assert {str(p): p.read_bytes() for p in home.rglob("*")
            if p.is_file() and "accelerometer_trusted" not in p.parts
            and p.name not in ("catalog.db", "stray.txt")} == outside
    assert stray.read_text() == "not a table's"
    assert len(ice(built, "customer_trusted").metadata.snapshots) == 3  # its history is its own


def test_a_table_never_built_gives_none(lake: Lakehouse) -> None:
    assert expire_and_clean(lake.catalog, TABLES["customers_curated"], grace_seconds=0) is None
    assert lake.catalog.load(TABLES["customers_curated"]) is None  # and it was not created either


def test_a_table_without_snapshot_keeps_only_its_metadata_json(lake: Lakehouse) -> None:
    table = lake.catalog.ensure(TABLES["customers_curated"])
    root = Path(local_path(table.location()))
    junk = root / "data" / "20200101T000000-dead" / "part-0.parquet"
    junk.parent.mkdir(parents=True)
    junk.write_bytes(b"orphan")
    (root / "metadata" / "00009-orphan.metadata.json").write_text("{}")

    report = expire_and_clean(lake.catalog, TABLES["customers_curated"], grace_seconds=0)

    assert report == CleanReport("customers_curated", 0, 2, len(b"orphan") + 2)
    assert [str(p) for p in root.rglob("*") if p.is_file()] == [local_path(table.metadata_location)]
    assert not (root / "data").exists()
    assert ice(lake, "customers_curated").scan().to_arrow().num_rows == 0


def test_history_table_keeps_every_appended_file(built: Lakehouse) -> None:
    """reconciliation is appended to by every run: all its data files stay live."""
    before = rows(built, "select * from reconciliation order by run_id, source")
    data = [p for p in files_under(built, "reconciliation") if p.endswith(".parquet")]
    assert len(data) == 4

    report = expire_and_clean(built.catalog, TABLES["reconciliation"], grace_seconds=0)

    assert report is not None and report.snapshots_expired == 3
    assert all(os.path.exists(p) for p in data)
    assert rows(built, "select * from reconciliation order by run_id, source") == before


def test_branches_on_old_snapshots_are_dropped_and_tags_kept(built: Lakehouse) -> None:
    """A branch stedi does not know of would keep old rows reachable: dropped. A tag names a state someone
    keeps on purpose (issue 16): its snapshot and files stay (an erasure rewrites it first: test_tags.py)."""
    table = ice(built, "accelerometer_trusted")
    first = table.metadata.snapshots[0].snapshot_id
    tagged = {t.file.file_path for t in table.scan(snapshot_id=first).plan_files()}
    table.manage_snapshots().create_tag(first, "audit").create_branch(first, "old").commit()

    report = expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)

    assert report is not None and report.snapshots_expired == 2
    after = ice(built, "accelerometer_trusted")
    assert sorted(after.metadata.refs) == ["audit", "main"] and len(after.metadata.snapshots) == 2
    assert after.metadata.refs["audit"].snapshot_id == first
    assert tagged and all(os.path.exists(local_path(p)) for p in tagged)
    assert after.scan(snapshot_id=first).to_arrow().num_rows > 0


def test_refuses_a_location_shared_with_another_table(built: Lakehouse) -> None:
    from stedi.iceberg.schema import iceberg_schema

    table = ice(built, "accelerometer_trusted")
    schema = iceberg_schema(TABLES["accelerometer_trusted"].columns)
    built.catalog.iceberg.create_table(("stedi", "intruder"), schema,
                                       location=table.location().rstrip("/") + "/intruder")
    files = files_under(built, "accelerometer_trusted")

    with pytest.raises(StorageError, match="shares its location"):
        expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    assert files_under(built, "accelerometer_trusted") == files


def test_every_table_of_a_full_lake(lake: Lakehouse, src: Path) -> None:
    land(lake, src, "customer", "c1.json", [customer(SECRET), customer(KEEP)])
    land(lake, src, "accelerometer", "a1.json", [reading(SECRET, 1), reading(KEEP, 2)])
    land(lake, src, "step_trainer", "s1.json",
         [{"sensorReadingTime": T0 + 2, "serialNumber": f"SN-{KEEP}", "distanceFromObject": 10}])
    lake.run()
    lake.run(full_refresh=True)
    counts = {name: rows(lake, f"select count(*) from {name}") for name in TABLES}

    for table in TABLES.values():
        report = expire_and_clean(lake.catalog, table, grace_seconds=0)
        assert report is not None and report.snapshots_expired >= 1
        assert len(ice(lake, table.name).metadata.snapshots) == 1

    assert {name: rows(lake, f"select count(*) from {name}") for name in TABLES} == counts
    assert lake.run().tables  # builds on top of the cleaned tables


def test_no_manifest_of_the_current_snapshot_names_the_erased_value(built: Lakehouse) -> None:
    expire_and_clean(built.catalog, TABLES["accelerometer_trusted"], grace_seconds=0)
    table = ice(built, "accelerometer_trusted")
    bounds = [value
              for manifest in table.current_snapshot().manifests(table.io)
              for entry in manifest.fetch_manifest_entry(table.io, discard_deleted=False)
              for stats in (entry.data_file.lower_bounds, entry.data_file.upper_bounds)
              for value in (stats or {}).values()]
    # string bounds are cut to 16 bytes (an upper bound's last one incremented): look for the first 15
    assert not [value for value in bounds if SECRET.encode()[:15] in value]
