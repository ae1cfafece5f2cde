"""Erasure of tagged states: a tag keeps an old snapshot (and its files) alive, so an erasure rewrites it.

For every tag on every data table, the files of the tagged snapshot that hold a row naming the people
(their email, the serial numbers of their own devices, their pseudonym; a quarantined record's raw
text holding any of them: the rows `stedi erase --dry-run` counts) are copied without those rows into a
new snapshot, made on a branch off the tagged one, and the tag moves onto it. The state keeps every
other row: what it held of everyone else stays reproducible. A tag whose state names nobody erased
stays where it is. Either way the tag is marked with the erasure's receipt id, so `stedi rollback` knows
the state is clean, and a rerun after a crash skips the tags already done.

The old tagged snapshot is then an ordinary old snapshot: the erasure's expiry removes it and deletes
its files, and the no-trace scan of the whole root proves nothing is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING

from stedi import faults
from stedi.iceberg.refs import TagMark, rewrite_tagged, set_tag, snapshot_state, tags_of
from stedi.tables import TABLES

if TYPE_CHECKING:
    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog


def erase_from_tags(settings: Settings, catalog: TableCatalog, people: list[str], serials: list[str],
                    keys: list[str], receipt: str, say: Callable[[str], None],
                    moved: Callable[[str], None]) -> None:
    """Rewrite every tagged state without the people (see the module docstring); `moved(tag)` is called
    after each tag that moved, so the journal can keep the receipt's list across a crash."""
    from stedi.engines import open_query_engine
    from stedi.pipeline.plan import READ
    from stedi.privacy.naming import naming

    engine = None
    dropped: dict[tuple[str, str], int] = {}  # (source, tag): quarantined records removed from the tagged state
    # quarantines first: a landing table's snapshot counts the records read, its quarantine's included
    order = sorted((t for t in TABLES.values() if t.kind != "history"), key=lambda t: t.kind != "quarantine")
    try:
        for table in order:
            ice = catalog.load(table, fresh=True)
            where = naming(table, people, serials, keys)
            if ice is None:
                continue
            for mark in tags_of(ice).values():
                if mark.erasure == receipt:
                    continue  # done before a crash
                state = snapshot_state(catalog, table, mark.snapshot_id)
                assert state is not None, f"tag {mark.name} of {table.name} names a missing snapshot"
                removed, added, rows = [], [], 0
                if where is not None and state.files:
                    engine = engine or open_query_engine(settings, beside_a_build=True)
                    folder = f"{catalog.data_location(table)}/erase-{receipt}-{uuid.uuid4().hex[:8]}"
                    for i, uri in enumerate(state.files):
                        engine.register_parquet("_tagged", [uri], table)
                        [(hits,)] = engine.rows(f"SELECT count(*) FROM _tagged WHERE {where}")
                        if hits:
                            removed.append(uri)
                            rows += hits
                            written, _rows = engine.write_parquet(
                                f"SELECT * FROM _tagged WHERE NOT coalesce(({where}), false)", table, f"{folder}/{i}")
                            added += written
                properties = {}
                if table.kind == "quarantine" and table.source:
                    dropped[(table.source, mark.name)] = rows
                elif table.kind == "landing" and table.source and READ in state.summary:
                    gone = rows + dropped.get((table.source, mark.name), 0)
                    if gone:  # the state's reconciliation still balances: fewer records read
                        properties[READ] = str(int(state.summary[READ]) - gone)
                if removed or properties:
                    rewrite_tagged(catalog, table, mark, removed, added, receipt, properties)
                    say(f"rewrote tag {mark.name} of {table.name} without them ({rows:,} rows)")
                    moved(mark.name)
                    faults.point("erase:tag-rewritten")
                else:
                    set_tag(catalog, table, TagMark(mark.name, mark.snapshot_id, mark.run_id, mark.tagged_at,
                                                    mark.tables, receipt))
    finally:
        if engine is not None:
            engine.close()
