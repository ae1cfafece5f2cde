"""The Glue job installs from `stedi deploy aws`'s zip of wheels alone, over Glue 5.0's own libraries, and runs.

A Glue 5.0 worker is CPython 3.11 on x86_64 Linux with AWS's list of libraries (glue-5.0-provided.txt) and its
own Spark 3.5; so is this machine, but for the libraries. Here a new Python 3.11 venv gets Glue's versions of
the libraries stedi leaves to Glue (and Glue's pyarrow, which the bundle replaces), this suite's PySpark as
Glue's Spark, then the bundle as Glue installs it (`pip install --no-index` from its wheels). The job's entry
point then runs the pipeline on local Spark with moto's Glue API as the catalog. The root is on local disk:
local Spark cannot reach s3:// without the hadoop-aws jars, which cannot be fetched here (the embedded
engine's S3 tests cover the bucket side).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from stedi import Lakehouse
from stedi.cli.main import main
from stedi.deploy import glue_bundle
from stedi.deploy.aws import BUNDLE_FILE, PARAMETERS_FILE, SCRIPT_FILE
from stedi.tables import TABLES

import s3server
from support import FIXTURES, assert_field_ids, built, contents

pytestmark = [pytest.mark.slow, pytest.mark.s3, pytest.mark.spark]

EDGE = FIXTURES / "edge"
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]


def run(*command: str | Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, env=env)
    assert done.returncode == 0, f"{' '.join(map(str, command))}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


BUCKET = "acme-stedi"


@pytest.fixture(scope="module")
def bundle(server: s3server.S3Server, tmp_path_factory: pytest.TempPathFactory) -> glue_bundle.Bundle:
    """`stedi deploy aws --bucket acme-stedi --prefix lake --out DIR --upload`, once for the module."""
    out = tmp_path_factory.mktemp("deploy")
    with pytest.MonkeyPatch.context() as monkeypatch:
        server.use(monkeypatch, out)
        server.create_bucket(BUCKET)
        try:
            main(["deploy", "aws", "--bucket", BUCKET, "--prefix", "lake", "--out", str(out), "--upload"])
        except SystemExit as exited:
            assert exited.code in (0, None)
        arguments = json.loads((out / PARAMETERS_FILE).read_text())
        # The job's modules: one object under the deploy's bucket, which the upload put there from --out.
        modules = arguments["--additional-python-modules"].split(",")
        assert modules == [f"s3://{BUCKET}/lake/{BUNDLE_FILE}"]
        assert arguments["--python-modules-installer-option"] == "--no-index"
        for name in (BUNDLE_FILE, SCRIPT_FILE):
            stored = server.client().get_object(Bucket=BUCKET, Key=f"lake/{name}")["Body"].read()
            assert stored == (out / name).read_bytes()
    shipped, left = glue_bundle.plan()
    listed = [line.partition("==") for line in
              zipfile.ZipFile(out / BUNDLE_FILE).read("wheels/requirements.txt").decode().splitlines()]
    return glue_bundle.Bundle(out / BUNDLE_FILE, tuple(glue_bundle.Pin(n, v) for n, _, v in listed), left)


@pytest.fixture(scope="module")
def wheels(bundle: glue_bundle.Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle unzipped, as Glue unzips it: wheels/requirements.txt and wheels/*.whl."""
    folder = tmp_path_factory.mktemp("unzipped")
    with zipfile.ZipFile(bundle.path) as archive:
        archive.extractall(folder)
    return folder / "wheels"


@pytest.fixture(scope="module")
def glue_site(bundle: glue_bundle.Bundle, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Wheels of Glue 5.0's own versions of what the bundle leaves to Glue, and of the pyarrow it replaces."""
    folder = tmp_path_factory.mktemp("glue-site")
    glue = glue_bundle.provided()
    pins = [f"{name}=={version}" for name, version in bundle.left_to_glue.items()] + [f"pyarrow=={glue['pyarrow']}"]
    run(*PIP, "download", "--quiet", "--no-deps", *glue_bundle.pip_download_args(), "--dest", folder, *pins)
    return folder


def test_the_bundle_holds_stedi_and_the_locked_wheels_glue_lacks_and_nothing_for_reports(
        bundle: glue_bundle.Bundle, wheels: Path) -> None:
    names = {w.split("-")[0].replace("_", "-").lower() for w in glue_bundle.contents(bundle.path)}
    shipped = {p.name for p in bundle.shipped}
    assert names == shipped and "stedi-lakehouse" in names and "pyiceberg" in names and "duckdb" in names
    assert not names & {"altair", "vl-convert-python", "jinja2", "pyspark", "py4j"}  # reports; Glue's Spark
    # Glue's numpy, boto3 and botocore stay; pyarrow is replaced (pyiceberg 0.12 needs >= 18, Glue has 17)
    assert {"numpy", "boto3", "botocore", "urllib3"} <= set(bundle.left_to_glue) and "pyarrow" in names
    lines = (wheels / "requirements.txt").read_text().splitlines()
    locked = {f"{p.name}=={p.version}" for p in glue_bundle.plan()[0]}
    assert set(lines) == locked | {f"stedi-lakehouse=={glue_bundle.__version__}"}
    assert bundle.path.name == f"stedi-lakehouse-{glue_bundle.__version__}.gluewheels.zip"


def test_pip_resolves_the_bundle_for_glues_platform_from_it_and_glues_libraries_alone(
        bundle: glue_bundle.Bundle, wheels: Path, glue_site: Path, tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    run(*PIP, "install", "--dry-run", "--quiet", "--no-index", "--ignore-installed", "--target", tmp_path / "t",
        "--platform", "manylinux_2_34_x86_64", *glue_bundle.pip_download_args(), "--find-links", wheels,
        "--find-links", glue_site, "--report", report, "-r", wheels / "requirements.txt",
        *(f"{name}=={version}" for name, version in bundle.left_to_glue.items()))
    installs = json.loads(report.read_text())["install"]
    picked = {i["metadata"]["name"].lower(): i["metadata"]["version"] for i in installs}
    assert picked["stedi-lakehouse"] == glue_bundle.__version__
    assert {name: picked[name] for name in bundle.left_to_glue} == bundle.left_to_glue


@pytest.fixture
def glue_venv(wheels: Path, glue_site: Path, tmp_path: Path) -> Iterator[Path]:
    """A Python 3.11 venv as a Glue 5.0 worker has it, then the bundle installed as Glue installs it."""
    venv = tmp_path / "glue-venv"
    run(sys.executable, "-m", "venv", venv)
    python = venv / "bin" / "python"
    assert run(python, "-c", "import sys; print(sys.version_info[:2])").stdout.strip() == "(3, 11)"
    glue = glue_bundle.provided()
    run(python, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--no-deps", "--find-links", glue_site,
        *(f"{name}=={glue[name]}" for name in sorted(glue_site_names(glue_site))))
    # Glue's own Spark: this suite's PySpark and py4j, on the venv's path as Glue has them on its own
    spark = tmp_path / "glue-spark"
    spark.mkdir()
    import pyspark

    site = Path(pyspark.__file__).parents[1]
    for entry in site.iterdir():
        if entry.name.split("-")[0] in ("pyspark", "py4j"):
            (spark / entry.name).symlink_to(entry)
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").stdout.strip()
    (Path(purelib) / "glue-spark.pth").write_text(f"{spark}\n")
    before = freeze(python)
    # what Glue runs for `--additional-python-modules <zip> --python-modules-installer-option --no-index`
    run(python, "-m", "pip", "install", "--quiet", "--no-compile", "--no-index", "--find-links", wheels,
        "-r", wheels / "requirements.txt")
    run(python, "-m", "pip", "check")
    after = freeze(python)
    changed = {name for name in before if after.get(name) != before[name]}
    assert changed == {"pyarrow"}, f"the bundle changed Glue's {sorted(changed)}"
    yield venv


def glue_site_names(folder: Path) -> set[str]:
    return {w.name.split("-")[0].replace("_", "-").lower() for w in folder.glob("*.whl")}


def freeze(python: Path) -> dict[str, str]:
    lines = run(python, "-m", "pip", "list", "--format", "json").stdout
    return {p["name"].lower().replace("_", "-"): p["version"] for p in json.loads(lines)}


def test_the_glue_job_runs_from_the_bundle_and_registers_every_table_in_glue(
        glue_venv: Path, server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    server.use(monkeypatch, tmp_path)
    server.drop_glue_database()
    home, warehouse = tmp_path / "lake", tmp_path / "warehouse"
    catalog = {"type": "glue", "warehouse": warehouse.as_uri()}
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON"))}
    bin_ = glue_venv / "bin"
    (tmp_path / "glue.toml").write_text(f'home = "{home}"\n[catalog]\ntype = "glue"\n'
                                        f'warehouse = "{warehouse.as_uri()}"\n')
    run(bin_ / "stedi", "--config", tmp_path / "glue.toml", "ingest", EDGE, env=env)
    job = run(bin_ / "python", "-m", "stedi.glue_job", "--JOB_NAME", "stedi", "--stedi_home", home,
              "--stedi_catalog", json.dumps(catalog), env=env)
    assert "machine_learning_curated\tbuilt\t" in job.stdout

    registered = {t["Name"]: t for t in server.glue().get_tables(DatabaseName="stedi")["TableList"]}
    assert set(TABLES) <= set(registered)
    assert all(registered[name]["Parameters"]["table_type"].upper() == "ICEBERG" for name in TABLES)
    # the same rows as the embedded engine builds from the same files
    job_lake = Lakehouse(home, catalog=catalog)
    with job_lake.catalog.cached():
        got = contents(job_lake)
    expected = contents(built(tmp_path / "reference", EDGE))
    assert got == expected and sum(got["machine_learning_curated"].values()) > 0
    assert_field_ids(job_lake)  # Glue's Spark writes each column's Iceberg field id too
