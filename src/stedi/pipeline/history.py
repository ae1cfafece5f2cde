"""The run history: every `stedi run`, failed ones too, as rows of the Iceberg table `runs` (one per table
the run built or checked, and one for a failed run itself), so what each run did can be seen later
(`stedi history`). It holds no personal data: settings, versions, table names and counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version

from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.pipeline.report import TableRun
from stedi.storage.files import open_uri
from stedi.tables import TABLES


@dataclass
class RunRecord:
    """What one run did, filled in as it goes (so a failed run still says what it finished)."""

    run_id: str
    engine: str
    consent_policy: str
    started: datetime = field(default_factory=lambda: datetime.now(UTC))
    key_id: str | None = None
    results: dict[str, TableRun] = field(default_factory=dict)
    states: dict[str, TableState] = field(default_factory=dict)


def _version(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


def record_run(catalog: TableCatalog, run: RunRecord, error: str | None = None) -> None:
    """Append the run's rows to `runs` (appended to whatever the table holds: runs only add rows)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from stedi.types import arrow_type

    table = TABLES["runs"]
    ended = datetime.now(UTC).isoformat(timespec="microseconds")
    common = {"run_id": run.run_id, "started_at": run.started.isoformat(timespec="microseconds"),
              "ended_at": ended, "outcome": "failed" if error else "succeeded", "error": error,
              "engine": run.engine, "stedi_version": _version("stedi"), "pyiceberg_version": _version("pyiceberg"),
              "engine_version": _version("pyspark" if run.engine == "spark" else "duckdb"),
              "consent_policy": run.consent_policy, "pseudonym_key_id": run.key_id}
    rows = [{**common, "table_name": t.table, "action": t.status,
             "snapshot_id": run.states[t.table].snapshot_id if t.table in run.states else None,
             "rows_in": t.rows_in, "rows_out": t.rows_out, "seconds": round(t.seconds, 3)}
            for t in run.results.values()]
    if error:
        rows.append({**common, "table_name": None, "action": "failed", "snapshot_id": None, "rows_in": None,
                     "rows_out": None, "seconds": round((datetime.now(UTC) - run.started).total_seconds(), 3)})
    if not rows:
        return
    arrow = pa.table({c.name: pa.array([r[c.name] for r in rows], arrow_type(c.type)) for c in table.columns})
    uri = f"{catalog.data_location(table)}/{run.run_id}.parquet"
    fs, path = open_uri(uri, catalog.s3)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(arrow, path, compression="zstd", filesystem=fs)
    catalog.append(table, [uri], base="any")
