"""The embedded engine: DuckDB in process, the default."""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlparse

import duckdb

from stedi.errors import CatalogError, EngineError, LandingError, QueryError

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.config import Settings
    from stedi.tables import ColumnType, Table

TYPES: dict[ColumnType, str] = {"string": "VARCHAR", "bigint": "BIGINT", "int": "INTEGER", "double": "DOUBLE"}


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def local_path(uri: str) -> str:
    """A path DuckDB opens: `file://` URIs become plain paths; others (s3://) pass through."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


class DuckDBEngine:
    name = "duckdb"
    parallel_builds = 1  # DuckDB already uses every core within a statement

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._con = duckdb.connect(config={"preserve_insertion_order": False})
        tmp = settings.home / ".tmp" / "duckdb"
        self._con.execute(f"SET temp_directory = {literal(str(tmp))}")
        for key, value in settings.duckdb.items():
            self._con.execute(f"SET {key} = {literal(str(value))}")
        self._folders: list[str] = []  # folders a query may read

    # -- relations --------------------------------------------------------------------------------
    def register_parquet(self, name: str, files: list[str], table: Table) -> None:
        paths = [local_path(f) for f in files]
        self._folders.extend({str(Path(p).parent) + "/" for p in paths})
        if not paths:
            return self._register_empty(name, table)
        columns = ", ".join(quote(c) for c in table.column_names)
        try:
            self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS "
                              f"SELECT {columns} FROM read_parquet({_list(paths)})")
        except duckdb.Error as exc:
            raise CatalogError(f"the data files of table {name} cannot be read ({_message(exc)}); rebuild it "
                               f"with `stedi run --select {name} --full-refresh`") from None

    def register_json(self, name: str, files: list[str], table: Table) -> None:
        if not files:
            return self._register_empty(name, table)
        spec = "{" + ", ".join(f"{literal(c.name)}: {literal(TYPES[c.type])}" for c in table.columns) + "}"
        paths = [local_path(f) for f in files]
        # A view, so each build reads the files once, in the statement that writes the table.
        self._con.execute(
            f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT * FROM read_json({_list(paths)}, "
            f"format = 'newline_delimited', columns = {spec})"
        )

    def _register_empty(self, name: str, table: Table) -> None:
        columns = ", ".join(f"CAST(NULL AS {TYPES[c.type]}) AS {quote(c.name)}" for c in table.columns)
        self._con.execute(f"CREATE OR REPLACE TEMP VIEW {quote(name)} AS SELECT {columns} WHERE false")

    # -- work -------------------------------------------------------------------------------------
    def write_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        out = local_path(folder)
        columns = ", ".join(f"CAST({quote(c.name)} AS {TYPES[c.type]}) AS {quote(c.name)}" for c in table.columns)
        statement = (
            f"COPY (SELECT {columns} FROM ({sql.strip().rstrip(';')}) AS result) TO {literal(out)} "
            f"(FORMAT parquet, COMPRESSION zstd, FILE_SIZE_BYTES {literal(self._settings.target_file_size)}, "
            f"FILENAME_PATTERN 'part-{{uuid}}')"
        )
        if "://" not in out:
            os.makedirs(os.path.dirname(out), exist_ok=True)
        try:
            row = self._con.execute(statement).fetchone()
        except duckdb.Error as exc:
            shutil.rmtree(out, ignore_errors=True)  # no orphan files from a failed build
            message = _message(exc)
            if "JSON" in message or "json" in message:
                raise LandingError(f"cannot read the landed files of {table.name}: {message}") from None
            raise EngineError(f"building {table.name} failed: {message}") from None
        files = sorted(str(p) for p in Path(out).glob("*.parquet")) if os.path.isdir(out) else []
        return [Path(f).as_uri() for f in files], int(row[0]) if row else 0

    def query(self, sql: str) -> pa.Table:
        try:
            statements = self._con.extract_statements(sql)
        except duckdb.Error as exc:
            raise QueryError(f"invalid SQL: {_message(exc)}") from None
        if len(statements) != 1:
            raise QueryError(f"give exactly one statement (got {len(statements)})")
        kind = statements[0].type
        if kind == duckdb.StatementType.EXPLAIN:
            # EXPLAIN ANALYZE runs what it explains: what is explained must be a query too.
            explained = re.match(r"\s*explain\s+(?:analy[sz]e\s+)?(.*)", sql, flags=re.S | re.I)
            inner = self._con.extract_statements(explained.group(1)) if explained else []
            kind = inner[0].type if len(inner) == 1 else kind
        if kind != duckdb.StatementType.SELECT:
            raise QueryError(f"only queries are allowed: a statement of type {kind.name} would modify data "
                             "or settings; tables change only through `stedi ingest` and `stedi run`")
        # Defence in depth: a query may read the tables' own folders and nothing else on disk.
        self._con.execute(f"SET allowed_directories = {_list(sorted(set(self._folders)))}")
        self._con.execute("SET enable_external_access = false")
        try:
            return self._con.execute(sql).to_arrow_table()
        except duckdb.Error as exc:
            raise QueryError(_message(exc)) from None

    def close(self) -> None:
        self._con.close()


def _list(items: list[str]) -> str:
    return "[" + ", ".join(literal(i) for i in items) + "]"


def _message(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:1000]
