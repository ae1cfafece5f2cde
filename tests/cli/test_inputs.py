"""Hostile input and interruption: symlinks out of a folder, a full disk, Ctrl-C, a query that runs too
long, unknown ids, bad addresses and bad settings. Each gives one clear line, never "internal error"."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stedi import Lakehouse

from support import FIXTURES, STEDI, TEST_KEY, rows, stedi_process, tree_digest, write_jsonl
from support import built as build

EDGE = FIXTURES / "edge"
LONG_QUERY = "select sum(a.range * b.range) from range(1000000) a, range(1000000) b"  # a trillion rows


@pytest.fixture
def built(tmp_path: Path) -> Path:
    return Path(build(tmp_path / "lake", EDGE).settings.home)


def one_line_error(result: subprocess.CompletedProcess[str], *fragments: str) -> None:
    assert result.returncode == 1, result
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
    assert "internal error" not in result.stderr and "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, (fragment, result.stderr)


# -- symlinks -------------------------------------------------------------------------------------------
def test_ingest_lands_no_symlink_that_leads_outside_the_folder(tmp_path: Path) -> None:
    outside = write_jsonl(tmp_path / "private" / "secrets.json", [{"email": "x@y.z"}])
    (tmp_path / "private" / "more").mkdir()
    write_jsonl(tmp_path / "private" / "more" / "customer-1.json", [{"email": "w@y.z"}])
    folder = tmp_path / "delivery"
    real = write_jsonl(folder / "customer" / "customer-a.json", [{"email": "a@b.c"}])
    (folder / "customer" / "customer-b.json").symlink_to(outside)
    (folder / "customer" / "customer-c.json").symlink_to(real)  # inside the folder: fine
    (folder / "customer" / "elsewhere").symlink_to(tmp_path / "private" / "more")

    result = stedi_process(tmp_path / "lake", "ingest", folder)
    assert result.returncode == 0, result.stderr
    assert f"skipped {folder / 'customer' / 'customer-b.json'}: a symbolic link to {outside}, outside {folder}; " \
           "not followed (--follow-symlinks lands it)" in result.stderr
    assert f"skipped {folder / 'customer' / 'elsewhere'}: a symbolic link to {tmp_path / 'private' / 'more'}" \
        in result.stderr
    assert "1 landed, 1 already landed, 2 skipped" in result.stdout
    assert sorted(p.name for p in (tmp_path / "lake" / "landing" / "customer").iterdir()) == ["customer-a.json"]

    followed = stedi_process(tmp_path / "lake", "ingest", folder, "--follow-symlinks")
    assert followed.returncode == 0, followed.stderr
    assert sorted(p.name for p in (tmp_path / "lake" / "landing" / "customer").iterdir()) == [
        "customer-1.json", "customer-a.json", "customer-b.json"]


# -- a full disk ----------------------------------------------------------------------------------------
def can_mount() -> bool:
    return os.geteuid() == 0 and subprocess.run(["unshare", "--mount", "true"], capture_output=True).returncode == 0


@pytest.mark.slow
@pytest.mark.parametrize("room_kb", [200, 500])
def test_a_full_disk_during_a_run_is_one_clear_line_and_the_next_run_converges(tmp_path: Path,
                                                                               room_kb: int) -> None:
    """The lakehouse on a small tmpfs (in a mount namespace of its own): the run fails for want of space at
    the first commit (200 kB spare) or at a later table (500 kB); the tables stay readable, and once the
    disk has room the next run builds the rest."""
    if not can_mount():
        pytest.skip("mounting a small file system needs root and unshare --mount")
    from stedi.generate import generate

    generate(tmp_path / "data", scale=0.3, seed=3)
    assert stedi_process(tmp_path / "lake", "ingest", tmp_path / "data").returncode == 0  # landed, no catalog yet
    size = sum(p.stat().st_size for p in (tmp_path / "lake").rglob("*") if p.is_file()) // 1024 + room_kb
    disk = tmp_path / "disk"
    disk.mkdir()
    script = """
        set -u
        mount -t tmpfs -o size="$2"k tmpfs "$1" && cp -a "$3" "$1/lake" || exit 99
        "$4" --home "$1/lake" run > /dev/null 2> "$5/run.err"; echo $? > "$5/run.code"
        "$4" --home "$1/lake" tables --format json > "$5/tables.json" 2> "$5/tables.err"; echo $? > "$5/tables.code"
        mount -o remount,size=200m "$1"
        "$4" --home "$1/lake" run > "$5/rerun.out" 2> "$5/rerun.err"; echo $? > "$5/rerun.code"
    """
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    done = subprocess.run(["unshare", "--mount", "sh", "-c", script, "sh", str(disk), str(size),
                           str(tmp_path / "lake"), str(STEDI), str(out)], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    def read(name: str) -> str:
        return (out / name).read_text()

    assert read("run.code").strip() == "1"
    err = read("run.err").splitlines()[-1]
    assert err.startswith("error: no space left on the device (") and "internal error" not in err, err
    assert "free some space" in err
    assert read("tables.code").strip() == "0", read("tables.err")  # every table readable, as it was
    assert len(json.loads(read("tables.json"))) == 15
    assert read("rerun.code").strip() == "0", read("rerun.err")
    assert "every landed record accounted for" in read("rerun.out").lower()


# -- interruption ---------------------------------------------------------------------------------------
def interruptible() -> None:
    """Ctrl-C as at a terminal: a job started in the background (as CI may start the tests) ignores SIGINT,
    and so would every process it starts."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def engine_cpu_seconds(pid: int) -> float:
    """The CPU time used by the threads of process `pid` but its main thread (Linux: /proc/PID/task): the
    query engine's. Starting `stedi` runs on the main thread; a query, on the engine's threads."""
    used = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        if task.name == str(pid):
            continue
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):  # a thread that just ended
            continue
        used += int(fields[11]) + int(fields[12])  # utime, stime (clock ticks)
    return used / os.sysconf("SC_CLK_TCK")


def wait_for_the_query(process: subprocess.Popen[str], cpu_seconds: float, timeout: float = 120) -> None:
    """Until the query of a `stedi sql` process runs: its engine threads used `cpu_seconds` of CPU (some
    tenths of a second go to reading the catalog first), or the process ended. However busy the machine."""
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        try:
            if engine_cpu_seconds(process.pid) >= cpu_seconds:
                return
        except FileNotFoundError:  # it ended
            return
        assert time.monotonic() < deadline, f"the query did not start within {timeout:g} s"
        time.sleep(0.05)


def test_ctrl_c_stops_a_query_with_exit_130(built: Path) -> None:
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    process = subprocess.Popen([str(STEDI), "--home", str(built), "sql", LONG_QUERY], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=interruptible)
    wait_for_the_query(process, cpu_seconds=1.0)  # Ctrl-C while the query runs, not while stedi starts
    assert process.poll() is None, process.communicate()
    process.send_signal(signal.SIGINT)
    started = time.monotonic()
    try:
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert time.monotonic() - started < 10
    # (DuckDB ends its progress line with a newline as it stops)
    assert err.lstrip("\n").startswith("interrupted: whatever was committed before stays consistent")
    assert "Traceback" not in err and "internal error" not in err
    assert out == ""


STREAMING_QUERY = "select a.range as a, b.range as b from range(1000000) a, range(1000000) b"  # rows at once


def streamed(built: Path, *args: str) -> subprocess.Popen[bytes]:
    """`stedi sql STREAMING_QUERY --format csv ARGS`, interruptible, its output read through a pipe."""
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    return subprocess.Popen([str(STEDI), "--home", str(built), "sql", STREAMING_QUERY, "--format", "csv", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, preexec_fn=interruptible)


def drain(process: subprocess.Popen[bytes]) -> tuple[int, bytes, str]:
    """Read the process's output to its end (counted, not kept): (bytes read, the first 100, stderr)."""
    assert process.stdout is not None and process.stderr is not None
    start = process.stdout.read(100)
    size = len(start)
    while chunk := process.stdout.read(1 << 16):
        size += len(chunk)
    return size, start, process.stderr.read().decode()


def test_ctrl_c_stops_a_query_while_its_csv_streams_out(built: Path) -> None:
    process = streamed(built)
    try:
        assert process.stdout is not None
        assert process.stdout.read(1 << 20).startswith(b"a,b\n0,0\n")  # rows written while the query runs
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _size, _start, err = drain(process)
        assert process.wait(timeout=30) == 130, err
    finally:
        process.kill()
    assert time.monotonic() - started < 10
    assert err.lstrip("\n").startswith("interrupted: whatever was committed before stays consistent")
    assert "Traceback" not in err and "internal error" not in err


def test_a_query_past_its_timeout_is_stopped_while_its_csv_streams_out(built: Path) -> None:
    process = streamed(built, "--timeout", "1.5")
    try:
        assert process.stdout is not None
        first = process.stdout.read(100)
        running = time.monotonic()  # its first rows are out: the query runs (its 1.5 s began before)
        size, _start, err = drain(process)
        assert process.wait(timeout=30) == 1, err
    finally:
        process.kill()
    assert time.monotonic() - running < 10  # (starting `stedi` is not counted: a busy machine takes a while)
    assert first.startswith(b"a,b\n0,0\n") and size > 1 << 20  # rows were written before the timeout
    assert err == "error: the query was stopped after 1.5 s (--timeout, or the setting query_timeout)\n"


def test_a_reader_that_stops_early_stops_the_query_quietly(built: Path) -> None:
    """`stedi sql ... --format csv | head`: once head has its lines, stedi stops without an error."""
    process = streamed(built)
    try:
        assert process.stdout is not None and process.stderr is not None
        assert process.stdout.readline() == b"a,b\n"
        process.stdout.close()
        assert process.wait(timeout=30) == 0
        assert process.stderr.read() == b""
    finally:
        process.kill()


def test_a_streamed_csv_keeps_memory_flat(built: Path) -> None:
    """5 million rows (about 200 MB as Arrow, gigabytes as Python rows) take little more memory than one."""
    def peak_mb(query: str) -> float:
        env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
        process = subprocess.Popen([str(STEDI), "--home", str(built), "sql", query, "--format", "csv"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
        _pid, status, usage = os.wait4(process.pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        return usage.ru_maxrss / (1 << 20 if sys.platform == "darwin" else 1 << 10)  # bytes on macOS, else kB

    one = peak_mb("select 1")
    many = peak_mb("select range as n, range * 1.5 as x, 'row ' || range as label, c.email "
                   "from range(5000000), (select email from customer_trusted limit 1) c")
    assert many - one < 100, (one, many)


@pytest.mark.parametrize("point", ["run:landing-read", "run:derived-committed@2"])
def test_ctrl_c_during_a_run_exits_130_and_the_next_run_converges(tmp_path: Path, point: str) -> None:
    """Ctrl-C at a known moment (stedi.faults sends SIGINT there): in the main thread while landing, and
    while a worker thread builds the derived tables."""
    home = tmp_path / "lake"
    assert stedi_process(home, "ingest", EDGE).returncode == 0
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY, "STEDI_KILL_AT": f"{point}:INT"}
    process = subprocess.Popen([str(STEDI), "--home", str(home), "run"], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env, preexec_fn=interruptible)
    try:
        _out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 130, err
    assert err.splitlines()[-1].startswith("interrupted: whatever was committed before stays consistent")
    assert "Traceback" not in err and "internal error" not in err
    rerun = stedi_process(home, "run")
    assert rerun.returncode == 0, rerun.stderr
    assert [t.rows for t in Lakehouse(home).tables()][:12] == [14, 12, 11, 0, 0, 0, 0, 7, 8, 5, 6, 6]


def test_a_query_past_its_timeout_is_stopped(built: Path) -> None:
    env = {**os.environ, "STEDI_PSEUDONYM_KEY": TEST_KEY}
    process = subprocess.Popen([str(STEDI), "--home", str(built), "sql", LONG_QUERY, "--timeout", "1"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        wait_for_the_query(process, cpu_seconds=0.3)
        running = time.monotonic()  # (starting `stedi` is not counted: a busy machine takes a while)
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    one_line_error(subprocess.CompletedProcess(process.args, process.returncode, out, err),
                   "the query was stopped after 1 s (--timeout, or the setting query_timeout)")
    assert time.monotonic() - running < 10
    from_setting = stedi_process(built, "sql", LONG_QUERY, env={"STEDI_QUERY_TIMEOUT": "0.5"})
    one_line_error(from_setting, "stopped after 0.5 s")
    assert stedi_process(built, "sql", "select 1", "--timeout", "30").returncode == 0


def test_a_sql_error_keeps_the_position_marker(built: Path) -> None:
    result = stedi_process(built, "sql", "select emial from customer_trusted")
    assert result.returncode == 1
    message, quoted, caret = result.stderr.rstrip("\n").split("\n")
    assert message.startswith('error: Binder Error: Referenced column "emial" not found')
    assert quoted == "LINE 1: select emial from customer_trusted"
    assert caret.index("^") == len("LINE 1: select ")


# -- ids and addresses ----------------------------------------------------------------------------------
def test_an_unknown_run_id_is_an_error_that_lists_the_latest(built: Path) -> None:
    [(latest,)] = rows(Lakehouse(built), "select max_by(run_id, run_at) from reconciliation")
    one_line_error(stedi_process(built, "reconcile", "--run", "nope"), "error: no run 'nope' in the reconciliation; "
                   f"the latest runs are: {latest}")


def test_erase_refuses_what_is_not_an_address_and_changes_nothing(built: Path) -> None:
    before = tree_digest(built)
    result = stedi_process(built, "erase", "--email", "alice@test.com", "--email", "not-an-email")
    one_line_error(result, "error: 'not-an-email' is not an email address; nothing was erased")
    assert tree_digest(built) == before
    assert not (built / "privacy").exists()


def test_erase_of_an_address_that_matches_nothing_says_so(built: Path) -> None:
    result = stedi_process(built, "erase", "--email", "nobody@test.com")
    assert result.returncode == 0, result.stderr
    assert "0 records matched: no landed record names this person; kept out of later deliveries" in result.stdout
    receipt = json.loads((built / "privacy" / "erasures.jsonl").read_text().splitlines()[-1])
    assert (receipt["people"], receipt["unmatched"], receipt["landed_records_removed"]) == (1, 1, 0)
    assert "nobody" not in (built / "privacy" / "erasures.jsonl").read_text()


def test_erase_dry_run_shows_what_would_go_and_changes_nothing(built: Path) -> None:
    before = tree_digest(built)
    result = stedi_process(built, "erase", "--dry-run", "--email", "alice@test.com", "--email", "nobody@test.com",
                           "--format", "csv")
    assert result.returncode == 0, result.stderr
    counts = dict(line.rsplit(",", 1) for line in result.stdout.splitlines()[1:])
    assert counts == {"landed accelerometer records": "5", "landed customer records": "1",
                      "landed step_trainer records": "5", "customer_landing rows": "1",
                      "accelerometer_landing rows": "5", "step_trainer_landing rows": "5",
                      "customer_trusted rows": "1", "accelerometer_trusted rows": "4", "customers_curated rows": "1",
                      "step_trainer_trusted rows": "4", "machine_learning_curated rows": "4"}
    text = stedi_process(built, "erase", "--dry-run", "--email", "alice@test.com", "--email", "nobody@test.com")
    assert "dry run, nothing changed: 2 people, 11 landed records matched in 3 files, 1 device of theirs; 1 of " \
           "them match no landed record" in text.stdout
    assert tree_digest(built) == before
    erased = Lakehouse(built).erase(["alice@test.com"])  # the dry run counted what the erasure removes
    assert erased.landed_records_removed == 11 and erased.rows_removed["machine_learning_curated"] == 4


# -- settings -------------------------------------------------------------------------------------------
BAD_ENVIRONMENT = [
    ("STEDI_TARGET_FILE_SIZE", "abc", "target_file_size = 'abc' from STEDI_TARGET_FILE_SIZE is not a size: write a "
     'number of bytes with a unit, such as "256MB", "1GiB" or "500kB"'),
    ("STEDI_MAX_RECORD_BYTES", "-1", "max_record_bytes = '-1' from STEDI_MAX_RECORD_BYTES is out of range: it must "
     "be a whole number of bytes, 1 or more"),
    ("STEDI_MAX_RECORD_BYTES", "1.5", "max_record_bytes = '1.5' from STEDI_MAX_RECORD_BYTES is not valid: it must "
     "be a whole number of bytes, 1 or more"),
    ("STEDI_MAX_QUARANTINE_SHARE", "2", "max_quarantine_share = '2' from STEDI_MAX_QUARANTINE_SHARE is out of "
     "range: it must be a share from 0 to 1"),
    ("STEDI_SNAPSHOT_RETENTION_DAYS", "soon", "snapshot_retention_days = 'soon' from STEDI_SNAPSHOT_RETENTION_DAYS "
     "is not valid: it must be a number of days, 0 or more"),
    ("STEDI_LOCK_WAIT", "-3", "lock_wait = '-3' from STEDI_LOCK_WAIT is out of range: it must be a number of "
     "seconds, 0 or more"),
    ("STEDI_QUERY_TIMEOUT", "0", "query_timeout = '0' from STEDI_QUERY_TIMEOUT is out of range: it must be a "
     "number of seconds, more than 0"),
    ("STEDI_OPTIMIZE_GRACE_MINUTES", "nan", "optimize_grace_minutes = 'nan' from STEDI_OPTIMIZE_GRACE_MINUTES is "
     "out of range: it must be a number of minutes, 0 or more"),
    ("STEDI_ENGINE", "oracle", "unknown engine 'oracle' from STEDI_ENGINE; choose one of: duckdb, spark"),
    ("STEDI_CONSENT_POLICY", "maybe", "unknown consent_policy 'maybe' from STEDI_CONSENT_POLICY; choose one of: "
     "any, since_consent"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_ENVIRONMENT)
def test_a_bad_setting_in_the_environment_is_one_clear_line(built: Path, name: str, value: str,
                                                            message: str) -> None:
    result = stedi_process(built, "tables", env={name: value})
    assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    if name not in ("STEDI_ENGINE", "STEDI_CONSENT_POLICY"):
        result = stedi_process(built, "run", env={name: value})
        assert (result.returncode, result.stderr) == (1, f"error: {message}\n")
    else:  # `run` reads these two as its own options: click says which value it refuses
        result = stedi_process(built, "run", env={name: value})
        assert result.returncode == 2 and f"Invalid value for '--{name[6:].lower().replace('_', '-')}': " \
            f"'{value}' is not one of" in result.stderr


# (stedi.toml, the whole message: {config} is the file)
BAD_FILE = [
    ('target_file_size = true', "target_file_size = True in {config} is not a size: write a number of bytes with a "
     'unit, such as "256MB", "1GiB" or "500kB"'),
    ('max_record_bytes = "lots"', "max_record_bytes = 'lots' in {config} is not valid: it must be a whole number of "
     "bytes, 1 or more"),
    ('colour = "blue"', "unknown setting(s) colour in {config}; known: catalog, catalog_file, checks_dir, "
     "consent_policy, duckdb, engine, home, lock_wait, max_quarantine_share, max_record_bytes, "
     "optimize_grace_minutes, pseudonym_key_file, query_timeout, s3, snapshot_retention_days, spark, "
     "target_file_size, verify_reconciliation"),
    ('[s3]\npath_style = "maybe"', "[s3] path_style = 'maybe' in {config} is not valid: it must be true or false"),
]
# DuckDB checks its own settings: the message ends with DuckDB's reason
BAD_DUCKDB_SETTINGS = [
    ('[duckdb]\nthreads = "many"', "[duckdb] threads = 'many' is not a valid DuckDB setting"),
    ('[duckdb]\nmemory_limit = "lots"', "[duckdb] memory_limit = 'lots' is not a valid DuckDB setting"),
    ('[duckdb]\nno_such_setting = 1', "[duckdb] no_such_setting = 1 is not a valid DuckDB setting"),
]


@pytest.mark.parametrize(("toml", "message"), BAD_FILE)
def test_a_bad_setting_in_stedi_toml_is_one_clear_line(built: Path, tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "stedi.toml"
    config.write_text(toml + "\n")
    for command in (["run"], ["sql", "select 1"]):
        result = stedi_process(built, "--config", config, *command)
        assert (result.returncode, result.stderr) == (1, f"error: {message.format(config=config)}\n")


@pytest.mark.parametrize(("toml", "message"), BAD_DUCKDB_SETTINGS)
def test_a_bad_duckdb_setting_is_one_clear_line(built: Path, tmp_path: Path, toml: str, message: str) -> None:
    config = tmp_path / "stedi.toml"
    config.write_text(toml + "\n")
    for command in (["run"], ["sql", "select 1"]):
        one_line_error(stedi_process(built, "--config", config, *command), f"error: {message}: ")


def test_bad_option_values_are_usage_errors(built: Path) -> None:
    for args in (["run", "--wait", "-1"], ["sql", "select 1", "--timeout", "0"],
                 ["optimize", "--retention-days", "-2"]):
        result = stedi_process(built, *args)
        assert result.returncode == 2 and "Invalid value" in result.stderr, (args, result.stderr)
