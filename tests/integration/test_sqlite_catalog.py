"""The embedded catalog (stedi.iceberg.sqlite): pyiceberg's SqlCatalog layout through sqlite3, so either
opens the other's file, and a commit is a compare-and-swap."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import (
    CommitFailedException,
    NamespaceAlreadyExistsError,
    NamespaceNotEmptyError,
    NoSuchNamespaceError,
    NoSuchTableError,
    TableAlreadyExistsError,
)

from stedi import TABLES, CatalogError, Lakehouse
from stedi.iceberg.catalog import TableCatalog
from stedi.iceberg.sqlite import SqliteCatalog
from stedi.storage.files import local_path

from support import FIXTURES

ROWS = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "name": pa.array(["a", "b", "c"])})


def _props(tmp_path: Path) -> dict[str, str]:
    return {"uri": f"sqlite:///{tmp_path / 'catalog.db'}", "warehouse": (tmp_path / "warehouse").as_uri()}


def test_tables_written_here_open_in_pyicebergs_sql_catalog_and_back(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    ours = SqliteCatalog("stedi", **_props(tmp_path))
    ours.create_namespace("ns")
    table = ours.create_table(("ns", "t"), ROWS.schema)
    table.append(ROWS)

    theirs = SqlCatalog("stedi", **_props(tmp_path))
    assert theirs.list_tables("ns") == [("ns", "t")]
    seen = theirs.load_table(("ns", "t"))
    assert seen.scan().to_arrow().sort_by("id") == ROWS
    seen.append(ROWS.slice(0, 1))  # a commit through SQLAlchemy ...
    theirs.create_table(("ns", "u"), ROWS.schema)

    again = ours.load_table(("ns", "t"))  # ... seen here, as is the table it created
    assert again.scan().to_arrow().num_rows == 4
    assert again.metadata_location == seen.metadata_location
    assert sorted(ours.list_tables("ns")) == [("ns", "t"), ("ns", "u")]


def test_a_commit_on_a_stale_table_is_refused_and_redone_on_the_new_one(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tmp_path / "warehouse").mkdir()
    first = SqliteCatalog("stedi", **_props(tmp_path))
    first.create_namespace("ns")
    first.create_table(("ns", "t"), ROWS.schema)
    mine = first.load_table(("ns", "t"))
    other = SqliteCatalog("stedi", **_props(tmp_path)).load_table(("ns", "t"))
    other.append(ROWS)
    mine.append(ROWS)  # refused (the table moved on), then retried by pyiceberg on the new state
    assert "concurrent update" in caplog.text
    assert first.load_table(("ns", "t")).scan().to_arrow().num_rows == 6  # neither append lost



def test_the_swap_refuses_a_commit_when_another_landed_meanwhile(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "warehouse").mkdir()
    first = SqliteCatalog("stedi", **_props(tmp_path))
    first.create_namespace("ns")
    first.create_table(("ns", "t"), ROWS.schema)
    second = SqliteCatalog("stedi", **_props(tmp_path))
    write = SqliteCatalog._write_metadata
    raced: list[str] = []

    def racing(metadata: object, io: object, path: str) -> None:
        write(metadata, io, path)  # type: ignore[arg-type]
        if not raced:  # between reading the table and swapping its metadata, another process commits
            raced.append(path)
            with second.load_table(("ns", "t")).transaction() as other:
                other.set_properties({"other": "1"})

    monkeypatch.setattr(SqliteCatalog, "_write_metadata", staticmethod(racing))
    with pytest.raises(CommitFailedException, match="updated by another process"):
        with first.load_table(("ns", "t")).transaction() as mine:
            mine.set_properties({"mine": "1"})
    properties = first.load_table(("ns", "t")).properties
    assert properties.get("other") == "1" and "mine" not in properties


def test_namespaces_and_table_operations(tmp_path: Path) -> None:
    (tmp_path / "warehouse").mkdir()
    catalog = SqliteCatalog("stedi", **_props(tmp_path))
    catalog.create_namespace("ns", {"owner": "stedi"})
    with pytest.raises(NamespaceAlreadyExistsError):
        catalog.create_namespace("ns")
    assert catalog.list_namespaces() == [("ns",)]
    assert catalog.load_namespace_properties("ns") == {"owner": "stedi"}
    summary = catalog.update_namespace_properties("ns", removals={"owner"}, updates={"zone": "landing"})
    assert (summary.removed, summary.updated) == (["owner"], ["zone"])
    assert catalog.load_namespace_properties("ns") == {"zone": "landing"}

    catalog.create_table(("ns", "t"), ROWS.schema)
    with pytest.raises(TableAlreadyExistsError):
        catalog.create_table(("ns", "t"), ROWS.schema)
    with pytest.raises(NoSuchNamespaceError):
        catalog.create_table(("other", "t"), ROWS.schema)
    with pytest.raises(NamespaceNotEmptyError):
        catalog.drop_namespace("ns")
    catalog.rename_table(("ns", "t"), ("ns", "renamed"))
    assert catalog.list_tables("ns") == [("ns", "renamed")]
    assert catalog.table_exists(("ns", "renamed")) and not catalog.table_exists(("ns", "t"))
    catalog.drop_table(("ns", "renamed"))
    with pytest.raises(NoSuchTableError):
        catalog.load_table(("ns", "renamed"))
    with pytest.raises(NoSuchTableError):
        catalog.drop_table(("ns", "renamed"))
    catalog.drop_namespace("ns")
    assert catalog.list_namespaces() == []


def test_a_lakehouse_whose_catalog_sqlalchemy_made_runs_on(tmp_path: Path) -> None:
    """Lakehouses built before the embedded catalog went through sqlite3 (by pyiceberg's SqlCatalog)."""
    home = tmp_path / "lake"
    home.mkdir()
    (home / "warehouse").mkdir()
    made = SqlCatalog("stedi", uri=f"sqlite:///{home / 'catalog.db'}", warehouse=(home / "warehouse").as_uri())
    made.create_namespace("stedi")
    made.engine.dispose()
    lake = Lakehouse(home)
    lake.ingest(FIXTURES / "edge")
    report = lake.run()
    assert [t.status for t in report.tables] == ["built"] * 8
    assert SqlCatalog("stedi", uri=f"sqlite:///{home / 'catalog.db'}").load_table(
        ("stedi", "machine_learning_curated")).scan().to_arrow().num_rows == 6


def test_a_table_of_another_layout_is_built_anew_with_the_same_rows(tmp_path: Path) -> None:
    """A table whose columns are not this stedi's (another version's layout) is dropped and built anew; the
    tables that read it are not rebuilt, since its content is the same."""
    from pyiceberg.types import StringType

    lake = Lakehouse(tmp_path / "lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    before = {t.name: t.rows for t in lake.tables() if TABLES[t.name].kind != "history"}
    ice = lake.catalog.load(TABLES["customer_trusted"])
    assert ice is not None
    with ice.update_schema() as update:
        update.add_column("nickname", StringType())
    again = Lakehouse(tmp_path / "lake")
    report = {t.table: t.status for t in again.run().tables}
    assert report["customer_trusted"] == "built" and report["accelerometer_trusted"] == "up to date"
    assert {t.name: t.rows for t in again.tables() if TABLES[t.name].kind != "history"} == before
    assert again.sql("select * from customer_trusted limit 0").column_names == [
        c.name for c in TABLES["customer_trusted"].columns]


def written(catalog: TableCatalog, name: str) -> str:
    """A one-row Parquet file for step_trainer_landing in its data folder, not committed."""
    table = TABLES["step_trainer_landing"]
    rows = pa.table({"sensorReadingTime": pa.array([1], pa.int64()), "serialNumber": ["s"],
                     "distanceFromObject": pa.array([5], pa.int32())})
    uri = f"{catalog.data_location(table)}/{name}.parquet"
    Path(local_path(uri)).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(rows, local_path(uri))
    return uri


def test_an_append_on_a_stale_view_of_the_table_keeps_both_writers_files(tmp_path: Path) -> None:
    """stedi's Catalog.append works out the table's new files without planning them again, unless another
    writer committed since it read the table: then it plans them, so its state has both appends."""
    lake = Lakehouse(tmp_path / "lake")
    table = TABLES["step_trainer_landing"]

    mine, theirs = TableCatalog(lake.settings), TableCatalog(lake.settings)
    with mine.cached():
        first = written(mine, "first")
        assert mine.append(table, [first], base="any").files == [first]  # built from what it knew
        theirs.append(table, [written(theirs, "theirs")], base="any")  # meanwhile, another writer
        state = mine.append(table, [written(mine, "second")], base="any")
    assert (sorted(Path(f).name for f in state.files), state.rows) == (
        ["first.parquet", "second.parquet", "theirs.parquet"], 3)
    assert sorted(Path(f).name for f in TableCatalog(lake.settings).state(table).files) == sorted(  # type: ignore[union-attr]
        Path(f).name for f in state.files)


def test_an_append_or_replace_on_a_stale_snapshot_is_refused_and_its_files_deleted(tmp_path: Path) -> None:
    """New landed files and grown tables append only to the snapshot they were worked out from: when another
    writer committed in between, the commit is refused (the catalog's compare-and-swap, no silent rebase),
    nothing is added, and the files made for it are deleted. So two writers can never add one file twice."""
    lake = Lakehouse(tmp_path / "lake")
    table = TABLES["step_trainer_landing"]

    mine, theirs = TableCatalog(lake.settings), TableCatalog(lake.settings)
    with mine.cached():
        base = mine.append(table, [written(mine, "first")], base=None).snapshot_id
        theirs.append(table, [written(theirs, "theirs")], base=base)  # the other writer comes first
        for attempt in ("append", "replace"):
            late = written(mine, f"late-{attempt}")
            with pytest.raises(CatalogError, match="was changed by another writer .* nothing of it was committed"):
                if attempt == "append":
                    mine.append(table, [late], base=base)
                else:
                    mine.replace(table, [late], None, base=base)
            assert not Path(local_path(late)).exists()
    state = TableCatalog(lake.settings).state(table)
    assert state is not None and sorted(Path(f).name for f in state.files) == ["first.parquet", "theirs.parquet"]
    assert state.rows == 2
