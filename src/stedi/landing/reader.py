"""Landed files -> the landing and quarantine tables of a source, every record accounted for.

Three paths, one result:
- quick: DuckDB reads the files with typed columns in one parse per record, and each file is accepted
  only if counts prove it clean (quick_select says how); most clean files end here.
- thorough: DuckDB reads every line as JSON, checks each value's JSON type and range against the schema
  in SQL (never casting "123" to 123), and extracts the typed values. Files whose every record passes
  are done.
- exact: a file DuckDB cannot read (malformed JSON, invalid UTF-8, a JSON array, a byte-order mark,
  an oversized record), or with any invalid record, is parsed by stedi.landing.records, which says what is wrong
  with which record (reason, position, raw text) and keeps the valid ones.
Then the source's quality checks run over the valid records (warn, quarantine or fail); the records a
`warn` rule matched stay, and are also written out for the table `quality_failures`. Nothing is
committed here: the pipeline commits once every source has been read without a failing rule.

A source's files are read in batches, each by `read_batch` with a DuckDB connection of its own: one after
the other in this process (the embedded engine), or side by side as Spark tasks on the executors (the
Spark engine: the work spreads over the cluster's workers, not the driver). One definition of the
validation serves both, so both engines start from the same rows, the same quarantine and the same rule
counts; the driver only adds up what the batches report.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import socket
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import pyarrow as pa

from stedi import faults
from stedi.config import Settings
from stedi.engines import memory_budget, open_session, task_cpus, task_executor
from stedi.engines.base import Session, StatementError, Tasks
from stedi.errors import LandingError, QualityError, StediError
from stedi.landing.quality import Check, CheckResult
from stedi.landing.records import parse_file
from stedi.landing.zone import LandedFile, LandingZone
from stedi.sqltext import literal, quote
from stedi.storage.files import Storage, open_uri
from stedi.tables import TABLES, Column, Table, landing_table, quarantine_table
from stedi.text import percent
from stedi.types import TYPES, arrow_type


@dataclass
class SourceRead:
    source: str
    read: int = 0  # records seen in the landed files
    rows: int = 0  # valid records kept in the landing table
    quarantined: int = 0
    landing_files: list[str] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)
    failure_files: list[str] = field(default_factory=list)  # rows for quality_failures: what warn rules matched
    unknown_fields: dict[str, int] = field(default_factory=dict)
    exact_files: list[str] = field(default_factory=list)  # files that needed the exact path
    quick_files: list[str] = field(default_factory=list)  # files proven clean by the quick path
    checks: list[CheckResult] = field(default_factory=list)
    tasks: int = 0  # Spark tasks that read it (0: read in this process)
    workers: list[str] = field(default_factory=list)  # the processes that read it, host:pid
    reasons: Counter[str] = field(default_factory=Counter)  # quarantine reason -> records


def _valid_type(column: Column, t: str, e: str) -> str:
    """SQL: the JSON value `e` of JSON type `t` is of the column's type (and in range)."""
    if column.type == "string":
        return f"{t} = 'VARCHAR'"
    if column.type == "bigint":
        return f"({t} = 'BIGINT' OR ({t} = 'UBIGINT' AND try_cast({e} AS BIGINT) IS NOT NULL))"
    if column.type == "int":
        return f"({t} IN ('BIGINT', 'UBIGINT') AND try_cast({e} AS INTEGER) IS NOT NULL)"
    return f"({t} IN ('BIGINT', 'UBIGINT', 'DOUBLE') AND coalesce(isfinite(try_cast({e} AS DOUBLE)), false))"


def _value(column: Column, t: str, e: str) -> str:
    check = _valid_type(column, t, e)
    value = f"{e} ->> '$'" if column.type == "string" else f"try_cast({e} AS {TYPES[column.type].duckdb})"
    return f"CASE WHEN {check} THEN {value} END AS {quote(column.name)}"


def fast_select(table: Table, files: list[str], max_record_bytes: int) -> str:
    """SQL: every record of `files` with its typed values, whether it is valid, and unknown fields."""
    paths = "[" + ", ".join(f"'$.{json.dumps(c.name)}'" for c in table.columns) + "]"
    values, valid = [], ["_object", "len(_keys) = len(list_distinct(_keys))"]
    for i, column in enumerate(table.columns, start=1):
        t, e = f"_t[{i}]", f"_v[{i}]"
        values.append(_value(column, t, e))
        ok = _valid_type(column, t, e)
        valid.append(ok if column.name in table.keys else f"({t} IS NULL OR {t} = 'NULL' OR {ok})")
    names = "[" + ", ".join(literal(c.name) for c in table.columns) + "]"
    return f"""
        SELECT filename AS _file, {", ".join(values)},
               coalesce({" AND ".join(valid)}, false) AS _valid,
               list_filter(_keys, k -> NOT list_contains({names}, k)) AS _extra
        FROM (
            SELECT filename, _object, _keys, _v, [json_type(e) FOR e IN _v] AS _t
            FROM (
                SELECT filename, json_type(json) = 'OBJECT' AS _object,
                       CASE WHEN json_type(json) = 'OBJECT' THEN json_keys(json) ELSE [] END AS _keys,
                       json_extract(json, {paths}) AS _v
                FROM read_json([{", ".join(literal(f) for f in files)}], format = 'newline_delimited',
                               records = false, columns = {{'json': 'JSON'}}, filename = true,
                               maximum_object_size = {max_record_bytes})
            )
        )"""


QUICK_READ = {"string": "JSON", "bigint": "VARCHAR", "int": "VARCHAR", "double": "DOUBLE"}


def quick_select(table: Table, files: list[str], max_record_bytes: int) -> str:
    """SQL: the records of `files` in one typed parse each, with their values (NULL where a value is not
    of its column's type) and how many schema fields each record carries.

    DuckDB's typed read is lenient: into a DOUBLE it takes "1.5" and true, into text any value. So text
    columns are read as JSON (a string starts with '"'), integers as the number's text (a real has a
    '.' or an exponent), and only doubles typed. What the read cannot see, `_quick` proves per file by
    counting against the bytes counted at ingest: no extra, duplicated or null member and no ':' inside
    a string (':' bytes = fields present); every member a string or a number (values starting with '"',
    '-' or a digit = ':' bytes); every string in a text column (string starts = valid text values); one
    record a line (lines = records). It cannot flag invalid values row by row (that costs as much as
    the parse), and accepts only files so proven."""
    inner, outer, present = [], [], []
    for column in table.columns:
        v = quote(column.name)
        inner.append(f"{_quick_value(column, v)} AS {v}")
        # a double is checked for finiteness outside, where it is a plain column
        outer.append(f"CASE WHEN isfinite({v}) THEN {v} END AS {v}" if column.type == "double" else v)
        present.append(f"({v} IS NOT NULL)::INTEGER")
    columns = "{" + ", ".join(f"{literal(c.name)}: '{QUICK_READ[c.type]}'" for c in table.columns) + "}"
    return f"""
        SELECT _file, {", ".join(outer)}, true AS _valid, NULL::VARCHAR[] AS _extra, _present
        FROM (
            SELECT filename AS _file, {", ".join(inner)}, {" + ".join(present)} AS _present
            FROM read_json([{", ".join(literal(f) for f in files)}], format = 'newline_delimited',
                           columns = {columns}, filename = true, maximum_object_size = {max_record_bytes})
        )"""


def _quick_value(column: Column, v: str) -> str:
    """SQL: one field as read by quick_select as the column's type, or NULL if it is not of that type.
    String tests on the text instead of a JSON parse per value: the same verdicts as `_valid_type`."""
    if column.type == "string":
        return f"CASE WHEN ascii({v}::VARCHAR) = 34 THEN {v} ->> '$' END"  # '"': a JSON string
    if column.type in ("bigint", "int"):
        # DuckDB writes a real with a '.' (1e3 as 1000.0); TRY_CAST would round 1.5 to 2
        return (f"CASE WHEN NOT contains({v}, '.') AND NOT contains({v}, 'e') AND NOT contains({v}, 'E') "
                f"THEN TRY_CAST({v} AS {TYPES[column.type].duckdb}) END")
    return v  # a double: infinities are refused outside


BATCH_BYTES = 256 << 20  # JSON read per batch: bounds memory (the batch's rows are held by DuckDB)


def _batches(files: list[LandedFile], limit: int) -> list[list[LandedFile]]:
    """`files` in name order, grouped into batches of about `limit` bytes (at least one file each)."""
    batches: list[list[LandedFile]] = [[]]
    size = 0
    for entry in sorted(files, key=lambda f: f.name):
        if batches[-1] and size + entry.size > limit:
            batches.append([])
            size = 0
        batches[-1].append(entry)
        size += entry.size
    return batches


def batch_bytes(total: int, tasks: int) -> int:
    """Bytes of JSON per batch: BATCH_BYTES in one process; spread over `tasks` parallel tasks (two
    batches each, so a slow one does not hold the rest up), but at least MIN_TASK_BYTES."""
    if tasks <= 1:
        return BATCH_BYTES
    return min(BATCH_BYTES, max(MIN_TASK_BYTES, -(-total // (2 * tasks))))


MIN_TASK_BYTES = 1 << 20  # below this, a Spark task costs more than it reads


@dataclass(frozen=True)
class BatchJob:
    """One batch of a source's landed files and where its rows go (each folder new, one per batch)."""

    source: str
    files: list[LandedFile]
    landing_folder: str
    quarantine_folder: str
    failures_folder: str | None  # rows for quality_failures (the records warn rules matched), if wanted
    checks: list[Check]

    @property
    def folders(self) -> list[str]:
        return [f for f in (self.landing_folder, self.quarantine_folder, self.failures_folder) if f is not None]


@dataclass
class BatchRead:
    """What reading one batch wrote and counted."""

    read: int = 0
    rows: int = 0
    quarantined: int = 0
    landing_files: list[str] = field(default_factory=list)
    quarantine_files: list[str] = field(default_factory=list)
    failure_files: list[str] = field(default_factory=list)
    unknown: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)  # check name -> rows it flagged
    reasons: Counter[str] = field(default_factory=Counter)  # quarantine reason -> records
    exact_files: list[str] = field(default_factory=list)
    quick_files: list[str] = field(default_factory=list)
    worker: str = ""  # the host and process that read it
    broken: str | None = None  # the `fail` rule the batch broke (nothing written; `counts` says how often)
    error: StediError | None = None  # what else stopped the read: a rule that cannot run, an unreadable file


class LandingReader:
    """Reads the landed files of each source: batch by batch in this process (one DuckDB connection for
    a run), or each batch as a task of `tasks` (the Spark engine's executors), with the same code."""

    def __init__(self, settings: Settings, zone: LandingZone, run_id: str,
                 tasks: Callable[[], Tasks] | None = None) -> None:
        self.settings = settings
        self.zone = zone
        self.run_id = run_id
        self._tasks = tasks
        self._db: Session | None = None
        self._folders: list[str] = []  # every folder written by the reads of this reader

    def discard(self) -> None:
        """Delete what every read wrote: the run stopped before committing it."""
        self._discard(self._folders)

    @property
    def db(self) -> Session:
        if self._db is None:
            self._db = open_session(self.settings)
        return self._db

    def close(self) -> None:
        if self._db is not None:
            self._db.close()

    def read(self, source: str, files: list[LandedFile], landing_folder: str, quarantine_folder: str,
             checks: list[Check], already: tuple[int, int] = (0, 0), failures_folder: str | None = None
             ) -> SourceRead:
        """Read `files`; `already` is (read, quarantined) of files read before (an incremental run), so the
        quarantine limit applies to the whole source, as in a full rebuild. The records `warn` rules
        matched are written as rows of quality_failures into `failures_folder` (when given).

        Files are read in batches of about BATCH_BYTES of JSON, each written out before the next is read,
        so memory stays flat however much has landed (quality checks see one batch at a time). On Spark,
        the batches are smaller, one task each, read side by side on the executors."""
        tasks = self._tasks() if self._tasks is not None else None
        limit = batch_bytes(sum(f.size for f in files), tasks.parallelism if tasks else 1)
        jobs = [BatchJob(source, batch, f"{landing_folder}/{n:04d}", f"{quarantine_folder}/{n:04d}",
                         f"{failures_folder}/{n:04d}" if failures_folder else None, checks)
                for n, batch in enumerate(_batches(files, limit))]
        parts: list[BatchRead] = []
        folders = [f for job in jobs for f in job.folders]
        self._folders += folders
        try:
            if tasks is not None:
                parts = tasks.run_tasks(functools.partial(read_in_task, self.settings, self.zone.storage,
                                                          self.run_id), jobs)
            else:
                for job in jobs:  # all of them, after a broken rule too: its message counts every record
                    parts.append(read_batch(self.db, self.settings, self.zone, self.run_id, job))
                    if parts[-1].error is not None:
                        break
            for part in parts:
                if part.error is not None:
                    raise part.error
            _raise_broken(source, checks, parts)
            result = _add_up(source, checks, parts, spread=tasks is not None)
            total, bad = result.read + already[0], result.quarantined + already[1]
            if total and bad / total > self.settings.max_quarantine_share:
                common = sorted(result.reasons.items(), key=lambda r: (-r[1], r[0]))[:3]
                raise QualityError(
                    f"{bad:,} of {total:,} {source} records ({percent(bad / total)}) would be quarantined, more "
                    f"than max_quarantine_share = {percent(self.settings.max_quarantine_share)}; most common reasons: "
                    + ", ".join(f"{r} ({n:,})" for r, n in common)
                    + ". Nothing was committed. Fix the landed data, or raise max_quarantine_share in stedi.toml")
        except BaseException:
            # nothing of a failed read is committed: its folders go (a task may have written files the
            # driver never heard of, so whole folders, not the files listed)
            self._discard(folders)
            raise
        return result

    def _discard(self, folders: list[str]) -> None:
        """Delete the folders written for a read that failed (their files were never committed)."""
        for folder in folders:
            _delete_folder(self.settings, folder)


def _delete_folder(settings: Settings, folder: str) -> None:
    fs, path = open_uri(folder, settings.s3_connection() if settings.remote else None)
    with contextlib.suppress(OSError):
        fs.delete_dir(path)


def _add_up(source: str, checks: list[Check], parts: list[BatchRead], spread: bool) -> SourceRead:
    """A source's read from its batches'."""
    result = SourceRead(source)
    unknown: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for part in parts:
        result.read += part.read
        result.rows += part.rows
        result.quarantined += part.quarantined
        result.landing_files += part.landing_files
        result.quarantine_files += part.quarantine_files
        result.failure_files += part.failure_files
        result.exact_files += part.exact_files
        result.quick_files += part.quick_files
        unknown.update(part.unknown)
        counts.update(part.counts)
        result.reasons.update(part.reasons)
    result.unknown_fields = dict(sorted(unknown.items()))
    result.workers = sorted({p.worker for p in parts})
    result.tasks = len(parts) if spread else 0
    own = sorted((c for c in checks if c.source == source),
                 key=lambda c: ("fail", "quarantine", "warn").index(c.action))
    result.checks = [CheckResult(c, counts[c.name]) for c in own]
    return result


def _raise_broken(source: str, checks: list[Check], parts: list[BatchRead]) -> None:
    """The first `fail` rule (in rule order) that some batch broke, counted over every batch."""
    broken = {p.broken for p in parts if p.broken}
    for check in checks:
        if check.name in broken:
            count = sum(p.counts[check.name] for p in parts)
            raise QualityError(f"check {check.name} ({check.origin}) failed on {count:,} {source} "
                               f"records: {check.reason}. Nothing was committed")


def read_in_task(settings: Settings, storage: Storage, run_id: str, job: BatchJob) -> BatchRead:
    """Read one batch inside a task on another process (a Spark executor): its own DuckDB connection,
    with the task's share of the machine (the executor runs other tasks beside it)."""
    cpus = task_cpus()
    share = max(256 << 20, memory_budget() * cpus // max(1, os.cpu_count() or 1))
    duckdb = {"threads": str(cpus), "memory_limit": f"{share >> 20}MB", **settings.duckdb}
    settings = replace(settings, duckdb=duckdb)
    zone = LandingZone(storage, settings.scratch_dir)
    for folder in job.folders:  # a task run again (its executor lost) starts from nothing
        _delete_folder(settings, folder)
    db = open_session(settings)
    try:
        part = read_batch(db, settings, zone, run_id, job)
        faults.point("landing:batch-read", task_executor)  # the files written, the driver not yet told
        return part
    finally:
        db.close()


def read_batch(db: Session, settings: Settings, zone: LandingZone, run_id: str, job: BatchJob) -> BatchRead:
    """Read one batch of landed files with `db`: valid rows to the landing folder, quarantined records
    to the quarantine folder, the records warn rules matched to the failures folder. A broken `fail`
    rule comes back as `broken` (with the counts), any other StediError as `error`: then nothing of
    the batch is left written."""
    table = landing_table(job.source)
    part = BatchRead(worker=f"{socket.gethostname()}:{os.getpid()}")
    quarantine: list[dict[str, object]] = []
    failures = TABLES["quality_failures"]
    db.execute("CREATE OR REPLACE TEMP TABLE _failures ("
               + ", ".join(f"{quote(c.name)} {TYPES[c.type].duckdb}" for c in failures.columns) + ")")
    try:
        _read_batch(db, settings, zone, run_id, table, job, part, quarantine)
        part.landing_files = _copy(db, f"SELECT {_columns(table)} FROM scan_{job.source}", table,
                                   job.landing_folder)
        db.execute(f"DROP TABLE scan_{job.source}")
        part.quarantined = len(quarantine)
        part.reasons = Counter(str(q["reason"]) for q in quarantine)
        if quarantine:
            qtable = quarantine_table(job.source)
            arrow = pa.table({c.name: pa.array([q[c.name] for q in quarantine], arrow_type(c.type))
                              for c in qtable.columns})
            db.register_arrow("_quarantine", arrow)
            part.quarantine_files = _copy(db, "SELECT * FROM _quarantine", qtable, job.quarantine_folder)
            db.unregister("_quarantine")
        [(warned,)] = db.rows("SELECT count(*) FROM _failures")
        if job.failures_folder is not None and warned:  # no empty file per batch
            part.failure_files = _copy(db, "SELECT * FROM _failures", failures, job.failures_folder)
    except (StediError, _Broken) as exc:  # said once, not retried as a failed task would be
        for folder in job.folders:
            _delete_folder(settings, folder)
        if isinstance(exc, _Broken):
            return BatchRead(worker=part.worker, counts=part.counts, broken=exc.check.name)
        return BatchRead(worker=part.worker, error=exc)
    finally:
        db.execute("DROP TABLE IF EXISTS _failures")
    return part


def _copy(db: Session, sql: str, table: Table, folder: str) -> list[str]:
    files, _ = db.copy_to_parquet(sql, table, folder)
    return files


def _columns(table: Table) -> str:
    return ", ".join(quote(c.name) for c in table.columns)


def _read_batch(db: Session, settings: Settings, zone: LandingZone, run_id: str, table: Table, job: BatchJob,
                part: BatchRead, quarantine: list[dict[str, object]]) -> None:
    """The batch's valid records into the temp table scan_<source>, its invalid ones into `quarantine`."""
    source = job.source
    scan = f"scan_{source}"
    by_path = {zone.uri(f): f for f in job.files}
    # JSON arrays and files with a byte-order mark (seen when they were hashed) go to the exact parser
    exact = [p for p, f in by_path.items() if not f.plain]
    fast = [p for p in by_path if p not in exact]

    typed = ", ".join(f"{quote(c.name)} {TYPES[c.type].duckdb}" for c in table.columns)
    db.execute(f"CREATE OR REPLACE TEMP TABLE {scan} (_file VARCHAR, {typed}, _valid BOOLEAN, "
               "_extra VARCHAR[], _present INTEGER)")
    fast = _quick(db, settings, table, scan, fast, by_path)
    part.quick_files += sorted(f"{source}/{by_path[p].name}" for p in by_path if p not in fast and p not in exact)
    if fast:
        try:
            db.execute(f"INSERT INTO {scan} BY NAME {fast_select(table, fast, settings.max_record_bytes)}")
        except StatementError:
            # Some file is unreadable as JSON Lines: find which, one file at a time.
            db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(p) for p in fast)})")
            for path in fast:
                try:
                    db.execute(f"INSERT INTO {scan} BY NAME "
                               f"{fast_select(table, [path], settings.max_record_bytes)}")
                except StatementError:
                    exact.append(path)
    dirty = [r[0] for r in db.rows(f"SELECT DISTINCT _file FROM {scan} WHERE NOT _valid")]
    if dirty:
        db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(d) for d in dirty)})")
        exact.extend(dirty)
    [(fast_rows,)] = db.rows(f"SELECT count(*) FROM {scan}")
    part.read += int(fast_rows)

    scratch = settings.scratch_dir / f"exact-{run_id}-{uuid.uuid4().hex[:6]}"
    for path in sorted(exact):
        name = f"{source}/{by_path[path].name}"
        try:
            local = zone.local_copy(by_path[path], scratch)
            parsed = parse_file(local, source, max_record_bytes=settings.max_record_bytes)
        except OSError as exc:
            raise LandingError(f"cannot read the landed file {path}: {exc.strerror}") from None
        finally:
            if zone.storage.remote:
                shutil.rmtree(scratch, ignore_errors=True)
        part.read += parsed.read
        part.exact_files.append(name)
        part.unknown.update(parsed.unknown_fields)
        quarantine.extend({"file": name, "position": r.position, "reason": r.reason, "message": r.message,
                           "raw": r.raw, "run_id": run_id} for r in parsed.rejected)
        if parsed.positions:
            arrow = pa.table({**{c.name: pa.array(parsed.columns[c.name], arrow_type(c.type))
                                 for c in table.columns},
                              "_file": pa.array([path] * len(parsed.positions), pa.string())})
            db.register_arrow("_parsed", arrow)
            db.execute(f"INSERT INTO {scan} SELECT _file, {_columns(table)}, true, [], NULL FROM _parsed")
            db.unregister("_parsed")

    for key, count in db.rows(f"SELECT k, count(*) FROM (SELECT unnest(_extra) AS k FROM {scan}) GROUP BY k"):
        part.unknown[key] += count

    quarantine.extend(_run_checks(db, run_id, source, table, scan, job.checks, part.counts))
    [(rows,)] = db.rows(f"SELECT count(*) FROM {scan}")
    part.rows += int(rows)


def _quick(db: Session, settings: Settings, table: Table, scan: str, paths: list[str],
           by_path: dict[str, LandedFile]) -> list[str]:
    """Read the files that can be proven clean in one typed parse per record (quick_select); the
    others are returned for the thorough fast path."""
    counted = [p for p in paths if by_path[p].lines is not None and by_path[p].numbers is not None]
    if not counted:
        return paths
    try:
        db.execute(f"INSERT INTO {scan} {quick_select(table, counted, settings.max_record_bytes)}")
    except StatementError:
        db.execute(f"DELETE FROM {scan}")
        return paths  # some file is not plain JSON Lines, or has a value a typed read refuses
    typed = " + ".join(f"count({quote(c.name)})" for c in table.columns)
    texts = " + ".join(f"count({quote(c.name)})" for c in table.columns if c.type == "string") or "0"
    keys = " AND ".join(f"count({quote(k)}) = count(*)" for k in table.keys) or "true"
    figures = db.rows(f"SELECT _file, count(*), sum(_present), {typed}, {texts}, {keys} FROM {scan} "
                      "GROUP BY _file")

    def proven(file: str, records: int, fields: int, typed_values: int, text_values: int, keys: bool) -> bool:
        landed = by_path[file]
        assert landed.strings is not None and landed.numbers is not None
        return (keys and typed_values == fields == landed.colons == landed.strings + landed.numbers
                and text_values == landed.strings and records == landed.lines)

    clean = {f[0] for f in figures if proven(*f)} | {p for p in counted if by_path[p].lines == 0}
    unclean = [p for p in counted if p not in clean]
    if unclean:
        db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(p) for p in unclean)})")
    return [p for p in paths if p not in clean]


class _Broken(Exception):
    """A `fail` rule matched records of the batch."""

    def __init__(self, check: Check) -> None:
        self.check = check


def _run_checks(db: Session, run_id: str, source: str, table: Table, scan: str, checks: list[Check],
                counts: Counter[str]) -> list[dict[str, object]]:
    """Evaluate the source's checks, adding the rows each flags to `counts`; quarantined rows leave the
    scan. A `fail` check that flags a row raises _Broken."""
    columns = ", ".join(quote(c.name) for c in table.columns)
    db.execute(f"CREATE OR REPLACE TEMP VIEW {quote(source)} AS SELECT rowid AS _row, _file, {columns} "
               f"FROM {scan}")
    moved: list[dict[str, object]] = []
    for check in sorted(checks, key=lambda c: ("fail", "quarantine", "warn").index(c.action)):
        if check.source != source:
            continue
        try:
            db.execute(f"CREATE OR REPLACE TEMP TABLE _flagged AS SELECT DISTINCT _row FROM ({check.sql}) "
                       "AS flagged")
        except StatementError as exc:
            hint = (f" A check returns whole rows: `select * from {source} where ...`."
                    if "_row" in str(exc) else "")
            raise QualityError(f"check {check.name} ({check.origin}) cannot run: "
                               f"{' '.join(str(exc).split())[:500]}.{hint}") from None
        [(count,)] = db.rows("SELECT count(*) FROM _flagged")
        counts[check.name] += int(count)
        if not count:
            continue
        if check.action == "fail":  # the batch stops here; the driver sums the rule's count over every batch
            raise _Broken(check)
        flagged = "rowid IN (SELECT _row FROM _flagged)"
        if check.action == "warn":  # the rows stay; quality_failures keeps which broke what
            db.execute(
                f"INSERT INTO _failures SELECT {literal(source)}, {literal(check.name)}, {literal(check.reason)}, "
                f"{literal(source + '/')} || string_split(_file, '/')[-1], to_json(struct_pack({columns})), "
                f"{literal(run_id)} FROM {scan} WHERE {flagged}")
        if check.action == "quarantine":
            rows = db.rows(f"SELECT _file, to_json(struct_pack({columns})) FROM {scan} WHERE {flagged}")
            moved.extend({"file": f"{source}/{Path(file).name}", "position": None,
                          "reason": f"check:{check.name}", "message": check.reason, "raw": raw,
                          "run_id": run_id} for file, raw in rows)
            db.execute(f"DELETE FROM {scan} WHERE {flagged}")
    return moved

