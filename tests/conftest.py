"""Shared fixtures. Tests never see the developer's own stedi.toml or STEDI_* variables (but
STEDI_VERIFY_RECONCILIATION, which is "always" unless set)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from stedi import Lakehouse
from stedi.config import env_variables

from support import DATA_ORIGIN, DATA_VARIABLE, DEFAULT_DATA, SHARED_DATA, TEST_KEY

# Every `stedi run` of the session verifies its figures by a recount from the tables (a disagreement fails
# the run with ReconciliationError); set here, before any lakehouse is made, and kept by isolated_env.
VERIFY_RECONCILIATION = os.environ.setdefault("STEDI_VERIFY_RECONCILIATION", "always")

# One test body, every engine: tests that take `engine` run once per engine (Spark ones marked `spark`).
ENGINES = ["duckdb", pytest.param("spark", marks=pytest.mark.spark)]


@pytest.fixture(scope="session", params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(autouse=True)
def isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (*env_variables(), "STEDI_CONFIG", "STEDI_SPARK_MASTER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("STEDI_PSEUDONYM_KEY", TEST_KEY)
    monkeypatch.setenv("STEDI_VERIFY_RECONCILIATION", VERIFY_RECONCILIATION)
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)


@pytest.fixture(scope="session", autouse=True)
def pseudonym_key() -> Iterator[None]:
    """A fixed test key for the whole session (module fixtures build lakehouses too): the pseudonyms of
    machine_learning_curated need one. Tests of a missing key unset it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("STEDI_PSEUDONYM_KEY", TEST_KEY)
        yield


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "lake"


@pytest.fixture
def lake(home: Path) -> Lakehouse:
    return Lakehouse(home)


@pytest.fixture
def engine_lake(home: Path, engine: str) -> Lakehouse:
    """A lakehouse building with each engine in turn."""
    return Lakehouse(home, engine=engine)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real STEDI landing data: $STEDI_TEST_DATA, else ../shared/data/stedi beside the repository."""
    missing = [s for s in ("customer", "accelerometer", "step_trainer") if not (SHARED_DATA / s).is_dir()]
    if missing:
        found = "has no " + ", ".join(f"{s}/" for s in missing) if SHARED_DATA.is_dir() else "does not exist"
        pytest.fail(f"the real STEDI data was looked for at {SHARED_DATA} ({DATA_ORIGIN}), which {found}. Set "
                    f"{DATA_VARIABLE} to the folder holding the landing data's customer/, accelerometer/ and "
                    f"step_trainer/ folders (default: {DEFAULT_DATA})", pytrace=False)
    return SHARED_DATA


@pytest.fixture(scope="session")
def real_lake(tmp_path_factory: pytest.TempPathFactory, shared_data: Path, engine: str) -> Lakehouse:
    """A lakehouse built from the real data by `engine`, shared by the read-only tests of a session."""
    lake = Lakehouse(tmp_path_factory.mktemp(f"real-{engine}") / "lake", engine=engine)
    lake.ingest(shared_data)
    lake.run()
    return lake
