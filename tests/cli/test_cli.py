"""`stedi ...` end to end: output, exit codes and error messages.

Through click's CliRunner, through main(argv) as the console script calls it, and the script itself.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from click.testing import CliRunner, Result

from stedi import TABLES, Lakehouse, QueryError
from stedi.cli.main import cli

from support import FIXTURES, REPO, key_of, rows, stedi, write_jsonl

EDGE = FIXTURES / "edge"
TABLE_NAMES = ["customer_landing", "accelerometer_landing", "step_trainer_landing", "customer_trusted",
               "accelerometer_trusted", "customers_curated", "step_trainer_trusted",
               "machine_learning_curated"]  # in build order
ZONES = ["landing"] * 3 + ["trusted", "trusted", "curated", "trusted", "curated"]
ROWS_OUT = [14, 12, 11, 7, 8, 5, 6, 6]
ROWS_IN = [14, 12, 11, 14, 19, 15, 16, 19]  # derived tables: the sum of their inputs' rows
# `stedi tables` lists every table, the quarantine tables, the warn rules' failures and the histories included
# (quality_checks: a row per rule of each source, 7 rules).
LISTED = [("customer_landing", "landing", 14), ("accelerometer_landing", "landing", 12),
          ("step_trainer_landing", "landing", 11), ("customer_quarantine", "landing", 0),
          ("accelerometer_quarantine", "landing", 0), ("step_trainer_quarantine", "landing", 0),
          ("quality_failures", "landing", 0), ("customer_trusted", "trusted", 7),
          ("accelerometer_trusted", "trusted", 8),
          ("customers_curated", "curated", 5), ("step_trainer_trusted", "trusted", 6),
          ("machine_learning_curated", "curated", 6), ("reconciliation", "audit", 3),
          ("quality_checks", "audit", 7), ("runs", "audit", 12)]


def invoke(*args: str | Path, input: str | None = None) -> Result:
    """`stedi ARGS` through click's runner, stdout and stderr kept apart; errors propagate."""
    try:
        runner = CliRunner(mix_stderr=False)  # click < 8.2
    except TypeError:
        runner = CliRunner()  # click >= 8.2: result.stderr is always separate
    return runner.invoke(cli, [str(a) for a in args], input=input, catch_exceptions=False)




def assert_one_line_error(err: str, *fragments: str) -> None:
    assert err.startswith("error: ")
    assert err.count("\n") == 1 and err.endswith("\n")
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in err


def assert_sql_error(err: str, sql: str, column: int, *fragments: str) -> None:
    """One line of message, then DuckDB's position marker: the SQL, and a caret under `column` (0-based)."""
    message, quoted, caret = err.rstrip("\n").split("\n")
    assert_one_line_error(message + "\n", *fragments)
    assert quoted.endswith(sql) and quoted.startswith("LINE 1: ")
    assert caret.strip() == "^" and caret.index("^") == len("LINE 1: ") + column


@pytest.fixture(scope="module")
def built_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A lakehouse with the edge fixtures built, for read-only commands."""
    home = tmp_path_factory.mktemp("cli") / "lake"
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    lake.run()
    return home


@pytest.fixture
def landed(home: Path) -> Path:
    Lakehouse(home).ingest(EDGE)
    return home


# -- help ------------------------------------------------------------------------------------------
def test_help_lists_the_commands() -> None:
    result = invoke("--help")
    assert result.exit_code == 0
    for command in ("generate", "ingest", "run", "sql", "tables", "describe", "ddl", "--home", "--debug"):
        assert command in result.stdout


def test_help_through_main_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = stedi(capsys, "sql", "--help")
    assert code == 0
    assert "read-only SQL QUERY" in out


def test_version() -> None:
    """One version: written in stedi/_version.py, read by the packaging metadata, shown by --version, kept by
    every run (runs.stedi_version is checked where runs are made: tests/integration/test_history.py)."""
    from importlib.metadata import version

    from stedi import __version__

    result = invoke("--version")
    assert result.exit_code == 0
    assert result.stdout == f"stedi, version {__version__}\n"
    assert version("stedi-lakehouse") == __version__


# -- ingest ----------------------------------------------------------------------------------------
def test_ingest_reports_counts_skips_readme_and_is_idempotent(home: Path) -> None:
    first = invoke("--home", home, "ingest", EDGE)
    assert first.exit_code == 0
    assert first.stdout.startswith("3 landed, 0 already landed, 1 skipped (landing zone: ")
    assert f"skipped {EDGE / 'README.md'}: not a JSON file" in first.stderr
    for name in ("customer/customer-edge.json", "accelerometer/accelerometer-edge.json",
                 "step_trainer/step_trainer-edge.json"):
        assert f"landed {name} (" in first.stderr
        assert (home / "landing" / name).read_bytes() == (EDGE / name).read_bytes()

    second = invoke("--home", home, "ingest", EDGE)
    assert second.exit_code == 0
    assert second.stdout.startswith("0 landed, 3 already landed, 1 skipped")
    assert "already landed as customer/customer-edge.json" in second.stderr


def test_ingest_of_a_missing_path_fails(capsys: pytest.CaptureFixture[str], home: Path,
                                        tmp_path: Path) -> None:
    code, out, err = stedi(capsys, "--home", home, "ingest", tmp_path / "nope")
    assert code == 1 and out == ""
    assert_one_line_error(err, f"{tmp_path / 'nope'} does not exist")


def test_ingest_refuses_a_different_file_under_a_landed_name(
        capsys: pytest.CaptureFixture[str], landed: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    write_jsonl(other / "customer" / "customer-edge.json", [{"email": "changed@test.com"}])
    write_jsonl(other / "accelerometer" / "accelerometer-new.json", [{"user": "a@test.com", "timestamp": 1}])
    code, _, err = stedi(capsys, "--home", landed, "ingest", other)
    assert code == 1
    assert_one_line_error(err, "nothing was ingested", "customer-edge.json differs from the landed "
                                                        "customer/customer-edge.json")
    assert "needs a lakehouse of its own: `stedi --home OTHER_ROOT ingest ...`" in err  # two origins never mix
    # nothing landed: neither the conflicting file nor the new one in the same call
    assert (landed / "landing" / "customer" / "customer-edge.json").read_bytes() == \
        (EDGE / "customer" / "customer-edge.json").read_bytes()
    assert not (landed / "landing" / "accelerometer" / "accelerometer-new.json").exists()
    assert len(Lakehouse(landed).landed_files()) == 3


# -- run -------------------------------------------------------------------------------------------
def test_run_prints_a_summary_and_progress(landed: Path) -> None:
    result = invoke("--home", landed, "run")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["table", "zone", "status", "rows_in", "rows_out", "quarantined", "seconds"]
    assert set(lines[1]) == {"-", " "}
    table = [line.split() for line in lines[2:10]]
    assert [(r[0], r[1], r[2], int(r[3]), int(r[4])) for r in table] == list(
        zip(TABLE_NAMES, ZONES, ["built"] * 8, ROWS_IN, ROWS_OUT, strict=True))
    assert lines[10].startswith("8 built, 0 up to date, ") and "on duckdb (run " in lines[10]
    for number, name in enumerate(TABLE_NAMES, start=1):
        assert f"[{number}/8] {name} ..." in result.stderr
    assert "built: 14 rows in, 14 rows out" in result.stderr

    assert "Every landed record accounted for" in result.stdout
    again = invoke("--home", landed, "run")
    assert again.exit_code == 0
    assert again.stdout.splitlines()[10].startswith("0 built, 8 up to date, ")
    assert again.stderr.count("up to date: ") == 8

    # a new step trainer file: its landing table and the tables built from it grow, the rest stay
    more = landed.parent / "more" / "step_trainer" / "step_trainer-more.json"
    write_jsonl(more, [{"sensorReadingTime": 1655564999000, "serialNumber": "no-such-device",
                        "distanceFromObject": 1}])
    assert invoke("--home", landed, "ingest", more).exit_code == 0
    grown = invoke("--home", landed, "run")
    assert grown.stdout.splitlines()[10].startswith("0 built, 3 appended, 5 up to date, ")


def test_run_format_json(landed: Path) -> None:
    result = invoke("--home", landed, "run", "--format", "json")
    assert result.exit_code == 0
    report = json.loads(result.stdout)  # nothing but JSON on stdout
    assert list(report) == ["run_id", "engine", "seconds", "tables", "reconciliation", "quality_rules"]
    assert [(r["table"], r["zone"], r["status"], r["rows_in"], r["rows_out"]) for r in report["tables"]] == list(
        zip(TABLE_NAMES, ZONES, ["built"] * 8, ROWS_IN, ROWS_OUT, strict=True))
    assert all(isinstance(r["seconds"], float) for r in report["tables"])
    # what a script goes on with: the run's id (to tag it) and its account of every landed record
    assert result.stderr.splitlines()[-1].endswith(f"(run {report['run_id']})")
    assert invoke("--home", landed, "tag", "first", "--run", report["run_id"]).exit_code == 0
    assert [f["source"] for f in report["reconciliation"]] == ["customer", "accelerometer", "step_trainer"]
    assert all(f["balanced"] and f["read"] == f["kept"] + f["filtered"] + f["quarantined"] + f["duplicates"]
               for f in report["reconciliation"])


def test_run_select_builds_only_what_is_needed(landed: Path) -> None:
    result = invoke("--home", landed, "run", "--select", "customer_trusted", "--format", "csv")
    assert result.exit_code == 0
    assert [r["table"] for r in csv.DictReader(io.StringIO(result.stdout))] == ["customer_landing",
                                                                                 "customer_trusted"]
    listing = json.loads(invoke("--home", landed, "tables", "--format", "json").stdout)
    assert [t["table"] for t in listing if t["rows"] is not None] == [
        "customer_landing", "customer_quarantine", "quality_failures", "customer_trusted", "reconciliation",
        "quality_checks", "runs"]


def test_run_full_refresh_rebuilds_everything(landed: Path) -> None:
    invoke("--home", landed, "run")
    result = invoke("--home", landed, "run", "--full-refresh", "--format", "json")
    assert [r["status"] for r in json.loads(result.stdout)["tables"]] == ["built"] * 8


# -- sql -------------------------------------------------------------------------------------------
def test_sql_table_format_is_aligned(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", "select serialNumber, count(*) as readings, "
                    "max(distanceFromObject) as top from step_trainer_trusted group by 1 order by 1")
    assert result.exit_code == 0
    assert result.stdout == (
        "serialNumber  readings  top\n"
        "------------  --------  ---\n"
        "SN-ALICE             4  104\n"
        "SN-BOB               1  202\n"
        "SN-ERIN              1  105\n"
    )


CUSTOMERS_QUERY = ("select email, phone, shareWithPublicAsOfDate from customer_trusted "
                   "where email in ('alice@test.com', 'bob@test.com') order by email")


def test_sql_table_format_shows_null(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", CUSTOMERS_QUERY)
    assert result.stdout.splitlines()[2:] == ["alice@test.com  8015550100                     NULL",
                                              "bob@test.com    8015550200            1655560000000"]


def test_sql_csv_has_a_header_row(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", "--format", "csv", CUSTOMERS_QUERY)
    assert result.exit_code == 0
    assert result.stdout == ("email,phone,shareWithPublicAsOfDate\n"
                             "alice@test.com,8015550100,\n"
                             "bob@test.com,8015550200,1655560000000\n")


def test_sql_json_is_a_list_of_objects(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", "--format", "json", CUSTOMERS_QUERY)
    assert result.exit_code == 0
    assert json.loads(result.stdout) == [
        {"email": "alice@test.com", "phone": "8015550100", "shareWithPublicAsOfDate": None},
        {"email": "bob@test.com", "phone": "8015550200", "shareWithPublicAsOfDate": 1655560000000},
    ]


# 7 customers x 30,000: several batches of a streamed result (stedi.engines.duckdb.BATCH_ROWS), the second with
# text that must be quoted, whole and fractional floats, NULLs and booleans.
MANY_ROWS_QUERY = """
    select r.range as n, c.email, c.shareWithPublicAsOfDate,
           case when r.range between 21000 and 21002 then c.customerName || ', "the" customer' end as note,
           r.range / 4 as quarter, r.range % 2 = 0 as even
    from range(30000) r, customer_trusted c order by n, c.email"""


def test_sql_csv_and_json_of_many_batches_are_the_whole_result(built_home: Path) -> None:
    """Streamed batch by batch, the output is what the whole result renders to (as it was before streaming)."""
    from stedi.cli.output import render, rows_of
    from stedi.engines.duckdb import BATCH_ROWS

    whole = Lakehouse(built_home).sql(MANY_ROWS_QUERY)
    assert whole.num_rows == 210_000 > 2 * BATCH_ROWS
    rows = [list(row) for row in rows_of(whole)]
    out = {fmt: invoke("--home", built_home, "sql", "--format", fmt, MANY_ROWS_QUERY) for fmt in ("csv", "json")}
    for fmt, result in out.items():
        assert result.exit_code == 0, result.stderr
        assert result.stdout == render(whole.column_names, rows, fmt) + "\n", fmt
    csv_rows = list(csv.reader(io.StringIO(out["csv"].stdout)))
    assert csv_rows[1:3] == [["0", "alice@test.com", "", "", "0.0", "true"],
                             ["0", "bob@test.com", "1655560000000", "", "0.0", "true"]]
    assert csv_rows[1 + 147_001] == ["21000", "bob@test.com", "1655560000000", 'Bob Consent, "the" customer',
                                     "5250.0", "true"]


def test_sql_csv_and_json_of_no_rows(built_home: Path) -> None:
    query = "select email, phone from customer_trusted where false"
    assert invoke("--home", built_home, "sql", "--format", "csv", query).stdout == "email,phone\n"
    assert invoke("--home", built_home, "sql", "--format", "json", query).stdout == "[]\n"


def test_sql_csv_of_values_pyarrow_formats(built_home: Path) -> None:
    """Floats, times and the types pyarrow cannot write as CSV; a lone NULL field is `""`, not a blank line."""
    result = invoke("--home", built_home, "sql", "--format", "csv",
                    "select 0.00001 :: double as small, 2.5 :: double as f, -0.0 :: double as z, "
                    "timestamp '2022-06-18 10:00:00.123' as ts, [1, 2] as l, {'a': 1} as s, 'x' :: blob as b, "
                    "1.25 :: decimal(10, 2) as d, date '2022-01-02' as day")
    assert result.stdout == ("small,f,z,ts,l,s,b,d,day\n"
                             "0.00001,2.5,-0.0,2022-06-18T10:00:00.123000,\"[1, 2]\",{'a': 1},b'x',1.25,2022-01-02\n")
    lone = invoke("--home", built_home, "sql", "--format", "csv",
                  "select shareWithPublicAsOfDate as shared from customer_trusted order by email limit 2")
    assert lone.stdout == 'shared\n""\n1655560000000\n'


def test_sql_table_format_fetches_only_the_rows_it_shows(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", "select range as n from range(250000)")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 1000 and lines[-1].strip() == "999"
    assert result.stderr == "(1,000 of 250,000 rows shown; --all or --format csv for every row)\n"
    every = invoke("--home", built_home, "sql", "--all", "select range as n from range(1500)")
    assert len(every.stdout.splitlines()) == 2 + 1500 and every.stderr == ""


def test_sql_batches_reads_the_result_as_it_runs(built_home: Path) -> None:
    lake = Lakehouse(built_home)
    query = "select r.range as n, m.* from range(5) r, machine_learning_curated m order by all"
    with lake.sql_batches(query, batch_rows=4) as reader:
        batches = list(reader)
    assert len(batches) == 8 and {b.num_rows for b in batches[:-1]} == {4}
    assert pa.Table.from_batches(batches).equals(lake.sql(query))
    # An error met while reading, past the first batches, is the QueryError `sql` gives.
    failing = "select (case when range < 250000 then '1' else 'x' end) :: int as v from range(300000)"
    with pytest.raises(QueryError, match="Could not convert string 'x' to INT32\nLINE 1: select"):
        with lake.sql_batches(failing, batch_rows=1000) as reader:
            assert reader.read_next_batch().num_rows == 1000
            reader.read_all()
    with pytest.raises(QueryError, match="nosuch does not exist.*The tables are"):
        with lake.sql_batches("select * from nosuch"):
            pass


def test_sql_reads_the_query_from_stdin(built_home: Path) -> None:
    result = invoke("--home", built_home, "sql", "--format", "csv", "-",
                    input="select count(*) as n from machine_learning_curated")
    assert result.stdout == "n\n6\n"


@pytest.mark.parametrize("statement", [
    "delete from customer_trusted",
    "insert into customer_trusted select * from customer_trusted",
    "create table stolen as select * from customer_trusted",
    "copy customer_trusted to 'stolen.csv'",
    "attach 'other.db' as other",
])
def test_sql_refuses_statements_that_are_not_queries(
        capsys: pytest.CaptureFixture[str], built_home: Path, statement: str) -> None:
    code, out, err = stedi(capsys, "--home", built_home, "sql", statement)
    assert code == 1 and out == ""
    assert_one_line_error(err, "error: only queries are allowed")
    assert not Path("stolen.csv").exists() and not Path("other.db").exists()
    assert stedi(capsys, "--home", built_home, "sql", "--format", "csv",
                 "select count(*) as n from customer_trusted")[1] == "n\n7\n"


@pytest.mark.parametrize("read", [
    "select * from read_text('/etc/passwd')",
    "select count(*) from read_json('{home}/landing/customer/*.json')",
    "select * from read_parquet('{home}/../**/*.parquet')",
])
def test_sql_reads_no_file_but_the_tables_on_a_local_root(
        capsys: pytest.CaptureFixture[str], built_home: Path, read: str) -> None:
    """The sandbox (enable_external_access = false, allowed_directories = the tables' folders) on a local
    root: neither the landed JSON nor any file elsewhere is readable through `stedi sql`."""
    code, out, err = stedi(capsys, "--home", built_home, "sql", read.format(home=built_home))
    assert code == 1 and out == ""
    assert "file system operations are disabled by configuration" in err


def test_sql_refuses_explain_analyze_of_a_copy(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    lake = Lakehouse(home)
    lake.ingest(EDGE)
    lake.run(["customer_landing"])
    data_file = lake.catalog.state(TABLES["customer_landing"]).files[0]
    target = data_file.removeprefix("file://")
    code, _, err = stedi(capsys, "--home", home, "sql",
                         f"explain analyze copy (select 1 as a) to '{target}' (format parquet)")
    try:
        assert code == 1
        assert_one_line_error(err, "only queries are allowed")
    finally:  # whatever the refusal, the table must still be intact
        assert stedi(capsys, "--home", home, "sql", "--format", "csv",
                     "select count(*) as n from customer_landing")[1] == "n\n14\n"


def test_sql_bad_sql(capsys: pytest.CaptureFixture[str], built_home: Path) -> None:
    code, _, err = stedi(capsys, "--home", built_home, "sql", "selec 1")
    assert code == 1
    assert_sql_error(err, "selec 1", 0, "error: invalid SQL: Parser Error")
    # a query over lines: DuckDB's own line, and the marker under the place it names
    code, _, err = stedi(capsys, "--home", built_home, "sql", "select 1,\n  2 from\n customer_trusted wher x")
    assert code == 1
    assert err == ('error: invalid SQL: Parser Error: syntax error at or near "x"\n'
                   "LINE 3:  customer_trusted wher x\n"
                   "                               ^\n")


def test_sql_unknown_table_lists_the_tables(capsys: pytest.CaptureFixture[str], built_home: Path) -> None:
    code, _, err = stedi(capsys, "--home", built_home, "sql", "select * from nosuch")
    assert code == 1
    assert_sql_error(err, "select * from nosuch", len("select * from "), "nosuch does not exist",
                     "The tables are: customer_landing")


def test_sql_of_a_table_not_built_yet(capsys: pytest.CaptureFixture[str], landed: Path) -> None:
    Lakehouse(landed).run(["customer_trusted"])
    code, _, err = stedi(capsys, "--home", landed, "sql", "select count(*) from customers_curated")
    assert code == 1
    assert_sql_error(err, "select count(*) from customers_curated", len("select count(*) from "),
                     "error: table customers_curated has not been built yet; run `stedi run`")


# -- tables, describe ------------------------------------------------------------------------------
def test_tables_lists_every_table_with_zone_and_rows(built_home: Path) -> None:
    result = invoke("--home", built_home, "tables")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["table", "zone", "rows", "updated", "snapshot_id"]
    assert [line.split()[:3] for line in lines[2:]] == [[name, zone, str(rows)] for name, zone, rows in LISTED]

    listing = json.loads(invoke("--home", built_home, "tables", "--format", "json").stdout)
    assert [(t["table"], t["zone"], t["rows"]) for t in listing] == LISTED
    assert all(isinstance(t["snapshot_id"], int) and t["updated"] for t in listing)


def test_tables_before_any_run(landed: Path) -> None:
    listing = json.loads(invoke("--home", landed, "tables", "--format", "json").stdout)
    assert [(t["table"], t["rows"], t["snapshot_id"]) for t in listing] == [
        (name, None, None) for name, _, _ in LISTED]
    assert not (landed / "catalog.db").exists()  # a reader creates no catalog


@pytest.mark.parametrize("command", [["tables"], ["sql", "select 1"], ["describe", "customer_trusted"],
                                     ["reconcile"], ["reconcile", "--verify"],
                                     ["erase", "--dry-run", "--email", "a@b.c"]])
def test_a_reader_on_a_path_without_a_lakehouse_creates_nothing(capsys: pytest.CaptureFixture[str],
                                                                tmp_path: Path, command: list[str]) -> None:
    typo = tmp_path / "typo"
    code, out, err = stedi(capsys, "--home", typo, *command)
    assert (code, out) == (1, "")
    assert_one_line_error(err, f"error: nothing has landed in {typo} yet: `stedi ingest PATH` first (or give the "
                               "root of an existing lakehouse with --home or STEDI_HOME)")
    assert not typo.exists() and list(tmp_path.iterdir()) == [tmp_path / "cwd"]


def test_describe_lists_the_columns(built_home: Path) -> None:
    result = invoke("--home", built_home, "describe", "customer_trusted")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["column", "type", "description"]
    assert [line.split()[:2] for line in lines[2:12]] == [
        ["customerName", "string"], ["email", "string"], ["phone", "string"], ["birthDay", "string"],
        ["serialNumber", "string"], ["registrationDate", "bigint"], ["lastUpdateDate", "bigint"],
        ["shareWithResearchAsOfDate", "bigint"], ["shareWithPublicAsOfDate", "bigint"],
        ["shareWithFriendsAsOfDate", "bigint"]]
    assert lines[-1].startswith("customer_trusted (trusted): ") and "[7 rows, snapshot " in lines[-1]


def test_describe_json(built_home: Path) -> None:
    result = invoke("--home", built_home, "describe", "machine_learning_curated", "--format", "json")
    assert [(c["column"], c["type"]) for c in json.loads(result.stdout)] == [
        ("customer_key", "string"), ("sensorReadingTime", "bigint"), ("distanceFromObject", "int"),
        ("x", "double"), ("y", "double"), ("z", "double")]


# -- errors ----------------------------------------------------------------------------------------
def test_run_on_an_empty_landing_zone(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, out, err = stedi(capsys, "--home", home, "run")
    assert code == 1 and out == ""
    assert_one_line_error(err, f"nothing has landed in {home} yet", "`stedi ingest PATH`")
    assert not home.exists()  # no catalog, no failed run recorded (tests/cli/test_empty_root.py)


def test_debug_shows_the_traceback(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, _, err = stedi(capsys, "--home", home, "--debug", "run")
    assert code == 1
    assert "Traceback (most recent call last)" in err and "stedi.errors.LandingError" in err
    assert err.splitlines()[-1].startswith("error: nothing has landed in")


def test_describe_unknown_table(capsys: pytest.CaptureFixture[str], home: Path) -> None:
    code, _, err = stedi(capsys, "--home", home, "describe", "nope")
    assert code == 2  # a bad value of an argument is a usage error
    assert_one_line_error(err, "error: Invalid value for 'TABLE': 'nope' is not one of 'customer_landing', ",
                          "(`stedi describe --help` for help)")


def test_run_select_unknown_table_is_a_usage_error(capsys: pytest.CaptureFixture[str], landed: Path) -> None:
    code, _, err = stedi(capsys, "--home", landed, "run", "--select", "nope")
    assert code == 2
    assert "Invalid value for '--select': 'nope' is not one of" in err
    assert "Traceback" not in err


def test_unwritable_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    home = blocker / "lake"
    code, _, err = stedi(capsys, "--home", home, "ingest", str(EDGE))
    assert code == 1
    assert_one_line_error(err, f"the lakehouse root {home} is not writable")
    for command in (["tables"], ["sql", "select 1"]):  # readers write nothing: there is just no lakehouse
        code, _, err = stedi(capsys, "--home", home, *command)
        assert code == 1, command
        assert_one_line_error(err, f"nothing has landed in {home} yet")


def test_run_on_an_unwritable_root(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    code, _, err = stedi(capsys, "--home", blocker / "lake", "run")
    assert code == 1
    # nothing can have landed there, and run says so before it would create anything (`ingest` says the
    # root is not writable: test_unwritable_root)
    assert_one_line_error(err, f"nothing has landed in {blocker / 'lake'} yet")
    assert "internal error" not in err


def test_corrupt_catalog(capsys: pytest.CaptureFixture[str], landed: Path) -> None:
    Lakehouse(landed).run(["customer_landing"])
    (landed / "catalog.db").write_bytes(os.urandom(64) * 64)
    code, out, err = stedi(capsys, "--home", landed, "tables")
    assert code == 1 and out == ""
    assert_one_line_error(err, "error: cannot use the catalog", f"{landed / 'catalog.db'} is not a valid "
                                                                  "SQLite catalog")


# -- settings: --home > STEDI_HOME > stedi.toml > ./lakehouse ---------------------------------------
def landing_zone_of(result: Result) -> Path:
    assert result.exit_code == 0
    return Path(result.stdout.rsplit("(landing zone: ", 1)[1].rstrip(")\n"))


def test_home_default_is_lakehouse_in_the_working_directory() -> None:
    assert landing_zone_of(invoke("ingest", EDGE)) == Path.cwd() / "lakehouse" / "landing"
    assert (Path.cwd() / "lakehouse" / "landing" / "customer" / "customer-edge.json").is_file()


def test_home_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cwd = Path.cwd()
    (cwd / "stedi.toml").write_text('home = "from-toml"\n')
    assert landing_zone_of(invoke("ingest", EDGE)) == cwd / "from-toml" / "landing"

    monkeypatch.setenv("STEDI_HOME", str(tmp_path / "from-env"))
    assert landing_zone_of(invoke("ingest", EDGE)) == tmp_path / "from-env" / "landing"

    assert landing_zone_of(invoke("--home", tmp_path / "from-option", "ingest", EDGE)) == \
        tmp_path / "from-option" / "landing"
    for home in (cwd / "from-toml", tmp_path / "from-env", tmp_path / "from-option"):
        assert len(Lakehouse(home).landed_files()) == 3


# -- generate (written alongside) -------------------------------------------------------------------
@pytest.mark.skipif(not (Path(__file__).parents[2] / "src" / "stedi" / "generate.py").exists(),
                    reason="stedi.generate not written yet")
def test_generate_then_ingest_and_run(tmp_path: Path, home: Path) -> None:
    out = tmp_path / "synthetic"
    generated = invoke("generate", "--out", out, "--scale", "0.05", "--seed", "1")
    assert generated.exit_code == 0
    assert generated.stdout.splitlines()[0].split() == ["source", "records"]
    assert "files written to" in generated.stdout

    assert invoke("--home", home, "ingest", out).stdout.split(" landed")[0] != "0"
    report = json.loads(invoke("--home", home, "run", "--format", "json").stdout)
    rows_out = {r["table"]: r["rows_out"] for r in report["tables"]}
    assert rows_out["customer_trusted"] > 0 and rows_out["machine_learning_curated"] > 0
    lake = Lakehouse(home)
    owner = {key_of(email): email for (email,) in rows(lake, "select email from customers_curated")}
    phone = set(rows(lake, "select user, timestamp from accelerometer_trusted"))
    ml = rows(lake, "select customer_key, sensorReadingTime from machine_learning_curated")
    assert all((owner[k], t) in phone for k, t in ml)  # each device paired with its owner's phone only



def test_generate_next_batch_lands_beside_its_base(tmp_path: Path, home: Path) -> None:
    base, batch = tmp_path / "base", tmp_path / "batch"
    assert invoke("generate", "--out", base, "--scale", "0.05").exit_code == 0
    generated = invoke("generate", "--out", batch, "--next-batch-of", base, "--share", "0.2")
    assert generated.exit_code == 0 and "3 files written to" in generated.stdout
    assert "10 new and 1 changed customers" in generated.stderr
    assert invoke("--home", home, "ingest", base, batch).stdout.startswith("6 landed")
    refused = invoke("generate", "--out", base, "--next-batch-of", base)
    assert refused.exit_code == 2 and "another folder" in refused.stderr

# -- the installed console script ------------------------------------------------------------------
def test_console_script_end_to_end(tmp_path: Path) -> None:
    script = shutil.which("stedi", path=str(Path(sys.executable).parent)) or shutil.which("stedi")
    assert script, "the stedi console script is not installed"
    home = tmp_path / "lake"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script, "--home", str(home), *args], capture_output=True, text=True,
                              timeout=120)

    assert run("ingest", str(EDGE)).returncode == 0
    built = run("run")
    assert built.returncode == 0, built.stderr
    assert "8 built, 0 up to date" in built.stdout
    queried = run("sql", "--format", "csv", "select distanceFromObject, x, y, z from machine_learning_curated "
                                            "where sensorReadingTime = 1655564401000 order by 1")
    assert queried.stdout == "distanceFromObject,x,y,z\n101,1.0,0.0,0.0\n202,0.0,1.0,0.0\n"
    failed = run("history", "--as-of", "nope")
    assert failed.returncode == 1
    assert failed.stderr.startswith("error: 'nope' names no tag, run or time") and "Traceback" not in failed.stderr
    usage = run("run", "--select", "nope")  # the script ends without the interpreter's teardown
    assert usage.returncode == 2 and "Invalid value for '--select'" in usage.stderr


def test_the_demo_query_of_the_makefile_runs(built_home: Path) -> None:
    """`make demo` ends with a query; it must keep up with the tables' columns."""
    [query] = re.findall(r'sql "([^"]+)"', (REPO / "Makefile").read_text())
    result = invoke("--home", built_home, "sql", "--format", "csv", query)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[1] == "6,3"  # ML rows and customers on the edge fixtures
