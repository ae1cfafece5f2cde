"""`stedi report`: one self-contained HTML page about a lakehouse in one state (docs/report.md).

    from stedi.report import render_report
    html = render_report(lake, as_of="model-v1")

Every figure is counted by the engine (stedi.report.data, SQL in report/sql/); charts are Vega-Lite
rendered offline to SVG (charts), the lineage is drawn by Graphviz (lineage), and the page is one file
with nothing to fetch (page). Samples show no direct identifier (mask)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stedi.report.data import Lake
    from stedi.report.page import Lead


def require_extra() -> None:
    """The report's libraries are an extra of their own (`report`), so that the Glue job's bundle and a server
    without reports go without them: say so, in one line, where they are missing."""
    import importlib.util

    from stedi._version import DISTRIBUTION
    from stedi.errors import ConfigError

    missing = [name for name in ("altair", "vl_convert", "jinja2") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(f"the report needs {', '.join(missing)}, the `report` extra: "
                          f"pip install '{DISTRIBUTION}[report]' (make demo and make test install it)")


def render_report(lake: Lake, as_of: str | None = None, lead: Lead | None = None) -> str:
    """The whole report page of `lake` as it stood in `as_of` (a run id, tag or time; default: now);
    `lead`: markup shown first (stedi.report.page.Lead)."""
    from stedi.report.data import read

    require_extra()
    from stedi.report.page import render

    return render(read(lake, as_of), str(lake.settings.home), lead)
