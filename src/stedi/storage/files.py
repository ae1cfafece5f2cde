"""Where the lakehouse's files live: a local folder or an S3 bucket, behind one small interface.

`Storage` addresses files by key relative to its root (`landing/customer/x.json`) and reaches them
through pyarrow's file systems, the same ones pyiceberg uses. On S3 a PUT is atomic, so a write needs
no temporary object; on a local disk a write goes to a temporary file that is renamed into place.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO, cast
from urllib.parse import unquote, urlparse

from stedi.errors import StorageError
from stedi.storage.s3 import S3Connection, explain, is_denied, is_s3, listed, split

if TYPE_CHECKING:
    import pyarrow.fs as pafs


# The root's layout: the folders under it (the catalog, for an s3:// root, is on the local disk).
LANDING = "landing"  # raw files as delivered, one folder per source, and the manifest
WAREHOUSE = "warehouse"  # the Iceberg tables
PRIVACY = "privacy"  # the suppression list, erasure receipts and journal


@dataclass(frozen=True)
class Entry:
    key: str  # relative to the storage root, `/`-separated
    size: int

    @property
    def name(self) -> str:
        return self.key.rsplit("/", 1)[-1]


class Storage:
    """Files under one root: a local directory or `s3://bucket/prefix`."""

    def __init__(self, root: str, s3: S3Connection | None = None) -> None:
        import pyarrow.fs as pafs

        self.remote = is_s3(root)
        self.conn = s3
        if self.remote:
            if s3 is None:
                raise StorageError(f"{root} is on S3 but no S3 connection was given")
            bucket, prefix = split(root)
            self.root = f"s3://{bucket}" + (f"/{prefix}" if prefix else "")
            self.fs: pafs.FileSystem = s3.filesystem()
            self._base = f"{bucket}/{prefix}".rstrip("/")
        else:
            self.root = os.path.abspath(local_path(root))
            self.fs = pafs.LocalFileSystem()
            self._base = self.root

    def __repr__(self) -> str:
        return f"Storage({self.root!r})"

    # -- addressing -------------------------------------------------------------------------------
    def uri(self, key: str = "") -> str:
        """The location of `key` as engines and messages want it: `s3://…` or a local path."""
        return f"{self.root}/{key}".rstrip("/") if key else self.root

    def _path(self, key: str) -> str:
        return f"{self._base}/{key}".rstrip("/") if key else self._base

    @contextmanager
    def errors(self, what: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except OSError as exc:
            if self.remote:
                raise explain(exc, what, self.conn) from None
            reason = exc.strerror or str(exc)
            raise StorageError(f"cannot use {what} ({reason})") from None

    # -- reading ----------------------------------------------------------------------------------
    def check(self) -> None:
        """Fail early and clearly when the root cannot be reached (missing bucket, credentials, network)."""
        if not self.remote:
            return
        import pyarrow.fs as pafs

        bucket = self._base.split("/", 1)[0]
        with self.errors(f"the lakehouse at {self.root}"):
            try:
                info = self.fs.get_file_info(bucket)
            except OSError as exc:
                # A role limited to the root's prefix (as `stedi deploy aws` writes it) may not ask about the
                # bucket itself: IAM counts HeadBucket as listing the whole bucket. The listing below proves
                # what the lakehouse needs.
                if self._base == bucket or not is_denied(exc):
                    raise
            else:
                if info.type == pafs.FileType.NotFound:
                    raise OSError("NoSuchBucket: bucket does not exist")
            # Listing is what every command does first: it proves the credentials work.
            self.fs.get_file_info(pafs.FileSelector(self._base, allow_not_found=True, recursive=False))

    def list(self, folder: str, recursive: bool = False, hidden: bool = False) -> list[Entry]:
        """Files in `folder` (below it with `recursive`); hidden names (temporary files) only with `hidden`."""
        import pyarrow.fs as pafs

        base = self._path(folder)
        with self.errors(f"{self.uri(folder)}"):
            infos = self.fs.get_file_info(pafs.FileSelector(base, allow_not_found=True, recursive=recursive))
        out = []
        for info in infos:
            if info.type != pafs.FileType.File or (info.base_name.startswith(".") and not hidden):
                continue
            key = info.path[len(self._base):].lstrip("/")
            out.append(Entry(key, int(info.size or 0)))
        return sorted(out, key=lambda e: e.key)

    def exists(self, key: str) -> bool:
        import pyarrow.fs as pafs

        with self.errors(self.uri(key)):
            try:
                return bool(self.fs.get_file_info(self._path(key)).type == pafs.FileType.File)
            except OSError as exc:
                if not (self.remote and is_denied(exc)):
                    raise
                return listed(self.fs, self._path(key))

    def read_bytes(self, key: str) -> bytes:
        """The content of `key`; FileNotFoundError when there is none (one request, no existence check)."""
        with self.errors(self.uri(key)):
            try:
                with self.fs.open_input_stream(self._path(key)) as stream:
                    return bytes(stream.read())
            except FileNotFoundError:
                pass
            except OSError as exc:
                if not (self.remote and is_denied(exc)) or listed(self.fs, self._path(key)):
                    raise
        raise FileNotFoundError(self.uri(key))

    def open(self, key: str) -> BinaryIO:
        with self.errors(self.uri(key)):
            return cast(BinaryIO, self.fs.open_input_file(self._path(key)))

    def download(self, key: str, target: Path) -> Path:
        target.parent.mkdir(parents=True, exist_ok=True)
        with self.errors(self.uri(key)), self.fs.open_input_stream(self._path(key)) as stream, \
                open(target, "wb") as out:
            while chunk := stream.read(1 << 20):
                out.write(chunk)
        return target

    # -- writing ----------------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes) -> None:
        with self.errors(self.uri(key)), self._writer(key) as out:
            out.write(data)

    def upload(self, source: Path, key: str) -> None:
        with self.errors(self.uri(key)), open(source, "rb") as src, self._writer(key) as out:
            while chunk := src.read(1 << 20):
                out.write(chunk)

    @contextmanager
    def _writer(self, key: str) -> Iterator[BinaryIO]:
        """An output stream whose content appears at `key` only when complete."""
        path = self._path(key)
        if self.remote:
            with self.fs.open_output_stream(path) as out:
                yield out
            return
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.tmp")
        try:
            with open(tmp, "wb") as out:
                yield out
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def delete(self, key: str) -> None:
        with self.errors(self.uri(key)):
            self.fs.delete_file(self._path(key))


def ensure_writable_dir(path: str | os.PathLike[str]) -> None:
    p = Path(path)
    try:
        p.mkdir(parents=True, exist_ok=True)
        # one probe per caller: the engine starts in a thread while the landing zone is checked
        probe = p / f".stedi-write-test-{os.getpid()}-{threading.get_ident()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"the lakehouse root {p} is not writable ({exc.strerror}); "
                           "choose another with --home or STEDI_HOME") from None


def local_path(uri: str) -> str:
    """A path a local reader opens: `file://` URIs become plain paths; others (s3://) pass through."""
    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme == "file" else uri


def make_parent(fs: pafs.FileSystem, path: str) -> None:
    """The folder a file is about to be written into. Only a local disk has folders: on S3 creating one
    would ask whether the bucket exists, which a role limited to the root's prefix may not (docs/aws.md)."""
    import pyarrow.fs as pafs

    if isinstance(fs, pafs.LocalFileSystem):
        fs.create_dir(path.rsplit("/", 1)[0], recursive=True)


def open_uri(uri: str, s3: S3Connection | None) -> tuple[pafs.FileSystem, str]:
    """The file system and path of a data file URI (`file://…`, a local path or `s3://…`)."""
    import pyarrow.fs as pafs

    if is_s3(uri):
        if s3 is None:
            raise StorageError(f"{uri} is on S3 but the lakehouse has no S3 connection")
        bucket, key = split(uri)
        return s3.filesystem(), f"{bucket}/{key}"
    return pafs.LocalFileSystem(), local_path(uri)
