"""Incremental runs: each landed file is parsed once; the tables equal a full rebuild."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse
from stedi.generate import generate
from stedi.tables import TABLES

from support import assert_field_ids, key_of, rows, write_jsonl

pytestmark = pytest.mark.slow


def _split(data: Path, out: Path) -> tuple[Path, Path]:
    """The generated files as two batches: most files first, then the last file of each reading source
    (plus a file with one damaged record, so the quarantine grows too)."""
    first, second = out / "first", out / "second"
    for source in ("customer", "accelerometer", "step_trainer"):
        files = sorted((data / source / "landing").glob("*.json"))
        later = files[-1:] if source != "customer" and len(files) > 1 else []
        for f in files:
            target = (second if f in later else first) / source / f.name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(f, target)
    damaged = second / "step_trainer" / "step_trainer-late.json"
    damaged.parent.mkdir(parents=True, exist_ok=True)
    damaged.write_text('{"sensorReadingTime": 1, "serialNumber": "x", "distanceFromObject": "far"}\n'
                       + sorted((first / "step_trainer").glob("*.json"))[0].read_text().splitlines()[0] + "\n")
    return first, second


def _content(lake: Lakehouse, table: str) -> list[tuple[object, ...]]:
    columns = [c.name for c in TABLES[table].columns if c.name not in ("run_id", "run_at")]
    return rows(lake, f"select {', '.join(columns)} from {table} order by all")


@pytest.fixture(scope="module")
def batches(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    data = tmp_path_factory.mktemp("generated")
    generate(data, scale=0.3, seed=7)
    return _split(data, tmp_path_factory.mktemp("batches"))


def test_new_files_are_read_alone_and_appended(batches: tuple[Path, Path], tmp_path: Path, engine: str) -> None:
    first, second = batches
    lake = Lakehouse(tmp_path / "inc", engine=engine)
    lake.ingest(first)
    lake.run()
    before = {t.name: t.snapshot_id for t in lake.tables()}
    new_records = {s: sum(len(f.read_text().splitlines()) for f in (second / s).glob("*.json"))
                   for s in ("accelerometer", "step_trainer")}

    lake.ingest(second)
    report = {t.table: t for t in lake.run().tables}
    assert report["customer_landing"].status == "up to date"
    for source in ("accelerometer", "step_trainer"):
        landing = report[f"{source}_landing"]
        assert landing.status == "appended"
        assert landing.rows_in == new_records[source]  # only the new files were parsed
    assert report["step_trainer_landing"].quarantined == 1
    assert report["customer_trusted"].status == "up to date"  # its input did not change
    # Derived tables grow by the rows of the new rows (DuckDB; Spark builds tables in parallel and rebuilds)
    assert {report[t].status for t in ("accelerometer_trusted", "customers_curated", "step_trainer_trusted",
                                       "machine_learning_curated")} == {"appended" if engine == "duckdb" else "built"}

    full = Lakehouse(tmp_path / "full", engine=engine)
    full.ingest(first, second)
    full.run()
    for name, table in TABLES.items():
        if table.kind == "history":
            continue
        assert _content(lake, name) == _content(full, name), name
    assert [{k: v for k, v in f.items() if k not in ("run_id", "run_at")} for f in lake.reconcile()] == \
        [{k: v for k, v in f.items() if k not in ("run_id", "run_at")} for f in full.reconcile()]
    # one snapshot per table per run: the appended landing tables have exactly one more
    table = lake.catalog.load(TABLES["accelerometer_landing"])
    assert table is not None and len(table.metadata.snapshots) == 2
    assert before["accelerometer_landing"] != lake.describe("accelerometer_landing").snapshot_id
    # every file, of the build and of the appends, carries the tables' field ids (on either engine)
    assert_field_ids(lake)
    assert_field_ids(full)


def test_a_rewritten_or_removed_file_rebuilds_the_source(batches: tuple[Path, Path], tmp_path: Path) -> None:
    first, _second = batches
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(first)
    lake.run()
    landed = sorted((tmp_path / "lake" / "landing" / "accelerometer").glob("*.json"))
    landed[0].unlink()  # e.g. moved away by hand
    report = {t.table: t for t in lake.run().tables}
    assert report["accelerometer_landing"].status == "built"
    fresh = Lakehouse(tmp_path / "fresh")
    fresh.ingest(*landed[1:], source="accelerometer")
    fresh.ingest(first / "customer", first / "step_trainer")
    fresh.run()
    assert _content(lake, "accelerometer_landing") == _content(fresh, "accelerometer_landing")


def test_full_refresh_reads_every_file(batches: tuple[Path, Path], tmp_path: Path) -> None:
    first, second = batches
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(first)
    lake.run()
    lake.ingest(second)
    report = {t.table: t for t in lake.run(full_refresh=True).tables}
    assert report["accelerometer_landing"].status == "built"
    assert report["accelerometer_landing"].rows_in == lake.describe("accelerometer_landing").rows


def test_reading_in_batches_gives_the_same_tables(batches: tuple[Path, Path], tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Memory stays flat because landed files are read a batch at a time: one file per batch here."""
    import stedi.landing.reader

    first, second = batches
    whole = Lakehouse(tmp_path / "whole")
    whole.ingest(first, second)
    one = {t.table: t for t in whole.run().tables}
    monkeypatch.setattr(stedi.landing.reader, "BATCH_BYTES", 1)
    batched = Lakehouse(tmp_path / "batched")
    batched.ingest(first, second)
    many = {t.table: t for t in batched.run().tables}
    assert len(batched.describe("accelerometer_landing").columns) and \
        batched.describe("accelerometer_landing").files > whole.describe("accelerometer_landing").files
    for name, table in TABLES.items():
        if table.kind != "history":
            assert _content(batched, name) == _content(whole, name), name
    assert [(t.rows_in, t.rows_out, t.quarantined) for t in many.values()] == \
        [(t.rows_in, t.rows_out, t.quarantined) for t in one.values()]


def test_derived_tables_grow_only_where_their_inputs_grew(batches: tuple[Path, Path], tmp_path: Path) -> None:
    """New step trainer readings only: the tables built from them grow, the others stay; a new customer
    record updates everything downstream of customer_trusted, key by key (issue 15)."""
    first, _second = batches
    # the step trainer file split in two: its last 2,000 readings arrive later
    early, late = tmp_path / "early", tmp_path / "late" / "step_trainer"
    shutil.copytree(first, early)
    [step_file] = sorted((early / "step_trainer").glob("*.json"))
    lines = step_file.read_text().splitlines(keepends=True)
    step_file.write_text("".join(lines[:-2000]))
    late.mkdir(parents=True)
    (late / "step_trainer-late.json").write_text("".join(lines[-2000:]))

    lake = Lakehouse(tmp_path / "inc")
    lake.ingest(early)
    lake.run()
    before = {name: lake.describe(name).rows for name in ("step_trainer_trusted", "machine_learning_curated")}
    lake.ingest(late)
    report = {t.table: t.status for t in lake.run().tables}
    assert (report["accelerometer_trusted"], report["customers_curated"]) == ("up to date", "up to date")
    assert (report["step_trainer_trusted"], report["machine_learning_curated"]) == ("appended", "appended")

    full = Lakehouse(tmp_path / "full")
    full.ingest(first)
    full.run()
    for name in ("step_trainer_trusted", "machine_learning_curated"):
        assert _content(lake, name) == _content(full, name), name
        assert before[name] < lake.describe(name).rows == full.describe(name).rows  # grew, nothing twice

    customers = sorted((first / "customer").glob("*.json"))[0]
    changed = tmp_path / "changed" / "customer" / "customer-late.json"
    changed.parent.mkdir(parents=True)
    changed.write_text(customers.read_text().splitlines()[0] + "\n")
    lake.ingest(changed)
    report = {t.table: t.status for t in lake.run().tables}
    assert {report[t] for t in ("customer_trusted", "accelerometer_trusted", "customers_curated",
                                "step_trainer_trusted", "machine_learning_curated")} == {"updated"}
    full.ingest(changed)
    full.run(full_refresh=True)
    for name in ("customer_trusted", "accelerometer_trusted", "customers_curated", "step_trainer_trusted",
                 "machine_learning_curated"):
        assert _content(lake, name) == _content(full, name), name
    assert_field_ids(lake)  # the files the growth and the key-level update wrote, too



ANN, BOB = "ann@test.com", "bob@test.com"
R = 1655560000000  # epoch ms
T1, T2, T3 = R + 1000, R + 2000, R + 3000


def _customer(email: str, serial: str, updated: int, consent: int) -> dict[str, Any]:
    return {"customerName": email[:3].title(), "email": email, "phone": "8015551212", "birthDay": "1990-01-01",
            "serialNumber": serial, "registrationDate": R, "lastUpdateDate": updated,
            "shareWithResearchAsOfDate": consent, "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}


def _delivery(folder: Path, customers: list[dict[str, Any]], readings: list[tuple[str, str, int, int]]) -> Path:
    """One batch: customer records, and for each (email, serial, t, d) a reading of the phone and one of the
    device at t (x and the distance both d)."""
    write_jsonl(folder / "customer" / f"customer-{folder.name}.json", customers)
    write_jsonl(folder / "accelerometer" / f"accelerometer-{folder.name}.json",
                [{"user": e, "timestamp": t, "x": float(d), "y": 0.0, "z": 0.0} for e, _s, t, d in readings])
    write_jsonl(folder / "step_trainer" / f"step_trainer-{folder.name}.json",
                [{"sensorReadingTime": t, "serialNumber": s, "distanceFromObject": d} for _e, s, t, d in readings])
    return folder


BOB_BEFORE, BOB_AFTER = (BOB, "SN-BOB", T1, 11), (BOB, "SN-BOB", T2, 12)  # unchanged; grows in the second batch
BOB_ROWS = {"accelerometer_trusted": [(BOB, T1, 11.0, 0.0, 0.0), (BOB, T2, 12.0, 0.0, 0.0)],
            "customers_curated": [("Bob", BOB, "8015551212", "1990-01-01", "SN-BOB", R, R, R, None, None)],
            "step_trainer_trusted": [(T1, "SN-BOB", 11), (T2, "SN-BOB", 12)],
            "machine_learning_curated": [(key_of(BOB), T1, 11, 11.0, 0.0, 0.0), (key_of(BOB), T2, 12, 12.0, 0.0, 0.0)]}
# (policy, the first batch, the second: ANN changed and her new readings, in one batch; ANN's derived rows after)
CHANGES = {
    "another device": ("any", ([_customer(ANN, "SN-A", R, R)], [(ANN, "SN-A", T1, 1)]),
                       ([_customer(ANN, "SN-B", R + 60_000, R)], [(ANN, "SN-B", T2, 2)]), {
        "accelerometer_trusted": [(ANN, T1, 1.0, 0.0, 0.0), (ANN, T2, 2.0, 0.0, 0.0)],
        "customers_curated": [("Ann", ANN, "8015551212", "1990-01-01", "SN-B", R, R + 60_000, R, None, None)],
        "step_trainer_trusted": [(T2, "SN-B", 2)],  # SN-A has no owner any more
        "machine_learning_curated": [(key_of(ANN), T2, 2, 2.0, 0.0, 0.0)]}),
    "consent given earlier": ("since_consent", ([_customer(ANN, "SN-A", R, T2)], [(ANN, "SN-A", T1, 1),
                                                                                  (ANN, "SN-A", T2, 2)]),
                              ([_customer(ANN, "SN-A", R + 60_000, T1)], [(ANN, "SN-A", T3, 3)]), {
        "accelerometer_trusted": [(ANN, t, float(d), 0.0, 0.0) for t, d in ((T1, 1), (T2, 2), (T3, 3))],
        "customers_curated": [("Ann", ANN, "8015551212", "1990-01-01", "SN-A", R, R + 60_000, T1, None, None)],
        "step_trainer_trusted": [(T1, "SN-A", 1), (T2, "SN-A", 2), (T3, "SN-A", 3)],
        "machine_learning_curated": [(key_of(ANN), t, d, float(d), 0.0, 0.0) for t, d in ((T1, 1), (T2, 2), (T3, 3))]}),
}


@pytest.mark.parametrize("change", CHANGES)
def test_a_batch_that_changes_a_customer_and_brings_her_readings_equals_a_rebuild(tmp_path: Path, change: str) -> None:
    """One batch changes ANN (her device, or her consent date) and brings her new readings; BOB, unchanged,
    gets new readings too. The key-level update computes ANN's rows whole, from every input; the growth by
    the batch's new rows must then leave her out (or her new readings are in the tables twice) and add BOB's."""
    policy, (customers, readings), (changed, new), derived = CHANGES[change]
    first = _delivery(tmp_path / "first", [*customers, _customer(BOB, "SN-BOB", R, R)], [*readings, BOB_BEFORE])
    second = _delivery(tmp_path / "second", changed, [*new, BOB_AFTER])
    lake = Lakehouse(tmp_path / "inc", consent_policy=policy)
    lake.ingest(first)
    lake.run()
    lake.ingest(second)
    report = {t.table: t.status for t in lake.run().tables}
    assert {report[name] for name in derived} == {"updated"}  # key by key, not rebuilt

    full = Lakehouse(tmp_path / "full", consent_policy=policy)
    full.ingest(first, second)
    full.run()
    for name, expected in derived.items():
        assert _content(lake, name) == _content(full, name) == sorted(expected + BOB_ROWS[name]), name
    for name, table in TABLES.items():
        if table.kind != "history":
            assert _content(lake, name) == _content(full, name), name
    assert [{k: v for k, v in f.items() if k not in ("run_id", "run_at")} for f in lake.reconcile()] == \
        [{k: v for k, v in f.items() if k not in ("run_id", "run_at")} for f in full.reconcile()]
