"""`stedi optimize`: compact each table's small files and expire snapshots past the retention.

A run writes each table as files of about `target_file_size`, but appends (new landed files, the
reconciliation history) add a few small files each time. Compaction rewrites a table whose files are
many and small into as few files of the target size as its rows need, as one OVERWRITE snapshot that
keeps the snapshot's properties (the fingerprint, the landing figures): the content is unchanged, so no
table that reads it is rebuilt. A table holding a file without Iceberg field ids (written before stedi
0.2.0, and read through the table's name mapping) is rewritten the same way, however large its files, so
that afterwards every data file carries them (stedi.iceberg.schema). Then snapshots older than
`snapshot_retention_days` are expired (the current one always stays) and files no remaining snapshot
references are deleted. Files a reader may still be using are kept for a grace period
(`optimize_grace_minutes`, default 60): snapshots that were current within it, and files younger than it
(see stedi.iceberg.maintenance).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from stedi import faults
from stedi.config import parse_size
from stedi.iceberg.catalog import FINGERPRINT
from stedi.iceberg.maintenance import expire_and_clean
from stedi.sqltext import quote
from stedi.tables import TABLES

if TYPE_CHECKING:
    from collections.abc import Callable

    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog
    from stedi.tables import Table

SMALL = 0.5  # a file under half the target size counts as small


@dataclass(frozen=True)
class OptimizeReport:
    table: str
    files_before: int
    files_after: int
    snapshots_expired: int
    files_deleted: int
    bytes_deleted: int
    compacted: bool = False  # its files were rewritten (a new snapshot of the same rows)


def optimize(settings: Settings, catalog: TableCatalog, retention_days: float | None = None,
             progress: Callable[[str], None] | None = None, grace_minutes: float | None = None
             ) -> list[OptimizeReport]:
    say = progress or (lambda _m: None)
    days = settings.snapshot_retention_days if retention_days is None else retention_days
    grace = settings.optimize_grace_minutes if grace_minutes is None else grace_minutes
    keep_since = datetime.now(UTC) - timedelta(days=days)
    target = parse_size(settings.target_file_size)
    reports = []
    for table in TABLES.values():
        ice = catalog.load(table)
        if ice is None or ice.current_snapshot() is None:
            continue
        tasks = list(ice.scan().plan_files())
        before = len(tasks)
        small = sum(1 for task in tasks if task.file.file_size_in_bytes < target * SMALL)
        # files of an older stedi lack field ids (read through the name mapping): rewritten with them
        without_ids = small <= 1 and _without_field_ids(catalog, table,
                                                        [catalog.located(t.file.file_path) for t in tasks])
        compacted = small > 1 or without_ids
        if compacted:
            say(f"compacting {table.name}: {before} files ..." if not without_ids else
                f"rewriting {table.name} with Iceberg field ids: {before} files ...")
            after = _compact(settings, catalog, table, target)
        else:
            after = before
        cleaned = expire_and_clean(catalog, table, keep_since, grace_seconds=grace * 60)
        assert cleaned is not None
        reports.append(OptimizeReport(table.name, before, after, cleaned.snapshots_expired, cleaned.files_deleted,
                                      cleaned.bytes_deleted, compacted))
    return reports


def _without_field_ids(catalog: TableCatalog, table: Table, files: list[str]) -> bool:
    """Whether any of the data `files` lacks the field ids of its columns (stedi.iceberg.schema), which only
    its footer says: read a few at a time (on S3 each is a request or two)."""
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow.parquet as pq

    from stedi.iceberg.schema import carries_field_ids
    from stedi.storage.files import open_uri

    def lacks(uri: str) -> bool:
        fs, path = open_uri(uri, catalog.s3)
        with fs.open_input_file(path) as fh:
            return not carries_field_ids(pq.read_schema(fh), table.columns)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return any(pool.map(lacks, files))


def _compact(settings: Settings, catalog: TableCatalog, table: Table, target: int) -> int:
    from stedi.engines import open_session

    state = catalog.state(table)
    assert state is not None
    session = open_session(settings)
    try:
        session.register_parquet(table.name, state.files, table)
        folder = f"{catalog.data_location(table)}/optimize-{uuid.uuid4().hex[:12]}"
        # sorted by the table's key, so a customer's (or device's) rows sit together in few files: the
        # copy-on-write of a changed key then rewrites few (docs/incremental.md)
        order = f" ORDER BY {quote(table.key)}" if table.key else ""
        files, rows = session.copy_to_parquet(f"SELECT * FROM {table.name}{order}", table, folder)
    finally:
        session.close()
    assert rows == state.rows, f"compaction of {table.name} wrote {rows} rows, not {state.rows}"
    properties = {k: v for k, v in state.summary.items() if k.startswith("stedi.") and k != FINGERPRINT}
    # on the snapshot it compacted: a commit in between (a run appending) refuses it, losing nothing
    catalog.replace(table, files, state.fingerprint, properties, base=state.snapshot_id)
    faults.point("optimize:compacted")
    return len(files)
