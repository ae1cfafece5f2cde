"""Each quality rule's count, per source and run: the history table `quality_checks`.

A rule's count is over the source's landed records as the landing table holds them at the run, whether
this run read them or an earlier one did: each landing snapshot keeps its rules' counts (RULE_COUNTS,
added up when the table grows by new files, replaced when it is rebuilt), so a run that finds the landing
tables up to date records the same counts without running a rule. Counts are per rule, never summed:
the reconciliation's `warnings` is only the sum of the `warn` rules' counts, kept for its history.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from stedi.iceberg.catalog import TableCatalog, TableState
from stedi.landing.quality import Check, CheckResult
from stedi.pipeline.plan import RULE_COUNTS
from stedi.tables import TABLES


@dataclass(frozen=True)
class RuleCount:
    source: str
    rule: str
    action: str | None  # None: a counted rule no longer defined (a rolled-back state's)
    reason: str | None
    rows: int


def counts_of(state: TableState) -> dict[str, int] | None:
    """A landing snapshot's {rule: rows}; None when it has none (written by an older stedi)."""
    if RULE_COUNTS not in state.summary:
        return None
    try:
        known = json.loads(state.summary[RULE_COUNTS])
    except ValueError:
        return None
    return {str(k): int(v) for k, v in known.items()} if isinstance(known, dict) else None


def counted(results: list[CheckResult], before: Mapping[str, int] | None = None) -> dict[str, int]:
    """The rule counts of the records just read, added to `before` (a grown table's earlier counts)."""
    total = Counter(before or {})
    total.update({r.check.name: r.rows for r in results})
    return {name: total[name] for name in sorted({*total, *(r.check.name for r in results)})}


def rule_counts(source: str, checks: list[Check], counts: Mapping[str, int]) -> list[RuleCount]:
    """One per rule of `source`: every rule defined (0 if it matched nothing), in the order rules run
    (fail, quarantine, warn), then any counted rule no longer defined."""
    own = sorted((c for c in checks if c.source == source), key=lambda c: (("fail", "quarantine", "warn")
                                                                          .index(c.action), c.name))
    found = [RuleCount(source, c.name, c.action, c.reason, counts.get(c.name, 0)) for c in own]
    defined = {c.name for c in own}
    return found + [RuleCount(source, name, None, None, n) for name, n in sorted(counts.items()) if name not in defined]


def record_rule_counts(catalog: TableCatalog, run_id: str, counts: list[RuleCount]) -> None:
    """Append a run's rule counts to `quality_checks` (to whatever it holds: runs only add rows)."""
    if not counts:
        return
    when = datetime.now(UTC).isoformat(timespec="microseconds")
    rows = [{"run_id": run_id, "run_at": when, "source": c.source, "rule": c.rule, "action": c.action,
             "reason": c.reason, "rows": c.rows} for c in counts]
    catalog.append_rows(TABLES["quality_checks"], rows, run_id)
