"""The landing zone: raw files as delivered, one folder per source, and the manifest that lists them.

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
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from stedi.errors import LandingError, StorageError
from stedi.tables import SOURCES

if TYPE_CHECKING:
    from stedi.suppression import Suppressed

DATA_SUFFIXES = (".json", ".jsonl", ".ndjson")
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class LandedFile:
    source: str
    name: str  # file name inside landing/<source>/
    size: int
    sha256: str
    landed_at: str  # ISO 8601, UTC
    origin: str  # where it was ingested from


@dataclass
class IngestReport:
    landed: list[LandedFile] = field(default_factory=list)
    unchanged: list[tuple[str, str]] = field(default_factory=list)  # (path, why nothing was done)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why it is not landing data)
    suppressed: int = 0  # records of erased people dropped on the way in


class LandingZone:
    def __init__(self, root: Path, suppressed: Suppressed | None = None) -> None:
        self.root = root
        self.suppressed = suppressed  # erased people, kept out at ingest

    def path(self, source: str, name: str) -> Path:
        return self.root / source / name

    # -- manifest ---------------------------------------------------------------------------------
    def _read_manifest(self) -> dict[tuple[str, str], LandedFile]:
        path = self.root / MANIFEST
        try:
            entries = json.loads(path.read_text(encoding="utf-8"))["files"]
            files = [LandedFile(**e) for e in entries]
        except FileNotFoundError:
            return {}
        except OSError as exc:
            raise StorageError(f"cannot read the landing zone {self.root} ({exc.strerror}); check --home "
                               "or STEDI_HOME") from None
        except (ValueError, KeyError, TypeError) as exc:
            raise LandingError(f"the landing manifest {path} is corrupt ({exc}); move it away: the next "
                               "ingest or run rebuilds it from the landed files") from None
        return {(f.source, f.name): f for f in files}

    def _write_manifest(self, files: Iterable[LandedFile]) -> None:
        ordered = sorted(files, key=lambda f: (f.source, f.name))
        _atomic_write(self.root / MANIFEST,
                      json.dumps({"files": [asdict(f) for f in ordered]}, indent=1).encode())

    def files(self, source: str | None = None) -> list[LandedFile]:
        """Every landed file (of `source`), with the manifest brought in line with the folders.

        Files put into a source folder by hand are adopted (hashed once); entries whose file is gone
        are dropped.
        """
        manifest = self._read_manifest()
        current: dict[tuple[str, str], LandedFile] = {}
        for src in SOURCES:
            folder = self.root / src
            if not folder.is_dir():
                continue
            for entry in os.scandir(folder):
                if not entry.is_file() or entry.name.startswith("."):  # .tmp files mid-write
                    continue
                known = manifest.get((src, entry.name))
                size = entry.stat().st_size
                if known is None or known.size != size:
                    known = LandedFile(src, entry.name, size, _sha256(Path(entry.path)), _now(),
                                       "found in the landing zone")
                current[(src, entry.name)] = known
        if current != manifest:
            self._write_manifest(current.values())
        return sorted((f for f in current.values() if source in (None, f.source)), key=lambda f: f.name)

    # -- ingest -----------------------------------------------------------------------------------
    def ingest(self, paths: Iterable[str | Path], source: str | None = None,
               progress: Callable[[str], None] | None = None) -> IngestReport:
        """Copy source files into the landing zone; see the module docstring for the rules."""
        if source is not None and source not in SOURCES:
            raise LandingError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")
        report = IngestReport()
        candidates: list[tuple[Path, str]] = []
        for raw in paths:
            path = Path(raw)
            if not path.exists():
                raise LandingError(f"{path} does not exist")
            for file in sorted(path.rglob("*")) if path.is_dir() else [path]:
                if not file.is_file():
                    continue
                src = source or source_of(file)
                if file.name.startswith(".") or file.suffix.lower() not in DATA_SUFFIXES:
                    report.skipped.append((str(file), "not a JSON file"))
                elif src is None:
                    report.skipped.append((str(file), "no source folder (customer, accelerometer or "
                                                      "step_trainer) in its path; use --source"))
                else:
                    candidates.append((file, src))

        before = self.files()
        landed = {(f.source, f.name): f for f in before}
        by_hash = {(f.source, f.sha256): f for f in landed.values()}
        plan: list[LandedFile] = []
        conflicts: list[str] = []
        content: dict[str, Path] = {}  # what to land for a file: itself, or a copy without erased people
        incoming = self.root / ".incoming"
        for file, src in candidates:
            content[str(file.absolute())] = file
            if self.suppressed:
                incoming.mkdir(parents=True, exist_ok=True)
                filtered = incoming / f"{src}-{len(content)}-{file.name}"
                _kept, dropped = self.suppressed.filter_file(src, file, filtered)
                if dropped:
                    report.suppressed += dropped
                    content[str(file.absolute())] = filtered
                    if progress:
                        progress(f"dropped {dropped:,} records of erased people from {file}")
            digest = _sha256(content[str(file.absolute())])
            same = by_hash.get((src, digest))
            if same is not None:
                report.unchanged.append((str(file), f"already landed as {src}/{same.name}"))
                continue
            taken = landed.get((src, file.name))
            if taken is not None:
                conflicts.append(f"{file} differs from the landed {src}/{file.name} (sha256 "
                                 f"{taken.sha256[:12]}… vs {digest[:12]}…)")
                continue
            size = content[str(file.absolute())].stat().st_size
            entry = LandedFile(src, file.name, size, digest, _now(), str(file.absolute()))
            landed[(src, file.name)] = by_hash[(src, digest)] = entry
            plan.append(entry)
        if conflicts:
            raise LandingError("nothing was ingested: landed files are never overwritten, and "
                               + "; ".join(conflicts) + ". Give the new file a new name to land it too")

        try:
            for entry in plan:
                target = self.path(entry.source, entry.name)
                target.parent.mkdir(parents=True, exist_ok=True)
                tmp = target.with_name(f".{target.name}.tmp")
                shutil.copyfile(content[entry.origin], tmp)
                os.replace(tmp, target)
                report.landed.append(entry)
                if progress:
                    progress(f"landed {entry.source}/{entry.name} ({entry.size:,} bytes)")
        except OSError as exc:
            raise StorageError(f"cannot write to the landing zone {self.root}: {exc}") from None
        finally:
            if report.landed:
                self._write_manifest([*before, *report.landed])
            shutil.rmtree(incoming, ignore_errors=True)
        return report

    def rewrite(self, entry: LandedFile, new_content: Path) -> LandedFile:
        """Replace a landed file's content atomically (erasure only) and record it in the manifest."""
        target = self.path(entry.source, entry.name)
        os.replace(new_content, target)
        updated = LandedFile(entry.source, entry.name, target.stat().st_size, _sha256(target), _now(), entry.origin)
        manifest = self._read_manifest()
        manifest[(entry.source, entry.name)] = updated
        self._write_manifest(manifest.values())
        return updated


def source_of(file: Path) -> str | None:
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


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
