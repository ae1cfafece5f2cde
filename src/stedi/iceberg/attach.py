"""`stedi attach`: make the embedded catalog agree with the root it is used with.

A lakehouse is one folder (or bucket prefix) you can copy, move or back up, but the catalog records each
table by an absolute location. After a copy or a move, or with a catalog that was lost, replaced or made
for a bucket since emptied, stedi refuses to work (it would write into another lakehouse, or read files
that are gone) and points here. For every stedi table, `attach`:

- keeps a registration that already lies under this root;
- forgets one that lies elsewhere (only the catalog's row: nothing outside the root is touched);
- registers the table's newest metadata under this root, when its own location is this root's;
- relocates a copy: a table whose metadata still names the old root is registered anew under this root
  with the files of its current snapshot (found under this root), its row count and its snapshot
  properties (so nothing is rebuilt). Its older snapshots are not carried over: time travel starts at
  the copy.
- a table with no metadata under the root stays unregistered; the next `stedi run` builds it.

With an s3:// root, this catalog then claims the root (`catalog.json`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from stedi.config import NAMESPACE
from stedi.errors import CatalogError
from stedi.iceberg.catalog import FINGERPRINT, claim_root, is_under_root
from stedi.iceberg.shared import registered_locations
from stedi.iceberg.warehouse import MovedIO, metadata_files, newest_metadata
from stedi.tables import TABLES

if TYPE_CHECKING:
    from pyiceberg.io import FileIO
    from pyiceberg.table.metadata import TableMetadata

    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog
    from stedi.storage.files import Storage
    from stedi.tables import Table

Action = Literal["kept", "registered", "relocated", "forgotten", "not built"]


@dataclass(frozen=True)
class AttachReport:
    table: str
    action: Action
    rows: int | None
    location: str  # where the table is registered now ("" when it is not)


def attach(settings: Settings, catalog: TableCatalog, progress: Callable[[str], None] | None = None
           ) -> list[AttachReport]:
    """See the module docstring; the caller holds the writer lock and opened the catalog unchecked."""
    if settings.catalog:
        raise CatalogError("`stedi attach` repairs the embedded catalog; a shared catalog ([catalog] in the "
                           "settings) keeps its own registrations: register or drop tables with its own tools")
    say = progress or (lambda _m: None)
    storage = settings.storage()
    iceberg = catalog.iceberg
    registered = registered_locations(iceberg)
    keep = {name for name, where in registered.items()
            if is_under_root(settings, where) and _exists(storage, settings, where)}
    for name in sorted(set(registered) - keep):  # first every registration elsewhere: nothing may read it
        iceberg.drop_table((NAMESPACE, name))  # the registration only: its files are not ours
    reports = []
    for table in TABLES.values():
        catalog.load(table, fresh=True)
        if table.name in keep:
            state = catalog.state(table)
            reports.append(AttachReport(table.name, "kept", state.rows if state else 0, registered[table.name]))
            continue
        reports.append(_register(settings, catalog, storage, table, forgotten=table.name in registered))
        if reports[-1].action == "relocated":
            say(f"{table.name}: relocated from {registered.get(table.name, 'another root')} (its current "
                "snapshot; older ones stay with the original)")
    if settings.remote:
        claim_root(settings, iceberg, write=True, take_over=True)
    return reports


def _register(settings: Settings, catalog: TableCatalog, storage: Storage, table: Table, forgotten: bool
              ) -> AttachReport:
    """Register `table` from the newest metadata under the root (relocating a copy), if there is any."""
    io = _io(settings)
    found = [(version, storage.uri(key)) for version, key in metadata_files(storage, table.name)]
    newest = newest_metadata(io, found)
    for uri, metadata in newest:
        if is_under_root(settings, metadata.location):
            catalog.iceberg.register_table((NAMESPACE, table.name), _as_uri(settings, uri))
            catalog.load(table, fresh=True)
            state = catalog.state(table)
            return AttachReport(table.name, "registered", state.rows if state else 0, _as_uri(settings, uri))
    if not newest:
        return AttachReport(table.name, "forgotten" if forgotten else "not built", None, "")
    return _relocate(settings, catalog, storage, table, newest[0][1])


def _relocate(settings: Settings, catalog: TableCatalog, storage: Storage, table: Table,
              metadata: TableMetadata) -> AttachReport:
    """A copy of a table made under another root: registered anew here with its current files."""
    from stedi.iceberg.maintenance import expire_and_clean

    old = metadata.location.rstrip("/")
    new = storage.uri(f"warehouse/{NAMESPACE}/{table.name}")
    moved = MovedIO(_io(settings), old, new if "://" in new else f"file://{new}")
    snapshot = metadata.current_snapshot()
    files: list[str] = []
    if snapshot is not None:
        for manifest in snapshot.manifests(moved):
            entries = manifest.fetch_manifest_entry(moved, discard_deleted=True)
            files += [moved.map(e.data_file.file_path) for e in entries]
    summary = dict(snapshot.summary.additional_properties) if snapshot is not None and snapshot.summary else {}
    properties = {k: v for k, v in summary.items() if k.startswith("stedi.") and k != FINGERPRINT}
    state = catalog.replace(table, files, summary.get(FINGERPRINT), properties, base=None)
    # The copied metadata and manifests name the old root: nothing references them now.
    expire_and_clean(catalog, table, grace_seconds=0)
    ice = catalog.load(table, fresh=True)
    return AttachReport(table.name, "relocated", state.rows, ice.metadata_location if ice else "")


def _io(settings: Settings) -> FileIO:
    from pyiceberg.io.pyarrow import PyArrowFileIO

    return PyArrowFileIO(settings.catalog_properties())


def _as_uri(settings: Settings, uri: str) -> str:
    return uri if "://" in uri else f"file://{uri}"


def _exists(storage: Storage, settings: Settings, metadata_location: str) -> bool:
    from stedi.storage.files import local_path

    if settings.remote:
        prefix = storage.uri("")
        return metadata_location.startswith(prefix + "/") and storage.exists(metadata_location[len(prefix) + 1:])
    import os

    return os.path.isfile(local_path(metadata_location))


__all__ = ["AttachReport", "attach"]
