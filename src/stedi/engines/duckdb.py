"""The embedded engine: DuckDB in process, the default."""

from __future__ import annotations

import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from stedi.config import parse_size
from stedi.engines import memory_budget
from stedi.engines.base import StatementError
from stedi.errors import CatalogError, ConfigError, EngineError, QueryError
from stedi.iceberg.schema import field_ids
from stedi.sqltext import literal, literals, quote
from stedi.storage.files import ensure_writable_dir, local_path
from stedi.types import TYPES, arrow_type

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.config import Settings
    from stedi.tables import Table
    from stedi.types import ColumnType


# Rows per record batch of a streamed result (`stedi sql --format csv|json`): a few MB each, so memory stays
# flat and the first rows come at once; a result fetched whole takes fewer, larger batches.
BATCH_ROWS = 100_000
WHOLE_BATCH_ROWS = 1_000_000
# What a query may not name: what returns DuckDB's settings, secrets, variables or the environment, and what
# runs SQL given as text (which would hide any of those from this check). The second of two locks: the S3
# credentials are kept out of DuckDB's settings as well (connect), and a secret's value DuckDB redacts.
INTROSPECTION = frozenset({
    "current_setting", "duckdb_settings", "pg_settings", "duckdb_secrets", "which_secret", "duckdb_variables",
    "getvariable", "getenv", "query", "query_table", "json_execute_serialized_sql",
})
# httpfs copies the AWS_* variables into these settings when it loads
S3_CREDENTIAL_SETTINGS = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token")


def connect(settings: Settings, scratch: Path | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with stedi's settings: spills to a scratch folder (the writers' one under the
    root, or `scratch`: a reader's own, outside the root, which may be read-only), reaches an s3:// root
    through httpfs, then applies the [duckdb] section."""
    # (DuckDB's progress bar stays on: it is what lets Ctrl-C stop a running statement)
    con = duckdb.connect(config={"preserve_insertion_order": False, "autoinstall_known_extensions": False})
    # A folder of its own: connections spill at the same time (the reconciliation counts beside a build)
    # and DuckDB's spill files have fixed names. DuckDB creates the last level when it first spills and
    # removes it on close.
    if scratch is None:
        ensure_writable_dir(settings.state_dir)  # a clear error for an unusable root, before DuckDB's own
        scratch = settings.scratch_dir / "duckdb"
    spill = scratch / uuid.uuid4().hex[:12]
    spill.parent.mkdir(parents=True, exist_ok=True)
    con.execute(f"SET temp_directory = {literal(str(spill))}")
    if "memory_limit" not in settings.duckdb:
        # DuckDB would take 80% of RAM before spilling; a fixed ceiling keeps memory flat at any scale
        # (the joins spill to the scratch folder beyond it). [duckdb] memory_limit overrides it.
        con.execute(f"SET memory_limit = '{memory_budget() >> 20}MB'")
    if settings.remote:
        load_httpfs(con)
        con.execute(settings.s3_connection().duckdb_secret())
        # The credentials live in the secret alone: settings are what any query could read back.
        for name in S3_CREDENTIAL_SETTINGS:
            con.execute(f"SET {name} = ''")
    try:
        apply_settings(con, settings)
    except ConfigError:
        con.close()
        raise
    return con


def apply_settings(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """The [duckdb] section, each a SET; a ConfigError naming the first DuckDB refuses."""
    for key, value in settings.duckdb.items():
        try:
            con.execute(f"SET {quote(key)} = {literal(str(value))}")
        except duckdb.Error as exc:
            raise ConfigError(f"[duckdb] {key} = {value!r} is not a valid DuckDB setting: {_message(exc)}") from None


def check_settings(settings: Settings) -> None:
    """Refuse bad [duckdb] settings before any work (a connection would only refuse them when it opens)."""
    if not settings.duckdb:
        return
    con = duckdb.connect()
    try:
        apply_settings(con, settings)
    finally:
        con.close()


def load_httpfs(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB's S3 support, from the `duckdb-extension-httpfs` package (DuckDB would otherwise download
    it at run time, which fails offline and is a supply-chain step nobody reviewed)."""
    try:
        import duckdb_extension_httpfs
    except ImportError:
        raise EngineError("reading s3:// with DuckDB needs the httpfs extension: pip install "
                          f"duckdb-extension-httpfs=={duckdb.__version__}") from None
    folder = Path(duckdb_extension_httpfs.__file__).parent / "extensions" / f"v{duckdb.__version__}"
    extension = folder / "httpfs.duckdb_extension"
    if not extension.is_file():
        raise EngineError(f"the installed duckdb-extension-httpfs has no build for DuckDB {duckdb.__version__}; "
                          f"pip install duckdb-extension-httpfs=={duckdb.__version__}")
    con.execute(f"LOAD {literal(str(extension))}")


def copy_to_parquet(con: duckdb.DuckDBPyConnection, sql: str, table: Table, folder: str,
                    target_file_size: str) -> tuple[list[str], int]:
    """Write the rows of `sql`, cast to `table`'s columns, as Parquet files into a new `folder`.

    Each column carries its Iceberg field id (stedi.iceberg.schema). Returns the file URIs and the row
    count; leaves no files behind when it fails.
    """
    out = local_path(folder)
    columns = ", ".join(f"CAST({quote(c.name)} AS {TYPES[c.type].duckdb}) AS {quote(c.name)}" for c in table.columns)
    ids = ", ".join(f"{literal(name)}: {i}" for name, i in field_ids(table.columns).items())
    statement = (
        f"COPY (SELECT {columns} FROM ({sql.strip().rstrip(';')}) AS result) TO {literal(out)} "
        f"(FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES {parse_size(target_file_size)}, "
        f"FILENAME_PATTERN 'part-{{uuid}}', FIELD_IDS {{{ids}}})"
    )
    remote = "://" in out
    if not remote:
        os.makedirs(os.path.dirname(out), exist_ok=True)
    try:
        row = con.execute(statement).fetchone()
    except duckdb.Error:
        if not remote:
            shutil.rmtree(out, ignore_errors=True)  # on S3, table maintenance removes unreferenced files
        raise
    if remote:
        files = sorted(str(f) for (f,) in con.execute(f"SELECT file FROM glob({literal(out + '/*.parquet')})")
                       .fetchall())
        return files, int(row[0]) if row else 0
    files = sorted(str(p) for p in Path(out).glob("*.parquet")) if os.path.isdir(out) else []
    return [Path(f).as_uri() for f in files], int(row[0]) if row else 0


class DuckDBEngine:
    name = "duckdb"
    parallel_builds = 1  # DuckDB already uses every core within a statement
    grows_tables = True

    def __init__(self, settings: Settings, scratch: Path | None = None) -> None:
        self._settings = settings
        self._con = connect(settings, scratch)
        self._folders: list[str] = []  # folders a query may read
        self._locked = False

    # -- relations --------------------------------------------------------------------------------
    def register_parquet(self, name: str, files: list[str], table: Table, only: tuple[str, str] | None = None
                         ) -> None:
        paths = [local_path(f) for f in files]
        self._folders.extend({p.rsplit("/", 1)[0] + "/" for p in paths})
        if not paths:
            return self._register_empty(name, table)
        columns = ", ".join(quote(c) for c in table.column_names)
        # A history gains columns over time, and its older files lack them: read those as null.
        by_name = ", union_by_name = true" if table.kind == "history" else ""
        where = f" WHERE {quote(only[0])} IN (SELECT value FROM {quote(only[1])})" if only else ""
        try:
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS "
                              f"SELECT {columns} FROM read_parquet({literals(paths)}{by_name}){where}")
        except duckdb.Error as exc:
            raise CatalogError(f"the data files of table {name} cannot be read ({_message(exc)}); rebuild it "
                               f"with `stedi run --select {name} --full-refresh`") from None

    def files_holding(self, files: list[str], column: str, relation: str) -> list[str]:
        if not files:
            return []
        uris = {local_path(f): f for f in files}
        found = self.rows(f"SELECT DISTINCT filename FROM read_parquet({literals(list(uris))}, filename = true) "
                          f"WHERE {quote(column)} IN (SELECT value FROM {quote(relation)})")
        return sorted(uris[f] for (f,) in found)

    def register_rows(self, name: str, columns: list[tuple[str, ColumnType]], rows: list[tuple[object, ...]]
                      ) -> None:
        import pyarrow as pa

        arrow = pa.table({c: pa.array([r[i] for r in rows], arrow_type(t)) for i, (c, t) in enumerate(columns)})
        self._con.register(name, arrow)

    def _register_empty(self, name: str, table: Table) -> None:
        columns = ", ".join(f"CAST(NULL AS {TYPES[c.type].duckdb}) AS {quote(c.name)}" for c in table.columns)
        self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT {columns} WHERE false")

    # -- work -------------------------------------------------------------------------------------
    # -- a Session (stedi.engines.base): statements of the landing reader and of compaction ----------------
    def execute(self, sql: str) -> None:
        try:
            self._con.execute(sql)
        except duckdb.Error as exc:
            raise StatementError(_message(exc)) from exc

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        try:
            return self._con.execute(sql).fetchall()
        except duckdb.Error as exc:
            raise StatementError(_message(exc)) from exc

    def register_arrow(self, name: str, table: pa.Table) -> None:
        self._con.register(name, table)

    def unregister(self, name: str) -> None:
        self._con.unregister(name)

    def copy_to_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        try:
            return copy_to_parquet(self._con, sql, table, folder, self._settings.target_file_size)
        except duckdb.Error as exc:
            raise StatementError(_message(exc)) from exc

    def write_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        try:
            return copy_to_parquet(self._con, sql, table, folder, self._settings.target_file_size)
        except duckdb.Error as exc:
            raise EngineError(f"building {table.name} failed: {_message(exc)}") from None

    def query(self, sql: str, timeout: float | None = None) -> pa.Table:
        """The result of one read-only query (see `stream`), whole."""
        with self.stream(sql, timeout, batch_rows=WHOLE_BATCH_ROWS) as reader:
            return reader.read_all()

    @contextmanager
    def stream(self, sql: str, timeout: float | None = None, batch_rows: int = BATCH_ROWS
               ) -> Iterator[pa.RecordBatchReader]:
        """The result of one read-only query as record batches of up to `batch_rows` rows, fetched while
        the caller reads them (at most a few wait in memory); the query stops when the block ends.

        A QueryError for SQL that is invalid, not a query or that fails, or after `timeout` seconds;
        KeyboardInterrupt on Ctrl-C. DuckDB stops the query either way."""
        import pyarrow as pa

        self._check_query(sql)
        running = _Running(self._con, sql, batch_rows, timeout)
        try:  # (Ctrl-C may come while it waits for the schema, which comes once the query has started)
            yield pa.RecordBatchReader.from_batches(running.schema(), running.batches())
        finally:
            running.stop()

    def _check_query(self, sql: str) -> None:
        """Refuse anything but one query; on the first, lock the connection out of every other file."""
        try:
            statements = self._con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(f"invalid SQL: {_message(exc, keep_lines=True)}") from None
        if len(statements) != 1:
            raise QueryError(f"give exactly one statement (got {len(statements)})")
        kind, query = statements[0].type, sql
        if kind == duckdb.StatementType.EXPLAIN:
            # EXPLAIN ANALYZE runs what it explains: what is explained must be a query too.
            explained = re.match(r"\s*explain\s+(?:analy[sz]e\s+)?(.*)", sql, flags=re.S | re.I)
            inner = self._con.extract_statements(explained.group(1)) if explained else []
            kind = inner[0].type if len(inner) == 1 else kind
            query = explained.group(1) if explained else sql
        if kind != duckdb.StatementType.SELECT:
            raise QueryError(f"only queries are allowed: a statement of type {kind.name} would modify data "
                             "or settings; tables change only through `stedi ingest` and `stedi run`")
        named = sorted(INTROSPECTION & self._names_in(query))
        if named:
            raise QueryError(f"{named[0]} is not available in stedi's SQL: it reads DuckDB's settings, secrets "
                             "or environment, or runs SQL given as text; query the tables by name")
        if not self._locked:
            # Defence in depth: queries may read the tables' own folders and nothing else on disk
            # (so relations are registered before the first query).
            self._con.execute(f"SET allowed_directories = {literals(sorted(set(self._folders)))}")
            self._con.execute("SET enable_external_access = false")
            self._locked = True

    def _names_in(self, sql: str) -> set[str]:
        """The functions and tables `sql` names, lower-cased, from DuckDB's own parse of it; for a query DuckDB
        cannot serialize, every word of it, so nothing is let through unread."""
        import json

        try:
            [(text,)] = self._con.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()
            tree = json.loads(text)
        except (duckdb.Error, ValueError):
            tree = {"error": True}
        if tree.get("error"):
            return set(re.findall(r"[a-z_][a-z0-9_]*", sql.lower()))
        names: set[str] = set()
        stack: list[Any] = [tree]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                for key in ("function_name", "table_name"):
                    if isinstance(node.get(key), str):
                        names.add(node[key].lower())
                stack.extend(node.values())
            elif isinstance(node, list):
                stack.extend(node)
        return names

    def close(self) -> None:
        self._con.close()


def _message(exc: BaseException, keep_lines: bool = False) -> str:
    """DuckDB's message on one line; with `keep_lines`, followed by DuckDB's position marker when it gave
    one (the line of SQL, and under it a `^` at the place of the error)."""
    if not keep_lines:
        return " ".join(str(exc).split())[:1000]
    lines = str(exc).strip().splitlines()
    at = next((i for i, line in enumerate(lines) if re.match(r"LINE \d+:", line)), len(lines))
    text = " ".join(" ".join(lines[:at]).split())[:1000]
    marker = [line.rstrip() for line in lines[at:at + 2] if line.strip()]
    return "\n".join([text, *marker])


_END = object()  # the worker's last item after the last batch


class _Running:
    """One query, run and fetched by a thread of its own while the caller waits for each batch.

    So Ctrl-C (a KeyboardInterrupt in the waiting thread, at once) and the timeout stop it through DuckDB's
    interrupt, also between batches: DuckDB by itself notices a signal only between tasks, which may be long
    apart. The worker fetches the next batches while the caller writes one, but never more than `AHEAD`."""

    AHEAD = 2

    def __init__(self, con: duckdb.DuckDBPyConnection, sql: str, batch_rows: int, timeout: float | None) -> None:
        self._con = con
        self._timeout = timeout
        self._deadline = time.monotonic() + timeout if timeout else None
        self._items: queue.Queue[Any] = queue.Queue(maxsize=self.AHEAD)
        self._stopping = threading.Event()
        self._worker = threading.Thread(target=self._fetch, args=(sql, batch_rows), name="stedi-query",
                                        daemon=True)
        self._worker.start()

    # -- the worker -----------------------------------------------------------------------------------
    def _fetch(self, sql: str, batch_rows: int) -> None:
        """The schema, then each batch, then _END; or the error that ended the query (handed to the caller)."""
        try:
            reader = self._con.execute(sql).to_arrow_reader(batch_rows)
            self._put(reader.schema)
            while not self._stopping.is_set():
                try:
                    batch = reader.read_next_batch()
                except StopIteration:
                    break
                self._put(batch)
            self._put(_END)
        except BaseException as exc:  # DuckDB's errors; past the first batch they reach here as OSError
            self._put(exc)

    def _put(self, item: Any) -> None:
        while not self._stopping.is_set():
            try:
                self._items.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    # -- the caller -----------------------------------------------------------------------------------
    def schema(self) -> pa.Schema:
        schema: pa.Schema = self._next()
        return schema

    def batches(self) -> Iterator[pa.RecordBatch]:
        while (item := self._next()) is not _END:
            yield item

    def _next(self) -> Any:
        while True:
            # Past the deadline, a query still running stops (one that has ended hands over its last batches).
            if self._deadline is not None and time.monotonic() > self._deadline and self._worker.is_alive():
                self.stop()
                raise QueryError(f"the query was stopped after {self._timeout:g} s (--timeout, or the setting "
                                 "query_timeout)")
            try:
                item = self._items.get(timeout=0.05)
            except queue.Empty:
                continue
            if isinstance(item, BaseException):
                raise _query_error(item) from None
            return item

    def stop(self) -> None:
        """Stop the query if it still runs, and wait for the worker to end."""
        self._stopping.set()
        if self._worker.is_alive():
            self._con.interrupt()
            self._worker.join(10)


def _query_error(error: BaseException) -> BaseException:
    """What the caller raises for the error that ended the query in the worker."""
    if isinstance(error, duckdb.InterruptException) or "interrupted" in str(error).lower():
        return KeyboardInterrupt()  # (a timeout stops the query from the caller's side, and says so there)
    if isinstance(error, duckdb.Error | OSError):
        return QueryError(_message(error, keep_lines=True))
    return error
