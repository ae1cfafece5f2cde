"""The whole lakehouse on S3, against a real S3-protocol server (moto) on 127.0.0.1 with authentication on."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stedi import CatalogError, ConfigError, EngineError, Lakehouse, LandingError, QueryError, StorageError
from stedi.cli.main import cli, main

import s3server
from support import FIXTURES, SHARED_DATA, Batches, contents, rows

pytestmark = [pytest.mark.s3, pytest.mark.slow]

EXPECTED = {
    "customer_landing": 956, "accelerometer_landing": 81_273, "step_trainer_landing": 28_680,
    "customer_trusted": 482, "accelerometer_trusted": 40_981, "customers_curated": 482,
    "step_trainer_trusted": 14_460, "machine_learning_curated": 40_981,
    "customer_quarantine": 0, "accelerometer_quarantine": 0, "step_trainer_quarantine": 0, "reconciliation": 3,
    "quality_failures": 0, "quality_checks": 7, "runs": 12,
}


@pytest.fixture(autouse=True)
def aws_env(server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The standard AWS variables point at the local server; this machine's data dir is the test's own."""
    server.use(monkeypatch, tmp_path)


def _bucket(server: s3server.S3Server, name: str) -> str:
    server.create_bucket(name)
    return name


def _keys(server: s3server.S3Server, bucket: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


@pytest.fixture(scope="module")
def s3_lake(server: s3server.S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lakehouse]:
    """The real data ingested and built with the root in a bucket (module scope: built once)."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env().items():
            patch.setenv(name, value)
        patch.setenv("XDG_DATA_HOME", str(tmp_path_factory.mktemp("data")))
        server.create_bucket("lake")
        lake = Lakehouse("s3://lake/stedi")
        lake.ingest(SHARED_DATA)
        lake.run()
        yield lake


def test_ingest_run_and_sql_on_s3_give_the_reference_counts(s3_lake: Lakehouse, server: s3server.S3Server) -> None:
    assert {t.name: t.rows for t in s3_lake.tables()} == EXPECTED
    assert rows(s3_lake, "select count(*), count(distinct customer_key) from machine_learning_curated") == [
        (40_981, 482)]
    keys = _keys(server, "lake")
    assert "stedi/landing/manifest.json" in keys and "stedi/catalog.json" in keys
    assert sum(k.startswith("stedi/landing/accelerometer/") for k in keys) == 9
    assert any(k.startswith("stedi/warehouse/stedi/machine_learning_curated/metadata/") for k in keys)
    assert any(k.startswith("stedi/warehouse/stedi/machine_learning_curated/data/") and k.endswith(".parquet")
               for k in keys)


def test_s3_tables_equal_a_local_build_row_for_row(s3_lake: Lakehouse, tmp_path: Path) -> None:
    local = Lakehouse(tmp_path / "local")
    local.ingest(SHARED_DATA)
    local.run()
    for table in ("customer_trusted", "step_trainer_trusted", "machine_learning_curated"):
        query = f"select * from {table} order by all"
        assert rows(s3_lake, query) == rows(local, query), table


def test_a_second_run_on_s3_commits_nothing(s3_lake: Lakehouse) -> None:
    report = s3_lake.run()
    assert {t.status for t in report.tables} == {"up to date"}


def test_reconcile_on_s3(s3_lake: Lakehouse) -> None:
    figures = {f["source"]: (f["read"], f["kept"], f["balanced"]) for f in s3_lake.reconcile()}
    assert figures == {"customer": (956, 482, "true"), "accelerometer": (81_273, 40_981, "true"),
                       "step_trainer": (28_680, 14_460, "true")}


def test_sql_on_s3_still_reads_only_the_tables(s3_lake: Lakehouse) -> None:
    with pytest.raises(QueryError):
        s3_lake.sql("select count(*) from read_json('s3://lake/stedi/landing/customer/*.json')")


def test_no_credential_is_written_to_the_bucket_or_the_local_catalog(
        s3_lake: Lakehouse, server: s3server.S3Server, tmp_path: Path) -> None:
    secret, key_id = server.secret_key.encode(), server.access_key.encode()
    client = server.client()
    for key in _keys(server, "lake"):
        body = client.get_object(Bucket="lake", Key=key)["Body"].read()
        assert secret not in body and key_id not in body, key
    local = [p for p in s3_lake.settings.state_dir.rglob("*") if p.is_file()]
    assert s3_lake.settings.catalog_path in local
    for path in local:
        assert secret not in path.read_bytes() and key_id not in path.read_bytes(), path
    assert server.secret_key not in repr(s3_lake.settings.s3_connection())


def test_cli_on_an_s3_home(server: s3server.S3Server, tmp_path: Path) -> None:
    _bucket(server, "cli")
    runner = CliRunner()
    home = ["--home", "s3://cli/lake"]
    ingest = runner.invoke(cli, [*home, "ingest", str(SHARED_DATA / "customer")])
    assert ingest.exit_code == 0, ingest.output
    assert "landing zone: s3://cli/lake/landing" in ingest.output
    run = runner.invoke(cli, [*home, "run", "--select", "customer_trusted"])
    assert run.exit_code == 0, run.output
    out = runner.invoke(cli, [*home, "sql", "select count(*) as n from customer_trusted", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == [{"n": 482}]
    assert server.secret_key not in ingest.output + run.output + out.output


def test_nothing_landed_in_a_bucket_is_said_and_nothing_is_created(server: s3server.S3Server,
                                                                   tmp_path: Path) -> None:
    """Run and the readers on a prefix where nothing has landed: one line, no object in the bucket (no lock,
    no catalog.json), no local catalog; once something has landed, readers list the tables unbuilt."""
    _bucket(server, "empty")
    server.client().put_object(Bucket="empty", Key="other/notes.txt", Body=b"not stedi's")  # elsewhere in it
    data = tmp_path / "data"
    for command in (["run"], ["tables"], ["sql", "select 1"], ["history"], ["tags"], ["optimize"]):
        code, err = invoke_main(command, home="s3://empty/lake")
        assert (code, err) == (1, "error: nothing has landed in s3://empty/lake yet: `stedi ingest PATH` first "
                                  "(or give the root of an existing lakehouse with --home or STEDI_HOME)\n"), command
        assert _keys(server, "empty") == ["other/notes.txt"], command
        assert not data.exists() or not any(p.is_file() for p in data.rglob("*")), command
    lake = Lakehouse("s3://empty/lake")
    lake.ingest(FIXTURES / "edge" / "customer")
    assert [t.built for t in lake.tables()] == [False] * 15


def test_ingest_from_s3_paths_into_a_local_and_an_s3_root(server: s3server.S3Server, tmp_path: Path) -> None:
    raw = _bucket(server, "raw")
    client = server.client()
    for file in sorted((SHARED_DATA / "step_trainer" / "landing").glob("*.json")):
        client.upload_file(str(file), raw, f"drop/step_trainer/{file.name}")
    client.put_object(Bucket=raw, Key="drop/notes.txt", Body=b"not data")

    local = Lakehouse(tmp_path / "local")
    report = local.ingest("s3://raw/drop/")
    assert len(report.landed) == 3 and [Path(p).name for p, _ in report.skipped] == ["notes.txt"]
    assert all(f.origin.startswith("s3://raw/drop/step_trainer/") for f in report.landed)
    local.run(select=["step_trainer_landing"])
    assert local.describe("step_trainer_landing").rows == 28_680
    assert local.ingest("s3://raw/drop/").landed == []  # idempotent

    _bucket(server, "both")
    remote = Lakehouse("s3://both/lake")
    one = "s3://raw/drop/step_trainer/" + sorted(p.name for p in
                                                 (SHARED_DATA / "step_trainer" / "landing").glob("*.json"))[0]
    assert [f.name for f in remote.ingest(one).landed] == [one.rsplit("/", 1)[-1]]


def test_a_missing_bucket_is_a_clear_error(server: s3server.S3Server, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(StorageError, match="bucket does not exist"):
        Lakehouse("s3://no-such-bucket/lake").ingest(SHARED_DATA / "customer")
    with pytest.raises(SystemExit) as exited:
        main(["--home", "s3://no-such-bucket/lake", "run"])
    err = capsys.readouterr().err
    assert exited.value.code == 1
    assert err.startswith("error: ") and "bucket does not exist" in err and len(err.splitlines()) == 1


def test_wrong_credentials_are_a_clear_error(server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _bucket(server, "guarded")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAWRONGWRONGWRONG0")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret")
    with pytest.raises(StorageError, match="access denied") as info:
        Lakehouse("s3://guarded/lake").run()
    assert "wrong-secret" not in str(info.value)


def test_an_unreachable_endpoint_is_a_clear_error_quickly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{s3server.free_port()}")
    started = time.monotonic()
    with pytest.raises(StorageError, match="cannot be reached"):
        Lakehouse("s3://lake/stedi").tables()
    assert time.monotonic() - started < 30


def test_s3_settings_from_stedi_toml(server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    _bucket(server, "configured")
    monkeypatch.delenv("AWS_ENDPOINT_URL")
    Path("stedi.toml").write_text(f'home = "s3://configured/lake"\n[s3]\nendpoint = "{server.endpoint}"\n'
                                  'region = "us-east-1"\npath_style = true\n')
    lake = Lakehouse()
    assert [f.name for f in lake.ingest(SHARED_DATA / "customer").landed] == ["customer-1691348231425.json"]
    assert "configured/lake/landing/manifest.json"[len("configured/"):] in _keys(server, "configured")


def test_credentials_in_stedi_toml_are_refused() -> None:
    Path("stedi.toml").write_text('[s3]\naccess_key_id = "AKIA..."\n')
    with pytest.raises(ConfigError, match="Credentials are not set here"):
        Lakehouse()


def test_a_sqlite_catalog_cannot_live_in_a_bucket() -> None:
    with pytest.raises(ConfigError, match="SQLite cannot keep a catalog in a bucket"):
        Lakehouse("s3://lake/x", catalog_file="s3://lake/x/catalog.db")


def test_a_second_embedded_catalog_over_one_bucket_is_refused(server: s3server.S3Server, tmp_path: Path) -> None:
    _bucket(server, "shared")
    first = Lakehouse("s3://shared/lake")
    first.ingest(SHARED_DATA / "customer")
    first.run(select=["customer_landing"])
    other = Lakehouse("s3://shared/lake", catalog_file=tmp_path / "elsewhere" / "catalog.db")
    with pytest.raises(CatalogError, match="registered in an embedded SQLite catalog on host .*shared catalog"):
        other.run(select=["customer_landing"])
    # the owning catalog, named explicitly, is fine
    same = Lakehouse("s3://shared/lake", catalog_file=first.settings.catalog_path)
    assert same.describe("customer_landing").rows == 956


@pytest.mark.spark
def test_spark_on_an_s3_home_fails_clearly_without_hadoop_aws(server: s3server.S3Server,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import stedi.engines.spark

    _bucket(server, "sparky")
    lake = Lakehouse("s3://sparky/lake", engine="spark")
    lake.ingest(SHARED_DATA / "customer")
    started: list[object] = []

    def session(settings: object) -> None:
        started.append(settings)
        raise AssertionError("a Spark session was started for a root Spark cannot reach")

    monkeypatch.setattr(stedi.engines.spark, "session", session)
    with pytest.raises(EngineError, match="pyspark ships no hadoop-aws") as info:
        lake.run()
    assert "--engine duckdb" in str(info.value)
    assert started == []  # refused before starting Spark (a JVM start is seconds, more on a busy machine)
    assert lake.describe("customer_landing").built is False  # nothing was committed


def test_erasure_on_s3_leaves_no_trace(server: s3server.S3Server) -> None:
    _bucket(server, "erase")
    lake = Lakehouse("s3://erase/lake")
    lake.ingest(SHARED_DATA)
    lake.run()
    [(email,)] = rows(lake, "select email from customers_curated order by email limit 1")
    before = lake.describe("customers_curated").rows
    receipt = lake.erase([email])
    assert receipt.people == 1 and receipt.audit_log == "s3://erase/lake/privacy/erasures.jsonl"
    assert lake.describe("customers_curated").rows == before - 1
    client = server.client()
    for key in _keys(server, "erase"):
        body: Any = client.get_object(Bucket="erase", Key=key)["Body"].read()
        if key.endswith(".parquet"):
            import io

            import pyarrow.parquet as pq

            text = str(pq.read_table(io.BytesIO(body)).to_pylist()).lower()
        else:
            text = body.decode("utf-8", "replace").lower()
        assert email.lower() not in text, key
    # and a re-ingest does not bring them back
    assert lake.ingest(SHARED_DATA).suppressed > 0


def test_a_stale_local_catalog_of_an_emptied_bucket_is_explained_and_reset(server: s3server.S3Server) -> None:
    _bucket(server, "stale")
    lake = Lakehouse("s3://stale/lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    client = server.client()
    for key in _keys(server, "stale"):  # the bucket is emptied (or deleted and made again)
        client.delete_object(Bucket="stale", Key=key)
    catalog = Lakehouse("s3://stale/lake").settings.catalog_path
    for command in (["tables"], ["run"], ["sql", "select 1"], ["erase", "--email", "alice@test.com"]):
        result = invoke_main(command)
        assert result[0] == 1, command
        assert result[1] == (f"error: the embedded catalog {catalog} lists 15 tables of s3://stale/lake, but the "
                             "lakehouse there has no catalog.json: the bucket was emptied or recreated, or this "
                             "catalog belongs to another lakehouse. Run `stedi attach` to register the tables the "
                             "root holds (tables whose files are gone are forgotten, and the next `stedi run` "
                             "builds them again)\n"), command
    assert invoke_main(["attach"])[0] == 0
    fresh = Lakehouse("s3://stale/lake")
    with pytest.raises(LandingError, match="^nothing has landed in s3://stale/lake yet"):  # the bucket was emptied
        fresh.tables()
    fresh.ingest(FIXTURES / "edge")
    assert not any(t.built for t in fresh.tables())
    assert [t.status for t in fresh.run().tables] == ["built"] * 8
    assert "lake/catalog.json" in _keys(server, "stale")


def test_a_lost_local_catalog_is_refused_and_reattached(server: s3server.S3Server) -> None:
    _bucket(server, "lost")
    lake = Lakehouse("s3://lost/lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    expected = {t.name: t.rows for t in lake.tables()}
    for path in lake.settings.state_dir.iterdir():  # this machine's catalog is lost (a new laptop)
        if path.is_file():
            path.unlink()
    code, err = invoke_main(["tables"], home="s3://lost/lake")
    assert code == 1 and "is registered in an embedded SQLite catalog on host" in err
    assert "`stedi attach` registers the root's tables in this one" in err
    assert invoke_main(["attach"], home="s3://lost/lake")[0] == 0
    again = Lakehouse("s3://lost/lake")
    assert {t.name: t.rows for t in again.tables()} == expected
    assert {t.status for t in again.run().tables} == {"up to date"}


def test_a_deleted_catalog_beside_its_id_is_refused_and_reattached_with_history_and_tags(
        server: s3server.S3Server) -> None:
    """Only catalog.db goes (its .id stays, so the bucket still names this machine's catalog): no rebuild."""
    _bucket(server, "gone")
    lake = Lakehouse("s3://gone/lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    lake.tag("kept")
    expected, runs = {t.name: t.rows for t in lake.tables()}, rows(lake, "select count(*) from runs")
    lake.settings.catalog_path.unlink()
    for command in (["tables"], ["run"], ["ingest", str(FIXTURES / "edge")]):
        code, err = invoke_main(command, home="s3://gone/lake")
        assert (code, err) == (1, f"error: the catalog {lake.settings.catalog_path} is missing, but the lakehouse at "
                                  "s3://gone/lake holds 15 tables (e.g. customer_landing): the catalog was lost or "
                                  "replaced. Run `stedi attach` to register them again with their history, snapshots "
                                  "and tags (nothing is rebuilt); stedi does not rebuild over them\n"), command
    assert not lake.settings.catalog_path.exists()
    assert invoke_main(["attach"], home="s3://gone/lake")[0] == 0
    again = Lakehouse("s3://gone/lake")
    assert {t.name: t.rows for t in again.tables()} == expected
    assert rows(again, "select count(*) from runs") == runs
    assert [tag.name for tag in again.tags()] == ["kept"]
    assert {t.status for t in again.run().tables} == {"up to date"}


def invoke_main(args: list[str], home: str = "s3://stale/lake") -> tuple[int, str]:
    """`stedi --home HOME ARGS` through main(): (exit code, what it printed on stderr)."""
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()), \
            pytest.raises(SystemExit) as exited:
        main(["--home", home, *args])
    code = exited.value.code
    return (code if isinstance(code, int) else 1), err.getvalue()


def test_an_erased_person_delivered_into_the_bucket_stays_out(server: s3server.S3Server) -> None:
    _bucket(server, "redeliver")
    lake = Lakehouse("s3://redeliver/lake")
    lake.ingest(FIXTURES / "edge")
    lake.run()
    lake.erase(["alice@test.com"])
    client = server.client()
    for source in ("customer", "step_trainer"):  # an upstream system writes into the landing prefix
        client.put_object(Bucket="redeliver", Key=f"lake/landing/{source}/{source}-again.json",
                          Body=(FIXTURES / "edge" / source / f"{source}-edge.json").read_bytes())
    report = Lakehouse("s3://redeliver/lake").run()
    assert {f.source: f.suppressed for f in report.reconciliation} == {"customer": 1, "accelerometer": 0,
                                                                       "step_trainer": 5}
    assert rows(lake, "select count(*) from step_trainer_landing where serialNumber = 'SN-ALICE'") == [(0,)]
    for source in ("customer", "step_trainer"):
        body = client.get_object(Bucket="redeliver", Key=f"lake/landing/{source}/{source}-again.json")["Body"]
        assert b"alice" not in body.read().lower()


def test_a_changed_customer_updates_the_tables_in_the_bucket_key_by_key(server: s3server.S3Server,
                                                                        tmp_path: Path) -> None:
    """Key-level maintenance on S3: the files holding a withdrawn customer's rows are found and rewritten
    in the bucket (copy-on-write by s3:// URI), and every table equals a local full rebuild."""
    _bucket(server, "keyed")
    lake = Lakehouse("s3://keyed/stedi")
    lake.ingest(SHARED_DATA)
    lake.run()
    [(email, serial, updated)] = rows(lake, "select email, serialNumber, lastUpdateDate from customer_trusted "
                                            "order by email limit 1")
    record = {"customerName": "Withdrawn", "email": email, "phone": "8015551212", "birthDay": "1990-01-01",
              "serialNumber": serial, "registrationDate": updated - 1, "lastUpdateDate": updated + 1,
              "shareWithResearchAsOfDate": None, "shareWithPublicAsOfDate": None, "shareWithFriendsAsOfDate": None}
    change = tmp_path / "change" / "customer" / "customer-withdrawn.json"
    change.parent.mkdir(parents=True)
    change.write_text(json.dumps(record) + "\n")
    lake.ingest(change)
    report = {t.table: t.status for t in lake.run().tables}
    assert {report[t] for t in ("customer_trusted", "accelerometer_trusted", "customers_curated",
                                "step_trainer_trusted", "machine_learning_curated")} == {"updated"}
    assert rows(lake, f"select count(*) from accelerometer_trusted where \"user\" = '{email}'") == [(0,)]

    local = Lakehouse(tmp_path / "local")
    local.ingest(SHARED_DATA, change)
    local.run()
    for table in ("customer_trusted", "accelerometer_trusted", "customers_curated", "step_trainer_trusted",
                  "machine_learning_curated"):
        query = f"select * from {table} order by all"
        assert rows(lake, query) == rows(local, query), table
    assert {t.name: t.rows for t in lake.tables()}["customer_trusted"] == EXPECTED["customer_trusted"] - 1


def test_time_travel_tags_export_erasure_and_rollback_in_a_bucket(server: s3server.S3Server, batches: Batches,
                                                                   tmp_path: Path) -> None:
    """Issue 16 on S3: a tag is an Iceberg ref in the bucket's metadata; time travel, export, the erasure of
    a tagged state and a rollback read and write s3:// files only."""
    import hashlib

    from stedi.tables import TABLES

    _bucket(server, "states")
    lake = Lakehouse("s3://states/lake")
    lake.ingest(batches.first)
    first = lake.run().run_id
    day1 = contents(lake)
    lake.tag("day1")
    lake.ingest(batches.second)
    lake.run()
    assert contents(lake) != day1
    data = [n for n, t in TABLES.items() if t.kind != "history"]
    assert {n: Counter(rows_as_of(lake, n, "day1")) for n in data} == day1
    assert {n: Counter(rows_as_of(lake, n, first)) for n in data} == day1

    manifest = lake.export("machine_learning_curated", tmp_path / "export", as_of="day1")
    assert manifest.rows == sum(day1["machine_learning_curated"].values()) > 0
    for entry in manifest.files:
        assert hashlib.sha256((tmp_path / "export" / entry.path).read_bytes()).hexdigest() == entry.sha256

    email = min(r[1] for r in rows_as_of(lake, "customers_curated", "day1"))  # a person the tagged state holds
    receipt = lake.erase([email])
    assert receipt.tags_rewritten == ["day1"]
    client = server.client()
    for key in _keys(server, "states"):
        if key.endswith(".parquet"):
            import io

            import pyarrow.parquet as pq

            body: Any = client.get_object(Bucket="states", Key=key)["Body"].read()
            assert email.lower() not in str(pq.read_table(io.BytesIO(body)).to_pylist()).lower(), key
    rewritten = {n: Counter(rows_as_of(lake, n, "day1")) for n in data}
    assert sum(rewritten["customer_landing"].values()) < sum(day1["customer_landing"].values())

    lake.rollback(tag="day1")
    assert contents(lake) == rewritten
    lake.verify_reconciliation()

    # the report, written as an object in the bucket (issue 17), of the state the tag names
    assert lake.report("s3://states/reports/day1.html", as_of="day1") == "s3://states/reports/day1.html"
    page = client.get_object(Bucket="states", Key="reports/day1.html")
    html = page["Body"].read().decode()
    assert page["ContentType"].startswith("text/html")
    assert '<section id="lineage">' in html and "tag day1" in html and email.lower() not in html.lower()


def rows_as_of(lake: Lakehouse, table: str, spec: str) -> list[tuple[Any, ...]]:
    if table not in lake.state(spec).snapshots:
        return []
    return [tuple(r.values()) for r in lake.sql(f"select * from {table}", as_of=spec).to_pylist()]


def _fresh_glue_catalog(server: s3server.S3Server) -> None:
    """The server's Glue Data Catalog without stedi's database: one per account, as on AWS, so each test of a
    Glue catalog starts from none (another test's tables would be in another bucket)."""
    server.drop_glue_database()


def test_a_glue_catalog_places_the_tables_under_the_root(server: s3server.S3Server) -> None:
    """`[catalog] type = "glue"` and nothing else (issue 18): the tables are registered in the Glue Data Catalog
    (moto's Glue API on the test server) as Iceberg tables under the root's warehouse/, with the counts."""
    _bucket(server, "glued")
    _fresh_glue_catalog(server)
    (Path.cwd() / "stedi.toml").write_text('home = "s3://glued/lake"\n[catalog]\ntype = "glue"\n')
    lake = Lakehouse()
    lake.ingest(FIXTURES / "edge")
    lake.run()
    glue = server.glue()
    tables = {t["Name"]: t for t in glue.get_tables(DatabaseName="stedi")["TableList"]}
    assert set(tables) == {t.name for t in lake.tables()}
    for name, table in tables.items():
        assert table["Parameters"]["table_type"].upper() == "ICEBERG", name
        assert table["Parameters"]["metadata_location"].startswith("s3://glued/lake/warehouse/"), name
    assert {t.name: t.rows for t in lake.tables()}["customer_trusted"] == rows(
        lake, "select count(*) from customer_trusted")[0][0] > 0
    assert not (Path(lake.settings.catalog_path)).exists()  # no embedded catalog was made


def test_a_user_limited_as_the_deployed_role_runs_the_lakehouse(server: s3server.S3Server,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The S3 and Glue statements of the role `stedi deploy aws --prefix` writes, given to a user of the test
    server (which enforces IAM): ingest, run and sql work on s3://bucket/prefix with the Glue catalog, and the
    same user is refused outside the prefix."""
    import boto3

    from stedi.deploy.aws import role_policy
    from stedi.deploy.deployment import deployment

    _bucket(server, "limited")
    _fresh_glue_catalog(server)
    admin = {"endpoint_url": server.endpoint, "region_name": "us-east-1",
             "aws_access_key_id": server.access_key, "aws_secret_access_key": server.secret_key}
    text = json.dumps([s for s in role_policy(deployment("limited", "team/lake"))["Statement"]
                       if s["Sid"] in ("ObjectsUnderTheRoot", "ListTheRootOnly", "TheStediDatabase")])
    text = (text.replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
            .replace("${AWS::AccountId}", "123456789012"))
    statements = [{k: (v["Fn::Sub"] if isinstance(v, dict) and "Fn::Sub" in v else v) for k, v in s.items()}
                  for s in json.loads(text)]
    for statement in statements:
        if statement["Sid"] == "TheStediDatabase":
            # moto matches Glue actions against "*" only (it knows no Glue resource ARNs); the role's ARNs are
            # held to the database by tests/unit/test_deploy_aws.py. The S3 statements are the role's own.
            statement["Resource"] = "*"
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName="job")
    iam.put_user_policy(UserName="job", PolicyName="role",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": statements}))
    key = iam.create_access_key(UserName="job")["AccessKey"]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", key["AccessKeyId"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", key["SecretAccessKey"])

    (Path.cwd() / "stedi.toml").write_text('home = "s3://limited/team/lake"\n[catalog]\ntype = "glue"\n')
    lake = Lakehouse()
    lake.ingest(FIXTURES / "edge")
    lake.run()
    assert rows(lake, "select count(*) from customer_trusted")[0][0] > 0
    with pytest.raises(StorageError):
        Lakehouse("s3://limited/elsewhere").ingest(FIXTURES / "edge")
