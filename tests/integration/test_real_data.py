"""The pipeline on the real STEDI landing data: the reference counts and the exact ML rows."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from stedi import TABLES, Lakehouse

from support import key_of, rows

EXPECTED = {
    "customer_landing": 956,
    "accelerometer_landing": 81_273,
    "step_trainer_landing": 28_680,
    "customer_trusted": 482,
    "accelerometer_trusted": 40_981,
    "customers_curated": 482,
    "step_trainer_trusted": 14_460,
    "machine_learning_curated": 40_981,
    "customer_quarantine": 0,
    "accelerometer_quarantine": 0,
    "step_trainer_quarantine": 0,
    "quality_failures": 0,  # no record breaks a warn rule (birthday_plausible: docs/quality.md)
    "reconciliation": 3,  # one row per source for the one run
    "quality_checks": 7,  # one row per shipped rule of each source for the one run
    "runs": 12,  # one row per table the run built or checked, its quarantines and quality_failures included
}


def _records(folder: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(folder.glob("*.json")) for line in f.read_text().splitlines() if line]


def _oracle_ml_rows(data: Path) -> Counter[tuple[Any, ...]]:
    """machine_learning_curated computed in plain Python, independently of the SQL."""
    latest: dict[str, dict[str, Any]] = {}
    for c in _records(data / "customer" / "landing"):
        if c["email"] not in latest or c["lastUpdateDate"] > latest[c["email"]]["lastUpdateDate"]:
            latest[c["email"]] = c
    consenting = {e: c for e, c in latest.items() if c.get("shareWithResearchAsOfDate") is not None}
    phone: dict[tuple[str, int], set[tuple[float, float, float]]] = {}
    for a in _records(data / "accelerometer" / "landing"):
        if a["user"] in consenting:
            phone.setdefault((a["user"], a["timestamp"]), set()).add((a["x"], a["y"], a["z"]))
    with_readings = {u for u, _ in phone}
    owners: dict[str, list[str]] = {}
    for email in with_readings:
        owners.setdefault(consenting[email]["serialNumber"], []).append(email)
    steps = {(s["sensorReadingTime"], s["serialNumber"], s["distanceFromObject"])
             for s in _records(data / "step_trainer" / "landing") if s["serialNumber"] in owners}
    out: Counter[tuple[Any, ...]] = Counter()
    for t, serial, distance in steps:
        for email in owners[serial]:
            for x, y, z in phone.get((email, t), ()):
                out[(key_of(email), t, distance, x, y, z)] += 1
    return out


def test_counts_match_the_reference(real_lake: Lakehouse) -> None:
    assert {t.name: t.rows for t in real_lake.tables()} == EXPECTED


def test_birthday_plausible_flags_no_real_customer_where_a_lower_bound_flagged_906(real_lake: Lakehouse) -> None:
    # docs/quality.md: every real birthday is 1 January of a year from 967 to 1964, 906 of them before 1900
    assert rows(real_lake, "select count(*), count(*) filter (where birthDay like '%-01-01'), "
                "min(try_cast(birthDay as date)), max(try_cast(birthDay as date)), "
                "count(*) filter (where try_cast(birthDay as date) < date '1900-01-01') from customer_landing") == [
        (956, 956, date(967, 1, 1), date(1964, 1, 1), 906)]
    counts = {(r["source"], r["rule"]): r["rows"] for r in real_lake.quality_checks()}
    assert counts[("customer", "birthday_plausible")] == 0
    assert set(counts.values()) == {0} and len(counts) == 7  # every shipped rule, none matching


def test_every_table_is_one_committed_snapshot(real_lake: Lakehouse) -> None:
    for info in real_lake.tables():
        assert info.built and info.snapshot_id is not None and info.updated is not None, info.name


def test_machine_learning_rows_are_exactly_the_owner_pairs(real_lake: Lakehouse, shared_data: Path) -> None:
    got = Counter(rows(real_lake, "select * from machine_learning_curated"))
    assert got == _oracle_ml_rows(shared_data)
    assert sum(got.values()) == 40_981


def test_a_timestamp_only_join_would_be_wrong(real_lake: Lakehouse) -> None:
    # The mistake the per-owner join avoids: 2,700 pairs of one person's device with another's phone.
    [(wrong,)] = rows(real_lake, "select count(*) from step_trainer_trusted s "
                                 "join accelerometer_trusted a on a.timestamp = s.sensorReadingTime")
    assert wrong == 43_681
    owner = {key_of(email): email for (email,) in rows(real_lake, "select email from customers_curated")}
    phone = set(rows(real_lake, "select user, timestamp, x, y, z from accelerometer_trusted"))
    ml = rows(real_lake, "select customer_key, sensorReadingTime, x, y, z from machine_learning_curated")
    assert all((owner[k], t, x, y, z) in phone for k, t, x, y, z in ml)


def test_trusted_tables_keep_only_consenting_customers(real_lake: Lakehouse) -> None:
    assert rows(real_lake, "select count(*) from customer_trusted where shareWithResearchAsOfDate is null") == [(0,)]
    assert rows(real_lake, "select count(*) from accelerometer_trusted a "
                           "where a.user not in (select email from customer_trusted)") == [(0,)]
    assert rows(real_lake, "select count(*), count(distinct email) from customers_curated") == [(482, 482)]


@pytest.mark.slow
def test_rerun_with_no_new_data_changes_nothing(tmp_path: Path, shared_data: Path, engine: str) -> None:
    lake = Lakehouse(tmp_path / "lake", engine=engine)
    lake.ingest(shared_data)
    lake.run()
    before = {t.name: (t.rows, t.snapshot_id) for t in lake.tables() if TABLES[t.name].kind != "history"}
    report = lake.run()
    assert {t.status for t in report.tables} == {"up to date"}
    assert {t.name: (t.rows, t.snapshot_id) for t in lake.tables() if TABLES[t.name].kind != "history"} == before
    assert lake.describe("reconciliation").rows == 6  # the history: each run appends its figures
    ingest_again = lake.ingest(shared_data)
    assert ingest_again.landed == [] and len(ingest_again.unchanged) == 13
    refreshed = lake.run(full_refresh=True)
    assert {t.status for t in refreshed.tables} == {"built"}
    assert {t.name: t.rows for t in lake.tables()} == {**EXPECTED, "reconciliation": 9, "quality_checks": 21,
                                                       "runs": 36}
    assert rows(lake, "select count(*) from (select distinct * from accelerometer_trusted)") == [(40_981,)]
