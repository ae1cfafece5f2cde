"""What a report shows, read from a lakehouse in one state: every figure is a query on the engine
(`Lakehouse.sql(..., as_of=...)`, SQL in `report/sql/`), so only aggregates and a few sample rows ever
reach Python, whatever the tables' size.

A query file names the tables it reads in its first line (`-- needs: a, b`; tests hold it against the
SQL); a query whose tables were not built in the state is not run, and its part of the report says so."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any, Protocol

from stedi.report import mask
from stedi.tables import TABLES, Table

if TYPE_CHECKING:
    import pyarrow as pa

    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog
    from stedi.landing.zone import LandedFile
    from stedi.states.resolve import LakeState


class Lake(Protocol):
    """What a report reads of a lakehouse (stedi.api.Lakehouse is one; the API calls the report, so the
    report names only this)."""

    settings: Settings
    catalog: TableCatalog

    def sql(self, query: str, *, timeout: float | None = None, as_of: str | None = None) -> pa.Table: ...

    def state(self, as_of: str | None = None) -> LakeState: ...

    def landed_files(self) -> list[LandedFile]: ...

RUNS_SHOWN = 60  # runs in the across-runs charts (the latest)
SAMPLE_ROWS = 5
QUARANTINE_EXAMPLES = 3  # masked examples of each quarantine reason
SERIES_POINTS = 5_000  # points of the one customer's time series
BINS = 40  # bars of each distribution
# Tables of readings, with the column that holds a reading's time: readings per day.
READING_TIMES = {"accelerometer_landing": "timestamp", "accelerometer_trusted": "timestamp",
                 "step_trainer_landing": "sensorReadingTime", "step_trainer_trusted": "sensorReadingTime",
                 "machine_learning_curated": "sensorReadingTime"}
# History tables, with the column that holds when a run wrote a row: their own rows across runs.
HISTORY_TIMES = {"reconciliation": "run_at", "runs": "started_at", "quality_checks": "run_at"}
# The consent funnel's steps (each figure is `sql/funnel/<step>-<measure>.sql`), and what each step is.
FUNNEL_STEPS = {
    "landed": "landed",
    "consented": "consented to research (customer_trusted)",
    "with_readings": "with readings (customers_curated)",
    "ml": "in the ML table (machine_learning_curated)",
}
FUNNEL_MEASURES = ("customers", "accelerometer", "step_trainer", "pairs")
QUALITY_CHECKS = "quality_checks"  # a history table of each rule's count per run, in lakehouses that have it


@cache
def query_text(name: str) -> str:
    """`report/sql/<name>.sql`, shipped as package data."""
    return resources.files("stedi.report").joinpath("sql", *f"{name}.sql".split("/")).read_text(encoding="utf-8")


def needs(name: str, **names: str) -> tuple[str, ...]:
    """The tables a query reads: its first line, `-- needs: a, b`."""
    first = query_text(name).splitlines()[0]
    assert first.startswith("-- needs:"), f"report/sql/{name}.sql must start with `-- needs: <tables>`"
    return tuple(t.strip().format(**names) for t in first.removeprefix("-- needs:").split(","))


@dataclass(frozen=True)
class TableFacts:
    """One table in the state: built or not, its rows, snapshot and when it was last changed."""

    table: Table
    built: bool
    rows: int | None
    snapshot_id: int | None
    updated: datetime | None


@dataclass(frozen=True)
class FunnelStep:
    """One step of the consent funnel; a figure is None when a table it needs was not built."""

    step: str
    customers: int | None
    accelerometer: int | None
    step_trainer: int | None
    pairs: int | None = None


@dataclass
class ReportData:
    state: str  # the state, as a person names it
    run_id: str | None  # the last command recorded in it
    ended_at: str | None  # ... and when it ended
    made_at: datetime
    tables: dict[str, TableFacts]
    landed: dict[str, tuple[int, int]]  # source -> (files, bytes) landed by the end of the state
    rows_by_run: list[dict[str, Any]] = field(default_factory=list)
    samples: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # masked
    funnel: list[FunnelStep] = field(default_factory=list)
    reconciliation: list[dict[str, Any]] = field(default_factory=list)
    quarantine: list[dict[str, Any]] = field(default_factory=list)  # reason counts with masked examples
    rule_counts: list[dict[str, Any]] | None = None  # None: the lakehouse keeps no quality_checks history
    series: list[dict[str, Any]] = field(default_factory=list)
    distributions: list[dict[str, Any]] = field(default_factory=list)
    per_day: list[dict[str, Any]] = field(default_factory=list)


class Reader:
    """Runs the report's queries on one state of a lakehouse."""

    def __init__(self, lake: Lake, as_of: str | None) -> None:
        self.lake, self.as_of = lake, as_of
        state = lake.state(as_of)  # resolved (and checked) once: a StateError names the states that remain
        self.label, self.run_id = state.label, state.run_id
        self.snapshots = state.snapshots
        self.built = set(state.snapshots) | {t.name for t in TABLES.values()
                                             if t.kind == "history" and lake.catalog.state(t) is not None}

    def has(self, *tables: str) -> bool:
        return all(t in self.built for t in tables)

    def rows(self, name: str, **names: Any) -> list[dict[str, Any]] | None:
        """The rows of query `name` (its {placeholders} filled with `names`: table names and numbers stedi
        chose, never text from a user), or None when a table it reads was not built in the state."""
        if not self.has(*needs(name, **{k: str(v) for k, v in names.items()})):
            return None
        return self.run(query_text(name).format(**names))

    def union(self, name: str, each: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Query `name` once per set of names in `each` whose tables are built, as one query (union all)."""
        parts = [query_text(name).format(**names) for names in each
                 if self.has(*needs(name, **{k: str(v) for k, v in names.items()}))]
        return self.run("\nunion all\n".join(f"select * from (\n{part}\n)" for part in parts)) if parts else []

    def run(self, sql: str) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = self.lake.sql(sql, as_of=self.as_of).to_pylist()
        return rows


def read(lake: Lake, as_of: str | None = None) -> ReportData:
    """Everything a report shows of the lakehouse as it stood in `as_of` (a run id, tag or time; default:
    now)."""
    reader = Reader(lake, as_of)
    end = (reader.rows("state_end") or [{}])[0]
    data = ReportData(state=reader.label, run_id=reader.run_id, ended_at=end.get("ended_at"),
                      made_at=datetime.now(UTC), tables=_tables(lake, reader),
                      landed=_landed(lake, end.get("ended_at") if as_of is not None else None))
    data.rows_by_run = (reader.rows("rows_by_run", limit=RUNS_SHOWN) or []) + sorted(reader.union(
        "history_rows_by_run", [{"table": name, "time_column": HISTORY_TIMES[name], "limit": RUNS_SHOWN}
                                for name in HISTORY_TIMES]), key=lambda r: r["started_at"])
    for name, facts in data.tables.items():
        if facts.built:
            sample = reader.rows("sample", table=name, limit=SAMPLE_ROWS) or []
            data.samples[name] = [mask.row(r) for r in sample]
    data.funnel = _funnel(reader)
    data.reconciliation = reader.rows("reconciliation", limit=RUNS_SHOWN) or []
    quarantined = reader.union("quarantine_reasons", [
        {"table": t.name, "source": t.source, "examples": QUARANTINE_EXAMPLES}
        for t in TABLES.values() if t.kind == "quarantine"])
    data.quarantine = [mask.row(r) for r in quarantined]
    if QUALITY_CHECKS in TABLES:
        data.rule_counts = reader.rows(QUALITY_CHECKS, limit=RUNS_SHOWN)
    data.series = reader.rows("customer_series", limit=SERIES_POINTS) or []
    for point in data.series:
        point["customer_key"] = mask.pseudonym(point["customer_key"])
    data.distributions = reader.rows("distributions", bins=BINS) or []
    data.per_day = sorted(reader.union("readings_per_day", [
        {"table": table, "time_column": f'"{column}"'} for table, column in READING_TIMES.items()]),
        key=lambda r: (r["day"], r["table_name"]))
    return data


def _funnel(reader: Reader) -> list[FunnelStep]:
    """The funnel's figures that can be counted in the state, in one query."""
    cells = [(step, measure) for step in FUNNEL_STEPS for measure in FUNNEL_MEASURES
             if _exists(f"funnel/{step}-{measure}") and reader.has(*needs(f"funnel/{step}-{measure}"))]
    if not cells:
        return []
    found = {(r["step"], r["measure"]): r["value"] for r in reader.run("\nunion all\n".join(
        f"select '{step}' as step, '{measure}' as measure, (\n{query_text(f'funnel/{step}-{measure}')}\n) as value"
        for step, measure in cells))}
    return [FunnelStep(title, *(found.get((step, m)) for m in FUNNEL_MEASURES))
            for step, title in FUNNEL_STEPS.items() if any(s == step for s, _ in found)]


def _exists(name: str) -> bool:
    return resources.files("stedi.report").joinpath("sql", *f"{name}.sql".split("/")).is_file()


def _tables(lake: Lake, reader: Reader) -> dict[str, TableFacts]:
    """Each table's facts: rows counted by the engine, the snapshot and its time from the catalog."""
    counted = {r["table_name"]: int(r["rows"]) for r in reader.union(
        "table_rows", [{"table": name} for name in TABLES])}
    out = {}
    for name, table in TABLES.items():
        snapshot_id: int | None = None
        updated: datetime | None = None
        if table.kind == "history":  # not part of a state: its current snapshot, its rows up to the state
            state = lake.catalog.state(table)
            if state is not None and reader.as_of is None:
                snapshot_id, updated = state.snapshot_id, state.updated
        elif name in reader.snapshots:
            snapshot_id = reader.snapshots[name]
            updated = _snapshot_time(lake, table, snapshot_id)
        out[name] = TableFacts(table, name in reader.built, counted.get(name), snapshot_id, updated)
    return out


def _snapshot_time(lake: Lake, table: Table, snapshot_id: int) -> datetime | None:
    ice = lake.catalog.load(table)
    snapshot = ice.metadata.snapshot_by_id(snapshot_id) if ice is not None else None
    return datetime.fromtimestamp(snapshot.timestamp_ms / 1000, tz=UTC) if snapshot is not None else None


def _landed(lake: Lake, until: str | None) -> dict[str, tuple[int, int]]:
    """Files and bytes landed per source (by the end of a past state: the files landed by then)."""
    from stedi.states.resolve import parse_time

    end = parse_time(until) if until else None
    out: dict[str, tuple[int, int]] = {}
    for file in lake.landed_files():
        landed = parse_time(file.landed_at) if file.landed_at else None
        if end is not None and landed is not None and landed > end:
            continue
        files, size = out.get(file.source, (0, 0))
        out[file.source] = (files + 1, size + file.size)
    return out
