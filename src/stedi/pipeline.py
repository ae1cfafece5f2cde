"""`stedi run`: build the tables in dependency order, each in one atomic Iceberg commit.

A table is rebuilt only when what it is built from changed: its SQL, its columns, the landed files
(landing tables) or the snapshots of its input tables. The fingerprint of those inputs is stored in
the snapshot, so a rerun with no new landing data commits nothing and every table keeps its rows.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Literal

from stedi.catalog import Catalog, TableState, ensure_writable_dir
from stedi.config import Settings
from stedi.engines import open_engine
from stedi.engines.base import Engine
from stedi.errors import LandingError
from stedi.landing import LandingZone
from stedi.tables import Table, build_order

FORMAT = "1"  # bump to rebuild every table after a change in how tables are written
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableRun:
    table: str
    zone: str
    status: Literal["built", "up to date"]
    rows_in: int
    rows_out: int
    seconds: float


@dataclass(frozen=True)
class RunReport:
    run_id: str
    engine: str
    tables: list[TableRun]
    seconds: float


def table_sql(table: Table) -> str:
    """The transformation of `table`: its `.sql` file, shipped as package data."""
    return resources.files("stedi").joinpath("sql", table.zone, f"{table.name}.sql").read_text(encoding="utf-8")


def run(settings: Settings, catalog: Catalog, select: list[str] | None = None, full_refresh: bool = False,
        progress: Progress | None = None) -> RunReport:
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    order = build_order(select)  # validates the selected names first
    ensure_writable_dir(settings.home)
    landed = LandingZone(settings.landing_dir).files()
    if not landed:
        raise LandingError(f"the landing zone {settings.landing_dir} is empty; land data first with "
                           "`stedi ingest PATH` (or make some with `stedi generate --out DIR`)")
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    engine = open_engine(settings)
    states: dict[str, TableState] = {}
    results: list[TableRun] = []
    try:
        for number, table in enumerate(order, start=1):
            say(f"[{number}/{len(order)}] {table.name} ...")
            t0 = time.perf_counter()
            sql = table_sql(table)
            if table.source is not None:
                files = [f for f in landed if f.source == table.source]
                if not files:
                    say(f"      no landed {table.source} files: {table.name} is empty")
                inputs: list[object] = [(f.name, f.sha256) for f in files]
                uris = [(settings.landing_dir / f.source / f.name).as_uri() for f in files]
                engine.register_json(f"landed_{table.source}", uris, table)
                rows_in = -1  # known after the read
            else:
                inputs = [(name, states[name].snapshot_id) for name in table.inputs]
                rows_in = sum(states[name].rows for name in table.inputs)
            fingerprint = _fingerprint(table, sql, inputs)

            state = catalog.state(table)
            if state is not None and state.fingerprint == fingerprint and not full_refresh:
                status: Literal["built", "up to date"] = "up to date"
            else:
                folder = f"{catalog.data_location(table)}/{run_id}"
                files_written, _rows = engine.write_parquet(sql, table, folder)
                state = catalog.replace(table, files_written, fingerprint)
                status = "built"
            states[table.name] = state
            engine.register_parquet(table.name, state.files, table)
            seconds = time.perf_counter() - t0
            result = TableRun(table.name, table.zone, status, state.rows if rows_in < 0 else rows_in,
                              state.rows, seconds)
            results.append(result)
            say(f"      {status}: {result.rows_in:,} rows in, {result.rows_out:,} rows out ({seconds:.2f} s)")
    finally:
        engine.close()
    return RunReport(run_id, engine.name, results, time.perf_counter() - started)


def _fingerprint(table: Table, sql: str, inputs: list[object]) -> str:
    spec = {"format": FORMAT, "sql": sql, "columns": [(c.name, c.type) for c in table.columns],
            "inputs": inputs}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
