"""`stedi run`: landing -> trusted -> curated, each table in one atomic Iceberg commit.

1. Landing: each source's landed files are read and validated once (stedi.landing.reader); valid
   records become the landing table, the rest its quarantine table. A `fail` rule or too much
   quarantined stops the run here, before anything is committed.
2. Derived tables: the engine runs each table's `.sql`, a table starting as soon as its inputs are built.
3. Reconciliation: every source's records are accounted for, counted in the background as soon as the
   source's tables are built, and the figures appended to the history.

A table is rebuilt only when what it is built from changed: its SQL, its columns, the landed files and
quality checks (landing tables) or the content of its input tables. That fingerprint is stored in the
snapshot, so a rerun with no new landing data commits nothing and every table keeps its rows. When
the inputs only grew (new landed files), a landing table reads only the new files and a derived table
whose SQL is linear in the grown inputs runs it over their new rows: both grow by an APPEND snapshot.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Literal

from stedi import faults
from stedi.build.reconcile import Figures, Reconciliation, last_counts, record
from stedi.config import Settings
from stedi.engines import check_settings, open_engine
from stedi.engines.base import Engine
from stedi.errors import LandingError, QualityError
from stedi.iceberg.catalog import Catalog, TableState
from stedi.landing.quality import CheckResult, load_checks
from stedi.landing.zone import LandedFile, LandingZone, open_landing
from stedi.privacy.guard import pii_guard
from stedi.privacy.keys import key_id, load_key, pseudonym
from stedi.sqltext import quote
from stedi.storage.files import open_uri
from stedi.tables import RESEARCH_TABLES, Table, build_order, quarantine_table

if TYPE_CHECKING:
    from stedi.landing.reader import SourceRead

FORMAT = "2"  # bump to rebuild every table after a change in how tables are written
READ = "stedi.records-read"  # landing snapshot property: records read from the landed files
UNKNOWN = "stedi.unknown-fields"  # landing snapshot property: extra fields seen, with counts
WARNINGS = "stedi.warnings"  # landing snapshot property: rows flagged by warn rules
LOADED = "stedi.loaded-files"  # landing snapshot property: the landed files in the table, "name sha256" lines
RULES = "stedi.rules"  # landing snapshot property: fingerprint of how files are read (limits, checks)
INPUTS = "stedi.inputs"  # derived snapshot property: {input: content id of its files} the table was built from
DEFINITION = "stedi.definition"  # derived snapshot property: fingerprint of its SQL, columns and settings
Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableRun:
    table: str
    zone: str
    status: Literal["built", "appended", "up to date"]
    rows_in: int
    rows_out: int
    seconds: float
    quarantined: int = 0


@dataclass(frozen=True)
class RunReport:
    run_id: str
    engine: str
    tables: list[TableRun]
    seconds: float
    reconciliation: list[Figures] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)


def table_sql(table: Table) -> str:
    """The transformation of a derived table: its `.sql` file, shipped as package data."""
    return resources.files("stedi").joinpath("sql", table.zone, f"{table.name}.sql").read_text(encoding="utf-8")


def run(settings: Settings, catalog: Catalog, select: list[str] | None = None, full_refresh: bool = False,
        progress: Progress | None = None, zone: LandingZone | None = None) -> RunReport:
    """Build the tables; the caller holds the writer lock (stedi.api). `zone`: the landing zone, with the
    suppression list that keeps erased people out of files found in it."""
    with catalog.cached():
        return _run(settings, catalog, select, full_refresh, progress, zone)


def _run(settings: Settings, catalog: Catalog, select: list[str] | None, full_refresh: bool,
         progress: Progress | None, zone: LandingZone | None) -> RunReport:
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    order = build_order(select)  # validates the selected names first
    check_settings(settings)  # the landing reader, the reconciliation and the PII guard run on DuckDB
    if settings.engine == "spark" and settings.remote:
        _check_spark_s3(settings)  # before any work: the session would fail only after the landing read
    zone = zone or open_landing(settings)
    landed = zone.files()
    if not landed:
        raise LandingError(f"the landing zone {zone.root} is empty; land data first with "
                           "`stedi ingest PATH` (or make some with `stedi generate --out DIR`)")
    # The pseudonym key is checked first: a run that needs it and has none stops before any work.
    key = load_key(settings) if any("pseudonyms" in t.uses for t in order) else None
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    number = {t.name: f"[{i}/{len(order)}]" for i, t in enumerate(order, start=1)}

    landing = _Landing(settings, catalog, zone, run_id, full_refresh, say)
    # The engine starts while the landed files are read: a Spark session takes seconds to come up.
    with ThreadPoolExecutor(max_workers=1) as starter:
        starting = starter.submit(open_engine, settings)
        try:
            results = landing.build([t for t in order if t.kind == "landing"], landed, number)
        except BaseException:
            with contextlib.suppress(Exception):
                starting.result().close()
            raise
        engine = starting.result()
    states = landing.states

    # --full-refresh trusts nothing kept from earlier runs, the last counts included
    reconciliation = Reconciliation(settings, settings.consent_policy, last_counts(catalog),
                                    reuse=not full_refresh)
    try:
        build = _Build(settings, catalog, engine, run_id, full_refresh, states, say, key, landing.added,
                       built=reconciliation.offer)
        try:
            engine.register_rows("run_settings", [("consent_policy", "string")], [(settings.consent_policy,)])
            for name, state in states.items():
                build.register(name, state)
            derived = [t for t in order if t.kind == "derived"]
            results.update(build.all(derived, number))
        finally:
            engine.close()
        suppressed = Counter[str]()
        for entry in landed:
            suppressed[entry.source] += entry.suppressed or 0
        figures = reconciliation.figures(states, landing.read, landing.warnings, suppressed)
    finally:
        reconciliation.close()
    faults.point("run:reconciled")
    if figures:
        record(catalog, run_id, figures, reconciliation.to_keep(figures))
    report = RunReport(run_id, engine.name, [results[t.name] for t in order], time.perf_counter() - started,
                       figures, landing.checks)
    off = [f for f in figures if not f.balanced]
    if off:
        raise QualityError("the records do not balance: " + "; ".join(
            f"{f.source}: read {f.read:,} != kept {f.kept:,} + filtered {f.filtered:,} + quarantined "
            f"{f.quarantined:,} + duplicates {f.duplicates:,}" for f in off)
            + " (the figures are in `stedi reconcile`); this is a bug in stedi: please report it")
    return report


def _check_spark_s3(settings: Settings) -> None:
    try:
        from stedi.engines.spark import SparkSession, check_s3
    except ImportError:
        return  # open_engine reports the missing extra
    check_s3(settings, SparkSession.getActiveSession())


@dataclass(frozen=True)
class _SourceRead:
    """A source read by the landing reader, waiting for its commit."""

    table: Table
    fingerprint: str
    rules: str
    files: list[LandedFile]  # every landed file of the source (recorded in the snapshot)
    read: SourceRead
    base: tuple[TableState, TableState] | None  # landing and quarantine states to grow; None: replace them
    snapshots: tuple[int | None, int | None]  # the landing and quarantine snapshots it was read against
    seconds: float  # spent reading


class _Landing:
    """Reads and validates the landed files of each source; commits only if every source passed."""

    def __init__(self, settings: Settings, catalog: Catalog, zone: LandingZone, run_id: str, full_refresh: bool,
                 say: Progress) -> None:
        self.settings, self.catalog, self.zone, self.run_id = settings, catalog, zone, run_id
        self.full_refresh, self.say = full_refresh, say
        self.states: dict[str, TableState] = {}
        self.read: dict[str, int] = {}
        self.warnings: dict[str, int] = {}
        self.checks: list[CheckResult] = []
        self.added: dict[str, list[str]] = {}  # landing tables appended this run: their new data files

    def build(self, tables: list[Table], landed: list[LandedFile], number: dict[str, str]) -> dict[str, TableRun]:
        from stedi.landing.reader import LandingReader

        checks = load_checks(self.settings) if tables else []
        results: dict[str, TableRun] = {}
        to_commit: list[_SourceRead] = []
        reader: LandingReader | None = None
        try:
            for table in tables:
                assert table.source is not None
                self.say(f"{number[table.name]} {table.name} ...")
                t0 = time.perf_counter()
                files = [f for f in landed if f.source == table.source]
                if not files:
                    self.say(f"      no landed {table.source} files: {table.name} is empty")
                own = [c for c in checks if c.source == table.source]
                rules = _fingerprint(table, "landing_reader", [
                    self.settings.max_record_bytes, self.settings.max_quarantine_share,
                    [(c.name, c.action, c.sql) for c in own]])
                fingerprint = _fingerprint(table, rules, [[(f.name, f.sha256) for f in files]])
                qtable = quarantine_table(table.source)
                state, qstate = self.catalog.state(table), self.catalog.state(qtable)
                if (not self.full_refresh and state is not None and qstate is not None
                        and state.fingerprint == fingerprint and qstate.fingerprint == fingerprint):
                    self._keep(table, state, qstate)
                    results[table.name] = TableRun(table.name, table.zone, "up to date", self.read[table.source],
                                                   state.rows, time.perf_counter() - t0, qstate.rows)
                    self.say(f"      {table.name} up to date: {self.read[table.source]:,} rows in, "
                             f"{state.rows:,} rows out")
                    continue
                new = None if self.full_refresh else _new_files(state, qstate, rules, files)
                reader = reader or LandingReader(self.settings, self.zone, self.run_id)
                folder = f"{self.run_id}-{uuid.uuid4().hex[:6]}"
                if new:
                    self.say(f"      {len(new):,} new landed files of {len(files):,}: reading only those")
                already = (int(state.summary.get(READ, 0)), qstate.rows) if new and state and qstate else (0, 0)
                read = reader.read(table.source, new or files, f"{self.catalog.data_location(table)}/{folder}",
                                   f"{self.catalog.data_location(qtable)}/{folder}", own, already)
                base = (state, qstate) if new else None
                snapshots = (state.snapshot_id if state else None, qstate.snapshot_id if qstate else None)
                to_commit.append(_SourceRead(table, fingerprint, rules, files, read, base, snapshots,
                                             time.perf_counter() - t0))
                self._tell(read)
        finally:
            if reader is not None:
                reader.close()
        faults.point("run:landing-read")

        # Every source passed its rules: now commit (each table atomically). The sources commit side by
        # side: a commit is mostly waiting on storage (three writes, each a request on S3).
        with ThreadPoolExecutor(max_workers=max(1, len(to_commit)), thread_name_prefix="stedi-commit") as pool:
            commits = [pool.submit(self._commit, item) for item in to_commit]
            for item, commit in zip(to_commit, commits, strict=True):
                table, read = item.table, item.read
                state, qstate, status, committing = commit.result()
                faults.point("run:landing-committed")
                self._keep(table, state, qstate)
                if status == "appended":
                    self.added[table.name] = read.landing_files
                self.checks.extend(read.checks)
                results[table.name] = TableRun(table.name, table.zone, status, read.read, read.rows,
                                               item.seconds + committing, read.quarantined)
                self.say(f"      {table.name} {status}: {read.read:,} rows in, {read.rows:,} rows out, "
                         f"{read.quarantined:,} quarantined ({item.seconds:.2f} s)")
        return results

    def _commit(self, item: _SourceRead) -> tuple[TableState, TableState, Literal["built", "appended"], float]:
        """Commit a source's landing and quarantine tables: replaced, or grown by the new files."""
        table, fingerprint, read, base = item.table, item.fingerprint, item.read, item.base
        assert table.source is not None
        t0 = time.perf_counter()
        warned = sum(r.rows for r in read.checks if r.check.action == "warn")
        loaded = "\n".join(f"{f.name} {f.sha256}" for f in item.files)
        props = {READ: str(read.read), UNKNOWN: json.dumps(read.unknown_fields), WARNINGS: str(warned),
                 RULES: item.rules, LOADED: loaded}
        qtable = quarantine_table(table.source)
        # Each commit is a compare-and-swap on the snapshot the files were read against: another writer's
        # commit in between refuses it, so the same landed file can never be added twice.
        on, qon = item.snapshots
        if base is None:
            state = self.catalog.replace(table, read.landing_files, fingerprint, props, base=on)
            qstate = self.catalog.replace(qtable, read.quarantine_files, fingerprint, base=qon)
            return state, qstate, "built", time.perf_counter() - t0
        # New files only: the tables grow by an APPEND snapshot; the figures add up.
        old = base[0].summary
        unknown = Counter(json.loads(old.get(UNKNOWN, "{}"))) + Counter(read.unknown_fields)
        props.update({READ: str(int(old.get(READ, 0)) + read.read),
                      WARNINGS: str(int(old.get(WARNINGS, 0)) + warned),
                      UNKNOWN: json.dumps(dict(sorted(unknown.items())))})
        state = self.catalog.append(table, read.landing_files, fingerprint, props, base=on)
        qstate = self.catalog.append(qtable, read.quarantine_files, fingerprint, base=qon)
        return state, qstate, "appended", time.perf_counter() - t0

    def _keep(self, table: Table, state: TableState, qstate: TableState) -> None:
        assert table.source is not None
        self.states[table.name] = state
        self.states[qstate.name] = qstate
        self.read[table.source] = int(state.summary.get(READ, state.rows + qstate.rows))
        self.warnings[table.source] = int(state.summary.get(WARNINGS, 0))

    def _tell(self, read: SourceRead) -> None:
        for result in read.checks:
            if result.rows and result.check.action == "warn":
                self.say(f"      warning: {result.rows:,} {read.source} records: {result.check.reason} "
                         f"({result.check.name})")
        if read.unknown_fields:
            fields = ", ".join(f"{k} ({n:,})" for k, n in read.unknown_fields.items())
            self.say(f"      note: {read.source} records carry fields outside the schema, left out of the "
                     f"tables and kept in the landed files: {fields}")


def _new_files(state: TableState | None, qstate: TableState | None, rules: str,
               files: list[LandedFile]) -> list[LandedFile] | None:
    """The landed files not yet in the landing table, when it can simply grow by them: same rules, and
    every file it holds still landed unchanged. None when the table must be rebuilt from every file
    (first build, changed rules, a file rewritten by an erasure or removed)."""
    if state is None or qstate is None or state.summary.get(RULES) != rules or LOADED not in state.summary:
        return None
    loaded = dict(line.split(" ", 1) for line in state.summary[LOADED].splitlines() if line)
    current = {f.name: f.sha256 for f in files}
    if any(current.get(name) != sha for name, sha in loaded.items()):
        return None
    new = [f for f in files if f.name not in loaded]
    return new or None


class _Build:
    """Builds derived tables: skips one whose fingerprint is unchanged, else computes and commits it."""

    def __init__(self, settings: Settings, catalog: Catalog, engine: Engine, run_id: str, full_refresh: bool,
                 states: dict[str, TableState], say: Progress, key: bytes | None,
                 added: dict[str, list[str]], built: Callable[[dict[str, TableState]], None]) -> None:
        self.settings, self.catalog, self.engine = settings, catalog, engine
        self.run_id, self.full_refresh, self.say = run_id, full_refresh, say
        self.states = states
        self.key = key
        self.added = dict(added)  # tables appended this run (landing and derived): their new data files
        self.built = built  # told of the states each time a table is done (the reconciliation starts early)
        # Growing a table re-points its inputs' views at their new rows for a moment, which only a
        # one-build-at-a-time engine allows; the others rebuild.
        self.can_grow = engine.parallel_builds == 1
        self._commit = threading.Lock()  # one catalog commit at a time (SQLite, and simpler to reason about)

    def register(self, name: str, state: TableState) -> None:
        from stedi.tables import TABLES

        self.engine.register_parquet(name, state.files, TABLES[name])

    def _register_pseudonyms(self) -> None:
        """email -> customer_key for the curated customers, in the engine's memory only."""
        import pyarrow.parquet as pq

        assert self.key is not None
        emails: set[str] = set()
        s3 = self.settings.s3_connection() if self.settings.remote else None
        for uri in self.states["customers_curated"].files:
            fs, path = open_uri(uri, s3)
            emails.update(e for e in pq.read_table(path, columns=["email"], filesystem=fs).column(0).to_pylist()
                          if e)
        self.engine.register_rows("pseudonyms", [("email", "string"), ("customer_key", "string")],
                                  [(e, pseudonym(self.key, e)) for e in sorted(emails)])

    def all(self, tables: list[Table], number: dict[str, str]) -> dict[str, TableRun]:
        """Each table starts as soon as its inputs are built (with an engine that builds in parallel,
        step_trainer_trusted can overlap accelerometer_trusted, and so on)."""
        results: dict[str, TableRun] = {}
        waiting = list(tables)
        with ThreadPoolExecutor(max_workers=self.engine.parallel_builds) as pool:
            running: dict[Future[TableRun], Table] = {}
            while waiting or running:
                ready = [t for t in waiting if all(i in self.states for i in t.inputs)]
                for table in ready[: self.engine.parallel_builds - len(running)]:
                    self.say(f"{number[table.name]} {table.name} ...")
                    running[pool.submit(self.table, table)] = table
                    waiting.remove(table)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    result = future.result()  # re-raises a failed build; the pool waits for the rest
                    results[result.table] = result
                    self.built(self.states)
        return results

    def table(self, table: Table) -> TableRun:
        t0 = time.perf_counter()
        sql = table_sql(table)
        # An input is named by its fingerprint, which fixes its content (so compacting it rebuilds nothing);
        # by its snapshot when another writer left none.
        inputs: list[object] = [(name, self.states[name].fingerprint or self.states[name].snapshot_id)
                                for name in table.inputs]
        rows_in = sum(self.states[name].rows for name in table.inputs)
        settings: list[object] = []
        if "run_settings" in table.uses:
            settings.append(("consent_policy", self.settings.consent_policy))
        if "pseudonyms" in table.uses:
            assert self.key is not None
            settings.append(("pseudonym_key", key_id(self.key)))
        fingerprint = _fingerprint(table, sql, inputs + settings)
        definition = _fingerprint(table, sql, settings)
        with self._commit:
            state = self.catalog.state(table)
            folder = f"{self.catalog.data_location(table)}/{self.run_id}"
        status: Literal["built", "appended", "up to date"] = "up to date"
        if state is None or state.fingerprint != fingerprint or self.full_refresh:
            if "pseudonyms" in table.uses:
                self._register_pseudonyms()
            props = {INPUTS: json.dumps({n: _content_id(self.states[n].files) for n in table.inputs},
                                        sort_keys=True), DEFINITION: definition}
            grown = None if self.full_refresh or state is None else self._grown(table, state, definition)
            if grown is not None:
                assert state is not None
                # no grown input: every input has the very files it was built from (rows were added but
                # none reached a table in between), so the table is already right
                files_written = self._grow(table, sql, grown, state, folder) if grown else []
            else:
                files_written, _rows = self.engine.write_parquet(sql, table, folder)
            if table.name in RESEARCH_TABLES:
                pii_guard(self.settings, table, files_written, self.states)  # before the commit
            on = state.snapshot_id if state else None  # the commit is a compare-and-swap on it
            with self._commit:
                if grown is not None:
                    state = self.catalog.append(table, files_written, fingerprint, props, base=on)
                    self.added[table.name] = files_written
                    status = "appended"
                else:
                    state = self.catalog.replace(table, files_written, fingerprint, props, base=on)
                    status = "built"
            faults.point("run:derived-committed")
        self.register(table.name, state)
        self.states[table.name] = state
        seconds = time.perf_counter() - t0
        self.say(f"      {table.name} {status}: {rows_in:,} rows in, {state.rows:,} rows out ({seconds:.2f} s)")
        return TableRun(table.name, table.zone, status, rows_in, state.rows, seconds)

    def _grown(self, table: Table, state: TableState, definition: str) -> list[str] | None:
        """The inputs that only grew since `table` was built from them, when that is all that changed and
        the table's SQL is linear in each (none if their files are all the same); None when it must be
        rebuilt."""
        if not self.can_grow or not table.linear_in or state.summary.get(DEFINITION) != definition:
            return None
        try:
            built_from = json.loads(state.summary.get(INPUTS, ""))
        except ValueError:
            return None
        grown = []
        for name in table.inputs:
            files = self.states[name].files
            if built_from.get(name) == _content_id(files):
                continue
            new = self.added.get(name)
            if name not in table.linear_in or not new or \
                    built_from.get(name) != _content_id(sorted(set(files) - set(new))):
                return None
            grown.append(name)
        return grown

    def _grow(self, table: Table, sql: str, grown: list[str], state: TableState, folder: str) -> list[str]:
        """The rows `table` gains from the new rows of `grown`: for inputs I1..In that grew by D1..Dn, the
        SQL over (I1+D1 .. Ii-1+Di-1, Di, Ii+1 .. In) for each i, which together are exactly the rows a
        rebuild adds (the SQL being linear in each); a set table leaves out rows it already holds."""
        from stedi.tables import TABLES

        written: list[str] = []
        old = {name: sorted(set(self.states[name].files) - set(self.added[name])) for name in grown}
        try:
            for i, name in enumerate(grown):
                for before in grown[:i]:
                    self.engine.register_parquet(before, self.states[before].files, TABLES[before])
                self.engine.register_parquet(name, self.added[name], TABLES[name])
                for after in grown[i + 1:]:
                    self.engine.register_parquet(after, old[after], TABLES[after])
                term = sql
                if table.is_set:
                    self.engine.register_parquet("_held", state.files + written, table)
                    columns = ", ".join(quote(c) for c in table.column_names)
                    term = (f"SELECT {columns} FROM ({sql.strip().rstrip(';')}) AS grown "
                            f"EXCEPT SELECT {columns} FROM _held")
                files, _rows = self.engine.write_parquet(term, table, f"{folder}/{i}")
                written += files
        finally:
            for name in grown:
                self.register(name, self.states[name])
        return written


def _content_id(files: list[str]) -> str:
    """Names the exact set of data files of a table (what a derived table was built from)."""
    return hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()


def _fingerprint(table: Table, sql: str, inputs: list[object]) -> str:
    spec = {"format": FORMAT, "sql": sql, "columns": [(c.name, c.type) for c in table.columns],
            "inputs": inputs}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


__all__ = ["RunReport", "TableRun", "run"]
