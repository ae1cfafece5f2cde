"""The Athena/Glue DDL files in ddl/athena are generated from stedi.tables and must stay in step."""

from __future__ import annotations

import re

import pytest

from stedi.ddl import athena_ddl
from stedi.tables import TABLES

from support import REPO


@pytest.mark.parametrize("name", list(TABLES))
def test_committed_ddl_matches_the_schema(name: str) -> None:
    committed = (REPO / "ddl" / "athena" / f"{name}.sql").read_text()
    assert committed == athena_ddl(TABLES[name]), f"run `stedi ddl` to regenerate ddl/athena/{name}.sql"


def test_landing_ddl_is_the_reference_shape() -> None:
    text = athena_ddl(TABLES["step_trainer_landing"], "s3://bucket/prefix/")
    columns = re.findall(r"^  `(\w+)`\s+(\w+)", text, flags=re.M)
    assert columns == [("sensorReadingTime", "bigint"), ("serialNumber", "string"), ("distanceFromObject", "int")]
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `stedi`.`step_trainer_landing`" in text
    assert "'org.openx.data.jsonserde.JsonSerDe'" in text
    assert "LOCATION 's3://bucket/prefix/landing/step_trainer/'" in text


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.kind != "landing"])
def test_every_table_but_the_landing_ones_is_an_iceberg_table(name: str) -> None:
    text = athena_ddl(TABLES[name])
    assert "'table_type' = 'ICEBERG'" in text and "EXTERNAL" not in text and "JsonSerDe" not in text
