"""A shared Glue catalog (issue 18, `[catalog] type = "glue"` on an s3:// root), against moto's Glue and S3 APIs
on one local server with authentication on, through pyiceberg's own GlueCatalog.

Erasure and optimize work through it and leave every Glue table pointing at its new metadata under the
root. A catalog that is stale (it names metadata that is gone) or that holds, under a stedi table's name,
a table that is not this lakehouse's (another lakehouse's, a Hive table, an Iceberg table stedi did not
make) stops every command with one line naming the table, where it is, and the fix; nothing is written
into the other table or outside the root, and nothing of the user's is dropped.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stedi import Lakehouse
from stedi.cli.main import main
from stedi.tables import TABLES

import s3server
from support import FIXTURES, Batches, contents, rows

pytestmark = [pytest.mark.s3, pytest.mark.slow]

EDGE = FIXTURES / "edge"


@pytest.fixture(scope="module")
def server() -> Iterator[s3server.S3Server]:
    srv = s3server.start()
    yield srv
    srv.stop()


@pytest.fixture(autouse=True)
def aws_env(server: s3server.S3Server, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The AWS variables point at the local server; the Glue Data Catalog (one per account) starts without
    stedi's database."""
    server.use(monkeypatch, tmp_path)
    server.drop_glue_database()


GLUE = "glue.toml"  # the settings of the lakehouse in the bucket (a local lakehouse of a test has none)


def glued(server: s3server.S3Server, bucket: str) -> str:
    """A bucket whose lakehouse s3://BUCKET/lake uses the Glue catalog (settings in ./glue.toml)."""
    server.create_bucket(bucket)
    Path(GLUE).write_text(f'home = "s3://{bucket}/lake"\n[catalog]\ntype = "glue"\n')
    return f"s3://{bucket}/lake"


def glue_lake() -> Lakehouse:
    return Lakehouse(config=GLUE)


def glue_contents() -> dict[str, Counter[tuple[Any, ...]]]:
    """support.contents of the lakehouse in the bucket, its tables loaded from Glue once for all the queries."""
    lake = glue_lake()
    with lake.catalog.cached():
        return contents(lake)


def stedi(*args: str) -> tuple[int, str, str]:
    """`stedi --config glue.toml ARGS` through main(): (exit code, stdout, stderr)."""
    out, err = io.TextIOWrapper(io.BytesIO(), encoding="utf-8"), io.StringIO()  # JSON output writes bytes
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err), pytest.raises(SystemExit) as exited:
        main(["--config", GLUE, *args])
    code = exited.value.code
    out.flush()
    return (code if isinstance(code, int) else 1), out.buffer.getvalue().decode(), err.getvalue()


def glue_tables(server: s3server.S3Server) -> dict[str, dict[str, Any]]:
    pages = server.glue().get_paginator("get_tables").paginate(DatabaseName="stedi")
    return {t["Name"]: t for page in pages for t in page["TableList"]}


def metadata_locations(server: s3server.S3Server) -> dict[str, str]:
    return {name: t["Parameters"]["metadata_location"] for name, t in glue_tables(server).items()}


def keys(server: s3server.S3Server, bucket: str) -> list[str]:
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def exists(server: s3server.S3Server, uri: str) -> bool:
    bucket, key = uri.removeprefix("s3://").split("/", 1)
    return bool(server.client().list_objects_v2(Bucket=bucket, Prefix=key)["KeyCount"])


def without_person(source: Path, email: str, out: Path) -> Path:
    """A copy of the delivery in `source` that never held `email`'s customer records, accelerometer readings or
    the readings of their own devices (serial numbers on no other customer's record): what erasure must
    leave, worked out here from the raw JSON."""
    def records(folder: str) -> list[tuple[Path, list[dict[str, Any]]]]:
        return [(f, [json.loads(line) for line in f.read_text().splitlines() if line.strip()])
                for f in sorted((source / folder).rglob("*.json"))]

    def theirs(record: dict[str, Any], key: str) -> bool:
        return isinstance(record.get(key), str) and record[key].strip().lower() == email.strip().lower()

    customers = records("customer")
    mine = {r["serialNumber"] for _, rs in customers for r in rs if theirs(r, "email")}
    others = {r["serialNumber"] for _, rs in customers for r in rs if not theirs(r, "email")}
    drop = {"customer": lambda r: theirs(r, "email"), "accelerometer": lambda r: theirs(r, "user"),
            "step_trainer": lambda r: r.get("serialNumber") in mine - others}
    for folder, rejected in drop.items():
        for file, found in records(folder) if folder != "customer" else customers:
            target = out / file.relative_to(source)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text("".join(json.dumps(r) + "\n" for r in found if not rejected(r)))
    return out


def test_erase_and_optimize_through_a_glue_catalog(server: s3server.S3Server, batches: Batches,
                                                   tmp_path: Path) -> None:
    """ingest, run, tag, erase, optimize, reconcile --verify and sql --as-of with the Glue catalog: the tables
    equal, row for row, a local lakehouse built from the delivery before, and after the erasure from the
    delivery without the person (computed from the raw JSON); every Glue table then names its new metadata,
    which is under the root's warehouse and there."""
    home = glued(server, "gl-erase")
    assert stedi("ingest", str(batches.first))[0] == 0
    assert stedi("run")[0] == 0
    lake = glue_lake()
    local = Lakehouse(tmp_path / "before")
    local.ingest(batches.first)
    local.run()
    expected_before = contents(local)
    assert glue_contents() == expected_before
    assert stedi("tag", "day1")[0] == 0
    before = metadata_locations(server)
    assert set(before) == set(TABLES)

    [(email,)] = rows(lake, "select email from customers_curated order by email limit 1")
    code, out, err = stedi("erase", "--email", email)
    assert code == 0, err
    assert "erased 1 people" in out and "tagged states rewritten without them: day1" in out
    after = Lakehouse(tmp_path / "after")
    after.ingest(without_person(batches.first, email, tmp_path / "without"))
    after.run()
    expected_after = contents(after)
    assert expected_after != expected_before
    assert sum(expected_after["customers_curated"].values()) == sum(expected_before["customers_curated"].values()) - 1

    code, _out, err = stedi("optimize", "--retention-days", "0", "--grace-minutes", "0")
    assert code == 0, err
    code, _out, err = stedi("reconcile", "--verify")
    assert code == 0, err
    code, out, err = stedi("sql", "select count(*) as n from customers_curated", "--as-of", "day1", "--format", "json")
    assert code == 0, err
    assert json.loads(out) == [{"n": sum(expected_after["customers_curated"].values())}]  # the tag was rewritten
    assert glue_contents() == expected_after
    lake = glue_lake()
    assert {t.name: t.rows for t in lake.tables() if t.name in expected_after} == {
        name: sum(found.values()) for name, found in expected_after.items()}
    now = metadata_locations(server)
    assert set(now) == set(TABLES)
    for name, location in now.items():
        assert location != before[name], name  # the erasure committed a new snapshot of every table
        assert location.startswith(f"{home}/warehouse/"), name
        assert exists(server, location), name
        ice = lake.catalog.load(TABLES[name])
        assert ice is not None and ice.metadata_location == location, name
