"""`stedi optimize`: small files compacted without changing a row or rebuilding a reader; old snapshots expired."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from stedi import Lakehouse
from stedi.iceberg.catalog import FINGERPRINT
from stedi.tables import TABLES

from support import FIXTURES, assert_field_ids, rows

pytestmark = pytest.mark.slow


def _content(lake: Lakehouse, table: str) -> list[tuple[object, ...]]:
    return rows(lake, f"select * from {table} order by all")


def test_optimize_compacts_small_files_and_keeps_every_row(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(FIXTURES / "edge")
    for _ in range(3):
        lake.run(full_refresh=True)  # three snapshots per table; reconciliation grows one file per run
    before = {name: _content(lake, name) for name in TABLES}
    files = {t.name: t.files for t in lake.tables()}
    assert files["reconciliation"] == 3

    reports = {r.table: r for r in lake.optimize(retention_days=0, grace_minutes=0)}
    assert (reports["reconciliation"].files_before, reports["reconciliation"].files_after) == (3, 1)
    after = {name: _content(lake, name) for name in TABLES}
    # the optimize itself is recorded in `runs` (its compactions are a state: docs/history.md), after the rest
    recorded = rows(lake, "select * from runs where command = 'optimize' order by all")
    assert {r[-1] for r in recorded} == {"optimize"} and len(recorded) == 12  # every data table
    assert sorted(after.pop("runs")) == sorted(before.pop("runs") + recorded)
    assert after == before
    assert all(r.snapshots_expired >= 2 for r in reports.values()), reports
    assert_field_ids(lake)  # the compacted files too
    for name in TABLES:
        ice = lake.catalog.load(TABLES[name])
        assert ice is not None and len(ice.metadata.snapshots) == (2 if name == "runs" else 1), name
    # files only old snapshots used are gone from disk
    data = tmp_path / "lake" / "warehouse" / "stedi" / "reconciliation" / "data"
    assert len(list(data.rglob("*.parquet"))) == 1
    # compaction keeps each table's fingerprint: the next run rebuilds nothing
    assert {t.status for t in lake.run().tables} == {"up to date"}


def test_retention_keeps_recent_snapshots(tmp_path: Path) -> None:
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    lake.run(full_refresh=True)
    reports = {r.table: r for r in lake.optimize()}  # default: 7 days
    assert reports["customer_trusted"].snapshots_expired == 0
    ice = lake.catalog.load(TABLES["customer_trusted"])
    assert ice is not None and len(ice.metadata.snapshots) == 2


def test_optimize_command(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stedi.cli.main import cli

    home = ["--home", str(tmp_path / "lake")]
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2: stderr is always apart
    assert runner.invoke(cli, [*home, "ingest", str(FIXTURES / "edge")]).exit_code == 0
    assert runner.invoke(cli, [*home, "run"]).exit_code == 0
    assert runner.invoke(cli, [*home, "run", "--full-refresh"]).exit_code == 0
    result = runner.invoke(cli, [*home, "optimize", "--retention-days", "0", "--grace-minutes", "0", "--format",
                                 "csv"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()  # progress goes to stderr
    assert lines[0] == "table,files_before,files_after,snapshots_expired,files_deleted,mb_freed"
    assert any(line.startswith("reconciliation,2,1,2,") for line in lines), lines


def _without_ids(lake: Lakehouse, name: str) -> None:
    """Make table `name` as a stedi before 0.2.0 left it: its files rewritten as plain Parquet, without field
    ids (pyarrow's writer stores none unless a field's metadata carries one), and committed in their place."""
    import pyarrow.parquet as pq

    from stedi.storage.files import local_path

    table = TABLES[name]
    state = lake.catalog.state(table)
    assert state is not None and state.files
    plain = []
    for uri in state.files:
        data = pq.read_table(local_path(uri))
        data = data.cast(pa.schema([pa.field(f.name, f.type) for f in data.schema]))  # the ids dropped
        path = Path(local_path(uri)).with_name(f"plain-{Path(local_path(uri)).name}")
        pq.write_table(data, path, compression="zstd")
        assert all(b"PARQUET:field_id" not in (f.metadata or {}) for f in pq.read_schema(path))
        plain.append(path.as_uri())
    properties = {k: v for k, v in state.summary.items() if k.startswith("stedi.") and k != FINGERPRINT}
    lake.catalog.open_for_writing()
    lake.catalog.replace(table, plain, state.fingerprint, properties, base=state.snapshot_id)


def test_files_without_field_ids_are_read_by_name_and_optimize_rewrites_them_with_ids(tmp_path: Path) -> None:
    """A lakehouse of an older stedi: its files carry no Iceberg field ids. Readers still read them (DuckDB by
    name; pyiceberg, which resolves columns by id, through the table's name mapping), and `optimize` rewrites
    every table holding one, even where its files are not small, so that afterwards every file has ids."""
    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    before = {name: _content(lake, name) for name in TABLES}
    old = sorted(t.name for t in lake.tables() if t.files)
    assert len(old) >= 10
    for name in old:
        _without_ids(lake, name)

    lake = Lakehouse(tmp_path / "lake", target_file_size="100")  # no file counts as small
    for name in old:
        ice = lake.catalog.load(TABLES[name])
        assert ice is not None and "schema.name-mapping.default" in ice.properties
        by_id = ice.scan().to_arrow()
        assert sorted(tuple(r.values()) for r in by_id.to_pylist()) == before[name], name
    assert {name: _content(lake, name) for name in TABLES} == before

    reports = {r.table: r for r in lake.optimize(retention_days=0, grace_minutes=0)}
    assert sorted(name for name, r in reports.items() if r.compacted) == old
    assert assert_field_ids(lake) >= len(old)
    after = {name: _content(lake, name) for name in TABLES}
    after["runs"] = [r for r in after["runs"] if r[-1] != "optimize"]
    assert after == before
    again = {r.table: r for r in lake.optimize(retention_days=0, grace_minutes=0)}
    assert not any(r.compacted for r in again.values())  # every file has its ids now
