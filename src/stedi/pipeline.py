"""`stedi run`: build the tables in dependency order, each in one atomic Iceberg commit.

A table is rebuilt only when what it is built from changed: its SQL, its columns, the landed files
(landing tables) or the snapshots of its input tables. The fingerprint of those inputs is stored in
the snapshot, so a rerun with no new landing data commits nothing and every table keeps its rows.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import Literal

from stedi.catalog import Catalog, TableState, ensure_writable_dir
from stedi.config import Settings
from stedi.engines import open_engine
from stedi.engines.base import Engine
from stedi.errors import LandingError
from stedi.landing import LandedFile, LandingZone
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
    build = _Build(settings, catalog, engine, landed, run_id, full_refresh, say)
    results: dict[str, TableRun] = {}
    try:
        # Each table starts as soon as its inputs are built (with an engine that runs builds in
        # parallel, customer_trusted overlaps the accelerometer landing read, and so on).
        selected = {t.name for t in order}
        waiting = list(order)
        with ThreadPoolExecutor(max_workers=engine.parallel_builds) as pool:
            running: dict[Future[TableRun], Table] = {}
            while waiting or running:
                ready = [t for t in waiting if all(i in results or i not in selected for i in t.inputs)]
                for table in ready[: engine.parallel_builds - len(running)]:
                    say(f"[{order.index(table) + 1}/{len(order)}] {table.name} ...")
                    running[pool.submit(build.table, table)] = table
                    waiting.remove(table)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    result = future.result()  # re-raises a failed build; the pool waits for the rest
                    results[result.table] = result
    finally:
        engine.close()
    return RunReport(run_id, engine.name, [results[t.name] for t in order], time.perf_counter() - started)


class _Build:
    """Builds one table: skips it when its fingerprint is unchanged, else computes and commits it."""

    def __init__(self, settings: Settings, catalog: Catalog, engine: Engine, landed: list[LandedFile],
                 run_id: str, full_refresh: bool, say: Progress) -> None:
        self.settings, self.catalog, self.engine, self.landed = settings, catalog, engine, landed
        self.run_id, self.full_refresh, self.say = run_id, full_refresh, say
        self.states: dict[str, TableState] = {}
        self._commit = threading.Lock()  # one catalog commit at a time (SQLite, and simpler to reason about)

    def table(self, table: Table) -> TableRun:
        t0 = time.perf_counter()
        sql = table_sql(table)
        if table.source is not None:
            files = [f for f in self.landed if f.source == table.source]
            if not files:
                self.say(f"      no landed {table.source} files: {table.name} is empty")
            inputs: list[object] = [(f.name, f.sha256) for f in files]
            uris = [(self.settings.landing_dir / f.source / f.name).as_uri() for f in files]
            self.engine.register_json(f"landed_{table.source}", uris, table)
            rows_in = None  # the records read: known once built
        else:
            inputs = [(name, self.states[name].snapshot_id) for name in table.inputs]
            rows_in = sum(self.states[name].rows for name in table.inputs)
        fingerprint = _fingerprint(table, sql, inputs)

        with self._commit:
            state = self.catalog.state(table)
            folder = f"{self.catalog.data_location(table)}/{self.run_id}"
        status: Literal["built", "up to date"] = "up to date"
        if state is None or state.fingerprint != fingerprint or self.full_refresh:
            files_written, _rows = self.engine.write_parquet(sql, table, folder)
            with self._commit:
                state = self.catalog.replace(table, files_written, fingerprint)
            status = "built"
        self.engine.register_parquet(table.name, state.files, table)
        self.states[table.name] = state
        seconds = time.perf_counter() - t0
        result = TableRun(table.name, table.zone, status, state.rows if rows_in is None else rows_in,
                          state.rows, seconds)
        self.say(f"      {table.name} {status}: {result.rows_in:,} rows in, {result.rows_out:,} rows out "
                 f"({seconds:.2f} s)")
        return result


def _fingerprint(table: Table, sql: str, inputs: list[object]) -> str:
    spec = {"format": FORMAT, "sql": sql, "columns": [(c.name, c.type) for c in table.columns],
            "inputs": inputs}
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
