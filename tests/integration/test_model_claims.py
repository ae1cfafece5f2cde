"""What each derived table declares beside its SQL (stedi.models) holds on the real data too: a table said
to hold each row once does. (tests/unit/test_models.py checks the declarations against the SQL itself.)"""

from __future__ import annotations

import pytest

from stedi import Lakehouse
from stedi.sqltext import quote
from stedi.tables import TABLES

from support import rows


@pytest.mark.parametrize("engine", ["duckdb"], indirect=True)
@pytest.mark.parametrize("name", [t.name for t in TABLES.values() if t.is_set])
def test_a_table_declared_to_hold_each_row_once_does_on_the_real_data(real_lake: Lakehouse, name: str) -> None:
    columns = ", ".join(quote(c) for c in TABLES[name].column_names)
    [(total, distinct)] = rows(real_lake, f"select count(*), (select count(*) from (select distinct {columns} "
                                          f"from {name})) from {name}")
    assert total == distinct > 0
