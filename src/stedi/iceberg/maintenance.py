"""Table maintenance: keep only a table's current snapshot and delete every file it no longer needs.

Expiring snapshots in pyiceberg only edits the metadata; the data files, manifests, manifest lists and
older metadata JSON files those snapshots used stay on disk (apache/iceberg-python#2604). stedi's
right-to-erasure must leave no copy of an erased person's rows anywhere under the lakehouse, so this
module expires the old snapshots and then deletes, under the table's location, every file the
current state does not reference.

Readers take no lock, so files may be read while this runs. A grace period protects them: a snapshot
that was current less than `grace_seconds` ago is kept (a reader may have planned its files), and so is
any unreferenced file younger than that (a build that has not committed yet). Erasure passes no grace:
the person's rows must go now, and a reader of an old snapshot may then fail ("erasure wins").
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import pyarrow.fs as pafs

from stedi import faults
from stedi.errors import CatalogError, StorageError
from stedi.storage.files import open_uri
from stedi.storage.s3 import is_s3

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

    from stedi.iceberg.catalog import TableCatalog
    from stedi.tables import Table

MAIN_BRANCH = "main"


@dataclass(frozen=True)
class CleanReport:
    """What `expire_and_clean` removed from one table."""

    table: str
    snapshots_expired: int
    files_deleted: int
    bytes_deleted: int


def expire_and_clean(catalog: TableCatalog, table: Table, keep_since: datetime | None = None, *,
                     grace_seconds: float) -> CleanReport | None:
    """Expire `table`'s snapshots (all but the current one and the tagged ones; with `keep_since`, only
    those older than it; never one superseded less than `grace_seconds` ago) and delete the files under its
    location that no remaining snapshot references and that are older than `grace_seconds`.

    None when the table does not exist in the catalog. Deleted: data and delete files of expired
    snapshots, their manifests and manifest lists, every metadata JSON but the current one, and
    directories left empty. Nothing outside the table's location is touched.
    """
    ice = catalog.load(table, fresh=True)
    if ice is None:
        return None
    fs, root = _table_root(catalog, ice, table)
    _refuse_shared_location(catalog, table, root)
    try:
        expired = _expire(ice, keep_since, grace_seconds)
        ice = catalog.load(table, fresh=True) or ice  # the metadata the expiry committed
        referenced = _referenced_files(catalog, ice)
    except CatalogError:
        raise
    except Exception as exc:
        raise CatalogError(f"cannot expire the snapshots of table {table.name}: "
                           f"{type(exc).__name__}: {exc}") from exc

    files = _files_under(fs, root)
    missing = sorted(p for p in referenced if _is_under(p, root) and p not in files)
    if missing:
        # A live file that is absent means a broken table or paths we misread: deleting would be a guess.
        raise StorageError(f"table {table.name} references {len(missing)} missing file(s), e.g. "
                           f"{missing[0]}; nothing was deleted; rebuild it with "
                           f"`stedi run --select {table.name} --full-refresh`")

    young = time.time() - grace_seconds
    doomed = [path for path in sorted(files) if path not in referenced and files[path][1] < young]
    latest = catalog.load(table, fresh=True)
    if latest is None or latest.metadata_location != ice.metadata_location:
        # Someone committed in between: their new files would look unreferenced.
        raise CatalogError(f"table {table.name} changed while it was being cleaned; nothing was deleted; "
                           "run the command again when no build is running")

    deleted = size = 0
    for path in doomed:
        try:
            fs.delete_file(path)
        except FileNotFoundError:
            continue
        except OSError as exc:
            raise StorageError(f"cannot delete {path} of table {table.name} ({exc})") from None
        deleted += 1
        size += files[path][0]
        if deleted == 1:
            faults.point("optimize:deleting")
    if isinstance(fs, pafs.LocalFileSystem):
        _remove_empty_dirs(root)
    return CleanReport(table.name, expired, deleted, size)


def _expire(ice: IcebergTable, keep_since: datetime | None, grace_seconds: float) -> int:
    """Expire every snapshot but the current one (and those since `keep_since`, and those that stopped
    being current less than `grace_seconds` ago) with pyiceberg's own API; how many were expired."""
    current = ice.current_snapshot()
    keep = {current.snapshot_id} if current is not None else set()
    if keep_since is not None:
        cutoff = keep_since.timestamp() * 1000
        keep |= {s.snapshot_id for s in ice.metadata.snapshots if s.timestamp_ms >= cutoff}
    if grace_seconds > 0:
        recent = (time.time() - grace_seconds) * 1000
        log = ice.metadata.snapshot_log
        keep |= {entry.snapshot_id for entry, after in zip(log, log[1:], strict=False)
                 if after.timestamp_ms >= recent}
    # A tag names a state someone wants kept (`stedi tag`): its snapshot stays, and so do its files (an
    # erasure rewrites tagged states first: stedi.privacy.tagged). Another branch would keep old rows
    # reachable for no one stedi knows of: it is dropped (stedi writes only `main`, and for a moment the
    # branch an erasure rewrites a tagged state on).
    branches = [name for name, ref in ice.metadata.refs.items()
                if name != MAIN_BRANCH and ref.snapshot_ref_type != "tag"]
    if branches:
        manage = ice.manage_snapshots()
        for name in branches:
            manage = manage.remove_branch(name)
        manage.commit()
    keep |= {ref.snapshot_id for ref in ice.metadata.refs.values()}
    doomed = [s.snapshot_id for s in ice.metadata.snapshots if s.snapshot_id not in keep]
    if doomed:
        # by_ids refuses protected snapshots (branch heads and tags), so the current one is never passed.
        ice.maintenance.expire_snapshots().by_ids(doomed).commit()
    return len(doomed)


def _referenced_files(catalog: TableCatalog, ice: IcebergTable) -> set[str]:
    """Paths (local, or bucket/key) of every file the table's remaining snapshots need."""
    uris = [ice.metadata_location]
    uris += [s.statistics_path for s in ice.metadata.statistics]
    uris += [s.statistics_path for s in ice.metadata.partition_statistics]
    for snapshot in ice.metadata.snapshots:
        uris.append(snapshot.manifest_list)
        for manifest in snapshot.manifests(ice.io):
            uris.append(manifest.manifest_path)
            # data files and delete files alike; deleted entries only record what an old snapshot had
            uris += [entry.data_file.file_path
                     for entry in manifest.fetch_manifest_entry(ice.io, discard_deleted=True)]
    return {_normal(catalog, uri) for uri in uris}


def _table_root(catalog: TableCatalog, ice: IcebergTable, table: Table) -> tuple[pafs.FileSystem, str]:
    location = ice.location()
    if "://" in location and not location.startswith(("file://", "s3://", "s3a://")):
        raise StorageError(f"table {table.name} is at {location}: only tables on a local disk or on S3 "
                           "can be cleaned")
    fs, _ = open_uri(location, catalog.s3)
    root = _normal(catalog, location)
    if root == os.path.dirname(root) or "/" not in root.strip("/"):  # "/", a drive or a bucket: never walk it
        raise StorageError(f"table {table.name} has the location {location}; refusing to clean it")
    return fs, root


def _refuse_shared_location(catalog: TableCatalog, table: Table, root: str) -> None:
    """Another table's files inside this location would look unreferenced: refuse to clean then."""
    from stedi.iceberg.shared import table_locations

    try:
        others = [(name, location) for name, location in table_locations(catalog.iceberg).items()
                  if name != table.name]
    except Exception as exc:
        raise CatalogError(f"cannot list the tables of the catalog: {type(exc).__name__}: {exc}") from exc
    for name, location in others:
        other = _normal(catalog, location)
        if _is_under(other, root) or _is_under(root, other):
            raise StorageError(f"table {table.name} shares its location {root} with table {name}; "
                               "refusing to delete files there")


def _files_under(fs: pafs.FileSystem, root: str) -> dict[str, tuple[int, float]]:
    """Every file below `root` with its size and modification time. Locally, symlinks count as files and
    are not followed."""
    if not isinstance(fs, pafs.LocalFileSystem):
        infos = fs.get_file_info(pafs.FileSelector(root, allow_not_found=True, recursive=True))
        return {i.path: (int(i.size or 0), i.mtime.timestamp() if i.mtime else 0.0)
                for i in infos if i.type == pafs.FileType.File}
    found = {}
    for folder, dirs, files in os.walk(root):
        for name in files + [d for d in dirs if os.path.islink(os.path.join(folder, d))]:
            path = os.path.join(folder, name)
            stat = os.lstat(path)
            found[path] = (stat.st_size, stat.st_mtime)
    return found


def _remove_empty_dirs(root: str) -> None:
    """Remove directories below `root` emptied by the deletion (bottom-up; `root` itself stays)."""
    for folder, _dirs, _files in os.walk(root, topdown=False):
        if folder != root and not os.path.islink(folder):
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty


def _normal(catalog: TableCatalog, uri: str) -> str:
    """A location as its file system names it: a normalised local path, or bucket/key on S3."""
    _fs, path = open_uri(uri, catalog.s3)
    return path.rstrip("/") if is_s3(uri) else os.path.normpath(os.path.abspath(path))


def _is_under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")
