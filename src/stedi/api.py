"""The Python API: a `Lakehouse` at a root, with the operations the CLI offers.

    from stedi import Lakehouse
    lake = Lakehouse("lakehouse")
    lake.ingest("data/stedi")
    lake.run()
    lake.sql("select count(*) from machine_learning_curated")   # a pyarrow.Table
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi.catalog import Catalog
from stedi.config import Settings, load_settings
from stedi.errors import QueryError, TableError
from stedi.landing import IngestReport, LandedFile, LandingZone, open_landing
from stedi.pipeline import RunReport
from stedi.s3 import is_s3
from stedi.tables import TABLES, Column, get_table

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.erasure import ErasureReceipt
    from stedi.optimize import OptimizeReport

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableInfo:
    name: str
    zone: str
    built: bool
    rows: int
    files: int
    snapshot_id: int | None
    updated: datetime | None
    columns: tuple[Column, ...]
    doc: str


class Lakehouse:
    """A STEDI lakehouse: landing zone, Iceberg warehouse and catalog under one root (a folder or s3://)."""

    def __init__(self, home: str | Path | None = None, *, config: str | Path | None = None,
                 settings: Settings | None = None, **overrides: Any) -> None:
        """Settings come from `settings` if given, else stedi.toml / STEDI_* / `overrides`."""
        self.settings = settings or load_settings(config, home=home, **overrides)
        self.catalog = Catalog(self.settings)
        self._landing: LandingZone | None = None

    @property
    def landing(self) -> LandingZone:
        """The landing zone (its root is checked on first use: a bucket may be missing or unreachable)."""
        if self._landing is None:
            self._landing = open_landing(self.settings)
        return self._landing

    def ingest(self, *paths: str | Path, source: str | None = None,
               progress: Progress | None = None) -> IngestReport:
        """Copy source files or folders into the landing zone (idempotent)."""
        from stedi.privacy import load_key
        from stedi.suppression import Suppressed

        landing = self.landing
        suppressed = Suppressed(landing.storage, None)
        if suppressed:  # people were erased: keep them out (their hashes are keyed)
            suppressed.key = load_key(self.settings)
            landing.suppressed = suppressed
        needs_s3 = self.settings.remote or any(is_s3(str(p)) for p in paths)
        return landing.ingest(paths, source=source, progress=progress,
                              s3=self.settings.s3_connection() if needs_s3 else None)

    def erase(self, emails: Iterable[str], *, progress: Progress | None = None) -> ErasureReceipt:
        """Erase people everywhere under the root (see stedi.erasure); a receipt without personal data."""
        from stedi.erasure import erase

        return erase(self, list(emails), progress)

    def landed_files(self) -> list[LandedFile]:
        return self.landing.files()

    def run(self, select: Iterable[str] | None = None, *, full_refresh: bool = False,
            progress: Progress | None = None) -> RunReport:
        """Build the tables (or the selected ones and what they need); unchanged tables are kept."""
        from stedi.pipeline import run

        return run(self.settings, self.catalog, list(select or []), full_refresh, progress)

    def sql(self, query: str) -> pa.Table:
        """Run one read-only SQL query over every built table, by name (on the embedded engine)."""
        from stedi.engines import open_query_engine

        engine = open_query_engine(self.settings)
        try:
            for table in TABLES.values():
                state = self.catalog.state(table)
                if state is not None:
                    engine.register_parquet(table.name, state.files, table)
            try:
                return engine.query(query)
            except QueryError as exc:
                raise QueryError(self._hint(str(exc))) from None
        finally:
            engine.close()

    def _hint(self, message: str) -> str:
        # DuckDB suggests its own system tables ("Did you mean pg_enum?"): no help to a stedi user.
        message = re.sub(r' ?Did you mean "(?!(?:' + "|".join(TABLES) + r')")[^"]*"\?', "", message)
        for name in TABLES:
            if f"name {name} does not exist" in message:
                return f"table {name} has not been built yet; run `stedi run` first ({message})"
        if "does not exist" in message:
            return f"{message} The tables are: {', '.join(TABLES)}"
        return message

    def reconcile(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The reconciliation figures of the latest run (or of `run_id`), one dict per source."""
        from stedi.tables import TABLES as ALL

        if self.catalog.state(ALL["reconciliation"]) is None:
            raise TableError("no run has been reconciled yet; run `stedi run` first")
        where = "run_id = (select max_by(run_id, run_at) from reconciliation)" if run_id is None else \
            "run_id = '" + run_id.replace("'", "''") + "'"
        result = self.sql(f"select * from reconciliation where {where} order by "
                          "list_position(['customer', 'accelerometer', 'step_trainer'], source)")
        return result.to_pylist()

    def optimize(self, *, retention_days: float | None = None,
                 progress: Progress | None = None) -> list[OptimizeReport]:
        """Compact small table files and expire snapshots older than the retention (see stedi.optimize)."""
        from stedi.optimize import optimize

        return optimize(self.settings, self.catalog, retention_days, progress)

    def tables(self) -> list[TableInfo]:
        """Every table with its zone, row count, last update and snapshot."""
        return [self.describe(name) for name in TABLES]

    def describe(self, name: str) -> TableInfo:
        table = get_table(name)
        state = self.catalog.state(table)
        return TableInfo(
            name=table.name, zone=table.zone, built=state is not None and state.snapshot_id is not None,
            rows=state.rows if state else 0, files=len(state.files) if state else 0,
            snapshot_id=state.snapshot_id if state else None, updated=state.updated if state else None,
            columns=table.columns, doc=table.doc,
        )
