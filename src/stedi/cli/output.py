"""Rendering of results, so that commands never format: an aligned table, CSV or JSON.

`render` formats a small result held in memory; `write_csv` and `write_json` stream a query's result
batch by batch (memory stays flat whatever its size), and `head` keeps only the rows a table shows.
CSV and JSON write a time as ISO 8601 to the microsecond (2026-12-07T20:37:38.123456, with its offset
when it has a time zone), rendered or streamed; the table, for reading, to the second."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import datetime, time
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

if TYPE_CHECKING:
    import pyarrow as pa

Format = Literal["table", "csv", "json"]
FORMATS = ("table", "csv", "json")
JSON_ROWS = 10_000  # rows turned into Python objects at once, in a streamed JSON result


def render(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: Format = "table") -> str:
    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2, default=json_value)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([[_csv_value(v) for v in row] for row in rows])
        return buffer.getvalue().rstrip("\n")
    return _table(columns, rows)


def _table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_text(v) for v in row] for row in rows]
    numeric = [all(isinstance(row[i], int | float) and not isinstance(row[i], bool) or row[i] is None
                   for row in rows) and bool(rows) for i in range(len(columns))]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric, strict=True)).rstrip()

    return "\n".join([line(columns), "  ".join("-" * w for w in widths), *(line(r) for r in cells)])


def _text(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return str(value)


def _iso(value: datetime | time) -> str:
    return value.isoformat(timespec="microseconds")


def _csv_value(value: Any) -> Any:
    return "" if value is None else _iso(value) if isinstance(value, datetime | time) else _text(value)


def json_value(value: Any) -> Any:
    return _iso(value) if isinstance(value, datetime | time) else str(value)


# -- streamed results -------------------------------------------------------------------------------------
def write_csv(reader: pa.RecordBatchReader, out: BinaryIO) -> None:
    """The result as CSV, one batch at a time, as `render` writes it (a header row, NULL as an empty field,
    text quoted only where it must be, a whole float with its `.0`, times in ISO 8601), but with pyarrow's
    formatting of other numbers and of dates (1e-05 as 0.00001)."""
    out.write(render(reader.schema.names, [], "csv").encode() + b"\n")
    for batch in reader:
        if batch.num_rows:
            _write_csv_batch(batch, out)


def _write_csv_batch(batch: pa.RecordBatch, out: BinaryIO) -> None:
    """Fields without a delimiter, quote or line break (nor, in a single column, an empty one) need no
    quotes: pyarrow's CSV writer writes them as they are. Python's csv module writes a batch with any such
    field, quoting those (pyarrow would quote all the batch's fields)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv

    columns = [_csv_text(column) for column in batch.columns]
    special = '^$|[,"\r\n]' if len(columns) == 1 else '[,"\r\n]'
    # (numbers, times and dates never hold one: only text is searched)
    texts = [text for text, column in zip(columns, batch.columns, strict=True)
             if not _formatted_by_pyarrow(column.type) or len(columns) == 1]
    if not any(pc.any(pc.match_substring_regex(text, special)).as_py() for text in texts):
        pacsv.write_csv(pa.RecordBatch.from_arrays(columns, names=batch.schema.names), out,
                        pacsv.WriteOptions(include_header=False, quoting_style="none"))
        return
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows(zip(*(column.to_pylist() for column in columns), strict=True))
    out.write(text.getvalue().encode())


def _csv_text(column: pa.Array) -> pa.Array:
    """The column's CSV fields: pyarrow's text of each value (what its CSV writer would write), NULL as
    empty; a whole float keeps its `.0` (so that readers that guess types, pandas or spreadsheets, still
    take a float column for floats); a type pyarrow cannot write (lists, structs, intervals, bytes...) as
    `render` writes it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    kind = column.type
    if pa.types.is_dictionary(kind):
        return _csv_text(column.dictionary_decode())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        text = column
    elif pa.types.is_floating(kind):
        text = pc.cast(column, pa.string())
        whole = pc.ascii_is_decimal(pc.ascii_ltrim(text, "-"))  # not 1.5, 1e+20, nan, inf
        text = pc.if_else(whole, pc.binary_join_element_wise(text, ".0", ""), text)
    elif pa.types.is_timestamp(kind):  # as _iso writes it; nanoseconds keep their nine digits
        unit = kind.unit if kind.unit == "ns" else "us"
        text = pc.strftime(column.cast(pa.timestamp(unit, kind.tz)),
                           format="%Y-%m-%dT%H:%M:%S" + ("%Ez" if kind.tz else ""))
    elif _formatted_by_pyarrow(kind):
        text = pc.cast(column, pa.string())
    else:
        text = pa.array([None if value is None else _text(value) for value in column.to_pylist()], pa.string())
    return pc.fill_null(text, "")


def _formatted_by_pyarrow(kind: pa.DataType) -> bool:
    """Numbers, booleans, times and dates: pyarrow's text of them is what its CSV writer writes."""
    import pyarrow as pa

    return any(test(kind) for test in (pa.types.is_integer, pa.types.is_floating, pa.types.is_boolean,
                                       pa.types.is_decimal, pa.types.is_timestamp, pa.types.is_date,
                                       pa.types.is_time, pa.types.is_null))


def write_json(reader: pa.RecordBatchReader, out: BinaryIO) -> None:
    """The result as `render` writes it in JSON (a list of objects, one per row), a few rows at a time."""
    names = reader.schema.names
    out.write(b"[")
    empty = True
    for batch in reader:
        for start in range(0, batch.num_rows, JSON_ROWS):  # each row becomes a dict: a slice of them at once
            part = batch.slice(start, JSON_ROWS)
            rows = zip(*(column.to_pylist() for column in part.columns), strict=True)
            text = json.dumps([dict(zip(names, row, strict=True)) for row in rows], indent=2, default=json_value)
            out.write((text[1:-2] if empty else "," + text[1:-2]).encode())  # the items, without [ and \n]
            empty = False
    out.write(b"]\n" if empty else b"\n]\n")


def head(reader: pa.RecordBatchReader, limit: int | None) -> tuple[pa.Table, int]:
    """The first `limit` rows (every row if None) and how many rows there are in all: the rows past the
    first `limit` are counted as they come, not kept."""
    import pyarrow as pa

    kept: list[pa.RecordBatch] = []
    total = 0
    for batch in reader:
        if limit is None or total < limit:
            kept.append(batch if limit is None else batch.slice(0, limit - total))
        total += batch.num_rows
    return pa.Table.from_batches(kept, schema=reader.schema), total


def rows_of(table: pa.Table) -> list[tuple[Any, ...]]:
    """The rows of `table` as tuples of Python values (columns of the same name stay apart)."""
    return list(zip(*(column.to_pylist() for column in table.columns), strict=True))
