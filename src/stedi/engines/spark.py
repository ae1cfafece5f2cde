"""The Spark engine: the same `.sql` files on Apache Spark 3.5 (the version AWS Glue 5.0 runs).

The tables' SQL is written in DuckDB's dialect; sqlglot translates it to Spark SQL. Spark reads the
tables through the Parquet file lists pyiceberg plans (the landing tables included) and writes plain
Parquet that the catalog commits. Landed JSON is read by stedi.landing.reader's batches, run as Spark
tasks on the executors (`run_tasks`), so the landing read scales with the cluster's workers.
One Spark session serves a whole process (tests included): starting one costs seconds.
"""

from __future__ import annotations

import atexit
import logging
import os
import shutil
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import sqlglot
from py4j.protocol import Py4JError
from pyspark.errors import PySparkException
from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StructField, StructType, _parse_datatype_json_value

from stedi.engines import memory_budget
from stedi.errors import EngineError
from stedi.iceberg.schema import carries_field_ids, field_ids
from stedi.storage.files import local_path, open_uri
from stedi.types import TYPES

if TYPE_CHECKING:
    from stedi.config import Settings
    from stedi.tables import Table
    from stedi.types import ColumnType

_Item = TypeVar("_Item")
_Result = TypeVar("_Result")

DEFAULT_CONF = {
    "spark.master": "local[*]",
    "spark.app.name": "stedi",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": str(max(2, os.cpu_count() or 2)),  # small tables: few tasks
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "static",
}
# Spark 3.5 writes a column's `parquet.field.id` metadata into the Parquet schema when this is on (its
# default); every data file must carry its Iceberg field ids, so the engine sets it on its session too.
FIELD_ID_WRITE = "spark.sql.parquet.fieldId.write.enabled"
LOG_CONFIG = Path(__file__).with_name("log4j2.properties")


def translate(sql: str) -> str:
    """DuckDB SQL (the dialect of stedi's .sql files) as Spark SQL."""
    try:
        return sqlglot.transpile(sql, read="duckdb", write="spark")[0]
    except sqlglot.errors.ParseError as exc:
        raise EngineError(f"cannot translate SQL to Spark: {exc}") from None


def spark_type(column: ColumnType) -> DataType:
    """The Spark type of a column type (Spark's JSON names of types are Iceberg's, but `integer`)."""
    name = TYPES[column].iceberg
    return _parse_datatype_json_value("integer" if name == "int" else name)


def schema(table: Table) -> StructType:
    return StructType([StructField(c.name, spark_type(c.type), True) for c in table.columns])


def spark_conf(settings: Settings) -> dict[str, str]:
    """Spark configuration: stedi's defaults, then the [spark] settings (the `spark.` prefix optional)."""
    # The local driver heap: Spark's 1 GiB default fails to broadcast at scale 100.
    conf = {**DEFAULT_CONF, "spark.driver.memory": f"{max(1 << 30, memory_budget()) >> 20}m",
            **{k if k.startswith("spark.") else f"spark.{k}": str(v) for k, v in settings.spark.items()}}
    # ParallelGC: throughput over pause times, measured faster for these batch jobs than the default G1.
    java_options = f"-Dlog4j2.configurationFile={LOG_CONFIG.as_uri()} -XX:+UseParallelGC"
    conf["spark.driver.extraJavaOptions"] = f"{java_options} {conf.get('spark.driver.extraJavaOptions', '')}".strip()
    if settings.remote:
        # s3:// through the S3A connector (when one is on the classpath), with the resolved connection.
        s3 = settings.s3_connection()
        conf.setdefault("spark.hadoop.fs.s3.impl", "org.apache.hadoop.fs.s3a.S3AFileSystem")
        if s3.endpoint:
            conf.setdefault("spark.hadoop.fs.s3a.endpoint", s3.endpoint)
            conf.setdefault("spark.hadoop.fs.s3a.path.style.access", str(s3.path_style).lower())
        if s3.access_key:
            conf.setdefault("spark.hadoop.fs.s3a.access.key", s3.access_key)
            conf.setdefault("spark.hadoop.fs.s3a.secret.key", s3.secret_key or "")
            if s3.session_token:
                conf.setdefault("spark.hadoop.fs.s3a.session.token", s3.session_token)
    return conf


def session(settings: Settings) -> SparkSession:
    """The process's Spark session (a Glue job's own, for one), else one started with `spark_conf`."""
    conf = spark_conf(settings)
    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        raise EngineError("the spark engine needs Java 17, and no `java` was found; install it with "
                          "`apt-get install -y openjdk-17-jre-headless` (or set JAVA_HOME)")
    _check_master(conf["spark.master"])
    if conf["spark.master"].startswith("local"):
        os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")  # no warning about the host's loopback name
        # Executors on this machine run Python tasks (the landing read) with this Python, where stedi is
        # installed, not the first python3 on the PATH (spark.pyspark.python is not passed to the
        # executors of a local-cluster).
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    builder = SparkSession.builder
    for key, value in conf.items():
        builder = builder.config(key, value)
    logging.getLogger("py4j").setLevel(logging.ERROR)
    try:
        spark = builder.getOrCreate()
    except Exception as exc:
        raise EngineError(f"cannot start Spark (master {conf['spark.master']}): {_message(exc)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    if conf["spark.master"].startswith("local-cluster"):
        # Its workers live in this JVM: left running at exit, they try to restart the executors as the JVM
        # shuts down, and print pages of errors. Stopped first, they go quietly.
        atexit.register(spark.stop)
    return spark


S3_HELP = ("pyspark ships no hadoop-aws, the connector Spark reads s3:// with. Run the spark engine where S3 is "
           "built in (AWS Glue: stedi.glue_job, see docs/glue.md; EMR), or give Spark the connector: [spark] "
           "\"jars.packages\" = \"org.apache.hadoop:hadoop-aws:3.3.4\" on a machine that can fetch it. Or "
           "build with the embedded engine (--engine duckdb), which reads S3 itself")


def s3_configured(settings: Settings) -> bool:
    """Whether a new Spark session would have an S3 file system: hadoop-aws among its jars."""
    conf = spark_conf(settings)
    wanted = " ".join(conf.get(k, "") for k in ("spark.jars", "spark.jars.packages", "spark.driver.extraClassPath"))
    if "hadoop-aws" in wanted:
        return True
    import pyspark

    folders = [Path(pyspark.__file__).parent / "jars"]
    if os.environ.get("SPARK_HOME"):
        folders.append(Path(os.environ["SPARK_HOME"]) / "jars")
    return any(any(folder.glob("hadoop-aws-*.jar")) for folder in folders if folder.is_dir())


def check_s3_now(settings: Settings) -> None:
    """check_s3 with the Spark session already running in this process, if any (Glue's)."""
    check_s3(settings, SparkSession.getActiveSession())


def check_s3(settings: Settings, spark: SparkSession | None = None) -> None:
    """Refuse an s3:// root early and clearly when Spark cannot reach S3."""
    if spark is not None:
        try:  # the running JVM knows best (Glue and EMR register their own S3 file systems)
            jvm, jsc = spark.sparkContext._jvm, spark.sparkContext._jsc
            assert jvm is not None and jsc is not None
            jvm.org.apache.hadoop.fs.FileSystem.getFileSystemClass("s3", jsc.hadoopConfiguration())
            return
        except Exception:
            pass
    elif s3_configured(settings):
        return
    raise EngineError(f"the spark engine cannot reach the lakehouse at {settings.home}: {S3_HELP}")


def _check_master(master: str) -> None:
    """Fail in seconds, not after Spark's minute of retries, when a standalone master is unreachable."""
    if not master.startswith("spark://"):
        return
    for address in master.removeprefix("spark://").split(","):
        host, _, port = address.partition(":")
        try:
            socket.create_connection((host, int(port or 7077)), timeout=5).close()
            return
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc) or "timed out"
    raise EngineError(f"cannot reach the Spark master {master} ({reason}); check --spark-master or "
                      "`master` in the [spark] section of stedi.toml")


@contextmanager
def _spark_errors(what: str) -> Iterator[None]:
    """A Spark failure as one line (the JVM stack trace stays under --debug)."""
    try:
        yield
    except (PySparkException, Py4JError) as exc:
        message = _message(exc)
        if "stopped" in message.lower():
            message += " (the Spark application was stopped: is the cluster reachable and alive?)"
        raise EngineError(f"{what} failed on spark: {message}") from exc


class SparkEngine:
    name = "spark"
    # Independent tables (the three landing tables) run as concurrent Spark jobs: a job's fixed costs
    # (planning, scheduling, committing) then overlap with another job's work.
    parallel_builds = 3
    grows_tables = False  # it builds tables side by side (see stedi.engines.base)

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._spark = session(settings)
        self._spark.conf.set(FIELD_ID_WRITE, "true")  # (a Glue job's session is not made with DEFAULT_CONF)
        if settings.remote:
            check_s3(settings, self._spark)
        self._views: list[str] = []

    @property
    def parallelism(self) -> int:
        return int(self._spark.sparkContext.defaultParallelism)

    def run_tasks(self, function: Callable[[_Item], _Result], items: list[_Item]) -> list[_Result]:
        """`function` over `items`, one Spark task each, on the executors (stedi.engines.base.Tasks)."""
        if not items:
            return []
        try:
            with _spark_errors("reading the landed files"):
                return self._spark.sparkContext.parallelize(items, len(items)).map(function).collect()
        except EngineError as exc:
            if "No module named 'stedi'" in str(exc.__cause__):
                raise EngineError("the Spark executors cannot import stedi, which reads the landed files there: "
                                  "install stedi where the executors run Python (on Glue, "
                                  "--additional-python-modules does it), or point PYSPARK_PYTHON at a Python "
                                  "that has it") from None
            raise

    def register_parquet(self, name: str, files: list[str], table: Table, only: tuple[str, str] | None = None
                         ) -> None:
        with _spark_errors(f"reading table {name}"):
            reader = self._spark.read.schema(schema(table))
            frame = reader.parquet(*[local_path(f) for f in files]) if files else \
                self._spark.createDataFrame([], schema(table))
            frame = frame.select(*[f"`{c}`" for c in table.column_names])
            if only:
                frame = frame.join(self._spark.table(only[1]), frame[f"`{only[0]}`"] == F.col("value"), "left_semi")
            self._view(name, frame)

    def files_holding(self, files: list[str], column: str, relation: str) -> list[str]:
        if not files:
            return []
        uris = {local_path(f): f for f in files}
        with _spark_errors("finding files"):
            frame = self._spark.read.parquet(*uris).select(f"`{column}`", F.input_file_name().alias("file"))
            hit = frame.join(self._spark.table(relation), F.col(f"`{column}`") == F.col("value"), "left_semi")
            found = {r[0] for r in hit.select("file").distinct().collect()}
        return sorted(uri for path, uri in uris.items() if any(f.endswith(path.split("://")[-1]) for f in found))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        with _spark_errors("a query"):
            return [tuple(r) for r in self._spark.sql(translate(sql)).collect()]

    def register_rows(self, name: str, columns: list[tuple[str, ColumnType]], rows: list[tuple[object, ...]]
                      ) -> None:
        struct = StructType([StructField(c, spark_type(t), True) for c, t in columns])
        with _spark_errors(f"registering {name}"):
            self._view(name, self._spark.createDataFrame(rows, struct))

    def _view(self, name: str, frame: Any) -> None:
        frame.createOrReplaceTempView(name)
        self._views.append(name)

    def write_parquet(self, sql: str, table: Table, folder: str) -> tuple[list[str], int]:
        out = local_path(folder)
        columns = ", ".join(f"CAST(`{c.name}` AS {TYPES[c.type].spark}) AS `{c.name}`" for c in table.columns)
        statement = f"SELECT {columns} FROM ({translate(sql.strip().rstrip(';'))}) AS result"
        try:
            # each column's Iceberg field id, which Spark writes into the Parquet schema (FIELD_ID_WRITE)
            frame = self._spark.sql(statement).select(*[
                F.col(f"`{name}`").alias(name, metadata={"parquet.field.id": i})
                for name, i in field_ids(table.columns).items()])
            frame.write.mode("errorifexists").option("compression", "zstd").parquet(out)
        except (PySparkException, Py4JError) as exc:
            if "://" not in out:
                shutil.rmtree(out, ignore_errors=True)
            raise EngineError(f"building {table.name} failed on spark: {_message(exc)}") from None
        import pyarrow.fs as pafs
        import pyarrow.parquet as pq

        s3 = self._settings.s3_connection() if self._settings.remote else None
        fs, path = open_uri(folder, s3)
        infos = fs.get_file_info(pafs.FileSelector(path, recursive=False))
        files, rows = [], 0
        for info in sorted(infos, key=lambda i: i.path):
            if info.base_name.startswith("part-") and info.base_name.endswith(".parquet"):
                with fs.open_input_file(info.path) as fh:
                    footer = pq.ParquetFile(fh)
                    rows += footer.metadata.num_rows
                    written = footer.schema_arrow
                if len(written) != len(table.columns) or not carries_field_ids(written, table.columns):
                    if "://" not in out:
                        shutil.rmtree(out, ignore_errors=True)
                    raise EngineError(f"building {table.name} on spark wrote {info.path} without the Iceberg field "
                                      f"ids of its columns (Spark 3.3 or later writes them, with {FIELD_ID_WRITE})")
                files.append(f"{folder.rstrip('/')}/{info.base_name}" if s3 else Path(info.path).as_uri())
            elif info.base_name.endswith(".crc") or info.base_name == "_SUCCESS":
                fs.delete_file(info.path)
        return files, rows

    def close(self) -> None:
        try:
            for name in self._views:
                self._spark.catalog.dropTempView(name)
        except (PySparkException, Py4JError):
            pass  # a stopped session has no views left to drop
        self._views.clear()


def _message(exc: BaseException) -> str:
    text = str(exc).strip()
    # Spark errors carry a JVM stack trace after the first lines; the user needs the first line.
    return " ".join(text.splitlines()[0].split())[:1000] if text else type(exc).__name__


def glue_job(job_name: str) -> Any:
    """AWS Glue's Job bookkeeping (it starts Glue's Spark session, which the engine then uses); None when
    not on Glue."""
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext
    except ImportError:
        return None
    job = Job(GlueContext(SparkContext.getOrCreate()))
    job.init(job_name, {"JOB_NAME": job_name})
    return job
