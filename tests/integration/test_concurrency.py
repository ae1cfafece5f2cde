"""Writers started together, writers that ignore the lock, and readers querying while writers commit and
optimize: no row twice, no landed file lost, no reader failing or seeing a half-made state."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from stedi import CatalogError, Lakehouse
from stedi.iceberg.catalog import TableCatalog
from stedi.pipeline.runner import run as pipeline_run

from support import (
    FIXTURES,
    STEDI,
    TEST_KEY,
    Batches,
    Expected,
    built,
    contents,
    latest_figures,
    stedi_process,
    write_jsonl,
)

pytestmark = pytest.mark.slow
TRIES = 4


def together(*commands: list[str]) -> list[subprocess.CompletedProcess[str]]:
    """Start the commands at the same moment (each a `stedi` process) and wait for all."""
    import os

    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    processes = [subprocess.Popen([str(STEDI), *c], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env=env) for c in commands]
    outs = [p.communicate(timeout=300) for p in processes]
    return [subprocess.CompletedProcess(p.args, p.returncode, o, e) for p, (o, e) in zip(processes, outs,
                                                                                          strict=True)]


@pytest.mark.parametrize("attempt", range(TRIES))
def test_two_runs_started_together_never_double_a_row(tmp_path: Path, batches: Batches,
                                                      expected: Expected, attempt: int) -> None:
    home = tmp_path / "lake"
    built(home, batches.first).ingest(batches.second)
    first, second = together(["--home", str(home), "run"], ["--home", str(home), "run"])
    outcomes = sorted([first, second], key=lambda r: r.returncode)
    assert outcomes[0].returncode == 0, outcomes[0].stderr
    if outcomes[1].returncode:  # it found the lock taken: one line naming the holder
        assert outcomes[1].stderr.startswith(f"error: the lakehouse at {home} is locked by `stedi run` (pid ")
        assert outcomes[1].stderr.count("\n") == 1
    else:  # it came after the first had finished: nothing left to do
        assert "8 up to date" in outcomes[1].stdout
    lake = Lakehouse(home)
    assert contents(lake) == expected.tables
    assert latest_figures(lake) == expected.figures


def test_writers_that_wait_take_turns(tmp_path: Path, batches: Batches, expected: Expected) -> None:
    home = tmp_path / "lake"
    built(home, batches.first)
    results = together(["--home", str(home), "ingest", str(batches.second), "--wait", "120"],
                       ["--home", str(home), "run", "--wait", "120"],
                       ["--home", str(home), "ingest", str(batches.second), "--wait", "120"])
    assert [r.returncode for r in results] == [0, 0, 0], [r.stderr for r in results]
    final = stedi_process(home, "run")
    assert final.returncode == 0, final.stderr
    assert contents(Lakehouse(home)) == expected.tables
    manifest = json.loads((home / "landing" / "manifest.json").read_text())["files"]
    assert sorted(f["name"] for f in manifest) == sorted(
        p.name for p in [*batches.first.rglob("*.json"), *batches.second.rglob("*.json")])


@pytest.mark.parametrize("attempt", range(TRIES))
def test_writers_that_ignore_the_lock_still_never_double_a_row(tmp_path: Path, batches: Batches,
                                                               expected: Expected, attempt: int) -> None:
    """Two runs in one process, around the lock (as a second machine with a shared catalog and no lock
    could): every commit is a compare-and-swap on the snapshot it was built from, so the loser of a race
    commits nothing and says so; a rerun converges."""
    home = tmp_path / "lake"
    built(home, batches.first).ingest(batches.second)
    settings = Lakehouse(home).settings
    errors: list[BaseException] = []
    start = threading.Barrier(2)
    threads = [threading.Thread(target=run_around_the_lock, args=(settings, start, errors)) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for error in errors:
        assert isinstance(error, CatalogError), repr(error)
        assert "was changed by another writer while this command worked on it" in str(error)
    Lakehouse(home).run()
    lake = Lakehouse(home)
    assert contents(lake) == expected.tables
    assert latest_figures(lake) == expected.figures


def run_around_the_lock(settings: object, start: threading.Barrier, errors: list[BaseException]) -> None:
    from stedi.config import Settings

    assert isinstance(settings, Settings)
    start.wait()
    try:
        pipeline_run(settings, TableCatalog(settings))
    except BaseException as exc:  # noqa: BLE001  (checked by the test)
        errors.append(exc)


READER = """
import json, sys, time
from stedi import Lakehouse
home, stop = sys.argv[1], sys.argv[2]
seen = []
import os
while not os.path.exists(stop):
    lake = Lakehouse(home)
    [row] = lake.sql("select (select count(*) from accelerometer_landing) as a, "
                     "(select count(*) from machine_learning_curated) as m, "
                     "(select count(*) from customer_trusted) as c").to_pylist()
    seen.append([row["a"], row["m"], row["c"]])
print(json.dumps(seen))
"""


def test_readers_never_fail_nor_see_a_half_made_state_while_writers_commit_and_optimize(
        tmp_path: Path, batches: Batches, expected: Expected) -> None:
    import os

    home = tmp_path / "lake"
    lake = built(home, batches.first)
    before = [sum(contents(lake)[t].values()) for t in
              ("accelerometer_landing", "machine_learning_curated", "customer_trusted")]
    after = [sum(expected.tables[t].values()) for t in
             ("accelerometer_landing", "machine_learning_curated", "customer_trusted")]
    lake.ingest(batches.second)
    stop = tmp_path / "stop"
    reader = subprocess.Popen([sys.executable, "-c", READER, str(home), str(stop)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env={**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY})
    try:
        for command in (["run"], ["optimize", "--retention-days", "0"], ["run", "--full-refresh"],
                        ["optimize", "--retention-days", "0"]):
            result = stedi_process(home, *command)
            assert result.returncode == 0, result.stderr
    finally:
        stop.touch()
        out, err = reader.communicate(timeout=120)
    assert reader.returncode == 0, err
    seen = json.loads(out)
    assert len(seen) >= 5, "the reader should have queried throughout"
    # each table is the old one or the new one; a query never fails on a file optimize removed
    for a, m, c in seen:
        assert a in (before[0], after[0]) and m in (before[1], after[1]) and c in (before[2], after[2]), (a, m, c)
    assert seen[-1] == after


def test_optimize_keeps_what_a_reader_planned_for_its_grace_period(tmp_path: Path, batches: Batches,
                                                                   ) -> None:
    home = tmp_path / "lake"
    lake = built(home, batches.first, batches.second)
    from stedi.storage.files import local_path
    from stedi.tables import TABLES

    planned = TableCatalog(lake.settings).state(TABLES["accelerometer_landing"])  # a reader's plan, before optimize
    assert planned is not None and len(planned.files) > 1
    reports = {r.table: r for r in lake.optimize(retention_days=0)}  # default grace: 60 minutes
    assert reports["accelerometer_landing"].files_after == 1
    assert all(Path(local_path(f)).exists() for f in planned.files)  # still readable
    lake.optimize(retention_days=0, grace_minutes=0)
    assert not any(Path(local_path(f)).exists() for f in planned.files)  # now they go


def paused(home: Path, go: Path, point: str, *args: str) -> subprocess.Popen[str]:
    """`stedi --home HOME ARGS` held at stedi.faults point `point` until `go` exists (it is there then)."""
    import os
    import time

    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY, "STEDI_PAUSE_AT": point, "STEDI_PAUSE_FILE": str(go)}
    process = subprocess.Popen([str(STEDI), "--home", str(home), *args], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    deadline = time.monotonic() + 300
    while not Path(f"{go}.paused").exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"stedi {args} never reached {point}"
        time.sleep(0.05)
    return process


ALICE = "alice@test.com"
LATE = [{"user": ALICE, "timestamp": 1655564500000 + i, "x": 0.1, "y": 0.2, "z": 0.3} for i in range(40)]


@pytest.mark.parametrize("point", ["run:landing-read", "run:landing-committed"])
def test_an_erasure_while_a_run_bypassed_the_lock_leaves_no_trace_and_blocks_nothing(
        tmp_path: Path, point: str) -> None:
    """The lock file deleted by hand while a run holds it: an erasure runs meanwhile. The run read the
    person's new readings before the erasure; it must commit none of them after it (the commit checks
    that no erasure began since the run started), and every writer works afterwards."""
    from stedi.privacy.erasure import JOURNAL, find_traces
    from stedi.storage.files import Storage

    home = tmp_path / "lake"
    built(home, FIXTURES / "edge")
    late = write_jsonl(tmp_path / "late" / "accelerometer" / "accelerometer-late.json", LATE)
    assert stedi_process(home, "ingest", late.parent).returncode == 0
    go = tmp_path / "go"
    run = paused(home, go, point, "run")
    (home / "lock.json").unlink()  # the operator's bypass
    erased = stedi_process(home, "erase", "--email", ALICE)
    assert erased.returncode == 0, erased.stderr
    go.touch()
    _out, err = run.communicate(timeout=300)
    assert run.returncode == 1, err
    assert "an erasure began while this command worked" in err, err
    assert find_traces(Storage(str(home)), [ALICE, "SN-ALICE"]) == []  # nor in files the run made meanwhile
    rerun = stedi_process(home, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert find_traces(Storage(str(home)), [ALICE, "SN-ALICE"]) == []
    assert not (home / JOURNAL).exists()
    again = stedi_process(home, "erase", "--email", ALICE)
    assert again.returncode == 0, again.stderr
    assert stedi_process(home, "optimize").returncode == 0


def test_an_erasure_while_an_ingest_bypassed_the_lock_lands_nothing_of_the_person(tmp_path: Path) -> None:
    """An ingest filtered its files by the suppression list of before an erasure that ran meanwhile (the
    lock file deleted by hand): it lands none of them, says so, and the next ingest lands them filtered."""
    from stedi.privacy.erasure import find_traces
    from stedi.storage.files import Storage

    home = tmp_path / "lake"
    built(home, FIXTURES / "edge")
    late = write_jsonl(tmp_path / "late" / "accelerometer" / "accelerometer-late.json", LATE)
    go = tmp_path / "go"
    ingest = paused(home, go, "ingest:file-landed", "ingest", late.parent)
    (home / "lock.json").unlink()
    assert stedi_process(home, "erase", "--email", ALICE).returncode == 0
    go.touch()
    _out, err = ingest.communicate(timeout=300)
    assert ingest.returncode == 1 and "an erasure began while this command worked" in err, err
    again = stedi_process(home, "ingest", late.parent)
    assert again.returncode == 0, again.stderr
    assert stedi_process(home, "run").returncode == 0
    assert find_traces(Storage(str(home)), [ALICE, "SN-ALICE"]) == []
    [entry] = [f for f in json.loads((home / "landing" / "manifest.json").read_text())["files"]
               if f["name"] == "accelerometer-late.json"]
    assert entry["suppressed"] == len(LATE)  # landed the second time, every record of hers dropped and counted
