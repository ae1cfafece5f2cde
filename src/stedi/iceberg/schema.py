"""A stedi table's columns as an Iceberg schema (field ids in column order, every column optional), and
the field ids every data file carries.

The Iceberg spec asks a writer to store each column's field id in the Parquet schema, so readers that
resolve columns by id (Athena, Trino, Spark's Iceberg runtime) need no name mapping. `field_ids` is the one
place that gives them: the catalog creates each table with them (`iceberg_schema`; a history's columns
added later get the next ids, which is the same rule) and checks a table it writes into has them, and every
writer of a data file (the engines' Parquet writers, `arrow_schema` for pyarrow's) stamps them. Files
written before stedi 0.2.0 have none: readers match their columns through the table's name mapping, and
`stedi optimize` rewrites them (`carries_field_ids`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from stedi.types import arrow_type, iceberg_type

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.schema import Schema

    from stedi.tables import Column

# Where a Parquet column's field id is, as pyarrow shows it (field metadata; Spark's StructField metadata
# key is "parquet.field.id", DuckDB's COPY option FIELD_IDS)
PARQUET_FIELD_ID = b"PARQUET:field_id"


def field_ids(columns: Iterable[Column]) -> dict[str, int]:
    """Each column's Iceberg field id: its position, from 1 (stedi's columns are primitive: no nested ids)."""
    return {c.name: i for i, c in enumerate(columns, start=1)}


def iceberg_schema(columns: tuple[Column, ...]) -> Schema:
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    ids = field_ids(columns)
    return Schema(*(NestedField(ids[c.name], c.name, iceberg_type(c.type), required=False, doc=c.doc or None)
                    for c in columns))


def arrow_schema(columns: tuple[Column, ...]) -> pa.Schema:
    """The Arrow schema of a data file of these columns, each carrying its field id (for pyarrow's writer)."""
    import pyarrow as pa

    ids = field_ids(columns)
    return pa.schema([pa.field(c.name, arrow_type(c.type), metadata={PARQUET_FIELD_ID: str(ids[c.name])})
                      for c in columns])


def carries_field_ids(schema: pa.Schema, columns: tuple[Column, ...]) -> bool:
    """Whether a data file's schema (pyarrow's reading of its footer) gives every column it has the field id
    of the table's column of that name: a file of an older stedi, or of a writer that wrote other ids, does
    not (a history's older files lack its newer columns: those need no id)."""
    ids = field_ids(columns)
    return all(field.name in ids and _field_id(field) == ids[field.name] for field in schema)


def _field_id(field: pa.Field) -> int | None:
    value = (field.metadata or {}).get(PARQUET_FIELD_ID)
    return int(value) if value is not None else None
