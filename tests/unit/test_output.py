"""Results as CSV and JSON: a time is written the same way in both, rendered or streamed (ISO 8601)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime, time
from typing import BinaryIO

import pyarrow as pa

from stedi.cli.output import render, rows_of, write_csv, write_json

MOMENT = datetime(2026, 12, 7, 20, 37, 38, 123456)
WHOLE = datetime(2026, 12, 7, 20, 37, 38)
TIMES = pa.table({
    "naive": pa.array([MOMENT, WHOLE, None], pa.timestamp("us")),
    "utc": pa.array([MOMENT.replace(tzinfo=UTC), WHOLE.replace(tzinfo=UTC), None], pa.timestamp("us", "UTC")),
    "berlin": pa.array([MOMENT.replace(tzinfo=UTC)] * 3, pa.timestamp("us", "Europe/Berlin")),
    "ms": pa.array([MOMENT.replace(microsecond=123000)] * 3, pa.timestamp("ms")),
    "s": pa.array([WHOLE] * 3, pa.timestamp("s")),
    "clock": pa.array([time(1, 2, 3)] * 3, pa.time64("us")),
})
EXPECTED = {
    "naive": ["2026-12-07T20:37:38.123456", "2026-12-07T20:37:38.000000", None],
    "utc": ["2026-12-07T20:37:38.123456+00:00", "2026-12-07T20:37:38.000000+00:00", None],
    "berlin": ["2026-12-07T21:37:38.123456+01:00"] * 3,
    "ms": ["2026-12-07T20:37:38.123000"] * 3,
    "s": ["2026-12-07T20:37:38.000000"] * 3,
    "clock": ["01:02:03.000000"] * 3,
}


def _streamed(write: Callable[[pa.RecordBatchReader, BinaryIO], None], table: pa.Table) -> str:
    out = io.BytesIO()
    write(table.to_reader(), out)
    return out.getvalue().decode()


def test_csv_and_json_write_times_alike_rendered_or_streamed() -> None:
    rows = [list(row) for row in rows_of(TIMES)]
    for json_text in (render(TIMES.column_names, rows, "json"), _streamed(write_json, TIMES)):
        assert {name: [r[name] for r in json.loads(json_text)] for name in TIMES.column_names} == EXPECTED
    for csv_text in (render(TIMES.column_names, rows, "csv"), _streamed(write_csv, TIMES)):
        header, *lines = list(csv.reader(io.StringIO(csv_text)))
        assert {name: [line[i] or None for line in lines] for i, name in enumerate(header)} == EXPECTED
    table = render(TIMES.column_names, rows)  # the table is for reading: to the second
    assert "2026-12-07 20:37:38  " in table and ".123456" not in table
