"""Benchmarks of stedi against the reference approach, as whole processes.

    .venv/bin/python bench/run.py --scale 10 [--runs 3] [--cases run-duckdb,run-spark,plain-pyspark]

Cases (each a fresh process, timed from start to exit; what comes before it is prepared untimed):
  ingest         stedi ingest of the generated landing data into a new lakehouse
  run-duckdb     stedi run (embedded engine) on a freshly ingested lakehouse
  run-noop       stedi run right after a complete stedi run, nothing new landed
  run-incremental  stedi run after the next daily batch landed (the data landed and built before): 1% new
                 customers with their readings, a few existing customers' research consent changed
  run-incremental-readings  stedi run after 1% more reading files landed (the rest landed and built before)
  run-spark      stedi run --engine spark on a freshly ingested lakehouse
  plain-pyspark  bench/plain_pyspark.py: the five jobs as Glue Studio users write them
  run-spark-cluster, plain-pyspark-cluster  the same two on a Spark cluster of two executor processes
                 (master local-cluster[2,1,1024]), each compared with the other
  plain-duckdb   bench/plain_duckdb.sql: the five jobs as one plain DuckDB script, tables in memory
  floor          DuckDB reading all landing JSON once and nothing else
  ingest-s3      stedi ingest into a lakehouse whose root is in a bucket on a local S3 server (moto)
  run-duckdb-s3  stedi run (embedded engine) with the root in that bucket

Reports wall seconds (median of --runs), peak resident memory of the process tree (JVM included),
and rows per second, as a table on stdout and as JSON in bench/results/; incremental cases also as a
share of run-duckdb, every case also as a multiple of plain-duckdb.
Data is generated once per scale into bench/.data/ (deterministic, seed 0; the batch seed 1), or
into $STEDI_BENCH_DATA if set.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
BIN = Path(sys.executable).parent
STEDI = [str(BIN / "stedi")]
CASES = ("ingest", "run-duckdb", "run-noop", "run-incremental", "run-incremental-readings", "run-spark",
         "plain-pyspark", "plain-duckdb", "floor", "ingest-s3", "run-duckdb-s3", "run-spark-cluster",
         "plain-pyspark-cluster")
CLUSTER = "local-cluster[2,1,1024]"  # two executor JVMs of one core and 1 GiB each, beside the driver
DEFAULT_CASES = ("ingest", "run-duckdb", "run-noop", "run-incremental", "run-spark", "plain-pyspark",
                 "plain-duckdb", "floor")
INCREMENTAL = ("run-noop", "run-incremental", "run-incremental-readings")  # reported as a share of run-duckdb
# Benchmarks build machine_learning_curated, whose pseudonyms need a key: a throwaway one, unless set.
BENCH_ENV = {"STEDI_PSEUDONYM_KEY": "bench-key-not-a-secret-0123456789"}

# Every column of every record parsed once (a bare count(*) would let DuckDB skip the values).
FLOOR_SQL = """
select (select sum(hash("user", "timestamp", x, y, z)) from read_json('{d}/accelerometer/**/*.json',
          format='newline_delimited',
          columns={{'user': 'VARCHAR', 'timestamp': 'BIGINT', 'x': 'DOUBLE', 'y': 'DOUBLE', 'z': 'DOUBLE'}})),
       (select sum(hash(sensorReadingTime, serialNumber, distanceFromObject))
          from read_json('{d}/step_trainer/**/*.json', format='newline_delimited',
          columns={{'sensorReadingTime': 'BIGINT', 'serialNumber': 'VARCHAR', 'distanceFromObject': 'INTEGER'}})),
       (select sum(hash(c)) from (select row(COLUMNS(*)) as c
          from read_json('{d}/customer/**/*.json', format='newline_delimited')))
"""


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (Linux /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(entry))
            rss[int(entry)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [pid]
    while stack:
        p = stack.pop()
        total += rss.get(p, 0)
        stack.extend(children.get(p, []))
    return total


def measure(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one process run: the process tree's, polled every 200 ms
    (a Spark JVM is a child process), or the kernel's peak of the largest process if that is higher (a
    run shorter than the polling interval)."""
    peak = 0
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**BENCH_ENV, **os.environ, **(env or {})})
    done = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, tree_rss(proc.pid))
            done.wait(0.2)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    assert proc.stderr is not None
    err = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    done.set()
    watcher.join()
    peak = max(peak, usage.ru_maxrss * 1024)  # Linux reports KiB
    if proc.returncode != 0:
        raise SystemExit(f"benchmark command failed ({proc.returncode}): {' '.join(cmd)}\n{err[-2000:]}")
    return wall, peak


def data_root() -> Path:
    """Where generated data is kept: $STEDI_BENCH_DATA, else bench/.data."""
    return Path(os.environ.get("STEDI_BENCH_DATA") or BENCH / ".data").resolve()


def landing_data(scale: float) -> tuple[Path, int]:
    """Generated landing data for a scale (made once) and its number of records."""
    out = data_root() / f"scale-{scale:g}"
    return out, _made(out, lambda: _generate().generate(out, scale=scale, seed=0))


def batch_data(scale: float) -> tuple[Path, int]:
    """The next daily batch of a scale's landing data (made once) and its number of records."""
    base, _ = landing_data(scale)
    out = data_root() / f"scale-{scale:g}-batch"
    return out, _made(out, lambda: _generate().generate_batch(base, out, seed=1))


def _made(out: Path, make: Callable[[], Any]) -> int:
    """The records of generated data in `out`, made first unless a stamp says it was."""
    stamp = out / "records.txt"
    if not stamp.exists():
        print(f"generating {out} ...", file=sys.stderr)
        shutil.rmtree(out, ignore_errors=True)
        report = make()
        stamp.write_text(str(report.customer_records + report.accelerometer_records + report.step_trainer_records))
    return int(stamp.read_text())


def _generate() -> Any:
    sys.path.insert(0, str(REPO / "src"))
    import stedi.generate

    return stedi.generate


_s3: list[object] = []  # the local S3 server, started on first use


def s3_env(work: Path, run: int) -> dict[str, str]:
    """Variables for a run with its root in a new bucket on the local S3 server (moto, as in the tests)."""
    if not _s3:
        sys.path.insert(0, str(REPO / "tests"))
        import s3server

        _s3.append(s3server.start())
    server = _s3[0]
    bucket = f"bench-{os.getpid()}-{run}-{time.monotonic_ns()}"
    server.create_bucket(bucket)  # type: ignore[attr-defined]
    return {**server.env(), "XDG_DATA_HOME": str(work / "data"),  # type: ignore[attr-defined]
            "STEDI_HOME": f"s3://{bucket}/lake"}


def case_commands(case: str, data: Path, work: Path, run: int = 0, scale: float = 1
                  ) -> tuple[Callable[[], None], list[str], dict[str, str]]:
    """What to prepare (untimed), the command to time and its environment, for one run of a case on the
    data of `scale`, `data`."""
    home = work / "lake"

    def fresh() -> None:
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)

    def ingested() -> None:
        fresh()
        subprocess.run([*STEDI, "--home", str(home), "ingest", str(data)], check=True, capture_output=True,
                       env={**BENCH_ENV, **os.environ})

    if case.endswith("-s3"):
        env = s3_env(work, run)

        def ingested_s3() -> None:
            fresh()
            subprocess.run([*STEDI, "ingest", str(data)], check=True, capture_output=True,
                           env={**BENCH_ENV, **os.environ, **env})

        if case == "ingest-s3":
            return fresh, [*STEDI, "ingest", str(data)], env
        if case == "run-duckdb-s3":
            return ingested_s3, [*STEDI, "run"], env
    if case in ("run-noop", "run-incremental"):
        def built_then_batch() -> None:
            ingested()
            steps = [["run"]] + ([["ingest", str(batch_data(scale)[0])]] if case == "run-incremental" else [])
            for step in steps:
                subprocess.run([*STEDI, "--home", str(home), *step], check=True, capture_output=True,
                               env={**BENCH_ENV, **os.environ})

        return built_then_batch, [*STEDI, "--home", str(home), "run"], {}
    if case == "run-incremental-readings":
        def built_then_more() -> None:
            fresh()
            first, later = split_files(data, work)
            env = {**BENCH_ENV, **os.environ}
            for step in (["ingest", "--follow-symlinks", str(first)], ["run"], ["ingest", *map(str, later)]):
                subprocess.run([*STEDI, "--home", str(home), *step], check=True, capture_output=True, env=env)

        return built_then_more, [*STEDI, "--home", str(home), "run"], {}
    if case.endswith("-cluster"):
        prepare, cmd = _local_case(case.removesuffix("-cluster"), data, work, home, fresh, ingested)
        return prepare, cmd, {"STEDI_SPARK_MASTER": CLUSTER, "PLAIN_SPARK_MASTER": CLUSTER}
    prepare, cmd = _local_case(case, data, work, home, fresh, ingested)
    return prepare, cmd, {}


def split_files(data: Path, work: Path, share: float = 0.01) -> tuple[Path, list[Path]]:
    """The landing files as a folder of the first 99% (symlinks) and the last 1% of reading files."""
    files = sorted(p for p in data.rglob("*.json"))
    readings = [p for p in files if "customer" not in p.parts]
    later = readings[-max(1, round(share * len(files))):]
    first = work / "first"
    for f in files:
        if f not in later:
            link = first / f.relative_to(data)
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(f)
    return first, later


def _local_case(case: str, data: Path, work: Path, home: Path, fresh: Callable[[], None],
                ingested: Callable[[], None]) -> tuple[Callable[[], None], list[str]]:
    if case == "ingest":
        return fresh, [*STEDI, "--home", str(home), "ingest", str(data)]
    if case == "run-duckdb":
        return ingested, [*STEDI, "--home", str(home), "run"]
    if case == "run-spark":
        return ingested, [*STEDI, "--home", str(home), "run", "--engine", "spark"]
    if case == "plain-pyspark":
        return fresh, [sys.executable, str(BENCH / "plain_pyspark.py"), str(data), str(work / "zones")]
    if case == "floor":
        return fresh, [sys.executable, "-c", f"import duckdb; duckdb.sql({FLOOR_SQL.format(d=data)!r}).fetchall()"]
    if case == "plain-duckdb":
        script = (BENCH / "plain_duckdb.sql").read_text().replace("$DATA", str(data))
        return fresh, [sys.executable, "-c", f"import duckdb; duckdb.connect().execute({script!r}).fetchall()"]
    raise SystemExit(f"unknown case {case!r}; cases: {', '.join(CASES)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=1)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--cases", default=",".join(DEFAULT_CASES), help=f"any of {', '.join(CASES)}")
    parser.add_argument("--out", type=Path, default=BENCH / "results")
    args = parser.parse_args()

    data, records = landing_data(args.scale)
    results = []
    with tempfile.TemporaryDirectory(prefix="stedi-bench-") as tmp:
        for case in args.cases.split(","):
            walls, peaks = [], []
            for i in range(args.runs):
                prepare, cmd, env = case_commands(case, data, Path(tmp) / case, i, args.scale)
                prepare()
                wall, peak = measure(cmd, env)
                walls.append(wall)
                peaks.append(peak)
                print(f"  {case} run {i + 1}/{args.runs}: {wall:.2f} s, {peak / 2**20:.0f} MiB", file=sys.stderr)
            median = statistics.median(walls)
            results.append({"case": case, "when": datetime.now(UTC).isoformat(timespec="seconds"),
                            "runs": walls, "median_s": round(median, 3),
                            "peak_rss_mib": round(max(peaks) / 2**20, 1),
                            "records_per_s": round(records / median)})
            if case == "run-incremental":
                results[-1]["batch_records"] = batch_data(args.scale)[1]
    report = {
        "scale": args.scale, "records": records, "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cores": os.cpu_count(), "memory_gib": round(os.sysconf("SC_PHYS_PAGES")
                                                                 * os.sysconf("SC_PAGE_SIZE") / 2**30, 1),
                    "python": platform.python_version(), "platform": platform.platform()},
        "results": results,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / f"scale-{args.scale:g}.json"
    if path.exists():  # keep the other cases' latest figures; each case says when it was measured
        earlier = {r["case"]: r for r in json.loads(path.read_text())["results"]}
        old = earlier.get("run-incremental")
        if old is not None and "batch_records" not in old:
            # measured before run-incremental landed a daily batch: that was the readings-only case
            del earlier["run-incremental"]
            earlier.setdefault("run-incremental-readings", {**old, "case": "run-incremental-readings"})
        report["results"] = list({**earlier, **{r["case"]: r for r in results}}.values())
    base = {r["case"]: r["median_s"] for r in report["results"]}
    for r in report["results"]:
        # a case on the cluster is compared with the plain jobs on the same cluster
        plain = "plain-pyspark-cluster" if r["case"].endswith("-cluster") else "plain-pyspark"
        if plain in base:
            r["x_faster_than_plain_pyspark"] = round(base[plain] / r["median_s"], 2)
        if "floor" in base:
            r["x_floor"] = round(r["median_s"] / base["floor"], 2)
        if "plain-duckdb" in base:
            r["x_plain_duckdb"] = round(r["median_s"] / base["plain-duckdb"], 2)
        if "run-duckdb" in base and r["case"] in INCREMENTAL:
            r["share_of_full_run"] = round(r["median_s"] / base["run-duckdb"], 3)
    path.write_text(json.dumps(report, indent=2) + "\n")
    for server in _s3:
        server.stop()  # type: ignore[attr-defined]
    table = markdown(report)
    path.with_suffix(".md").write_text(table)
    print(table)
    print(f"written to {path}")


def markdown(report: dict) -> str:  # type: ignore[type-arg]
    """The results as a Markdown table, for docs/benchmarks.md."""
    m = report["machine"]
    lines = [f"Scale {report['scale']:g}: {report['records']:,} landing records; {m['cores']} cores, "
             f"{m['memory_gib']} GiB, Python {m['python']}.", "",
             "| case | median s | runs | peak MiB | records/s | vs plain PySpark | vs plain DuckDB | x floor "
             "| share of full run |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["results"]:
        plain = f"{r['x_faster_than_plain_pyspark']:.1f}x faster" if "x_faster_than_plain_pyspark" in r else ""
        duck = f"{r['x_plain_duckdb']:.1f}x" if "x_plain_duckdb" in r else ""
        floor = f"{r['x_floor']:.1f}x" if "x_floor" in r else ""
        share = f"{r['share_of_full_run']:.0%}" if "share_of_full_run" in r else ""
        lines.append(f"| `{r['case']}` | {r['median_s']:.2f} | {len(r['runs'])} | {r['peak_rss_mib']:,.0f} | "
                     f"{r['records_per_s']:,} | {plain} | {duck} | {floor} | {share} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
