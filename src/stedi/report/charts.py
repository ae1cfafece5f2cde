"""The report's charts: Vega-Lite specifications made with altair, rendered offline by vl-convert
into SVG that the page holds inline (no script, no network). Imported only when a report is made:
altair and vl-convert take a quarter of a second to load."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import altair as alt
import vl_convert

from stedi.report import timeaxis
from stedi.report.data import FunnelStep

WIDTH = 560
SMALL = {"width": 260, "height": 70}
FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif"
# The reconciliation's terms, in the order they are stacked, and their colours (also its legend's order).
TERMS = ("kept", "filtered", "quarantined", "duplicates")
TERM_COLORS = ("#2f7d4f", "#8f9aa6", "#c0392b", "#e0a526")


def _values(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as Vega-Lite data values (dates and times as ISO 8601 text)."""
    return [{k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in r.items()} for r in rows]


def _data(rows: Sequence[dict[str, Any]]) -> Any:
    """Inline data of a chart (altair's Data is the one class of its API without annotations)."""
    return alt.Data(values=_values(rows))  # type: ignore[no-untyped-call]


def _time_x(field: str, times: Sequence[Any], width: int, finest: str = "second", name: str | None = None) -> Any:
    """An x axis of times (UTC) with distinct ticks at whole steps (stedi.report.timeaxis), titled `name`
    and the day when the labels leave it out."""
    found = timeaxis.axis(list(times), width, finest)
    low, high = (_ms(t) for t in found.domain)
    title = ", ".join(t for t in (name, found.days) if t) + " (UTC)" if name or found.days else "UTC"
    return alt.X(f"{field}:T", title=title, scale=alt.Scale(type="utc", domain=[low, high]),
                 axis=alt.Axis(values=[_ms(t) for t in found.ticks], format=found.format, labelAngle=0))


def _ms(moment: datetime) -> int:
    return round(moment.timestamp() * 1000)


def svg(chart: Any, key: str) -> str:
    """`chart` as inline SVG. Its ids (clip paths, gradients) get the prefix `key`: a page holds many
    charts, and an id twice in one document would clip one chart with another's path."""
    spec = chart.configure(font=FONT).configure_view(stroke=None).to_dict()
    text = vl_convert.vegalite_to_svg(spec)
    prefix = re.sub(r"[^\w-]", "-", key) + "-"
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}{m.group(1)}"', text)
    text = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}{m.group(1)})", text)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}{m.group(1)}"', text)


def rows_by_run(table: str, runs: Sequence[dict[str, Any]]) -> str:
    """A table's rows after each command that recorded it: a small line with a point per run."""
    chart = alt.Chart(_data(runs)).mark_line(point=True, color="#3465a4").encode(
        x=_time_x("started_at", [r["started_at"] for r in runs], SMALL["width"]),
        y=alt.Y("rows_out:Q", title="rows", axis=alt.Axis(format="~s", tickCount=3)),
        tooltip=["run_id:N", "command:N", "action:N", "rows_out:Q"],
    ).properties(**SMALL)
    return svg(chart, f"rows-{table}")


def funnel(steps: Sequence[FunnelStep]) -> str:
    """The consent funnel: customers, accelerometer readings and step trainer readings kept at each step."""
    short = {s.step: s.step.split(" (")[0] for s in steps}  # the table names are in the table below
    order = list(short.values())
    charts: list[Any] = []
    for measure, title in (("customers", "customers"), ("accelerometer", "accelerometer readings"),
                           ("step_trainer", "step trainer readings")):
        values = [{"step": short[s.step], "value": getattr(s, measure)} for s in steps
                  if getattr(s, measure) is not None]
        bars = alt.Chart(_data(values), title=title).mark_bar(color="#3465a4").encode(
            y=alt.Y("step:N", sort=order, title=None, axis=alt.Axis(labelLimit=200) if not charts else None),
            x=alt.X("value:Q", title=None, axis=alt.Axis(format="~s", tickCount=3)),
        )
        labels = bars.mark_text(align="left", dx=3, fontSize=10, color="#222").encode(
            text=alt.Text("value:Q", format=","))
        charts.append((bars + labels).properties(width=170, height=24 * len(steps)))
    # vl-convert measures the step names a little short: room on the left so that none is cut
    return svg(alt.hconcat(*charts, spacing=40, padding={"left": 24, "top": 5, "right": 5, "bottom": 5}), "funnel")


def reconciliation(rows: Sequence[dict[str, Any]]) -> str:
    """Each source's records, run by run: kept, filtered, quarantined and duplicates stacked."""
    values = [{"run": r["run_at"], "run_id": r["run_id"], "source": r["source"], "term": term,
               "order": TERMS.index(term), "records": r[term]} for r in rows for term in TERMS]
    chart = alt.Chart(_data(values)).mark_bar().encode(
        x=alt.X("run:O", title="run", axis=alt.Axis(labels=False, ticks=False)),
        y=alt.Y("sum(records):Q", title="records", axis=alt.Axis(format="~s", tickCount=4)),
        color=alt.Color("term:N", title=None, scale=alt.Scale(domain=list(TERMS), range=list(TERM_COLORS)),
                        legend=alt.Legend(orient="top")),
        order=alt.Order("order:Q"),
        tooltip=["run_id:N", "term:N", "records:Q"],
    ).properties(width=150, height=120).facet(
        column=alt.Column("source:N", sort=["customer", "accelerometer", "step_trainer"], title=None),
    ).resolve_scale(y="independent")
    return svg(chart, "reconciliation")


def quarantine_reasons(reasons: Sequence[dict[str, Any]]) -> str:
    """Quarantined records per reason, by source."""
    chart = alt.Chart(_data(reasons)).mark_bar().encode(
        y=alt.Y("reason:N", title=None, sort="-x", axis=alt.Axis(labelLimit=260)),
        x=alt.X("records:Q", title="records", axis=alt.Axis(format="~s", tickCount=4)),
        color=alt.Color("source:N", title=None, legend=alt.Legend(orient="top")),
    ).properties(width=360, height=alt.Step(16))
    return svg(chart, "quarantine")


def rule_counts(rows: Sequence[dict[str, Any]]) -> str:
    """Each quality rule's count of rows, run by run."""
    values = [{**r, "rule": f"{r['source']}: {r['rule']} ({r['action']})"} for r in _values(rows)]
    chart = alt.Chart(_data(values)).mark_line(point=True).encode(
        x=_time_x("run_at", [r["run_at"] for r in rows], WIDTH - 200),
        y=alt.Y("rows:Q", title="rows", axis=alt.Axis(format="~s")),
        color=alt.Color("rule:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=400)),
        tooltip=["run_id:N", "rule:N", "rows:Q"],
    ).properties(width=WIDTH - 200, height=140)
    return svg(chart, "rules")


def customer_series(points: Sequence[dict[str, Any]]) -> str:
    """One customer's accelerometer magnitude and step trainer distance on one time axis (two y axes)."""
    values = [{"time": p["sensorReadingTime"], "magnitude": p["magnitude"], "distance": p["distance"]}
              for p in points]
    base = alt.Chart(_data(values)).encode(x=_time_x("time", [v["time"] for v in values], WIDTH,
                                                     name="sensorReadingTime"))
    magnitude = base.mark_line(color="#3465a4", strokeWidth=1.2).encode(
        y=alt.Y("magnitude:Q", title="magnitude √(x²+y²+z²)",
                axis=alt.Axis(titleColor="#3465a4")))
    distance = base.mark_line(color="#c4621b", strokeWidth=1.2, strokeDash=[4, 2]).encode(
        y=alt.Y("distance:Q", title="distanceFromObject", axis=alt.Axis(titleColor="#c4621b")))
    chart = alt.layer(magnitude, distance).resolve_scale(y="independent").properties(width=WIDTH, height=180)
    return svg(chart, "series")


def distributions(bins: Sequence[dict[str, Any]]) -> str:
    """Histograms of x, y, z and distanceFromObject (bins counted by the engine)."""
    charts: list[Any] = []
    for measure in ("x", "y", "z", "distanceFromObject"):
        values = [b for b in bins if b["measure"] == measure]
        charts.append(alt.Chart(_data(values), title=measure).mark_bar(color="#3465a4").encode(
            # few ticks, and those that come closer than labelSeparation dropped: vl-convert measures the
            # labels narrower than a browser draws them (they overlapped at 150 px and 5 ticks)
            x=alt.X("bin_start:Q", bin="binned", title=None,
                    axis=alt.Axis(tickCount=3, labelOverlap="greedy", labelSeparation=12)),
            x2="bin_end:Q",
            y=alt.Y("readings:Q", title=None if charts else "readings", axis=alt.Axis(format="~s", tickCount=4)),
        ).properties(width=180, height=90))
    return svg(alt.hconcat(*charts, spacing=22), "distributions")


def per_day(rows: Sequence[dict[str, Any]]) -> str:
    """Readings per day, one line per table."""
    chart = alt.Chart(_data(rows)).mark_line(point=alt.OverlayMarkDef(size=12)).encode(
        x=_time_x("day", [r["day"] for r in rows], WIDTH - 180, finest="day", name="day"),
        y=alt.Y("readings:Q", title="readings", axis=alt.Axis(format="~s")),
        # below the chart, where its width leaves room: at the right, a browser's wider font cut the
        # longest name short of the picture's edge (vl-convert sized the picture with its own font)
        color=alt.Color("table_name:N", title=None, legend=alt.Legend(orient="bottom", columns=1, labelLimit=400)),
        tooltip=["table_name:N", "day:T", "readings:Q"],
    ).properties(width=WIDTH - 180, height=160)
    return svg(chart, "per-day")
