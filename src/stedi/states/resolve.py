"""Which snapshot of each table a past state is made of: a run, a tag, or a time.

Every command that changes tables (`run`, `optimize`, `rollback`; an erasure rebuilds through a run)
records in the table `runs` the snapshot each table it touched was left at. One writer works at a time,
so the state a command left is consistent across tables: for each data table, the snapshot the latest
command up to it recorded. A tag is a real Iceberg tag of that name on every data table. A time names
the state the last command that ended by then left.

The history tables (`runs`, `reconciliation`, `quality_checks`) are the log of these states, not part of them: as of a
state they hold the rows of the commands up to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from stedi.errors import StateError
from stedi.iceberg.refs import TagMark, tags_of
from stedi.tables import TABLES, Table

if TYPE_CHECKING:
    from stedi.iceberg.catalog import TableCatalog

DATA_TABLES: tuple[Table, ...] = tuple(t for t in TABLES.values() if t.kind != "history")


@dataclass(frozen=True)
class LakeState:
    """The snapshot of each data table in one state (a table missing from it was not built then)."""

    label: str  # as a person names it: "run R", "tag T", "the time T (run R)", "the current state"
    snapshots: dict[str, int]
    run_id: str | None  # the last recorded command at this state
    history: tuple[str, ...] = ()  # the ids of the commands up to it: the history tables' rows shown
    tag: str | None = None
    marks: dict[str, TagMark] = field(default_factory=dict)  # a tag's marks, per table


@dataclass(frozen=True)
class Recorded:
    """One recorded command (a row per table it touched in `runs`)."""

    run_id: str
    started_at: str
    ended_at: str
    outcome: str
    command: str
    consent_policy: str | None
    snapshots: dict[str, int]


def recorded(catalog: TableCatalog) -> list[Recorded]:
    """Every recorded command, oldest first."""
    import pyarrow.parquet as pq

    from stedi.storage.files import open_uri

    state = catalog.state(TABLES["runs"])
    if state is None:
        return []
    found: dict[str, Recorded] = {}
    for uri in state.files:
        fs, path = open_uri(uri, catalog.s3)
        with fs.open_input_file(path) as fh:
            table = pq.read_table(fh)
        names = table.column_names
        for row in table.to_pylist():
            run = found.setdefault(row["run_id"], Recorded(
                row["run_id"], row["started_at"], row["ended_at"], row["outcome"],
                (row["command"] if "command" in names else None) or "run", row["consent_policy"], {}))
            if row["table_name"] is not None and row["snapshot_id"] is not None:
                run.snapshots[row["table_name"]] = int(row["snapshot_id"])
    return sorted(found.values(), key=lambda r: (r.started_at, r.run_id))


def states_of(runs: list[Recorded]) -> list[LakeState]:
    """The state each recorded command left, in order."""
    out, snapshots = [], {}
    for i, run in enumerate(runs):
        snapshots.update(run.snapshots)
        out.append(LakeState(f"run {run.run_id}", dict(snapshots), run.run_id,
                             tuple(r.run_id for r in runs[:i + 1])))
    return out


def tag_states(catalog: TableCatalog, runs: list[Recorded] | None = None) -> dict[str, LakeState]:
    """Every tag on a data table, as a state."""
    marks: dict[str, dict[str, TagMark]] = {}
    for table in DATA_TABLES:
        ice = catalog.load(table)
        if ice is not None:
            for name, mark in tags_of(ice).items():
                marks.setdefault(name, {})[table.name] = mark
    runs = recorded(catalog) if runs is None and marks else runs or []
    ids = [r.run_id for r in runs]
    out = {}
    for name, per_table in sorted(marks.items()):
        run_id = next((m.run_id for m in per_table.values() if m.run_id), None)
        history = tuple(ids[:ids.index(run_id) + 1]) if run_id in ids else ()
        out[name] = LakeState(f"tag {name}", {t: m.snapshot_id for t, m in per_table.items()}, run_id, history,
                              name, per_table)
    return out


def current(catalog: TableCatalog) -> LakeState:
    """The state the tables are in now."""
    runs = recorded(catalog)
    snapshots = {}
    for table in DATA_TABLES:
        state = catalog.state(table)
        if state is not None and state.snapshot_id is not None:
            snapshots[table.name] = state.snapshot_id
    return LakeState("the current state", snapshots, runs[-1].run_id if runs else None,
                     tuple(r.run_id for r in runs))


def resolve(catalog: TableCatalog, spec: str, *, expired_ok: bool = False) -> LakeState:
    """The state `spec` names: a tag, a run id, or a time (ISO 8601; UTC unless it gives an offset).
    A StateError when it names none, or (unless `expired_ok`) when a snapshot of it has been expired."""
    runs = recorded(catalog)
    tags = tag_states(catalog, runs)
    states = states_of(runs)
    if spec in tags:
        state = tags[spec]
    elif spec in {r.run_id for r in runs}:
        state = next(s for s in states if s.run_id == spec)
    else:
        when = parse_time(spec)
        if when is None:
            raise StateError(f"{spec!r} names no tag, run or time of the lakehouse; " + remaining(catalog, runs, tags)
                             + ". A time is ISO 8601, e.g. 2026-11-30T14:00:00Z")
        ended = [s for s, r in zip(states, runs, strict=True) if _time(r.ended_at) <= when]
        if not ended:
            first = f"the first recorded command ended at {runs[0].ended_at}" if runs else "no command is recorded yet"
            raise StateError(f"no state of the lakehouse at {spec}: {first}")
        state = ended[-1]
        state = LakeState(f"the time {spec} ({state.label})", state.snapshots, state.run_id, state.history)
    if not expired_ok:
        check(catalog, state, runs, tags)
    return state


def check(catalog: TableCatalog, state: LakeState, runs: list[Recorded], tags: dict[str, LakeState]) -> None:
    """A StateError when a snapshot of `state` is gone (expired by `stedi optimize` or an erasure)."""
    gone = missing(catalog, state)
    if gone:
        name, snapshot = gone[0]
        raise StateError(f"{state.label} is no longer available: table {name}'s snapshot {snapshot} has been "
                         f"expired (by `stedi optimize` past snapshot_retention_days, or by an erasure). "
                         + remaining(catalog, runs, tags))


def missing(catalog: TableCatalog, state: LakeState, existing: dict[str, set[int]] | None = None
            ) -> list[tuple[str, int]]:
    """The (table, snapshot) pairs of `state` whose snapshot no longer exists."""
    existing = existing if existing is not None else snapshot_ids(catalog)
    return [(name, snapshot) for name, snapshot in state.snapshots.items() if snapshot not in existing[name]]


def snapshot_ids(catalog: TableCatalog) -> dict[str, set[int]]:
    """The snapshots each data table still has (each table's metadata read once)."""
    out = {}
    for table in DATA_TABLES:
        ice = catalog.load(table)
        out[table.name] = {s.snapshot_id for s in ice.metadata.snapshots} if ice is not None else set()
    return out


def remaining(catalog: TableCatalog, runs: list[Recorded], tags: dict[str, LakeState]) -> str:
    """The states that can still be read, in words."""
    existing = snapshot_ids(catalog)
    alive = [s for s, r in zip(states_of(runs), runs, strict=True) if not missing(catalog, s, existing)]
    said = []
    if tags:
        said.append("tags " + ", ".join(tags))
    if alive:
        ends = {r.run_id: r.ended_at for r in runs}
        first, last = alive[0].run_id, alive[-1].run_id
        assert first is not None and last is not None
        said.append(f"{len(alive)} run(s) from {first} (ended {ends[first]}) to {last} (ended {ends[last]})"
                    if len(alive) > 1 else f"run {last} (ended {ends[last]})")
    return ("the states that remain: " + "; ".join(said) + " (`stedi history`, `stedi tags`)") if said else \
        "no past state remains"


def parse_time(text: str) -> datetime | None:
    """An ISO 8601 time (a date alone is its midnight), as UTC; None when `text` is not one."""
    try:
        when = datetime.fromisoformat(text.strip().replace(" ", "T", 1))
    except ValueError:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)


def _time(text: str) -> datetime:
    when = parse_time(text)
    assert when is not None, text
    return when
