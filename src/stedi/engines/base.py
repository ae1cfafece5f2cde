"""The engine interface: what the pipeline needs from a compute engine, and nothing more.

An engine reads tables as Parquet files (the file list comes from the catalog's scan planning), runs a
derived table's `.sql`, and writes the result as Parquet files into a folder. Committing those files is
the catalog's job, so every engine shares one commit path. (Landed JSON is read, validated and
quarantined by stedi.landing.reader, whichever engine builds the derived tables; on Spark its batches
run as tasks on the executors, through `Tasks`.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from stedi.errors import EngineError

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.tables import Table
    from stedi.types import ColumnType


_Item = TypeVar("_Item")
_Result = TypeVar("_Result")


class StatementError(EngineError):
    """A statement the engine refused; the caller may try another way (a file the fast read cannot parse)."""


class Engine(Protocol):
    name: str
    parallel_builds: int  # how many independent tables the pipeline may build at once
    # Whether a table may grow by the rows its inputs gained: growing re-points the inputs' relations at
    # their new rows for a moment, which only an engine that builds one table at a time allows.
    grows_tables: bool

    def register_parquet(self, name: str, files: list[str], table: Table, only: tuple[str, str] | None = None
                         ) -> None:
        """Make `name` a relation over Parquet `files` (URIs) with `table`'s columns; `only` = (column,
        relation): just the rows whose column is among the relation's `value`s."""

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """The rows of a small query."""

    def files_holding(self, files: list[str], column: str, relation: str) -> list[str]:
        """Those of the Parquet `files` with a row whose `column` is among `relation`'s `value`s."""

    def register_rows(self, name: str, columns: list[tuple[str, ColumnType]], rows: list[tuple[object, ...]]
                      ) -> None:
        """Make `name` a relation over a few rows held in memory (never written anywhere)."""

    def write_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        """Run `sql`, cast to `table`'s schema, write Parquet into `folder` (a new, unique URI).

        Returns the URIs of the files written and the number of rows.
        """

    def close(self) -> None: ...


class Session(Protocol):
    """SQL in stedi's dialect, one statement at a time, on the embedded engine: the landing reader's
    validation, compaction. Failures raise StatementError."""

    def execute(self, sql: str) -> None: ...

    def rows(self, sql: str) -> list[tuple[Any, ...]]: ...

    def register_arrow(self, name: str, table: pa.Table) -> None:
        """Make `name` a relation over an Arrow table held in memory."""

    def unregister(self, name: str) -> None: ...

    def register_parquet(self, name: str, files: list[str], table: Table, only: tuple[str, str] | None = None
                         ) -> None: ...

    def copy_to_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        """The rows of `sql`, cast to `table`'s columns, as Parquet files in the new `folder`: their URIs and
        the row count."""

    def close(self) -> None: ...


@runtime_checkable
class Tasks(Protocol):
    """Runs a function over items as parallel tasks in other processes (a Spark cluster's executors): how
    the landing read scales out. The function and items must pickle; the results come back in order."""

    @property
    def parallelism(self) -> int:
        """How many tasks run at once."""

    def run_tasks(self, function: Callable[[_Item], _Result], items: list[_Item]) -> list[_Result]: ...
