"""Kill -9 at every named point of every writer (stedi.faults), then run again: the tables are exactly those
of a run that was never interrupted, no row is doubled, every landed record is accounted for, and an
erased person is gone."""

from __future__ import annotations

import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse

from support import FIXTURES, Batches, Expected, built, contents, latest_figures, rows, stedi_process

pytestmark = pytest.mark.slow

EDGE = FIXTURES / "edge"
KILLED = -9


def assert_converged(home: Path, expected: Expected) -> None:
    lake = Lakehouse(home)
    assert contents(lake) == expected.tables
    figures = latest_figures(lake)
    assert figures == expected.figures and all(f[-2] == "true" for f in figures)  # balanced
    again = stedi_process(home, "run")
    assert again.returncode == 0, again.stderr
    assert "8 up to date" in again.stdout  # converged: nothing left to do
    left = [p for p in home.rglob("*") if p.is_file() and (p.name.endswith(".tmp") or ".tmp" in p.parts)]
    assert not left, "temporary files left behind"


# -- run ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["lock:acquired", "run:landing-read", "run:landing-committed",
                                   "run:landing-committed@3", "run:derived-committed",
                                   "run:derived-committed@4", "run:reconciled"])
def test_a_run_killed_anywhere_converges_on_the_next(tmp_path: Path, batches: Batches, expected: Expected,
                                                     point: str) -> None:
    home = tmp_path / "lake"
    built(home, batches.first).ingest(batches.second)
    killed = stedi_process(home, "run", kill_at=point)
    assert killed.returncode == KILLED, killed.stderr
    rerun = stedi_process(home, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert_converged(home, expected)


@pytest.mark.parametrize("point", ["run:derived-committed@2", "run:derived-committed@4"])
def test_a_key_level_update_killed_between_tables_converges_on_the_next(tmp_path: Path, batches: Batches,
                                                                        point: str) -> None:
    """A daily batch with changed customers: the derived tables are `updated` key by key (issue 15). Killed
    after some of them committed, the next run finishes the rest, equal to a full rebuild."""
    from stedi.generate import generate_batch

    generate_batch(batches.first, tmp_path / "batch", share=0.2, changed=0.5, seed=3)
    home = tmp_path / "lake"
    built(home, batches.first).ingest(tmp_path / "batch")
    killed = stedi_process(home, "run", kill_at=point)
    assert killed.returncode == KILLED, killed.stderr
    rerun = stedi_process(home, "run")
    assert rerun.returncode == 0, rerun.stderr
    rebuilt = built(tmp_path / "rebuilt", batches.first, tmp_path / "batch")
    rebuilt.run(full_refresh=True)
    assert contents(Lakehouse(home)) == contents(rebuilt)
    assert latest_figures(Lakehouse(home)) == latest_figures(rebuilt)
    clean = built(tmp_path / "clean", batches.first)
    clean.ingest(tmp_path / "batch")
    assert "updated" in {t.status for t in clean.run().tables}  # the batch does take the key-level path


# -- ingest ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["ingest:file-landed", "ingest:file-landed@2", "ingest:manifest"])
def test_an_ingest_killed_anywhere_loses_nothing(tmp_path: Path, batches: Batches, expected: Expected,
                                                 point: str) -> None:
    home = tmp_path / "lake"
    built(home, batches.first)
    killed = stedi_process(home, "ingest", batches.second, kill_at=point)
    assert killed.returncode == KILLED, killed.stderr
    again = stedi_process(home, "ingest", batches.second)
    assert again.returncode == 0, again.stderr
    landed = Lakehouse(home).landed_files()
    assert sorted(f.name for f in landed) == sorted(p.name for p in [*batches.first.rglob("*.json"),
                                                                      *batches.second.rglob("*.json")])
    # every file is in the manifest with where it came from, whether it landed before the kill or after
    assert all(f.origin.startswith(str(batches.first)) or f.origin.startswith(str(batches.second))
               for f in landed), [f.origin for f in landed]
    assert stedi_process(home, "run").returncode == 0
    assert_converged(home, expected)


# -- optimize -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("point", ["optimize:compacted", "optimize:compacted@4", "optimize:deleting"])
def test_an_optimize_killed_anywhere_changes_no_row(tmp_path: Path, batches: Batches, expected: Expected,
                                                    point: str) -> None:
    home = tmp_path / "lake"
    built(home, batches.first, batches.second)  # two snapshots a table; the appends left small files
    killed = stedi_process(home, "optimize", "--retention-days", "0", "--grace-minutes", "0", kill_at=point)
    assert killed.returncode == KILLED, killed.stderr
    assert contents(Lakehouse(home)) == expected.tables  # every table readable, every row there
    again = stedi_process(home, "optimize", "--retention-days", "0", "--grace-minutes", "0")
    assert again.returncode == 0, again.stderr
    assert_converged(home, expected)


# -- erase ----------------------------------------------------------------------------------------------
ALICE = "alice@test.com"
NEEDLES = [ALICE, "SN-ALICE"]


def traces(home: Path) -> list[str]:
    """Files under the root holding Alice's email or serial, read as bytes or, for Parquet, as data."""
    import pyarrow.parquet as pq

    found = []
    for path in sorted(p for p in home.rglob("*") if p.is_file()):
        data = str(pq.read_table(path).to_pylist()) if path.suffix == ".parquet" else path.read_bytes().decode(
            "latin-1")
        if any(n.lower() in data.lower() for n in NEEDLES):
            found.append(str(path.relative_to(home)))
    return found


@pytest.fixture(scope="module")
def erased(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Counter[tuple[Any, ...]]]:
    """The edge lakehouse with Alice erased, never interrupted."""
    lake = built(tmp_path_factory.mktemp("erased") / "lake", EDGE)
    lake.erase([ALICE])
    return contents(lake)


@pytest.mark.parametrize(("point", "then"), [
    ("erase:journal", "erase"), ("erase:suppressed", "erase"), ("erase:file-rewritten", "erase"),
    ("erase:file-rewritten@2", "erase"), ("erase:rebuilt", "erase"), ("erase:cleaned", "erase"),
    ("erase:receipt", "erase"),
    # the next writer, whatever it is, finishes the erasure first
    ("erase:journal", "run"), ("erase:file-rewritten", "ingest"), ("erase:rebuilt", "optimize"),
])
def test_an_erasure_killed_anywhere_is_finished_by_the_next_writer(
        tmp_path: Path, erased: dict[str, Counter[tuple[Any, ...]]], point: str, then: str) -> None:
    home = tmp_path / "lake"
    built(home, EDGE)
    assert traces(home)
    killed = stedi_process(home, "erase", "--email", ALICE, kill_at=point)
    assert killed.returncode == KILLED, killed.stderr
    follow = {"erase": ["erase", "--email", ALICE], "run": ["run"], "ingest": ["ingest", EDGE],
              "optimize": ["optimize"]}[then]
    after = stedi_process(home, *follow)
    assert after.returncode == 0, after.stderr
    assert "notice: finishing erasure" in after.stderr
    assert traces(home) == []
    assert contents(Lakehouse(home)) == erased
    log = (home / "privacy" / "erasures.jsonl").read_text().splitlines()
    assert len(log) == 1  # one receipt: the rerun of the same erasure is that erasure, finished
    assert not (home / "privacy" / "erasing.json").exists()
    # and she stays out: her original files dropped into the landing folder bring nothing back
    for source in ("customer", "accelerometer", "step_trainer"):
        shutil.copy(EDGE / source / f"{source}-edge.json", home / "landing" / source / f"{source}-again.json")
    assert stedi_process(home, "run").returncode == 0
    assert traces(home) == []
    assert rows(Lakehouse(home), f"select count(*) from customer_landing where email = '{ALICE}'") == [(0,)]
