"""The run history (issue 16): every `stedi run`, failed ones too, in the Iceberg table `runs`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi import Lakehouse, TableError, __version__
from stedi.cli.main import main

from support import FIXTURES, TEST_KEY, rows

EDGE = FIXTURES / "edge"

QUARANTINES = {"customer_quarantine", "accelerometer_quarantine", "step_trainer_quarantine"}
COMMITTED_WITH_LANDING = QUARANTINES | {"quality_failures"}
DERIVED = {"customer_trusted", "accelerometer_trusted", "customers_curated", "step_trainer_trusted",
           "machine_learning_curated"}


def test_each_run_records_what_it_did_to_each_table(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    first = lake.run()
    second = lake.run()
    history = lake.history()
    # one row per table: the eight the run built or checked, and the three quarantines and quality_failures
    # committed with the landing tables (their snapshots are part of the state a run leaves: time travel
    # reads them)
    assert [r["run_id"] for r in history] == [second.run_id] * 12 + [first.run_id] * 12  # newest first
    assert {r["table_name"] for r in history} - {t.table for t in first.tables} == COMMITTED_WITH_LANDING
    by_run = {(r["run_id"], r["table_name"]): r for r in history}
    for table in first.tables:
        row = by_run[(first.run_id, table.table)]
        assert (row["action"], row["rows_in"], row["rows_out"]) == (table.status, table.rows_in, table.rows_out)
        assert row["snapshot_id"] == lake.describe(table.table).snapshot_id  # nothing changed since
        assert by_run[(second.run_id, table.table)]["action"] == "up to date"
    row = history[0]
    assert (row["outcome"], row["error"], row["engine"], row["consent_policy"]) == ("succeeded", None, "duckdb",
                                                                                    lake.settings.consent_policy)
    assert row["stedi_version"] == __version__ and row["pyiceberg_version"] and row["engine_version"]
    assert row["pseudonym_key_id"] and len(row["pseudonym_key_id"]) == 16
    assert TEST_KEY not in json.dumps(history, default=str)  # the key is named, never written
    assert row["started_at"] <= row["ended_at"]


def test_a_failed_run_is_recorded_with_its_error_and_what_it_finished(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    import stedi.pipeline.derived

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    real = stedi.pipeline.derived.table_sql

    def broken(table: object) -> str:
        sql = real(table)  # type: ignore[arg-type]
        return "select nonsense from nowhere" if getattr(table, "name", "") == "customers_curated" else sql

    monkeypatch.setattr(stedi.pipeline.derived, "table_sql", broken)
    with pytest.raises(Exception, match="customers_curated"):
        lake.run()
    history = lake.history()
    failed = [r for r in history if r["table_name"] is None]
    assert len(failed) == 1 and failed[0]["outcome"] == "failed" and failed[0]["action"] == "failed"
    assert "customers_curated" in failed[0]["error"] and "\n" not in failed[0]["error"]
    finished = {r["table_name"] for r in history if r["table_name"]}
    assert {"customer_landing", "customer_trusted", "accelerometer_trusted"} <= finished
    assert "customers_curated" not in finished and "machine_learning_curated" not in finished
    assert {r["outcome"] for r in history} == {"failed"}

    monkeypatch.undo()
    lake.run()
    assert [r["outcome"] for r in lake.history(limit=1)] == ["succeeded"] * 12


def test_history_of_one_table_and_a_limit(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    for _ in range(3):
        lake.run()
    assert [r["table_name"] for r in lake.history("customer_trusted", limit=2)] == ["customer_trusted"] * 2
    assert rows(lake, "select count(distinct run_id) from runs") == [(3,)]
    with pytest.raises(TableError, match="unknown table 'nope'"):
        lake.history("nope")


def test_no_history_before_a_run(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(EDGE)
    with pytest.raises(TableError, match="no run is recorded yet"):
        lake.history()


def test_stedi_history_on_the_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "lake"
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    run = lake.run()

    def cli(*args: str) -> tuple[int, str]:
        try:
            main(["--home", str(home), *args])
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        else:
            code = 0
        return code, capsys.readouterr().out

    code, out = cli("history", "--table", "machine_learning_curated")
    assert code == 0 and run.run_id in out and "machine_learning_curated" in out and "built" in out
    code, out = cli("history", "--format", "json", "--limit", "1")
    assert code == 0
    parsed = json.loads(out)
    assert {r["table_name"] for r in parsed} == {t.table for t in run.tables} | COMMITTED_WITH_LANDING
    assert all(r["run_id"] == run.run_id for r in parsed)
    code, _ = cli("history", "--limit", "0")
    assert code == 2
