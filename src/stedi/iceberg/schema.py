"""A stedi table's columns as an Iceberg schema (field ids in column order, every column optional)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from stedi.types import iceberg_type

if TYPE_CHECKING:
    from pyiceberg.schema import Schema

    from stedi.tables import Column


def iceberg_schema(columns: tuple[Column, ...]) -> Schema:
    from pyiceberg.schema import Schema
    from pyiceberg.types import NestedField

    return Schema(*(NestedField(i, c.name, iceberg_type(c.type), required=False, doc=c.doc or None)
                    for i, c in enumerate(columns, start=1)))
