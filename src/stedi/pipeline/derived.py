"""The derived tables of a run: each computed from its `.sql` by the engine and committed, or kept when
its fingerprint is unchanged, or grown by the rows its inputs gained (incremental maintenance)."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Literal

from stedi import faults
from stedi.config import Settings
from stedi.engines.base import Engine
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.pipeline.keys import ChangedKeys, changed_keys, relation
from stedi.pipeline.plan import DEFINITION, INPUTS, content_id, fingerprint_of, table_sql
from stedi.pipeline.report import Progress, TableRun
from stedi.privacy.guard import pii_guard
from stedi.privacy.keys import key_id, pseudonym
from stedi.sqltext import quote
from stedi.tables import Table


class DerivedStep:
    """Builds derived tables: skips one whose fingerprint is unchanged, else computes and commits it."""

    def __init__(self, settings: Settings, catalog: TableCatalog, engine: Engine, run_id: str, full_refresh: bool,
                 states: dict[str, TableState], say: Progress, key: bytes | None,
                 added: dict[str, list[str]]) -> None:
        self.settings, self.catalog, self.engine = settings, catalog, engine
        self.run_id, self.full_refresh, self.say = run_id, full_refresh, say
        self.states = states
        self.key = key
        self.added = dict(added)  # tables appended this run (landing and derived): their new data files
        # what each table changed this run held before (content_id of its files): a table built from that
        # can follow the change
        self.was = {name: content_id(sorted(set(states[name].files) - set(files))) for name, files in added.items()}
        # tables whose rows of changed keys changed this run (customer_landing: the new customer records)
        self.keyed = {"customer_landing"} & set(added)
        self._keys: ChangedKeys | None = None
        # the state before this run of each derived table appended or updated (the reconciliation counts
        # what changed between the two)
        self.before: dict[str, TableState] = {}
        self.can_grow = engine.grows_tables  # else every changed table is rebuilt
        self._commit = threading.Lock()  # one catalog commit at a time (SQLite, and simpler to reason about)

    def register(self, name: str, state: TableState, only: tuple[str, str] | None = None) -> None:
        from stedi.tables import TABLES

        self.engine.register_parquet(name, state.files, TABLES[name], only)

    def _register_pseudonyms(self, plan: _Plan | None) -> None:
        """email -> customer_key for the curated customers, in the engine's memory only. A maintained table
        needs only those its new and recomputed rows can name: the changed customers, and the curated
        customers the new rows of its inputs meet (an HMAC in Python each: 0.2 s for all of them at x100)."""
        from stedi.tables import KEY_SPACES, TABLES

        assert self.key is not None
        met = ["true"]
        if plan is not None:
            met = [f"email IN (SELECT value FROM {relation('customer')})"] if plan.keyed else ["false"]
            if plan.keyed:
                self.changed()
            for name in plan.grown:
                key = TABLES[name].key or ""
                column = {"customer": "email", "device": quote("serialNumber")}.get(KEY_SPACES.get(key, ""))
                if column is None:  # an input keyed otherwise: every curated customer
                    met = ["true"]
                    break
                self.engine.register_parquet(f"_new_{name}", self.added[name], TABLES[name])
                met.append(f"{column} IN (SELECT {quote(key)} FROM {quote(f'_new_{name}')})")
        emails = [e for (e,) in self.engine.rows(
            f"SELECT DISTINCT email FROM customers_curated WHERE ({' OR '.join(met)}) AND email IS NOT NULL")]
        self.engine.register_rows("pseudonyms", [("email", "string"), ("customer_key", "string")],
                                  [(e, pseudonym(self.key, e)) for e in sorted(emails)])

    def all(self, tables: list[Table], number: dict[str, str], results: dict[str, TableRun] | None = None
            ) -> dict[str, TableRun]:
        """Each table starts as soon as its inputs are built (with an engine that builds in parallel,
        step_trainer_trusted can overlap accelerometer_trusted, and so on). `results` gains each table's
        as it is done (a failed run's history says what it finished)."""
        results = {} if results is None else results
        waiting = list(tables)
        with ThreadPoolExecutor(max_workers=self.engine.parallel_builds) as pool:
            running: dict[Future[TableRun], Table] = {}
            while waiting or running:
                ready = [t for t in waiting if all(i in self.states for i in t.inputs)]
                for table in ready[: self.engine.parallel_builds - len(running)]:
                    self.say(f"{number[table.name]} {table.name} ...")
                    running[pool.submit(self.table, table)] = table
                    waiting.remove(table)
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    del running[future]
                    result = future.result()  # re-raises a failed build; the pool waits for the rest
                    results[result.table] = result
        return results

    def table(self, table: Table) -> TableRun:
        t0 = time.perf_counter()
        sql = table_sql(table)
        # An input is named by its fingerprint, which fixes its content (so compacting it rebuilds nothing);
        # by its snapshot when another writer left none.
        inputs: list[object] = [(name, self.states[name].fingerprint or self.states[name].snapshot_id)
                                for name in table.inputs]
        rows_in = sum(self.states[name].rows for name in table.inputs)
        settings: list[object] = []
        if "run_settings" in table.uses:
            settings.append(("consent_policy", self.settings.consent_policy))
        if "pseudonyms" in table.uses:
            assert self.key is not None
            settings.append(("pseudonym_key", key_id(self.key)))
        fingerprint = fingerprint_of(table, sql, inputs + settings)
        definition = fingerprint_of(table, sql, settings)
        with self._commit:
            # the table first (a table of another layout is dropped and created anew there), then its state
            folder = f"{self.catalog.data_location(table)}/{self.run_id}"
            state = self.catalog.state(table)
        status: Status = "up to date"
        if state is None or state.fingerprint != fingerprint or self.full_refresh:
            props = {INPUTS: json.dumps({n: content_id(self.states[n].files) for n in table.inputs},
                                        sort_keys=True), DEFINITION: definition}
            plan = None if self.full_refresh or state is None else self._plan(table, state, definition)
            if "pseudonyms" in table.uses:
                self._register_pseudonyms(plan)
            removed: list[str] = []
            grown: list[str] = []
            if plan is not None:
                assert state is not None
                # (no input changed at all: every input has the very files it was built from, rows were
                # added but none reached a table in between, so the table is already right)
                removed, files_written = self._recompute(table, sql, state, folder) if plan.keyed else ([], [])
                grown = self._grow(table, sql, plan.grown, state, folder, plan.keyed) if plan.grown else []
                files_written += grown
            else:
                files_written, _rows = self.engine.write_parquet(sql, table, folder)
            if table.research:
                pii_guard(self.settings, table, files_written, self.states)  # before the commit
            on = state.snapshot_id if state else None  # the commit is a compare-and-swap on it
            with self._commit:
                if plan is not None:
                    assert state is not None
                    self.was[table.name] = content_id(state.files)
                    self.before[table.name] = state
                    self.added[table.name] = grown
                    if plan.keyed:
                        self.keyed.add(table.name)
                        state = self.catalog.rewrite(table, removed, files_written, fingerprint, props, base=on)
                        status = "updated"
                    else:
                        state = self.catalog.append(table, files_written, fingerprint, props, base=on)
                        status = "appended"
                else:
                    state = self.catalog.replace(table, files_written, fingerprint, props, base=on)
                    status = "built"
            faults.point("run:derived-committed")
        self.register(table.name, state)
        self.states[table.name] = state
        seconds = time.perf_counter() - t0
        self.say(f"      {table.name} {status}: {rows_in:,} rows in, {state.rows:,} rows out ({seconds:.2f} s)")
        return TableRun(table.name, table.zone, status, rows_in, state.rows, seconds)

    # -- incremental maintenance -------------------------------------------------------------------
    def _plan(self, table: Table, state: TableState, definition: str) -> _Plan | None:
        """How `table` can follow what changed in its inputs since it was built, or None when it must be
        rebuilt: an input that was rebuilt (or changed in a way this run did not make), a new SQL or new
        settings, or an engine that cannot re-point relations."""
        if not self.can_grow or state.summary.get(DEFINITION) != definition:
            return None
        try:
            built_from = json.loads(state.summary.get(INPUTS, ""))
        except ValueError:
            return None
        grown, keyed = [], False
        for name in table.inputs:
            if built_from.get(name) == content_id(self.states[name].files):
                continue  # unchanged
            if name not in self.was or built_from.get(name) != self.was[name]:
                return None  # not what this run started from
            keyed = keyed or name in self.keyed
            if self.added.get(name):
                if name in table.linear_in:
                    grown.append(name)
                elif name not in WITHIN_KEYS:  # new rows the SQL must see with the rest of their key
                    return None
        if keyed and (table.key is None or not self.changed()):
            return None if table.key is None else _Plan(grown, False)
        return _Plan(grown, keyed)

    def changed(self) -> ChangedKeys:
        """The customers and devices this run changed (stedi.pipeline.keys), found once."""
        if self._keys is None:
            self._keys = changed_keys(self.engine, self.added.get("customer_landing", []))
            self._keys.register(self.engine, self.key)
        return self._keys

    def _recompute(self, table: Table, sql: str, state: TableState, folder: str) -> tuple[list[str], list[str]]:
        """Copy-on-write of the changed keys: the files of `table` that hold a row of a changed key are
        written again without those rows and with the key's rows computed anew by the table's SQL over its
        inputs' rows of the changed keys. Returns (the files replaced, the files written)."""
        from stedi.tables import KEY_SPACES, TABLES

        assert table.key is not None
        self.changed()
        changed = relation(KEY_SPACES[table.key])
        touched = self.engine.files_holding(state.files, table.key, changed)
        try:
            for name in table.inputs:
                key = TABLES[name].key
                assert key is not None, f"{name} has no key column"
                self.register(name, self.states[name], only=(key, relation(KEY_SPACES[key])))
            self.engine.register_parquet("_touched", touched, table)
            column = quote(table.key)
            term = (f"SELECT * FROM _touched WHERE {column} NOT IN (SELECT value FROM {changed}) UNION ALL "
                    f"SELECT * FROM ({sql.strip().rstrip(';')}) AS changed "
                    f"WHERE {column} IN (SELECT value FROM {changed})")
            files, _rows = self.engine.write_parquet(term, table, f"{folder}/keys")
        finally:
            for name in table.inputs:
                self.register(name, self.states[name])
        return touched, files

    def _grow(self, table: Table, sql: str, grown: list[str], state: TableState, folder: str,
              keyed: bool) -> list[str]:
        """The rows `table` gains from the new rows of `grown`: for inputs I1..In that grew by D1..Dn, the
        SQL over (I1+D1 .. Ii-1+Di-1, Di, Ii+1 .. In) for each i, which together are exactly the rows a
        rebuild adds (the SQL being linear in each); a set table leaves out rows it already holds. With
        `keyed`, only the rows of unchanged keys: the changed ones were computed whole (_recompute)."""
        from stedi.tables import KEY_SPACES, TABLES

        written: list[str] = []
        old = {name: sorted(set(self.states[name].files) - set(self.added[name])) for name in grown}
        try:
            for i, name in enumerate(grown):
                for before in grown[:i]:
                    self.engine.register_parquet(before, self.states[before].files, TABLES[before])
                self.engine.register_parquet(name, self.added[name], TABLES[name])
                for after in grown[i + 1:]:
                    self.engine.register_parquet(after, old[after], TABLES[after])
                term = sql.strip().rstrip(";")
                if keyed:
                    assert table.key is not None
                    term = (f"SELECT * FROM ({term}) AS grown WHERE {quote(table.key)} NOT IN "
                            f"(SELECT value FROM {relation(KEY_SPACES[table.key])})")
                if table.is_set:
                    self.engine.register_parquet("_held", state.files + written, table)
                    columns = ", ".join(quote(c) for c in table.column_names)
                    if table.key is None:
                        term = f"SELECT {columns} FROM ({term}) AS grown EXCEPT SELECT {columns} FROM _held"
                    else:  # only the held rows of the keys that grew can equal a new row: hash those alone
                        key = quote(table.key)
                        term = (f"WITH grown AS MATERIALIZED ({term}) SELECT {columns} FROM grown EXCEPT "
                                f"SELECT {columns} FROM _held WHERE {key} IN (SELECT {key} FROM grown)")
                files, _rows = self.engine.write_parquet(term, table, f"{folder}/{i}")
                written += files
        finally:
            for name in grown:
                self.register(name, self.states[name])
        return written


@dataclass(frozen=True)
class _Plan:
    grown: list[str]  # inputs that gained rows the table grows by
    keyed: bool  # whether the rows of changed customers and devices are computed again


# Inputs whose new rows all belong to changed keys (so a table not linear in them can still be maintained):
# the customer records of a run are what makes their emails changed keys.
WITHIN_KEYS = ("customer_landing",)
Status = Literal["built", "appended", "updated", "up to date"]
