"""The table `quality_failures`: the landed records that broke a `warn` rule (dbt's `store_failures`).

A `warn` rule keeps its rows in the landing table; this table says which records broke which rule, so a
warning can be acted on. Like the quarantine tables it holds the current state: the failures of exactly
the records the landing tables hold now. Its snapshot records, per source, the fingerprint of the landing
table whose failures it holds (FAILURES_OF); a source whose entry is not its landing table's fingerprint
(killed between the commits, a table of an older stedi) is read again whole by the next run.

After the landing commits of a run, one commit (a compare-and-swap on the snapshot read at the start)
replaces the rows of the sources rebuilt (copy-on-write of the files holding them) and adds the rows of
the new files of the sources that grew, so no failure is ever held twice.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Literal

from stedi.config import Settings
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.pipeline.plan import FAILURES_OF, fingerprint_of
from stedi.tables import TABLES

FAILURES = TABLES["quality_failures"]


@dataclass(frozen=True)
class SourceFailures:
    """A source's failures read in this run, for the commit."""

    source: str
    fingerprint: str  # of the landing table just committed
    files: list[str]  # the rows of the records read (every landed file, or only the new ones)
    replaces: bool  # the landing table was rebuilt: its earlier failures go


def failures_of(state: TableState | None) -> dict[str, str]:
    """{source: fingerprint of the landing table whose failures the table holds} (empty if none)."""
    if state is None:
        return {}
    try:
        known = json.loads(state.summary.get(FAILURES_OF, "{}"))
    except ValueError:
        return {}
    return {str(k): str(v) for k, v in known.items()} if isinstance(known, dict) else {}


def commit_failures(settings: Settings, catalog: TableCatalog, before: TableState | None,
                    read: list[SourceFailures]) -> tuple[TableState, Literal["built", "appended", "updated"]]:
    """Commit the failures of the sources read in this run onto `before` (the table's state when the run
    read the landing tables): the new state and what the commit did."""
    held = {**failures_of(before), **{r.source: r.fingerprint for r in read}}
    fingerprint = fingerprint_of(FAILURES, "quality_failures", [sorted(held.items())])
    props = {FAILURES_OF: json.dumps(held, sort_keys=True)}
    added = [f for r in read for f in r.files]
    if before is None or before.snapshot_id is None:
        return catalog.replace(FAILURES, added, fingerprint, props, base=None), "built"
    rebuilt = sorted(r.source for r in read if r.replaces)
    if not rebuilt:
        return catalog.append(FAILURES, added, fingerprint, props, base=before.snapshot_id), "appended"
    # copy-on-write: the files holding a rebuilt source's rows are written again without them
    from stedi.engines import open_query_engine

    engine = open_query_engine(settings, beside_a_build=True)
    try:
        engine.register_rows("_rebuilt", [("value", "string")], [(s,) for s in rebuilt])
        removed = engine.files_holding(before.files, "source", "_rebuilt")
        kept: list[str] = []
        if removed:
            engine.register_parquet("_held", removed, FAILURES)
            folder = f"{catalog.data_location(FAILURES)}/kept-{uuid.uuid4().hex[:12]}"
            kept, _rows = engine.write_parquet("SELECT * FROM _held WHERE source NOT IN (SELECT value FROM _rebuilt)",
                                               FAILURES, folder)
    finally:
        engine.close()
    return catalog.rewrite(FAILURES, removed, kept + added, fingerprint, props, base=before.snapshot_id), "updated"
