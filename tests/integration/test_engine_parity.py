"""Both engines build identical tables from the same landing data."""

from __future__ import annotations

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
    return out


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
    duck = Counter(rows(lakes["duckdb"], f"select * from {name}"))
    spark = Counter(rows(lakes["spark"], f"select * from {name}"))
    assert sum(duck.values()) > 0
    assert duck == spark


def test_the_generated_data_exercises_the_rules(lakes: dict[str, Lakehouse]) -> None:
    """Scale 2 has superseded customer versions and shared timestamps, so parity covers both."""
    lake = lakes["spark"]
    [(landed, current)] = rows(lake, "select count(*), count(distinct email) from customer_landing")
    assert landed > current
    [(shared,)] = rows(lake, "select count(*) from (select timestamp from accelerometer_trusted "
                             "group by timestamp having count(distinct user) > 1)")
    assert shared > 0
