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
        [sys.executable, str(REPO / "bench" / "run.py"), "--scale", "0.05", "--runs", "1",
         "--cases", "ingest,run-duckdb,floor", "--out", str(tmp_path)],
        capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    report = json.loads((tmp_path / "scale-0.05.json").read_text())
    assert [r["case"] for r in report["results"]] == ["ingest", "run-duckdb", "floor"]
    assert report["records"] > 4000 and report["machine"]["cores"] >= 1
    assert all(r["median_s"] > 0 and r["peak_rss_mib"] > 0 for r in report["results"])
    assert "run-duckdb" in result.stdout
