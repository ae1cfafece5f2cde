"""Helpers for tests (importable as `support`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse

REPO = Path(__file__).resolve().parents[1]
# The real STEDI landing data (customer/, accelerometer/, step_trainer/): the folder STEDI_TEST_DATA names,
# else the repository's sibling ../shared/data/stedi. Read at import, before any test runs in a folder of its
# own (conftest.py's isolated_env): a relative STEDI_TEST_DATA is taken from where pytest was started.
DATA_VARIABLE = "STEDI_TEST_DATA"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "stedi"
_data_setting = os.environ.get(DATA_VARIABLE, "")
SHARED_DATA = Path(_data_setting).expanduser().resolve() if _data_setting else DEFAULT_DATA
DATA_ORIGIN = f"{DATA_VARIABLE}={_data_setting}" if _data_setting else f"the default: {DATA_VARIABLE} is not set"
FIXTURES = Path(__file__).parent / "fixtures"
TEST_KEY = "stedi-test-key-0123456789abcdef"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(lake: Lakehouse, query: str) -> list[tuple[Any, ...]]:
    """The rows of a query as tuples, in the query's order."""
    table = lake.sql(query)
    return [tuple(r.values()) for r in table.to_pylist()]


def key_of(email: str, key: str = TEST_KEY) -> str:
    """customer_key computed here, independently of stedi: HMAC-SHA256 of the trimmed, lower-cased email."""
    import hashlib
    import hmac

    return hmac.new(key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


STEDI = Path(sys.executable).with_name("stedi")  # the console script of the interpreter running the tests
# Set by tests/unit/conftest.py while a unit test runs: the reason a `stedi` process is refused then.
REFUSE_PROCESSES: str | None = None


def stedi_process(home: Path | str, *args: str | Path, kill_at: str | None = None, env: dict[str, str] | None = None,
                  timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """`stedi --home HOME ARGS` as a process of its own (so it can be killed); `kill_at` names a point of
    stedi.faults where it kills itself with SIGKILL."""
    if REFUSE_PROCESSES:
        import pytest

        pytest.fail(f"a `stedi` process: {REFUSE_PROCESSES}")
    environment = {k: v for k, v in os.environ.items() if k != "STEDI_KILL_AT"}
    environment.update({"STEDI_PSEUDONYM_KEY": TEST_KEY, **(env or {})})
    if kill_at:
        environment["STEDI_KILL_AT"] = kill_at
    return subprocess.run([str(STEDI), "--home", str(home), *map(str, args)], capture_output=True, text=True,
                          env=environment, timeout=timeout)


def contents(lake: Lakehouse) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows as a multiset (a row twice counts twice), the histories (reconciliation, quality_checks, runs)
    aside: they hold each run's own ids and times."""
    from stedi.tables import TABLES

    return {t.name: Counter(rows(lake, f"select * from {t.name}")) if t.built else Counter()
            for t in lake.tables() if TABLES[t.name].kind != "history"}


def latest_figures(lake: Lakehouse) -> list[tuple[Any, ...]]:
    """The latest run's reconciliation, per source, without the run's id and time."""
    return [tuple(v for k, v in f.items() if k not in ("run_id", "run_at")) for f in lake.reconcile()]


@dataclass(frozen=True)
class Batches:
    """Two days of deliveries made by `stedi generate` (tests/integration/conftest.py)."""

    first: Path  # a day's delivery of every source
    second: Path  # the next day's: other customers with their readings, in files of new names


@dataclass(frozen=True)
class Expected:
    """What a lakehouse holds after both days, ingested and run without interruption."""

    tables: dict[str, Counter[tuple[Any, ...]]]
    figures: list[tuple[Any, ...]]


def built(home: Path, *folders: Path) -> Lakehouse:
    """A lakehouse at `home` that ingested and ran each folder in turn."""
    lake = Lakehouse(home)
    for folder in folders:
        lake.ingest(folder)
        lake.run()
    return lake


def assert_field_ids(lake: Lakehouse) -> int:
    """Every data file of every table (of every snapshot the table keeps: tags and older states too) gives
    each of its columns, in its Parquet footer, the field id the Iceberg table's schema gives that column
    (the Iceberg spec's rule for writers; read here with pyarrow, apart from stedi's own check). Returns how
    many files were checked."""
    import pyarrow.parquet as pq
    from pyiceberg.manifest import DataFileContent

    from stedi.storage.files import open_uri
    from stedi.tables import TABLES

    checked = 0
    for table in TABLES.values():
        ice = lake.catalog.load(table)
        if ice is None:
            continue
        want = {f.name: f.field_id for f in ice.schema().fields}
        paths = {entry.data_file.file_path
                 for snapshot in ice.metadata.snapshots for manifest in snapshot.manifests(ice.io)
                 for entry in manifest.fetch_manifest_entry(ice.io)
                 if entry.data_file.content == DataFileContent.DATA}
        for path in sorted(paths):
            fs, where = open_uri(path, lake.catalog.s3)
            with fs.open_input_file(where) as fh:
                schema = pq.read_schema(fh)
            have = {f.name: int(f.metadata[b"PARQUET:field_id"]) if f.metadata and b"PARQUET:field_id" in f.metadata
                    else None for f in schema}
            assert have == {name: want.get(name) for name in have}, f"{table.name}: {path} has field ids {have}"
            if table.kind != "history":  # (a history's older files may lack its newer columns)
                assert list(have) == list(want), f"{table.name}: {path} has the columns {list(have)}"
            checked += 1
    assert checked, "no data file to check"
    return checked


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under `root` with the sha256 of its content: what a write anywhere under it would change."""
    import hashlib

    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def stedi(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    """`stedi ARGS` through main(), as the console script runs it: (exit code, stdout, stderr)."""
    from stedi.cli.main import main

    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    code = exited.value.code
    return (code if isinstance(code, int) else 1), out, err
