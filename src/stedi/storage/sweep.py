"""What every writer does first, right after it took the lock: clear what a killed writer left behind.

- Temporary files: a local write goes to `.NAME.tmp` beside its target and is renamed into place
  (stedi.storage.files); a writer killed in between leaves the temporary file. Scratch space (files on their
  way in, DuckDB's spill files) belongs to writers only (readers spill elsewhere), so with the lock
  held nobody else uses it.
- An erasure killed midway: its journal is still there, and the erasure is finished from it before
  anything else happens (stedi.privacy.erasure), so no writer ever works on data that should be gone.

Data files of a build that never committed are not touched here: no snapshot references them, so
`stedi optimize` deletes them once they are older than its grace period.
"""

from __future__ import annotations

import shutil
from typing import TYPE_CHECKING

from stedi.storage.files import LANDING

if TYPE_CHECKING:
    from pathlib import Path

    from stedi.storage.files import Storage

TEMPORARY = ".tmp"  # the suffix of a local write on its way into place


def sweep(storage: Storage, scratch: Path) -> list[str]:
    """Delete leftover temporary files under the root and the writers' scratch space; what was deleted."""
    swept = []
    if not storage.remote:  # a PUT is atomic: S3 has no temporary objects
        for folder in (LANDING, "privacy", ""):
            for entry in storage.list(folder, recursive=bool(folder), hidden=True):
                if entry.name.startswith(".") and entry.name.endswith(TEMPORARY):
                    storage.delete(entry.key)
                    swept.append(storage.uri(entry.key))
    if scratch.exists():
        shutil.rmtree(scratch, ignore_errors=True)
    return swept
