"""What each table holds, on the hand-written edge cases of tests/fixtures/edge (see its README.md)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stedi import TABLES, Lakehouse
from stedi.pipeline.report import RunReport
from stedi.tables import build_order

from support import FIXTURES, key_of, rows, write_jsonl

EDGE = FIXTURES / "edge"
R, R60 = 1655560000000, 1655560060000
T1, T2, T3, T4, T5, T6 = (1655564400000 + 1000 * i for i in range(1, 7))


def customer(name: str, email: str, phone: str, birthday: str, serial: str, updated: int = R,
             research: int | None = R, public: int | None = None) -> tuple[Any, ...]:
    return (name, email, phone, birthday, serial, R, updated, research, public, None)


ALICE = customer("Alice Consent", "alice@test.com", "8015550100", "1990-01-01", "SN-ALICE")
BOB = customer("Bob Consent", "bob@test.com", "8015550200", "1991-02-02", "SN-BOB", public=R)
ERIN = customer("Erin Optin", "erin@test.com", "8015550502", "1994-05-05", "SN-ERIN",
                updated=R60, research=R60)
FRANK = customer("Frank Tie", "frank@test.com", "8015550601", "1995-06-06", "SN-FRANK", research=R + 2000)
GINA = customer("Gina Tie", "gina@test.com", "8015550701", "1996-07-07", "SN-GINA")
HANK = customer("Hank Twice", "hank@test.com", "8015550800", "1997-08-08", "SN-HANK")
IVAN = customer("Ivan NoPhone", "ivan@test.com", "8015550900", "1998-09-09", "SN-IVAN")

CUSTOMER_TRUSTED = [ALICE, BOB, ERIN, FRANK, GINA, HANK, IVAN]
ACCELEROMETER_TRUSTED = [
    ("alice@test.com", T1, 1.0, 0.0, 0.0),
    ("alice@test.com", T2, 0.5, 0.5, 0.5),
    ("alice@test.com", T3, -1.0, -1.0, -1.0),
    ("alice@test.com", T3, 1.0, 1.0, 1.0),
    ("bob@test.com", T1, 0.0, 1.0, 0.0),
    ("erin@test.com", T5, 0.0, 0.0, -1.0),
    ("frank@test.com", T6, 1.0, -1.0, 0.0),
    ("hank@test.com", T6, -1.0, 1.0, 0.0),
]
CUSTOMERS_CURATED = [ALICE, BOB, ERIN, FRANK, HANK]
STEP_TRAINER_TRUSTED = [
    (T1, "SN-ALICE", 101), (T1, "SN-BOB", 202), (T2, "SN-ALICE", 102), (T3, "SN-ALICE", 103),
    (T4, "SN-ALICE", 104), (T5, "SN-ERIN", 105),
]
OWNERS = {f"SN-{name.upper()}": f"{name}@test.com" for name in ("alice", "bob", "erin", "ivan")}


def ml(t: int, serial: str, distance: int, x: float, y: float, z: float) -> tuple[Any, ...]:
    """An ML row: the device's owner appears only as customer_key (computed independently, in support)."""
    return (key_of(OWNERS[serial]), t, distance, x, y, z)


MACHINE_LEARNING_CURATED = [
    ml(T1, "SN-ALICE", 101, 1.0, 0.0, 0.0),
    ml(T1, "SN-BOB", 202, 0.0, 1.0, 0.0),
    ml(T2, "SN-ALICE", 102, 0.5, 0.5, 0.5),
    ml(T3, "SN-ALICE", 103, -1.0, -1.0, -1.0),
    ml(T3, "SN-ALICE", 103, 1.0, 1.0, 1.0),
    ml(T5, "SN-ERIN", 105, 0.0, 0.0, -1.0),
]
ML_COLUMNS = ["customer_key", "sensorReadingTime", "distanceFromObject", "x", "y", "z"]


def table(lake: Lakehouse, name: str) -> list[tuple[Any, ...]]:
    """Every row of a table, sorted on all columns."""
    return rows(lake, f"select * from {name} order by all")


def contents(lake: Lakehouse) -> dict[str, Any]:
    """The sorted rows of every table, in one query (each query loads the catalog state once)."""
    query = ", ".join(f"(select coalesce(list(t order by t), []) from {name} t) as {name}" for name in TABLES
                      if TABLES[name].kind in ("landing", "derived"))
    return lake.sql(f"select {query}").to_pylist()[0]


BUILT = [t.name for t in build_order()]  # the tables a run reports on (quarantine tables go with landing ones)


def statuses(report: RunReport) -> dict[str, str]:
    return {t.table: t.status for t in report.tables}


def snapshots(lake: Lakehouse) -> dict[str, int | None]:
    """Snapshot ids of every table but the histories (reconciliation, runs), which every run appends to."""
    return {t.name: t.snapshot_id for t in lake.tables() if TABLES[t.name].kind != "history"}


def fresh(home: Path, engine: str) -> Lakehouse:
    lake = Lakehouse(home, engine=engine)
    lake.ingest(EDGE)
    lake.run()
    return lake


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, engine: str) -> Lakehouse:
    """The edge fixtures ingested and built once per engine; read-only tests share it."""
    return fresh(tmp_path_factory.mktemp(f"edge-{engine}") / "lake", engine)


# -- exact rows of every table ------------------------------------------------------------------------
def test_landing_tables_hold_every_record_as_delivered(built: Lakehouse) -> None:
    assert rows(built, "select count(*) from customer_landing") == [(14,)]
    assert rows(built, "select count(*) from accelerometer_landing") == [(12,)]
    assert rows(built, "select count(*) from step_trainer_landing") == [(11,)]


@pytest.mark.parametrize(("name", "expected"), [
    ("customer_trusted", CUSTOMER_TRUSTED),
    ("accelerometer_trusted", ACCELEROMETER_TRUSTED),
    ("customers_curated", CUSTOMERS_CURATED),
    ("step_trainer_trusted", STEP_TRAINER_TRUSTED),
    ("machine_learning_curated", MACHINE_LEARNING_CURATED),
])
def test_exact_rows(built: Lakehouse, name: str, expected: list[tuple[Any, ...]]) -> None:
    assert table(built, name) == sorted(expected)


def test_columns_of_every_table(built: Lakehouse) -> None:
    for name, spec in TABLES.items():
        assert built.sql(f"select * from {name} limit 0").column_names == spec.column_names
    assert TABLES["machine_learning_curated"].column_names == ML_COLUMNS


def test_row_counts_in_tables_listing(built: Lakehouse) -> None:
    counts = {t.name: (t.built, t.rows) for t in built.tables()}
    assert counts == {
        "customer_landing": (True, 14), "accelerometer_landing": (True, 12),
        "step_trainer_landing": (True, 11),
        "customer_trusted": (True, 7), "accelerometer_trusted": (True, 8), "customers_curated": (True, 5),
        "step_trainer_trusted": (True, 6), "machine_learning_curated": (True, 6),
        "customer_quarantine": (True, 0), "accelerometer_quarantine": (True, 0),
        "step_trainer_quarantine": (True, 0), "quality_failures": (True, 0), "reconciliation": (True, 3),
        "quality_checks": (True, 7), "runs": (True, 12),
    }


# -- one test per edge case ----------------------------------------------------------------------------
Rows = dict[str, list[tuple[Any, ...]]]


@pytest.fixture(scope="module")
def data(built: Lakehouse) -> Rows:
    """Every table's rows as sorted tuples, read once for the edge-case tests."""
    return {name: [tuple(r.values()) for r in found] for name, found in contents(built).items()}


def emails(data: Rows, name: str = "customer_trusted") -> list[str]:
    return [r[1] for r in data[name]]


def where(data: Rows, name: str, column: str, value: Any) -> list[tuple[Any, ...]]:
    i = TABLES[name].column_names.index(column)
    return [r for r in data[name] if r[i] == value]


def test_consent_null_is_left_out(data: Rows) -> None:
    assert len(where(data, "customer_landing", "email", "carol@test.com")) == 1
    assert "carol@test.com" not in emails(data)


def test_consent_set_is_kept(data: Rows) -> None:
    assert where(data, "customer_trusted", "email", "alice@test.com") == [ALICE]


def test_newer_record_without_consent_withdraws_it(data: Rows) -> None:
    assert len(where(data, "customer_landing", "email", "dave@test.com")) == 2
    assert "dave@test.com" not in emails(data)


def test_newer_record_with_consent_grants_it_with_the_newer_values(data: Rows) -> None:
    assert where(data, "customer_trusted", "email", "erin@test.com") == [ERIN]


def test_tie_on_last_update_date_later_consent_wins(data: Rows) -> None:
    # the losing record has the greater phone: the consent date decides first
    assert where(data, "customer_trusted", "email", "frank@test.com") == [FRANK]


def test_tie_on_last_update_date_set_consent_beats_null(data: Rows) -> None:
    assert where(data, "customer_trusted", "email", "gina@test.com") == [GINA]


def test_duplicate_customer_record_gives_one_row(data: Rows) -> None:
    assert len(where(data, "customer_landing", "email", "hank@test.com")) == 2
    assert where(data, "customer_trusted", "email", "hank@test.com") == [HANK]
    assert where(data, "customers_curated", "email", "hank@test.com") == [HANK]


def test_one_row_per_email_in_customer_tables(data: Rows) -> None:
    for name in ("customer_trusted", "customers_curated"):
        assert len(emails(data, name)) == len(set(emails(data, name)))


def test_reading_of_unknown_user_is_left_out(data: Rows) -> None:
    assert len(where(data, "accelerometer_landing", "user", "mallory@test.com")) == 1
    assert where(data, "accelerometer_trusted", "user", "mallory@test.com") == []


def test_reading_of_non_consenting_customer_is_left_out(data: Rows) -> None:
    assert where(data, "accelerometer_trusted", "user", "carol@test.com") == []
    assert where(data, "step_trainer_trusted", "serialNumber", "SN-CAROL") == []


def test_reading_of_customer_who_withdrew_consent_is_left_out(data: Rows) -> None:
    assert where(data, "accelerometer_trusted", "user", "dave@test.com") == []
    assert where(data, "step_trainer_trusted", "serialNumber", "SN-DAVE") == []


def test_exact_duplicate_accelerometer_readings_kept_once(data: Rows) -> None:
    reading = ("alice@test.com", T2, 0.5, 0.5, 0.5)
    assert where(data, "accelerometer_landing", "timestamp", T2) == [reading, reading]
    assert where(data, "accelerometer_trusted", "timestamp", T2) == [reading]


def test_same_user_and_timestamp_with_different_values_both_kept(data: Rows) -> None:
    assert where(data, "accelerometer_trusted", "timestamp", T3) == [
        ("alice@test.com", T3, -1.0, -1.0, -1.0), ("alice@test.com", T3, 1.0, 1.0, 1.0)]


def test_exact_duplicate_step_trainer_readings_kept_once(data: Rows) -> None:
    assert where(data, "step_trainer_landing", "sensorReadingTime", T2) == [(T2, "SN-ALICE", 102)] * 2
    assert where(data, "step_trainer_trusted", "sensorReadingTime", T2) == [(T2, "SN-ALICE", 102)]
    assert where(data, "machine_learning_curated", "sensorReadingTime", T2) == [
        ml(T2, "SN-ALICE", 102, 0.5, 0.5, 0.5)]


def test_device_without_customer_is_left_out(data: Rows) -> None:
    assert len(where(data, "step_trainer_landing", "serialNumber", "SN-UNKNOWN")) == 1
    assert where(data, "step_trainer_trusted", "serialNumber", "SN-UNKNOWN") == []


def test_consenting_customer_without_phone_readings_is_not_curated(data: Rows) -> None:
    assert where(data, "customer_trusted", "email", "ivan@test.com") == [IVAN]
    assert where(data, "customers_curated", "email", "ivan@test.com") == []
    assert where(data, "step_trainer_trusted", "serialNumber", "SN-IVAN") == []


def test_step_reading_without_phone_reading_at_that_time_is_not_in_ml(data: Rows) -> None:
    assert where(data, "step_trainer_trusted", "sensorReadingTime", T4) == [(T4, "SN-ALICE", 104)]
    assert where(data, "machine_learning_curated", "sensorReadingTime", T4) == []


def test_shared_timestamp_pairs_each_device_with_its_owner_only(data: Rows) -> None:
    assert len(where(data, "accelerometer_trusted", "timestamp", T1)) == 2  # alice's and bob's phones
    assert sorted(where(data, "machine_learning_curated", "sensorReadingTime", T1)) == sorted([
        ml(T1, "SN-ALICE", 101, 1.0, 0.0, 0.0), ml(T1, "SN-BOB", 202, 0.0, 1.0, 0.0)])


def test_ml_never_pairs_a_device_with_another_customers_phone(built: Lakehouse) -> None:
    # Every ML row must be explained by the owner's own phone reading at that time.
    owner = {key_of(email): email for (email,) in rows(built, "select email from customers_curated")}
    phone = set(rows(built, "select user, timestamp, x, y, z from accelerometer_trusted"))
    ml_rows = rows(built, "select customer_key, sensorReadingTime, x, y, z from machine_learning_curated")
    assert ml_rows and all((owner[k], t, x, y, z) in phone for k, t, x, y, z in ml_rows)
    # ... and the timestamp-only join would have produced such rows on these fixtures.
    timestamp_only = rows(built, """
        select count(*) from step_trainer_trusted s
        join accelerometer_trusted a on a."timestamp" = s.sensorReadingTime
    """)
    assert timestamp_only[0][0] > len(MACHINE_LEARNING_CURATED)


# -- --select, reruns, incremental changes ------------------------------------------------------------
def test_select_builds_only_the_table_and_its_inputs(home: Path, engine: str) -> None:
    lake = Lakehouse(home, engine=engine)
    lake.ingest(EDGE)
    report = lake.run(["customer_trusted"])
    assert [t.table for t in report.tables] == ["customer_landing", "customer_trusted"]
    assert {t.name for t in lake.tables() if t.built} == {"customer_landing", "customer_quarantine",
                                                          "quality_failures", "customer_trusted",
                                                          "reconciliation", "quality_checks", "runs"}
    assert table(lake, "customer_trusted") == sorted(CUSTOMER_TRUSTED)
    # a later full run keeps the two and builds the rest
    assert statuses(lake.run()) == {
        "customer_landing": "up to date", "customer_trusted": "up to date",
        **{name: "built" for name in BUILT if name not in ("customer_landing", "customer_trusted")},
    }


def test_rerun_is_idempotent_and_full_refresh_rebuilds(home: Path, engine: str) -> None:
    lake = fresh(home, engine)
    before = contents(lake)
    assert all(before.values())
    first = snapshots(lake)
    assert all(first.values())

    again = lake.run()
    assert set(statuses(again).values()) == {"up to date"}
    assert snapshots(lake) == first
    assert contents(lake) == before

    refreshed = lake.run(full_refresh=True)
    assert set(statuses(refreshed).values()) == {"built"}
    after = snapshots(lake)
    assert all(after[name] != first[name] for name in first)
    assert contents(lake) == before


def test_new_accelerometer_file_rebuilds_only_what_depends_on_it(home: Path, tmp_path: Path, engine: str) -> None:
    lake = fresh(home, engine)
    first = snapshots(lake)
    late = write_jsonl(tmp_path / "new" / "accelerometer" / "accelerometer-late.json",
                       [{"user": "ivan@test.com", "timestamp": T1, "x": 0.25, "y": 0.25, "z": 0.25}])
    assert len(lake.ingest(late).landed) == 1

    report = lake.run()
    unchanged = {"customer_landing", "customer_trusted", "step_trainer_landing"}
    # only the new file is read; the tables built from it grow by its rows (Spark, building tables in
    # parallel, rebuilds them)
    grown = "appended" if engine == "duckdb" else "built"
    expected = {name: "up to date" if name in unchanged else grown for name in BUILT}
    expected["accelerometer_landing"] = "appended"
    assert statuses(report) == expected
    assert {n: s for n, s in snapshots(lake).items() if n in unchanged} == {n: first[n] for n in unchanged}
    # ivan now has a phone reading: he is curated, and his device's reading at T1 pairs with it
    assert rows(lake, "select email from customers_curated order by email") == sorted(
        [(c[1],) for c in CUSTOMERS_CURATED] + [("ivan@test.com",)])
    assert table(lake, "step_trainer_trusted") == sorted([*STEP_TRAINER_TRUSTED, (T1, "SN-IVAN", 301)])
    assert table(lake, "machine_learning_curated") == sorted(
        [*MACHINE_LEARNING_CURATED, ml(T1, "SN-IVAN", 301, 0.25, 0.25, 0.25)])


def test_new_step_trainer_file_leaves_customer_and_accelerometer_tables(home: Path, tmp_path: Path,
                                                                        engine: str) -> None:
    lake = fresh(home, engine)
    late = write_jsonl(tmp_path / "new" / "step_trainer" / "step_trainer-late.json",
                       [{"sensorReadingTime": T5, "serialNumber": "SN-ALICE", "distanceFromObject": 106}])
    lake.ingest(late)
    changed = {"step_trainer_landing", "step_trainer_trusted", "machine_learning_curated"}
    expected = {name: ("appended" if engine == "duckdb" else "built") if name in changed else "up to date"
                for name in BUILT}
    expected["step_trainer_landing"] = "appended"  # only the new file is read (incremental)
    assert statuses(lake.run()) == expected
    # alice has no phone reading at T5 (erin has): trusted gets the reading, ML does not
    assert (T5, "SN-ALICE", 106) in table(lake, "step_trainer_trusted")
    assert table(lake, "machine_learning_curated") == sorted(MACHINE_LEARNING_CURATED)


def test_late_withdrawal_removes_the_customer_everywhere(home: Path, tmp_path: Path, engine: str) -> None:
    lake = fresh(home, engine)
    withdrawn = {"customerName": "Alice Consent", "email": "alice@test.com", "phone": "8015550100",
                 "birthDay": "1990-01-01", "serialNumber": "SN-ALICE", "registrationDate": R,
                 "lastUpdateDate": R60 + 1, "shareWithResearchAsOfDate": None,
                 "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}
    lake.ingest(write_jsonl(tmp_path / "new" / "customer" / "customer-late.json", [withdrawn]))
    report = lake.run()
    assert statuses(report)["accelerometer_landing"] == "up to date"
    assert statuses(report)["step_trainer_landing"] == "up to date"
    assert rows(lake, "select count(*) from customer_trusted where email = 'alice@test.com'") == [(0,)]
    assert rows(lake, "select count(*) from accelerometer_trusted "
                      "where \"user\" = 'alice@test.com'") == [(0,)]
    assert table(lake, "machine_learning_curated") == sorted(
        r for r in MACHINE_LEARNING_CURATED if r[0] != key_of("alice@test.com"))
