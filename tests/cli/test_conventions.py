"""The CLI's conventions (README, "CLI conventions"), command by command, through main() as the script runs it.

Global options before or after the command; --format on every command that reports something, with nothing but
the data on stdout for csv and json; notes never on both streams; exit codes 0 / 1 / 2 (bad option values too);
one-line usage errors; -q and -v; --as-of wherever a state is read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from stedi.cli.main import cli

from support import FIXTURES, stedi

EDGE = FIXTURES / "edge"




@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lakehouse of the edge fixtures, built twice (two runs) and tagged at the first."""
    from stedi import Lakehouse

    root = tmp_path_factory.mktemp("conventions") / "lake"
    lake = Lakehouse(root)
    lake.ingest(EDGE)
    lake.run()
    lake.tag("first")
    lake.run(full_refresh=True)
    return root


def test_global_options_are_taken_before_or_after_the_command(capsys: pytest.CaptureFixture[str],
                                                              home: Path, tmp_path: Path) -> None:
    before = stedi(capsys, "--home", home, "tables", "--format", "json")
    after = stedi(capsys, "tables", "--home", home, "--format", "json")
    assert before[0] == after[0] == 0 and json.loads(before[1]) == json.loads(after[1])
    assert len(json.loads(after[1])) == 15
    # after the command, it wins over the one before it (and over STEDI_HOME)
    code, out, _ = stedi(capsys, "--home", tmp_path / "nowhere", "tables", "--home", home, "--format", "json")
    assert code == 0 and len(json.loads(out)) == 15
    # --config after the command is read
    config = tmp_path / "other.toml"
    config.write_text(f'home = "{home}"\n')
    code, out, _ = stedi(capsys, "describe", "runs", "--config", config)
    assert code == 0 and "runs (audit)" in out
    # --debug after the command: the traceback of an error
    code, _, err = stedi(capsys, "sql", "select * from nope", "--home", home, "--debug")
    assert code == 1 and "Traceback" in err and "\nerror: Catalog Error: " in err
    # and each command's help names them
    code, out, _ = stedi(capsys, "tables", "--help")
    assert code == 0
    assert "Global options, before or after the command: --home, --config, --debug, -q, -v." in " ".join(out.split())


def test_quiet_and_verbose(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "lake"
    code, out, err = stedi(capsys, "-q", "--home", root, "ingest", EDGE)
    assert code == 0 and err == "" and out.startswith("3 landed")
    code, out, err = stedi(capsys, "run", "--home", root, "-v")
    assert code == 0 and "8 built" in out
    progress = err.splitlines()
    assert progress and all(re.match(r"\[ *\d+\.\d\d s\] ", line) for line in progress)
    code, out, err = stedi(capsys, "run", "--home", root, "--full-refresh", "--quiet")
    assert code == 0 and err == "" and "8 built" in out
    # -q keeps warnings and errors
    code, _, err = stedi(capsys, "-q", "--home", root, "sql", "select * from nope")
    assert code == 1 and err.startswith("error: ")


REPORTING = [  # each command that reports something, run with --format json on the built lakehouse
    ("tables",), ("describe", "runs"), ("history", "--limit", "1"), ("tags",), ("reconcile",),
    ("sql", "select 1 as one"), ("tag", "json-tag"), ("untag", "json-tag"), ("optimize", "--grace-minutes", "0"),
    ("attach",), ("erase", "--dry-run", "--email", "nobody@example.com"), ("run",),
]


@pytest.mark.parametrize("args", REPORTING, ids=lambda a: a[0])
def test_json_is_all_of_stdout_and_notes_go_to_stderr(capsys: pytest.CaptureFixture[str], home: Path,
                                                      args: tuple[str, ...]) -> None:
    if args[0] == "untag":
        stedi(capsys, "--home", home, "tag", args[1])
    code, out, _ = stedi(capsys, "--home", home, *args, "--format", "json")
    assert code == 0
    json.loads(out)  # nothing else on stdout
    if args[0] == "untag":
        stedi(capsys, "--home", home, "tag", args[1])
    code, table, err = stedi(capsys, "--home", home, *args)
    assert code == 0
    assert not set(table.splitlines()) & set(err.splitlines()) - {""}  # never on both streams


def test_the_commands_that_write_files_report_them_in_json(capsys: pytest.CaptureFixture[str], home: Path,
                                                           tmp_path: Path) -> None:
    code, out, err = stedi(capsys, "generate", "--out", tmp_path / "gen", "--scale", "0.01", "--format", "json")
    assert code == 0
    assert [r["source"] for r in json.loads(out)] == ["customer", "accelerometer", "step_trainer"]
    assert "3 files written to" in err
    code, out, err = stedi(capsys, "generate", "--out", tmp_path / "gen2", "--scale", "0.01")
    assert "3 files written to" in out and "files written" not in err and "3 files" not in err
    code, out, _ = stedi(capsys, "--home", tmp_path / "lake", "ingest", tmp_path / "gen", "--format", "json")
    landed = json.loads(out)
    assert code == 0 and [r["status"] for r in landed] == ["landed"] * 3 and all(r["bytes"] for r in landed)
    code, out, _ = stedi(capsys, "ddl", "--out", tmp_path / "ddl", "--format", "json")
    assert code == 0 and len(json.loads(out)) == 15
    code, out, _ = stedi(capsys, "deploy", "aws", "--bucket", "acme-stedi", "--out", tmp_path / "aws",
                         "--no-bundle", "--format", "json")
    assert code == 0 and all(Path(r["file"]).exists() for r in json.loads(out))
    code, out, _ = stedi(capsys, "--home", home, "report", "--out", tmp_path / "r.html", "--format", "json")
    assert code == 0 and json.loads(out)[0]["bytes"] == (tmp_path / "r.html").stat().st_size
    code, out, _ = stedi(capsys, "keygen", "--out", tmp_path / "k.key", "--format", "json")
    assert code == 0 and json.loads(out) == [{"key_file": str(tmp_path / "k.key"), "created": True}]


def test_tag_says_its_summary_once(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out, err = stedi(capsys, "--home", home, "tag", "once")
    assert code == 0 and out.startswith("tagged 12 tables as once, the state of run ") and "tagged" not in err
    stedi(capsys, "--home", home, "untag", "once")


@pytest.mark.parametrize(("args", "message"), [
    (("tables", "--format", "jsn"), "Invalid value for '--format': 'jsn' is not one of 'table', 'csv', 'json'."),
    (("deploy", "aws", "--bucket", "A_B"), "--bucket 'A_B' is not a valid S3 bucket name"),
    (("deploy", "aws", "--bucket", "acme", "--schedule", "daily"), "--schedule 'daily' must be AWS's cron"),
    (("tag", "bad name"), "Invalid value for 'NAME': 'bad name' cannot name a tag"),
    (("run", "--select", "runs"), "Invalid value for '--select': 'runs' is not one of"),
    (("export", "runs", "--out", "x"), "Invalid value for 'TABLE': 'runs' is not one of"),
    (("history", "--table", "nope"), "Invalid value for '--table': 'nope' is not one of"),
    (("tables", "--nope"), "No such option '--nope'."),
    (("nope",), "No such command 'nope'."),
])
def test_usage_errors_are_one_line_and_exit_2(capsys: pytest.CaptureFixture[str], home: Path,
                                              args: tuple[str, ...], message: str) -> None:
    code, out, err = stedi(capsys, "--home", home, *args)
    assert code == 2 and out == ""
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert message in err and err.rstrip().endswith("--help` for help)")


def test_ingest_exits_1_when_nothing_named_landed(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("not landing data\n")
    code, out, err = stedi(capsys, "--home", tmp_path / "lake", "ingest", notes)
    assert code == 1 and out == ""
    assert err.startswith(f"error: nothing landed: 1 path given, every one skipped (e.g. {notes}: ")
    assert not (tmp_path / "lake" / "landing" / "customer").exists()
    # a folder with landing data and other files: what lands lands, the rest is named, exit 0
    (tmp_path / "drop" / "customer").mkdir(parents=True)
    (tmp_path / "drop" / "customer" / "customer-1.json").write_bytes((EDGE / "customer" / "customer-edge.json")
                                                                     .read_bytes())
    (tmp_path / "drop" / "readme.md").write_text("hello\n")
    code, out, err = stedi(capsys, "--home", tmp_path / "lake", "ingest", tmp_path / "drop")
    assert code == 0 and out.startswith("1 landed, 0 already landed, 1 skipped") and "readme.md" in err
    # what is landed already is done: exit 0
    code, out, _ = stedi(capsys, "--home", tmp_path / "lake", "ingest", tmp_path / "drop" / "customer")
    assert code == 0 and out.startswith("0 landed, 1 already landed")


def test_as_of_wherever_a_state_is_read(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    first = json.loads(stedi(capsys, "--home", home, "tags", "--format", "json")[1])[0]
    now = {t["table"]: t for t in json.loads(stedi(capsys, "--home", home, "tables", "--format", "json")[1])}
    code, out, _ = stedi(capsys, "--home", home, "tables", "--as-of", "first", "--format", "json")
    then = {t["table"]: t for t in json.loads(out)}
    assert code == 0
    # the full refresh since made new snapshots of the same rows; the audit tables held the first run only
    assert then["machine_learning_curated"]["rows"] == now["machine_learning_curated"]["rows"] == 6
    assert then["machine_learning_curated"]["snapshot_id"] != now["machine_learning_curated"]["snapshot_id"]
    assert then["runs"]["rows"] == 12 and now["runs"]["rows"] >= 24
    code, out, _ = stedi(capsys, "--home", home, "describe", "machine_learning_curated", "--as-of", "first")
    assert code == 0 and f"snapshot {then['machine_learning_curated']['snapshot_id']}]" in out
    code, out, _ = stedi(capsys, "--home", home, "history", "--as-of", "first", "--format", "json")
    assert code == 0 and {r["run_id"] for r in json.loads(out)} == {first["run_id"]}
    # and the commands that read a state take it
    for command in ("tables", "describe", "history", "sql", "report", "serve", "export"):
        assert "--as-of" in {o for p in cli.commands[command].params for o in p.opts}, command
