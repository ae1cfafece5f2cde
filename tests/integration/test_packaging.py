"""What a user installs (issue 24): the lock pins every distribution, and the wheel works outside the source tree.

The wheel is built from this checkout with the locked setuptools, installed with the locked dependencies
into a new venv in a temporary folder, and run as a user would: `stedi generate`, `ingest`, `run`, `sql`.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import zipfile
from importlib.metadata import distributions
from pathlib import Path

import pytest

from stedi._version import DISTRIBUTION, __version__

from support import REPO, TEST_KEY

LOCKS = REPO / "requirements"
GLUE_LOCK = REPO / "src" / "stedi" / "deploy" / "glue-requirements.txt"  # what `stedi deploy aws` ships to Glue


def _locked(*names: str) -> dict[str, set[str]]:
    """The versions requirements/NAME.txt pins, by normalised distribution name (a name can have one
    version per Python, behind markers)."""
    pins: dict[str, set[str]] = {}
    for name in names:
        path = GLUE_LOCK if name == "glue" else LOCKS / f"{name}.txt"
        for line in path.read_text().splitlines():
            if match := re.match(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", line):
                pins.setdefault(_norm(match[1]), set()).add(match[2])
    return pins


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_the_lock_agrees_with_pyproject() -> None:
    """uv.lock satisfies pyproject.toml's ranges, and requirements/ is what uv.lock exports (offline)."""
    result = subprocess.run(["bash", "scripts/lock.sh", "--check"], cwd=REPO, capture_output=True, text=True,
                            env={**os.environ, "UV": str(Path(sys.executable).with_name("uv")), "UV_OFFLINE": "1"})
    assert result.returncode == 0, result.stderr
    assert "agree with pyproject.toml" in result.stdout


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    """Every distribution of the venv running the tests (scripts/setup.sh's, on the dev and spark extras) at
    a version the lock pins: `pip freeze` has nothing else but stedi itself."""
    pins = _locked("bootstrap", "dev-spark")
    installed = {(_norm(d.metadata["Name"]), d.version) for d in distributions()}
    unlocked = sorted(f"{name}=={version}" for name, version in installed
                      if name != DISTRIBUTION and version not in pins.get(name, set()))
    assert unlocked == [], "installed but not locked: run scripts/setup.sh (or make lock on purpose)"
    assert (DISTRIBUTION, __version__) in installed


def test_each_locked_set_is_a_subset_of_the_tested_one() -> None:
    """What `make demo` installs (report), the other sets and the Glue job's pin the versions the suite runs on."""
    tested = _locked("dev-spark")
    for name in ("base", "report", "spark", "report-spark", "dev", "glue"):
        for dist, versions in _locked(name).items():
            assert versions <= tested.get(dist, set()), (name, dist, versions)


@pytest.mark.slow
def test_the_wheel_installs_and_runs_outside_the_source_tree(tmp_path: Path) -> None:
    dist = tmp_path / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
                            "--wheel-dir", str(dist), str(REPO)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    (wheel,) = dist.glob("*.whl")
    assert wheel.name == f"stedi_lakehouse-{__version__}-py3-none-any.whl"

    # Everything stedi reads at run time (SQL, checks, templates, pages, settings files) is in the wheel.
    package = REPO / "src" / "stedi"
    wanted = {f"stedi/{p.relative_to(package).as_posix()}" for p in package.rglob("*")
              if p.is_file() and "__pycache__" not in p.parts}
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = archive.read(f"stedi_lakehouse-{__version__}.dist-info/METADATA").decode()
    assert wanted - names == set()
    assert f"Name: {DISTRIBUTION}\n" in metadata and f"Version: {__version__}\n" in metadata
    assert "License-Expression: Apache-2.0" in metadata

    # A new venv outside the source tree, with the locked dependencies of a plain install (no extras).
    venv, work = tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet", "--no-deps"]
    for step in ([*pip, "--require-hashes", "--no-build-isolation", "-r", str(LOCKS / "base.txt")],
                 [*pip, str(wheel)]):
        installed = subprocess.run(step, capture_output=True, text=True)
        assert installed.returncode == 0, installed.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith(("STEDI_", "PYTHON", "VIRTUAL_ENV"))}
    env.update(STEDI_PSEUDONYM_KEY=TEST_KEY, PATH=f"{venv / 'bin'}:{env.get('PATH', '')}")

    def run(*args: str) -> str:
        result = subprocess.run(args, cwd=work, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, (args, result.stderr)
        return result.stdout

    where = run(str(python), "-c", "import stedi, sys; print(stedi.__file__); print(stedi.__version__)")
    assert where.splitlines() == [str(venv / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
                                      / "site-packages" / "stedi" / "__init__.py"), __version__]
    run("stedi", "generate", "--out", "data", "--scale", "0.05", "--seed", "3")
    run("stedi", "--home", "lake", "ingest", "data")
    run("stedi", "--home", "lake", "run")
    counts = run("stedi", "--home", "lake", "sql", "--format", "csv",
                 "select (select count(*) from machine_learning_curated) as ml, "
                 "(select stedi_version from runs limit 1) as version")
    ml, version = counts.splitlines()[1].split(",")
    assert int(ml) > 0 and version == __version__

    # A plain install has no report libraries (the `report` extra): the report says so in one line.
    refused = subprocess.run(["stedi", "--home", "lake", "report"], cwd=work, env=env, capture_output=True, text=True)
    assert refused.returncode == 1 and refused.stdout == ""
    assert refused.stderr == ("error: the report needs altair, vl_convert, jinja2, the `report` extra: "
                              f"pip install '{DISTRIBUTION}[report]' (make demo and make test install it)\n")

    # `stedi deploy aws` from this install (not a checkout) repacks the installed files into the same wheel.
    repacked = Path(run(str(python), "-c", "from importlib.metadata import distribution; from pathlib import Path; "
                        "from stedi.deploy.glue_bundle import repack; "
                        f"print(repack(distribution('{DISTRIBUTION}'), Path('{tmp_path}')))").strip())
    assert repacked.name == wheel.name and repacked.parent == tmp_path

    def members(path: Path) -> dict[str, bytes]:
        with zipfile.ZipFile(path) as archive:
            return {n: archive.read(n) for n in archive.namelist() if not n.endswith("/RECORD")}

    assert members(repacked) == members(wheel)
