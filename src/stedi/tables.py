"""The one list of stedi's tables: zone, columns and types, inputs.

Landing, quarantine and history tables are declared here; each derived table describes itself beside its
SQL (stedi.models: `sql/<zone>/<name>.toml`), and its inputs are read from that SQL. Everything else
derives from this list: the Iceberg schemas, the types an engine casts its output to, the schema used to
read landing JSON, and the Athena/Glue DDL files in `ddl/`. Column names keep the source JSON's
spelling (`serialNumber`, `sensorReadingTime`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Literal

from stedi import models
from stedi.errors import TableError
from stedi.types import ColumnType

Zone = Literal["landing", "trusted", "curated", "audit"]
ZONES: tuple[Zone, ...] = ("landing", "trusted", "curated", "audit")
# How a table is made: read from landed files (landing), rejected by that read (quarantine), the landed
# records that broke a `warn` rule (failures: they stay in their landing table), computed by its .sql file
# (derived), or appended to by every run (history).
Kind = Literal["landing", "quarantine", "failures", "derived", "history"]
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
    doc: str
    kind: Kind = "derived"
    source: str | None = None  # landing and quarantine tables: the source whose landed files they hold
    keys: tuple[str, ...] = ()  # landing tables: fields every record must carry (else quarantined)
    made_from: tuple[str, ...] = ()  # a table without SQL: the table it is made with (a quarantine's landing)
    # Derived tables: inputs whose appended rows add exactly the rows the SQL gives for the new rows alone
    # (joins, filters and projections of them), so the table can grow instead of being rebuilt; `is_set`
    # when the SQL returns each row once (then rows it already holds are not added again).
    linear_in: tuple[str, ...] = ()
    is_set: bool = False
    research: bool = False  # meant for research: the PII guard checks it before every commit
    # The column that says whose row it is (stedi.pipeline.keys): a customer's email (or its pseudonym) or a
    # device's serial number. A table with one is maintained key by key when customers change.
    key: str | None = None

    @property
    def column_names(self) -> list[str]:
        return [c.name for c in self.columns]

    @cached_property
    def inputs(self) -> tuple[str, ...]:
        """The tables it is built from: read from its SQL (derived tables)."""
        return models.relations(self.zone, self.name)[0] if self.kind == "derived" else self.made_from

    @cached_property
    def uses(self) -> tuple[str, ...]:
        """The run's relations its SQL reads (stedi.models.RUN_RELATIONS)."""
        return models.relations(self.zone, self.name)[1] if self.kind == "derived" else ()

    @property
    def sql(self) -> str:
        return models.sql(self.zone, self.name)


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

QUARANTINE_COLUMNS = _cols(
    ("file", "string", "landed file the record came from"),
    ("position", "bigint", "line number (JSON Lines) or element number (JSON array) in the file; null when "
                           "a quality rule quarantined the parsed row"),
    ("reason", "string", "reason code: invalid_utf8, invalid_json, not_an_object, duplicate_key, missing_key, "
                         "wrong_type, out_of_range, too_large, or check:<rule name>"),
    ("message", "string", "what is wrong, naming the field"),
    ("raw", "string", "the record's text as landed (long records cut, with their size)"),
    ("run_id", "string", "the run that quarantined it"),
)
FAILURE_COLUMNS = _cols(
    ("source", "string", "customer, accelerometer or step_trainer"),
    ("rule", "string", "the quality rule the record broke (its action is warn)"),
    ("reason", "string", "the rule's reason"),
    ("file", "string", "landed file the record came from"),
    ("raw", "string", "the record's fields as JSON, as its landing table holds them"),
    ("run_id", "string", "the run that found it"),
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
    ("warnings", "bigint", "matches of quality rules whose action is warn, summed over the rules (a record "
                           "breaking two counts twice); each rule's count is in `quality_checks`"),
    ("balanced", "string", "true when read = kept + filtered + quarantined + duplicates"),
    # added after the first release: a history keeps its rows, so new columns come last (older rows: null)
    ("suppressed", "bigint", "records of erased people dropped from files as they landed (never read, so "
                             "outside the balance)"),
)

QUALITY_CHECKS_COLUMNS = _cols(
    ("run_id", "string", "the run"),
    ("run_at", "string", "when the run ended (ISO 8601, UTC)"),
    ("source", "string", "customer, accelerometer or step_trainer"),
    ("rule", "string", "the quality rule"),
    ("action", "string", "warn, quarantine or fail; null: a rule no longer defined (a rollback's state)"),
    ("reason", "string", "the rule's reason"),
    ("rows", "bigint", "the source's landed records the rule matched, over all its landed files at the run"),
)

RUNS_COLUMNS = _cols(
    ("run_id", "string", "the run"),
    ("started_at", "string", "when the run started (ISO 8601, UTC)"),
    ("ended_at", "string", "when it ended"),
    ("outcome", "string", "succeeded or failed"),
    ("error", "string", "a failed run's error, one line; null otherwise"),
    ("engine", "string", "duckdb or spark"),
    ("stedi_version", "string", "the stedi that ran it"),
    ("pyiceberg_version", "string", "the pyiceberg that committed it"),
    ("engine_version", "string", "the engine's version"),
    ("consent_policy", "string", "the consent policy the run applied"),
    ("pseudonym_key_id", "string", "names the pseudonym key used (never the key); null when none was needed"),
    ("table_name", "string", "a table the run built or checked; null on a failed run's own row"),
    ("action", "string", "built, appended, updated, up to date, compacted, restored, or failed"),
    ("snapshot_id", "bigint", "the table's snapshot after the run"),
    ("rows_in", "bigint", "rows read to make it"),
    ("rows_out", "bigint", "rows it holds after the run"),
    ("seconds", "double", "time spent on it"),
    # added after the first release: a history keeps its rows, so new columns come last (older rows: null)
    ("command", "string", "run, optimize or rollback: each command that changes tables records the state it "
                          "leaves (null: a run recorded before this column)"),
)

# The derived tables, in build order (each after its inputs: a test holds this against their SQL).
DERIVED: tuple[tuple[Zone, str], ...] = (
    ("trusted", "customer_trusted"), ("trusted", "accelerometer_trusted"), ("curated", "customers_curated"),
    ("trusted", "step_trainer_trusted"), ("curated", "machine_learning_curated"))
# What a key column names: a customer (by email), a device (by serial number), or a customer by pseudonym.
KeySpace = Literal["customer", "device", "pseudonym"]
KEY_SPACES: dict[str, KeySpace] = {"email": "customer", "user": "customer", "serialNumber": "device",
                                   "customer_key": "pseudonym"}
SCHEMAS = {"customer": CUSTOMER_COLUMNS, "accelerometer": ACCELEROMETER_COLUMNS, "step_trainer": STEP_TRAINER_COLUMNS}


def _derived(zone: Zone, name: str) -> Table:
    declared = models.model(zone, name)
    if isinstance(declared.columns, str):
        columns = SCHEMAS[declared.columns]
    else:
        columns = tuple(Column(c["name"], c["type"], c.get("doc", "")) for c in declared.columns)  # type: ignore[arg-type]
    return Table(name, zone, columns, declared.doc, linear_in=declared.grows_with, is_set=declared.distinct_rows,
                 research=declared.research, key=declared.key)


_ALL = (
    Table("customer_landing", "landing", CUSTOMER_COLUMNS, "Valid customer records from the website, as landed.",
          kind="landing", source="customer", keys=("email", "serialNumber", "lastUpdateDate"), key="email"),
    Table("accelerometer_landing", "landing", ACCELEROMETER_COLUMNS,
          "Valid accelerometer readings from the mobile app, as landed.", kind="landing", source="accelerometer",
          keys=("user", "timestamp"), key="user"),
    Table("step_trainer_landing", "landing", STEP_TRAINER_COLUMNS,
          "Valid step trainer readings from the devices, as landed.", kind="landing", source="step_trainer",
          keys=("serialNumber", "sensorReadingTime"), key="serialNumber"),
    Table("customer_quarantine", "landing", QUARANTINE_COLUMNS,
          "Landed customer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="customer", made_from=("customer_landing",)),
    Table("accelerometer_quarantine", "landing", QUARANTINE_COLUMNS,
          "Landed accelerometer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="accelerometer", made_from=("accelerometer_landing",)),
    Table("step_trainer_quarantine", "landing", QUARANTINE_COLUMNS,
          "Landed step trainer records that failed validation or a quality rule, with the reason.",
          kind="quarantine", source="step_trainer", made_from=("step_trainer_landing",)),
    Table("quality_failures", "landing", FAILURE_COLUMNS,
          "Landed records that broke a quality rule whose action is warn (they stay in their landing table), "
          "one row per rule broken.", kind="failures",
          made_from=("customer_landing", "accelerometer_landing", "step_trainer_landing")),
    *(_derived(zone, name) for zone, name in DERIVED),
    Table("reconciliation", "audit", RECONCILIATION_COLUMNS,
          "Every run's account of each source's records: read = kept + filtered + quarantined + duplicates.",
          kind="history"),
    Table("quality_checks", "audit", QUALITY_CHECKS_COLUMNS,
          "Every run's count of each quality rule's matches, per source, over the landed records at the run.",
          kind="history"),
    Table("runs", "audit", RUNS_COLUMNS,
          "Every `stedi run`, failed ones too: its settings and versions, and what it did to each table.",
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

    (Quarantine tables and quality_failures are written with the landing tables; the histories by every
    run.)"""
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
