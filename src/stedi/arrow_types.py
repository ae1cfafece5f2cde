"""The Arrow type of each column type of stedi.tables (imported only where Arrow data is built)."""

from __future__ import annotations

import pyarrow as pa

from stedi.tables import ColumnType

ARROW_TYPES: dict[ColumnType, pa.DataType] = {
    "string": pa.string(), "bigint": pa.int64(), "int": pa.int32(), "double": pa.float64(),
}
