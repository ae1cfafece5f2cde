"""The one exception tree of stedi.

    StediError                 anything stedi reports to a user; the CLI prints `error: <message>`
    ├── ConfigError            a bad setting in stedi.toml, a STEDI_* variable or an option
    ├── StorageError           the lakehouse root cannot be read or written
    ├── LandingError           nothing landed, or a landed file cannot be read with its schema
    ├── CatalogError           the Iceberg catalog is unreachable or corrupt, or a table is unreadable
    ├── TableError             an unknown table, or one that has not been built yet
    ├── QueryError             SQL that fails, that would modify data, or that ran past its timeout
    ├── EngineError            an engine that is not installed or fails while building a table (or the
    │                          Graphviz layout engine a report draws its lineage with)
    ├── QualityError           a quality rule whose action is fail, too much quarantined, or figures
    │   │                      that do not balance
    │   └── ReconciliationError  a run's recorded figures that a recount from the tables contradicts
    ├── LockError              another writer holds the lakehouse (run, ingest, optimize, erase, attach)
    ├── StateError             a past state (run, tag or time) that is unknown, expired, or may not be
    │                          restored
    └── ErasureError           an erasure that could not be completed or proven

A message says what is wrong with which object and how to fix it.
"""

from __future__ import annotations


class StediError(Exception):
    """Base class of every error stedi raises on purpose."""


class ConfigError(StediError):
    """A setting is invalid."""


class StorageError(StediError):
    """The lakehouse root cannot be read or written."""


class LandingError(StediError):
    """Landing data is missing or cannot be read."""


class CatalogError(StediError):
    """The catalog cannot be opened or a table in it cannot be read."""


class TableError(StediError):
    """A table is unknown or not built."""


class QueryError(StediError):
    """A SQL query failed or was refused."""


class EngineError(StediError):
    """An engine is missing or failed."""


class QualityError(StediError):
    """The data broke a rule that stops the run."""


class ReconciliationError(QualityError):
    """The figures a run recorded disagree with a recount from the tables (`stedi reconcile --verify`)."""


class LockError(StediError):
    """Another process holds the lakehouse's writer lock."""


class StateError(StediError):
    """A state of the lakehouse (a run, a tag, a time) that cannot be read, named or restored."""


class ErasureError(StediError):
    """Erasure could not be completed; the message says what is left and what to do."""
