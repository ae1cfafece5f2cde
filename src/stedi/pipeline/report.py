"""What a run reports: per table, and for the run."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

from stedi.landing.quality import CheckResult
from stedi.pipeline.reconcile import Figures
from stedi.pipeline.rules import RuleCount

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TableRun:
    table: str
    zone: str
    # built: computed whole; appended: grew by its inputs' new rows; updated: also recomputed the rows of
    # changed customers and devices (stedi.pipeline.keys); up to date: unchanged; compacted: its files
    # rewritten by `stedi optimize`, rows unchanged; restored: set back to a past state (`stedi rollback`)
    status: Literal["built", "appended", "updated", "up to date", "compacted", "restored"]
    rows_in: int
    rows_out: int
    seconds: float
    quarantined: int = 0


@dataclass(frozen=True)
class RunReport:
    run_id: str
    engine: str
    tables: list[TableRun]
    seconds: float
    reconciliation: list[Figures] = field(default_factory=list)
    checks: list[CheckResult] = field(default_factory=list)  # the rules run over the records this run read
    rules: list[RuleCount] = field(default_factory=list)  # each rule's count over the landed records now


