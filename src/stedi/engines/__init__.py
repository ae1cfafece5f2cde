"""Engines by name. Each is imported only when used, so the CLI starts fast and a missing optional
engine is reported with the extra that installs it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi._version import DISTRIBUTION
from stedi.errors import EngineError

if TYPE_CHECKING:
    from stedi.config import Settings
    from stedi.engines.base import Engine, Session, Tasks
    from stedi.engines.duckdb import DuckDBEngine


def _duckdb(settings: Settings) -> Engine:
    from stedi.engines.duckdb import DuckDBEngine

    return DuckDBEngine(settings)


def _spark(settings: Settings) -> Engine:
    from stedi.engines.spark import SparkEngine

    return SparkEngine(settings)


ENGINES: dict[str, tuple[Callable[[Settings], Engine], str]] = {
    "duckdb": (_duckdb, "duckdb"),
    "spark": (_spark, "pyspark 3.5"),
}


def memory_budget() -> int:
    """Bytes an engine may hold before it spills: 40% of the machine's memory, at most 4 GiB."""
    import os

    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        total = 8 << 30
    return min(4 << 30, int(total * 0.4))


def as_tasks(engine: Engine) -> Tasks:
    """The engine as a runner of tasks on other processes (the Spark engine)."""
    from stedi.engines.base import Tasks

    if not isinstance(engine, Tasks):
        raise EngineError(f"the {engine.name} engine runs no tasks on other processes")
    return engine


def task_cpus() -> int:
    """The cores the running Spark task may use (spark.task.cpus); 1 outside a task."""
    context = _task_context()
    return max(1, context.cpus()) if context is not None else 1


def task_executor() -> int:
    """The process id of the JVM running this Spark task's Python worker (the worker is forked by pyspark's
    daemon, which the executor started), for a test that kills an executor; this process outside Spark."""
    if _task_context() is None:
        return os.getpid()
    with open(f"/proc/{os.getppid()}/stat") as stat:  # Linux: the daemon's parent
        return int(stat.read().rsplit(")", 1)[1].split()[1])


def _task_context() -> Any:
    try:
        from pyspark import TaskContext
    except ImportError:
        return None
    return TaskContext.get()


def open_engine(settings: Settings) -> Engine:
    """The engine that builds tables, as configured."""
    try:
        loader, package = ENGINES[settings.engine]
    except KeyError:
        raise EngineError(f"unknown engine {settings.engine!r}; choose one of: {', '.join(ENGINES)}") from None
    try:
        return loader(settings)
    except ImportError as exc:
        raise EngineError(f"the {settings.engine} engine needs {package}, which is not installed ({exc}); "
                          f"install it with `pip install '{DISTRIBUTION}[{settings.engine}]'`") from None


def open_session(settings: Settings) -> Session:
    """A SQL session of the embedded engine for a writer (the landing reader, compaction)."""
    from stedi.engines.duckdb import DuckDBEngine

    return DuckDBEngine(settings)


def check_settings(settings: Settings) -> None:
    """Refuse bad [duckdb] settings before any work."""
    from stedi.engines.duckdb import check_settings as check

    check(settings)


def open_query_engine(settings: Settings, beside_a_build: bool = False) -> DuckDBEngine:
    """The engine that answers `stedi sql`: always the embedded one, whichever engine builds tables
    (a query should not wait seconds for a Spark session). `beside_a_build`: it runs while a build
    engine holds memory (the reconciliation, the PII guard), so it gets half the ceiling, unless
    `[duckdb] memory_limit` is set."""
    from dataclasses import replace

    from stedi.engines.duckdb import DuckDBEngine

    if beside_a_build:  # part of a writer's run: it spills into the writers' scratch folder
        if "memory_limit" not in settings.duckdb:
            settings = replace(settings, duckdb={**settings.duckdb,
                                                 "memory_limit": f"{memory_budget() // 2 >> 20}MB"})
        return DuckDBEngine(settings)
    # A reader spills outside the root: the root may be read-only, and writers clear their scratch folder.
    return DuckDBEngine(settings, scratch=reader_scratch())


def reader_scratch() -> Path:
    """This user's folder for readers' spill files, in the system's temporary folder."""
    import tempfile

    folder = Path(tempfile.gettempdir()) / f"stedi-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    folder.mkdir(mode=0o700, exist_ok=True)
    return folder
