"""Both engines build identical tables from the same landing data."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from stedi import TABLES, Lakehouse
from stedi.generate import generate

from support import rows

pytestmark = [pytest.mark.spark, pytest.mark.slow]


@pytest.fixture(scope="module")
def landing(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("scale2")
    generate(out, scale=2, seed=7)
    # Some damage, so that the quarantine and the reconciliation have something to agree on.
    first = sorted((out / "accelerometer" / "landing").glob("*.json"))[0].read_text().splitlines()
    (out / "accelerometer" / "landing" / "accelerometer-damaged.json").write_text(
        "\n".join(first[:50] + ['{"user": 1}', "{oops", '{"user": "a@test.com", "timestamp": 1.5}']) + "\n")
    # and a customer who breaks a warn rule (born after registering), so quality_failures holds a row
    customer = json.loads(sorted((out / "customer" / "landing").glob("*.json"))[0].read_text().splitlines()[0])
    customer.update(email="late.born@test.com", birthDay="2999-01-01")
    (out / "customer" / "landing" / "customer-warned.json").write_text(json.dumps(customer) + "\n")
    return out


RUN_COLUMNS = {"run_id", "run_at"}  # differ between two runs by nature


@pytest.fixture(scope="module")
def lakes(tmp_path_factory: pytest.TempPathFactory, landing: Path) -> dict[str, Lakehouse]:
    built = {}
    for engine in ("duckdb", "spark"):
        lake = Lakehouse(tmp_path_factory.mktemp(engine) / "lake", engine=engine)
        lake.ingest(landing)
        lake.run()
        built[engine] = lake
    return built


@pytest.mark.parametrize("name", list(TABLES))
def test_every_table_has_the_same_rows_on_both_engines(lakes: dict[str, Lakehouse], name: str) -> None:
    # the run history also names each run's engine and its times and snapshots: the rest must agree
    own = {"started_at", "ended_at", "engine", "engine_version", "snapshot_id", "seconds"} if name == "runs" else set()
    columns = ", ".join(f'"{c}"' for c in TABLES[name].column_names if c not in RUN_COLUMNS and c not in own)
    duck = Counter(rows(lakes["duckdb"], f"select {columns} from {name}"))
    spark = Counter(rows(lakes["spark"], f"select {columns} from {name}"))
    assert sum(duck.values()) > 0 or TABLES[name].kind == "quarantine"
    assert duck == spark


def test_the_generated_data_exercises_the_rules(lakes: dict[str, Lakehouse]) -> None:
    """Scale 2 has superseded customer versions, shared timestamps, duplicates and bad records, so
    parity covers all of them."""
    lake = lakes["spark"]
    assert [r for (r,) in rows(lake, "select reason from accelerometer_quarantine order by position")] == [
        "missing_key", "invalid_json", "wrong_type"]
    figures = {r["source"]: r for r in lake.reconcile()}
    assert figures["accelerometer"]["duplicates"] == 50 and figures["accelerometer"]["quarantined"] == 3
    [(landed, current)] = rows(lake, "select count(*), count(distinct email) from customer_landing")
    assert landed > current
    [(shared,)] = rows(lake, "select count(*) from (select timestamp from accelerometer_trusted "
                             "group by timestamp having count(distinct user) > 1)")
    assert shared > 0
