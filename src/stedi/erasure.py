"""`stedi erase`: the right to erasure, leaving no trace of the person under the lakehouse root.

1. The person's records leave the landed raw files: customer records with their email (every version),
   accelerometer readings with it as `user`, step trainer readings of their device(s); each affected
   file is rewritten atomically. Lines that are not valid records are dropped too when they carry the
   email or serial number (they would otherwise live on in a quarantine table's raw text).
2. They join the suppression list (keyed hashes only), so a later ingest does not bring them back.
3. The tables are rebuilt from the landing zone, the quarantine tables included.
4. Every older snapshot is expired and every file no table references any more is deleted (pyiceberg
   does not delete them itself); stedi's scratch space is emptied.
5. A receipt without personal data (a keyed hash per person, rows removed per table, time) is appended
   to <root>/privacy/erasures.jsonl, and the whole root is scanned to prove nothing is left.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stedi.errors import StediError
from stedi.privacy import load_key, normalise_email, pseudonym, subject_hash
from stedi.suppression import Suppressed
from stedi.tables import TABLES

if TYPE_CHECKING:
    from stedi.api import Lakehouse
    from stedi.storage import Storage

AUDIT_LOG = "privacy/erasures.jsonl"  # under the lakehouse root

Progress = Callable[[str], None]


class ErasureError(StediError):
    """Erasure could not be completed; the message says what is left and what to do."""


@dataclass(frozen=True)
class ErasureReceipt:
    receipt_id: str
    people: int
    rows_removed: dict[str, int]
    landed_records_removed: int
    files_rewritten: int
    files_deleted: int
    audit_log: str  # where the receipt was appended (a path or an s3:// URI)
    subjects: list[str] = field(default_factory=list)  # keyed hashes, never addresses


def erase(lake: Lakehouse, emails: list[str], progress: Progress | None = None) -> ErasureReceipt:
    say = progress or (lambda _m: None)
    settings = lake.settings
    key = load_key(settings)
    people = sorted({normalise_email(e) for e in emails if e.strip()})
    before = {t.name: t.rows for t in lake.tables()}

    # Their devices: the serial numbers on any of their customer records (every version).
    zone = lake.landing
    landed = zone.files()
    serials: set[str] = set()
    others: set[str] = set()
    for entry in (f for f in landed if f.source == "customer"):
        for record in _records(zone.storage.read_bytes(zone.key(entry.source, entry.name))):
            serial, email = record.get("serialNumber"), record.get("email")
            if isinstance(serial, str) and isinstance(email, str):
                (serials if normalise_email(email) in people else others).add(serial)
    shared = serials & others
    if shared:
        say(f"note: {len(shared)} device(s) also belong to other customers: their readings are kept")
    serials -= shared

    suppressed = Suppressed(zone.storage, key)
    suppressed.add("email", people)
    suppressed.add("serial", serials)

    # 1. The landed files, each rewritten atomically.
    scratch = settings.scratch_dir / "erasing"
    scratch.mkdir(parents=True, exist_ok=True)
    removed = rewritten = 0
    try:
        for entry in landed:
            out = scratch / f"{entry.source}-{entry.name}"
            _kept, dropped = suppressed.filter_file(entry.source, zone.local_copy(entry, scratch / "in"), out)
            if dropped:
                lake.landing.rewrite(entry, out)
                removed += dropped
                rewritten += 1
                say(f"removed {dropped:,} records from {entry.source}/{entry.name}")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # 2. Remembered, by keyed hash only.
    suppressed.save()

    # 3. The tables, rebuilt from what is landed now.
    if any(before.values()):
        say("rebuilding the tables ...")
        try:
            lake.run(progress=lambda m: None)
        except StediError as exc:
            raise ErasureError(f"the landed files no longer hold the people erased, but the tables could not be "
                               f"rebuilt ({exc}); fix that and run `stedi erase` again to finish") from exc

    # 4. Older snapshots and unreferenced files: the person's rows live on in them.
    from stedi.maintenance import expire_and_clean

    deleted = 0
    for table in TABLES.values():
        report = expire_and_clean(lake.catalog, table)
        deleted += report.files_deleted if report else 0
    shutil.rmtree(settings.scratch_dir, ignore_errors=True)

    after = {t.name: t.rows for t in lake.tables()}
    rows_removed = {name: before[name] - after.get(name, 0) for name in before
                    if before[name] and TABLES[name].kind != "history"}

    # 5. Proof and receipt.
    needles = [*people, *serials, *(pseudonym(key, p) for p in people)]
    left = find_traces(zone.storage, needles)
    if settings.remote:  # this machine's catalog and scratch space
        left += find_traces(settings.state_dir, needles)
    if left:
        raise ErasureError(f"traces of the people erased remain in {len(left)} files, e.g. {left[0]}; "
                           "run `stedi erase` again, and report this")
    receipt = ErasureReceipt(
        receipt_id=uuid.uuid4().hex[:12], people=len(people), rows_removed=rows_removed,
        landed_records_removed=removed, files_rewritten=rewritten, files_deleted=deleted,
        audit_log=zone.storage.uri(AUDIT_LOG),
        subjects=[subject_hash(key, "email", p) for p in people])
    entry = {"receipt_id": receipt.receipt_id, "at": datetime.now(UTC).isoformat(timespec="seconds"),
             **{k: v for k, v in asdict(receipt).items() if k not in ("receipt_id", "audit_log")}}
    try:
        log = zone.storage.read_bytes(AUDIT_LOG)
    except FileNotFoundError:
        log = b""
    zone.storage.write_bytes(AUDIT_LOG, log + (json.dumps(entry) + "\n").encode())  # S3 cannot append
    return receipt


def _records(content: bytes) -> list[dict[str, object]]:
    """The records of a landed file that parse as JSON objects (JSON Lines or an array)."""
    text = content.decode("utf-8", "replace").lstrip("\ufeff")
    if text.lstrip().startswith("["):
        try:
            values = json.loads(text)
            return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []
        except ValueError:
            pass
    out = []
    for line in text.splitlines():
        try:
            value = json.loads(line)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            out.append(value)
    return out


def find_traces(root: Storage | Path, needles: list[str]) -> list[str]:
    """Files under `root` (a folder or the lakehouse's storage) holding any needle, case-insensitively:
    Parquet read as data (its pages are compressed) with vectorised string matching, every other file
    as bytes."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from stedi.storage import Storage

    storage = root if isinstance(root, Storage) else Storage(str(root))
    wanted = sorted({n.lower() for n in needles if n})
    raw = [n.encode() for n in wanted]
    hits = []
    for entry in storage.list("", recursive=True, hidden=True):
        if entry.name.endswith(".parquet"):
            with storage.open(entry.key) as fh:
                table = pq.read_table(fh)
            columns = [c for c in table.columns if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)]
            if any(pc.any(pc.match_substring(pc.utf8_lower(c), n)).as_py() for c in columns for n in wanted):
                hits.append(storage.uri(entry.key))
        elif any(n in storage.read_bytes(entry.key).lower() for n in raw):
            hits.append(storage.uri(entry.key))
    return hits
