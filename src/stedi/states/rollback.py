"""`stedi rollback --run ID | --tag NAME`: every data table set back to a past state, as new snapshots.

Each table's new snapshot holds exactly the data files of the state's snapshot (and its properties:
the fingerprint and what the landing tables had read), so nothing is copied and the history stays: the
rollback is itself recorded in `runs`, and can be undone by rolling back to the run before it. A table
not built in that state is emptied (the next run builds it). The reconciliation of the restored tables
is counted again from them. The next `stedi run` reads the landed files the restored state had not
read, so rollback then run converges on what a run over everything landed builds.

Refused, before anything changes:
- a state from before an erasure (restoring it would bring the person back: "erasure wins"), unless it
  is a tagged state the erasure has rewritten;
- a state whose snapshots were expired or whose data files are gone.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING

from stedi import faults
from stedi.errors import StateError
from stedi.iceberg.catalog import FINGERPRINT, TableState
from stedi.iceberg.refs import snapshot_state
from stedi.pipeline.history import RunRecord, new_run_id, record_run
from stedi.pipeline.reconcile import Figures
from stedi.pipeline.report import Progress, RunReport, TableRun
from stedi.states.resolve import DATA_TABLES, LakeState, Recorded, check, parse_time, tag_states
from stedi.storage.files import open_uri

if TYPE_CHECKING:
    from stedi.config import Settings
    from stedi.iceberg.catalog import TableCatalog
    from stedi.storage.files import Storage


def last_erasure(storage: Storage) -> tuple[str, datetime] | None:
    """The latest erasure's receipt id and when it started (its receipt's time for older receipts)."""
    from stedi.privacy.erasure import AUDIT_LOG

    try:
        lines = storage.read_bytes(AUDIT_LOG).decode("utf-8").splitlines()
    except FileNotFoundError:
        return None
    entries = [json.loads(line) for line in lines if line.strip()]
    if not entries:
        return None
    last = entries[-1]
    when = parse_time(last.get("started") or last["at"])
    assert when is not None
    return last["receipt_id"], when


def check_not_before_erasure(storage: Storage, state: LakeState, runs: list[Recorded]) -> None:
    """Refuse a state an erasure has not cleaned: a run that started before the latest erasure did, or a
    tag made before it that it did not rewrite."""
    erasure = last_erasure(storage)
    if erasure is None:
        return
    receipt, started = erasure
    why = (f"{state.label} is from before erasure {receipt} (started {started.isoformat()}): restoring it would "
           "bring the people erased back, so it is refused (erasure wins: docs/history.md)")
    if state.tag is not None:
        for mark in state.marks.values():
            made = parse_time(mark.tagged_at) if mark.tagged_at else None
            if mark.erasure != receipt and (made is None or made < started):
                raise StateError(why)
        return
    run = next((r for r in runs if r.run_id == state.run_id), None)
    begun = parse_time(run.started_at) if run is not None else None
    if begun is None or begun < started:
        raise StateError(why)


def rollback(settings: Settings, catalog: TableCatalog, state: LakeState, runs: list[Recorded],
             progress: Progress | None = None) -> RunReport:
    """Restore `state` (the caller holds the writer lock and resolved it); recorded as a run."""
    say = progress or (lambda _m: None)
    started = time.perf_counter()
    check_not_before_erasure(settings.storage(), state, runs)
    check(catalog, state, runs, tag_states(catalog, runs))
    targets: dict[str, TableState] = {}
    for name, snapshot in state.snapshots.items():
        target = snapshot_state(catalog, next(t for t in DATA_TABLES if t.name == name), snapshot)
        if target is None:
            raise StateError(f"{state.label} cannot be restored: table {name}'s snapshot {snapshot} has been expired")
        _check_files(catalog, state, target)
        targets[name] = target
    policy = next((r.consent_policy for r in runs if r.run_id == state.run_id), None) or settings.consent_policy
    history = RunRecord(new_run_id(), settings.engine, policy, command="rollback")
    say(f"restoring {state.label} (rollback {history.run_id}) ...")
    try:
        for table in DATA_TABLES:
            t0 = time.perf_counter()
            now, target = catalog.state(table), targets.get(table.name)
            if target is None and (now is None or not now.files):
                continue
            if target is not None and now is not None and now.snapshot_id == target.snapshot_id:
                history.results[table.name] = TableRun(table.name, table.zone, "up to date", now.rows, now.rows, 0.0)
                history.states[table.name] = now
                continue
            files = target.files if target is not None else []
            props = {k: v for k, v in (target.summary if target else {}).items()
                     if k.startswith("stedi.") and k != FINGERPRINT}
            fingerprint = target.fingerprint if target else None
            if now is None:
                new = catalog.replace(table, files, fingerprint, props, base=None, keep_files=True)
            else:  # the files that differ (an appended table's state shares most of its files with today's)
                removed = [f for f in now.files if f not in set(files)]
                added = [f for f in files if f not in set(now.files)]
                new = catalog.rewrite(table, removed, added, fingerprint, props, base=now.snapshot_id,
                                      keep_files=True)
            history.results[table.name] = TableRun(table.name, table.zone, "restored", target.rows if target else 0,
                                                   new.rows, time.perf_counter() - t0)
            history.states[table.name] = new
            say(f"      {table.name} restored: {new.rows:,} rows")
            faults.point("rollback:table-restored")
        figures = _reconcile(settings, catalog, policy, history)
    except Exception as exc:
        record_run(catalog, history, error=str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise
    record_run(catalog, history)
    return RunReport(history.run_id, "rollback", list(history.results.values()), time.perf_counter() - started,
                     figures)


def _check_files(catalog: TableCatalog, state: LakeState, target: TableState) -> None:
    import pyarrow.fs as pafs

    for uri in target.files:
        fs, path = open_uri(uri, catalog.s3)
        if fs.get_file_info(path).type != pafs.FileType.File:
            raise StateError(f"{state.label} cannot be restored: table {target.name}'s data file {uri} is gone")


def _reconcile(settings: Settings, catalog: TableCatalog, policy: str, history: RunRecord) -> list[Figures]:
    """The figures of the restored tables, counted afresh from them under the state's consent policy (no
    counts are kept for the next run: it counts every source whole), and the rule counts the restored
    landing tables keep (the rules as defined now name their action and reason)."""
    from stedi.landing.quality import load_checks
    from stedi.pipeline.plan import READ, WARNINGS
    from stedi.pipeline.reconcile import TERMS, record, recount
    from stedi.pipeline.rules import counts_of, record_rule_counts, rule_counts
    from stedi.tables import quarantine_table

    states = {t.name: s for t in DATA_TABLES if (s := catalog.state(t)) is not None}
    figures = []
    for source, counts in recount(replace(settings, consent_policy=policy), states, in_a_run=True).items():
        landing, quarantine = states[TERMS[source].landing], states[quarantine_table(source).name]
        read = int(landing.summary.get(READ, landing.rows + quarantine.rows))
        figures.append(Figures(source, read, counts["kept"], counts["filtered"], counts["quarantined"],
                               counts["duplicates"], int(landing.summary.get(WARNINGS, 0)), 0))
    if figures:
        record(catalog, history.run_id, figures, {})
        checks = load_checks(settings)
        kept = {f.source: counts_of(states[TERMS[f.source].landing]) for f in figures}  # None: kept by no count
        record_rule_counts(catalog, history.run_id, [c for source, counts in kept.items() if counts is not None
                                                     for c in rule_counts(source, checks, counts)])
    return figures
