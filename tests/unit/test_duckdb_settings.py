"""The embedded engine's connection: where it spills and how much memory it may hold."""

from __future__ import annotations

from pathlib import Path

from stedi import load_settings
from stedi.engines import memory_budget
from stedi.engines.duckdb import connect


def test_a_connection_can_spill_into_a_fresh_root(tmp_path: Path) -> None:
    settings = load_settings(env={}, home=tmp_path / "new-lake")
    con = connect(settings)
    try:
        [(folder,)] = con.execute("SELECT current_setting('temp_directory')").fetchall()
        assert folder == str(settings.scratch_dir / "duckdb")
        assert Path(folder).parent.is_dir()  # DuckDB creates only the last level when it first spills
        # a query that must spill under a small limit completes
        con.execute("SET memory_limit = '64MB'")
        [(n,)] = con.execute("SELECT count(*) FROM (SELECT i % 1000003 AS k, list(i) AS l FROM range(6000000) "
                             "t(i) GROUP BY k)").fetchall()
        assert n == 1000003
        assert Path(folder).is_dir()  # it did spill there
    finally:
        con.close()


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
