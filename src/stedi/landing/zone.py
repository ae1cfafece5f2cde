"""The landing zone: raw files as delivered, one folder per source, and the manifest that lists them.

The root is a local folder or an S3 prefix (stedi.storage.files); sources may be local files or s3:// objects.

    <home>/landing/customer/…json
    <home>/landing/accelerometer/…json
    <home>/landing/step_trainer/…json
    <home>/landing/manifest.json     name, size, sha256, time and origin of every landed file

Landed files are never modified. Ingesting a file whose content is already landed (under any name) is
a no-op; a different content under a name already taken is refused, so nothing landed is ever lost.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePath, PurePosixPath
from typing import TYPE_CHECKING, BinaryIO, Protocol

from stedi import faults
from stedi.errors import CatalogError, LandingError, StorageError
from stedi.storage.files import LANDING
from stedi.storage.s3 import S3Connection, is_s3, split
from stedi.tables import SOURCES

if TYPE_CHECKING:
    from stedi.config import Settings
    from stedi.storage.files import Storage

DATA_SUFFIXES = (".json", ".jsonl", ".ndjson")
COMPRESSED_SUFFIXES = (".gz", ".gzip", ".zst", ".bz2", ".xz", ".zip", ".lz4", ".snappy")
MANIFEST = "manifest.json"
FOUND = "found in the landing zone"  # the origin of a file put there by other means than ingest


def not_landing_data(name: str) -> str | None:
    """Why a file named `name` is not landed data, or None when it is: the one definition that ingest, the
    manifest (so the reader and suppression, which read only what it lists) and `stedi run`'s report of what
    it leaves unread share. Only plain JSON is read: a compressed file could not be kept free of erased
    people, and what is read must be what suppression filters."""
    lower = name.lower()
    if name.startswith("."):
        return "a hidden file (its name starts with '.'); rename it to land it"
    if lower.endswith(COMPRESSED_SUFFIXES):
        return "a compressed file: stedi lands JSON uncompressed (erased people are kept out of it); decompress it"
    if PurePath(lower).suffix not in DATA_SUFFIXES:
        return f"not a JSON file ({', '.join(DATA_SUFFIXES)})"
    return None


def nothing_landed(home: str | Path) -> LandingError:
    """The one line every command that needs landed data gives on a root where nothing has landed (a new
    root, or a mistyped --home): it has created nothing there."""
    return LandingError(f"nothing has landed in {home} yet: `stedi ingest PATH` first (or give the root of an "
                        "existing lakehouse with --home or STEDI_HOME)")


class RecordFilter(Protocol):
    """Keeps records out of files as they land (stedi.privacy.suppression: erased people)."""

    def __bool__(self) -> bool: ...

    def filter_file(self, source: str, src: Path, dst: Path) -> tuple[int, int]:
        """Copy `src` to `dst` without the records it keeps out: (records kept, records dropped)."""


@dataclass(frozen=True)
class LandedFile:
    source: str
    name: str  # file name inside landing/<source>/
    size: int
    sha256: str
    landed_at: str  # ISO 8601, UTC
    origin: str  # where it was ingested from
    # Byte counts taken while hashing, for the landing reader's quick path (None in older manifests):
    lines: int | None = None  # lines, blank ones included
    colons: int | None = None  # ':' bytes: at least one per JSON object member
    plain: bool | None = None  # no byte-order mark and not a JSON array: a JSON Lines candidate
    strings: int | None = None  # ':' followed (after at most one space) by '"': a string value's start
    numbers: int | None = None  # ':' followed (after at most one space) by '-' or a digit: a number's
    suppressed: int | None = None  # records of erased people dropped from the file as it landed


@dataclass(frozen=True)
class Digest:
    sha256: str
    lines: int
    colons: int
    plain: bool
    strings: int
    numbers: int

    @classmethod
    def of(cls, stream: BinaryIO) -> Digest:
        import numpy as np

        digest = hashlib.sha256()
        lines = colons = strings = numbers = 0
        last, head, first = b"\n", b"", b""
        pending = b""  # bytes whose ':' are not classified yet: each needs the two bytes after it

        def classify(window: bytes, end: int) -> None:
            """Count the ':' bytes before `end` in `window`, and how many start a string or a number."""
            nonlocal colons, strings, numbers
            a = np.frombuffer(window, np.uint8)
            at = np.flatnonzero(a[:end] == 58)
            after = a[at + 1]
            start = np.where(after == 32, a[at + 2], after)  # one space after the ':' is skipped
            colons += len(at)
            strings += int(np.count_nonzero(start == 34))
            numbers += int(np.count_nonzero((start == 45) | ((start >= 48) & (start <= 57))))

        while chunk := stream.read(1 << 20):
            digest.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
            head = head or chunk[:3]
            first = first or chunk.lstrip(b" \t\r\n")[:1]
            if len(chunk) < 2:
                pending += chunk
                continue
            classify(pending + chunk[:2], len(pending))
            classify(chunk, len(chunk) - 2)
            pending = chunk[-2:]
        classify(pending + b"\0\0", len(pending))  # a ':' at the very end starts no value
        plain = head != b"\xef\xbb\xbf" and first != b"["
        return cls(digest.hexdigest(), lines + (last != b"\n"), colons, plain, strings, numbers)

    @classmethod
    def of_file(cls, path: Path) -> Digest:
        with open(path, "rb") as fh:
            return cls.of(fh)

    def entry(self, source: str, name: str, size: int, origin: str, suppressed: int = 0) -> LandedFile:
        """The manifest entry of a file with this digest, landed now."""
        return LandedFile(source, name, size, self.sha256, _now(), origin, self.lines, self.colons, self.plain,
                          self.strings, self.numbers, suppressed or None)


@dataclass
class IngestReport:
    landed: list[LandedFile] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # (path, why nothing was done)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is not landing data)
    suppressed: int = 0  # records of erased people dropped on the way in


class LandingZone:
    """The landed files under `<root>/landing/`, on the local disk or in a bucket."""

    def __init__(self, storage: Storage, scratch: Path, suppressed: RecordFilter | None = None) -> None:
        self.storage = storage
        self.scratch = scratch  # a local folder for files on their way in
        self.root = storage.uri(LANDING)  # for messages
        self.suppressed = suppressed  # erased people, kept out at ingest
        self.unread: list[tuple[str, str]] = []  # (uri, why) of files in the source folders not read: files()

    def key(self, source: str, name: str) -> str:
        return f"{LANDING}/{source}/{name}"

    def uri(self, entry: LandedFile) -> str:
        """Where an engine reads the landed file: a local path or an s3:// URI."""
        return self.storage.uri(self.key(entry.source, entry.name))

    def local_copy(self, entry: LandedFile, folder: Path) -> Path:
        """A local path with the file's content: the file itself, or a copy fetched from the bucket."""
        if not self.storage.remote:
            return Path(self.uri(entry))
        return self.storage.download(self.key(entry.source, entry.name), folder / f"{entry.source}-{entry.name}")

    # -- manifest ---------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[tuple[str, str], LandedFile]:
        key = f"{LANDING}/{MANIFEST}"
        try:
            entries = json.loads(self.storage.read_bytes(key).decode("utf-8"))["files"]
            files = [LandedFile(**e) for e in entries]
        except FileNotFoundError:
            return {}
        except StorageError as exc:
            raise StorageError(f"{exc}; check --home or STEDI_HOME") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise LandingError(f"the landing manifest {self.storage.uri(key)} is corrupt ({exc}); move it away: "
                               "the next ingest or run rebuilds it from the landed files") from None
        return {(f.source, f.name): f for f in files}

    def _write_manifest(self, files: Iterable[LandedFile]) -> None:
        ordered = sorted(files, key=lambda f: (f.source, f.name))
        self.storage.write_bytes(f"{LANDING}/{MANIFEST}",
                                 json.dumps({"files": [asdict(f) for f in ordered]}, indent=1).encode())

    def has_landed(self) -> bool:
        """Whether any file has landed: a data file directly in a source folder, as `files()` lists them.
        Only the source folders are listed: nothing is read, hashed or written (a reader's check)."""
        return any(not_landing_data(entry.name) is None
                   for src in SOURCES for entry in self.storage.list(f"{LANDING}/{src}"))

    def files(self, source: str | None = None, adopt: bool = True) -> list[LandedFile]:
        """Every landed file (of `source`), with the manifest brought in line with the folders.

        Files put into a source folder by other means (an upstream system delivering into the bucket)
        are adopted: hashed once and, when people have been erased, stripped of their records first, so
        nobody erased comes back that way. Entries whose file is gone are dropped. `adopt=False` (a
        reader) lists them as they are and writes nothing.
        """
        manifest = self._read_manifest()
        current: dict[tuple[str, str], LandedFile] = {}
        self.unread = []
        for src in SOURCES:
            for entry in self.storage.list(f"{LANDING}/{src}", recursive=True, hidden=True):
                if entry.key.count("/") > 2:
                    self.unread.append((self.storage.uri(entry.key), f"in a subfolder: only files directly in "
                                        f"{LANDING}/{src}/ are read"))
                    continue
                if entry.name.startswith(".") and entry.name.endswith(".tmp"):
                    continue  # a write of stedi's own under way (or cut short): never data
                why = not_landing_data(entry.name)
                if why is not None:
                    self.unread.append((self.storage.uri(entry.key), why))
                    continue
                known = manifest.get((src, entry.name))
                if known is None or known.size != entry.size or known.numbers is None:
                    with self.storage.open(self.key(src, entry.name)) as fh:
                        digest = Digest.of(fh)
                    if known is not None and known.size == entry.size and known.sha256 == digest.sha256:
                        known = replace(known, lines=digest.lines, colons=digest.colons,  # an older manifest
                                        plain=digest.plain, strings=digest.strings, numbers=digest.numbers)
                    elif adopt:
                        known = self._adopt(src, entry.name, entry.size, digest)
                    else:
                        known = digest.entry(src, entry.name, entry.size, FOUND)
                current[(src, entry.name)] = known
        if current != manifest and adopt:
            self._write_manifest(current.values())
        return sorted((f for f in current.values() if source in (None, f.source)), key=lambda f: f.name)

    def _adopt(self, source: str, name: str, size: int, digest: Digest) -> LandedFile:
        """The manifest entry of a file found in the landing folder, without erased people's records."""
        origin = FOUND
        if not self.suppressed:
            return digest.entry(source, name, size, origin)
        folder = self.scratch / f"adopting-{os.getpid()}"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            found = LandedFile(source, name, size, digest.sha256, _now(), origin)
            filtered = folder / f"filtered-{name}"
            _kept, dropped = self.suppressed.filter_file(source, self.local_copy(found, folder), filtered)
            if not dropped:
                return digest.entry(source, name, size, origin)
            self.storage.upload(filtered, self.key(source, name))  # erasure wins over "never modified"
            return Digest.of_file(filtered).entry(source, name, filtered.stat().st_size, origin, dropped)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    # -- ingest -----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], source: str | None = None,
               progress: Callable[[str], None] | None = None,
               s3: S3Connection | None = None, follow_symlinks: bool = False,
               fence: Callable[[], None] | None = None) -> IngestReport:
        """Copy source files (local, or s3:// with `s3`) into the landing zone; see the module docstring.

        Inside a folder given, a symbolic link that leads outside it is not followed (it is skipped and
        reported) unless `follow_symlinks`: a folder of data should not pull in files from elsewhere."""
        if source is not None and source not in SOURCES:
            raise LandingError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")
        report = IngestReport()
        incoming = self.scratch / f"incoming-{os.getpid()}"
        try:
            candidates = self._candidates(paths, source, report, incoming, s3, progress, follow_symlinks)
            self._land(candidates, report, incoming, progress, fence)
        finally:
            shutil.rmtree(incoming, ignore_errors=True)
        return report

    def _candidates(self, paths: Iterable[str | Path], source: str | None, report: IngestReport,
                    incoming: Path, s3: S3Connection | None, progress: Callable[[str], None] | None,
                    follow_symlinks: bool) -> list[tuple[Path, str, str]]:
        """(local content, source, origin) of every data file named; s3:// files are fetched first."""
        found: list[tuple[PurePath, str, Callable[[], Path]]] = []
        for raw in paths:
            if is_s3(str(raw)):
                if s3 is None:
                    raise LandingError(f"{raw} is on S3 but no S3 connection is configured")
                found += _s3_files(str(raw), s3, incoming)
                continue
            path = Path(raw)
            if not path.exists():
                raise LandingError(f"{path} does not exist")
            for file in _walk(path, follow_symlinks) if path.is_dir() else [path]:
                outside = None if follow_symlinks or not path.is_dir() else _leads_outside(file, path)
                if outside is not None:
                    report.skipped.append((str(file.absolute()), f"a symbolic link to {outside}, outside "
                                           f"{path}; not followed (--follow-symlinks lands it)"))
                elif file.is_file():
                    found.append((file, str(file.absolute()), lambda f=file: f))  # type: ignore[misc]
        candidates = []
        for named, origin, fetch in found:
            src = source or source_of(named)
            why = not_landing_data(named.name)
            if why is not None:
                report.skipped.append((origin, why))
            elif src is None:
                report.skipped.append((origin, "no source folder (customer, accelerometer or "
                                               "step_trainer) in its path; use --source"))
            else:
                if progress and is_s3(origin):
                    progress(f"fetching {origin}")
                candidates.append((fetch(), src, origin))
        return candidates

    def _land(self, candidates: list[tuple[Path, str, str]], report: IngestReport, incoming: Path,
              progress: Callable[[str], None] | None, fence: Callable[[], None] | None) -> None:
        """Land what is new; `fence` (stedi.privacy.erasure.ErasureFence) refuses, before the manifest is
        written, files filtered by a suppression list that an erasure changed meanwhile: they are deleted."""
        before = self.files()
        landed = {(f.source, f.name): f for f in before}
        by_hash = {(f.source, f.sha256): f for f in landed.values()}
        plan: list[tuple[LandedFile, Path]] = []
        conflicts: list[str] = []
        repaired = False
        # Records of erased people dropped from a delivery whose rest is landed already (a file delivered
        # again after an erasure rewrote the landed one): nothing lands, but the drop is counted in the
        # entry of the file it matches, as for a file that lands, so the reconciliation shows it.
        dropped_from: Counter[tuple[str, str]] = Counter()
        for number, (file, src, origin) in enumerate(candidates):
            suppressed_before = report.suppressed
            content = file  # what to land: the file itself, or a copy without erased people
            if self.suppressed:
                incoming.mkdir(parents=True, exist_ok=True)
                filtered = incoming / f"filtered-{number}-{file.name}"
                _kept, dropped = self.suppressed.filter_file(src, file, filtered)
                if dropped:
                    report.suppressed += dropped
                    content = filtered
                    if progress:
                        progress(f"dropped {dropped:,} records of erased people from {origin}")
            counted = Digest.of_file(content)
            digest = counted.sha256
            dropped_here = report.suppressed - suppressed_before
            same = by_hash.get((src, digest))
            if same is not None and same.origin == FOUND and same.name == file.name and not is_s3(origin):
                # landed by an ingest killed before it wrote the manifest: record where it came from
                landed[(src, same.name)] = by_hash[(src, digest)] = replace(same, origin=origin)
                repaired = True
            if same is not None:
                report.unchanged.append((origin, f"already landed as {src}/{same.name}" + (
                    f" (without its {dropped_here:,} records of erased people)" if dropped_here else "")))
                dropped_from[(src, same.name)] += dropped_here
                continue
            name = file.name if not is_s3(origin) else origin.rsplit("/", 1)[-1]
            taken = landed.get((src, name))
            if taken is not None:
                conflicts.append(f"{origin} differs from the landed {src}/{name} (sha256 "
                                 f"{taken.sha256[:12]}… vs {digest[:12]}…)")
                continue
            entry = counted.entry(src, name, content.stat().st_size, origin, dropped_here)
            landed[(src, name)] = by_hash[(src, digest)] = entry
            plan.append((entry, content))
        if conflicts:
            raise LandingError("nothing was ingested: landed files are never overwritten, and "
                               + "; ".join(conflicts) + ". Data of another origin (real data beside generated, "
                               "say) needs a lakehouse of its own: `stedi --home OTHER_ROOT ingest ...`; a later "
                               "delivery of the same source lands under a name of its own")
        if +dropped_from:
            def with_drops(f: LandedFile) -> LandedFile:
                extra = dropped_from[(f.source, f.name)]
                return replace(f, suppressed=(f.suppressed or 0) + extra) if extra else f

            landed = {k: with_drops(f) for k, f in landed.items()}
            plan = [(with_drops(entry), content) for entry, content in plan]
        if (repaired or +dropped_from) and not plan:
            self._write_manifest(landed.values())
        try:
            for entry, content in plan:
                self.storage.upload(content, self.key(entry.source, entry.name))
                report.landed.append(entry)
                faults.point("ingest:file-landed")
                if progress:
                    progress(f"landed {entry.source}/{entry.name} ({entry.size:,} bytes)")
            if fence is not None and report.landed:
                fence()
        except CatalogError:
            for entry in report.landed:
                self.storage.delete(self.key(entry.source, entry.name))
            report.landed.clear()
            raise
        finally:
            # A kill before this leaves files the manifest does not list yet: the next writer adopts them.
            if report.landed:
                self._write_manifest([*(landed[(f.source, f.name)] for f in before), *report.landed])
                faults.point("ingest:manifest")

    def rewrite(self, entry: LandedFile, new_content: Path) -> LandedFile:
        """Replace a landed file's content atomically (erasure only) and record it in the manifest."""
        self.storage.upload(new_content, self.key(entry.source, entry.name))
        updated = Digest.of_file(new_content).entry(entry.source, entry.name, new_content.stat().st_size,
                                                    entry.origin, entry.suppressed or 0)  # (kept: a count)
        manifest = self._read_manifest()
        manifest[(entry.source, entry.name)] = updated
        self._write_manifest(manifest.values())
        return updated


def open_landing(settings: Settings, suppressed: RecordFilter | None = None, writable: bool = True
                 ) -> LandingZone:
    """The landing zone of the lakehouse, after checking that its root can be reached (and written)."""
    from stedi.storage.files import ensure_writable_dir

    storage = settings.storage()
    if storage.remote:
        storage.check()
    elif writable:
        ensure_writable_dir(settings.home)
    return LandingZone(storage, settings.scratch_dir, suppressed)


def _walk(folder: Path, follow_symlinks: bool) -> list[Path]:
    """Every file below `folder`, sorted; symbolic links to folders are entered only with `follow_symlinks`."""
    found = []
    for top, dirs, files in os.walk(folder, followlinks=follow_symlinks):
        found += [Path(top, name) for name in files]
        found += [Path(top, name) for name in dirs if not follow_symlinks and Path(top, name).is_symlink()]
    return sorted(found)


def _leads_outside(file: Path, folder: Path) -> Path | None:
    """Where `file` really is, when a symbolic link takes it outside `folder`; else None."""
    real = file.resolve()
    if real == folder.resolve() or folder.resolve() in real.parents:
        return None
    return real


def _s3_files(uri: str, s3: S3Connection, incoming: Path) -> list[tuple[PurePath, str, Callable[[], Path]]]:
    """The files at an s3:// path (one object, or every object below a prefix), fetched on demand."""
    from stedi.storage.files import Storage

    bucket, prefix = split(uri)
    store = Storage(f"s3://{bucket}", s3)
    if prefix and store.exists(prefix):
        entries = [prefix]
    else:
        entries = [e.key for e in store.list(prefix, recursive=True)]
        if not entries:
            raise LandingError(f"{uri} holds no files")
    out: list[tuple[PurePath, str, Callable[[], Path]]] = []
    for number, key in enumerate(entries):
        target = incoming / "s3" / str(number) / key.rsplit("/", 1)[-1]
        out.append((PurePosixPath(key), f"s3://{bucket}/{key}",
                    lambda k=key, t=target: store.download(k, t)))  # type: ignore[misc]
    return out


def source_of(file: PurePath) -> str | None:
    """The source of a file from its folders (`customer/x.json`, `customer/landing/x.json`) or its
    name (`customer-1691348231425.json`)."""
    parent = file.parent
    if parent.name in SOURCES:
        return parent.name
    if parent.name == "landing" and parent.parent.name in SOURCES:
        return parent.parent.name
    for src in sorted(SOURCES, key=len, reverse=True):
        if file.name.startswith((f"{src}-", f"{src}_", f"{src}.")):
            return src
    return None


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
