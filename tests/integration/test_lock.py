"""One writer per lakehouse: the lock on the root, on a local disk (flock) and on S3 (a lease object)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from stedi import Lakehouse, LockError
from stedi.storage.lock import LOCK, Owner, WriterLock

import s3server
from support import FIXTURES, rows, stedi_process

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
def held(built: Lakehouse) -> Iterator[WriterLock]:
    """The lakehouse's lock, held by this test as if by another writer (`stedi run`)."""
    lock = WriterLock(built.settings.storage(), "stedi run")
    assert lock.acquire() is None
    yield lock
    lock.release()


# -- local disk ---------------------------------------------------------------------------------------
def test_every_writer_fails_at_once_naming_the_holder(built: Lakehouse, held: WriterLock) -> None:
    home = built.settings.home
    first = built.history()[-1]["run_id"]
    writers = {"run": lambda: built.run(), "ingest": lambda: built.ingest(EDGE),
               "optimize": lambda: built.optimize(), "erase": lambda: built.erase(["alice@test.com"]),
               "attach": lambda: built.attach(), "tag": lambda: built.tag("v1"), "untag": lambda: built.untag("v1"),
               "rollback": lambda: built.rollback(run=first)}
    for name, write in writers.items():
        started = time.monotonic()
        with pytest.raises(LockError) as refused:
            write()
        assert time.monotonic() - started < 2, name
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


def test_readers_never_wait_for_a_writer(built: Lakehouse, held: WriterLock) -> None:
    reader = Lakehouse(built.settings.home)
    started = time.monotonic()
    assert rows(reader, "select count(*) from machine_learning_curated") == [(6,)]
    assert [t.rows for t in reader.tables()][:3] == [14, 12, 11]
    assert reader.reconcile()[0]["source"] == "customer"
    assert reader.verify_reconciliation() == reader.reconcile()
    assert time.monotonic() - started < 5


def test_a_writer_waits_for_the_lock_when_asked(built: Lakehouse) -> None:
    lock = WriterLock(built.settings.storage(), "stedi optimize")
    lock.acquire()
    threading.Timer(1.5, lock.release).start()
    started = time.monotonic()
    result = stedi_process(built.settings.home, "run", "--wait", "60")
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.5
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


@pytest.mark.s3
def test_on_s3_a_lease_is_renewed_while_held_and_taken_over_once_it_runs_out(server: s3server.S3Server,
                                                                            s3_root: str) -> None:
    holder = s3_lock(s3_root, lease=1.0)  # renewed every 0.25 s
    holder.acquire()
    time.sleep(2.0)
    with pytest.raises(LockError):
        s3_lock(s3_root, "stedi erase").acquire()  # alive: its lease is fresh
    holder._impl._stop.set()  # type: ignore[union-attr]  # the holder stops renewing (its host is gone)
    holder._impl._renewer.join()  # type: ignore[union-attr]
    elsewhere = replace(holder.owner, host="another-host")
    put_owner(server, s3_root, elsewhere)
    with pytest.raises(LockError, match="locked by `stedi run` .* on another-host"):
        s3_lock(s3_root, "stedi erase").acquire()
    time.sleep(2.1)  # S3's clock: the object is older than its lease
    taker = s3_lock(s3_root, "stedi erase")
    notice = taker.acquire()
    assert notice is not None and "on another-host" in notice and "has not renewed its lease" in notice
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
    time.sleep(0.5)  # a renewal finds it gone: the lock is lost, not the command
    holder.release()
    other = s3_lock(s3_root)
    assert other.acquire() is None
    other.release()
