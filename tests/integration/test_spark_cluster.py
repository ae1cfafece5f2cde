"""The whole run on a multi-process Spark cluster (issue 18): `local-cluster[2,1,1024]` starts two executor
JVMs beside the driver, so the landing read's tasks really run in other processes, as on Glue's workers.

With `--engine spark` the landed JSON is read, validated and quarantined by Spark tasks. These tests check
that the result is the embedded path's, record for record: the real data made dirty by hand and by seeded
random damage, the rules (warn, quarantine, fail), and what a failed read leaves behind (nothing).
Each Spark run is a `stedi` process of its own: a test process's Spark session (local[*]) serves its
other tests, and a cluster needs a session of its own."""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from stedi import TABLES, Lakehouse

from support import FIXTURES, rows, stedi_process

pytestmark = [pytest.mark.spark, pytest.mark.slow]

# The cluster, with no task retries (tests/fixtures/spark/no-retries.toml): a task that fails fails the test.
CLUSTER = {"STEDI_SPARK_MASTER": "local-cluster[2,1,1024]", "STEDI_CONFIG": str(FIXTURES / "spark" / "no-retries.toml")}
RUN_COLUMNS = {"run_id", "run_at"}  # differ between two runs by nature
OWN = {"started_at", "ended_at", "engine", "engine_version", "snapshot_id", "seconds"}  # a run's own, in `runs`


def damage(record: str, rng: random.Random) -> bytes:
    """One landed record damaged in one of the ways a device, an app or a hand-edited export breaks it."""
    obj = json.loads(record)
    key = rng.choice(sorted(obj))
    how = rng.choice(["truncate", "string_number", "number_string", "null_key", "bool", "real_for_int",
                      "drop_key", "twice", "junk", "bad_utf8", "huge_number", "nan", "nest", "array", "scalar",
                      "crlf", "extra_field"])
    if how == "truncate":
        return record[: rng.randrange(len(record))].encode()
    if how == "string_number":
        return json.dumps({**obj, key: str(obj[key])}).encode()
    if how == "number_string":
        return json.dumps({**obj, key: 7}).encode()
    if how == "null_key":
        return json.dumps({**obj, key: None}).encode()
    if how == "bool":
        return json.dumps({**obj, key: True}).encode()
    if how == "real_for_int":
        return json.dumps({**obj, key: 1.5}).encode()
    if how == "drop_key":
        return json.dumps({k: v for k, v in obj.items() if k != key}).encode()
    if how == "twice":
        return (record.rstrip("}") + f", {json.dumps(key)}: {json.dumps(obj[key])}}}").encode()
    if how == "junk":
        return record.encode() + bytes(rng.randrange(33, 127) for _ in range(rng.randint(1, 6)))
    if how == "bad_utf8":
        return record.encode().replace(b'"', b'"\xc3\x28', 1)
    if how == "huge_number":
        return json.dumps({**obj, key: 10 ** rng.randint(19, 60)}).encode()
    if how == "nan":
        return record.replace(json.dumps(obj[key]), "NaN", 1).encode()
    if how == "nest":
        return json.dumps({**obj, key: [[[obj[key]]]]}).encode()
    if how == "array":
        return json.dumps([obj]).encode()
    if how == "scalar":
        return json.dumps(obj[key]).encode()
    if how == "crlf":
        return record.encode() + b"\r"
    return json.dumps({**obj, "note": "extra"}).encode()  # a field outside the schema: kept, and counted


def damaged_copy(source: Path, out: Path, seed: int, share: float = 0.004) -> Path:
    """A copy of the landing data with `share` of the records of every file damaged (seeded), plus files
    only the exact parser reads: a byte-order mark, a JSON array, blank lines, an empty file."""
    rng = random.Random(seed)
    for path in sorted(source.rglob("*.json")):
        lines = path.read_text(encoding="utf-8").splitlines()
        out_lines = [damage(x, rng) if x.strip() and rng.random() < share else x.encode() for x in lines]
        if rng.random() < 0.3:
            out_lines.insert(rng.randrange(len(out_lines) + 1), b"   ")  # a blank line is not a record
        target = out / path.relative_to(source)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(b"\n".join(out_lines) + b"\n")
    first = sorted((source / "accelerometer" / "landing").glob("*.json"))[0].read_text().splitlines()
    folder = out / "accelerometer" / "landing"
    (folder / f"accelerometer-bom-{seed}.json").write_bytes(b"\xef\xbb\xbf" + "\n".join(first[:40]).encode())
    (folder / f"accelerometer-array-{seed}.json").write_text("[" + ",\n".join(first[40:60]) + "]")
    (folder / f"accelerometer-blank-{seed}.json").write_text("\n\n")
    # records the shipped rules flag: a reading from 1999 (quarantine), a customer born after registering (warn)
    stale = {**json.loads(first[0]), "timestamp": 915148800000}
    (folder / f"accelerometer-stale-{seed}.json").write_text(json.dumps(stale) + "\n")
    customer = json.loads((source / "customer" / "landing").glob("*.json").__next__().read_text().splitlines()[0])
    customer.update(email=f"late.born.{seed}@test.com", birthDay="2999-01-01")
    (out / "customer" / "landing" / f"customer-warned-{seed}.json").write_text(json.dumps(customer) + "\n")
    return out


def table_rows(lake: Lakehouse, name: str) -> Counter[tuple[Any, ...]]:
    skip = RUN_COLUMNS | (OWN if name == "runs" else set())
    columns = ", ".join(f'"{c}"' for c in TABLES[name].column_names if c not in skip)
    return Counter(rows(lake, f"select {columns} from {name}"))


def run_on_cluster(home: Path, landing: Path, *more: str) -> str:
    """`stedi ingest` then `stedi run --engine spark` on the cluster; the run's output."""
    ingest = stedi_process(home, "ingest", landing)
    assert ingest.returncode == 0, ingest.stderr
    run = stedi_process(home, "run", "--engine", "spark", *more, env=CLUSTER, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    return run.stderr + run.stdout  # progress goes to stderr


@pytest.fixture(scope="module")
def dirty(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    """The real data with seeded random damage, and the edge fixtures beside it."""
    out = damaged_copy(shared_data, tmp_path_factory.mktemp("dirty"), seed=18)
    shutil.copytree(FIXTURES / "edge", out, dirs_exist_ok=True)
    return out


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, dirty: Path) -> tuple[Lakehouse, Lakehouse, str]:
    """The dirty data built by the embedded engine, and by Spark on the cluster (with its output)."""
    embedded = Lakehouse(tmp_path_factory.mktemp("embedded") / "lake")
    embedded.ingest(dirty)
    embedded.run()
    home = tmp_path_factory.mktemp("cluster") / "lake"
    output = run_on_cluster(home, dirty)
    return embedded, Lakehouse(home), output


def test_the_landing_read_runs_in_tasks_on_both_executors(built: tuple[Lakehouse, Lakehouse, str]) -> None:
    """The accelerometer's landed files (6.6 MB) are split into tasks that both executors ran."""
    output = built[2]
    tasks = re.search(r"\n\s+accelerometer read by (\d+) Spark tasks in (\d+) executor processes\n", output)
    assert tasks is not None, output
    assert int(tasks[1]) >= 4 and int(tasks[2]) == 2


@pytest.mark.parametrize("name", [n for n, t in TABLES.items() if t.kind != "history" or n == "reconciliation"])
def test_every_table_holds_the_embedded_paths_rows(built: tuple[Lakehouse, Lakehouse, str], name: str) -> None:
    """Landing, quarantine (file, position, reason, message, raw text), quality_failures, every derived
    table and the reconciliation: the same rows from the executors as from the embedded read."""
    embedded, cluster, _ = built
    expected = table_rows(embedded, name)
    assert table_rows(cluster, name) == expected
    if name in ("accelerometer_quarantine", "customer_quarantine", "step_trainer_quarantine"):
        assert sum(expected.values()) > 0  # the damage reached every source


def test_the_damage_covers_every_reason_and_every_record_is_accounted_for(
        built: tuple[Lakehouse, Lakehouse, str], dirty: Path) -> None:
    _, cluster, _ = built
    reasons = {r for (r,) in rows(cluster, "select distinct reason from accelerometer_quarantine "
                                           "union select distinct reason from customer_quarantine "
                                           "union select distinct reason from step_trainer_quarantine")}
    assert {"invalid_utf8", "invalid_json", "not_an_object", "duplicate_key", "missing_key", "wrong_type",
            "out_of_range", "check:timestamp_in_range"} <= reasons
    [(warned,)] = rows(cluster, "select count(*) from quality_failures where rule = 'birthday_plausible'")
    assert warned >= 1
    landed = {s: sum(1 for p in (dirty / s).rglob("*.json") for x in _records(p)) for s in ("customer",
                                                                                           "accelerometer",
                                                                                           "step_trainer")}
    figures = {f["source"]: f for f in cluster.reconcile()}
    assert {s: figures[s]["read"] for s in landed} == landed
    assert all(f["balanced"] for f in figures.values())


def _records(path: Path) -> list[bytes]:
    """The records of a landed file as this test counts them: an array's elements, else non-blank lines."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"["):
        return [b""] * len(json.loads(data))
    return [x for x in data.splitlines() if x.strip(b" \t\r")]


def test_a_second_seed_of_damage_gives_the_same_records_on_both_paths(tmp_path: Path, shared_data: Path) -> None:
    landing = damaged_copy(shared_data, tmp_path / "landing", seed=7, share=0.01)
    embedded = Lakehouse(tmp_path / "embedded")
    embedded.ingest(landing)
    embedded.run()
    home = tmp_path / "cluster"
    run_on_cluster(home, landing, *(f"--select={t}" for t in ("customer_landing", "accelerometer_landing",
                                                                "step_trainer_landing")))
    cluster = Lakehouse(home)
    for name in ("customer_landing", "accelerometer_landing", "step_trainer_landing", "customer_quarantine",
                 "accelerometer_quarantine", "step_trainer_quarantine", "quality_failures"):
        assert table_rows(cluster, name) == table_rows(embedded, name), name


@pytest.mark.parametrize("where", ["cluster", "embedded"])
def test_a_broken_fail_rule_stops_the_read_and_leaves_nothing(tmp_path: Path, shared_data: Path, where: str
                                                              ) -> None:
    """A `fail` rule that records of several tasks break: one message counting every record it matched, the
    same on both paths, nothing committed, and no file of the read left in the warehouse (the customers,
    read before, included)."""
    home = tmp_path / "lake"
    rule = home / "checks" / "accelerometer" / "no_x_above_half.sql"
    rule.parent.mkdir(parents=True)
    rule.write_text("-- action: fail\n-- reason: x above 0.5\nselect * from accelerometer where x > 0.5\n")
    [(expected,)] = rows(_embedded_counts(tmp_path, shared_data), "select count(*) from accelerometer_landing "
                                                                  "where x > 0.5")
    assert stedi_process(home, "ingest", shared_data).returncode == 0
    engine = ["--engine", "spark"] if where == "cluster" else []
    run = stedi_process(home, "run", *engine, env=CLUSTER if where == "cluster" else None, timeout=600)
    assert run.returncode != 0
    assert (f"error: check no_x_above_half ({home}/checks/accelerometer/no_x_above_half.sql) failed on "
            f"{expected:,} accelerometer records: x above 0.5. Nothing was committed") in run.stderr
    assert "Traceback" not in run.stderr
    assert not [p for p in (home / "warehouse").rglob("*.parquet") if "/runs/" not in str(p)]
    assert not [t.name for t in Lakehouse(home).tables() if t.built and t.name != "runs"]


def _embedded_counts(tmp_path: Path, shared_data: Path) -> Lakehouse:
    lake = Lakehouse(tmp_path / "reference")
    lake.ingest(shared_data)
    lake.run(select=["accelerometer_landing"])
    return lake


def test_an_executor_killed_mid_read_changes_no_record(tmp_path: Path, built: tuple[Lakehouse, Lakehouse, str],
                                                       dirty: Path) -> None:
    """kill -9 of an executor JVM right after one of its tasks wrote its batch's files, before the driver
    heard of them (fault point landing:batch-read), as when a Glue worker is lost: Spark runs the task
    again on the other executor, which starts its batch from nothing, and every table equals the embedded
    path's."""
    home = tmp_path / "lake"
    marker = tmp_path / "killed"
    assert stedi_process(home, "ingest", dirty).returncode == 0
    one_retry = str(FIXTURES / "spark" / "one-retry.toml")  # the killed task's second attempt, and no more
    run = stedi_process(home, "run", "--engine", "spark", timeout=600,
                        env={**CLUSTER, "STEDI_CONFIG": one_retry, "STEDI_KILL_AT": "landing:batch-read",
                             "STEDI_KILL_ONCE": str(marker)})
    assert run.returncode == 0, run.stderr[-3000:]
    assert marker.exists()  # an executor was killed
    embedded, cluster = built[0], Lakehouse(home)
    for name in [n for n, t in TABLES.items() if t.kind != "history" or n == "reconciliation"]:
        assert table_rows(cluster, name) == table_rows(embedded, name), name
    # the killed attempt's files were deleted by the task run again: on disk, exactly the table's files
    for name in ("accelerometer_landing", "step_trainer_landing", "customer_landing"):
        state = cluster.catalog.state(TABLES[name])
        assert state is not None
        on_disk = {p.as_uri() for p in (home / "warehouse").rglob("*.parquet") if f"/{name}/" in str(p)}
        assert on_disk == set(state.files), name


def test_executors_without_stedi_are_a_clear_error(tmp_path: Path) -> None:
    """The executors run stedi's reader: a Python there without stedi (the interpreter this virtual
    environment was made from) is said in one line, with the fix."""
    bare = Path(sys.base_prefix) / "bin" / "python3"
    assert subprocess.run([str(bare), "-c", "import stedi"], capture_output=True).returncode != 0
    home = tmp_path / "lake"
    assert stedi_process(home, "ingest", FIXTURES / "edge").returncode == 0
    run = stedi_process(home, "run", "--engine", "spark", env={"PYSPARK_PYTHON": str(bare)}, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        "error: the Spark executors cannot import stedi, which reads the landed files there: install stedi "
        "where the executors run Python (on Glue, --additional-python-modules does it), or point PYSPARK_PYTHON "
        "at a Python that has it")
