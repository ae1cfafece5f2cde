"""`stedi export TABLE [--as-of STATE] --out DIR`: a table as it stood in one state, for training.

The table's Parquet data files of that snapshot are copied byte for byte (they are immutable), so the
same state exports the same bytes every time, and a manifest (`manifest.json`) says what they are: the
table, the state and the snapshot ids of every table in it, rows, and each file's size and sha256. A
training set is reproduced by exporting the same tag again and comparing manifests.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stedi._version import __version__
from stedi.errors import StateError, StorageError
from stedi.iceberg.refs import snapshot_state
from stedi.states.resolve import LakeState
from stedi.storage.files import open_uri
from stedi.tables import get_table

if TYPE_CHECKING:
    from stedi.iceberg.catalog import TableCatalog

MANIFEST = "manifest.json"
CHUNK = 8 << 20


@dataclass(frozen=True)
class ExportedFile:
    path: str  # relative to the export folder
    rows: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class ExportManifest:
    table: str
    state: str  # how the state was named
    run_id: str | None
    tag: str | None
    snapshot_id: int
    snapshot_ids: dict[str, int]  # every data table's snapshot in that state
    rows: int
    files: list[ExportedFile]
    stedi_version: str | None
    exported_at: str


def export(catalog: TableCatalog, name: str, state: LakeState, out: Path) -> ExportManifest:
    """Copy `name`'s data files of `state` into the new or empty folder `out`, with a manifest."""
    import pyarrow.parquet as pq

    table = get_table(name)
    if table.kind == "history":
        raise StateError(f"{name} is a history of runs, not part of a state; `stedi sql --format csv "
                         f"\"select * from {name}\"` writes it out")
    snapshot = state.snapshots.get(name)
    if snapshot is None:
        raise StateError(f"table {name} was not built in {state.label}")
    files = snapshot_state(catalog, table, snapshot)
    if files is None:
        raise StateError(f"{state.label} is no longer available: table {name}'s snapshot {snapshot} has been expired")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise StorageError(f"{out} is not an empty folder; export into a new or empty one")
    out.mkdir(parents=True, exist_ok=True)
    exported = []
    for i, uri in enumerate(sorted(files.files), start=1):
        relative = f"{name}-{i:05d}.parquet"
        digest, size = hashlib.sha256(), 0
        fs, path = open_uri(uri, catalog.s3)
        try:
            with fs.open_input_stream(path) as source, open(out / relative, "wb") as target:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    target.write(chunk)
                    size += len(chunk)
        except FileNotFoundError:
            raise StateError(f"a data file of table {name} in {state.label} is gone ({uri}); that state cannot "
                             "be exported") from None
        exported.append(ExportedFile(relative, pq.ParquetFile(out / relative).metadata.num_rows, size,
                                     digest.hexdigest()))
    manifest = ExportManifest(name, state.label, state.run_id, state.tag, snapshot,
                              dict(sorted(state.snapshots.items())), sum(f.rows for f in exported), exported,
                              __version__, datetime.now(UTC).isoformat(timespec="seconds"))
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), indent=1) + "\n")
    return manifest
