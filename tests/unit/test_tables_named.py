"""A query is given the tables it names (each costs metadata reads, on S3 requests), or all when it names none."""

from __future__ import annotations

from stedi.api import tables_named
from stedi.tables import TABLES


def test_a_query_is_given_the_tables_it_spells_as_words_in_any_case_or_quoting() -> None:
    query = 'select * from Machine_Learning_Curated m join "runs" r using (run_id) join stedi.customer_trusted c on 1'
    assert tables_named(query) == {"machine_learning_curated", "runs", "customer_trusted"}


def test_a_longer_name_is_not_a_table() -> None:
    assert tables_named("select * from runs_archive, customer_trusted") == {"customer_trusted"}


def test_a_query_naming_no_table_is_given_every_table() -> None:
    for query in ("show tables", "select table_name from information_schema.tables", "select 1"):
        assert tables_named(query) == set(TABLES)
