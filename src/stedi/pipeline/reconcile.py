"""The reconciliation: for every source and run, read = kept + filtered + quarantined + duplicates.

`read` is what the landing reader counted in the landed files; the other figures are counted in the
tables by `sql/reconcile/<source>.sql`. A run whose figures do not balance fails, after its figures are
appended to the `reconciliation` table (the history).

Counting re-derives the distinct readings and the consent join (seconds at scale), so a source's counts
are kept in the history's snapshot with what they were counted from (the SQL, the consent policy and the
content fingerprints of the tables read), and reused while all of that is unchanged.

The verification (`stedi reconcile --verify`, and every run under `verify_reconciliation = "always"`)
recounts every source from the current tables with the same SQL (`recount`, nothing reused) and compares
the counts with the figures the run recorded (`verify`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import cast

from stedi.config import Settings
from stedi.engines import open_query_engine
from stedi.errors import ReconciliationError
from stedi.iceberg.catalog import TableCatalog, TableState, require_state
from stedi.storage.files import open_uri
from stedi.tables import TABLES

RECONCILED = "stedi.reconciled"  # reconciliation snapshot property: {source: {"from": key, counts...}}
COUNTS = ("kept", "filtered", "quarantined", "duplicates")

# The tables each source's figures are counted in.
NEEDS = {
    "customer": ("customer_landing", "customer_quarantine", "customer_trusted"),
    "accelerometer": ("accelerometer_landing", "accelerometer_quarantine", "customer_trusted",
                      "accelerometer_trusted"),
    "step_trainer": ("step_trainer_landing", "step_trainer_quarantine", "customers_curated",
                     "step_trainer_trusted"),
}


@dataclass(frozen=True)
class Figures:
    source: str
    read: int
    kept: int
    filtered: int
    quarantined: int
    duplicates: int
    warnings: int
    suppressed: int = 0  # records of erased people dropped as their files landed: never read, not in the balance

    @property
    def balanced(self) -> bool:
        return self.read == self.kept + self.filtered + self.quarantined + self.duplicates


def _counted_from(source: str, states: Mapping[str, TableState], consent_policy: str) -> str:
    """What a source's counts depend on: its SQL, the consent policy and the content of the tables read
    (a table's fingerprint; its snapshot when another writer left none)."""
    spec = [_sql(source), consent_policy, [(n, states[n].fingerprint or states[n].snapshot_id) for n in NEEDS[source]]]
    return hashlib.sha256(json.dumps(spec, default=str).encode()).hexdigest()


class Reconciliation:
    """Counts each source on its own DuckDB connection, in the background, as soon as the tables it is
    counted in are built, so the counting overlaps the builds still running; then gives the figures.
    `known` is the last recorded counts (RECONCILED), reused for a source whose inputs are unchanged
    unless `reuse` is off (--full-refresh)."""

    def __init__(self, settings: Settings, consent_policy: str, known: Mapping[str, Mapping[str, object]],
                 reuse: bool = True) -> None:
        self._settings, self._policy, self._known, self._reuse = settings, consent_policy, known, reuse
        self._from: dict[str, str] = {}  # what each source is counted from (_counted_from)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stedi-reconcile")
        self._counts: dict[str, Future[Mapping[str, object]]] = {}

    def offer(self, states: Mapping[str, TableState]) -> None:
        """Start counting every source whose tables are all in `states` (a run builds a table once)."""
        for source, needs in NEEDS.items():
            if source in self._counts or not all(n in states for n in needs):
                continue
            tables = {n: states[n] for n in needs}
            self._from[source] = _counted_from(source, tables, self._policy)
            last = self._known.get(source)
            if self._reuse and last and last.get("from") == self._from[source]:
                self._counts[source] = Future()
                self._counts[source].set_result(last)
            else:
                self._counts[source] = self._pool.submit(self._count, source, tables)

    def _count(self, source: str, tables: Mapping[str, TableState]) -> Mapping[str, object]:
        return _count(self._settings, self._policy, [source], tables, beside_a_build=True)[source]  # half the ceiling

    def figures(self, states: Mapping[str, TableState], read: Mapping[str, int],
                warnings: Mapping[str, int], suppressed: Mapping[str, int] | None = None) -> list[Figures]:
        """The figures of every source whose tables this run has (a --select run may not have them all)."""
        self.offer(states)
        figures = []
        for source, counting in self._counts.items():
            if source in read:
                counts = counting.result()  # re-raises a failed count
                kept, filtered, quarantined, duplicates = (int(cast(int, counts[k])) for k in COUNTS)
                figures.append(Figures(source, read[source], kept, filtered, quarantined, duplicates,
                                       warnings.get(source, 0), (suppressed or {}).get(source, 0)))
        order = list(NEEDS)
        return sorted(figures, key=lambda f: order.index(f.source))

    def to_keep(self, figures: list[Figures]) -> dict[str, Mapping[str, object]]:
        """The counts for the next run: the known ones, updated with this run's balanced figures."""
        kept = dict(self._known)
        kept.update({f.source: {"from": self._from[f.source], **{k: getattr(f, k) for k in COUNTS}}
                     for f in figures if f.balanced})
        return kept

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)


def _count(settings: Settings, consent_policy: str, sources: list[str], tables: Mapping[str, TableState],
           beside_a_build: bool) -> dict[str, Mapping[str, object]]:
    """Count `sources` by their `sql/reconcile/<source>.sql` over `tables` (each source's NEEDS), on one
    DuckDB connection."""
    engine = open_query_engine(settings, beside_a_build=beside_a_build)
    try:
        engine.register_rows("run_settings", [("consent_policy", "string")], [(consent_policy,)])
        for name in dict.fromkeys(n for source in sources for n in NEEDS[source]):
            engine.register_parquet(name, tables[name].files, TABLES[name])
        counts = {}
        for source in sources:
            [row] = engine.query(_sql(source)).to_pylist()
            counts[source] = cast("Mapping[str, object]", row)
        return counts
    finally:
        engine.close()


def recount(settings: Settings, states: Mapping[str, TableState], *, in_a_run: bool = False
            ) -> dict[str, dict[str, int]]:
    """Every source whose tables are all in `states`, counted afresh from them (nothing reused), under the
    settings' consent policy: {source: {kept, filtered, quarantined, duplicates}}. `in_a_run`: a writer's
    run counts (DuckDB spills into the writers' scratch folder), not a reader."""
    sources = [source for source, needs in NEEDS.items() if all(n in states for n in needs)]
    counted = _count(settings, settings.consent_policy, sources, states, beside_a_build=in_a_run)
    return {source: {k: int(cast(int, row[k])) for k in COUNTS} for source, row in counted.items()}


def verify(settings: Settings, catalog: TableCatalog, recorded: Mapping[str, Mapping[str, object]],
           run_id: str, *, in_a_run: bool = False) -> None:
    """Recount each source of `recorded` ({source: its figures as a run recorded them}) from the current
    tables and raise a ReconciliationError listing every term that disagrees."""
    needed = dict.fromkeys(n for source in recorded for n in NEEDS[source])
    states = {name: require_state(catalog, TABLES[name]) for name in needed}
    recounted = recount(settings, states, in_a_run=in_a_run)
    off = [f"{source}: {term} recorded {int(cast(int, figures[term])):,} but recounted {recounted[source][term]:,}"
           for source, figures in recorded.items() for term in COUNTS
           if int(cast(int, figures[term])) != recounted[source][term]]
    if off:
        raise ReconciliationError(
            f"the reconciliation of run {run_id} does not match the tables: " + "; ".join(off)
            + f" (recounted with consent_policy = {settings.consent_policy!r} by sql/reconcile/<source>.sql). "
            "A table changed after the run (another writer), the consent policy is not the run's, or the run "
            "counted wrongly; `stedi run --full-refresh` rebuilds the tables and their figures")


def _sql(source: str) -> str:
    return resources.files("stedi").joinpath("sql", "reconcile", f"{source}.sql").read_text("utf-8")


def last_counts(catalog: TableCatalog) -> dict[str, dict[str, object]]:
    """The counts the last run recorded, with what they were counted from (empty if none)."""
    state = catalog.state(TABLES["reconciliation"])
    try:
        known = json.loads(state.summary.get(RECONCILED, "{}")) if state else {}
    except ValueError:
        return {}
    return known if isinstance(known, dict) else {}


def record(catalog: TableCatalog, run_id: str, figures: list[Figures],
           kept: Mapping[str, Mapping[str, object]]) -> None:
    """Append a run's figures to the `reconciliation` table, with the counts kept for the next run
    (`Reconciliation.to_keep`) in its snapshot."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = TABLES["reconciliation"]
    when = datetime.now(UTC).isoformat(timespec="microseconds")  # two runs can end within a second
    rows = [{"run_id": run_id, "run_at": when, **{k: v for k, v in asdict(f).items()},
             "balanced": str(f.balanced).lower()} for f in figures]
    from stedi.types import arrow_type

    arrow = pa.table({c.name: pa.array([r[c.name] for r in rows], arrow_type(c.type)) for c in table.columns})
    uri = f"{catalog.data_location(table)}/{run_id}.parquet"
    fs, path = open_uri(uri, catalog.s3)
    fs.create_dir(path.rsplit("/", 1)[0], recursive=True)
    pq.write_table(arrow, path, compression="zstd", filesystem=fs)
    catalog.append(table, [uri], properties={RECONCILED: json.dumps(kept, sort_keys=True)}, base="any")
