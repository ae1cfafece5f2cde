"""The benchmark harness runs end to end (a smoke test at a tiny scale; timings live in bench/, never
in tests)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
