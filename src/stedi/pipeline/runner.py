"""`stedi run`: landing -> trusted -> curated, each table in one atomic Iceberg commit.

1. Landing: each source's landed files are read and validated once (stedi.landing.reader); valid
   records become the landing table, the rest its quarantine table. A `fail` rule or too much
   quarantined stops the run here, before anything is committed.
2. Derived tables: the engine runs each table's `.sql`, a table starting as soon as its inputs are built.
3. Reconciliation: every source's records are accounted for by figures the build counted (the last
   run's figures plus this run's change, stedi.pipeline.reconcile.BuildCounts), appended to the
   history (then, under `verify_reconciliation = "always"`, recounted from the tables:
   stedi.pipeline.reconcile.verify). Each quality rule's count over each source's landed records is
   appended to the history `quality_checks` (stedi.pipeline.rules).

A table is rebuilt only when what it is built from changed: its SQL, its columns, the landed files and
quality checks (landing tables) or the content of its input tables. That fingerprint is stored in the
snapshot, so a rerun with no new landing data commits nothing and every table keeps its rows. When
the inputs only grew (new landed files), a landing table reads only the new files and a derived table
whose SQL is linear in the grown inputs runs it over their new rows: both grow by an APPEND snapshot.
"""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict

from stedi import faults
from stedi.config import Settings
from stedi.engines import as_tasks, check_settings, open_engine
from stedi.errors import LandingError, QualityError
from stedi.iceberg.catalog import TableCatalog
from stedi.landing.zone import LandingZone, open_landing
from stedi.pipeline.derived import DerivedStep
from stedi.pipeline.history import RunRecord, new_run_id, record_run
from stedi.pipeline.keys import ChangedKeys
from stedi.pipeline.landing import LandingStep
from stedi.pipeline.reconcile import COUNTED, BuildCounts, Change, last_counts, record, recount, verify
from stedi.pipeline.report import Progress, RunReport, TableRun
from stedi.pipeline.rules import record_rule_counts
from stedi.privacy.keys import key_id, load_key
from stedi.tables import build_order


def run(settings: Settings, catalog: TableCatalog, select: list[str] | None = None, full_refresh: bool = False,
        progress: Progress | None = None, zone: LandingZone | None = None) -> RunReport:
    """Build the tables; the caller holds the writer lock (stedi.api). `zone`: the landing zone, with the
    suppression list that keeps erased people out of files found in it."""
    history = RunRecord(new_run_id(), settings.engine, settings.consent_policy)
    with catalog.cached():
        try:
            report = _run(settings, catalog, select, full_refresh, progress, zone, history)
        except Exception as exc:  # recorded in the history, then raised as it was
            with contextlib.suppress(Exception):
                record_run(catalog, history, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            raise
        record_run(catalog, history)
        return report


def _run(settings: Settings, catalog: TableCatalog, select: list[str] | None, full_refresh: bool,
         progress: Progress | None, zone: LandingZone | None, history: RunRecord) -> RunReport:
    started = time.perf_counter()
    say = progress or (lambda _msg: None)
    order = build_order(select)  # validates the selected names first
    check_settings(settings)  # the landing reader, the reconciliation and the PII guard run on DuckDB
    if settings.engine == "spark" and settings.remote:
        _check_spark_s3(settings)  # before any work: the session would fail only after the landing read
    zone = zone or open_landing(settings)
    landed = zone.files()
    for uri, why in zone.unread:  # said on every run, until the file is moved
        say(f"warning: {uri} is not read: {why}")
    if not landed:
        raise LandingError(f"the landing zone {zone.root} is empty; land data first with "
                           "`stedi ingest PATH` (or make some with `stedi generate --out DIR`)")
    # The pseudonym key is checked first: a run that needs it and has none stops before any work.
    key = load_key(settings) if any("pseudonyms" in t.uses for t in order) else None
    history.key_id = key_id(key) if key is not None else None
    run_id = history.run_id
    number = {t.name: f"[{i}/{len(order)}]" for i, t in enumerate(order, start=1)}

    # The engine starts while the landing step checks what is up to date: a Spark session takes seconds to
    # come up. On Spark the landed files are then read by its executors, batch by batch.
    with ThreadPoolExecutor(max_workers=1) as starter:
        starting = starter.submit(open_engine, settings)
        tasks = (lambda: as_tasks(starting.result())) if settings.engine == "spark" else None
        landing = LandingStep(settings, catalog, zone, run_id, full_refresh, say, tasks)
        try:
            results = history.results
            results.update(landing.build([t for t in order if t.kind == "landing"], landed, number))
        except BaseException:
            with contextlib.suppress(Exception):
                starting.result().close()
            raise
        engine = starting.result()
    states = history.states = landing.states  # the derived tables join it as they are built

    counts: dict[str, dict[str, int]] = {}
    try:
        # --full-refresh trusts nothing kept from earlier runs, the last figures included
        counting = BuildCounts(engine, settings.consent_policy, last_counts(catalog), reuse=not full_refresh)
        build = DerivedStep(settings, catalog, engine, run_id, full_refresh, states, say, key, landing.added)
        engine.register_rows("run_settings", [("consent_policy", "string")], [(settings.consent_policy,)])
        for name, state in states.items():
            build.register(name, state)
        derived = [t for t in order if t.kind == "derived"]
        build.all(derived, number, results)
        if engine.grows_tables:
            changes = {name: Change(landing.before[name], files) for name, files in landing.added.items()}
            changes.update({name: Change(was, build.added[name]) for name, was in build.before.items()})
            changed = build.changed() if "customer_landing" in landing.added else ChangedKeys()
            counts = counting.count(states, changes, changed)
    finally:
        engine.close()
    if not engine.grows_tables:
        # An engine that builds tables side by side (Spark) cannot be asked for the change table by table:
        # the terms are counted on DuckDB over the committed tables, by sql/reconcile/<source>.sql.
        counts = {source: {k: terms[k] for k in COUNTED}
                  for source, terms in recount(settings, states, in_a_run=True).items()}
    suppressed = Counter[str]()
    for entry in landed:
        suppressed[entry.source] += entry.suppressed or 0
    figures = counting.figures(states, counts, landing.read, landing.warnings, suppressed)
    faults.point("run:reconciled")
    counted = {f.source for f in figures}
    rules = [c for c in landing.rule_counts() if c.source in counted]
    if figures:
        record(catalog, run_id, figures, counting.to_keep(figures))
        record_rule_counts(catalog, run_id, rules)
    report = RunReport(run_id, engine.name, [results[t.name] for t in order], time.perf_counter() - started,
                       figures, landing.checks, rules)
    off = [f for f in figures if not f.balanced]
    if off:
        raise QualityError("the records do not balance: " + "; ".join(
            f"{f.source}: read {f.read:,} != kept {f.kept:,} + filtered {f.filtered:,} + quarantined "
            f"{f.quarantined:,} + duplicates {f.duplicates:,}" for f in off)
            + " (the figures are in `stedi reconcile`); this is a bug in stedi: please report it")
    if figures and settings.verify_reconciliation == "always":  # the figures are recorded: the error may name them
        verify(settings, catalog, {f.source: asdict(f) for f in figures}, run_id, in_a_run=True)
    return report


def _check_spark_s3(settings: Settings) -> None:
    try:
        from stedi.engines.spark import check_s3_now
    except ImportError:
        return  # open_engine reports the missing extra
    check_s3_now(settings)


__all__ = ["RunReport", "TableRun", "run"]
