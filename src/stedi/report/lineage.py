"""The lineage graph: landed files -> landing -> trusted -> curated, drawn by Graphviz (`dot -Tsvg`, run
as a process) into SVG the page holds inline. Each table is a node with its rows and last update that
links to its section of the page (`#table-<name>`); its edges come from the tables' inputs."""

from __future__ import annotations

import re
import shutil
import subprocess
from datetime import datetime

from stedi.errors import EngineError
from stedi.report.data import TableFacts
from stedi.tables import SOURCES, TABLES
from stedi.text import plural

ZONES = (("landing", "landing"), ("trusted", "trusted"), ("curated", "curated"), ("audit", "audit (history)"))
DOT_SECONDS = 60


def dot_source(tables: dict[str, TableFacts], landed: dict[str, tuple[int, int]]) -> str:
    """The graph in Graphviz's language."""
    lines = ["digraph lineage {",
             '  graph [rankdir=LR, fontname="Helvetica", fontsize=11, nodesep=0.25, ranksep=0.55,'
             ' bgcolor="transparent"];',
             '  node [shape=box, style="rounded,filled", fillcolor="#f4f7fb", color="#7a8ca3", fontname="Helvetica",'
             ' fontsize=10, margin="0.12,0.06"];',
             '  edge [color="#7a8ca3", arrowsize=0.7];']
    lines.append('  subgraph cluster_files { label="landed files"; style="rounded,dashed"; color="#b0b8c4";')
    for source in SOURCES:
        files, size = landed.get(source, (0, 0))
        label = f"{source}\\n{plural(files, 'file')}, {_size(size)}"
        lines.append(f'    "files:{source}" [label="{label}", shape=folder, style=filled, fillcolor="#fff8e6",'
                     f' tooltip="landed {source} files"];')
    lines.append("  }")
    for zone, title in ZONES:
        lines.append(f'  subgraph cluster_{zone} {{ label="{title}"; style="rounded"; color="#b0b8c4";')
        for name, facts in tables.items():
            if facts.table.zone == zone:
                lines.append(f"    {_node(name, facts)}")
        lines.append("  }")
    for name, facts in tables.items():
        table = facts.table
        if table.kind in ("landing", "quarantine") and table.source:
            lines.append(f'  "files:{table.source}" -> "{name}";')
        elif table.kind == "derived":
            lines.extend(f'  "{source}" -> "{name}";' for source in table.inputs if source in TABLES)
        elif table.kind == "failures":  # the landing tables' records that broke a warn rule (they stay there)
            lines.extend(f'  "{landing}" -> "{name}" [style=dashed];' for landing, other in tables.items()
                         if other.table.kind == "landing")
    last = [name for name, facts in tables.items() if facts.table.kind == "derived"][-1:]
    for name, facts in tables.items():  # the history tables after the flow, not beside the landed files
        if facts.table.kind == "history" and last:
            lines.append(f'  "{last[0]}" -> "{name}" [style=invis];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _node(name: str, facts: TableFacts) -> str:
    if facts.built:
        rows = plural(facts.rows, "row") if facts.rows is not None else "rows unknown"
        when = f"\\nupdated {_when(facts.updated)}" if facts.updated else ""
        style = ""
    else:
        rows, when = "not built", ""
        style = ', style="rounded,dashed", fontcolor="#7a8ca3"'
    tooltip = f"{name}: {rows}".replace('"', "'")
    return (f'"{name}" [label="{name}\\n{rows}{when}", URL="#table-{name}", target="_self", '
            f'tooltip="{tooltip}"{style}];')


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _size(size: int) -> str:
    value = float(size)
    for unit in ("B", "kB", "MB"):
        if value < 1000:
            return f"{value:,.0f} {unit}" if unit == "B" else f"{value:,.1f} {unit}"
        value /= 1000
    return f"{value:,.1f} GB"


def svg(tables: dict[str, TableFacts], landed: dict[str, tuple[int, int]]) -> str:
    """The lineage as inline SVG (without the XML prolog a page does not want)."""
    dot = shutil.which("dot")
    if dot is None:
        raise EngineError("the report draws its lineage graph with Graphviz, which is not installed: install "
                          "it (`apt-get install graphviz`, `brew install graphviz`, or scripts/setup.sh) so that "
                          "`dot` is on the PATH")
    try:
        done = subprocess.run([dot, "-Tsvg"], input=dot_source(tables, landed), capture_output=True, text=True,
                              timeout=DOT_SECONDS, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EngineError(f"Graphviz's dot could not draw the lineage graph ({exc})") from None
    if done.returncode != 0:
        raise EngineError(f"Graphviz's dot could not draw the lineage graph: {done.stderr.strip()[:300]}")
    text = done.stdout[done.stdout.index("<svg"):]
    text = re.sub(r'\bid="([^"]+)"', lambda m: f'id="lineage-{m.group(1)}"', text)
    return re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
