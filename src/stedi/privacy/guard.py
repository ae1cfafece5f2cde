"""The PII guard: a research table is committed only if none of its text values is a landed identifier."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stedi.config import Settings

if TYPE_CHECKING:
    from stedi.iceberg.catalog import TableState
    from stedi.tables import Table

# Identifiers in the landing tables that must never appear in a research table.
IDENTIFIERS_SQL = """
    select email as v from customer_landing union all select phone from customer_landing
    union all select customerName from customer_landing union all select serialNumber from customer_landing
    union all select serialNumber from step_trainer_landing union all select "user" from accelerometer_landing
"""


def pii_guard(settings: Settings, table: Table, files: list[str], states: dict[str, TableState]) -> None:
    """Refuse a research table's new files if any text value equals a landed email, phone, name or serial."""
    from stedi.engines import open_query_engine
    from stedi.errors import QualityError
    from stedi.tables import TABLES

    texts = [c.name for c in table.columns if c.type == "string"]
    if not texts or not files:
        return
    engine = open_query_engine(settings, beside_a_build=True)  # the reconciliation may be counting too
    try:
        for name in ("customer_landing", "step_trainer_landing", "accelerometer_landing"):
            engine.register_parquet(name, states[name].files, TABLES[name])
        engine.register_parquet("candidate", files, table)
        # Each distinct text value once, with how often it occurs, looked up among the identifiers: the
        # few thousand values are hashed instead of the millions of landed identifiers (0.5 s to 0.2 s).
        values = " union all ".join(f'select "{c}" as v from candidate' for c in texts)
        [row] = engine.query(
            f"with texts as (select v, count(*) as n from ({values}) where v is not null group by v) "
            f"select coalesce(sum(n), 0)::BIGINT as hits from texts where v in (select v from ({IDENTIFIERS_SQL}))"
        ).to_pylist()
    finally:
        engine.close()
    if row["hits"]:
        raise QualityError(f"PII guard: {row['hits']:,} values of {table.name} equal a landed email, phone, "
                           f"name or serial number; {table.name} was not committed")
