"""Which customers and devices a run changed: the keys the derived tables are maintained by.

A change to customers arrives as customer records: a new customer, a newer record of a known one
(consent kept, given later or withdrawn, another serial number). The customers changed are the emails of
the records landed in this run. A derived table's rows for a customer can also depend on a device that
other customers name (step_trainer_trusted is kept by serial number, and machine_learning_curated pairs
a device's readings with its owners' phones), so the set is closed over every link between an email and a
serial number that any landed customer record makes, old versions included (an old record links a
customer to the device it had): the devices of changed customers changed, and so did their other owners.

Every derived table then removes its rows of these keys and computes them again from its inputs' rows of
these keys; the rows of every other key only grow (stedi.pipeline.derived).
"""

from __future__ import annotations

from dataclasses import dataclass

from stedi.engines.base import Engine
from stedi.privacy.keys import pseudonym
from stedi.tables import TABLES, KeySpace

NEW_CUSTOMERS = "_new_customer_records"


def relation(space: KeySpace) -> str:
    """The engine relation (one column, `value`) holding the changed keys of a key space."""
    return f"_changed_{space}"


@dataclass(frozen=True)
class ChangedKeys:
    customers: frozenset[str] = frozenset()  # emails
    devices: frozenset[str] = frozenset()  # serial numbers

    def __bool__(self) -> bool:
        return bool(self.customers or self.devices)

    def register(self, engine: Engine, key: bytes | None) -> None:
        """The relations `_changed_customer`, `_changed_device` and (with the pseudonym key)
        `_changed_pseudonym` in the engine."""
        values: dict[KeySpace, list[str]] = {"customer": sorted(self.customers), "device": sorted(self.devices)}
        if key is not None:
            values["pseudonym"] = sorted(pseudonym(key, e) for e in self.customers)
        for space, keys in values.items():
            engine.register_rows(relation(space), [("value", "string")], [(k,) for k in keys])


def changed_keys(engine: Engine, new_customer_files: list[str]) -> ChangedKeys:
    """The emails of the customer records in `new_customer_files`, closed over the links between emails
    and serial numbers in `customer_landing` (registered in the engine)."""
    if not new_customer_files:
        return ChangedKeys()
    engine.register_parquet(NEW_CUSTOMERS, new_customer_files, TABLES["customer_landing"])
    emails = {e for (e,) in engine.rows(f"SELECT DISTINCT email FROM {NEW_CUSTOMERS}") if e is not None}
    devices: set[str] = set()
    while True:
        ChangedKeys(frozenset(emails), frozenset(devices)).register(engine, None)
        links = engine.rows(
            'SELECT DISTINCT email, "serialNumber" FROM customer_landing '
            f'WHERE email IN (SELECT value FROM {relation("customer")}) '
            f'OR "serialNumber" IN (SELECT value FROM {relation("device")})')
        more_emails = {e for e, _ in links if e is not None} - emails
        more_devices = {d for _, d in links if d is not None} - devices
        if not more_emails and not more_devices:
            return ChangedKeys(frozenset(emails), frozenset(devices))
        emails |= more_emails
        devices |= more_devices
