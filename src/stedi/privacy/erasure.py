"""`stedi erase`: the right to erasure, leaving no trace of the person under the lakehouse root.

Before anything changes, the erasure resolves everything it will remove (the people's emails, the
serial numbers of their devices, their pseudonyms) and records it durably in a journal,
`<root>/privacy/erasing.json`. Then, each step safe to repeat:

1. The people join the suppression list (keyed hashes only): from now on no file that lands, by
   ingest or found in the landing folder, brings them back.
2. Their records leave the landed raw files: customer records with their email (every version),
   accelerometer readings with it as `user`, step trainer readings of their device(s); each affected
   file is rewritten atomically. Lines that are not valid records are dropped too when they carry the
   email or serial number (they would otherwise live on in a quarantine table's raw text).
3. The tables are rebuilt from the landing zone, the quarantine tables and quality_failures included;
   every tagged state is rewritten without them, its tag moved (stedi.privacy.tagged).
4. Every older snapshot is expired and every file no table references any more is deleted at once
   (pyiceberg does not delete them itself; an erasure does not wait for readers); stedi's scratch space
   is emptied.
5. The whole root is scanned to prove nothing is left; a receipt without personal data (a keyed hash
   per person, rows removed per table, time) is appended to <root>/privacy/erasures.jsonl; the journal
   is deleted.

Killed at any point, the erasure is finished from its journal by the next `stedi erase` or by whichever
writer comes next (`run`, `ingest`, `optimize`): nobody erased survives a crash. The journal is the one
file that names the people while their erasure is under way (it must, to finish the proof after a
crash); it is readable by its owner only, never scanned as a trace, and deleted with the receipt.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from stedi import faults
from stedi.errors import CatalogError, ErasureError, StediError
from stedi.landing.records import LandedRecord, scan_records
from stedi.privacy.keys import load_key, normalise_email, pseudonym, subject_hash
from stedi.privacy.suppression import LIST as SUPPRESSION_LIST
from stedi.privacy.suppression import Suppressed
from stedi.tables import TABLES

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog
    from stedi.landing.zone import LandedFile, LandingZone
    from stedi.storage.files import Storage

AUDIT_LOG = "privacy/erasures.jsonl"  # under the lakehouse root
JOURNAL = "privacy/erasing.json"  # under the lakehouse root, while an erasure is under way
EMAIL = re.compile(r"[^@\s]+@[^@\s]+")

Progress = Callable[[str], None]


class Lake(Protocol):
    """What an erasure uses of the lakehouse (stedi.api.Lakehouse is one): it rewrites the landed files,
    then rebuilds the tables through `run`."""

    settings: Settings
    catalog: TableCatalog

    @property
    def landing(self) -> LandingZone: ...

    def run(self, select: Iterable[str] | None = None, *, full_refresh: bool = False,
            progress: Progress | None = None) -> object: ...

    def sql(self, query: str, *, timeout: float | None = None) -> pa.Table: ...


def _row_counts(lake: Lake) -> dict[str, int]:
    """Rows per table now (0 for a table not built)."""
    counts = {}
    for table in TABLES.values():
        state = lake.catalog.state(table)
        counts[table.name] = state.rows if state else 0
    return counts

__all__ = ["ErasureError", "ErasurePlan", "ErasureReceipt", "erase", "finish_pending", "plan"]


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
    unmatched: int = 0  # people of whom no landed record was found (they are kept out all the same)
    tags_rewritten: list[str] = field(default_factory=list)  # tags moved to a state without them
    started: str = ""  # when the erasure began (a rollback to a state from before it is refused)
    traces_left: list[str] = field(default_factory=list)  # files stedi does not manage that still name them


@dataclass(frozen=True)
class ErasurePlan:
    """What an erasure would remove (`stedi erase --dry-run`): counts only."""

    people: int
    unmatched: int  # people of whom no landed record was found
    devices: int  # their devices (serial numbers no other customer has)
    shared_devices: int  # their devices that other customers have too (readings kept)
    landed_records: dict[str, int]  # per source
    landed_files: int  # landed files that would be rewritten
    rows: dict[str, int]  # per table: rows that name them (email, user, serial number or pseudonym)


@dataclass
class _Journal:
    """An erasure under way: who, and how far it got. Written before anything changes."""

    receipt_id: str
    started: str
    people: list[str]  # normalised emails
    serials: list[str]  # their devices' serial numbers (no other customer's)
    subjects: list[str]  # keyed hashes of the emails (the receipt's)
    before: dict[str, int]  # rows per table before the erasure
    removed: int = 0  # landed records removed so far
    rewritten: int = 0  # landed files rewritten so far
    matched: list[str] = field(default_factory=list)  # subjects found in a landed record
    tags: list[str] = field(default_factory=list)  # tags rewritten without them so far

    def save(self, storage: Storage) -> None:
        storage.write_bytes(JOURNAL, json.dumps(asdict(self), indent=1).encode())
        if not storage.remote:
            os.chmod(storage.uri(JOURNAL), 0o600)

    @classmethod
    def load(cls, storage: Storage) -> _Journal | None:
        try:
            data = json.loads(storage.read_bytes(JOURNAL).decode("utf-8"))
            return cls(**data)
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as exc:
            raise ErasureError(f"the erasure journal {storage.uri(JOURNAL)} is corrupt ({exc}); the erasure it "
                               "recorded cannot be finished from it: run `stedi erase` again with the same "
                               "addresses, then delete the journal") from None


class ErasureFence:
    """Refuses a writer's commit once an erasure began, or added people, after the writer started.

    The writer lock keeps an erasure and other writers apart; when it is bypassed (its file deleted by hand,
    a second machine), a run may have read a person's records before the erasure removed them, and its
    commit would bring them back after the erasure proved them gone. So every commit (TableCatalog.fence)
    first checks that the erasure journal and the suppression list are as they were when its writer
    started; the erasure moves its own writer's mark on (`rebase`) as it records its people."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.mark = self._now()

    def _now(self) -> tuple[str | None, bytes]:
        journal = _Journal.load(self.storage)
        try:
            suppressed = self.storage.read_bytes(SUPPRESSION_LIST)
        except FileNotFoundError:
            suppressed = b""
        return (journal.receipt_id if journal else None), suppressed

    def rebase(self) -> None:
        self.mark = self._now()

    def __call__(self) -> None:
        if self._now() != self.mark:
            raise CatalogError(
                "an erasure began while this command worked (the writer lock was bypassed: its lock file deleted "
                "by hand, or a second machine without a shared lock), so nothing more of it was committed: a "
                "record it read before the erasure must not come back. Run the command again")


def _people(emails: list[str]) -> list[str]:
    people = sorted({normalise_email(e) for e in emails if e.strip()})
    bad = [p for p in people if not EMAIL.fullmatch(p)]
    if bad:
        raise ErasureError(f"{bad[0]!r} is not an email address; nothing was erased (give each person's email, "
                           "with --email or one per line in --file)")
    if not people:
        raise ErasureError("no email address given; nothing was erased")
    return people


def _devices(zone: LandingZone, landed: list[LandedFile], people: list[str]) -> tuple[set[str], set[str]]:
    """The serial numbers on any of the people's customer records (every version), and those of them
    that other customers have too."""
    import tempfile

    serials: set[str] = set()
    others: set[str] = set()
    wanted = set(people)

    def visit(record: LandedRecord) -> None:
        if isinstance(record.value, dict):
            serial, email = record.value.get("serialNumber"), record.value.get("email")
            if isinstance(serial, str) and isinstance(email, str):
                (serials if normalise_email(email) in wanted else others).add(serial)

    with tempfile.TemporaryDirectory(prefix="stedi-erase-") as folder:  # copies of files in a bucket
        for entry in (f for f in landed if f.source == "customer"):
            scan_records(zone.local_copy(entry, Path(folder)), visit)
    return serials - others, serials & others


def erase(lake: Lake, emails: list[str], progress: Progress | None = None) -> ErasureReceipt:
    """Erase people (the caller holds the writer lock); see the module docstring."""
    say = progress or (lambda _m: None)
    key = load_key(lake.settings)
    people = _people(emails)
    pending = _Journal.load(lake.settings.storage())
    if pending is not None:  # an erasure killed earlier comes first
        finished = finish_pending(lake, say)
        if finished is not None and set(people) <= set(pending.people):
            return finished  # this very erasure, run again: now it is done

    zone = lake.landing
    serials, shared = _devices(zone, zone.files(), people)
    if shared:
        say(f"note: {len(shared)} device(s) also belong to other customers: their readings are kept")
    journal = _Journal(receipt_id=uuid.uuid4().hex[:12], started=_now(), people=people, serials=sorted(serials),
                       subjects=[subject_hash(key, "email", p) for p in people],
                       before=_row_counts(lake))
    journal.save(zone.storage)
    faults.point("erase:journal")
    return _finish(lake, journal, say)


def finish_pending(lake: Lake, say: Progress) -> ErasureReceipt | None:
    """Finish an erasure that was interrupted (its journal is still there); None if there is none."""
    journal = _Journal.load(lake.settings.storage())
    if journal is None:
        return None
    say(f"notice: finishing erasure {journal.receipt_id}, started {journal.started} and interrupted")
    return _finish(lake, journal, say)


def _finish(lake: Lake, journal: _Journal, say: Progress) -> ErasureReceipt:
    settings = lake.settings
    key = load_key(settings)
    storage = lake.landing.storage

    # 1. Kept out from now on, by keyed hash only.
    suppressed = Suppressed(storage, key)
    suppressed.add("email", journal.people)
    suppressed.add("serial", journal.serials)
    suppressed.save()
    lake.landing.suppressed = suppressed  # files adopted from now on are checked against the whole list
    if lake.catalog.fence is not None:
        lake.catalog.fence.rebase()  # this erasure's own commits go on; any other writer's stop
    faults.point("erase:suppressed")

    unread = _clean_landed(lake, journal, suppressed, say)  # 2.
    deleted = _rebuild(lake, journal, say, full_refresh=False)  # 3. and 4.

    # 5. Proof, receipt, and the journal goes.
    needles = [*journal.people, *journal.serials, *(pseudonym(key, p) for p in journal.people)]
    left = _traces(lake, needles, unread)
    if left:
        # Rows read before the erasure by a writer that bypassed the lock, or a file that came in meanwhile:
        # once more, every landed file and then every table from them (no fingerprint trusted).
        say(f"notice: traces of the people erased remain in {len(left)} files after the rebuild (e.g. {left[0]}): "
            "cleaning the landed files and rebuilding every table once more")
        unread |= _clean_landed(lake, journal, suppressed, say)
        deleted += _rebuild(lake, journal, say, full_refresh=True)
        left = _traces(lake, needles, unread)
    for uri in left:  # a file stedi does not manage (or a defect): said, never a state that blocks writers
        say(f"warning: {uri} still holds a trace of the people erased, and stedi does not know the file: delete it "
            "(and report it if it is under warehouse/ or landing/)")
    after = _row_counts(lake)
    rows_removed = {name: journal.before[name] - after.get(name, 0) for name in journal.before
                    if journal.before[name] and TABLES[name].kind != "history"}
    receipt = ErasureReceipt(
        receipt_id=journal.receipt_id, people=len(journal.people), rows_removed=rows_removed,
        landed_records_removed=journal.removed, files_rewritten=journal.rewritten, files_deleted=deleted,
        audit_log=storage.uri(AUDIT_LOG), subjects=journal.subjects,
        unmatched=len(set(journal.subjects) - set(journal.matched)), tags_rewritten=journal.tags,
        started=journal.started, traces_left=left)
    _append_receipt(storage, receipt)
    faults.point("erase:receipt")
    storage.delete(JOURNAL)
    return receipt


def _clean_landed(lake: Lake, journal: _Journal, suppressed: Suppressed, say: Progress) -> set[str]:
    """Step 2: the people's records leave the landed files, each file rewritten atomically, the journal
    keeping count after each; the files stedi never reads (not cleaned, so said: URIs returned)."""
    zone = lake.landing
    scratch = lake.settings.scratch_dir / "erasing"
    scratch.mkdir(parents=True, exist_ok=True)
    try:
        landed = zone.files()
        # Files in the source folders that stedi never reads (compressed, hidden, in a subfolder): not
        # cleaned, so said, and a trace in one does not fail the proof below (it would block every writer).
        for uri, why in zone.unread:
            say(f"warning: {uri} was not cleaned: stedi never reads it ({why}); delete it, or land it as "
                "plain JSON and erase again")
        for entry in landed:
            out = scratch / f"{entry.source}-{entry.name}"
            suppressed.hit.clear()
            _kept, dropped = suppressed.filter_file(entry.source, zone.local_copy(entry, scratch / "in"), out)
            if dropped:
                zone.rewrite(entry, out)
                journal.removed += dropped
                journal.rewritten += 1
                journal.matched = sorted(set(journal.matched) | (suppressed.hit & set(journal.subjects)))
                journal.save(zone.storage)
                say(f"removed {dropped:,} records from {entry.source}/{entry.name}")
                faults.point("erase:file-rewritten")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {uri for uri, _why in zone.unread}


def _rebuild(lake: Lake, journal: _Journal, say: Progress, full_refresh: bool) -> int:
    """Steps 3 and 4: the tables rebuilt from what is landed now, tagged states rewritten, every older
    snapshot expired and every unreferenced file deleted; how many files were deleted."""
    settings = lake.settings
    key = load_key(settings)
    storage = lake.landing.storage
    if any(journal.before.values()):
        say("rebuilding the tables ...")
        try:
            lake.run(full_refresh=full_refresh, progress=lambda m: None)
        except StediError as exc:
            raise ErasureError(f"the landed files no longer hold the people erased, but the tables could not be "
                               f"rebuilt ({exc}); fix that and run `stedi erase` again to finish") from exc
    faults.point("erase:rebuilt")

    # Tagged states keep old snapshots alive: each is rewritten without the people, its tag moved.
    from stedi.privacy.tagged import erase_from_tags

    def moved(tag: str) -> None:
        journal.tags = sorted({*journal.tags, tag})
        journal.save(storage)

    erase_from_tags(settings, lake.catalog, journal.people, journal.serials,
                    [pseudonym(key, p) for p in journal.people], journal.receipt_id, say, moved)

    # Older snapshots and unreferenced files: the person's rows live on in them. Erasure wins: no grace
    # period for readers, every snapshot but the current one goes.
    from stedi.iceberg.maintenance import expire_and_clean

    deleted = 0
    for table in TABLES.values():
        report = expire_and_clean(lake.catalog, table, grace_seconds=0)
        deleted += report.files_deleted if report else 0
    shutil.rmtree(settings.scratch_dir, ignore_errors=True)
    faults.point("erase:cleaned")
    return deleted


def _traces(lake: Lake, needles: list[str], unread: set[str]) -> list[str]:
    """Files under the root (and this machine's state of an s3:// root) still holding a needle, but for the
    journal and the files stedi never reads (said in step 2)."""
    settings = lake.settings
    left = [uri for uri in find_traces(lake.landing.storage, needles, skip={JOURNAL}) if uri not in unread]
    if settings.remote:  # this machine's catalog and scratch space
        left += find_traces(settings.state_dir, needles)
    return left


def _append_receipt(storage: Storage, receipt: ErasureReceipt) -> None:
    """Add the receipt to the audit log, once (a rerun after a crash here does not add it again)."""
    entry = {"receipt_id": receipt.receipt_id, "at": _now(),
             **{k: v for k, v in asdict(receipt).items() if k not in ("receipt_id", "audit_log")}}
    try:
        log = storage.read_bytes(AUDIT_LOG)
    except FileNotFoundError:
        log = b""
    if f'"receipt_id": "{receipt.receipt_id}"'.encode() in log:
        return
    storage.write_bytes(AUDIT_LOG, log + (json.dumps(entry) + "\n").encode())  # S3 cannot append


def plan(lake: Lake, emails: list[str]) -> ErasurePlan:
    """What erasing these people would remove, counted without changing anything."""
    key = load_key(lake.settings)
    people = _people(emails)
    from stedi.landing.zone import open_landing

    zone = open_landing(lake.settings, writable=False)
    landed = zone.files(adopt=False)
    serials, shared = _devices(zone, landed, people)
    probe = Suppressed(zone.storage, key)
    probe.hashes = set()
    subjects = probe.add("email", people)
    probe.add("serial", serials)
    records: dict[str, int] = {}
    files = 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="stedi-erase-plan-") as folder:  # copies of files in a bucket
        for entry in landed:
            local = zone.local_copy(entry, Path(folder))
            _kept, dropped = probe.filter_file(entry.source, local, Path(os.devnull))
            if local.parent == Path(folder):
                local.unlink()
            if dropped:
                records[entry.source] = records.get(entry.source, 0) + dropped
                files += 1
    return ErasurePlan(people=len(people), unmatched=len(subjects - probe.hit), devices=len(serials),
                       shared_devices=len(shared), landed_records=records, landed_files=files,
                       rows=_rows_naming(lake, people, sorted(serials), [pseudonym(key, p) for p in people]))


def _rows_naming(lake: Lake, people: list[str], serials: list[str], keys: list[str]) -> dict[str, int]:
    """Rows per built table that hold one of the people's emails, serials or pseudonyms in a column."""
    from stedi.privacy.naming import naming
    from stedi.sqltext import literal

    counts = []
    for table in TABLES.values():
        if table.kind == "history" or lake.catalog.state(table) is None:
            continue
        where = naming(table, people, serials, keys)
        if where:
            counts.append(f"select {literal(table.name)} as t, count(*) as n from {table.name} where {where}")
    if not counts:
        return {}
    found = lake.sql(" union all ".join(counts)).to_pylist()  # one engine, every table, in one query
    ordered = {r["t"]: int(r["n"]) for r in found if r["n"]}
    return {t.name: ordered[t.name] for t in TABLES.values() if t.name in ordered}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def find_traces(root: Storage | Path, needles: list[str], skip: set[str] | None = None) -> list[str]:
    """Files under `root` (a folder or the lakehouse's storage) holding any needle, case-insensitively:
    Parquet read as data (its pages are compressed) with vectorised string matching, every other file
    as bytes. `skip`: keys not scanned (the journal of the erasure being proven)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from stedi.storage.files import Storage

    storage = root if isinstance(root, Storage) else Storage(str(root))
    wanted = sorted({n.lower() for n in needles if n})
    raw = [n.encode() for n in wanted]
    hits = []
    for entry in storage.list("", recursive=True, hidden=True):
        if entry.key in (skip or set()):
            continue
        if entry.name.endswith(".parquet"):
            with storage.open(entry.key) as fh:
                table = pq.read_table(fh)
            columns = [c for c in table.columns if pa.types.is_string(c.type) or pa.types.is_large_string(c.type)]
            if any(pc.any(pc.match_substring(pc.utf8_lower(c), n)).as_py() for c in columns for n in wanted):
                hits.append(storage.uri(entry.key))
        elif any(n in storage.read_bytes(entry.key).lower() for n in raw):
            hits.append(storage.uri(entry.key))
    return hits
