"""The Python API: a `Lakehouse` at a root, with the operations the CLI offers.

    from stedi import Lakehouse
    lake = Lakehouse("lakehouse")
    lake.ingest("data/stedi")
    lake.run()
    lake.sql("select count(*) from machine_learning_curated")   # a pyarrow.Table
    with lake.sql_batches("select * from machine_learning_curated") as reader:   # pyarrow.RecordBatchReader
        ...
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi import faults
from stedi.config import Settings, load_settings
from stedi.errors import QueryError, TableError
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.landing.zone import IngestReport, LandedFile, LandingZone, nothing_landed, open_landing
from stedi.pipeline.report import RunReport
from stedi.storage.s3 import is_s3
from stedi.tables import TABLES, Column, get_table

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.iceberg.attach import AttachReport
    from stedi.iceberg.optimize import OptimizeReport
    from stedi.privacy.erasure import ErasurePlan, ErasureReceipt
    from stedi.states.export import ExportManifest
    from stedi.states.resolve import LakeState
    from stedi.states.tags import TagInfo

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


def tables_named(query: str) -> set[str]:
    """The tables a query is given: those whose name it spells as a word, else (`show tables`, `select 1`)
    every one. Each table given costs reading its metadata (on S3, requests), so a query pays only for what
    it names; a column or string spelled like a table costs a registration, never a wrong answer."""
    lowered = query.lower()
    named = {name for name in TABLES if re.search(rf"(?<![\w$]){name}(?![\w$])", lowered)}
    return named or set(TABLES)


class Lakehouse:
    """A STEDI lakehouse: landing zone, Iceberg warehouse and catalog under one root (a folder or s3://).

    Methods that write (ingest, run, erase, optimize, attach) hold the root's writer lock while they work
    (stedi.storage.lock); the others only read and never create anything."""

    def __init__(self, home: str | Path | None = None, *, config: str | Path | None = None,
                 settings: Settings | None = None, **overrides: Any) -> None:
        """Settings come from `settings` if given, else stedi.toml / STEDI_* / `overrides`."""
        self.settings = settings or load_settings(config, home=home, **overrides)
        self.catalog = TableCatalog(self.settings)
        self._landing: LandingZone | None = None
        self._writing_depth = 0  # nested writes (an erasure rebuilds the tables) take the lock once

    @property
    def landing(self) -> LandingZone:
        """The landing zone (its root is checked on first use: a bucket may be missing or unreachable).
        Erased people are kept out of every file that enters it, by ingest or found in its folders."""
        if self._landing is None:
            from stedi.privacy.keys import load_key
            from stedi.privacy.suppression import Suppressed

            zone = open_landing(self.settings)
            zone.suppressed = Suppressed(zone.storage, lambda: load_key(self.settings))
            self._landing = zone
        return self._landing

    @contextmanager
    def _writing(self, command: str, progress: Progress | None, catalog: bool = True) -> Iterator[None]:
        """Hold the writer lock (once, however deeply writes nest); first clear what a killed writer left.
        `catalog`: the command writes tables, so the catalog is opened for writing now (not on first commit,
        which would load every table a second time)."""
        if self._writing_depth:
            self._writing_depth += 1
            try:
                yield
            finally:
                self._writing_depth -= 1
            return
        from stedi.storage.lock import WriterLock
        from stedi.storage.sweep import sweep

        say = progress or (lambda _m: None)
        root = self.settings.storage()
        lock = WriterLock(root, f"stedi {command}", self.settings.lock_wait)
        notice = lock.acquire()
        self._writing_depth = 1
        try:
            if notice:
                say(f"notice: {notice}")
            faults.point("lock:acquired")
            if catalog:
                self.catalog.open_for_writing()
            else:  # no table written, but not through a catalog a writer may not use (a copy, a lost catalog)
                self.catalog.check_writable()
            for path in sweep(root, self.settings.scratch_dir):
                say(f"notice: removed {path}, left by a writer that was killed")
            if command not in ("erase", "attach"):  # erase finishes it itself; attach repairs the catalog first
                from stedi.privacy.erasure import finish_pending

                finish_pending(self, say)
            from stedi.privacy.erasure import ErasureFence

            self.catalog.fence = ErasureFence(root)  # from now on, an erasure by a writer that bypassed the lock
            yield
        finally:
            self.catalog.fence = None
            self._writing_depth = 0
            lock.release()
            if lock.lost is not None:
                say(f"warning: the writer lock was taken over by {lock.lost.describe()} while this command ran "
                    "(its lease was not renewed in time); commits of both are compare-and-swap, so none was lost")

    def _require(self) -> None:
        """Stop with one line, having created nothing, on a root where nothing has landed (a new root, or a
        mistyped --home): for the readers, and for the writers that need landed data or built tables (run,
        tag, untag, rollback, optimize), before they take the lock (which would create the root). A catalog
        registering a table of data is enough (the landing folders are then not listed); opening it refuses a
        lost or foreign catalog first, naming `stedi attach`. Histories alone do not count: older versions
        recorded a run that failed on an empty root."""
        if self.catalog.registers_data():
            return
        if not open_landing(self.settings, writable=False).has_landed():
            raise nothing_landed(self.settings.home)

    def ingest(self, *paths: str | Path, source: str | None = None, follow_symlinks: bool = False,
               progress: Progress | None = None) -> IngestReport:
        """Copy source files or folders into the landing zone (idempotent)."""
        with self._writing("ingest", progress, catalog=False):
            landing = self.landing
            needs_s3 = self.settings.remote or any(is_s3(str(p)) for p in paths)
            return landing.ingest(paths, source=source, progress=progress, follow_symlinks=follow_symlinks,
                                  s3=self.settings.s3_connection() if needs_s3 else None, fence=self.catalog.fence)

    def erase(self, emails: Iterable[str], *, progress: Progress | None = None) -> ErasureReceipt:
        """Erase people everywhere under the root (see stedi.privacy.erasure); a receipt without personal data."""
        from stedi.privacy.erasure import erase

        with self._writing("erase", progress):
            return erase(self, list(emails), progress)

    def erasure_plan(self, emails: Iterable[str]) -> ErasurePlan:
        """What `erase` would remove for these people, changing nothing (`stedi erase --dry-run`)."""
        from stedi.privacy.erasure import plan

        self._require()
        return plan(self, list(emails))

    def attach(self, *, progress: Progress | None = None) -> list[AttachReport]:
        """Register in the catalog the tables this root holds (a copied or moved lakehouse, a lost or stale
        catalog); see stedi.attach."""
        from stedi.iceberg.attach import attach

        with self.catalog.unchecked(), self._writing("attach", progress):
            return attach(self.settings, self.catalog, progress)

    def landed_files(self) -> list[LandedFile]:
        """The landed files as the manifest and the landing folders list them (nothing is written; none
        when nothing has landed)."""
        return open_landing(self.settings, writable=False).files(adopt=False)

    def run(self, select: Iterable[str] | None = None, *, full_refresh: bool = False,
            progress: Progress | None = None) -> RunReport:
        """Build the tables (or the selected ones and what they need); unchanged tables are kept."""
        from stedi.pipeline.runner import run

        if not self._writing_depth:  # (an erasure rebuilding the tables has checked)
            self._require()
        with self._writing("run", progress):
            return run(self.settings, self.catalog, list(select or []), full_refresh, progress, self.landing)

    def sql(self, query: str, *, timeout: float | None = None, as_of: str | None = None) -> pa.Table:
        """Run one read-only SQL query over every built table, by name (on the embedded engine).
        `timeout` (seconds; default the setting query_timeout) stops a query that runs longer. `as_of`: a
        run id, tag or time (ISO 8601): every table as it stood in that state (docs/history.md)."""
        from stedi.engines.duckdb import WHOLE_BATCH_ROWS

        with self.sql_batches(query, timeout=timeout, batch_rows=WHOLE_BATCH_ROWS, as_of=as_of) as reader:
            return reader.read_all()

    @contextmanager
    def sql_batches(self, query: str, *, timeout: float | None = None, batch_rows: int | None = None,
                    as_of: str | None = None, zones: Collection[str] | None = None) -> Iterator[pa.RecordBatchReader]:
        """`sql`'s result as record batches (of `batch_rows` rows; default stedi.engines.duckdb.BATCH_ROWS),
        read while the query runs, so memory stays flat whatever the result's size:

            with lake.sql_batches("select * from machine_learning_curated") as reader:
                for batch in reader: ...

        The query stops (and the engine closes) when the block ends; errors are `sql`'s, also while reading.
        `zones` (e.g. {"curated"}): only the tables of those zones can be named (`stedi serve --zones`)."""
        from stedi.engines import open_query_engine
        from stedi.engines.duckdb import BATCH_ROWS

        self._require()
        past = self.state(as_of) if as_of is not None else None
        engine = open_query_engine(self.settings)
        named = tables_named(query)
        try:
            if past is not None:  # the history tables: the rows of the commands up to that state
                engine.register_rows("_as_of_runs", [("value", "string")], [(r,) for r in past.history])
            for table in TABLES.values():
                if (zones is not None and table.zone not in zones) or table.name not in named:
                    continue
                state = self.catalog.state(table)
                if past is not None and table.kind == "history":
                    if state is not None:
                        engine.register_parquet(table.name, state.files, table, only=("run_id", "_as_of_runs"))
                elif past is not None:
                    if table.name in past.snapshots:
                        from stedi.iceberg.refs import snapshot_state

                        then = snapshot_state(self.catalog, table, past.snapshots[table.name])
                        assert then is not None  # resolving checked it
                        engine.register_parquet(table.name, then.files, table)
                elif state is not None:
                    engine.register_parquet(table.name, state.files, table)
            try:
                with engine.stream(query, timeout=self.settings.query_timeout if timeout is None else timeout,
                                   batch_rows=batch_rows or BATCH_ROWS) as reader:
                    yield reader
            except QueryError as exc:
                raise QueryError(self._hint(str(exc), past.label if past else None)) from None
        finally:
            engine.close()

    def _hint(self, error: str, as_of: str | None = None) -> str:
        """The engine's message with a hint for a stedi user (the position marker, if any, stays last)."""
        message, newline, marker = error.partition("\n")
        # DuckDB suggests its own system tables ("Did you mean pg_enum?"): no help to a stedi user.
        message = re.sub(r' ?Did you mean "(?!(?:' + "|".join(TABLES) + r')")[^"]*"\?', "", message)
        for name in TABLES:
            if f"name {name} does not exist" in message:
                if as_of is not None:
                    return f"table {name} was not built in {as_of} ({message})" + newline + marker
                return f"table {name} has not been built yet; run `stedi run` first ({message})" + newline + marker
        if "does not exist" in message:
            return f"{message} The tables are: {', '.join(TABLES)}" + newline + marker
        return message + newline + marker

    def reconcile(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """The reconciliation figures of the latest run (or of `run_id`), one dict per source."""
        from stedi.tables import TABLES as ALL

        self._require()
        if self.catalog.state(ALL["reconciliation"]) is None:
            raise TableError("no run has been reconciled yet; run `stedi run` first")
        where = "run_id = (select max_by(run_id, run_at) from reconciliation)" if run_id is None else \
            "run_id = '" + run_id.replace("'", "''") + "'"
        result = self.sql(f"select * from reconciliation where {where} order by "
                          "list_position(['customer', 'accelerometer', 'step_trainer'], source)")
        if run_id is not None and result.num_rows == 0:
            latest = [r for (r,) in (tuple(row.values()) for row in self.sql(
                "select run_id from reconciliation group by run_id order by max(run_at) desc limit 5").to_pylist())]
            raise TableError(f"no run {run_id!r} in the reconciliation; the latest runs are: {', '.join(latest)} "
                             "(all of them: `stedi sql \"select distinct run_id, run_at from reconciliation\"`)")
        figures: list[dict[str, Any]] = result.to_pylist()
        return figures

    def quality_checks(self, run_id: str | None = None) -> list[dict[str, Any]]:
        """Each quality rule's count per source as the latest run (or `run_id`) recorded it, in the order
        rules run; empty when none was recorded (a run of a stedi before the table `quality_checks`)."""
        from stedi.tables import TABLES as ALL

        self._require()
        if self.catalog.state(ALL["quality_checks"]) is None:
            return []
        where = "(select max_by(run_id, run_at) from quality_checks)" if run_id is None else \
            "'" + run_id.replace("'", "''") + "'"
        found: list[dict[str, Any]] = self.sql(
            f"select * from quality_checks where run_id = {where} order by "
            "list_position(['customer', 'accelerometer', 'step_trainer'], source), "
            "list_position(['fail', 'quarantine', 'warn'], action), rule").to_pylist()
        return found

    def history(self, table: str | None = None, limit: int = 20, *, as_of: str | None = None
                ) -> list[dict[str, Any]]:
        """The latest `limit` runs, newest first, as rows of the `runs` table: one per table each run built
        or checked (only `table`'s, if given), and one for a failed run itself, with its error; with `as_of`,
        the latest up to that state."""
        from stedi.tables import TABLES as ALL
        from stedi.tables import get_table

        self._require()
        if table is not None:
            get_table(table)  # a clear error for an unknown name
        if limit < 1:
            raise ValueError(f"limit must be 1 or more, got {limit}")
        if self.catalog.state(ALL["runs"]) is None:
            raise TableError("no run is recorded yet; run `stedi run` first")
        which = "" if table is None else " and (table_name = '" + table.replace("'", "''") + "' or table_name is null)"
        result = self.sql(
            "select * from runs where run_id in (select run_id from runs group by run_id "
            f"order by max(started_at) desc limit {int(limit)}){which} "
            "order by started_at desc, table_name nulls first", as_of=as_of)
        rows: list[dict[str, Any]] = result.to_pylist()
        return rows

    def state(self, as_of: str | None = None) -> LakeState:
        """The snapshot of each table in a state: `as_of` a run id, tag or time (ISO 8601, UTC unless it
        has an offset), or the current state. A StateError when it names none, or has been expired."""
        from stedi.states.resolve import current, resolve

        self._require()
        return current(self.catalog) if as_of is None else resolve(self.catalog, as_of)

    def tag(self, name: str, *, run: str | None = None, progress: Progress | None = None) -> TagInfo:
        """Name the current state (or run `run`'s) with an Iceberg tag `name` on every table."""
        from stedi.states.tags import check_name, tag

        check_name(name)
        self._require()
        with self._writing("tag", progress):
            return tag(self.catalog, name, run, progress)

    def tags(self) -> list[TagInfo]:
        """Every tag: the state it names and whether every table has it."""
        from stedi.states.tags import tags

        self._require()
        return tags(self.catalog)

    def untag(self, name: str, *, progress: Progress | None = None) -> int:
        """Remove a tag from every table (how many had it); its snapshots expire like any old one."""
        from stedi.states.tags import untag

        self._require()
        with self._writing("untag", progress):
            return untag(self.catalog, name)

    def export(self, table: str, out: str | Path, *, as_of: str | None = None) -> ExportManifest:
        """Write `table` as it stood in a state (default: now) into the new or empty folder `out`: its
        Parquet files, byte for byte, and manifest.json (snapshot ids, rows, sha256 of each file)."""
        from stedi.states.export import export

        get_table(table)
        return export(self.catalog, table, self.state(as_of), Path(out))

    def rollback(self, *, run: str | None = None, tag: str | None = None,
                 progress: Progress | None = None) -> RunReport:
        """Restore every table to the state of run `run` or tag `tag`, as new snapshots (recorded as a run).
        Refused for a state from before an erasure, or whose snapshots or files are gone."""
        from stedi.errors import StateError
        from stedi.states.resolve import recorded, resolve, tag_states
        from stedi.states.rollback import rollback

        if (run is None) == (tag is None):
            raise StateError("give the state to restore: a run id or a tag (one of them)")
        self._require()
        with self._writing("rollback", progress), self.catalog.cached():
            if tag is not None and tag not in tag_states(self.catalog):
                raise StateError(f"no tag {tag!r}; the tags are: {', '.join(tag_states(self.catalog)) or 'none'}")
            runs = recorded(self.catalog)
            if run is not None and run not in {r.run_id for r in runs}:
                raise StateError(f"no run {run!r} is recorded (`stedi history` lists the runs)")
            # resolved without the expiry check: a state from before an erasure is refused as such first
            state = resolve(self.catalog, tag if tag is not None else str(run), expired_ok=True)
            return rollback(self.settings, self.catalog, state, runs, progress)

    def report(self, out: str | Path | None = None, *, as_of: str | None = None) -> str:
        """Write the report of the lakehouse as it stood in a state (default: now) as one self-contained HTML
        file (docs/report.md): to `out`, a local path or s3://bucket/key.html (default ./report.html).
        Returns where it wrote."""
        from stedi.report import render_report
        from stedi.report.output import write_page

        page = render_report(self, as_of)
        target = str(out) if out is not None else "report.html"
        return write_page(page, target, self.settings.s3_connection() if is_s3(target) else None)

    def verify_reconciliation(self) -> list[dict[str, Any]]:
        """The latest run's reconciliation figures (as `reconcile()`), verified: every source it recorded is
        recounted from the current tables by `sql/reconcile/<source>.sql` under this lakehouse's consent
        policy. A ReconciliationError lists every figure that disagrees. A reader: no lock is taken."""
        from stedi.pipeline.reconcile import verify

        figures = self.reconcile()
        if figures:
            verify(self.settings, self.catalog, {f["source"]: f for f in figures}, figures[0]["run_id"])
        return figures

    def optimize(self, *, retention_days: float | None = None, grace_minutes: float | None = None,
                 progress: Progress | None = None) -> list[OptimizeReport]:
        """Compact small table files and expire snapshots older than the retention (see stedi.iceberg.optimize)."""
        from stedi.iceberg.optimize import optimize
        from stedi.pipeline.history import record_optimize

        self._require()
        with self._writing("optimize", progress):
            started = datetime.now(UTC)
            try:
                reports = optimize(self.settings, self.catalog, retention_days, progress, grace_minutes)
            except Exception as exc:  # recorded in the history, then raised as it was
                with contextlib.suppress(Exception):
                    record_optimize(self.catalog, self.settings.consent_policy, {}, started,
                                    (str(exc).splitlines() or [type(exc).__name__])[0])
                raise
            record_optimize(self.catalog, self.settings.consent_policy,
                            {r.table: r.compacted for r in reports if TABLES[r.table].kind != "history"}, started)
            return reports

    def tables(self, *, as_of: str | None = None) -> list[TableInfo]:
        """Every table with its zone, row count, last update and snapshot (in the state `as_of` names)."""
        self._require()
        with self.catalog.cached():
            past = None if as_of is None else self.state(as_of)
            return [self._info(name, past, as_of) for name in TABLES]

    def describe(self, name: str, *, as_of: str | None = None) -> TableInfo:
        get_table(name)
        self._require()
        with self.catalog.cached():
            return self._info(name, None if as_of is None else self.state(as_of), as_of)

    def _info(self, name: str, past: LakeState | None = None, as_of: str | None = None) -> TableInfo:
        """A table now, or in the state `past`: a data table's snapshot then; an audit table's rows up to it
        (every command appends to an audit table: its snapshot is no part of a state)."""
        from stedi.iceberg.refs import snapshot_state

        table = get_table(name)
        if past is None:
            state = self.catalog.state(table)
        elif table.kind == "history":  # its rows up to the state, read from its current snapshot
            now = self.catalog.state(table)
            rows = self.sql(f"select count(*) from {name}", as_of=as_of).column(0)[0].as_py()
            state = None if now is None else TableState(name, [], rows, now.snapshot_id, None, None)
        else:
            snapshot = past.snapshots.get(name)
            state = None if snapshot is None else snapshot_state(self.catalog, table, snapshot)
        return TableInfo(
            name=table.name, zone=table.zone, built=state is not None and state.snapshot_id is not None,
            rows=state.rows if state else 0, files=len(state.files) if state else 0,
            snapshot_id=state.snapshot_id if state else None, updated=state.updated if state else None,
            columns=table.columns, doc=table.doc,
        )
