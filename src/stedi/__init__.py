"""stedi: a lakehouse for the STEDI Human Balance data.

Landing JSON -> trusted -> curated Apache Iceberg tables, built by one SQL definition per table.
"""

from stedi._version import __version__
from stedi.api import Lakehouse, TableInfo
from stedi.config import Settings, load_settings
from stedi.errors import (
    CatalogError,
    ConfigError,
    EngineError,
    ErasureError,
    LandingError,
    LockError,
    QualityError,
    QueryError,
    ReconciliationError,
    StateError,
    StediError,
    StorageError,
    TableError,
)
from stedi.landing.zone import IngestReport, LandedFile
from stedi.pipeline.report import RunReport, TableRun
from stedi.tables import TABLES, Column, Table

__all__ = [
    "CatalogError",
    "Column",
    "ConfigError",
    "EngineError",
    "ErasureError",
    "IngestReport",
    "Lakehouse",
    "LandedFile",
    "LandingError",
    "LockError",
    "QualityError",
    "QueryError",
    "ReconciliationError",
    "RunReport",
    "Settings",
    "StateError",
    "StediError",
    "StorageError",
    "TABLES",
    "Table",
    "TableError",
    "TableInfo",
    "TableRun",
    "__version__",
    "load_settings",
]
