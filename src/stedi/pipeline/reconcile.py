"""The reconciliation: for every source and run, read = kept + filtered + quarantined + duplicates.

`stedi run` records the figures its build counted, each term where it happens, with no second pass over
the data (BuildCounts): `read` is what the landing reader counted in the landed files, `quarantined` and
`kept` the committed row counts of the quarantine and trusted tables. `duplicates` and `filtered` (as
sql/reconcile/<source>.sql defines them) are counted on the build's engine, each by its own query, never
as the remainder of the others, so the balance can fail. They are cumulative: a source's figures are the
last run's (kept in the history's snapshot with the snapshots they were counted from) plus what this run
changed, counted over the new landed rows (new distinct records, and those the filter leaves out) and over
the rows of the keys whose filter rows changed (changed customers or devices, and the keys the filter
table grew by), before and after. A source whose last figures are not of the very tables the run started
from (first run, --full-refresh, a table rebuilt, compacted or changed by another writer, another consent
policy) is counted over its whole tables, once. With Spark, which builds tables side by side, the terms
are counted afterwards on DuckDB over the committed tables by sql/reconcile/<source>.sql.

A run whose figures do not balance fails, after its figures are appended to the `reconciliation` table
(the history). The verification (`stedi reconcile --verify`, and every run under
`verify_reconciliation = "always"`) recounts every source from the current tables with
sql/reconcile/<source>.sql (`recount`, independent of the build's counting) and compares the counts with
the figures the run recorded (`verify`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from importlib import resources
from typing import cast

from stedi.config import Settings
from stedi.engines import open_query_engine
from stedi.engines.base import Engine
from stedi.errors import ReconciliationError
from stedi.iceberg.catalog import TableCatalog, TableState, require_state
from stedi.pipeline.keys import ChangedKeys
from stedi.sqltext import quote
from stedi.tables import TABLES, KeySpace, quarantine_table

RECONCILED = "stedi.reconciled"  # reconciliation snapshot property: {source: {"from": key, filtered, duplicates}}
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


# What a source's figures count in: its landing table, what one distinct record of it is (customer: an
# email; a reading: all its columns), the landing column the filter joins on, the table it joins (the
# consent and curation rules) and that table's column, and the reading's time (compared with the consent
# date under since_consent). The terms are those of sql/reconcile/<source>.sql, counted another way.
@dataclass(frozen=True)
class _Terms:
    landing: str
    unit: tuple[str, ...]
    key: str
    filter: str
    on: str
    time: str | None
    space: KeySpace


TERMS = {
    "customer": _Terms("customer_landing", ("email",), "email", "customer_trusted", "email", None, "customer"),
    "accelerometer": _Terms("accelerometer_landing", ("user", "timestamp", "x", "y", "z"), "user",
                            "customer_trusted", "email", "timestamp", "customer"),
    "step_trainer": _Terms("step_trainer_landing", ("sensorReadingTime", "serialNumber", "distanceFromObject"),
                           "serialNumber", "customers_curated", "serialNumber", "sensorReadingTime", "device"),
}
TRUSTED = {"customer": "customer_trusted", "accelerometer": "accelerometer_trusted",
           "step_trainer": "step_trainer_trusted"}
VERSION = "2"  # of the counting: figures kept by another version are counted afresh
COUNTED = ("filtered", "duplicates")  # the terms carried from run to run (the others are row counts)


@dataclass(frozen=True)
class Change:
    """A table the run grew or updated: its state before the run and the files it gained (a landing
    table's new rows, a derived table's growth). A table not among the changes held before the run what
    it holds now, or was rebuilt whole (then its snapshot is new, and no figures were counted from it)."""

    before: TableState
    added: list[str]


def _counted_from(source: str, snapshots: Mapping[str, int | None], consent_policy: str) -> str:
    """What a source's figures are counts of: the counting, the consent policy and the snapshots of the
    tables counted in (a snapshot fixes a table's content; its file list as a run sees it right after its
    commit can hold empty files that later scans leave out)."""
    terms = TERMS[source]
    spec = [VERSION, consent_policy, [snapshots[n] for n in (terms.landing, terms.filter)]]
    return hashlib.sha256(json.dumps(spec).encode()).hexdigest()


class BuildCounts:
    """The figures of a run, counted on the build's engine (DuckDB) from what the run changed.

    `read` is the landing reader's count, `quarantined` and `kept` the committed row counts of the
    quarantine and trusted tables. `duplicates` and `filtered` are counted directly, each by its own
    query, never as a remainder of the others: a source whose last figures (`known`, the history's
    snapshot property) were counted from exactly the tables this run started from adds to them the
    change, counted over the new landed rows and the rows of the keys whose filter rows changed, before
    and after; any other source (first run, --full-refresh, a table rebuilt or rewritten, another
    consent policy) is counted over its whole tables, once."""

    def __init__(self, engine: Engine, consent_policy: str, known: Mapping[str, Mapping[str, object]],
                 reuse: bool = True) -> None:
        self._engine, self._policy, self._known, self._reuse = engine, consent_policy, known, reuse
        self._from: dict[str, str] = {}  # what each source's figures of this run are counted from

    def count(self, states: Mapping[str, TableState], changes: Mapping[str, Change], changed: ChangedKeys
              ) -> dict[str, dict[str, int]]:
        """{source: {filtered, duplicates}} for every source whose tables are all in `states` (and
        registered in the engine at those states). `changes`: what the run did to each table it changed;
        `changed`: the customers and devices whose rows the derived tables computed again."""
        counts = {}
        for source, needs in NEEDS.items():
            if not all(n in states for n in needs):
                continue
            terms = TERMS[source]
            tables = (terms.landing, terms.filter)
            now = {n: states[n].files for n in tables}
            was = {n: changes[n].before.files if n in changes else now[n] for n in tables}
            self._from[source] = _counted_from(source, {n: states[n].snapshot_id for n in tables}, self._policy)
            before = {n: changes[n].before.snapshot_id if n in changes else states[n].snapshot_id for n in tables}
            last = self._known.get(source)
            if self._reuse and last and last.get("from") == _counted_from(source, before, self._policy):
                if not any(n in changes for n in tables):
                    counts[source] = {k: int(cast(int, last[k])) for k in COUNTED}
                    continue
                new = changes[terms.landing].added if terms.landing in changes else []
                grown = changes[terms.filter].added if terms.filter in changes else []
                delta = self._delta(terms, was, states, new, self._affected(terms, changed, grown))
                counts[source] = {k: int(cast(int, last[k])) + delta[k] for k in COUNTED}
            else:  # from nothing: every landed row is new
                counts[source] = self._delta(terms, {n: [] for n in now}, states, now[terms.landing], None)
        return counts

    def _affected(self, terms: _Terms, changed: ChangedKeys, grown: list[str]) -> str:
        """A relation of the keys whose rows of the filter table may differ from before the run: the
        changed keys and the keys of the rows it grew by."""
        from stedi.tables import TABLES

        keys = set(changed.customers if terms.space == "customer" else changed.devices)
        if grown:
            self._engine.register_parquet("_grown_filter", grown, TABLES[terms.filter])
            keys |= {k for (k,) in self._engine.rows(f"SELECT DISTINCT {quote(terms.on)} FROM _grown_filter")
                     if k is not None}
        name = f"_affected_{terms.space}"
        self._engine.register_rows(name, [("value", "string")], [(k,) for k in sorted(keys)])
        return name

    def _delta(self, terms: _Terms, was: Mapping[str, list[str]], states: Mapping[str, TableState],
               new: list[str], affected: str | None) -> dict[str, int]:
        """What `filtered` and `duplicates` gained from `was` (the files of the landing and filter tables
        before) to `states`, given `new` (the landing table's new files: it is its files before and these)
        and `affected` (a relation of the keys outside of which the filter table is unchanged)."""
        from stedi.tables import TABLES

        engine, landing, key = self._engine, TABLES[terms.landing], quote(terms.key)
        filtered = duplicates = 0
        if affected is not None:  # the distinct records of the affected keys, before and after
            engine.register_parquet("_was_landing", was[terms.landing], landing, (terms.key, affected))
            engine.register_parquet("_now_landing", states[terms.landing].files, landing, (terms.key, affected))
            engine.register_parquet("_was_filter", was[terms.filter], TABLES[terms.filter], (terms.on, affected))
            engine.register_parquet("_now_filter", states[terms.filter].files, TABLES[terms.filter],
                                    (terms.on, affected))
            [(after, before)] = engine.rows(
                f"SELECT ({self._filtered(terms, '_now_landing', '_now_filter')}), "
                f"({self._filtered(terms, '_was_landing', '_was_filter')})")
            filtered += after - before
        if new:
            # the distinct records that are new (in no row landed before), and of those the ones the
            # filter leaves out whose key is not affected (the affected ones are counted above)
            columns = ", ".join(quote(c) for c in terms.unit)
            engine.register_parquet("_new_landing", new, landing)
            engine.register_parquet("_old_landing", was[terms.landing], landing)
            nulls = f" OR {key} IS NULL" if len(terms.unit) > 1 else ""
            unaffected = f"({key} IS NULL OR {key} NOT IN (SELECT value FROM {affected}))" if affected else "true"
            distinct = f"SELECT DISTINCT {columns} FROM _new_landing{self._not_null(terms)}"
            if was[terms.landing]:
                distinct = (f"{distinct} EXCEPT SELECT {columns} FROM _old_landing "
                            f"WHERE {key} IN (SELECT {key} FROM _new_landing){nulls}")
            [(rows, units, left_out)] = engine.rows(
                f"SELECT (SELECT count(*) FROM _new_landing), count(*), "
                f"count(*) FILTER (WHERE {unaffected} AND {self._fails(terms)}) "
                f"FROM ({distinct}) AS r {self._through(terms, terms.filter)}")
            duplicates += rows - units
            filtered += left_out
        return {"filtered": filtered, "duplicates": duplicates}

    @staticmethod
    def _not_null(terms: _Terms) -> str:
        # a customer is an email: count(distinct email) leaves out the records without one
        return f" WHERE {quote(terms.key)} IS NOT NULL" if len(terms.unit) == 1 else ""

    def _filtered(self, terms: _Terms, landing: str, filter: str) -> str:
        """The distinct records of `landing` the filter (over `filter`) leaves out."""
        columns = ", ".join(quote(c) for c in terms.unit)
        return (f"SELECT count(*) FROM (SELECT DISTINCT {columns} FROM {landing}{self._not_null(terms)}) AS r "
                f"{self._through(terms, filter)} WHERE {self._fails(terms)}")

    @staticmethod
    def _through(terms: _Terms, filter: str) -> str:
        """Joins each record `r` to what lets it through `filter` (sql/trusted/*.sql): the filter's rows of
        its key, as one row per key (`g`) with the earliest consent date, so no record is counted twice
        (a device can have several owners), and the run's settings (`s`). A record passes when a row
        of its key has a consent date at or before its time: when the earliest one is."""
        since = f"min({quote('shareWithResearchAsOfDate')})" if terms.time is not None else "NULL"
        return (f"LEFT JOIN (SELECT {quote(terms.on)} AS _key, {since} AS _since FROM {filter} GROUP BY 1) AS g "
                f"ON g._key = r.{quote(terms.key)} CROSS JOIN run_settings AS s")

    @staticmethod
    def _fails(terms: _Terms) -> str:
        """The filter leaves record `r` out (with `_through`): no row of its key, or (under since_consent)
        none consented by the record's time."""
        if terms.time is None:
            return "g._key IS NULL"
        return (f"(g._key IS NULL OR (s.consent_policy <> 'any' AND "
                f"(r.{quote(terms.time)} >= g._since) IS NOT TRUE))")

    def figures(self, states: Mapping[str, TableState], counts: Mapping[str, Mapping[str, int]],
                read: Mapping[str, int], warnings: Mapping[str, int], suppressed: Mapping[str, int]
                ) -> list[Figures]:
        """The figures of every source counted and read in this run (a --select run may not have all)."""
        return [Figures(source, read[source], states[TRUSTED[source]].rows, counted["filtered"],
                        states[quarantine_table(source).name].rows, counted["duplicates"],
                        warnings.get(source, 0), suppressed.get(source, 0))
                for source, counted in counts.items() if source in read]

    def to_keep(self, figures: list[Figures]) -> dict[str, Mapping[str, object]]:
        """The figures for the next run: the known ones, updated with this run's balanced figures."""
        kept = dict(self._known)
        kept.update({f.source: {"from": self._from[f.source], **{k: getattr(f, k) for k in COUNTED}}
                     for f in figures if f.balanced and f.source in self._from})  # (not when recounted)
        return kept


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
    table = TABLES["reconciliation"]
    when = datetime.now(UTC).isoformat(timespec="microseconds")  # two runs can end within a second
    rows = [{"run_id": run_id, "run_at": when, **{k: v for k, v in asdict(f).items()},
             "balanced": str(f.balanced).lower()} for f in figures]
    catalog.append_rows(table, rows, run_id, properties={RECONCILED: json.dumps(kept, sort_keys=True)})
