"""Past snapshots and tags of one table: what a snapshot held, and the Iceberg tags that name snapshots.

A tag is a real Iceberg ref (any Iceberg reader sees it: Spark's `VERSION AS OF 'name'`, Athena, Trino).
What stedi knows of a tag beyond the snapshot it names (the run whose state it is, when it was made,
which erasures it has been cleaned of) is kept as a table property `stedi.tag.<name>`, set in the same
commit as the ref.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stedi.iceberg.catalog import TableCatalog, TableState, _snapshot_properties
from stedi.iceberg.maintenance import MAIN_BRANCH

if TYPE_CHECKING:
    from pyiceberg.table import Table as IcebergTable

    from stedi.tables import Table

TAG_PROPERTY = "stedi.tag."  # + name: JSON of what stedi knows of the tag (TagMark)
ERASING_BRANCH = "stedi-erasing"  # where an erasure writes a tagged state's new snapshot before the tag moves


@dataclass(frozen=True)
class TagMark:
    """A tag on one table, as stedi recorded it."""

    name: str
    snapshot_id: int
    run_id: str | None  # the run whose state the tag names (the runs up to it are its history)
    tagged_at: str | None  # ISO 8601, UTC
    tables: int | None  # on how many tables the tag was put (a tag on fewer is incomplete)
    erasure: str | None  # the last erasure receipt the tagged state was cleaned of


def snapshot_state(catalog: TableCatalog, table: Table, snapshot_id: int) -> TableState | None:
    """What `table` held in snapshot `snapshot_id` (its data files and rows); None if the snapshot is gone."""
    ice = catalog.load(table)
    if ice is None:
        return None
    snapshot = ice.metadata.snapshot_by_id(snapshot_id)
    if snapshot is None:
        return None
    with catalog.errors_about(table):
        tasks = list(ice.scan(snapshot_id=snapshot_id).plan_files())
    summary = snapshot.summary.additional_properties if snapshot.summary else {}
    files = [catalog.located(t.file.file_path) for t in tasks]
    return TableState(table.name, files, sum(t.file.record_count for t in tasks), snapshot_id,
                      datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC),
                      summary.get("stedi.fingerprint"), dict(summary))


def tags_of(ice: IcebergTable) -> dict[str, TagMark]:
    """The tags on a table (tags made by other tools too: stedi knows less of those)."""
    marks = {}
    for name, ref in ice.metadata.refs.items():
        if ref.snapshot_ref_type != "tag":
            continue
        try:
            known: dict[str, Any] = json.loads(ice.properties.get(TAG_PROPERTY + name, "{}"))
        except ValueError:
            known = {}
        marks[name] = TagMark(name, ref.snapshot_id, known.get("run_id"), known.get("tagged_at"),
                              known.get("tables"), known.get("erasure"))
    return marks


def set_tag(catalog: TableCatalog, table: Table, mark: TagMark) -> None:
    """Put (or move) the tag `mark.name` on `mark.snapshot_id`, with what stedi knows of it, in one commit."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    ice = catalog.ensure(table)
    known = {"run_id": mark.run_id, "tagged_at": mark.tagged_at, "tables": mark.tables, "erasure": mark.erasure}
    with catalog.committing(table, []), ice.transaction() as tx:
        tx.set_properties({TAG_PROPERTY + mark.name: json.dumps(known, sort_keys=True)})
        ManageSnapshots(tx).create_tag(mark.snapshot_id, mark.name).commit()


def remove_tag(catalog: TableCatalog, table: Table, name: str) -> bool:
    """Remove the tag `name` from `table`; whether it had it."""
    from pyiceberg.table.update.snapshot import ManageSnapshots

    ice = catalog.load(table)
    if ice is None or name not in ice.metadata.refs or ice.metadata.refs[name].snapshot_ref_type != "tag":
        return False
    with catalog.committing(table, []), ice.transaction() as tx:
        ManageSnapshots(tx).remove_tag(name).commit()
        if TAG_PROPERTY + name in ice.properties:
            tx.remove_properties(TAG_PROPERTY + name)
    return True


def rewrite_tagged(catalog: TableCatalog, table: Table, mark: TagMark, removed: list[str], added: list[str],
                   erasure: str, properties: dict[str, str] | None = None) -> int:
    """A new snapshot of the tagged state with the data files `removed` swapped for `added` (and the
    snapshot `properties` changed), made on a branch off the tagged snapshot (the table's current state is
    not touched), then the tag moved onto it with the branch removed. Its snapshot id."""
    from pyiceberg.io.pyarrow import parquet_files_to_data_files
    from pyiceberg.table.update.snapshot import ManageSnapshots

    ice = catalog.ensure(table)
    gone = set(removed)
    with catalog.committing(table, added):
        old = [t.file for t in ice.scan(snapshot_id=mark.snapshot_id).plan_files() if t.file.file_path in gone]
        with ice.transaction() as tx:
            ManageSnapshots(tx).create_branch(mark.snapshot_id, ERASING_BRANCH).commit()
            props = _snapshot_properties(None, {**{k: v for k, v in _summary(ice, mark.snapshot_id).items()
                                                   if k.startswith("stedi.")}, **(properties or {})})
            with tx.update_snapshot(snapshot_properties=props, branch=ERASING_BRANCH).overwrite() as overwrite:
                for data_file in old:
                    overwrite.delete_data_file(data_file)
                for data_file in parquet_files_to_data_files(ice.io, tx.table_metadata, iter(added)):
                    overwrite.append_data_file(data_file)
    ice = catalog.load(table, fresh=True) or ice
    new = ice.metadata.refs[ERASING_BRANCH].snapshot_id
    set_tag(catalog, table, TagMark(mark.name, new, mark.run_id, mark.tagged_at, mark.tables, erasure))
    ice = catalog.load(table, fresh=True) or ice
    with catalog.committing(table, []), ice.transaction() as tx:
        ManageSnapshots(tx).remove_branch(ERASING_BRANCH).commit()
    return new


def _summary(ice: IcebergTable, snapshot_id: int) -> dict[str, str]:
    snapshot = ice.metadata.snapshot_by_id(snapshot_id)
    return dict(snapshot.summary.additional_properties) if snapshot and snapshot.summary else {}


__all__ = ["MAIN_BRANCH", "TagMark", "remove_tag", "rewrite_tagged", "set_tag", "snapshot_state", "tags_of"]
