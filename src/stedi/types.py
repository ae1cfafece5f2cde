"""The one type map: each column type of stedi.tables, as the Iceberg schema names it, and its name in
every system that reads or writes the tables. Everything that needs a type looks it up here.

    column type   Iceberg   Arrow     DuckDB SQL   Spark SQL   Athena / Glue DDL
    string        string    string    VARCHAR      STRING      string
    bigint        long      int64     BIGINT       BIGINT      bigint
    int           int       int32     INTEGER      INT         int
    double        double    float64   DOUBLE       DOUBLE      double
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    import pyarrow as pa
    from pyiceberg.types import PrimitiveType

ColumnType = Literal["string", "bigint", "int", "double"]


@dataclass(frozen=True)
class TypeNames:
    iceberg: str  # the Iceberg primitive type (pyiceberg parses it)
    arrow: str  # the name of the pyarrow factory
    duckdb: str
    spark: str
    athena: str


TYPES: dict[ColumnType, TypeNames] = {
    "string": TypeNames("string", "string", "VARCHAR", "STRING", "string"),
    "bigint": TypeNames("long", "int64", "BIGINT", "BIGINT", "bigint"),
    "int": TypeNames("int", "int32", "INTEGER", "INT", "int"),
    "double": TypeNames("double", "float64", "DOUBLE", "DOUBLE", "double"),
}


def iceberg_type(column: ColumnType) -> PrimitiveType:
    from pyiceberg.types import PrimitiveType

    return PrimitiveType.model_validate(TYPES[column].iceberg)


def arrow_type(column: ColumnType) -> pa.DataType:
    import pyarrow as pa

    return getattr(pa, TYPES[column].arrow)()
