"""The one list of stedi's tables: zone, columns and types, inputs.

Everything else derives from here: the Iceberg schemas, the types an engine casts its output to, the
schema used to read landing JSON, and the Athena/Glue DDL files in `ddl/`.
Column names keep the source JSON's spelling (`serialNumber`, `sensorReadingTime`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stedi.errors import TableError
from stedi.types import ColumnType

Zone = Literal["landing", "trusted", "curated", "audit"]
# How a table is made: read from landed files (landing), rejected by that read (quarantine),
# computed by its .sql file (derived), or appended to by every run (history).
Kind = Literal["landing", "quarantine", "derived", "history"]
SOURCES: tuple[str, ...] = ("customer", "accelerometer", "step_trainer")


@dataclass(frozen=True)
class Column:
    name: str
    type: ColumnType
    doc: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    zone: Zone
    columns: tuple[Column, ...]
    inputs: tuple[str, ...]
    doc: str
    kind: Kind = "derived"
    source: str | None = None  # landing and quarantine tables: the source whose landed files they hold
    keys: tuple[str, ...] = ()  # landing tables: fields every record must carry (else quarantined)
    uses: tuple[str, ...] = ()  # relations of the run its SQL reads: run_settings, pseudonyms
    # Derived tables: inputs whose appended rows add exactly the rows the SQL gives for the new rows alone
    # (joins, filters and projections of them), so the table can grow instead of being rebuilt; `is_set`
    # when the SQL returns each row once (then rows it already holds are not added again).
    linear_in: tuple[str, ...] = ()
    is_set: bool = False

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]


def _cols(*spec: tuple[str, ColumnType, str]) -> tuple[Column, ...]:
    return tuple(Column(name, type_, doc) for name, type_, doc in spec)


CUSTOMER_COLUMNS = _cols(
    ("customerName", "string", "full name"),
    ("email", "string", "the customer's key; accelerometer `user` refers to it"),
    ("phone", "string", "phone number"),
    ("birthDay", "string", "birthday as delivered (free text, e.g. 1399-01-01)"),
    ("serialNumber", "string", "serial number of the customer's step trainer"),
    ("registrationDate", "bigint", "epoch milliseconds"),
    ("lastUpdateDate", "bigint", "epoch milliseconds; the newest record of an email is current"),
    ("shareWithResearchAsOfDate", "bigint", "research consent since (epoch ms); null: no consent"),
    ("shareWithPublicAsOfDate", "bigint", "epoch milliseconds"),
    ("shareWithFriendsAsOfDate", "bigint", "epoch milliseconds"),
)
ACCELEROMETER_COLUMNS = _cols(
    ("user", "string", "email of the customer whose phone took the reading"),
    ("timestamp", "bigint", "epoch milliseconds"),
    ("x", "double", "acceleration, x axis"),
    ("y", "double", "acceleration, y axis"),
    ("z", "double", "acceleration, z axis"),
)
STEP_TRAINER_COLUMNS = _cols(
    ("sensorReadingTime", "bigint", "epoch milliseconds"),
    ("serialNumber", "string", "serial number of the device"),
    ("distanceFromObject", "int", "distance measured by the device"),
)

ML_COLUMNS = _cols(
    ("customer_key", "string", "keyed pseudonym of the customer: HMAC-SHA256 of the normalised email"),
    ("sensorReadingTime", "bigint", "epoch milliseconds, of both readings"),
    ("distanceFromObject", "int", "distance measured by the step trainer"),
    ("x", "double", "acceleration, x axis"),
    ("y", "double", "acceleration, y axis"),
    ("z", "double", "acceleration, z axis"),
)
# Tables meant for research: the PII guard checks them for any landed identifier.
RESEARCH_TABLES = ("machine_learning_curated",)
QUARANTINE_COLUMNS = _cols(
    ("file", "string", "landed file the record came from"),
    ("position", "bigint", "line number (JSON Lines) or element number (JSON array) in the file; null when "
                           "a quality rule quarantined the parsed row"),
    ("reason", "string", "reason code: invalid_utf8, invalid_json, not_an_object, missing_key, wrong_type, "
                         "out_of_range, too_large, or check:<rule name>"),
    ("message", "string", "what is wrong, naming the field"),
    ("raw", "string", "the record's text as landed (long records cut, with their size)"),
    ("run_id", "string", "the run that quarantined it"),
)
RECONCILIATION_COLUMNS = _cols(
    ("run_id", "string", "the run"),
    ("run_at", "string", "when the run ended (ISO 8601, UTC)"),
    ("source", "string", "customer, accelerometer or step_trainer"),
    ("read", "bigint", "records read from the landed files"),
    ("kept", "bigint", "rows in the source's trusted table"),
    ("filtered", "bigint", "records left out by the consent and curation rules"),
    ("quarantined", "bigint", "records in the source's quarantine table"),
    ("duplicates", "bigint", "exact duplicates, and superseded customer versions"),
    ("warnings", "bigint", "rows flagged by quality rules whose action is warn"),
    ("balanced", "string", "true when read = kept + filtered + quarantined + duplicates"),
    # added after the first release: a history keeps its rows, so new columns come last (older rows: null)
    ("suppressed", "bigint", "records of erased people dropped from files as they landed (never read, so "
                             "outside the balance)"),
)

_ALL = (
    Table("customer_landing", "landing", CUSTOMER_COLUMNS, (), "Valid customer records from the website, as landed.",
          kind="landing", source="customer", keys=("email", "serialNumber", "lastUpdateDate")),
    Table("accelerometer_landing", "landing", ACCELEROMETER_COLUMNS, (),
          "Valid accelerometer readings from the mobile app, as landed.", kind="landing", source="accelerometer",
          keys=("user", "timestamp")),
    Table("step_trainer_landing", "landing", STEP_TRAINER_COLUMNS, (),
          "Valid step trainer readings from the devices, as landed.", kind="landing", source="step_trainer",
          keys=("serialNumber", "sensorReadingTime")),
    Table("customer_quarantine", "landing", QUARANTINE_COLUMNS, ("customer_landing",),
          "Landed customer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="customer"),
    Table("accelerometer_quarantine", "landing", QUARANTINE_COLUMNS, ("accelerometer_landing",),
          "Landed accelerometer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="accelerometer"),
    Table("step_trainer_quarantine", "landing", QUARANTINE_COLUMNS, ("step_trainer_landing",),
          "Landed step trainer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="step_trainer"),
    Table("customer_trusted", "trusted", CUSTOMER_COLUMNS, ("customer_landing",),
          "The current record of each customer who consented to research."),
    Table("accelerometer_trusted", "trusted", ACCELEROMETER_COLUMNS, ("accelerometer_landing", "customer_trusted"),
          "Readings of customers in customer_trusted (under since_consent: from their consent on); exact "
          "duplicates once.", uses=("run_settings",), linear_in=("accelerometer_landing", "customer_trusted"),
          is_set=True),
    Table("customers_curated", "curated", CUSTOMER_COLUMNS, ("customer_trusted", "accelerometer_trusted"),
          "customer_trusted customers with at least one accelerometer_trusted reading.",
          linear_in=("customer_trusted", "accelerometer_trusted"), is_set=True),
    Table("step_trainer_trusted", "trusted", STEP_TRAINER_COLUMNS, ("step_trainer_landing", "customers_curated"),
          "Readings of the devices of customers_curated customers (under since_consent: from the owner's "
          "consent on); exact duplicates once.", uses=("run_settings",),
          linear_in=("step_trainer_landing", "customers_curated"), is_set=True),
    Table("machine_learning_curated", "curated", ML_COLUMNS,
          ("step_trainer_trusted", "customers_curated", "accelerometer_trusted"),
          "Each step trainer reading paired with its owner's accelerometer readings at the same time; "
          "no direct identifier (the customer is a keyed pseudonym).", uses=("pseudonyms",),
          linear_in=("step_trainer_trusted", "customers_curated", "accelerometer_trusted")),
    Table("reconciliation", "audit", RECONCILIATION_COLUMNS, (),
          "Every run's account of each source's records: read = kept + filtered + quarantined + duplicates.",
          kind="history"),
)

TABLES: dict[str, Table] = {t.name: t for t in _ALL}


def get_table(name: str) -> Table:
    """The table called `name`; a TableError naming the known tables otherwise."""
    try:
        return TABLES[name]
    except KeyError:
        raise TableError(f"unknown table {name!r}; the tables are: {', '.join(TABLES)}") from None


def landing_table(source: str) -> Table:
    return next(t for t in _ALL if t.source == source and t.kind == "landing")


def quarantine_table(source: str) -> Table:
    return next(t for t in _ALL if t.source == source and t.kind == "quarantine")


def build_order(selected: list[str] | None = None) -> list[Table]:
    """Landing and derived tables in dependency order: all, or the selected ones and what they need.

    (Quarantine tables are written with their landing table; the reconciliation by every run.)"""
    if not selected:
        return [t for t in _ALL if t.kind in ("landing", "derived")]
    needed: set[str] = set()

    def visit(name: str) -> None:
        if name not in needed:
            needed.add(name)
            for dep in get_table(name).inputs:
                visit(dep)

    for name in selected:
        visit(name)
    return [t for t in _ALL if t.name in needed and t.kind in ("landing", "derived")]  # _ALL is sorted
