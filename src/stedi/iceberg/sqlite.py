"""The embedded catalog: pyiceberg's SQL catalog on SQLite, through Python's own sqlite3.

The file is pyiceberg's SqlCatalog layout (schema v1, the JDBC catalog's tables `iceberg_tables` and
`iceberg_namespace_properties`), so pyiceberg's SqlCatalog and Iceberg's JdbcCatalog open it as well, and
lakehouses made with SqlCatalog open here. It exists for start-up time: SqlCatalog goes through
SQLAlchemy, whose import alone takes about 0.45 s, a third of a small run. A commit is the same
compare-and-swap of the metadata location as SqlCatalog's.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING
from urllib.parse import quote

from pyiceberg.catalog import Catalog, MetastoreCatalog, PropertiesUpdateSummary
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchPropertyException,
    NoSuchTableError,
    TableAlreadyExistsError,
)
from pyiceberg.io import load_file_io
from pyiceberg.partitioning import UNPARTITIONED_PARTITION_SPEC, PartitionSpec
from pyiceberg.serializers import FromInputFile
from pyiceberg.table import CommitTableResponse, Table, TableProperties
from pyiceberg.table.locations import load_location_provider
from pyiceberg.table.metadata import TableMetadata, new_table_metadata
from pyiceberg.table.sorting import UNSORTED_SORT_ORDER, SortOrder
from pyiceberg.typedef import EMPTY_DICT, Identifier, Properties

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.schema import Schema
    from pyiceberg.table.update import TableRequirement, TableUpdate
    from pyiceberg.view import View

SCHEMA = """
CREATE TABLE IF NOT EXISTS iceberg_tables (
    catalog_name VARCHAR(255) NOT NULL,
    table_namespace VARCHAR(255) NOT NULL,
    table_name VARCHAR(255) NOT NULL,
    metadata_location VARCHAR(1000),
    previous_metadata_location VARCHAR(1000),
    iceberg_type VARCHAR(5),
    PRIMARY KEY (catalog_name, table_namespace, table_name)
);
CREATE TABLE IF NOT EXISTS iceberg_namespace_properties (
    catalog_name VARCHAR(255) NOT NULL,
    namespace VARCHAR(255) NOT NULL,
    property_key VARCHAR(255) NOT NULL,
    property_value VARCHAR(1000) NOT NULL,
    PRIMARY KEY (catalog_name, namespace, property_key)
);
"""
TABLE_TYPE = "TABLE"  # iceberg_type of a table (views, which stedi does not make, have another)
READ_ONLY = "stedi.read-only"  # property: open the file read-only (a reader)
IS_TABLE = "(iceberg_type = 'TABLE' OR iceberg_type IS NULL)"


class SqliteCatalog(MetastoreCatalog):
    """A pyiceberg catalog in a SQLite file (property `uri`: `sqlite:///<path>`)."""

    def __init__(self, name: str, **properties: str) -> None:
        super().__init__(name, **properties)
        uri = self.properties.get("uri", "")
        if not uri.startswith("sqlite:///"):
            raise NoSuchPropertyException(f"a SQLite catalog needs uri = sqlite:///<path>, not {uri!r}")
        path = uri.removeprefix("sqlite:///")
        # Read-only (property stedi.read-only): readers neither create nor change the file, so a
        # read-only lakehouse can be queried.
        self.read_only = self.properties.get(READ_ONLY, "").lower() == "true"
        # autocommit mode, so every transaction is explicit (BEGIN IMMEDIATE takes the write lock at
        # once); a writer waits up to 30 s for another process's commit
        target = f"file:{quote(path)}?mode=ro" if self.read_only else path
        self._db = sqlite3.connect(target, timeout=30, isolation_level=None, check_same_thread=False,
                                   uri=self.read_only)
        self._lock = threading.RLock()  # one connection; builds commit from several threads (Spark)
        self._is_table = IS_TABLE
        self._empty = False  # read-only, and the file holds no catalog yet
        if not self._has_tables():
            if self.read_only:
                self._empty = True
                return
            with self._lock:
                self._db.executescript(SCHEMA)  # its own transaction; IF NOT EXISTS: another process may race
        columns = [row[1] for row in self._rows("PRAGMA table_info(iceberg_tables)")]
        if "iceberg_type" not in columns:  # a v0 catalog (before views), as older SqlCatalogs made
            if self.read_only:
                self._is_table = "1 = 1"
            else:
                with self._transaction() as db:
                    db.execute("ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)")

    def _has_tables(self) -> bool:
        names = {r[0] for r in self._rows("SELECT name FROM sqlite_master WHERE type = 'table'")}
        return {"iceberg_tables", "iceberg_namespace_properties"} <= names

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                if self._db.in_transaction:  # SQLite rolls back by itself on some errors (a full disk)
                    self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _rows(self, sql: str, parameters: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
        if self._empty:
            return []
        with self._lock:
            return self._db.execute(sql, parameters).fetchall()

    def close(self) -> None:
        self._db.close()

    def metadata_locations(self, namespace: str) -> dict[str, str]:
        """{table name: metadata location} of every table in `namespace`, in one query."""
        rows = self._rows(f"SELECT table_name, metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                          f"table_namespace = ? AND {self._is_table}", (self.name, namespace))
        return {name: location for name, location in rows}

    @staticmethod
    def _names(identifier: str | Identifier) -> tuple[str, str]:
        return (Catalog.namespace_to_string(Catalog.namespace_from(identifier)),
                Catalog.table_name_from(identifier))

    def _location(self, namespace: str, name: str) -> str | None:
        rows = self._rows(f"SELECT metadata_location FROM iceberg_tables WHERE catalog_name = ? AND "
                          f"table_namespace = ? AND table_name = ? AND {self._is_table}", (self.name, namespace, name))
        return rows[0][0] if rows else None

    # -- tables -----------------------------------------------------------------------------------
    def create_table(self, identifier: str | Identifier, schema: Schema | pa.Schema, location: str | None = None,
                     partition_spec: PartitionSpec = UNPARTITIONED_PARTITION_SPEC,
                     sort_order: SortOrder = UNSORTED_SORT_ORDER, properties: Properties = EMPTY_DICT) -> Table:
        iceberg_schema = self._convert_schema_if_needed(
            schema, int(properties.get(TableProperties.FORMAT_VERSION,  # type: ignore[arg-type]
                                       TableProperties.DEFAULT_FORMAT_VERSION)))
        namespace, name = self._names(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        location = self._resolve_table_location(location, namespace, name)
        metadata_location = load_location_provider(location, dict(properties)).new_table_metadata_file_location()
        metadata = new_table_metadata(location=location, schema=iceberg_schema,
                                      partition_spec=partition_spec, sort_order=sort_order, properties=properties)
        self._write_metadata(metadata, load_file_io(self.properties, location=metadata_location), metadata_location)
        self._insert(namespace, name, metadata_location)
        return self._table(namespace, name, metadata, metadata_location)  # not read back: on S3 a request

    def _insert(self, namespace: str, name: str, metadata_location: str) -> None:
        try:
            with self._transaction() as db:
                db.execute("INSERT INTO iceberg_tables (catalog_name, table_namespace, table_name, metadata_location, "
                           "previous_metadata_location, iceberg_type) VALUES (?, ?, ?, ?, NULL, ?)",
                           (self.name, namespace, name, metadata_location, TABLE_TYPE))
        except sqlite3.IntegrityError as exc:
            raise TableAlreadyExistsError(f"Table {namespace}.{name} already exists") from exc

    def register_table(self, identifier: str | Identifier, metadata_location: str, overwrite: bool = False) -> Table:
        if overwrite:
            raise NotImplementedError("`overwrite` isn't supported")
        namespace, name = self._names(identifier)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        self._insert(namespace, name, metadata_location)
        return self.load_table(identifier)

    def load_table(self, identifier: str | Identifier) -> Table:
        namespace, name = self._names(identifier)
        metadata_location = self._location(namespace, name)
        if not metadata_location:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{name}")
        io = load_file_io(self.properties, location=metadata_location)
        return self._table(namespace, name, FromInputFile.table_metadata(io.new_input(metadata_location)),
                           metadata_location)

    def _table(self, namespace: str, name: str, metadata: TableMetadata, metadata_location: str) -> Table:
        return Table(identifier=Catalog.identifier_to_tuple(namespace) + (name,), metadata=metadata,
                     metadata_location=metadata_location,
                     io=self._load_file_io(metadata.properties, metadata_location), catalog=self)

    def drop_table(self, identifier: str | Identifier) -> None:
        namespace, name = self._names(identifier)
        with self._transaction() as db:
            dropped = db.execute(f"DELETE FROM iceberg_tables WHERE catalog_name = ? AND table_namespace = ? "
                                 f"AND table_name = ? AND {self._is_table}", (self.name, namespace, name)).rowcount
        if dropped < 1:
            raise NoSuchTableError(f"Table does not exist: {namespace}.{name}")

    def rename_table(self, from_identifier: str | Identifier, to_identifier: str | Identifier) -> Table:
        namespace, name = self._names(from_identifier)
        to_namespace, to_name = self._names(to_identifier)
        if not self.namespace_exists(to_namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {to_namespace}")
        try:
            with self._transaction() as db:
                moved = db.execute(f"UPDATE iceberg_tables SET table_namespace = ?, table_name = ? WHERE "
                                   f"catalog_name = ? AND table_namespace = ? AND table_name = ? AND {self._is_table}",
                                   (to_namespace, to_name, self.name, namespace, name)).rowcount
        except sqlite3.IntegrityError as exc:
            raise TableAlreadyExistsError(f"Table {to_namespace}.{to_name} already exists") from exc
        if moved < 1:
            raise NoSuchTableError(f"Table does not exist: {name}")
        return self.load_table(to_identifier)

    def commit_table(self, table: Table, requirements: tuple[TableRequirement, ...],
                     updates: tuple[TableUpdate, ...]) -> CommitTableResponse:
        namespace, name = self._names(table.name())
        location = self._location(namespace, name)
        current: Table | None
        if location is not None and location == table.metadata_location:
            current = table  # metadata files never change: the table's is the current one, no need to read it
        else:
            try:
                current = self.load_table(table.name())
            except NoSuchTableError:
                current = None
        staged = self._update_and_stage_table(current, table.name(), requirements, updates)
        if current is not None and staged.metadata == current.metadata:
            return _response(current.metadata, current.metadata_location)
        self._write_metadata(staged.metadata, staged.io, staged.metadata_location)
        if current is None:
            self._insert(namespace, name, staged.metadata_location)
        else:
            with self._transaction() as db:  # only if no one committed since we read the table
                swapped = db.execute(
                    "UPDATE iceberg_tables SET metadata_location = ?, previous_metadata_location = ? WHERE "
                    "catalog_name = ? AND table_namespace = ? AND table_name = ? AND metadata_location = ?",
                    (staged.metadata_location, current.metadata_location, self.name, namespace, name,
                     current.metadata_location)).rowcount
            if swapped < 1:
                # The metadata file written for this commit never became current: delete it, so the table's
                # folder holds no second file of the same version (`stedi attach` picks the newest).
                try:
                    staged.io.delete(staged.metadata_location)
                except OSError:
                    pass
                raise CommitFailedException(f"Table has been updated by another process: {namespace}.{name}")
        return _response(staged.metadata, staged.metadata_location)

    def list_tables(self, namespace: str | Identifier) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        text = Catalog.namespace_to_string(namespace)
        rows = self._rows(f"SELECT table_namespace, table_name FROM iceberg_tables WHERE catalog_name = ? "
                          f"AND table_namespace = ? AND {self._is_table}", (self.name, text))
        return [Catalog.identifier_to_tuple(ns) + (name,) for ns, name in rows]

    # -- namespaces -------------------------------------------------------------------------------
    def namespace_exists(self, identifier: str | Identifier) -> bool:
        namespace = Catalog.namespace_to_string(Catalog.identifier_to_tuple(identifier), NoSuchNamespaceError)
        below = namespace.replace("!", "!!").replace("_", "!_").replace("%", "!%") + ".%"
        for table, column in (("iceberg_tables", "table_namespace"), ("iceberg_namespace_properties", "namespace")):
            if self._rows(f"SELECT 1 FROM {table} WHERE catalog_name = ? AND ({column} = ? OR {column} "
                          "LIKE ? ESCAPE '!') LIMIT 1", (self.name, namespace, below)):
                return True
        return False

    def create_namespace(self, namespace: str | Identifier, properties: Properties = EMPTY_DICT) -> None:
        if self.namespace_exists(namespace):
            raise NamespaceAlreadyExistsError(f"Namespace {namespace} already exists")
        text = Catalog.namespace_to_string(namespace, NoSuchNamespaceError)
        with self._transaction() as db:
            db.executemany("INSERT INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)",
                           [(self.name, text, k, v) for k, v in (dict(properties) or {"exists": "true"}).items()])

    def drop_namespace(self, namespace: str | Identifier) -> None:
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        text = Catalog.namespace_to_string(namespace)
        if tables := self.list_tables(namespace):
            raise NamespaceNotEmptyError(f"Namespace {text} is not empty. {len(tables)} tables exist.")
        with self._transaction() as db:
            db.execute("DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ?",
                       (self.name, text))

    def list_namespaces(self, namespace: str | Identifier = ()) -> list[Identifier]:
        if namespace and not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace does not exist: {namespace}")
        prefix = Catalog.identifier_to_tuple(namespace)
        like = (Catalog.namespace_to_string(namespace, NoSuchNamespaceError) if namespace else "") + "%"
        rows = self._rows(
            "SELECT table_namespace FROM iceberg_tables WHERE catalog_name = ? AND table_namespace LIKE ? UNION "
            "SELECT namespace FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace LIKE ?",
            (self.name, like, self.name, like))
        found = {Catalog.identifier_to_tuple(r[0])[: len(prefix) + 1] for r in rows}
        return sorted(ns for ns in found if ns[: len(prefix)] == prefix and len(ns) > len(prefix))

    def load_namespace_properties(self, namespace: str | Identifier) -> Properties:
        text = Catalog.namespace_to_string(namespace)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace {text} does not exists")
        rows = self._rows("SELECT property_key, property_value FROM iceberg_namespace_properties WHERE "
                          "catalog_name = ? AND namespace = ?", (self.name, text))
        return {key: value for key, value in rows}

    def update_namespace_properties(self, namespace: str | Identifier, removals: set[str] | None = None,
                                    updates: Properties = EMPTY_DICT) -> PropertiesUpdateSummary:
        text = Catalog.namespace_to_string(namespace)
        if not self.namespace_exists(namespace):
            raise NoSuchNamespaceError(f"Namespace {text} does not exists")
        current = self.load_namespace_properties(namespace)
        summary = self._get_updated_props_and_update_summary(current, removals, updates)[0]
        with self._transaction() as db:
            db.executemany("DELETE FROM iceberg_namespace_properties WHERE catalog_name = ? AND namespace = ? "
                           "AND property_key = ?", [(self.name, text, k) for k in summary.removed])
            db.executemany("INSERT OR REPLACE INTO iceberg_namespace_properties VALUES (?, ?, ?, ?)",
                           [(self.name, text, k, v) for k, v in updates.items()])
        return summary

    # -- views: not kept here (stedi makes none) ---------------------------------------------------
    def list_views(self, namespace: str | Identifier) -> list[Identifier]:
        return []

    def view_exists(self, identifier: str | Identifier) -> bool:
        return False

    def load_view(self, identifier: str | Identifier) -> View:
        raise NotImplementedError("the embedded catalog keeps no views")

    def drop_view(self, identifier: str | Identifier) -> None:
        raise NotImplementedError("the embedded catalog keeps no views")

    def register_view(self, identifier: str | Identifier, metadata_location: str) -> View:
        raise NotImplementedError("the embedded catalog keeps no views")

    def __repr__(self) -> str:
        return f"SqliteCatalog({self.name!r})"


def _response(metadata: TableMetadata, location: str) -> CommitTableResponse:
    """pyiceberg's answer to a commit (its field is named by alias, as the REST spec spells it)."""
    return CommitTableResponse.model_validate({"metadata": metadata, "metadata-location": location})
