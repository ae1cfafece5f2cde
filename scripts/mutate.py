#!/usr/bin/env python3
"""`make mutate`: deliberate small bugs in the modules that hold stedi's promises, each run against the
tests that claim to catch it.

Each mutation names a file, an exact piece of its text (found exactly once), what replaces it, and the
tests that must fail on it. For each mutation in turn the script copies the repository's `src/` and
`tests/` (and `pyproject.toml`, pytest's settings) to a temporary folder, applies that mutation there
and runs its tests with pytest (`-x -q`, the copy's `src` first on PYTHONPATH); the repository itself is
never edited. The tests are first run on the unmutated copy: a test that fails there would catch
anything. It prints a table (mutation, caught or SURVIVED, seconds) and exits 1 if a mutation survived,
if its original text is not in the file exactly once (the list must follow the code), or if pytest could
not run its tests (exit 2 and up: a test id that no longer exists, say).

    python scripts/mutate.py                     every mutation
    python scripts/mutate.py erasure-shared-device consent-accelerometer
    python scripts/mutate.py --list              the mutations and their tests
    python scripts/mutate.py --show sql-sandbox  with pytest's output: how it is caught

docs/reliability.md says when to run it: before calling a change to these modules done.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRIVACY = "tests/integration/test_privacy.py"
INCREMENTAL = "tests/integration/test_incremental.py"
SEMANTICS = "tests/integration/test_table_semantics.py"
LOCKS = "tests/integration/test_lock.py"
RECONCILE = "tests/integration/test_reconcile_verify.py"
CONSENT_TEST = (f"{PRIVACY}::test_since_consent_keeps_a_reading_taken_at_the_consent_time_"
                "and_drops_one_a_millisecond_before")
KEYED_TEST = f"{INCREMENTAL}::test_a_batch_that_changes_a_customer_and_brings_her_readings_equals_a_rebuild"
TIMEOUT = 1800  # seconds for one pytest run: a mutation that hangs the tests counts as not caught


@dataclass(frozen=True)
class Mutation:
    name: str
    file: str  # relative to the repository
    original: str  # exact text, in the file exactly once
    replacement: str
    tests: tuple[str, ...]  # pytest node ids or files, of which one at least must fail


MUTATIONS = (
    # consent: readings at or after the research consent date (since_consent), in the SQL and the reconciliation
    Mutation("consent-accelerometer", "src/stedi/sql/trusted/accelerometer_trusted.sql",
             'readings."timestamp" >= consenting.shareWithResearchAsOfDate',
             'readings."timestamp" > consenting.shareWithResearchAsOfDate', (CONSENT_TEST,)),
    Mutation("consent-step-trainer", "src/stedi/sql/trusted/step_trainer_trusted.sql",
             "readings.sensorReadingTime >= owners.shareWithResearchAsOfDate",
             "readings.sensorReadingTime > owners.shareWithResearchAsOfDate", (CONSENT_TEST,)),
    Mutation("consent-reconcile-count", "src/stedi/pipeline/reconcile.py",
             "(r.{quote(terms.time)} >= g._since) IS NOT TRUE", "(r.{quote(terms.time)} > g._since) IS NOT TRUE",
             (CONSENT_TEST,)),
    Mutation("consent-reconcile-recount", "src/stedi/sql/reconcile/accelerometer.sql",
             'readings."timestamp" >= customer_trusted.shareWithResearchAsOfDate',
             'readings."timestamp" > customer_trusted.shareWithResearchAsOfDate', (CONSENT_TEST,)),
    # the ML table: a device's readings paired with its owner's phone, at the same time
    Mutation("ml-join-owner", "src/stedi/sql/curated/machine_learning_curated.sql",
             'on phone_readings."user" = owners.email\n    and phone_readings."timestamp"',
             'on phone_readings."timestamp"',
             (f"{SEMANTICS}::test_ml_never_pairs_a_device_with_another_customers_phone",)),
    Mutation("ml-join-time", "src/stedi/sql/curated/machine_learning_curated.sql",
             '\n    and phone_readings."timestamp" = step_readings.sensorReadingTime', "",
             (f"{SEMANTICS}::test_exact_rows",)),
    # erasure: a device another customer shares stays; an array file is filtered element by element
    Mutation("erasure-shared-device", "src/stedi/privacy/erasure.py",
             "return serials - others, serials & others", "return serials, serials & others",
             (f"{PRIVACY}::test_erasing_one_owner_of_a_shared_device_keeps_the_device_and_the_other_owner",)),
    Mutation("suppression-array-numbering", "src/stedi/privacy/suppression.py",
             "enumerate(elements, start=1)", "enumerate(elements)",
             (f"{PRIVACY}::test_an_array_file_after_an_erasure_lands_everyone_but_the_erased",)),
    # the SQL sandbox: no file but the tables' is readable
    Mutation("sql-sandbox", "src/stedi/engines/duckdb.py",
             'self._con.execute("SET enable_external_access = false")', "pass",
             ("tests/cli/test_cli.py::test_sql_reads_no_file_but_the_tables_on_a_local_root",)),
    # the writer lock: one writer at a time, on a local disk and on S3
    Mutation("writer-lock-local", "src/stedi/storage/lock.py",
             "fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)",
             "fcntl.flock(self.fd, fcntl.LOCK_SH | fcntl.LOCK_NB)",
             (f"{LOCKS}::test_every_writer_fails_at_once_naming_the_holder",)),
    Mutation("writer-lock-s3", "src/stedi/storage/lock.py",
             'etag = self._put(me.encode(), IfNoneMatch="*")', "etag = self._put(me.encode())",
             (f"{LOCKS}::test_on_s3_the_lock_is_an_object_only_one_writer_can_create",)),
    # key-level updates: the changed customers' rows computed whole, everyone else's grown
    Mutation("keys-growth-filter", "src/stedi/pipeline/derived.py",
             "if keyed:\n                    assert table.key is not None",
             "if False:\n                    assert table.key is not None", (KEYED_TEST,)),
    Mutation("keys-rewrite-filter", "src/stedi/pipeline/derived.py",
             "SELECT * FROM _touched WHERE {column} NOT IN (SELECT value FROM {changed}) UNION ALL ",
             "SELECT * FROM _touched UNION ALL ", (KEYED_TEST,)),
    Mutation("keys-device-closure", "src/stedi/pipeline/keys.py",
             "more_devices = {d for _, d in links if d is not None} - devices", "more_devices: set[str] = set()",
             (KEYED_TEST,)),
    # the reconciliation: an unbalanced run fails; the recount compares every term
    Mutation("reconcile-unbalanced-run", "src/stedi/pipeline/runner.py",
             "off = [f for f in figures if not f.balanced]", "off = [f for f in figures if False]",
             (f"{RECONCILE}::test_a_run_fails_when_a_table_changed_behind_its_back",)),
    Mutation("reconcile-verify-terms", "src/stedi/pipeline/reconcile.py",
             "for source, figures in recorded.items() for term in COUNTS",
             "for source, figures in recorded.items() for term in COUNTED",
             (f"{RECONCILE}::test_tampered_tables_fail_the_verification_naming_every_disagreement",)),
    # an erasure and a writer that bypassed the lock; a lost catalog recovered, not rebuilt
    Mutation("erasure-fence", "src/stedi/privacy/erasure.py",
             "        if self._now() != self.mark:\n", "        if False:\n",
             ("tests/integration/test_concurrency.py::test_an_erasure_while_an_ingest_bypassed_the_lock_lands_"
              "nothing_of_the_person",)),
    Mutation("lost-catalog", "src/stedi/iceberg/warehouse.py",
             "    held = committed_tables(settings.storage())", "    held: list[str] = []",
             ("tests/integration/test_movable.py::test_a_lost_catalog_is_refused_then_attached_with_history_"
              "and_tags",)),
    Mutation("attach-newest", "src/stedi/iceberg/warehouse.py",
             "read.sort(key=lambda item: (item[0], item[2].last_updated_ms), reverse=True)",
             "read.sort(key=lambda item: (item[0], item[1]), reverse=True)",
             ("tests/integration/test_movable.py::test_attach_registers_the_committed_metadata_not_a_killed_"
              "writers_leftover",)),
)


@dataclass(frozen=True)
class Outcome:
    name: str
    result: str  # caught, SURVIVED, NOT FOUND, NOT RUN, TIMED OUT; for the code as it is: passes, FAILS
    seconds: float = 0.0
    detail: str = ""


def copy_tree(into: Path) -> None:
    skip = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    for folder in ("src", "tests"):
        shutil.copytree(REPO / folder, into / folder, ignore=skip)
    shutil.copy2(REPO / "pyproject.toml", into / "pyproject.toml")


def missing(mutation: Mutation, root: Path) -> str | None:
    """Why the mutation cannot be applied under `root` (its original text not there exactly once), or None."""
    path = root / mutation.file
    if not path.is_file():
        return f"no file {mutation.file}"
    found = path.read_text(encoding="utf-8").count(mutation.original)
    return None if found == 1 else f"its original text is in {mutation.file} {found} times, not once"


def apply(mutation: Mutation, root: Path) -> None:
    path = root / mutation.file
    path.write_text(path.read_text(encoding="utf-8").replace(mutation.original, mutation.replacement),
                    encoding="utf-8")


def pytest(root: Path, tests: tuple[str, ...], show: bool) -> int | None:
    """pytest's exit code for `tests` run in the copy at `root`, or None when it ran past TIMEOUT; `show`:
    pytest's output goes to this process's, else nowhere."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "PYTHONDONTWRITEBYTECODE": "1"}
    real_data = REPO.parent / "shared" / "data" / "stedi"  # tests/support.py's default, seen from the copy
    if "STEDI_TEST_DATA" not in env and real_data.is_dir():
        env["STEDI_TEST_DATA"] = str(real_data)
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests]
    try:
        quiet = None if show else subprocess.DEVNULL
        return subprocess.run(command, cwd=root, env=env, stdout=quiet, stderr=quiet, timeout=TIMEOUT).returncode
    except subprocess.TimeoutExpired:
        return None


def attempt(mutation: Mutation | None, tests: tuple[str, ...], show: bool = False) -> Outcome:
    """Run `tests` on a fresh copy with `mutation` applied (None: the code as it is, where they must pass)."""
    started = time.monotonic()
    name = mutation.name if mutation else "(none: the code as it is)"
    with tempfile.TemporaryDirectory(prefix="stedi-mutate-") as folder:
        root = Path(folder)
        copy_tree(root)
        if mutation is not None:
            apply(mutation, root)
        code = pytest(root, tests, show)
    seconds = time.monotonic() - started
    if code is None:
        return Outcome(name, "TIMED OUT", seconds, f"pytest ran past {TIMEOUT} s")
    if mutation is None:
        return Outcome(name, "passes" if code == 0 else "FAILS", seconds, f"pytest exit {code}" if code else "")
    if code in (0, 1):
        return Outcome(name, "caught" if code == 1 else "SURVIVED", seconds)
    return Outcome(name, "NOT RUN", seconds, f"pytest exit {code}: a test id wrong, or the copy cannot be collected")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("names", nargs="*", metavar="NAME", help="mutations to run (default: all)")
    parser.add_argument("--list", action="store_true", help="list the mutations and their tests, run nothing")
    parser.add_argument("--show", action="store_true", help="show pytest's output (how each mutation is caught)")
    args = parser.parse_args(argv)
    by_name = {m.name: m for m in MUTATIONS}
    unknown = [n for n in args.names if n not in by_name]
    if unknown:
        parser.error(f"no mutation named {', '.join(unknown)}; choose among: {', '.join(by_name)}")
    chosen = [by_name[n] for n in args.names] if args.names else list(MUTATIONS)
    if args.list:
        for m in chosen:
            print(f"{m.name}: {m.file}\n    {' '.join(m.tests)}")
        return 0

    width = max(len("(none: the code as it is)"), *(len(m.name) for m in chosen)) + 2

    def show(outcome: Outcome) -> None:
        print(f"{outcome.name:<{width}}{outcome.result:<12}{outcome.seconds:>8.1f}", flush=True)

    print(f"{'mutation':<{width}}{'result':<12}{'seconds':>8}", flush=True)
    outcomes = []
    for mutation in chosen:  # the list follows the code: every original text is there, once
        why = missing(mutation, REPO)
        if why:
            outcomes.append(Outcome(mutation.name, "NOT FOUND", detail=why))
            show(outcomes[-1])
    runnable = [m for m in chosen if m.name not in {o.name for o in outcomes}]
    every_test = tuple(dict.fromkeys(t for m in runnable for t in m.tests))
    baseline = attempt(None, every_test, args.show) if runnable else None
    if baseline is not None:
        show(baseline)
        if baseline.result != "passes":
            print(f"the tests fail on the code as it is ({baseline.detail}): fix them first", file=sys.stderr)
            return 1
    for mutation in runnable:
        outcomes.append(attempt(mutation, mutation.tests, args.show))
        show(outcomes[-1])
    bad = [o for o in outcomes if o.result != "caught"]
    print(f"{len(outcomes) - len(bad)} of {len(outcomes)} mutations caught", flush=True)
    for o in bad:
        print(f"{o.name}: {o.result}{f' ({o.detail})' if o.detail else ''}; its tests: "
              f"{' '.join(by_name[o.name].tests)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
