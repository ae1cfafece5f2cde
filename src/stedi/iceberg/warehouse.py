"""What the warehouse holds of stedi's tables, found without the catalog, and reading it where it was moved.

The catalog only points at each table's current metadata file; the metadata files themselves (history,
snapshots, tags) stay in the warehouse. So:

- a catalog that is missing or registers no table while the warehouse holds committed metadata was lost
  or replaced: every command refuses (`lost_catalog`) and `stedi attach` registers the tables again from
  their newest metadata (`newest_metadata`), history and tags kept, instead of a run rebuilding them;
- a lakehouse copied or moved to another path (a restored backup, a read-only share) has a catalog that
  still names the old root: readers read the copy through a `Relocation` that maps every location the
  metadata names under the old warehouse to the same place under this one. Writers keep refusing
  (`stedi attach` first): they would write metadata naming the old root.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pyiceberg.io import FileIO

from stedi.config import NAMESPACE
from stedi.errors import CatalogError
from stedi.tables import TABLES

if TYPE_CHECKING:
    from pyiceberg.catalog import Catalog
    from pyiceberg.io import InputFile, OutputFile
    from pyiceberg.table import Table as IcebergTable
    from pyiceberg.table.metadata import TableMetadata

    from stedi.config import Settings
    from stedi.storage.files import Storage

VERSION = re.compile(r"^(\d+)-.*\.metadata\.json$")  # pyiceberg's metadata file names: 00003-<uuid>.metadata.json


def table_folder(name: str) -> str:
    """A table's folder (its data/ and metadata/), relative to the root: where stedi's own catalog places it,
    and so does a catalog whose database is located at warehouse/<namespace> (as `stedi deploy aws` makes it)."""
    return f"warehouse/{NAMESPACE}/{name}"


def metadata_folder(name: str) -> str:
    """A table's metadata folder, relative to the root."""
    return f"{table_folder(name)}/metadata"


def metadata_files(storage: Storage, name: str) -> list[tuple[int, str]]:
    """(version, key) of every metadata file of table `name` under the root, oldest version first."""
    found = []
    for entry in storage.list(metadata_folder(name)):
        match = VERSION.match(entry.name)
        if match:
            found.append((int(match.group(1)), entry.key))
    return sorted(found)


def committed_tables(storage: Storage) -> list[str]:
    """The stedi tables whose folder holds metadata of a commit (version 1 or later: a table's version 0 is
    its creation, which a writer killed right after creating it can leave unregistered)."""
    return [name for name in TABLES if any(version >= 1 for version, _key in metadata_files(storage, name))]


def lost_catalog(settings: Settings, absent: bool) -> None:
    """Refuse a catalog that is missing (`absent`) or registers no table while the warehouse holds tables."""
    held = committed_tables(settings.storage())
    if not held:
        return
    state = "is missing" if absent else "registers no table"
    raise CatalogError(
        f"the catalog {settings.catalog_path} {state}, but the lakehouse at {settings.home} holds {len(held)} "
        f"tables (e.g. {held[0]}): the catalog was lost or replaced. Run `stedi attach` to register them again "
        "with their history, snapshots and tags (nothing is rebuilt); stedi does not rebuild over them")


def newest_metadata(io: FileIO, uris: list[tuple[int, str]]) -> list[tuple[str, TableMetadata]]:
    """The metadata files at `uris` ((version, uri)), newest first: by version, then, between two files of the
    same version (a writer killed after writing its metadata file, before the catalog pointed at it, and the
    next writer's commit of that version), the one written last."""
    from pyiceberg.serializers import FromInputFile

    read = [(version, uri, FromInputFile.table_metadata(io.new_input(uri))) for version, uri in uris]
    read.sort(key=lambda item: (item[0], item[2].last_updated_ms), reverse=True)
    return [(uri, metadata) for _version, uri, metadata in read]


def moved(location: str, old: str, new: str) -> str:
    """`location` under warehouse `old` (a URI, or its bare local path) as the same place under `new`."""
    old, new = old.rstrip("/"), new.rstrip("/")
    for prefix in (old, old.replace("file://", "", 1)):
        if location.startswith(prefix + "/"):
            return new + location[len(prefix):]
    return location


class MovedIO(FileIO):
    """Reads, under the new warehouse, the files a moved table's metadata names under the old one; never
    writes or deletes (a reader, or `stedi attach` reading a copy)."""

    def __init__(self, io: FileIO, old: str, new: str) -> None:
        super().__init__(io.properties)
        self._io, self._old, self._new = io, old, new

    def map(self, location: str) -> str:
        return moved(location, self._old, self._new)

    def new_input(self, location: str) -> InputFile:
        return self._io.new_input(self.map(location))

    def new_output(self, location: str) -> OutputFile:
        raise CatalogError(f"a moved table is read, never written, through its old location {location}")

    def delete(self, location: Any) -> None:
        raise CatalogError("a moved table is read, never cleaned, through its old location")


@dataclass(frozen=True)
class Relocation:
    """A lakehouse read at another path than the one its catalog names: `old` warehouse -> `new` warehouse."""

    old: str
    new: str
    tables: frozenset[str]  # the tables registered under the old warehouse

    def map(self, location: str) -> str:
        return moved(location, self.old, self.new)

    def load(self, catalog: Catalog, io: FileIO, name: str, registered: str) -> IcebergTable:
        """Table `name` read from its copy under the new warehouse (its metadata, manifests and data files)."""
        from pyiceberg.serializers import FromInputFile
        from pyiceberg.table import Table as IcebergTable

        reader = MovedIO(io, self.old, self.new)
        location = reader.map(registered)
        metadata = FromInputFile.table_metadata(reader.new_input(location))
        return IcebergTable((NAMESPACE, name), metadata, location, reader, catalog)


def relocation(settings: Settings, outside: dict[str, str]) -> Relocation | None:
    """How a reader reads tables registered outside the root (`outside`: name -> metadata location): the one
    old warehouse they all lie in, when the root holds each one's metadata file at the same place; else None
    (not a copy of one lakehouse: refused)."""
    storage = settings.storage()
    olds = set()
    for name, location in outside.items():
        marker = f"/{metadata_folder(name)[len('warehouse/'):]}/"
        if marker not in location:
            return None
        olds.add(location[:location.index(marker)])
    if len(olds) != 1:
        return None
    old = olds.pop()
    for location in outside.values():
        mapped = moved(location, old, settings.warehouse_uri)
        if not mapped.startswith(settings.warehouse_uri.rstrip("/") + "/"):
            return None
        if not storage.exists("warehouse/" + mapped[len(settings.warehouse_uri.rstrip("/")) + 1:]):
            return None
    return Relocation(old, settings.warehouse_uri, frozenset(outside))
