"""Derived tables describe themselves: each is `sql/<zone>/<name>.sql` (what it computes, in DuckDB's
dialect) with `<name>.toml` beside it (its meaning, columns and how it may be maintained incrementally).
What the SQL says is read from the SQL: the tables it reads (its inputs) and the relations a run gives it
(run_settings, pseudonyms), parsed with sqlglot the first time they are needed (the CLI starts without it).
tests/unit/test_models.py holds every declaration against the SQL.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from stedi.errors import TableError

# Relations a run hands to the SQL besides the tables: the run's settings, and email -> customer_key.
RUN_RELATIONS = ("run_settings", "pseudonyms")


@dataclass(frozen=True)
class Model:
    """A derived table's declaration, from its .toml."""

    name: str
    zone: str
    doc: str
    columns: str | list[dict[str, str]]  # a source's landing schema by name, or the columns themselves
    grows_with: tuple[str, ...]  # inputs whose new rows add exactly the rows the SQL gives for them alone
    distinct_rows: bool  # the SQL returns each row once
    research: bool  # meant for research: checked by the PII guard
    key: str | None  # the column naming whose row it is (a customer or a device): maintained key by key


def _folder(zone: str) -> Any:
    return resources.files("stedi").joinpath("sql", zone)


def model(zone: str, name: str) -> Model:
    """The declaration of `name` in `zone` (its .toml beside its .sql)."""
    try:
        data = tomllib.loads(_folder(zone).joinpath(f"{name}.toml").read_text(encoding="utf-8"))
    except (FileNotFoundError, tomllib.TOMLDecodeError) as exc:
        raise TableError(f"the model {zone}/{name}.toml cannot be read ({exc})") from None
    return Model(name, zone, str(data["doc"]), data["columns"], tuple(data.get("grows_with", ())),
                 bool(data.get("distinct_rows", False)), bool(data.get("research", False)),
                 data.get("key"))


def sql(zone: str, name: str) -> str:
    """The transformation of a derived table: its `.sql` file, shipped as package data."""
    return str(_folder(zone).joinpath(f"{name}.sql").read_text(encoding="utf-8"))


RELATIONS_FILE = "relations.json"  # sql/relations.json: what parse() found in each shipped .sql, by its hash


@cache
def _known() -> dict[str, Any]:
    try:
        return dict(json.loads(resources.files("stedi").joinpath("sql", RELATIONS_FILE).read_text("utf-8")))
    except (FileNotFoundError, ValueError):
        return {}


@cache
def relations(zone: str, name: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the tables the SQL reads, the run's relations it reads), each in order of first use.

    Parsing takes sqlglot (about 0.3 s to import and parse, a third of a run with nothing new), so what
    it finds in the shipped SQL is kept in sql/relations.json, used while the SQL's hash matches
    (`scripts/write_relations.py` writes it; tests/unit/test_models.py keeps it in step)."""
    text = sql(zone, name)
    known = _known().get(f"{zone}/{name}")
    if known and known.get("sha256") == hashlib.sha256(text.encode()).hexdigest():
        return tuple(known["inputs"]), tuple(known["uses"])
    return parse(text)


def parse(text: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(the tables a SQL text reads, the run's relations it reads), by sqlglot."""
    import sqlglot
    from sqlglot import exp

    tree = sqlglot.parse_one(text, read="duckdb")
    ctes = {cte.alias for cte in tree.find_all(exp.CTE)}
    read: list[str] = []
    for table in tree.find_all(exp.Table, bfs=False):
        if table.name not in ctes and table.name not in read:
            read.append(table.name)
    return (tuple(r for r in read if r not in RUN_RELATIONS), tuple(r for r in read if r in RUN_RELATIONS))


def relations_file(derived: tuple[tuple[str, str], ...]) -> str:
    """The content of sql/relations.json for the derived tables (zone, name)."""
    spec = {}
    for zone, name in derived:
        text = sql(zone, name)
        inputs, uses = parse(text)
        spec[f"{zone}/{name}"] = {"sha256": hashlib.sha256(text.encode()).hexdigest(), "inputs": list(inputs),
                                  "uses": list(uses)}
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"

