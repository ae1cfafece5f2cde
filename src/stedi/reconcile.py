"""The reconciliation: for every source and run, read = kept + filtered + quarantined + duplicates.

`read` is what the landing reader counted in the landed files; the other figures are counted in the
tables by `sql/reconcile/<source>.sql`. A run whose figures do not balance fails, after its figures are
appended to the `reconciliation` table (the history).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources

from stedi.catalog import Catalog, TableState
from stedi.config import Settings
from stedi.storage import open_uri
from stedi.tables import TABLES

# The tables each source's figures are counted in.
NEEDS = {
    "customer": ("customer_landing", "customer_quarantine", "customer_trusted"),
    "accelerometer": ("accelerometer_landing", "accelerometer_quarantine", "customer_trusted",
                      "accelerometer_trusted"),
    "step_trainer": ("step_trainer_landing", "step_trainer_quarantine", "customers_curated",
                     "step_trainer_trusted"),
}


@dataclass(frozen=True)
class Figures:
    source: str
    read: int
    kept: int
    filtered: int
    quarantined: int
    duplicates: int
    warnings: int

    @property
    def balanced(self) -> bool:
        return self.read == self.kept + self.filtered + self.quarantined + self.duplicates


def reconcile(settings: Settings, states: dict[str, TableState], read: dict[str, int],
              warnings: dict[str, int], consent_policy: str) -> list[Figures]:
    """The figures of every source whose tables this run has (a --select run may not have them all)."""
    from stedi.engines import open_query_engine

    sources = [s for s, needs in NEEDS.items() if all(n in states for n in needs) and s in read]
    if not sources:
        return []
    engine = open_query_engine(settings)
    try:
        engine.register_rows("run_settings", [("consent_policy", "string")], [(consent_policy,)])
        for name in {n for s in sources for n in NEEDS[s]}:
            engine.register_parquet(name, states[name].files, TABLES[name])
        figures = []
        for source in sources:
            sql = resources.files("stedi").joinpath("sql", "reconcile", f"{source}.sql").read_text("utf-8")
            [row] = engine.query(sql).to_pylist()
            figures.append(Figures(source, read[source], int(row["kept"]), int(row["filtered"]),
                                   int(row["quarantined"]), int(row["duplicates"]), warnings.get(source, 0)))
        return figures
    finally:
        engine.close()


def record(catalog: Catalog, run_id: str, figures: list[Figures]) -> None:
    """Append a run's figures to the `reconciliation` table."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = TABLES["reconciliation"]
    when = datetime.now(UTC).isoformat(timespec="seconds")
    rows = [{"run_id": run_id, "run_at": when, **{k: v for k, v in asdict(f).items()},
             "balanced": str(f.balanced).lower()} for f in figures]
    from stedi.arrow_types import ARROW_TYPES

    arrow = pa.table({c.name: pa.array([r[c.name] for r in rows], ARROW_TYPES[c.type]) for c in table.columns})
    uri = f"{catalog.data_location(table)}/{run_id}.parquet"
    fs, path = open_uri(uri, catalog.s3)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(arrow, path, compression="zstd", filesystem=fs)
    catalog.append(table, [uri])
