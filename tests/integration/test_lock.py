"""One writer per lakehouse: the lock on the root, on a local disk (flock) and on S3 (a lease object)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import cast

import pytest

from stedi import Lakehouse, LockError
from stedi.storage.lock import LOCK, Owner, WriterLock, _LocalLock

import s3server
from support import FIXTURES, STEDI, TEST_KEY, rows, stedi_process

EDGE = FIXTURES / "edge"
HOST = socket.gethostname()


def dead_pid() -> int:
    """The pid of a process that has ended."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.fixture
def built(tmp_path: Path) -> Lakehouse:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    lake.run()
    return lake


@pytest.fixture
def attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The command of every try to take a lock on a local disk, as it is made (what "at once" and "never
    waits" mean, where a duration would depend on how busy the machine is)."""
    tried: list[str] = []
    real = _LocalLock.try_acquire

    def counted(self: _LocalLock, me: Owner) -> tuple[bool, Owner | None, str | None]:
        tried.append(me.command)
        return real(self, me)

    monkeypatch.setattr(_LocalLock, "try_acquire", counted)
    return tried


def holds_open(pid: int, path: Path) -> bool:
    """Whether process `pid` has `path` open (Linux: /proc/PID/fd)."""
    folder = Path(f"/proc/{pid}/fd")
    try:
        fds = list(folder.iterdir())
    except FileNotFoundError:  # it ended
        return False
    for fd in fds:
        try:
            if os.readlink(fd) == str(path):
                return True
        except OSError:  # closed meanwhile
            continue
    return False


def wait_until(condition: Callable[[], bool], what: str, timeout: float = 120) -> None:
    """Poll `condition` until it holds; fail naming `what` after `timeout` seconds (generous: a loaded
    machine is slow, never wrong)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g} s"
        time.sleep(0.05)


@pytest.fixture
def held(built: Lakehouse) -> Iterator[WriterLock]:
    """The lakehouse's lock, held by this test as if by another writer (`stedi run`)."""
    lock = WriterLock(built.settings.storage(), "stedi run")
    assert lock.acquire() is None
    yield lock
    lock.release()


# -- local disk ---------------------------------------------------------------------------------------
def test_every_writer_fails_at_once_naming_the_holder(built: Lakehouse, held: WriterLock, attempts: list[str]) -> None:
    home = built.settings.home
    first = built.history()[-1]["run_id"]
    writers = {"run": lambda: built.run(), "ingest": lambda: built.ingest(EDGE),
               "optimize": lambda: built.optimize(), "erase": lambda: built.erase(["alice@test.com"]),
               "attach": lambda: built.attach(), "tag": lambda: built.tag("v1"), "untag": lambda: built.untag("v1"),
               "rollback": lambda: built.rollback(run=first)}
    for name, write in writers.items():
        attempts.clear()
        started = time.monotonic()
        with pytest.raises(LockError) as refused:
            write()
        assert attempts == [f"stedi {name}"], name  # at once: one try, no wait and no second try
        assert time.monotonic() - started < 30, name  # (and nothing slow before it)
        assert str(refused.value) == (
            f"the lakehouse at {home} is locked by `stedi run` (pid {os.getpid()} on {HOST}, since "
            f"{held.owner.started}): one writer at a time. Try again when it is done, or wait for it with "
            "--wait SECONDS"), name
    assert rows(built, "select count(*) from customer_landing where email = 'alice@test.com'") == [(1,)]
    on_disk = json.loads(Path(home, LOCK).read_text())
    assert (on_disk["pid"], on_disk["command"], on_disk["host"]) == (os.getpid(), "stedi run", HOST)


def test_the_cli_says_who_holds_the_lock_in_one_line(built: Lakehouse, held: WriterLock) -> None:
    result = stedi_process(built.settings.home, "run")
    assert result.returncode == 1 and result.stdout == ""
    assert result.stderr.startswith(f"error: the lakehouse at {built.settings.home} is locked by `stedi run` "
                                    f"(pid {os.getpid()} on {HOST}")
    assert result.stderr.count("\n") == 1


def test_readers_never_wait_for_a_writer(built: Lakehouse, held: WriterLock, attempts: list[str]) -> None:
    reader = Lakehouse(built.settings.home)
    started = time.monotonic()
    assert rows(reader, "select count(*) from machine_learning_curated") == [(6,)]
    assert [t.rows for t in reader.tables()][:3] == [14, 12, 11]
    assert reader.reconcile()[0]["source"] == "customer"
    assert reader.verify_reconciliation() == reader.reconcile()
    assert attempts == []  # a reader never tries the lock, so never waits for it
    assert time.monotonic() - started < 60


def test_a_writer_waits_for_the_lock_when_asked(built: Lakehouse) -> None:
    home = built.settings.home
    lock = WriterLock(built.settings.storage(), "stedi optimize")
    lock.acquire()
    environment = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    process = subprocess.Popen([str(STEDI), "--home", str(home), "run", "--wait", "60"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=environment)
    try:
        # released once the writer has tried it (it holds the lock file open from its first try on)
        wait_until(lambda: holds_open(process.pid, Path(home, LOCK)) or process.poll() is not None,
                   "the waiting writer never opened the lock file")
        assert process.poll() is None, process.communicate()  # waiting, not refused
        lock.release()
        _out, err = process.communicate(timeout=180)
    finally:
        process.kill()
    assert process.returncode == 0, err
    lock.acquire()
    try:
        result = stedi_process(built.settings.home, "ingest", str(EDGE), "--wait", "0.5")
        assert result.returncode == 1
        assert "is locked by `stedi optimize`" in result.stderr and "after waiting 0.5 s" in result.stderr
    finally:
        lock.release()
    assert Lakehouse(built.settings.home, lock_wait=5).run().tables  # the setting as well as --wait


def test_a_writer_killed_holding_the_lock_blocks_no_one(built: Lakehouse) -> None:
    home = built.settings.home
    killed = stedi_process(home, "run", kill_at="lock:acquired")
    assert killed.returncode == -9
    assert json.loads(Path(home, LOCK).read_text())["command"] == "stedi run"  # it never released it
    after = stedi_process(home, "run")
    assert after.returncode == 0, after.stderr
    assert "notice: the last writer, `stedi run` (pid " in after.stderr
    assert "ended without releasing the lock (killed?); taking it over" in after.stderr
    assert Path(home, LOCK).read_text() == ""  # released cleanly: an empty lock file
    again = stedi_process(home, "run")
    assert "notice" not in again.stderr


def test_an_owner_is_dead_only_when_its_process_is_gone_from_this_host() -> None:
    me = Owner.me("stedi run")
    assert not me.is_dead_here()
    assert replace(me, pid=dead_pid()).is_dead_here()
    assert not replace(me, pid=dead_pid(), host="another-host").is_dead_here()  # cannot be known from here
    assert replace(me, pid=1, pid_started="0").is_dead_here()  # pid 1 is alive, but not the process recorded


# -- S3 -------------------------------------------------------------------------------------------------
@pytest.fixture
def s3_root(server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    server.use(monkeypatch, tmp_path)
    bucket = f"lock-{tmp_path.name.lower().replace('_', '-')[-40:]}".rstrip("-")
    server.create_bucket(bucket)
    return f"s3://{bucket}/lake"


def s3_lock(root: str, command: str = "stedi run", lease: float | None = None) -> WriterLock:
    lock = WriterLock(Lakehouse(root).settings.storage(), command)
    if lease is not None:
        lock.owner = replace(lock.owner, lease_seconds=lease)
    return lock


def lock_object(root: str) -> tuple[str, str]:
    """The bucket and key of an s3:// root's lock object."""
    bucket, prefix = root.removeprefix("s3://").split("/", 1)
    return bucket, f"{prefix}/{LOCK}"


def put_owner(server: s3server.S3Server, root: str, owner: Owner) -> None:
    bucket, key = lock_object(root)
    server.client().put_object(Bucket=bucket, Key=key, Body=owner.encode())


@pytest.mark.s3
def test_on_s3_the_lock_is_an_object_only_one_writer_can_create(server: s3server.S3Server, s3_root: str) -> None:
    first = s3_lock(s3_root)
    assert first.acquire() is None
    bucket, key = lock_object(s3_root)
    body = json.loads(server.client().get_object(Bucket=bucket, Key=key)["Body"].read())
    assert (body["pid"], body["host"], body["command"]) == (os.getpid(), HOST, "stedi run")
    with pytest.raises(LockError, match=rf"locked by `stedi run` \(pid {os.getpid()} on {HOST}"):
        s3_lock(s3_root, "stedi ingest").acquire()
    with pytest.raises(LockError, match="locked by `stedi run`"):
        Lakehouse(s3_root).ingest(EDGE)
    first.release()
    assert server.client().list_objects_v2(Bucket=bucket, Prefix=key).get("KeyCount") == 0
    second = s3_lock(s3_root, "stedi ingest")
    assert second.acquire() is None
    second.release()


def last_modified(server: s3server.S3Server, root: str) -> datetime:
    bucket, key = lock_object(root)
    return cast(datetime, server.client().head_object(Bucket=bucket, Key=key)["LastModified"])


@pytest.mark.s3
def test_on_s3_a_lease_is_renewed_while_held_and_taken_over_once_it_runs_out(server: s3server.S3Server,
                                                                            s3_root: str) -> None:
    """Time is the store's (LastModified, whole seconds): a lease of a few seconds leaves a busy machine room
    to renew it in time, and each step waits for what it needs to see, not for a fixed time."""
    lease = 3.0
    holder = s3_lock(s3_root, lease=lease)  # renewed every 0.75 s
    holder.acquire()
    created = last_modified(server, s3_root)
    wait_until(lambda: (last_modified(server, s3_root) - created).total_seconds() > lease,
               "the holder never renewed its lease")
    with pytest.raises(LockError):
        s3_lock(s3_root, "stedi erase").acquire()  # held longer than a lease, alive: its lease is fresh
    holder._impl._stop.set()  # type: ignore[union-attr]  # the holder stops renewing (its host is gone)
    holder._impl._renewer.join()  # type: ignore[union-attr]
    elsewhere = replace(holder.owner, host="another-host")
    put_owner(server, s3_root, elsewhere)
    with pytest.raises(LockError, match="locked by `stedi run` .* on another-host"):
        s3_lock(s3_root, "stedi erase").acquire()
    taker = s3_lock(s3_root, "stedi erase")
    notices: list[str | None] = []

    def taken() -> bool:  # refused while the lease runs (S3's clock), taken over once it ran out
        try:
            notices.append(taker.acquire())
        except LockError as refused:
            assert "on another-host" in str(refused)
            return False
        return True

    wait_until(taken, "the lock was never taken over")
    [notice] = notices
    assert notice is not None and "on another-host" in notice and "has not renewed its lease for" in notice
    assert int(notice.split("has not renewed its lease for ")[1].split(" s")[0]) >= lease  # not before
    taker.release()


@pytest.mark.s3
def test_on_s3_a_dead_writer_of_this_host_is_taken_over_at_once(server: s3server.S3Server, s3_root: str) -> None:
    put_owner(server, s3_root, replace(Owner.me("stedi optimize"), pid=dead_pid()))
    lock = s3_lock(s3_root)
    notice = lock.acquire()
    assert notice is not None and "`stedi optimize`" in notice and "is no longer running" in notice
    lock.release()


def take(locks: list[WriterLock], results: list[object], start: threading.Barrier, i: int) -> None:
    start.wait()
    try:
        locks[i].acquire()
        results[i] = "taken"
    except LockError as exc:
        results[i] = exc


@pytest.mark.s3
def test_on_s3_of_two_writers_taking_over_a_stale_lock_only_one_wins(server: s3server.S3Server,
                                                                     s3_root: str) -> None:
    for _attempt in range(5):
        put_owner(server, s3_root, replace(Owner.me("stedi run"), pid=dead_pid()))
        locks = [s3_lock(s3_root, f"stedi run {i}") for i in range(2)]
        results: list[object] = [None, None]
        start = threading.Barrier(2)
        threads = [threading.Thread(target=take, args=(locks, results, start, i)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sorted(str(type(r).__name__) for r in results) == ["LockError", "str"], results
        winner = locks[results.index("taken")]
        winner.release()


@pytest.mark.s3
def test_on_s3_a_lock_object_deleted_by_hand_does_not_fail_the_holder(server: s3server.S3Server,
                                                                      s3_root: str) -> None:
    holder = s3_lock(s3_root, lease=0.4)  # renewed every 0.1 s
    holder.acquire()
    bucket, key = lock_object(s3_root)
    server.client().delete_object(Bucket=bucket, Key=key)
    renewer = holder._impl._renewer  # type: ignore[union-attr]
    assert renewer is not None
    renewer.join(timeout=120)  # a renewal finds it gone and stops: the lock is lost, not the command
    assert not renewer.is_alive() and holder.lost is None  # gone, not taken over
    holder.release()
    other = s3_lock(s3_root)
    assert other.acquire() is None
    other.release()
