"""What a table is built from, and how that is recorded: the fingerprint in each snapshot.

A table is rebuilt only when its fingerprint changes: its SQL, its columns, the settings its SQL reads,
and the landed files and rules (landing tables) or the content of its input tables (derived tables).
Snapshot properties keep what a later run needs to know without reading the data again.
"""

from __future__ import annotations

import hashlib
import json

from stedi.tables import Table

FORMAT = "2"  # bump to rebuild every table after a change in how tables are written
READ = "stedi.records-read"  # landing snapshot property: records read from the landed files
UNKNOWN = "stedi.unknown-fields"  # landing snapshot property: extra fields seen, with counts
WARNINGS = "stedi.warnings"  # landing snapshot property: rows flagged by warn rules (summed over the rules)
RULE_COUNTS = "stedi.rule-counts"  # landing snapshot property: {rule: rows it matched} over the table's files
FAILURES_OF = "stedi.failures-of"  # quality_failures snapshot property: {source: fingerprint of the landing
#                                    table whose records' warn-rule failures it holds}
LOADED = "stedi.loaded-files"  # landing snapshot property: the landed files in the table, "name sha256" lines
RULES = "stedi.rules"  # landing snapshot property: fingerprint of how files are read (limits, checks)
INPUTS = "stedi.inputs"  # derived snapshot property: {input: content id of its files} the table was built from
DEFINITION = "stedi.definition"  # derived snapshot property: fingerprint of its SQL, columns and settings


def table_sql(table: Table) -> str:
    """The transformation of a derived table (its `.sql`; tests replace this to inject faults)."""
    return table.sql


def content_id(files: list[str]) -> str:
    """Names the exact set of data files of a table (what a derived table was built from)."""
    return hashlib.sha256("\n".join(sorted(files)).encode()).hexdigest()


def fingerprint_of(table: Table, sql: str, inputs: list[object]) -> str:
    spec = {"format": FORMAT, "sql": sql, "columns": [(c.name, c.type) for c in table.columns],
            "inputs": inputs}
    return hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()


