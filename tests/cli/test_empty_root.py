"""A root where nothing has landed: every reader, and every writer that needs landed data, says so in one
line (exit 1) and creates nothing; a root with landed files but no run yet is read as before."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi import Lakehouse
from stedi.config import load_settings
from stedi.iceberg.catalog import TableCatalog
from stedi.pipeline.history import RunRecord, new_run_id, record_run

from support import FIXTURES, stedi

# Every command that reads, and the writers that need landed data or built tables. (`ingest` lands data,
# `erase` keeps people out of later deliveries even before anything landed, `attach` repairs a catalog.)
COMMANDS = [
    ["run"], ["tables"], ["history"], ["describe", "customer_trusted"], ["sql", "select 1"],
    ["sql", "select count(*) from customer_trusted"], ["reconcile"], ["reconcile", "--verify"],
    ["report", "--out", "{tmp}/report.html"], ["serve", "--port", "0"], ["tags"],
    ["export", "customer_trusted", "--out", "{tmp}/export"], ["erase", "--dry-run", "--email", "a@b.c"],
    ["tag", "t"], ["untag", "t"], ["rollback", "--run", "x"], ["optimize"],
]


def refusal(home: Path | str) -> str:
    return (f"error: nothing has landed in {home} yet: `stedi ingest PATH` first (or give the root of an existing "
            "lakehouse with --home or STEDI_HOME)\n")




def tree(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under `folder` (the folder itself included) with its size and modification time."""
    if not folder.exists():
        return {}
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in [folder, *sorted(folder.rglob("*"))]}


def refused_creating_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path, home: Path,
                             command: list[str]) -> None:
    before = tree(tmp_path)
    args = [a.format(tmp=tmp_path) for a in command]
    code, out, err = stedi(capsys, "--home", home, *args)
    assert (code, out, err) == (1, "", refusal(home))
    assert tree(tmp_path) == before  # nothing under the root, no report, no export folder


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_root_that_does_not_exist(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                    command: list[str]) -> None:
    home = tmp_path / "lake"
    refused_creating_nothing(capsys, tmp_path, home, command)
    assert not home.exists()


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_an_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path, command: list[str]) -> None:
    home = tmp_path / "lake"
    home.mkdir()
    refused_creating_nothing(capsys, tmp_path, home, command)
    assert list(home.iterdir()) == []


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_root_whose_ingest_landed_nothing(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                            command: list[str]) -> None:
    """An ingest of files that are no landing data leaves the writer lock's file, and nothing landed."""
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("not data")
    (notes / "customer.json.gz").write_bytes(b"compressed")
    home = tmp_path / "lake"
    report = Lakehouse(home).ingest(notes, source="customer")
    assert (report.landed, len(report.skipped)) == ([], 2)
    assert home.exists()
    refused_creating_nothing(capsys, tmp_path, home, command)


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_a_root_with_only_the_failed_run_an_older_stedi_recorded(capsys: pytest.CaptureFixture[str],
                                                                 tmp_path: Path, command: list[str]) -> None:
    """An older stedi's `run` on an empty root made a catalog and recorded its failure in `runs`: a history
    alone is no lakehouse, so readers do not list 15 tables of nothing."""
    home = tmp_path / "lake"
    catalog = TableCatalog(load_settings(home=home))
    catalog.open_for_writing()
    record_run(catalog, RunRecord(new_run_id(), "duckdb", "any"), error="the landing zone is empty")
    assert (home / "catalog.db").is_file()
    refused_creating_nothing(capsys, tmp_path, home, command)


def test_a_landing_zone_emptied_by_hand(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Files ingested, then removed from the landing folders (the manifest still names them): nothing has
    landed, as `stedi run` sees it."""
    home = tmp_path / "lake"
    Lakehouse(home).ingest(FIXTURES / "edge")
    for file in (home / "landing").glob("*/*.json"):
        file.unlink()
    assert json.loads((home / "landing" / "manifest.json").read_text())["files"]
    for command in (["run"], ["tables"], ["sql", "select 1"]):
        refused_creating_nothing(capsys, tmp_path, home, command)


def test_landed_but_not_run_is_read_as_before(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    home = tmp_path / "lake"
    Lakehouse(home).ingest(FIXTURES / "edge")
    before = tree(home)
    code, out, err = stedi(capsys, "--home", home, "tables", "--format", "json")
    assert (code, err) == (0, "")
    assert {t["snapshot_id"] for t in json.loads(out)} == {None}
    code, out, err = stedi(capsys, "--home", home, "sql", "select 1 as one", "--format", "json")
    assert (code, json.loads(out), err) == (0, [{"one": 1}], "")
    code, out, err = stedi(capsys, "--home", home, "history")
    assert (code, out, err) == (1, "", "error: no run is recorded yet; run `stedi run` first\n")
    assert tree(home) == before


def test_the_api_says_the_same(tmp_path: Path) -> None:
    from stedi import LandingError

    lake = Lakehouse(tmp_path / "lake")
    assert lake.landed_files() == []  # a listing: none
    for call in (lake.tables, lake.run, lake.reconcile, lambda: lake.sql("select 1"), lake.state):
        with pytest.raises(LandingError, match="^nothing has landed in "):
            call()
    assert list(tmp_path.iterdir()) == [tmp_path / "cwd"]
