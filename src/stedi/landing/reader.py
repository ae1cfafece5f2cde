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
Landed JSON is read here, on DuckDB, whichever engine builds the derived tables, so both engines start
from the same validated rows and the same quarantine.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from stedi.config import Settings
from stedi.engines import open_session
from stedi.engines.base import StatementError
from stedi.errors import LandingError, QualityError
from stedi.landing.quality import Check, CheckResult
from stedi.landing.records import parse_file
from stedi.landing.zone import LandedFile, LandingZone
from stedi.sqltext import literal, quote
from stedi.storage.files import open_uri
from stedi.tables import TABLES, Column, Table, landing_table, quarantine_table
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


class LandingReader:
    """Reads the landed files of each source (one DuckDB connection for a run)."""

    def __init__(self, settings: Settings, zone: LandingZone, run_id: str) -> None:
        self.settings = settings
        self.zone = zone
        self.run_id = run_id
        self.db = open_session(settings)

    def close(self) -> None:
        self.db.close()

    def read(self, source: str, files: list[LandedFile], landing_folder: str, quarantine_folder: str,
             checks: list[Check], already: tuple[int, int] = (0, 0), failures_folder: str | None = None
             ) -> SourceRead:
        """Read `files`; `already` is (read, quarantined) of files read before (an incremental run), so the
        quarantine limit applies to the whole source, as in a full rebuild. The records `warn` rules
        matched are written as rows of quality_failures into `failures_folder` (when given).

        Files are read in batches of about BATCH_BYTES of JSON, each written out before the next is read,
        so memory stays flat however much has landed (quality checks see one batch at a time)."""
        table = landing_table(source)
        result = SourceRead(source)
        quarantine: list[dict[str, object]] = []
        unknown: Counter[str] = Counter()
        counts: Counter[str] = Counter()
        failures = TABLES["quality_failures"]
        self.db.execute("CREATE OR REPLACE TEMP TABLE _failures ("
                        + ", ".join(f"{quote(c.name)} {TYPES[c.type].duckdb}" for c in failures.columns) + ")")
        try:
            for number, batch in enumerate(_batches(files, BATCH_BYTES)):
                self._read_batch(table, batch, f"{landing_folder}/{number:04d}", checks, result, quarantine,
                                 unknown, counts)
            result.unknown_fields = dict(sorted(unknown.items()))
            own = sorted((c for c in checks if c.source == source),
                         key=lambda c: ("fail", "quarantine", "warn").index(c.action))
            result.checks = [CheckResult(c, counts[c.name]) for c in own]
            result.quarantined = len(quarantine)
            total, bad = result.read + already[0], result.quarantined + already[1]
            if total and bad / total > self.settings.max_quarantine_share:
                reasons = Counter(str(q["reason"]) for q in quarantine).most_common(3)
                raise QualityError(
                    f"{bad:,} of {total:,} {source} records ({bad / total:.1%}) would be quarantined, more than "
                    f"max_quarantine_share = {self.settings.max_quarantine_share:.0%}; most common reasons: "
                    + ", ".join(f"{r} ({n:,})" for r, n in reasons)
                    + ". Nothing was committed. Fix the landed data, or raise max_quarantine_share in stedi.toml")
        except BaseException:
            self._discard(result.landing_files)
            raise
        qtable = quarantine_table(source)
        arrow = pa.table({c.name: pa.array([q[c.name] for q in quarantine], arrow_type(c.type))
                          for c in qtable.columns})
        self.db.register_arrow("_quarantine", arrow)
        result.quarantine_files, _ = self.db.copy_to_parquet("SELECT * FROM _quarantine", qtable, quarantine_folder)
        self.db.unregister("_quarantine")
        if failures_folder is not None:
            result.failure_files, _ = self.db.copy_to_parquet("SELECT * FROM _failures", failures, failures_folder)
        self.db.execute("DROP TABLE _failures")
        return result

    def _discard(self, uris: list[str]) -> None:
        """Delete files written for a read that failed (they were never committed)."""
        s3 = self.settings.s3_connection() if self.settings.remote else None
        for uri in uris:
            fs, path = open_uri(uri, s3)
            with contextlib.suppress(OSError):
                fs.delete_file(path)

    def _read_batch(self, table: Table, files: list[LandedFile], landing_folder: str, checks: list[Check],
                    result: SourceRead, quarantine: list[dict[str, object]], unknown: Counter[str],
                    counts: Counter[str]) -> None:
        source = table.source
        assert source is not None
        scan = f"scan_{source}"
        by_path = {self.zone.uri(f): f for f in files}
        # JSON arrays and files with a byte-order mark (seen when they were hashed) go to the exact parser
        exact = [p for p, f in by_path.items() if not f.plain]
        fast = [p for p in by_path if p not in exact]

        typed = ", ".join(f"{quote(c.name)} {TYPES[c.type].duckdb}" for c in table.columns)
        self.db.execute(f"CREATE OR REPLACE TEMP TABLE {scan} (_file VARCHAR, {typed}, _valid BOOLEAN, "
                         "_extra VARCHAR[], _present INTEGER)")
        fast = self._quick(table, scan, fast, by_path)
        result.quick_files += sorted(f"{source}/{by_path[p].name}" for p in by_path if p not in fast and p not in exact)
        if fast:
            try:
                self.db.execute(f"INSERT INTO {scan} BY NAME "
                                 f"{fast_select(table, fast, self.settings.max_record_bytes)}")
            except StatementError:
                # Some file is unreadable as JSON Lines: find which, one file at a time.
                self.db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(p) for p in fast)})")
                for path in fast:
                    try:
                        self.db.execute(f"INSERT INTO {scan} BY NAME "
                                         f"{fast_select(table, [path], self.settings.max_record_bytes)}")
                    except StatementError:
                        exact.append(path)
        dirty = [r[0] for r in self.db.rows(f"SELECT DISTINCT _file FROM {scan} WHERE NOT _valid")]
        if dirty:
            self.db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(d) for d in dirty)})")
            exact.extend(dirty)
        [(fast_rows,)] = self.db.rows(f"SELECT count(*) FROM {scan}")
        result.read += int(fast_rows)

        for path in sorted(exact):
            name = f"{source}/{by_path[path].name}"
            try:
                local = self.zone.local_copy(by_path[path], self.settings.scratch_dir / f"exact-{self.run_id}")
                parsed = parse_file(local, source, max_record_bytes=self.settings.max_record_bytes)
            except OSError as exc:
                raise LandingError(f"cannot read the landed file {path}: {exc.strerror}") from None
            finally:
                if self.zone.storage.remote:
                    shutil.rmtree(self.settings.scratch_dir / f"exact-{self.run_id}", ignore_errors=True)
            result.read += parsed.read
            result.exact_files.append(name)
            unknown.update(parsed.unknown_fields)
            quarantine.extend({"file": name, "position": r.position, "reason": r.reason, "message": r.message,
                               "raw": r.raw, "run_id": self.run_id} for r in parsed.rejected)
            if parsed.positions:
                arrow = pa.table({**{c.name: pa.array(parsed.columns[c.name], arrow_type(c.type))
                                     for c in table.columns},
                                  "_file": pa.array([path] * len(parsed.positions), pa.string())})
                self.db.register_arrow("_parsed", arrow)
                columns = ", ".join(quote(c.name) for c in table.columns)
                self.db.execute(f"INSERT INTO {scan} SELECT _file, {columns}, true, [], NULL FROM _parsed")
                self.db.unregister("_parsed")

        for name, count in self.db.rows(
                f"SELECT k, count(*) FROM (SELECT unnest(_extra) AS k FROM {scan}) GROUP BY k"):
            unknown[name] += count

        quarantine.extend(self._run_checks(source, table, scan, checks, counts))
        [(rows,)] = self.db.rows(f"SELECT count(*) FROM {scan}")
        result.rows += int(rows)
        columns = ", ".join(quote(c.name) for c in table.columns)
        written, _ = self.db.copy_to_parquet(f"SELECT {columns} FROM {scan}", table, landing_folder)
        result.landing_files += written
        self.db.execute(f"DROP TABLE {scan}")

    def _quick(self, table: Table, scan: str, paths: list[str], by_path: dict[str, LandedFile]) -> list[str]:
        """Read the files that can be proven clean in one typed parse per record (quick_select); the
        others are returned for the thorough fast path."""
        counted = [p for p in paths if by_path[p].lines is not None and by_path[p].numbers is not None]
        if not counted:
            return paths
        try:
            self.db.execute(f"INSERT INTO {scan} {quick_select(table, counted, self.settings.max_record_bytes)}")
        except StatementError:
            self.db.execute(f"DELETE FROM {scan}")
            return paths  # some file is not plain JSON Lines, or has a value a typed read refuses
        typed = " + ".join(f"count({quote(c.name)})" for c in table.columns)
        texts = " + ".join(f"count({quote(c.name)})" for c in table.columns if c.type == "string") or "0"
        keys = " AND ".join(f"count({quote(k)}) = count(*)" for k in table.keys) or "true"
        figures = self.db.rows(f"SELECT _file, count(*), sum(_present), {typed}, {texts}, {keys} FROM {scan} "
                                   "GROUP BY _file")

        def proven(file: str, records: int, fields: int, typed_values: int, text_values: int, keys: bool) -> bool:
            landed = by_path[file]
            assert landed.strings is not None and landed.numbers is not None
            return (keys and typed_values == fields == landed.colons == landed.strings + landed.numbers
                    and text_values == landed.strings and records == landed.lines)

        clean = {f[0] for f in figures if proven(*f)} | {p for p in counted if by_path[p].lines == 0}
        unclean = [p for p in counted if p not in clean]
        if unclean:
            self.db.execute(f"DELETE FROM {scan} WHERE _file IN ({', '.join(literal(p) for p in unclean)})")
        return [p for p in paths if p not in clean]

    def _run_checks(self, source: str, table: Table, scan: str, checks: list[Check],
                    counts: Counter[str]) -> list[dict[str, object]]:
        """Evaluate the source's checks, adding the rows each flags to `counts`; quarantined rows leave the
        scan. A `fail` check raises."""
        columns = ", ".join(quote(c.name) for c in table.columns)
        self.db.execute(f"CREATE OR REPLACE TEMP VIEW {quote(source)} AS SELECT rowid AS _row, _file, {columns} "
                         f"FROM {scan}")
        moved: list[dict[str, object]] = []
        for check in sorted(checks, key=lambda c: ("fail", "quarantine", "warn").index(c.action)):
            if check.source != source:
                continue
            try:
                self.db.execute(f"CREATE OR REPLACE TEMP TABLE _flagged AS SELECT DISTINCT _row FROM ({check.sql}) "
                                 "AS flagged")
            except StatementError as exc:
                hint = (f" A check returns whole rows: `select * from {source} where ...`."
                        if "_row" in str(exc) else "")
                raise QualityError(f"check {check.name} ({check.origin}) cannot run: "
                                   f"{' '.join(str(exc).split())[:500]}.{hint}") from None
            [(count,)] = self.db.rows("SELECT count(*) FROM _flagged")
            counts[check.name] += int(count)
            if not count:
                continue
            if check.action == "fail":
                raise QualityError(f"check {check.name} ({check.origin}) failed on {count:,} {source} "
                                   f"records: {check.reason}. Nothing was committed")
            flagged = "rowid IN (SELECT _row FROM _flagged)"
            if check.action == "warn":  # the rows stay; quality_failures keeps which broke what
                self.db.execute(
                    f"INSERT INTO _failures SELECT {literal(source)}, {literal(check.name)}, {literal(check.reason)}, "
                    f"{literal(source + '/')} || string_split(_file, '/')[-1], to_json(struct_pack({columns})), "
                    f"{literal(self.run_id)} FROM {scan} WHERE {flagged}")
            if check.action == "quarantine":
                rows = self.db.rows(
                    f"SELECT _file, to_json(struct_pack({columns})) FROM {scan} WHERE {flagged}")
                moved.extend({"file": f"{source}/{Path(file).name}", "position": None,
                              "reason": f"check:{check.name}", "message": check.reason, "raw": raw,
                              "run_id": self.run_id} for file, raw in rows)
                self.db.execute(f"DELETE FROM {scan} WHERE {flagged}")
        return moved

