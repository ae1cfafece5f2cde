"""The Iceberg catalog: tables, their data files, and atomic commits.

pyiceberg owns schemas, snapshots and planning; engines only read and write Parquet files. A build
commits its files here in one transaction whose single OVERWRITE snapshot replaces every file the
table had, so a reader sees the old table or the new one, never a mix.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Protocol

from stedi.config import NAMESPACE, Settings
from stedi.errors import CatalogError, StediError, TableError
from stedi.iceberg import shared
from stedi.iceberg.schema import arrow_schema, iceberg_schema
from stedi.iceberg.shared import registered_locations
from stedi.storage.files import ensure_writable_dir, local_path
from stedi.storage.s3 import S3Connection, explain
from stedi.tables import Table

if TYPE_CHECKING:

    from pyiceberg.catalog import Catalog
    from pyiceberg.io import FileIO
    from pyiceberg.table import Table as IcebergTable

    from stedi.iceberg.warehouse import Relocation

class Fence(Protocol):
    """A check before every commit, raising CatalogError to refuse it (stedi.privacy.erasure.ErasureFence)."""

    def __call__(self) -> None: ...

    def rebase(self) -> None: ...


FINGERPRINT = "stedi.fingerprint"  # snapshot property: what the table was built from
COMMIT_ATTEMPTS = 5  # appends to a history, when other writers keep coming first


@dataclass(frozen=True)
class TableState:
    """What the catalog knows of one table now."""

    name: str
    files: list[str]  # data file URIs of the current snapshot
    rows: int
    snapshot_id: int | None
    updated: datetime | None
    fingerprint: str | None
    summary: dict[str, str] = field(default_factory=dict)  # the snapshot's properties


class TableCatalog:
    """stedi's tables in a pyiceberg catalog (namespace `stedi`)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._catalog: Catalog | None = None
        self._writable = False  # opened for a writer (see open_for_writing)
        self._checked = True  # refuse a catalog that is not this root's (off only for `stedi attach`)
        self._absent = False  # a reader found no embedded catalog (a writer creates it)
        self._moved: Relocation | None = None  # a reader of a lakehouse copied or moved from where its catalog says
        self.fence: Fence | None = None  # checked before every commit (an erasure since the writer started)
        # Within `cached()` (a run): loaded tables and planned states, so a build does not read the same
        # metadata three times (on S3 each read is a request). Our commits update the cached objects.
        self._tables: dict[str, IcebergTable | None] | None = None
        self._states: dict[tuple[str, str], TableState] = {}

    @contextmanager
    def cached(self) -> Iterator[None]:
        """Reuse loaded tables until the block ends (one process's run: its own commits keep them current)."""
        self._tables, self._states = {}, {}
        try:
            yield
        finally:
            self._tables, self._states = None, {}

    @property
    def s3(self) -> S3Connection | None:
        """The S3 connection of an s3:// root (for reading and writing its data files)."""
        return self._settings.s3_connection() if self._settings.remote else None

    @property
    def iceberg(self) -> Catalog:
        """The pyiceberg catalog, opened for reading unless a writer opened it for writing."""
        if not self.exists:
            raise TableError(f"no table has been built at {self._settings.home} yet; run `stedi run` first")
        assert self._catalog is not None
        return self._catalog

    @property
    def exists(self) -> bool:
        """Whether the catalog exists (readers never create it; its absence is looked for once)."""
        if self._catalog is None and not self._absent:
            self._catalog = self._open(write=False)
            self._absent = self._catalog is None
        return self._catalog is not None

    def registers_data(self) -> bool:
        """Whether the catalog exists and registers a table of data: not only histories (a history records
        attempts, such as a run that failed before anything had landed)."""
        from stedi.tables import TABLES

        if not self.exists:
            return False
        with self.errors_about(f"the catalog ({self._where})"):
            names = shared.registered_names(self.iceberg)
        return any(name in TABLES and TABLES[name].kind != "history" for name in names)

    @contextmanager
    def unchecked(self) -> Iterator[None]:
        """Open the catalog without refusing one that is not this root's (`stedi attach` repairs it)."""
        self._catalog, self._writable, self._checked, self._absent, self._moved = None, False, False, False, None
        try:
            yield
        finally:
            self._catalog, self._writable, self._checked, self._absent, self._moved = None, False, True, False, None
            if self._tables is not None:
                self._tables.clear()

    def open_for_writing(self) -> None:
        """Open the catalog for a writer (which holds the lakehouse's lock): created if missing, the
        namespace made, an s3:// root claimed. Tables loaded through a read-only opening are dropped."""
        if self._writable:
            return
        self._catalog = self._open(write=True)
        self._writable, self._absent, self._moved = True, False, None
        if self._tables is not None:
            self._tables.clear()

    def check_writable(self) -> None:
        """Refuse, as a writer's opening would, a catalog a writer may not use (lost, or naming another root),
        without creating anything: for a writer of no table (`stedi ingest`)."""
        if self._writable:
            return  # opened for writing already, with these checks
        self._catalog = self._open(write=False, writer=True)
        self._absent = self._catalog is None

    def _open(self, write: bool, writer: bool | None = None) -> Catalog | None:
        """The catalog; None when opening to read and the embedded catalog does not exist.

        A reader creates nothing: no folder, no catalog file, no namespace, no claim (so a mistyped
        --home leaves nothing behind and a read-only root can be queried). A catalog that is not this
        root's is refused (see `check_locations` and `claim_root`) unless `unchecked()`, but a reader
        (not `writer`) reads a copied or moved lakehouse where it is. A catalog missing or empty while the
        warehouse holds tables is refused (`stedi attach` registers them again)."""
        from pyiceberg.catalog import load_catalog

        from stedi.iceberg.warehouse import lost_catalog

        settings = self._settings
        writer = write if writer is None else writer
        props = settings.catalog_properties()
        embedded = not settings.catalog
        if embedded and self._checked and not settings.catalog_path.is_file():
            if settings.remote:
                claim_root(settings, None, write=False)  # the bucket's tables may be in a catalog elsewhere
            lost_catalog(settings, absent=True)
        if write:
            if not settings.remote:
                ensure_writable_dir(settings.home)
                Path(local_path(settings.warehouse_uri)).mkdir(exist_ok=True)
            if embedded:
                ensure_writable_dir(settings.catalog_path.parent)
        elif embedded and not settings.catalog_path.is_file():
            return None
        with self.errors_about(f"the catalog ({_describe(props)})"):
            if not embedded:
                catalog = load_catalog("stedi", **props)
            else:  # the embedded SQLite catalog, without SQLAlchemy (see stedi.iceberg.sqlite)
                from stedi.iceberg.sqlite import READ_ONLY, SqliteCatalog

                catalog = SqliteCatalog("stedi", **props, **({} if write else {READ_ONLY: "true"}))
            if write:
                catalog.create_namespace_if_not_exists(NAMESPACE)
        if self._checked and embedded:
            self._moved = check_locations(settings, catalog, writer)
        if self._checked and settings.remote:
            claim_root(settings, catalog, write)
        if self._checked and embedded and not registered_locations(catalog):
            lost_catalog(settings, absent=False)
        return catalog

    @property
    def _where(self) -> str:
        return f"{self._settings.catalog_path}" if not self._settings.catalog else \
            _describe(self._settings.catalog_properties())

    @contextmanager
    def errors_about(self, about: str | Table) -> Iterator[None]:
        """Turn what pyiceberg and the file systems raise into a CatalogError about `about` (a table, or what
        was being used). Public for the modules beside this one that drive pyiceberg themselves (refs.py)."""
        table = about if isinstance(about, Table) else None
        what = f"table {about.name}" if isinstance(about, Table) else about
        try:
            yield
        except StediError:
            raise
        except Exception as exc:
            hint = ""
            missing = isinstance(exc, FileNotFoundError) or "Path does not exist" in str(exc)
            if missing and self._settings.catalog:  # a shared catalog: no `stedi attach` for it
                raise shared.stale(self._settings, what, table, exc) from None
            if missing:
                # The catalog names a metadata file the root does not hold: the catalog is stale (the
                # bucket was emptied or recreated, the warehouse deleted) or belongs to another root.
                raise CatalogError(
                    f"cannot use {what}: the catalog ({self._where}) names files that are not in the "
                    f"lakehouse at {self._settings.home} ({_first_line(exc)}). Run `stedi attach` to register "
                    "the tables the root holds (tables whose files are gone are forgotten, and the next "
                    "`stedi run` builds them again from the landing zone)") from None
            if isinstance(exc, OSError) and self._settings.remote:
                raise explain(exc, what, self._settings.s3_connection()) from None
            if "not a database" in str(exc) or "malformed" in str(exc):
                hint = (f"; {self._settings.catalog_path} is not a valid SQLite catalog: restore it, or move it "
                        "away and run `stedi run` to rebuild every table from the landing zone")
            raise CatalogError(f"cannot use {what}: {type(exc).__name__}: {_first_line(exc)}{hint}") from exc

    def load(self, table: Table, fresh: bool = False) -> IcebergTable | None:
        """The Iceberg table (None if it does not exist); `fresh` reads the catalog even within `cached()`."""
        from pyiceberg.exceptions import (
            NoSuchIcebergTableError,
            NoSuchNamespaceError,
            NoSuchPropertyException,
            NoSuchTableError,
        )

        if self._tables is not None and not fresh and table.name in self._tables:
            return self._tables[table.name]
        if not self.exists:
            return None
        with self.errors_about(table):
            try:
                if self._moved is not None and table.name in self._moved.tables:
                    registered = registered_locations(self.iceberg)[table.name]
                    loaded = self._moved.load(self.iceberg, self._io(), table.name, registered)
                else:
                    loaded = self.iceberg.load_table((NAMESPACE, table.name))
            except (NoSuchIcebergTableError, NoSuchPropertyException) as exc:  # a table, but not an Iceberg one
                raise shared.not_iceberg(self._settings, self.iceberg, table, exc) from None
            except (NoSuchTableError, NoSuchNamespaceError):
                loaded = None
        if loaded is not None and self._settings.catalog and self._checked:
            shared.check_own(self._settings, table, loaded)
        if self._tables is not None:
            self._tables[table.name] = loaded
        return loaded

    def ensure(self, table: Table) -> IcebergTable:
        """The Iceberg table for `table`, created on first use; refuses one whose columns differ.

        Its columns are `iceberg_schema`'s, field ids included: the writers stamp those ids into every data
        file (stedi.iceberg.schema.field_ids) without loading the table."""
        from pyiceberg.exceptions import TableAlreadyExistsError
        from pyiceberg.table import TableProperties

        self.open_for_writing()
        existing = self.load(table)
        if existing is not None:
            have = [(f.field_id, f.name, str(f.field_type)) for f in existing.schema().fields]
            want = [(f.field_id, f.name, str(f.field_type)) for f in iceberg_schema(table.columns).fields]
            if have != want and table.kind == "history" and want[:len(have)] == have:
                # a history is kept, never rebuilt; the columns added get the next ids, as field_ids says
                self._add_columns(table, existing, len(have))
                have = [(f.field_id, f.name, str(f.field_type)) for f in existing.schema().fields]
            if have == want:
                missing = {k: v for k, v in _table_properties(table).items() if existing.properties.get(k) != v}
                if missing:
                    with self.errors_about(table), existing.transaction() as tx:
                        tx.set_properties(missing)
                return existing
            # Every other stedi table is rebuilt from the landing zone, so a table of an older layout is
            # dropped and created anew rather than migrated (a shared catalog's table that stedi did not
            # make never gets here: see load).
            self.drop(table)
        schema = iceberg_schema(table.columns)
        with self.errors_about(table):
            if self._settings.catalog:
                shared.check_placement(self._settings, self.iceberg, table)
            try:
                created = self.iceberg.create_table(
                    (NAMESPACE, table.name), schema,
                    # Data files carry field ids; the name mapping is for those written before stedi 0.2.0
                    # without them (and for any other writer's), matched by name
                    properties={TableProperties.DEFAULT_NAME_MAPPING: schema.name_mapping.model_dump_json(),
                                shared.ZONE: table.zone, **_table_properties(table)},
                )
            except TableAlreadyExistsError:  # another writer created it just now
                raise self._conflict(table, []) from None
        if self._tables is not None:
            self._tables[table.name] = created
        return created

    def _add_columns(self, table: Table, ice: IcebergTable, known: int) -> None:
        """Columns added at the end of a history table: its old files read them as null."""
        from pyiceberg.table import TableProperties

        with self.errors_about(table):
            with ice.update_schema() as update:
                for column in iceberg_schema(table.columns).fields[known:]:
                    update.add_column(column.name, column.field_type, doc=column.doc)
            with ice.transaction() as tx:
                tx.set_properties({TableProperties.DEFAULT_NAME_MAPPING: ice.schema().name_mapping.model_dump_json()})

    def replace(self, table: Table, files: list[str], fingerprint: str | None,
                properties: dict[str, str] | None = None, *, base: int | None, keep_files: bool = False
                ) -> TableState:
        """Make `files` the table's whole content in one OVERWRITE snapshot; the new state.

        `base` is the snapshot the files were made from (None: the table had none). The commit is a
        compare-and-swap on it: if another writer committed in between, nothing is committed, the files
        are deleted (unless `keep_files`: files of an older snapshot, restored), and a CatalogError says to
        run again."""
        from pyiceberg.io.pyarrow import parquet_files_to_data_files

        props = _snapshot_properties(fingerprint, properties)
        ice = self.ensure(table)
        made = [] if keep_files else files
        self._check_base(table, ice, base, made)
        with self.committing(table, made):
            old = [task.file for task in ice.scan().plan_files()] if ice.current_snapshot() else []
            with ice.transaction() as tx:
                update = tx.update_snapshot(snapshot_properties=props)
                with update.overwrite() as overwrite:
                    for data_file in old:
                        overwrite.delete_data_file(data_file)
                    new = list(parquet_files_to_data_files(ice.io, tx.table_metadata, iter(files)))
                    for data_file in new:
                        overwrite.append_data_file(data_file)
        return self._committed(table, ice, files, sum(f.record_count for f in new), fingerprint, props)

    def rewrite(self, table: Table, removed: list[str], added: list[str], fingerprint: str | None,
                properties: dict[str, str] | None = None, *, base: int | None, keep_files: bool = False
                ) -> TableState:
        """Swap the data files `removed` for `added` in one OVERWRITE snapshot (copy-on-write of the files
        that held changed keys, plus new rows); the other files stay. A compare-and-swap on `base`, as
        `replace` (and `keep_files` as there)."""
        from pyiceberg.io.pyarrow import parquet_files_to_data_files

        props = _snapshot_properties(fingerprint, properties)
        before = self.state(table)
        ice = self.ensure(table)
        made = [] if keep_files else added
        self._check_base(table, ice, base, made)
        assert before is not None
        gone = set(removed)
        with self.committing(table, made):
            old = [task.file for task in ice.scan().plan_files() if task.file.file_path in gone] if gone else []
            if len(old) != len(gone):
                raise self._conflict(table, made)
            with ice.transaction() as tx:
                with tx.update_snapshot(snapshot_properties=props).overwrite() as overwrite:
                    for data_file in old:
                        overwrite.delete_data_file(data_file)
                    new = list(parquet_files_to_data_files(ice.io, tx.table_metadata, iter(added)))
                    for data_file in new:
                        overwrite.append_data_file(data_file)
        rows = before.rows - sum(f.record_count for f in old) + sum(f.record_count for f in new)
        return self._committed(table, ice, [f for f in before.files if f not in gone] + added, rows,
                               fingerprint, props)

    def append(self, table: Table, files: list[str], fingerprint: str | None = None,
               properties: dict[str, str] | None = None, *, base: int | None | Literal["any"]) -> TableState:
        """Add `files` to the table in one APPEND snapshot; the new state.

        `base` as for `replace`: new landed files and a grown table append only to the very snapshot they
        were worked out from, so a file is never added twice. "any": rows that are new whatever the table
        holds (a run's history), appended to the current snapshot, again if another writer came first."""
        from pyiceberg.io.pyarrow import parquet_files_to_data_files

        props = _snapshot_properties(fingerprint, properties)
        for attempt in range(COMMIT_ATTEMPTS):
            before = self.state(table)
            ice = self.ensure(table)
            if base != "any":
                self._check_base(table, ice, base, files)
            try:
                with self.committing(table, files, discard=base != "any"), ice.transaction() as tx:
                    with tx.update_snapshot(snapshot_properties=props).fast_append() as append:
                        new = list(parquet_files_to_data_files(ice.io, tx.table_metadata, iter(files)))
                        for data_file in new:
                            append.append_data_file(data_file)
                break
            except CatalogError:
                if base != "any" or attempt == COMMIT_ATTEMPTS - 1:
                    raise
                self.load(table, fresh=True)  # another writer appended first: append to theirs
        snapshot = ice.current_snapshot()
        assert snapshot is not None
        if before is None or before.snapshot_id != snapshot.parent_snapshot_id:
            state = self.state(table)  # another writer committed in between: plan the files again
            assert state is not None
            return state
        # the files before and the files added (planning them again would read every manifest)
        return self._committed(table, ice, before.files + files, before.rows + sum(f.record_count for f in new),
                               fingerprint, props)

    def append_rows(self, table: Table, rows: Sequence[Mapping[str, object]], name: str,
                    properties: dict[str, str] | None = None) -> None:
        """Append a few rows (a history's: a run's figures, rule counts, what it did) as one Parquet file
        `<name>.parquet`, to whatever the table holds (histories only add rows)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        from stedi.storage.files import make_parent, open_uri

        schema = arrow_schema(table.columns)  # each column with its field id
        arrow = pa.table({f.name: pa.array([r[f.name] for r in rows], f.type) for f in schema}, schema=schema)
        uri = f"{self.data_location(table)}/{name}.parquet"
        fs, path = open_uri(uri, self.s3)
        make_parent(fs, path)
        pq.write_table(arrow, path, compression="zstd", filesystem=fs)
        self.append(table, [uri], properties=properties, base="any")

    def _check_base(self, table: Table, ice: IcebergTable, base: int | None, files: list[str]) -> None:
        if ice.metadata.current_snapshot_id != base:
            raise self._conflict(table, files)

    @contextmanager
    def committing(self, table: Table, files: list[str], discard: bool = True) -> Iterator[None]:
        """A commit: refused by the catalog's compare-and-swap when the table moved on (stedi tables retry
        nothing on their own: see _table_properties), then a CatalogError and (with `discard`) the files
        made for it are deleted. Every commit goes through it, refs.py's tag and rollback commits included."""
        from pyiceberg.exceptions import CommitFailedException, ValidationException

        if self.fence is not None:
            try:
                self.fence()
            except CatalogError:
                self._discard(files if discard else [])
                raise
        try:
            with self.errors_about(table):
                try:
                    yield
                except (CommitFailedException, ValidationException):
                    raise self._conflict(table, files if discard else []) from None
        except CatalogError:
            self.load(table, fresh=True)  # the cached table is behind: the next read sees the other commit
            raise

    def _conflict(self, table: Table, files: list[str]) -> CatalogError:
        """Another writer changed `table` while this process worked on it; its files are deleted."""
        self._discard(files)
        return CatalogError(f"table {table.name} was changed by another writer while this command worked on it, "
                            "so nothing of it was committed here; run the command again (one writer at a time: "
                            "see docs/reliability.md)")

    def _discard(self, files: list[str]) -> None:
        """Delete the data files made for a commit that was refused."""
        from stedi.storage.files import open_uri

        for uri in files:
            try:
                fs, path = open_uri(uri, self.s3)
                fs.delete_file(path)
            except OSError:
                pass  # `stedi optimize` deletes files no snapshot references

    def state(self, table: Table) -> TableState | None:
        """The current snapshot of `table`, or None if it was never built."""
        ice = self.load(table)
        if ice is None:
            return None
        known = self._states.get((table.name, ice.metadata_location))
        if known is not None:
            return known
        snapshot = ice.current_snapshot()
        if snapshot is None:
            return TableState(table.name, [], 0, None, None, None)
        with self.errors_about(table):
            tasks = list(ice.scan().plan_files())
        if any(task.delete_files for task in tasks):
            # Another writer (e.g. Athena) left delete files; a bare file list would return deleted rows.
            raise CatalogError(f"table {table.name} has row-level delete files written by another engine; "
                               f"rebuild it with `stedi run --select {table.name} --full-refresh`")
        summary = snapshot.summary.additional_properties if snapshot.summary else {}
        state = TableState(
            name=table.name,
            files=[self.located(task.file.file_path) for task in tasks],
            rows=sum(task.file.record_count for task in tasks),
            snapshot_id=snapshot.snapshot_id,
            updated=datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
            fingerprint=summary.get(FINGERPRINT),
            summary=dict(summary),
        )
        if self._tables is not None:
            self._states[(table.name, ice.metadata_location)] = state
        return state

    def located(self, uri: str) -> str:
        """Where a file the metadata names is in the lakehouse in use (a moved copy's: under this root)."""
        return self._moved.map(uri) if self._moved is not None else uri

    def _io(self) -> FileIO:
        from pyiceberg.io import load_file_io

        return load_file_io(self._settings.catalog_properties())

    def _committed(self, table: Table, ice: IcebergTable, files: list[str], rows: int, fingerprint: str | None,
                   props: dict[str, str]) -> TableState:
        """The state of `table` just after this process committed its current snapshot (kept in a run)."""
        snapshot = ice.current_snapshot()
        assert snapshot is not None
        state = TableState(table.name, files, rows, snapshot.snapshot_id,
                           datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC), fingerprint, props)
        if self._tables is not None:
            self._states[(table.name, ice.metadata_location)] = state
        return state

    def data_location(self, table: Table) -> str:
        """Where the engine writes the table's new Parquet files (a URI)."""
        return self.ensure(table).location().rstrip("/") + "/data"

    def drop(self, table: Table) -> bool:
        self.open_for_writing()
        ice = self.load(table)
        if self._tables is not None:
            self._tables.pop(table.name, None)
        if ice is None:
            return False
        with self.errors_about(table):
            self.iceberg.purge_table((NAMESPACE, table.name))
        return True


def _snapshot_properties(fingerprint: str | None, properties: dict[str, str] | None) -> dict[str, str]:
    return {**(properties or {}), **({FINGERPRINT: fingerprint} if fingerprint else {})}


def _table_properties(table: Table) -> dict[str, str]:
    """Properties every stedi table carries.

    - No min/max statistics for text columns: Iceberg manifests would otherwise keep (truncated) emails,
      names and serial numbers of every file ever written, beyond the reach of erasure, since pyiceberg
      carries manifests of deleted entries forward. Counts are enough: stedi prunes nothing by value.
    - No commit retries by pyiceberg: a retry rebases the commit onto whatever another writer committed,
      which would add the same landed file twice. stedi decides what may be retried (TableCatalog.append)."""
    return {**{f"write.metadata.metrics.column.{c.name}": "counts" for c in table.columns if c.type == "string"},
            "commit.retry.num-retries": "0"}


def require_state(catalog: TableCatalog, table: Table) -> TableState:
    state = catalog.state(table)
    if state is None:
        raise TableError(f"table {table.name} has not been built yet; run `stedi run --select {table.name}`")
    return state


OWNER = "catalog.json"  # under an s3:// root: which catalog the lakehouse's tables are registered in


def claim_root(settings: Settings, catalog: Catalog | None, write: bool, take_over: bool = False) -> None:
    """Refuse to open a bucket's lakehouse with a second embedded catalog, or with a stale one.

    A SQLite catalog is private to one machine. Two of them over one bucket would each believe they own
    the same table locations and overwrite (and, on cleaning, delete) each other's files. So the root
    records the catalog that first used it, and a different embedded catalog is refused. Shared catalogs
    (SQL on PostgreSQL, Glue, REST) coordinate their writers and may be used from any machine. An
    embedded catalog that lists tables while the root has no claim at all was made for a bucket that has
    since been emptied or recreated. A reader only checks; a writer claims an unclaimed root; `stedi
    attach` (`take_over`) makes this catalog the root's.
    """
    import json
    import socket
    import uuid

    storage = settings.storage()
    kind = "embedded" if not settings.catalog else str(settings.catalog.get("type", "configured"))
    ident: str | None = None
    if kind == "embedded":
        id_file = settings.catalog_path.with_suffix(".id")
        if not id_file.exists() and write:
            id_file.write_text(uuid.uuid4().hex + "\n")
        ident = id_file.read_text().strip() if id_file.exists() else None
    try:
        owner = json.loads(storage.read_bytes(OWNER).decode("utf-8"))
    except FileNotFoundError:
        owner = None
    except ValueError:
        raise CatalogError(f"{storage.uri(OWNER)} is corrupt; it names the catalog of this lakehouse: restore "
                           "it, or remove it if you are sure only one catalog uses this root") from None
    mine = {"catalog": kind, "id": ident, "host": socket.gethostname(),
            "about": "the catalog this lakehouse's tables are registered in (written by stedi)"}
    if take_over:
        storage.write_bytes(OWNER, json.dumps(mine, indent=1).encode())
        return
    if owner is None:
        registered = registered_locations(catalog) if kind == "embedded" and catalog is not None else {}
        if registered:
            raise CatalogError(
                f"the embedded catalog {settings.catalog_path} lists {len(registered)} tables of {settings.home}, "
                f"but the lakehouse there has no {OWNER}: the bucket was emptied or recreated, or this catalog "
                "belongs to another lakehouse. Run `stedi attach` to register the tables the root holds (tables "
                "whose files are gone are forgotten, and the next `stedi run` builds them again)")
        if write:
            storage.write_bytes(OWNER, json.dumps(mine, indent=1).encode())
        return
    if owner.get("catalog") == "embedded" or kind == "embedded":
        if owner.get("catalog") != kind or owner.get("id") != ident:
            theirs = (f"an embedded SQLite catalog on host {owner.get('host')}" if owner.get("catalog") == "embedded"
                      else f"a shared {owner.get('catalog')} catalog")
            raise CatalogError(
                f"the lakehouse at {settings.home} is registered in {theirs}, not in this "
                + (f"embedded catalog ({settings.catalog_path})" if kind == "embedded" else f"{kind} catalog")
                + ". Two catalogs over one bucket would overwrite each other's tables. Use that catalog "
                "(catalog_file, or the same [catalog] settings), or a shared catalog for every machine "
                "([catalog] type = \"sql\" on PostgreSQL, \"glue\" or \"rest\"); if that catalog is gone for "
                "good, `stedi attach` registers the root's tables in this one")


def check_locations(settings: Settings, catalog: Catalog, writer: bool) -> Relocation | None:
    """Refuse to write through an embedded catalog that registers a table outside this root: the lakehouse
    was copied or moved, and writing through it would change the original (the catalog holds absolute
    locations). A reader reads the copy under this root where it is (a read-only backup or share); the
    Relocation that maps the catalog's locations here, None when every table lies under the root."""
    from stedi.iceberg.warehouse import relocation

    outside = {name: loc for name, loc in registered_locations(catalog).items() if not is_under_root(settings, loc)}
    if not outside:
        return None
    moved = None if writer else relocation(settings, outside)
    if moved is not None:
        return moved
    name, location = sorted(outside.items())[0]
    raise CatalogError(
        f"the catalog {settings.catalog_path} registers {len(outside)} tables outside the lakehouse at "
        f"{settings.home} (e.g. {name} at {location}): was the lakehouse copied or moved? stedi never writes "
        "outside the root in use. Run `stedi attach` to register the tables at their copies under this root")


def is_under_root(settings: Settings, uri: str) -> bool:
    """Whether a table or file location lies under the root's warehouse."""
    return shared.is_under(uri, settings.warehouse_uri)


def _describe(props: dict[str, str]) -> str:
    """Names the catalog without credentials (a URI may carry a password)."""
    uri = props.get("uri", "")
    return f"{props.get('type', 'catalog')} catalog" + (f" at {uri.split('@')[-1]}" if uri else "")


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]
