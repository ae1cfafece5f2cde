"""One writer per lakehouse: the lock every command that writes takes on the root.

`run`, `ingest`, `optimize`, `erase` and `attach` hold it while they work; readers (`sql`, `tables`, ...)
never take it and never wait: they read committed snapshots. The lock names its holder (host, pid,
command, start) in `<root>/lock.json`, so a second writer fails at once with one line that says who
holds it, or waits for it (`--wait SECONDS`, setting `lock_wait`).

- On a local disk it is an OS lock (`flock`) on that file: the kernel releases it when the holder
  ends, however it ends, so a writer killed with `kill -9` never leaves it stuck. The holder empties
  the file when it releases the lock; a file still naming an owner tells the next writer that its
  owner died, and it says so as it takes over.
- On S3 it is an object created with a conditional write (`If-None-Match: *`): only one writer can
  create it. The holder renews it in the background (a lease); a lock whose lease ran out (a writer that
  died elsewhere), or whose owner is a dead process on this very host, is taken over with a conditional
  write on the stale object's ETag, so two writers cannot both take it over.

Correctness does not rest on the lock alone: commits are compare-and-swap on the snapshot they were
built from (stedi.iceberg.catalog), so even writers that ignore the lock cannot double rows.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from stedi.errors import LockError, StorageError

if TYPE_CHECKING:
    from stedi.storage.files import Storage

LOCK = "lock.json"  # under the root
LEASE_SECONDS = 60.0  # an S3 lock not renewed for this long belongs to a writer that is gone
POLL_SECONDS = 0.2


@dataclass(frozen=True)
class Owner:
    host: str
    pid: int
    command: str
    started: str  # ISO 8601, UTC
    token: str  # tells this holding from any other, also of the same pid
    pid_started: str = ""  # the process's start time on its host (pids are reused)
    lease_seconds: float = LEASE_SECONDS

    @classmethod
    def me(cls, command: str) -> Owner:
        return cls(socket.gethostname(), os.getpid(), command, datetime.now(UTC).isoformat(timespec="seconds"),
                   uuid.uuid4().hex, _process_start(os.getpid()))

    @classmethod
    def parse(cls, data: bytes) -> Owner | None:
        try:
            value = json.loads(data.decode("utf-8"))
            fields = {k: value[k] for k in cls.__dataclass_fields__ if k in value}
            return cls(**fields)
        except (ValueError, TypeError, KeyError, AttributeError):
            return None

    def encode(self) -> bytes:
        about = "the writer that holds this lakehouse (written by stedi; see docs/reliability.md)"
        return json.dumps({**asdict(self), "about": about}, indent=1).encode()

    def describe(self) -> str:
        return f"`{self.command}` (pid {self.pid} on {self.host}, since {self.started})"

    def is_dead_here(self) -> bool:
        """Whether this owner was a process of this host that no longer runs."""
        if self.host != socket.gethostname():
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False  # alive, another user's
        return bool(self.pid_started) and _process_start(self.pid) not in ("", self.pid_started)


def _process_start(pid: int) -> str:
    """The start time of a process in clock ticks since boot (Linux), to tell a reused pid apart."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[1].split()[19].decode()
    except (OSError, IndexError):
        return ""


class WriterLock:
    """The writer lock of one root. `acquire()` returns a notice when it took over a dead writer's lock."""

    def __init__(self, root: Storage, command: str, wait: float = 0.0) -> None:
        self.root, self.command, self.wait = root, command, max(0.0, wait)
        self.owner = Owner.me(command)
        self._impl: _LocalLock | _S3Lock = _S3Lock(root) if root.remote else _LocalLock(root.root)

    def acquire(self) -> str | None:
        deadline = time.monotonic() + self.wait
        while True:
            taken, other, notice = self._impl.try_acquire(self.owner)
            if taken:
                return notice
            if time.monotonic() >= deadline:
                held = other.describe() if other else "another stedi process (it is starting)"
                waited = f" after waiting {self.wait:g} s" if self.wait else ""
                raise LockError(f"the lakehouse at {self.root.root} is locked by {held}{waited}: one writer "
                                "at a time. Try again when it is done, or wait for it with --wait SECONDS")
            time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))

    def release(self) -> None:
        self._impl.release(self.owner)

    @property
    def lost(self) -> Owner | None:
        """On S3: the writer that took this lock over while it was held (its lease ran out), if any."""
        return self._impl.lost


class _LocalLock:
    def __init__(self, home: str) -> None:
        self.path = os.path.join(home, LOCK)
        self.fd: int | None = None
        self.lost: Owner | None = None

    def try_acquire(self, me: Owner) -> tuple[bool, Owner | None, str | None]:
        import fcntl

        from stedi.storage.files import ensure_writable_dir

        if self.fd is None:
            ensure_writable_dir(os.path.dirname(self.path))
            try:
                self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except OSError as exc:
                raise StorageError(f"cannot open the writer lock {self.path} ({exc.strerror})") from None
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = Owner.parse(os.pread(self.fd, 1 << 16, 0))
            for _ in range(20):  # the holder writes its name just after it takes the lock
                if holder is not None:
                    break
                time.sleep(0.025)
                holder = Owner.parse(os.pread(self.fd, 1 << 16, 0))
            return False, holder, None
        previous = Owner.parse(os.pread(self.fd, 1 << 16, 0))
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, me.encode(), 0)
        os.fsync(self.fd)
        notice = (f"the last writer, {previous.describe()}, ended without releasing the lock (killed?); "
                  "taking it over") if previous else None
        return True, None, notice

    def release(self, me: Owner) -> None:
        import fcntl

        if self.fd is None:
            return
        try:
            os.ftruncate(self.fd, 0)  # an empty lock file: its last owner ended cleanly
            fcntl.flock(self.fd, fcntl.LOCK_UN)
        finally:
            os.close(self.fd)
            self.fd = None


class _S3Lock:
    def __init__(self, root: Storage) -> None:
        from stedi.storage.s3 import split

        assert root.conn is not None
        bucket, prefix = split(root.root)
        self.bucket, self.key = bucket, f"{prefix}/{LOCK}".lstrip("/")
        self.uri = f"s3://{bucket}/{self.key}"
        self.conn = root.conn
        self.client: Any = self.conn.client()
        self.etag: str | None = None
        self.lost: Owner | None = None
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None

    def _put(self, body: bytes, **condition: str) -> str | None:
        """Write the lock object if `condition` holds; its new ETag, or None when the condition failed."""
        try:
            return str(self.client.put_object(Bucket=self.bucket, Key=self.key, Body=body, **condition)["ETag"])
        except Exception as exc:
            if _precondition_failed(exc) or ("IfMatch" in condition and _missing(exc)):
                return None  # another writer's, or gone: not ours to write
            raise self._explain(exc) from None

    def _explain(self, exc: Exception) -> StorageError:
        from stedi.storage.s3 import explain

        return explain(OSError(str(exc)), f"the writer lock {self.uri}", self.conn)

    def try_acquire(self, me: Owner) -> tuple[bool, Owner | None, str | None]:
        etag = self._put(me.encode(), IfNoneMatch="*")
        if etag is not None:
            self._hold(etag, me)
            return True, None, None
        try:
            got = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except Exception as exc:
            if _missing(exc):
                return False, None, None  # released just now: the next try takes it
            raise self._explain(exc) from None
        holder = Owner.parse(got["Body"].read())
        stale_etag = str(got["ETag"])
        server_now = _server_time(got)
        age = (server_now - got["LastModified"]).total_seconds() if server_now else 0.0
        lease = holder.lease_seconds if holder else LEASE_SECONDS
        why = None
        if holder is None:
            why = "an unreadable lock object" if age > LEASE_SECONDS else None
        elif holder.is_dead_here():
            why = f"the last writer, {holder.describe()}, is no longer running"
        elif age > lease:
            why = f"the last writer, {holder.describe()}, has not renewed its lease for {age:.0f} s"
        if why is None:
            return False, holder, None
        etag = self._put(me.encode(), IfMatch=stale_etag)  # only one of several takers can win
        if etag is None:
            return False, holder, None
        self._hold(etag, me)
        return True, None, f"{why}; taking over its lock"

    def _hold(self, etag: str, me: Owner) -> None:
        self.etag = etag
        self._stop.clear()
        self._renewer = threading.Thread(target=self._renew, args=(me,), name="stedi-lock-lease", daemon=True)
        self._renewer.start()

    def _renew(self, me: Owner) -> None:
        while not self._stop.wait(me.lease_seconds / 4):
            assert self.etag is not None
            try:
                etag = self._put(me.encode(), IfMatch=self.etag)
            except StorageError:
                continue  # the endpoint is unreachable for a moment: try again at the next beat
            if etag is None:
                self.lost = self._current_holder()
                return
            self.etag = etag

    def _current_holder(self) -> Owner | None:
        try:
            return Owner.parse(self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read())
        except Exception:
            return None

    def release(self, me: Owner) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
            self._renewer = None
        if self.etag is None or self.lost is not None:
            return
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag)
        except Exception as exc:
            if not (_precondition_failed(exc) or _missing(exc)):  # taken over, or deleted by hand: not ours
                raise self._explain(exc) from None
        self.etag = None


def _precondition_failed(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("PreconditionFailed", "ConditionalRequestConflict", "412") or "PreconditionFailed" in str(exc)


def _missing(exc: Exception) -> bool:
    code = getattr(exc, "response", {}).get("Error", {}).get("Code", "")
    return code in ("NoSuchKey", "404") or "NoSuchKey" in str(exc)


def _server_time(response: dict[str, Any]) -> datetime | None:
    """The store's clock, from the response's Date header (hosts' clocks may disagree with it)."""
    from email.utils import parsedate_to_datetime

    date = response.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date) if date else None
    except (TypeError, ValueError):
        return None
