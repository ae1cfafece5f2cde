"""The run history: every `stedi run` (and each `stedi optimize` and `stedi rollback`, which change tables
too), failed ones too, as rows of the Iceberg table `runs` (one per table
the run built or checked, and one for a failed run itself), so what each run did can be seen later
(`stedi history`). It holds no personal data: settings, versions, table names and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from stedi._version import __version__
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.pipeline.report import TableRun
from stedi.tables import TABLES


@dataclass
class RunRecord:
    """What one run did, filled in as it goes (so a failed run still says what it finished)."""

    run_id: str
    engine: str
    consent_policy: str
    command: str = "run"  # or optimize, rollback: every command that changes tables records its state
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    key_id: str | None = None
    results: dict[str, TableRun] = field(default_factory=dict)
    states: dict[str, TableState] = field(default_factory=dict)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _made_with(run: RunRecord, quarantine: str) -> str:
    landing = run.results.get(TABLES[quarantine].made_from[0])
    return landing.status if landing is not None else "up to date"


def new_run_id() -> str:
    """A run's id: when it started (sorts in time) and a random suffix."""
    import uuid

    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


def record_run(catalog: TableCatalog, run: RunRecord, error: str | None = None) -> None:
    """Append the run's rows to `runs` (appended to whatever the table holds: runs only add rows)."""
    table = TABLES["runs"]
    ended = datetime.now(UTC).isoformat(timespec="microseconds")
    common = {"run_id": run.run_id, "started_at": run.started.isoformat(timespec="microseconds"),
              "ended_at": ended, "outcome": "failed" if error else "succeeded", "error": error,
              "engine": run.engine, "stedi_version": __version__, "pyiceberg_version": _version("pyiceberg"),
              "engine_version": _version("pyspark" if run.engine == "spark" else "duckdb"),
              "consent_policy": run.consent_policy, "pseudonym_key_id": run.key_id, "command": run.command}
    rows = [{**common, "table_name": t.table, "action": t.status,
             "snapshot_id": run.states[t.table].snapshot_id if t.table in run.states else None,
             "rows_in": t.rows_in, "rows_out": t.rows_out, "seconds": round(t.seconds, 3)}
            for t in run.results.values()]
    # a landing table's quarantine is committed with it: its snapshot belongs to the state the run left
    rows += [{**common, "table_name": name, "action": _made_with(run, name), "snapshot_id": state.snapshot_id,
              "rows_in": None, "rows_out": state.rows, "seconds": 0.0}
             for name, state in run.states.items() if name not in run.results and TABLES[name].kind == "quarantine"]
    if error:
        rows.append({**common, "table_name": None, "action": "failed", "snapshot_id": None, "rows_in": None,
                     "rows_out": None, "seconds": round((datetime.now(UTC) - run.started).total_seconds(), 3)})
    if not rows:
        return
    catalog.append_rows(table, rows, run.run_id)


def record_optimize(catalog: TableCatalog, consent_policy: str, compacted: dict[str, bool], started: datetime,
                    error: str | None = None) -> None:
    """Record a `stedi optimize` like a run: its compactions made new snapshots, the state time travel reads
    after it. `compacted`: {data table: whether its files were rewritten}."""
    run = RunRecord(new_run_id(), "duckdb", consent_policy, command="optimize", started=started)
    for name, rewritten in compacted.items():
        state = catalog.state(TABLES[name])
        if state is not None:
            run.states[name] = state
            run.results[name] = TableRun(name, TABLES[name].zone, "compacted" if rewritten else "up to date",
                                         state.rows, state.rows, 0.0)
    record_run(catalog, run, error)
