"""`stedi tag`, `stedi tags`, `stedi untag`: a name for a consistent state, as a real Iceberg tag of that
name on every data table (a ref any Iceberg reader sees). `stedi optimize` never expires a tagged
snapshot; an erasure rewrites tagged states without the people erased (stedi.privacy.tagged)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stedi import faults
from stedi.errors import StateError
from stedi.iceberg.refs import TagMark, remove_tag, set_tag
from stedi.states.resolve import DATA_TABLES, LakeState, current, resolve, tag_states
from stedi.tables import TABLES

if TYPE_CHECKING:
    from stedi.iceberg.catalog import TableCatalog

# A letter first: a run id starts with a digit and a time with a year, so a name never shadows either.
NAME = re.compile(r"[A-Za-z][A-Za-z0-9._-]{0,62}")
RESERVED = {"main", "stedi-erasing"}


@dataclass(frozen=True)
class TagInfo:
    name: str
    run_id: str | None  # the run whose state it names
    tagged_at: str | None
    tables: int  # data tables tagged
    complete: bool  # on every table it was put on (a tag interrupted by a crash is not: tag it again)
    erasure: str | None  # the last erasure its state was cleaned of (a receipt id)
    snapshots: dict[str, int]


def check_name(name: str) -> None:
    if not NAME.fullmatch(name) or name in RESERVED:
        raise StateError(f"{name!r} cannot name a tag: use a letter, then letters, digits, '.', '_' or '-' "
                         "(up to 63 characters; not 'main')")


def tag(catalog: TableCatalog, name: str, run_id: str | None = None,
        progress: Callable[[str], None] | None = None) -> TagInfo:
    """Tag the current state (or run `run_id`'s) as `name` on every data table; the caller holds the lock.
    Tagging the same state again completes a tag a crash interrupted; another state under a name in use
    is refused."""
    check_name(name)
    state: LakeState = current(catalog) if run_id is None else resolve(catalog, run_id)
    if run_id is not None and state.run_id != run_id:
        raise StateError(f"{run_id!r} is not a run id (`stedi history` lists them)")
    if not state.snapshots:
        raise StateError("there is nothing to tag: no table has been built yet; run `stedi run` first")
    existing = tag_states(catalog).get(name)
    if existing is not None:
        differ = [t for t, s in existing.snapshots.items() if state.snapshots.get(t) != s]
        if differ:
            raise StateError(f"tag {name} already names another state (e.g. table {differ[0]}); "
                             f"`stedi untag {name}` first, or choose another name")
    when = datetime.now(UTC).isoformat(timespec="seconds")
    for table in DATA_TABLES:
        snapshot = state.snapshots.get(table.name)
        if snapshot is None or (existing is not None and table.name in existing.snapshots):
            continue
        set_tag(catalog, table, TagMark(name, snapshot, state.run_id, when, len(state.snapshots), None))
        faults.point("tag:table-tagged")
    return _info(tag_states(catalog)[name])


def untag(catalog: TableCatalog, name: str) -> int:
    """Remove tag `name` from every table; how many had it. The snapshots it kept are expired by the next
    `stedi optimize` (or erasure) like any other old snapshot."""
    removed = sum(remove_tag(catalog, table, name) for table in DATA_TABLES)
    if not removed:
        known = ", ".join(tag_states(catalog)) or "none"
        raise StateError(f"no tag {name!r}; the tags are: {known}")
    return removed


def tags(catalog: TableCatalog) -> list[TagInfo]:
    """Every tag, by name."""
    return [_info(state) for state in tag_states(catalog).values()]


def _info(state: LakeState) -> TagInfo:
    assert state.tag is not None
    marks = list(state.marks.values())
    expected = max((m.tables or 0 for m in marks), default=0)
    erasures = {m.erasure for m in marks}
    return TagInfo(state.tag, state.run_id, min((m.tagged_at for m in marks if m.tagged_at), default=None),
                   len(marks), len(marks) >= expected, erasures.pop() if len(erasures) == 1 else None,
                   dict(state.snapshots))


__all__ = ["TABLES", "TagInfo", "check_name", "tag", "tags", "untag"]
