"""The embedded engine's connection: where it spills and how much memory it may hold."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from stedi import Settings, load_settings
from stedi.engines import memory_budget
from stedi.engines.duckdb import connect


def test_a_connection_can_spill_into_a_fresh_root(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path / "new-lake")
    con = connect(settings)
    try:
        [(folder,)] = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert Path(folder).parent == settings.scratch_dir / "duckdb"
        assert Path(folder).parent.is_dir()  # DuckDB creates only the last level when it first spills
        # a query that must spill under a small limit completes
        con.execute("SET memory_limit = '64MB'")
        [(n,)] = con.execute("SELECT count(*) FROM (SELECT i % 1000003 AS k, list(i) AS l FROM range(6000000) "
                             "t(i) GROUP BY k)").fetchall()
        assert n == 1000003
        assert Path(folder).is_dir()  # it did spill there
    finally:
        con.close()


def test_connections_spilling_at_once_each_have_their_own_folder(tmp_path: Path) -> None:
    """DuckDB's spill files have fixed names: two connections sharing a folder (the reconciliation
    counting beside a build) corrupted each other's spilled data and crashed the process at scale 1000."""
    settings = load_settings(env={}, home=tmp_path / "lake")
    connections = [connect(settings) for _ in range(2)]
    folders = [con.execute("SELECT current_setting('temp_directory')").fetchall()[0][0] for con in connections]
    assert len(set(folders)) == 2

    def spill(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
        con.execute("SET memory_limit = '64MB'")
        return con.execute("SELECT count(*), sum(k) FROM (SELECT i % 1000003 AS k, list(i) AS l "
                           "FROM range(6000000) t(i) GROUP BY k)").fetchall()[0]

    try:
        with ThreadPoolExecutor(max_workers=2) as pool:
            assert list(pool.map(spill, connections)) == [(1000003, 1000002 * 1000003 // 2)] * 2
    finally:
        for con in connections:
            con.close()
    assert not any(Path(f).exists() for f in folders)  # removed on close


def test_memory_limit_defaults_to_a_ceiling_and_can_be_set(tmp_path: Path) -> None:
    con = connect(load_settings(env={}, home=tmp_path / "lake"))
    [(default,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    con.close()
    assert memory_budget() <= 4 << 30
    assert default.endswith(("MiB", "GiB", "MB", "GB"))
    (tmp_path / "stedi.toml").write_text('[duckdb]\nmemory_limit = "1GB"\n')
    con = connect(load_settings(tmp_path / "stedi.toml", env={}, home=tmp_path / "lake"))
    [(configured,)] = con.execute("SELECT current_setting('memory_limit')").fetchall()
    con.close()
    assert configured in ("953.6 MiB", "1.0 GB", "1000.0 MB", "953.6MiB")


def test_a_connection_beside_a_build_gets_half_the_ceiling(tmp_path: Path) -> None:
    """The reconciliation and the PII guard run while the build engine holds memory."""
    from stedi.engines import open_query_engine

    def limit(settings: Settings, beside: bool) -> str:
        engine = open_query_engine(settings, beside_a_build=beside)
        try:
            # through the engine's own statements: a user's query may not read settings (stedi sql refuses it)
            [(value,)] = engine.rows("SELECT current_setting('memory_limit')")
        finally:
            engine.close()
        return str(value)

    settings = load_settings(env={}, home=tmp_path / "lake")
    con = duckdb.connect()
    half, whole = (con.execute(f"SET memory_limit = '{b >> 20}MB'; SELECT current_setting('memory_limit')")
                   .fetchall()[0][0] for b in (memory_budget() // 2, memory_budget()))
    assert (limit(settings, True), limit(settings, False)) == (half, whole)
    configured = load_settings(env={}, home=tmp_path / "lake", duckdb={"memory_limit": "1GB"})
    assert limit(configured, True) == limit(configured, False)
