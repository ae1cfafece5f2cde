from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stedi.privacy.erasure import find_traces


def test_finds_a_needle_in_parquet_data_and_in_other_files_case_insensitively(tmp_path: Path) -> None:
    pq.write_table(pa.table({"email": ["a@x.com", "Someone.Else@Test.com"], "n": [1, 2]}),
                   tmp_path / "hit.parquet", compression="zstd")
    pq.write_table(pa.table({"email": ["a@x.com"], "n": [1]}), tmp_path / "clean.parquet")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "log.txt").write_text("removed someone.else@test.com\n")
    (tmp_path / "sub" / "other.txt").write_text("nothing here\n")
    assert find_traces(tmp_path, ["someone.else@test.com"]) == [str(tmp_path / "hit.parquet"),
                                                               str(tmp_path / "sub" / "log.txt")]
    assert find_traces(tmp_path, ["SN-UNKNOWN"]) == []
