"""Which rows of a table name a person: a SQL condition over the columns that can hold their email, the
serial numbers of their own devices or their pseudonym (and a quarantined record's raw text). What an
erasure's dry run counts and what it removes from tagged states."""

from __future__ import annotations

from stedi.tables import Table


def naming(table: Table, people: list[str], serials: list[str], keys: list[str]) -> str | None:
    """A SQL condition true of `table`'s rows that hold one of the people's emails, serials or pseudonyms
    in a column (a quarantined record's raw text: any of them in it); None if no column can."""
    from stedi.sqltext import literal

    def values(items: list[str]) -> str:
        return "[" + ", ".join(literal(i) for i in items) + "]" if items else "[NULL]"

    tests = {"email": f"list_contains({values(people)}, lower(trim(email)))",
             "user": f"list_contains({values(people)}, lower(trim(\"user\")))",
             "serialNumber": f"list_contains({values(serials)}, serialNumber)",
             "customer_key": f"list_contains({values(keys)}, customer_key)",
             "raw": " or ".join([f"contains(lower(raw), {literal(n.lower())})" for n in people + serials]) or "false"}
    where = " or ".join(f"({test})" for column, test in tests.items() if column in table.column_names)
    return where or None
