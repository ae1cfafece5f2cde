"""Quality checks: SQL files that return the rows breaking a rule, each with an action.

    -- action: quarantine            warn | quarantine | fail
    -- reason: timestamp before 2000-01-01 or more than a day in the future
    select * from accelerometer where "timestamp" < 946684800000

A check reads one source relation (`customer`, `accelerometer` or `step_trainer`: the source's valid
landed records with the landing table's columns) and must return whole rows (`select * ...`).
Defaults ship in `stedi/checks/<source>/`; your own go in `<home>/checks/<source>/<name>.sql` (or the
`checks_dir` setting), and one with a default's name replaces it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from typing import Literal, cast

from stedi.config import Settings
from stedi.errors import ConfigError
from stedi.storage.files import Storage
from stedi.tables import SOURCES

Action = Literal["warn", "quarantine", "fail"]
ACTIONS: tuple[Action, ...] = ("warn", "quarantine", "fail")


@dataclass(frozen=True)
class Check:
    name: str
    source: str
    action: Action
    reason: str
    sql: str
    origin: str  # where it was defined, for messages


@dataclass(frozen=True)
class CheckResult:
    check: Check
    rows: int  # rows that broke the rule


def load_checks(settings: Settings) -> list[Check]:
    """The default checks, then the user's (a user check replaces a default of the same name)."""
    found: dict[tuple[str, str], Check] = {}
    defaults = resources.files("stedi.landing").joinpath("checks")
    for source in SOURCES:
        shipped = defaults.joinpath(source)
        for item in sorted(shipped.iterdir(), key=lambda i: i.name) if shipped.is_dir() else []:
            if item.name.endswith(".sql"):
                check = parse_check(item.read_text(encoding="utf-8"), item.name[:-4], source,
                                    f"stedi/checks/{source}/{item.name}")
                found[(source, check.name)] = check
    # Your own checks: <root>/checks (in the bucket too, for an s3:// root) or checks_dir.
    if settings.checks_dir is not None:
        storage, folder = Storage(str(settings.checks_dir)), ""
    else:
        storage, folder = settings.storage(), "checks"
    for entry in storage.list(folder, recursive=True):
        parts = entry.key[len(folder):].strip("/").split("/")
        if not entry.name.endswith(".sql"):
            continue
        origin = storage.uri(entry.key)
        if len(parts) != 2 or parts[0] not in SOURCES:
            raise ConfigError(f"check {origin} is in a folder that is not a source; put it in "
                              f"{storage.uri(folder)}/<{'|'.join(SOURCES)}>/")
        check = parse_check(storage.read_bytes(entry.key).decode("utf-8"), entry.name[:-4], parts[0], origin)
        found[(check.source, check.name)] = check
    return list(found.values())


def parse_check(text: str, name: str, source: str, origin: str) -> Check:
    headers = dict(re.findall(r"^\s*--\s*(action|reason)\s*:\s*(.+?)\s*$", text, flags=re.M | re.I))
    headers = {k.lower(): v for k, v in headers.items()}
    action = headers.get("action", "").lower()
    if action not in ACTIONS:
        raise ConfigError(f"check {origin} needs a header line `-- action: warn|quarantine|fail` "
                          f"(found {action or 'none'})")
    sql = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--")).strip().rstrip(";")
    if not sql:
        raise ConfigError(f"check {origin} has no query")
    return Check(name, source, cast(Action, action), headers.get("reason", name), sql, origin)
