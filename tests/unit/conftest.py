"""The unit tier touches no lakehouse and no engine: while a test of tests/unit runs (its fixtures of every
scope included), opening a DuckDB connection or a build engine through stedi, opening a catalog, taking a
root's writer lock (what every ingest, run, erase, optimize and attach does first), starting a `stedi`
process or building the Glue job's wheels (the package index) fails the test. Such a test belongs in
tests/integration."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

import support

UNIT = Path(__file__).resolve().parent
MOVE = "unit tests touch no lakehouse and no engine: move this test to tests/integration"


def _refused(what: str) -> Any:
    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        # pytest.fail raises an exception outside Exception, so no `except Exception` of stedi hides it
        pytest.fail(f"{what}: {MOVE}")

    return refuse


class _NoConnections:
    def __init__(self, module: Any) -> None:
        self._module = module
        self.connect = _refused("a DuckDB connection (stedi.engines.duckdb)")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)


def _guard(patch: pytest.MonkeyPatch) -> None:
    import stedi.engines
    import stedi.engines.duckdb
    from stedi.iceberg.catalog import TableCatalog
    from stedi.storage.lock import WriterLock

    # the duckdb module as stedi's engine module sees it: the same, but it opens no connection (this catches
    # stedi.engines.duckdb.connect even where a test imported the function itself)
    patch.setattr(stedi.engines.duckdb, "duckdb", _NoConnections(stedi.engines.duckdb.duckdb))
    for name, (_, package) in list(stedi.engines.ENGINES.items()):
        patch.setitem(stedi.engines.ENGINES, name,
                      (_refused(f"the {name} engine (stedi.engines.open_engine)"), package))
    patch.setattr(TableCatalog, "_open", _refused("a lakehouse's catalog (TableCatalog)"))
    patch.setattr(WriterLock, "acquire", _refused("a lakehouse's writer lock (ingest, run, erase, optimize, ...)"))
    # Catalogs made directly: guarded when their module is loaded (importing pyiceberg costs ~0.6 s)
    if "stedi.iceberg.sqlite" in sys.modules:
        patch.setattr(sys.modules["stedi.iceberg.sqlite"].SqliteCatalog, "__init__",
                      _refused("an Iceberg catalog (SqliteCatalog)"))
    if "pyiceberg.catalog.sql" in sys.modules:
        patch.setattr(sys.modules["pyiceberg.catalog.sql"].SqlCatalog, "__init__",
                      _refused("an Iceberg catalog (SqlCatalog)"))
    patch.setattr(support, "REFUSE_PROCESSES", MOVE)
    # `stedi deploy aws` without --no-bundle: pip fetching wheels from the package index
    import stedi.deploy.glue_bundle

    patch.setattr(stedi.deploy.glue_bundle, "build", _refused("building the Glue job's wheels (pip, the index)"))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """Around each unit test's setup (its fixtures of every scope), call and teardown. pytest calls this hook
    for every test of the session, wherever this conftest is: the others run unguarded."""
    if not item.path.is_relative_to(UNIT):
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        _guard(patch)
        return (yield)
