"""A lakehouse is one folder you can copy, move or back up; read-only, it still answers every reader."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from stedi import Lakehouse

from support import FIXTURES, STEDI, TEST_KEY, built, contents, rows, stedi_process, tree_digest

pytestmark = pytest.mark.slow
EDGE = FIXTURES / "edge"
ALICE = "alice@test.com"


@pytest.fixture
def original(tmp_path: Path) -> Path:
    return Path(built(tmp_path / "lake", EDGE).settings.home)


def test_a_copied_lakehouse_never_writes_into_the_original(tmp_path: Path, original: Path) -> None:
    before, tables = tree_digest(original), contents(Lakehouse(original))
    copy = tmp_path / "copy"
    shutil.copytree(original, copy, symlinks=True)
    for command in (["run"], ["erase", "--email", ALICE], ["optimize"], ["ingest", EDGE]):
        refused = stedi_process(copy, *command)
        assert refused.returncode == 1, command
        assert refused.stderr.startswith(f"error: the catalog {copy / 'catalog.db'} registers 15 tables outside "
                                         f"the lakehouse at {copy} (e.g. accelerometer_landing at file://"
                                         f"{original}/warehouse/"), refused.stderr
        assert "Run `stedi attach` to register the tables at their copies under this root" in refused.stderr
    assert tree_digest(original) == before
    assert contents(Lakehouse(copy)) == tables  # readers read the copy where it is
    assert tree_digest(original) == before

    attached = stedi_process(copy, "attach", "--format", "csv")
    assert attached.returncode == 0, attached.stderr
    lines = attached.stdout.splitlines()[1:]
    assert [line.split(",")[:3] for line in lines] == [[name, "relocated", str(sum(counter.values()))]
                                                       for name, counter in tables.items()] + [
        ["reconciliation", "relocated", "3"], ["quality_checks", "relocated", "7"], ["runs", "relocated", "12"]]
    assert all(line.split(",")[3].startswith(f"file://{copy}/warehouse/") for line in lines)
    again = stedi_process(copy, "run")  # the snapshots' fingerprints came along: nothing to rebuild
    assert again.returncode == 0 and "0 built, 8 up to date" in again.stdout, again.stderr
    assert contents(Lakehouse(copy)) == tables
    assert stedi_process(copy, "erase", "--email", ALICE).returncode == 0
    assert rows(Lakehouse(copy), f"select count(*) from customer_landing where email = '{ALICE}'") == [(0,)]
    assert tree_digest(original) == before  # the original still holds everyone, byte for byte
    assert rows(Lakehouse(original), f"select count(*) from customer_landing where email = '{ALICE}'") == [(1,)]
    assert not [p for p in copy.rglob("*") if p.is_file() and str(original) in _text(p)]


def _text(path: Path) -> str:
    return "" if path.suffix == ".parquet" else path.read_bytes().decode("latin-1")


def test_a_moved_lakehouse_works_again_after_attach(tmp_path: Path, original: Path) -> None:
    tables = contents(Lakehouse(original))
    moved = tmp_path / "moved"
    original.rename(moved)
    refused = stedi_process(moved, "run")
    assert refused.returncode == 1 and "Run `stedi attach`" in refused.stderr
    assert contents(Lakehouse(moved)) == tables  # a reader reads it where it is
    assert stedi_process(moved, "attach").returncode == 0
    assert not original.exists()  # attach reads the copies only
    assert contents(Lakehouse(moved)) == tables
    ran = stedi_process(moved, "run")
    assert ran.returncode == 0 and "8 up to date" in ran.stdout
    assert stedi_process(moved, "attach", "--format", "csv").stdout.count(",kept,") == 15  # a second time: kept


def test_a_catalog_whose_warehouse_is_gone_is_explained_and_repaired(original: Path) -> None:
    shutil.rmtree(original / "warehouse")
    refused = stedi_process(original, "tables")
    assert refused.returncode == 1
    assert "names files that are not in the lakehouse at" in refused.stderr and "`stedi attach`" in refused.stderr
    repaired = stedi_process(original, "attach", "--format", "csv")
    assert repaired.returncode == 0 and repaired.stdout.count(",forgotten,") == 15, repaired.stdout
    rebuilt = stedi_process(original, "run")
    assert rebuilt.returncode == 0 and "8 built" in rebuilt.stdout


def read_only(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`stedi --home HOME ARGS` with HOME read-only (a read-only bind mount of it, as root; else chmod)."""
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    command = [str(STEDI), "--home", str(home), *args]
    if os.geteuid() == 0:
        script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
        return subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(home), *command],
                              capture_output=True, text=True, env=env, timeout=120)
    subprocess.run(["chmod", "-R", "a-w", str(home)], check=True)
    try:
        return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(home)], check=True)


def test_a_read_only_lakehouse_answers_every_reader(original: Path) -> None:
    if os.geteuid() == 0 and subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        pytest.skip("cannot make a read-only mount here (unshare --mount refused)")
    probe = read_only(original, "run")
    assert probe.returncode == 1 and f"the lakehouse root {original} is not writable" in probe.stderr, probe.stderr
    before = tree_digest(original)
    for args, shown in ((["tables"], "machine_learning_curated"),
                        (["sql", "select count(*) as n from machine_learning_curated"], "6"),
                        (["describe", "customer_trusted"], "customerName"),
                        (["reconcile"], "step_trainer"),
                        (["erase", "--dry-run", "--email", ALICE], "dry run, nothing changed")):
        result = read_only(original, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert shown in result.stdout, (args, result.stdout)
    assert tree_digest(original) == before


def test_a_read_only_copy_at_another_path_answers_readers_from_itself(tmp_path: Path, original: Path) -> None:
    """A backup restored elsewhere or a share mounted read-only: readers resolve the catalog's locations
    against the root in use, and read the copy as it was, not the original as it is now."""
    if os.geteuid() == 0 and subprocess.run(["unshare", "--mount", "true"]).returncode != 0:
        pytest.skip("cannot make a read-only mount here (unshare --mount refused)")
    assert stedi_process(original, "tag", "copied").returncode == 0
    copy = tmp_path / "backup"
    shutil.copytree(original, copy, symlinks=True)
    tables = contents(Lakehouse(copy))
    assert stedi_process(original, "erase", "--email", ALICE).returncode == 0  # the original moves on
    before = tree_digest(copy)
    alice = f"select count(*) as n from customer_landing where email = '{ALICE}'"
    for args, shown in ((["sql", alice], "n\n-\n1\n"),
                        (["sql", "--as-of", "copied", alice], "n\n-\n1\n"),
                        (["tables", "--format", "csv"], "machine_learning_curated,curated,6,"),
                        (["tags", "--format", "csv"], "copied,"),
                        (["history", "--format", "csv"], ",succeeded,"),
                        (["report", "--out", str(tmp_path / "report.html")], "wrote ")):
        result = read_only(copy, *args)
        assert result.returncode == 0, (args, result.stderr)
        assert shown in result.stdout, (args, result.stdout)
    assert "machine_learning_curated" in (tmp_path / "report.html").read_text()
    assert rows(Lakehouse(original), alice) == [(0,)]
    assert contents(Lakehouse(copy)) == tables
    refused = read_only(copy, "run")
    assert refused.returncode == 1 and f"the lakehouse root {copy} is not writable" in refused.stderr
    assert tree_digest(copy) == before


def test_a_lost_catalog_is_refused_then_attached_with_history_and_tags(original: Path) -> None:
    assert stedi_process(original, "tag", "before-loss").returncode == 0
    tables = contents(Lakehouse(original))
    runs = rows(Lakehouse(original), "select count(*) from runs")
    (original / "catalog.db").unlink()
    for command in (["tables"], ["sql", "select 1"], ["run"], ["ingest", EDGE], ["erase", "--email", ALICE],
                    ["optimize"], ["tags"]):
        refused = stedi_process(original, *command)
        assert refused.returncode == 1, command
        assert refused.stderr == (
            f"error: the catalog {original / 'catalog.db'} is missing, but the lakehouse at {original} holds 15 "
            "tables (e.g. customer_landing): the catalog was lost or replaced. Run `stedi attach` to register them "
            "again with their history, snapshots and tags (nothing is rebuilt); stedi does not rebuild over them\n"
        ), command
    assert not (original / "catalog.db").exists()  # a refusal creates no empty catalog
    attached = stedi_process(original, "attach", "--format", "csv")
    assert attached.returncode == 0 and attached.stdout.count(",registered,") == 15, attached.stdout
    lake = Lakehouse(original)
    assert contents(lake) == tables
    assert rows(lake, "select count(*) from runs") == runs
    assert [tag.name for tag in lake.tags()] == ["before-loss"]
    assert lake.sql("select count(*) as n from machine_learning_curated", as_of="before-loss")["n"].to_pylist() == [6]
    ran = stedi_process(original, "run")
    assert ran.returncode == 0 and "0 built, 8 up to date" in ran.stdout, ran.stdout


def test_attach_registers_the_committed_metadata_not_a_killed_writers_leftover(original: Path) -> None:
    """A writer killed after writing its metadata file, before the catalog pointed at it, leaves a file of
    the version the next commit writes too: attach takes the one written last."""
    import json

    tables = contents(Lakehouse(original))
    folder = original / "warehouse" / "stedi" / "machine_learning_curated" / "metadata"
    versions = sorted(folder.glob("*.metadata.json"))
    current, older = versions[-1], versions[-2]
    metadata = json.loads(older.read_text())  # an earlier state, under the current version's number
    leftover = folder / f"{current.name.split('-')[0]}-ffffffff-ffff-ffff-ffff-ffffffffffff.metadata.json"
    leftover.write_text(json.dumps({**metadata, "last-updated-ms": metadata["last-updated-ms"] - 1}))
    (original / "catalog.db").unlink()
    assert stedi_process(original, "attach").returncode == 0
    assert contents(Lakehouse(original)) == tables
