"""Every derived table's declaration (sql/<zone>/<name>.toml) held against its SQL, parsed by sqlglot."""

from __future__ import annotations

import pytest
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.qualify import qualify

from stedi import models
from stedi.tables import DERIVED, TABLES, Table
from stedi.types import TYPES

DERIVED_TABLES = [TABLES[name] for _zone, name in DERIVED]


def tree(table: Table) -> exp.Expression:
    return sqlglot.parse_one(table.sql, read="duckdb")


def schema() -> dict[str, dict[str, str]]:
    """Every table's columns, and the run's relations, as sqlglot reads a schema."""
    tables = {t.name: {c.name: TYPES[c.type].duckdb for c in t.columns} for t in TABLES.values()}
    tables["run_settings"] = {"consent_policy": "VARCHAR"}
    tables["pseudonyms"] = {"email": "VARCHAR", "customer_key": "VARCHAR"}
    return tables


@pytest.mark.parametrize("table", DERIVED_TABLES, ids=lambda t: t.name)
def test_the_columns_declared_are_the_columns_the_sql_returns_in_order(table: Table) -> None:
    selected = qualify(tree(table), schema=schema(), dialect="duckdb").named_selects
    assert [s.lower() for s in selected] == [c.name.lower() for c in table.columns]


@pytest.mark.parametrize("table", DERIVED_TABLES, ids=lambda t: t.name)
def test_the_inputs_are_tables_built_before_it(table: Table) -> None:
    order = [t.name for t in TABLES.values()]
    assert table.inputs, "a derived table reads at least one table"
    for name in table.inputs:
        assert name in TABLES and TABLES[name].kind in ("landing", "derived"), name
        assert order.index(name) < order.index(table.name), f"{name} comes after {table.name} in the build order"
    assert set(table.uses) <= set(models.RUN_RELATIONS)


@pytest.mark.parametrize("table", [t for t in DERIVED_TABLES if t.linear_in], ids=lambda t: t.name)
def test_a_table_declared_to_grow_is_linear_in_those_inputs(table: Table) -> None:
    """Growing runs the same SQL over the new rows alone: that gives exactly the new rows only for joins,
    filters and projections. Aggregates, windows, limits and ordering look at all rows at once."""
    sql = tree(table)
    assert set(table.linear_in) <= set(table.inputs)
    assert not list(sql.find_all(exp.AggFunc)), "an aggregate"
    assert not list(sql.find_all(exp.Window)), "a window function"
    assert not list(sql.find_all(exp.Group)), "a GROUP BY"
    assert not list(sql.find_all(exp.Limit)), "a LIMIT"
    assert not list(sql.find_all(exp.Union, exp.Intersect, exp.Except)), "a set operation over its inputs"


@pytest.mark.parametrize("table", [t for t in DERIVED_TABLES if t.is_set], ids=lambda t: t.name)
def test_a_table_declared_to_hold_each_row_once_does(table: Table) -> None:
    """Its SELECT is DISTINCT; or it keeps the first row of each key (a row_number() window filtered to
    1); or it only filters the rows of one relation that holds each row once (no join could repeat one)."""
    sql = tree(table)
    assert isinstance(sql, exp.Select)
    assert holds_each_row_once(sql, {cte.alias: cte.this for cte in sql.find_all(exp.CTE)})


def holds_each_row_once(select: exp.Select, ctes: dict[str, exp.Expression]) -> bool:
    if select.args.get("distinct"):
        return True
    if select.args.get("joins"):
        return False
    source = select.args["from_"].this.name
    inner = ctes.get(source)
    if inner is None:
        return TABLES[source].is_set
    assert isinstance(inner, exp.Select)
    return first_of_each_key(select, inner) or holds_each_row_once(inner, ctes)


def first_of_each_key(select: exp.Select, inner: exp.Select) -> bool:
    """`select ... from inner where <rank> = 1`, `inner` naming `row_number() over (partition by ...)` <rank>."""
    ranks = {e.alias for e in inner.expressions if isinstance(e, exp.Alias) and isinstance(e.this, exp.Window)
             and isinstance(e.this.this, exp.RowNumber) and e.this.args.get("partition_by")}
    where = select.args.get("where")
    return bool(where) and any(isinstance(eq.left, exp.Column) and eq.left.name in ranks and eq.right.name == "1"
                               for eq in where.find_all(exp.EQ))


def test_the_build_order_follows_the_inputs() -> None:
    assert [name for _zone, name in DERIVED] == [t.name for t in TABLES.values() if t.kind == "derived"]


def test_every_model_has_its_sql_and_every_sql_its_model() -> None:
    from importlib import resources

    for zone in ("trusted", "curated"):
        files = {p.name for p in resources.files("stedi").joinpath("sql", zone).iterdir()}
        sql = {f.removesuffix(".sql") for f in files if f.endswith(".sql")}
        toml = {f.removesuffix(".toml") for f in files if f.endswith(".toml")}
        assert sql == toml == {name for z, name in DERIVED if z == zone}


def test_the_relations_kept_beside_the_sql_are_what_sqlglot_finds() -> None:
    """A run reads each table's inputs from sql/relations.json instead of parsing (sqlglot costs a third of
    a run with nothing new); it must say what parsing says. After editing a .sql: `scripts/write_relations.py`."""
    from importlib import resources

    shipped = resources.files("stedi").joinpath("sql", models.RELATIONS_FILE).read_text("utf-8")
    assert shipped == models.relations_file(DERIVED), "run `scripts/write_relations.py`"
    for zone, name in DERIVED:
        assert models.relations(zone, name) == models.parse(models.sql(zone, name))
