"""The landing step of a run: each source's landed files read and validated (stedi.landing.reader), then
committed, all sources or none: a `fail` rule or too much quarantined stops the run before any commit.
A landing table grows by the new files alone when every file it holds is still landed unchanged. After
the landing commits, the records `warn` rules matched are committed to quality_failures
(stedi.pipeline.failures), and each landing snapshot keeps its rules' counts (stedi.pipeline.rules)."""

from __future__ import annotations

import concurrent.futures
import json
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stedi import faults
from stedi.config import Settings
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.landing.quality import Check, CheckResult, load_checks
from stedi.landing.records import VERSION as PARSER_VERSION
from stedi.landing.zone import LandedFile, LandingZone
from stedi.pipeline.failures import FAILURES, SourceFailures, commit_failures, failures_of
from stedi.pipeline.plan import LOADED, READ, RULE_COUNTS, RULES, UNKNOWN, WARNINGS, fingerprint_of
from stedi.pipeline.report import Progress, TableRun
from stedi.pipeline.rules import RuleCount, counted, counts_of, rule_counts
from stedi.tables import Table, quarantine_table

if TYPE_CHECKING:
    from collections.abc import Callable

    from stedi.engines.base import Tasks
    from stedi.landing.reader import LandingReader, SourceRead


@dataclass(frozen=True)
class _ToRead:
    """A source whose landed files must be read, and where its rows go."""

    table: Table
    fingerprint: str
    rules: str
    files: list[LandedFile]  # every landed file of the source
    to_read: list[LandedFile]  # those to read: all, or the new ones
    folders: tuple[str, str, str]  # landing, quarantine and failures folders (new)
    checks: list[Check]
    already: tuple[int, int]  # (read, quarantined) of the files read before
    base: tuple[TableState, TableState] | None
    snapshots: tuple[int | None, int | None]


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


class LandingStep:
    """Reads and validates the landed files of each source; commits only if every source passed."""

    def __init__(self, settings: Settings, catalog: TableCatalog, zone: LandingZone, run_id: str, full_refresh: bool,
                 say: Progress, tasks: Callable[[], Tasks] | None = None) -> None:
        self.settings, self.catalog, self.zone, self.run_id = settings, catalog, zone, run_id
        self.tasks = tasks  # where batches are read: the Spark engine's executors; None: in this process
        self.full_refresh, self.say = full_refresh, say
        self.states: dict[str, TableState] = {}
        self.read: dict[str, int] = {}
        self.warnings: dict[str, int] = {}
        self.checks: list[CheckResult] = []  # the rules run in this run, over the records it read
        self.rules: list[Check] = []  # every rule defined
        self.counts: dict[str, dict[str, int]] = {}  # per source: each rule's count over its landing table
        self.added: dict[str, list[str]] = {}  # landing tables appended this run: their new data files
        self.before: dict[str, TableState] = {}  # and their states before

    def build(self, tables: list[Table], landed: list[LandedFile], number: dict[str, str]) -> dict[str, TableRun]:
        from stedi.landing.reader import LandingReader

        checks = self.rules = load_checks(self.settings) if tables else []
        results: dict[str, TableRun] = {}
        fstate = self.catalog.state(FAILURES) if tables else None  # the failures held: of which landing tables
        held = failures_of(fstate)
        pending: list[_ToRead] = []  # the sources to read, in order
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
                rules = fingerprint_of(table, f"landing_reader {PARSER_VERSION}", [
                    self.settings.max_record_bytes, self.settings.max_quarantine_share,
                    [(c.name, c.action, c.sql) for c in own]])
                fingerprint = fingerprint_of(table, rules, [[(f.name, f.sha256) for f in files]])
                qtable = quarantine_table(table.source)
                state, qstate = self.catalog.state(table), self.catalog.state(qtable)
                # up to date: the landing and quarantine tables, the rule counts and the failures held are
                # all of these files and rules (else it is read again: a run killed between the commits)
                if (not self.full_refresh and state is not None and qstate is not None
                        and state.fingerprint == fingerprint and qstate.fingerprint == fingerprint
                        and counts_of(state) is not None and held.get(table.source) == fingerprint):
                    self._keep(table, state, qstate)
                    results[table.name] = TableRun(table.name, table.zone, "up to date", self.read[table.source],
                                                   state.rows, time.perf_counter() - t0, qstate.rows)
                    self.say(f"      {table.name} up to date: {self.read[table.source]:,} rows in, "
                             f"{state.rows:,} rows out")
                    continue
                # it may grow only if its counts and failures are those of the records it holds
                grows = (state is not None and counts_of(state) is not None
                         and held.get(table.source) == state.fingerprint)
                new = None if self.full_refresh or not grows else _new_files(state, qstate, rules, files)
                reader = reader or LandingReader(self.settings, self.zone, self.run_id, self.tasks)
                folder = f"{self.run_id}-{uuid.uuid4().hex[:6]}"
                if new:
                    self.say(f"      {len(new):,} new landed files of {len(files):,}: reading only those")
                already = (int(state.summary.get(READ, 0)), qstate.rows) if new and state and qstate else (0, 0)
                base = (state, qstate) if new and state is not None and qstate is not None else None
                snapshots = (state.snapshot_id if state else None, qstate.snapshot_id if qstate else None)
                folders = (f"{self.catalog.data_location(table)}/{folder}",
                           f"{self.catalog.data_location(qtable)}/{folder}",
                           f"{self.catalog.data_location(FAILURES)}/{folder}-{table.source}")
                pending.append(_ToRead(table, fingerprint, rules, files, new or files, folders, own, already, base,
                                       snapshots))
            to_commit = self._read_all(reader, pending) if reader is not None else []
        except BaseException:
            if reader is not None:  # a later source failed: what earlier ones wrote is never committed
                reader.discard()
            raise
        finally:
            if reader is not None:
                reader.close()
        faults.point("run:landing-read")

        # Every source passed its rules: now commit (each table atomically). The sources commit side by
        # side: a commit is mostly waiting on storage (three writes, each a request on S3).
        failed: list[SourceFailures] = []
        with ThreadPoolExecutor(max_workers=max(1, len(to_commit)), thread_name_prefix="stedi-commit") as pool:
            commits = [pool.submit(self._commit, item) for item in to_commit]
            for item, commit in zip(to_commit, commits, strict=True):
                table, read = item.table, item.read
                assert table.source is not None
                state, qstate, status, committing = commit.result()
                failed.append(SourceFailures(table.source, item.fingerprint, read.failure_files, status == "built"))
                faults.point("run:landing-committed")
                self._keep(table, state, qstate)
                if status == "appended":
                    assert item.base is not None
                    self.added[table.name] = read.landing_files
                    self.before[table.name] = item.base[0]
                self.checks.extend(read.checks)
                results[table.name] = TableRun(table.name, table.zone, status, read.read, read.rows,
                                               item.seconds + committing, read.quarantined)
                self.say(f"      {table.name} {status}: {read.read:,} rows in, {read.rows:,} rows out, "
                         f"{read.quarantined:,} quarantined ({item.seconds:.2f} s)")
        if failed:  # one commit for every source, on the snapshot read before: a failure is never held twice
            t0 = time.perf_counter()
            fstate, done = commit_failures(self.settings, self.catalog, fstate, failed)
            faults.point("run:failures-committed")
            results[FAILURES.name] = TableRun(FAILURES.name, FAILURES.zone, done,
                                              sum(r.read.rows for r in to_commit), fstate.rows,
                                              time.perf_counter() - t0)
        elif fstate is not None and fstate.snapshot_id is not None:
            results[FAILURES.name] = TableRun(FAILURES.name, FAILURES.zone, "up to date", fstate.rows, fstate.rows,
                                              0.0)
        if fstate is not None and fstate.snapshot_id is not None:
            self.states[FAILURES.name] = fstate
        return results

    def _read_all(self, reader: LandingReader, pending: list[_ToRead]) -> list[_SourceRead]:
        """Read the sources: one after the other in this process; on Spark side by side, so the tasks of
        all of them keep every executor busy. Every read ends before the first failure is raised (a failed
        run deletes what they wrote only once nothing writes any more)."""
        def read(plan: _ToRead) -> _SourceRead:
            t0 = time.perf_counter()
            assert plan.table.source is not None
            landing, quarantine, failures = plan.folders
            done = reader.read(plan.table.source, plan.to_read, landing, quarantine, plan.checks, plan.already,
                               failures)
            return _SourceRead(plan.table, plan.fingerprint, plan.rules, plan.files, done, plan.base, plan.snapshots,
                               time.perf_counter() - t0)

        if self.tasks is None or len(pending) < 2:
            results = [read(plan) for plan in pending]
        else:
            with ThreadPoolExecutor(max_workers=len(pending), thread_name_prefix="stedi-read") as pool:
                futures = [pool.submit(read, plan) for plan in pending]
                concurrent.futures.wait(futures)
            results = [f.result() for f in futures]  # the first failure, in source order
        for item in results:
            self._tell(item.read)
        return results

    def rule_counts(self) -> list[RuleCount]:
        """Each rule's count over each source's landing table as it is now (read or found up to date)."""
        return [c for source, counts in self.counts.items() for c in rule_counts(source, self.rules, counts)]

    def _commit(self, item: _SourceRead) -> tuple[TableState, TableState, Literal["built", "appended"], float]:
        """Commit a source's landing and quarantine tables: replaced, or grown by the new files."""
        table, fingerprint, read, base = item.table, item.fingerprint, item.read, item.base
        assert table.source is not None
        t0 = time.perf_counter()
        warned = sum(r.rows for r in read.checks if r.check.action == "warn")
        loaded = "\n".join(f"{f.name} {f.sha256}" for f in item.files)
        props = {READ: str(read.read), UNKNOWN: json.dumps(read.unknown_fields), WARNINGS: str(warned),
                 RULES: item.rules, LOADED: loaded, RULE_COUNTS: json.dumps(counted(read.checks))}
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
                      UNKNOWN: json.dumps(dict(sorted(unknown.items()))),
                      RULE_COUNTS: json.dumps(counted(read.checks, counts_of(base[0])))})
        state = self.catalog.append(table, read.landing_files, fingerprint, props, base=on)
        qstate = self.catalog.append(qtable, read.quarantine_files, fingerprint, base=qon)
        return state, qstate, "appended", time.perf_counter() - t0

    def _keep(self, table: Table, state: TableState, qstate: TableState) -> None:
        assert table.source is not None
        self.states[table.name] = state
        self.states[qstate.name] = qstate
        self.read[table.source] = int(state.summary.get(READ, state.rows + qstate.rows))
        self.warnings[table.source] = int(state.summary.get(WARNINGS, 0))
        self.counts[table.source] = counts_of(state) or {}

    def _tell(self, read: SourceRead) -> None:
        if read.tasks:
            self.say(f"      {read.source} read by {read.tasks:,} Spark task{'s' if read.tasks != 1 else ''} in "
                     f"{len(read.workers):,} executor process{'es' if len(read.workers) != 1 else ''}")
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


