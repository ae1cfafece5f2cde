"""Named points where a test may kill the process, to prove that a crash there loses nothing.

`STEDI_KILL_AT=erase:file-rewritten` makes the process kill itself with SIGKILL (as `kill -9` would,
no cleanup, no exit handlers) the first time it reaches that point; `erase:file-rewritten@2` at the
second time; `run:landing-read:INT` sends SIGINT instead (Ctrl-C, at a known moment). With
STEDI_KILL_ONCE=FILE the kill happens only if FILE can be created: once across all the processes of a
run (a Spark task run again on another executor is not killed again). `STEDI_PAUSE_AT=run:landing-read`
with `STEDI_PAUSE_FILE=F` instead holds the process at the point: it creates `F.paused` and waits (up to
10 minutes) until F exists, so a test can interleave two processes exactly (a run and an erasure that
bypassed the lock). Unset, a point costs two environment lookups. The points, in the order a command
reaches them:

    lock:acquired                          every writer, right after it took the lakehouse's lock
    ingest:file-landed, ingest:manifest    after a file is copied in; after the manifest is written
    landing:batch-read                     a batch of landed files read and written, before it is reported;
                                           in a Spark task this kills the executor (its JVM), a lost worker
    run:landing-read                       every source read and validated, nothing committed
    run:landing-committed                  after a landing table (and its quarantine) is committed
    run:derived-committed                  after a derived table is committed
    run:reconciled                         every table committed, the reconciliation not yet recorded
    optimize:compacted, optimize:deleting  after a compaction commit; after the first old file is deleted
    erase:journal, erase:suppressed        the erasure recorded; its people added to the suppression list
    erase:file-rewritten, erase:rebuilt    a landed file rewritten; the tables rebuilt without them
    erase:tag-rewritten                    a tagged state rewritten without them, its tag moved
    erase:cleaned, erase:receipt           old snapshots and files deleted; the receipt written
    tag:table-tagged                       after a table got the tag (`stedi tag`)
    rollback:table-restored                after a table was set back to the state (`stedi rollback`)
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable

KILL_AT = "STEDI_KILL_AT"
KILL_ONCE = "STEDI_KILL_ONCE"
PAUSE_AT, PAUSE_FILE = "STEDI_PAUSE_AT", "STEDI_PAUSE_FILE"
_hits: dict[str, int] = {}
_guard = threading.Lock()


def point(name: str, process: Callable[[], int] | None = None) -> None:
    """Kill (or interrupt) this process here if STEDI_KILL_AT names this point and this is the hit it counts;
    `process`: the process to kill instead, found only then. Or pause here (the module docstring)."""
    if os.environ.get(PAUSE_AT) == name:
        _pause(os.environ[PAUSE_FILE])
    spec = os.environ.get(KILL_AT)
    if not spec:
        return
    interrupt = spec.endswith(":INT")
    target, _, nth = spec.removesuffix(":INT").partition("@")
    if target != name:
        return
    with _guard:
        _hits[name] = _hits.get(name, 0) + 1
        hit = _hits[name]
    if hit == int(nth or 1) and _first_in_run():
        os.kill(process() if process else os.getpid(), signal.SIGINT if interrupt else signal.SIGKILL)


def _pause(go: str) -> None:
    import time

    with open(go + ".paused", "w"):
        pass
    deadline = time.monotonic() + 600
    while not os.path.exists(go) and time.monotonic() < deadline:
        time.sleep(0.05)


def _first_in_run() -> bool:
    once = os.environ.get(KILL_ONCE)
    if not once:
        return True
    try:
        os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True
