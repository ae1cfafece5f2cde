"""The benchmark harness runs end to end (a smoke test at a tiny scale; timings live in bench/, never
in tests)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from support import REPO


@pytest.mark.slow
def test_bench_runs_and_writes_its_results(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--scale", "1", "--runs", "1",
         "--cases", "ingest,run-duckdb,run-incremental,floor,ingest-s3,run-duckdb-s3", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "scale-1.json").read_text())
    cases = ["ingest", "run-duckdb", "run-incremental", "floor", "ingest-s3", "run-duckdb-s3"]
    assert [r["case"] for r in report["results"]] == cases
    assert report["records"] > 100_000 and report["machine"]["cores"] >= 1
    assert all(r["median_s"] > 0 and r["peak_rss_mib"] > 0 and r["x_floor"] > 0 for r in report["results"])
    assert 0 < report["results"][2]["share_of_full_run"]
    table = (tmp_path / "scale-1.md").read_text()
    assert all(f"| `{case}` |" in table for case in cases) and table in result.stdout


@pytest.mark.slow
def test_bench_incremental_and_plain_duckdb_cases(tmp_path: Path) -> None:
    cases = ["run-duckdb", "run-noop", "run-incremental", "run-incremental-readings", "plain-duckdb"]
    results = _tiny_bench(tmp_path, cases)
    assert sorted(p.name for p in (tmp_path / "data").iterdir()) == ["scale-0.05", "scale-0.05-batch"]
    assert list(results) == cases
    assert all(0 < r["share_of_full_run"] for c, r in results.items() if c.startswith("run-") and c != "run-duckdb")
    assert "share_of_full_run" not in results["run-duckdb"] and results["plain-duckdb"]["x_plain_duckdb"] == 1
    assert results["run-incremental"]["batch_records"] > 0
    table = (tmp_path / "results" / "scale-0.05.md").read_text()
    assert "| vs plain DuckDB |" in table and all(f"| `{case}` |" in table for case in cases)


@pytest.mark.slow
@pytest.mark.spark
def test_bench_cluster_cases_compare_with_the_plain_jobs_on_the_same_cluster(tmp_path: Path) -> None:
    cases = ["run-spark-cluster", "plain-pyspark-cluster"]
    results = _tiny_bench(tmp_path, cases)
    assert list(results) == cases
    assert results["plain-pyspark-cluster"]["x_faster_than_plain_pyspark"] == 1
    ratio = results["plain-pyspark-cluster"]["median_s"] / results["run-spark-cluster"]["median_s"]
    assert results["run-spark-cluster"]["x_faster_than_plain_pyspark"] == round(ratio, 2)


def _tiny_bench(tmp_path: Path, cases: list[str]) -> dict[str, dict[str, Any]]:
    """bench/run.py at scale 0.05, one run of each case, its data generated into the test's folder (not
    bench/.data): each case's result."""
    result = subprocess.run(
        [sys.executable, str(REPO / "bench" / "run.py"), "--scale", "0.05", "--runs", "1",
         "--cases", ",".join(cases), "--out", str(tmp_path / "results")],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "STEDI_BENCH_DATA": str(tmp_path / "data")})
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "results" / "scale-0.05.json").read_text())
    return {r["case"]: r for r in report["results"]}
