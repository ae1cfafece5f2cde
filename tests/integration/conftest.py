"""Fixtures shared by the integration tests: two days of generated deliveries, and what they must give;
the local S3 server (with its Glue API) of a test module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest

from stedi.generate import generate

import s3server
from support import Batches, Expected, built, contents, latest_figures


@pytest.fixture(scope="module")
def server() -> Iterator[s3server.S3Server]:
    """A moto server enforcing IAM, one per test module that asks for it (tests/s3server.py)."""
    srv = s3server.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def batches(tmp_path_factory: pytest.TempPathFactory) -> Batches:
    root = tmp_path_factory.mktemp("batches")
    generate(root / "first", scale=0.02, seed=1)
    generate(root / "made", scale=0.02, seed=2)
    for file in sorted((root / "made").rglob("*.json")):  # the same sources, new file names
        target = root / "second" / file.relative_to(root / "made")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(file, target.with_name(f"{file.stem}-day2.json"))
    return Batches(root / "first", root / "second")


@pytest.fixture(scope="session")
def expected(batches: Batches, tmp_path_factory: pytest.TempPathFactory) -> Expected:
    """Both days ingested and run, never interrupted."""
    lake = built(tmp_path_factory.mktemp("expected") / "lake", batches.first, batches.second)
    return Expected(contents(lake), latest_figures(lake))
