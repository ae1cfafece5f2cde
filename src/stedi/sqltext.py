"""SQL text in stedi's dialect (DuckDB's, which sqlglot translates for Spark): quoting and literals."""

from __future__ import annotations

from collections.abc import Iterable


def quote(name: str) -> str:
    """An identifier, quoted."""
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    """A string literal."""
    return "'" + text.replace("'", "''") + "'"


def literals(items: Iterable[str]) -> str:
    """A list of string literals: ['a', 'b']."""
    return "[" + ", ".join(literal(i) for i in items) + "]"
