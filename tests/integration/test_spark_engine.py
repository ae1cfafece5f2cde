"""The Spark engine's set-up and failure modes, each as a user meets them: one `error:` line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stedi import Lakehouse, load_settings

from support import FIXTURES, assert_field_ids

pytestmark = pytest.mark.spark


def stedi(home: Path, *args: str, env: dict[str, str] | None = None,
          prelude: str = "") -> subprocess.CompletedProcess[str]:
    """`stedi --home HOME ARGS` in a fresh process (a Spark session is per process)."""
    code = f"{prelude}\nfrom stedi.cli.main import main\nmain({['--home', str(home), *args]!r})"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


@pytest.fixture
def landed(tmp_path: Path) -> Path:
    home = tmp_path / "lake"
    Lakehouse(home).ingest(FIXTURES / "edge")
    return home


def test_settings_and_options_pass_spark_configuration_through(tmp_path: Path) -> None:
    from stedi.engines.spark import spark_conf

    (Path.cwd() / "stedi.toml").write_text('engine = "spark"\n[spark]\nmaster = "local[1]"\n'
                                           '"executor.memory" = "2g"\n"spark.sql.shuffle.partitions" = 5\n')
    conf = spark_conf(load_settings(env={}))
    assert (conf["spark.master"], conf["spark.executor.memory"], conf["spark.sql.shuffle.partitions"]) == (
        "local[1]", "2g", "5")
    assert load_settings(env={}).engine == "spark"
    # a driver heap big enough for scale 100 by default (Spark's own 1g fails to broadcast there), settable
    assert 1024 <= int(conf["spark.driver.memory"].rstrip("m")) <= 4096
    (Path.cwd() / "stedi.toml").write_text('[spark]\n"driver.memory" = "6g"\n')
    assert spark_conf(load_settings(env={}))["spark.driver.memory"] == "6g"
    assert spark_conf(load_settings(env={}, spark_master="spark://h:7077"))["spark.master"] == "spark://h:7077"
    assert load_settings(env={"STEDI_ENGINE": "spark"}).engine == "spark"


def test_cli_run_on_spark_is_quiet_and_builds_every_table(landed: Path) -> None:
    result = stedi(landed, "run", "--engine", "spark")
    assert result.returncode == 0, result.stderr
    assert "8 built, 0 up to date" in result.stdout and "on spark" in result.stdout
    noise = [line for line in result.stderr.splitlines() if not line.startswith(("[", "      "))]
    assert noise == []  # no WARN lines, no progress bars, no log-level banner
    assert Lakehouse(landed).describe("machine_learning_curated").rows == 6  # see tests/fixtures/edge
    assert_field_ids(Lakehouse(landed))  # Spark's files carry the tables' field ids


def test_spark_not_installed(landed: Path) -> None:
    result = stedi(landed, "run", "--engine", "spark", prelude="import sys; sys.modules['pyspark'] = None")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: the spark engine needs pyspark 3.5")
    assert "pip install 'stedi-lakehouse[spark]'" in result.stderr and "Traceback" not in result.stderr


def test_java_missing(landed: Path) -> None:
    env = {"PATH": "/nonexistent", "JAVA_HOME": ""}
    result = stedi(landed, "run", "--engine", "spark", env=env)
    assert result.returncode == 1
    assert "error: the spark engine needs Java 17" in result.stderr
    assert "apt-get install -y openjdk-17-jre-headless" in result.stderr and "Traceback" not in result.stderr


def test_unreachable_master_fails_fast_with_the_fix(landed: Path) -> None:
    result = stedi(landed, "run", "--engine", "spark", "--spark-master", "spark://127.0.0.1:9")
    assert result.returncode == 1
    [line] = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert line.startswith("error: cannot reach the Spark master spark://127.0.0.1:9")
    assert "--spark-master" in line and "Traceback" not in result.stderr
    debug = stedi(landed, "--debug", "run", "--engine", "spark", "--spark-master", "spark://127.0.0.1:9")
    assert "Traceback" in debug.stderr
