"""The derived tables of a run: each computed from its `.sql` by the engine and committed, or kept when
its fingerprint is unchanged, or grown by the rows its inputs gained (incremental maintenance)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Literal

from stedi import faults
from stedi.config import Settings
from stedi.engines.base import Engine
from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.pipeline.plan import DEFINITION, INPUTS, content_id, fingerprint_of, table_sql
from stedi.pipeline.report import Progress, TableRun
from stedi.privacy.guard import pii_guard
from stedi.privacy.keys import key_id, pseudonym
from stedi.sqltext import quote
from stedi.storage.files import open_uri
from stedi.tables import Table


class DerivedStep:
    """Builds derived tables: skips one whose fingerprint is unchanged, else computes and commits it."""

    def __init__(self, settings: Settings, catalog: TableCatalog, engine: Engine, run_id: str, full_refresh: bool,
                 states: dict[str, TableState], say: Progress, key: bytes | None,
                 added: dict[str, list[str]], built: Callable[[dict[str, TableState]], None]) -> None:
        self.settings, self.catalog, self.engine = settings, catalog, engine
        self.run_id, self.full_refresh, self.say = run_id, full_refresh, say
        self.states = states
        self.key = key
        self.added = dict(added)  # tables appended this run (landing and derived): their new data files
        self.built = built  # told of the states each time a table is done (the reconciliation starts early)
        self.can_grow = engine.grows_tables  # else every changed table is rebuilt
        self._commit = threading.Lock()  # one catalog commit at a time (SQLite, and simpler to reason about)

    def register(self, name: str, state: TableState) -> None:
        from stedi.tables import TABLES

        self.engine.register_parquet(name, state.files, TABLES[name])

    def _register_pseudonyms(self) -> None:
        """email -> customer_key for the curated customers, in the engine's memory only."""
        import pyarrow.parquet as pq

        assert self.key is not None
        emails: set[str] = set()
        s3 = self.settings.s3_connection() if self.settings.remote else None
        for uri in self.states["customers_curated"].files:
            fs, path = open_uri(uri, s3)
            emails.update(e for e in pq.read_table(path, columns=["email"], filesystem=fs).column(0).to_pylist()
                          if e)
        self.engine.register_rows("pseudonyms", [("email", "string"), ("customer_key", "string")],
                                  [(e, pseudonym(self.key, e)) for e in sorted(emails)])

    def all(self, tables: list[Table], number: dict[str, str]) -> dict[str, TableRun]:
        """Each table starts as soon as its inputs are built (with an engine that builds in parallel,
        step_trainer_trusted can overlap accelerometer_trusted, and so on)."""
        results: dict[str, TableRun] = {}
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
                    self.built(self.states)
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
            state = self.catalog.state(table)
            folder = f"{self.catalog.data_location(table)}/{self.run_id}"
        status: Literal["built", "appended", "up to date"] = "up to date"
        if state is None or state.fingerprint != fingerprint or self.full_refresh:
            if "pseudonyms" in table.uses:
                self._register_pseudonyms()
            props = {INPUTS: json.dumps({n: content_id(self.states[n].files) for n in table.inputs},
                                        sort_keys=True), DEFINITION: definition}
            grown = None if self.full_refresh or state is None else self._grown(table, state, definition)
            if grown is not None:
                assert state is not None
                # no grown input: every input has the very files it was built from (rows were added but
                # none reached a table in between), so the table is already right
                files_written = self._grow(table, sql, grown, state, folder) if grown else []
            else:
                files_written, _rows = self.engine.write_parquet(sql, table, folder)
            if table.research:
                pii_guard(self.settings, table, files_written, self.states)  # before the commit
            on = state.snapshot_id if state else None  # the commit is a compare-and-swap on it
            with self._commit:
                if grown is not None:
                    state = self.catalog.append(table, files_written, fingerprint, props, base=on)
                    self.added[table.name] = files_written
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

    def _grown(self, table: Table, state: TableState, definition: str) -> list[str] | None:
        """The inputs that only grew since `table` was built from them, when that is all that changed and
        the table's SQL is linear in each (none if their files are all the same); None when it must be
        rebuilt."""
        if not self.can_grow or not table.linear_in or state.summary.get(DEFINITION) != definition:
            return None
        try:
            built_from = json.loads(state.summary.get(INPUTS, ""))
        except ValueError:
            return None
        grown = []
        for name in table.inputs:
            files = self.states[name].files
            if built_from.get(name) == content_id(files):
                continue
            new = self.added.get(name)
            if name not in table.linear_in or not new or \
                    built_from.get(name) != content_id(sorted(set(files) - set(new))):
                return None
            grown.append(name)
        return grown

    def _grow(self, table: Table, sql: str, grown: list[str], state: TableState, folder: str) -> list[str]:
        """The rows `table` gains from the new rows of `grown`: for inputs I1..In that grew by D1..Dn, the
        SQL over (I1+D1 .. Ii-1+Di-1, Di, Ii+1 .. In) for each i, which together are exactly the rows a
        rebuild adds (the SQL being linear in each); a set table leaves out rows it already holds."""
        from stedi.tables import TABLES

        written: list[str] = []
        old = {name: sorted(set(self.states[name].files) - set(self.added[name])) for name in grown}
        try:
            for i, name in enumerate(grown):
                for before in grown[:i]:
                    self.engine.register_parquet(before, self.states[before].files, TABLES[before])
                self.engine.register_parquet(name, self.added[name], TABLES[name])
                for after in grown[i + 1:]:
                    self.engine.register_parquet(after, old[after], TABLES[after])
                term = sql
                if table.is_set:
                    self.engine.register_parquet("_held", state.files + written, table)
                    columns = ", ".join(quote(c) for c in table.column_names)
                    term = (f"SELECT {columns} FROM ({sql.strip().rstrip(';')}) AS grown "
                            f"EXCEPT SELECT {columns} FROM _held")
                files, _rows = self.engine.write_parquet(term, table, f"{folder}/{i}")
                written += files
        finally:
            for name in grown:
                self.register(name, self.states[name])
        return written


