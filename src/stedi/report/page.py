"""The report as one HTML page: styles inline, charts and the lineage graph as inline SVG; it loads
nothing, runs no script, and reads the same from a disk or a bucket. Text is escaped by jinja2's
autoescape; only the SVG that charts and Graphviz made is inserted as markup."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import Any

from stedi._version import __version__
from stedi.report import charts, lineage
from stedi.report.data import SERIES_POINTS, FunnelStep, ReportData
from stedi.text import plural

RECONCILE_COLUMNS = ("read", "kept", "filtered", "quarantined", "duplicates")  # warn rules: apart, per rule


@dataclass(frozen=True)
class Lead:
    """Markup the page shows first, above the report and inside its margins, with a link in the navigation
    (`stedi serve`'s SQL box: at the end of a long page, nobody found it)."""

    anchor: str  # the id of its element
    title: str  # its link's text
    html: str


def render(data: ReportData, home: str, lead: Lead | None = None) -> str:
    """The page for `data`, read from the lakehouse at `home`."""
    import jinja2
    from markupsafe import Markup

    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["num"] = _num
    env.filters["cell"] = _cell
    env.filters["plural"] = _plural
    template = env.from_string(
        resources.files("stedi.report").joinpath("templates", "report.html.j2").read_text(encoding="utf-8"))
    latest = [r for r in data.reconciliation if r["run_id"] == data.reconciliation[-1]["run_id"]] \
        if data.reconciliation else []
    series_key = data.series[0]["customer_key"] if data.series else None
    return template.render(
        data=data, version=__version__, home=home, made_at=_time(data.made_at),
        lead=lead, lead_html=Markup(lead.html) if lead else None,
        lineage=Markup(lineage.svg(data.tables, data.landed)),
        tables=_tables(data, Markup),
        funnel=_funnel(data.funnel),
        funnel_chart=Markup(charts.funnel(data.funnel)) if data.funnel else None,
        reconciliation=data.reconciliation,
        reconciliation_chart=Markup(charts.reconciliation(data.reconciliation)) if data.reconciliation else None,
        latest_reconciliation=latest, latest_run=latest[0]["run_id"] if latest else None,
        reconcile_columns=RECONCILE_COLUMNS,
        reasons=_reasons(data.quarantine),
        quarantine_chart=Markup(charts.quarantine_reasons(_reasons(data.quarantine))) if data.quarantine else None,
        rules_recorded=data.rule_counts is not None,
        rules_chart=Markup(charts.rule_counts(data.rule_counts)) if data.rule_counts else None,
        series_chart=Markup(charts.customer_series(data.series)) if data.series else None,
        series_key=series_key, series_cut=len(data.series) >= SERIES_POINTS, series_points=SERIES_POINTS,
        distributions_chart=Markup(charts.distributions(data.distributions)) if data.distributions else None,
        per_day_chart=Markup(charts.per_day(data.per_day)) if data.per_day else None,
    )


def _tables(data: ReportData, markup: Any) -> list[dict[str, Any]]:
    by_table: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in data.rows_by_run:
        by_table[row["table_name"]].append(row)
    out = []
    for name, facts in data.tables.items():
        sample = data.samples.get(name, [])
        out.append({
            "name": name, "zone": facts.table.zone, "doc": facts.table.doc, "built": facts.built,
            "rows": facts.rows, "snapshot_id": facts.snapshot_id,
            "updated": _time(facts.updated) if facts.updated else None,
            "inputs": [i for i in facts.table.inputs if i in data.tables] if facts.table.kind == "derived" else [],
            "columns": facts.table.columns,
            "chart": markup(charts.rows_by_run(name, by_table[name])) if by_table.get(name) else None,
            "sample": sample, "sample_columns": list(sample[0]) if sample else [],
        })
    return out


def _funnel(steps: list[FunnelStep]) -> list[dict[str, Any]]:
    """Each step with what it left out of the step before."""
    out = []
    for before, step in zip([None, *steps], steps, strict=False):
        row: dict[str, Any] = {"step": step.step, "customers": step.customers, "accelerometer": step.accelerometer,
                               "step_trainer": step.step_trainer, "pairs": step.pairs}
        for measure in ("customers", "accelerometer", "step_trainer"):
            was, now = (getattr(before, measure) if before else None), getattr(step, measure)
            row[f"{measure}_out"] = was - now if was is not None and now is not None else None
        out.append(row)
    return out


def _reasons(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per source and reason, with its examples."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        entry = found.setdefault((row["source"], row["reason"]), {
            "source": row["source"], "reason": row["reason"], "records": row["records"], "examples": []})
        entry["examples"].append(row)
    return sorted(found.values(), key=lambda e: (-e["records"], e["source"], e["reason"]))


def _num(value: Any) -> str:
    if value is None:
        return "–"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _plural(value: int | None, word: str, words: str | None = None) -> str:
    return plural(value, word, words) if value is not None else f"{_num(value)} {words or word + 's'}"


def _cell(value: Any) -> str:
    if value is None:
        return "NULL"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, datetime):
        return _time(value)
    return str(value)


def _time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
