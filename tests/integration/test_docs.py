"""Every command line of README.md and docs/*.md runs, in order, as the docs give it.

Each document's fenced `sh` and `python` blocks become one bash script, run in a scratch folder laid out as a
checkout beside `../shared/data/stedi` (the documented data), with the repository's venv on PATH. A block fails
the test when any of its commands does. What the docs show a command printing is compared with what it prints:
a `text` block after `<!-- doc-test: prints -->` holds lines that must appear, in order, in the output of the
block before it (`...` in a line matches anything), and README's table of rows is checked against
`stedi tables`.

Directives, HTML comments on the line before a block (invisible on GitHub):
  <!-- doc-test: skip: REASON -->   not run, for the reason given (AWS, a cluster, the suite itself)
  <!-- doc-test: setup: COMMANDS --> shell run first, unseen by the reader (data a section assumes)
  <!-- doc-test: needs: s3 -->       run with the AWS variables pointing at a local S3 server
Example values stand for the reader's own: a run id written as `2026...T...` is the latest run's, a time
`2026-11-30T12:00:00Z` is now.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

import s3server
from support import REPO, SHARED_DATA

DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
DIRECTIVE = re.compile(r"<!--\s*doc-test:\s*(skip|setup|needs|prints)\s*(?::\s*(.*?))?\s*-->")
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```\s*$", re.S | re.M)
RUN_ID = re.compile(r"\b20\d{6}T(?:\d{6}-[0-9a-f]{8}|\.\.\.)")
TIME = re.compile(r"\b2026-11-30T12:00:00Z\b")


@dataclass
class Block:
    doc: str
    line: int
    language: str
    text: str
    skip: str | None = None
    setup: list[str] = field(default_factory=list)
    needs: set[str] = field(default_factory=set)
    prints: list[str] = field(default_factory=list)


def blocks(path: Path) -> list[Block]:
    """The runnable blocks of a document, with their directives and the output they are shown to print."""
    text = path.read_text(encoding="utf-8")
    found: list[Block] = []
    last = 0
    for fence in FENCE.finditer(text):
        between, last = text[last:fence.start()], fence.end()
        pending = []  # the directives on the lines right above the fence
        for above in reversed(between.rstrip().splitlines()):
            directive = DIRECTIVE.fullmatch(above.strip())
            if directive is None:
                break
            pending.insert(0, (directive.group(1), (directive.group(2) or "").strip()))
        language, body = fence.group(1), fence.group(2)
        line = text.count("\n", 0, fence.start()) + 1
        if ("prints", "") in pending and found:
            found[-1].prints = [x for x in body.splitlines() if x.strip()]
            continue
        if language not in ("sh", "python"):
            continue
        block = Block(path.name, line, language, body)
        for kind, value in pending:
            if kind == "skip":
                block.skip = value
            elif kind == "setup":
                block.setup.append(value)
            elif kind == "needs":
                block.needs.update(value.split())
        found.append(block)
    return found


def script(block_list: list[Block]) -> str:
    """The bash script of a document's blocks: each announced on stderr, then run; the first failure ends it."""
    lines = ["set -eo pipefail",
             "latest_run() { stedi history --format json --limit 1 | python -c "
             "'import json, sys; print(json.load(sys.stdin)[0][\"run_id\"])'; }",
             SERVE]
    for number, block in enumerate(block_list):
        if block.skip is not None:
            continue
        lines.append(f"echo '::block {number} ({block.doc}:{block.line})' >&2")
        lines.append(f"echo '::block {number}'")
        lines += block.setup
        if block.language == "python":
            lines += ["python - <<'DOC_TEST_PYTHON'", "from stedi import Lakehouse", "lake = Lakehouse()",
                      block.text.rstrip("\n"), "DOC_TEST_PYTHON"]
        else:
            body = RUN_ID.sub("$(latest_run)", block.text)
            lines.append(TIME.sub("$(date -u +%Y-%m-%dT%H:%M:%SZ)", body).rstrip("\n"))
    return "\n".join(lines) + "\n"


# `stedi serve` runs until Ctrl-C: here it serves on a free port, answers one page, then gets its Ctrl-C.
SERVE = r"""
stedi() {
  if [ "${1:-}" != serve ]; then command stedi "$@"; return; fi
  shift
  # (a background job of a script starts with Ctrl-C ignored: give it back, as a terminal would)
  python -c 'import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp("stedi", sys.argv[1:])' \
    stedi serve "$@" --port 0 2> serve.err & local pid=$!
  for _ in $(seq 300); do grep -q '^serving ' serve.err && break; sleep 0.1; done
  local url; url=$(grep -o 'http://[^ ]*' serve.err | head -1)
  python -c 'import sys, urllib.request; page = urllib.request.urlopen(sys.argv[1], timeout=120).read();
assert b"<html" in page.lower(), page[:200]' "$url"
  echo "served $url" >&2
  kill -INT "$pid"; local code=0; wait "$pid" || code=$?
  [ "$code" = 130 ] || { echo "stedi serve ended with $code" >&2; cat serve.err >&2; return 1; }
}
"""


def scratch(tmp_path: Path) -> Path:
    """A checkout's folder beside `../shared/data/stedi`, with the repository's venv: the docs' working folder."""
    work = tmp_path / "repo"
    shutil.copytree(REPO, work, ignore=shutil.ignore_patterns(".git", ".venv*", "lakehouse", "demo-data", "bench",
                                                              "tests", "__pycache__", "*.egg-info", ".mypy_cache"))
    data = tmp_path / "shared" / "data"
    data.mkdir(parents=True)
    (data / "stedi").symlink_to(SHARED_DATA)
    (work / ".venv").symlink_to(Path(sys.executable).parent.parent)
    return work


def run_doc(doc: Path, tmp_path: Path, env: dict[str, str]) -> tuple[list[Block], list[str], str]:
    found = blocks(doc)
    work = scratch(tmp_path)
    bash = script(found)
    (tmp_path / "doc.sh").write_text(bash)
    venv_bin = str(Path(sys.executable).parent)
    environment = {**os.environ, **env, "PATH": f"{venv_bin}:{os.environ['PATH']}", "HOME": str(tmp_path / "home"),
                   "VENV": str(Path(sys.executable).parent.parent)}
    environment.pop("STEDI_HOME", None)
    done = subprocess.run(["bash", str(tmp_path / "doc.sh")], cwd=work, env=environment, capture_output=True,
                          text=True, timeout=1200)
    started = re.findall(r"^::block (\d+) \((.*)\)$", done.stderr, re.M)
    where = started[-1][1] if started else "before the first block"
    assert done.returncode == 0, f"{doc.name}: the block at {where} failed ({done.returncode}):\n{done.stderr[-4000:]}"
    outputs = re.split(r"^::block \d+\n", done.stdout, flags=re.M)[1:]
    return found, outputs, str(work)


def check_prints(found: list[Block], outputs: list[str]) -> None:
    ran = [b for b in found if b.skip is None]
    for block, output in zip(ran, outputs, strict=True):
        position = 0
        lines = output.splitlines()
        for expected in block.prints:
            pattern = re.compile(".*".join(re.escape(part) for part in expected.rstrip().split("...")) + r"\s*$")
            at = next((i for i in range(position, len(lines)) if pattern.match(lines[i].rstrip())), None)
            assert at is not None, (f"{block.doc}:{block.line} says it prints {expected!r}; it printed:\n"
                                    + "\n".join(lines[-40:]))
            position = at + 1


def documented_rows(readme: Path) -> dict[str, int]:
    """README's table of the rows each table holds on the real data (the rows given as a number)."""
    rows = {}
    for names, count in re.findall(r"^\| (`[^|]+`) \| \w+ \| ([\d,]+) \|", readme.read_text(), re.M):
        for name in re.findall(r"`(\w+)`", names):
            rows[name] = int(count.replace(",", ""))
    return rows


@pytest.mark.slow
@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_documented_command_runs(doc: Path, tmp_path: Path) -> None:
    found = blocks(doc)
    skipped = [b for b in found if b.skip is not None]
    assert all(b.skip for b in skipped), "a skipped block must say why"
    if all(b.skip is not None for b in found):
        pytest.skip(f"{doc.name}: no block runs here ({'; '.join(sorted({b.skip or '' for b in found}))})"
                    if found else f"{doc.name} has no command")
    env: dict[str, str] = {}
    server = None
    if any("s3" in b.needs for b in found):
        server = s3server.start()
        env = {**server.env(), "AWS_CONFIG_FILE": str(tmp_path / "none"),
               "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none"), "XDG_DATA_HOME": str(tmp_path / "xdg")}
        for bucket in re.findall(r"s3://([a-z0-9-]+)/", doc.read_text()):
            try:
                server.create_bucket(bucket)
            except Exception:  # noqa: BLE001 (created already)
                pass
    try:
        found, outputs, work = run_doc(doc, tmp_path, env)
    finally:
        if server is not None:
            server.stop()
    check_prints(found, outputs)
    if doc.name == "README.md":
        listed = subprocess.run([str(Path(sys.executable).with_name("stedi")), "--home",
                                 str(Path(work) / "real-lakehouse"), "tables", "--format", "json"],
                                capture_output=True, text=True, check=True,
                                env={**os.environ, "HOME": str(tmp_path / "home")})
        actual = {t["table"]: t["rows"] for t in json.loads(listed.stdout)}
        expected = documented_rows(doc)
        assert len(expected) >= 12
        assert {name: actual[name] for name in expected} == expected


def test_the_harness_reads_directives_and_prints(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text("text\n\n<!-- doc-test: skip: needs an AWS account -->\n```sh\naws s3 ls\n```\n\n"
                   "<!-- doc-test: setup: stedi generate --out d -->\n<!-- doc-test: setup: ls d -->\n"
                   "```sh\nstedi ingest d\n```\n\n"
                   "<!-- doc-test: prints -->\n```text\n3 landed...\n```\n\n```toml\nx = 1\n```\n"
                   "```python\nprint(1)\n```\n")
    found = blocks(doc)
    assert [(b.language, b.skip, b.setup, b.prints) for b in found] == [
        ("sh", "needs an AWS account", [], []), ("sh", None, ["stedi generate --out d", "ls d"], ["3 landed..."]),
        ("python", None, [], [])]
    assert RUN_ID.sub("R", "stedi tag v0 --run 20261129T... ; stedi sql --as-of 20261130T014357-1a2b3c4d q") == \
        "stedi tag v0 --run R ; stedi sql --as-of R q"
