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
    from botocore.exceptions import ClientError

    bucket, key = uri.removeprefix("s3://").split("/", 1)
    try:
        server.client().head_object(Bucket=bucket, Key=key)
    except ClientError:
        return False
    return True


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
    assert "erased 1 person" in out and "tagged states rewritten without them: day1" in out
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


def data_rows() -> dict[str, int]:
    """The row count of every table but the histories (which record each command, failed ones too)."""
    return {t.name: t.rows for t in glue_lake().tables() if TABLES[t.name].kind != "history"}


def refused(command: list[str], message: str) -> None:
    """`stedi COMMAND` exits 1, its last line of stderr is `error: MESSAGE`, and no traceback is shown."""
    code, _out, err = stedi(*command)
    assert code == 1, (command, err)
    assert err.splitlines()[-1] == f"error: {message}", (command, err)
    assert "Traceback" not in err, command


def test_a_stale_glue_catalog_stops_every_command_until_the_table_is_dropped(server: s3server.S3Server) -> None:
    """Glue lists a table whose metadata file was deleted: every command that touches it stops with one line
    naming the table, the missing file and the fix; after the fix (the registration dropped, as the line
    says) `stedi run` builds the table again, with the same rows."""
    home = glued(server, "gl-stale")
    assert stedi("ingest", str(EDGE))[0] == 0
    assert stedi("run")[0] == 0
    built = data_rows()
    gone = metadata_locations(server)["customer_trusted"]
    bucket, key = gone.removeprefix("s3://").split("/", 1)
    server.client().delete_object(Bucket=bucket, Key=key)
    message = (f"cannot use table customer_trusted: the glue catalog names a file that is not there: {gone} (it was "
               "deleted, or the bucket emptied or recreated). Restore it, or drop the table from the catalog "
               "(`aws glue delete-table --database-name stedi --name customer_trusted`) and run `stedi run`, which "
               "builds it again from the landing zone")
    for command in (["tables"], ["describe", "customer_trusted"], ["sql", "select count(*) from customer_trusted"],
                    ["run"], ["optimize"], ["erase", "--email", "alice@test.com"]):
        refused(command, message)
    other = stedi("sql", "select count(*) as n from customer_landing", "--format", "csv")  # touches it not
    assert other[:2] == (0, f"n\n{built['customer_landing']}\n"), other

    server.glue().delete_table(DatabaseName="stedi", Name="customer_trusted")
    code, out, err = stedi("run")
    assert code == 0, err
    assert "customer_trusted built" in err
    assert data_rows() == built
    location = metadata_locations(server)["customer_trusted"]
    assert location != gone and location.startswith(f"{home}/warehouse/") and exists(server, location)

    # the whole warehouse deleted (the bucket emptied but for the landing zone): the first table is named
    for key in keys(server, bucket):
        if key.startswith("lake/warehouse/"):
            server.client().delete_object(Bucket=bucket, Key=key)
    first = metadata_locations(server)["customer_landing"]
    refused(["tables"], message.replace(gone, first).replace("customer_trusted", "customer_landing"))


def test_another_lakehouses_table_in_the_glue_database_is_neither_read_nor_written(server: s3server.S3Server) -> None:
    """Two lakehouses, one Glue database `stedi` (one per account and region): the second finds the first's
    customer_landing under that name and stops every command, naming the table, where it is and the fix;
    the first's table is untouched and nothing of the second's tables is written."""
    theirs = glued(server, "gl-first")
    assert stedi("ingest", str(EDGE / "customer"))[0] == 0
    assert stedi("run", "--select", "customer_landing")[0] == 0
    before = metadata_locations(server)
    mine = glued(server, "gl-second")
    assert stedi("ingest", str(EDGE))[0] == 0
    def message(name: str) -> str:
        return (f"table {name} in the glue catalog is at {theirs}/warehouse/stedi.db/{name}, not under this "
                f"lakehouse's warehouse ({mine}/warehouse): another lakehouse registered its tables in the same "
                "database `stedi`, and stedi never reads or writes another lakehouse's table. Use that lakehouse's "
                f"root as home, or a catalog of its own for this one; drop the table (`aws glue delete-table "
                f"--database-name stedi --name {name}`) only if that lakehouse is gone for good")

    # each command stops at the first of their tables it touches (a run first reads quality_failures)
    for command, first in ((["run"], "quality_failures"), (["tables"], "customer_landing"),
                           (["sql", "select count(*) from customer_landing"], "customer_landing"),
                           (["optimize"], "customer_landing")):
        refused(command, message(first))
    assert {n: loc for n, loc in metadata_locations(server).items() if n in before} == before
    assert not [k for k in keys(server, "gl-second") if k.startswith("lake/warehouse/stedi.db/customer_landing/")]


def test_a_glue_database_located_under_another_root_is_refused_unless_configured(server: s3server.S3Server) -> None:
    """The database `stedi` has a location of another root (as `stedi deploy aws` makes for its bucket): a new
    table would be created there, in another lakehouse. Refused before anything is written; accepted when
    [catalog] says that is where this lakehouse's tables go."""
    server.create_bucket("gl-deployed")
    elsewhere = "s3://gl-deployed/lake/warehouse/stedi"
    server.glue().create_database(DatabaseInput={"Name": "stedi", "LocationUri": elsewhere})
    home = glued(server, "gl-placed")
    assert stedi("ingest", str(EDGE / "customer"))[0] == 0
    refused(["run", "--select", "customer_landing"],
            f"the glue catalog would create table customer_landing at {elsewhere}/customer_landing, under the "
            f"location of its database `stedi` ({elsewhere}), not under this lakehouse's warehouse ({home}/warehouse): "
            "the database is another lakehouse's, and stedi never writes outside the root in use. Use that "
            "lakehouse's root as home, or a catalog of its own for this one; if this lakehouse's tables are meant "
            f'to be there, say so in [catalog]: warehouse = "{elsewhere}"')
    assert keys(server, "gl-deployed") == []
    assert "customer_landing" not in glue_tables(server)

    Path(GLUE).write_text(f'home = "{home}"\n[catalog]\ntype = "glue"\nwarehouse = "{elsewhere}"\n')
    code, _out, err = stedi("run", "--select", "customer_landing")
    assert code == 0, err
    assert metadata_locations(server)["customer_landing"].startswith(f"{elsewhere}/customer_landing/metadata/")
    assert data_rows()["customer_landing"] == 14


def hive_table(name: str, location: str) -> dict[str, Any]:
    """The Glue table Athena makes of ddl/athena/NAME.sql (the reference project's landing DDL): an external
    JSON table, not Iceberg."""
    import re

    ddl = (Path(__file__).parents[2] / "ddl" / "athena" / f"{name}.sql").read_text()
    columns = [{"Name": n, "Type": t} for n, t in re.findall(r"^\s+`(\w+)`\s+(\w+)", ddl, re.MULTILINE)]
    assert columns
    return {"Name": name, "TableType": "EXTERNAL_TABLE", "Parameters": {"EXTERNAL": "TRUE", "classification": "json"},
            "StorageDescriptor": {
                "Columns": columns, "Location": location,
                "InputFormat": "org.apache.hadoop.mapred.TextInputFormat",
                "OutputFormat": "org.apache.hadoop.hive.ql.io.HiveIgnoreKeyTextOutputFormat",
                "SerdeInfo": {"SerializationLibrary": "org.openx.data.jsonserde.JsonSerDe"}}}


def test_a_hive_table_of_a_stedi_name_is_refused_and_kept(server: s3server.S3Server) -> None:
    """The database `stedi` holds the reference project's external JSON table customer_landing: every command
    stops with one line naming it and the fix (a database of its own, or dropping it, which keeps its files);
    stedi neither drops nor changes it."""
    home = glued(server, "gl-hive")
    glue = server.glue()
    glue.create_database(DatabaseInput={"Name": "stedi"})
    glue.create_table(DatabaseName="stedi", TableInput=hive_table("customer_landing", f"{home}/landing/customer/"))
    hive = glue_tables(server)["customer_landing"]
    assert stedi("ingest", str(EDGE))[0] == 0
    message = (f"table customer_landing in the glue catalog is not an Iceberg table (an EXTERNAL_TABLE at "
               f"{home}/landing/customer/): stedi never replaces a table it did not make. Move it to a database of "
               "its own (e.g. `stedi_raw`, as docs/aws.md does for the landing JSON) or drop it (`aws glue "
               "delete-table --database-name stedi --name customer_landing`; dropping an external table deletes none "
               "of its files), then run again")
    for command in (["run"], ["tables"], ["sql", "select 1"], ["optimize"]):
        refused(command, message)
    kept = glue_tables(server)["customer_landing"]
    assert (kept["TableType"], kept["Parameters"], kept["StorageDescriptor"]) == (
        hive["TableType"], hive["Parameters"], hive["StorageDescriptor"])


def test_an_iceberg_table_stedi_did_not_make_is_refused_and_its_own_of_another_layout_rebuilt(
        server: s3server.S3Server) -> None:
    """An Iceberg table customer_trusted that another tool made in the database `stedi`, under this very
    warehouse and with other columns: refused and kept. Dropped (the fix the line names), stedi builds its
    own; a table stedi made whose columns have since changed (another stedi version's layout) is stedi's to
    rebuild, and it is, with the same rows."""
    from pyiceberg.catalog import load_catalog
    from pyiceberg.schema import Schema
    from pyiceberg.types import LongType, NestedField, StringType

    home = glued(server, "gl-iceberg")
    other = load_catalog("other", **glue_lake().settings.catalog_properties())  # Glue, as Spark or Athena use it
    other.create_namespace_if_not_exists("stedi")
    foreign = other.create_table(("stedi", "customer_trusted"), Schema(NestedField(1, "id", LongType())))
    assert foreign.location() == f"{home}/warehouse/stedi.db/customer_trusted"
    assert stedi("ingest", str(EDGE))[0] == 0
    refused(["run"], f"table customer_trusted in the glue catalog is an Iceberg table that stedi did not make (at "
                     f"{home}/warehouse/stedi.db/customer_trusted, without the property stedi.zone; its columns are "
                     "not stedi's): stedi never replaces a table it did not make. Rename it, move it to a database of "
                     "its own, or drop it (`aws glue delete-table --database-name stedi --name customer_trusted`), "
                     "then run again")
    kept = other.load_table(("stedi", "customer_trusted"))
    assert kept.metadata_location == foreign.metadata_location and kept.schema() == foreign.schema()

    other.drop_table(("stedi", "customer_trusted"))
    code, _out, err = stedi("run")
    assert code == 0, err
    built = data_rows()
    assert built["customer_trusted"] == rows(glue_lake(), "select count(*) from customer_trusted")[0][0] > 0

    with other.load_table(("stedi", "customer_trusted")).update_schema() as update:
        update.add_column("nickname", StringType())
    code, _out, err = stedi("run")
    assert code == 0, err
    assert "customer_trusted built" in err
    assert data_rows() == built
    assert glue_lake().sql("select * from customer_trusted limit 0").column_names == [
        c.name for c in TABLES["customer_trusted"].columns]
