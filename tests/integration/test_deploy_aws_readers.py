"""The readers' policy of `stedi deploy aws`, given to a user of the local S3 server that enforces IAM as AWS
documents it (tests/s3_iam.py), against a lakehouse built in its bucket as the deployed job builds it (the Glue
catalog, the database located as the template locates it, so the tables lie where the policy names them).

The policy is the template's own, resolved for one stack (tests/cfn.py) and attached to the user as a managed
policy. With `ReadersSeeTrusted` "false" the user reads every object of the curated tables (and the tables
themselves, through pyiceberg) and nothing else: no landed file, no privacy file, no trusted, landing-zone or
audit table, no write into a table; with "true" the trusted tables too, and still no landed or privacy file.
What the server cannot show: Athena's and Glue's side of the policy (moto matches their actions against "*"
only); tests/unit/test_deploy_aws.py holds those statements to IAM's evaluation.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from stedi import Lakehouse
from stedi.deploy.aws import template
from stedi.deploy.deployment import deployment
from stedi.iceberg.warehouse import table_folder
from stedi.privacy.erasure import AUDIT_LOG as ERASURE_LOG
from stedi.privacy.suppression import LIST as SUPPRESSION_LIST
from stedi.tables import TABLES

import s3server
from cfn import stack
from support import FIXTURES

pytestmark = [pytest.mark.s3, pytest.mark.slow]

BUCKET, PREFIX = "readers", "team/lake"
DEPLOYMENT = deployment(BUCKET, PREFIX)
ROOT = f"{PREFIX}/"


@pytest.fixture(scope="module")
def built(server: s3server.S3Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The edge fixture ingested and run in s3://readers/team/lake with the Glue catalog, its database made as
    the template makes it, and files in the privacy folder: {"keys": every key under the root, "rows": {table:
    rows}, "metadata": {table: its metadata location}}."""
    work = tmp_path_factory.mktemp("readers")
    with pytest.MonkeyPatch.context() as patch:
        for name, value in server.env().items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_CONFIG_FILE", str(work / "no-aws-config"))
        patch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(work / "no-aws-credentials"))
        patch.setenv("XDG_DATA_HOME", str(work / "data"))
        server.create_bucket(BUCKET)
        server.drop_glue_database()
        database = stack(template(DEPLOYMENT))["Resources"]["StediDatabase"]["Properties"]["DatabaseInput"]
        server.glue().create_database(DatabaseInput=database)
        config = work / "stedi.toml"
        config.write_text(f'home = "{DEPLOYMENT.home}"\n[catalog]\ntype = "glue"\n')
        lake = Lakehouse(config=config)
        lake.ingest(FIXTURES / "edge")
        lake.run()
        # the privacy folder's files, as an erasure leaves them (an erasure itself would take ~10 s more)
        for key in (SUPPRESSION_LIST, ERASURE_LOG):
            server.client().put_object(Bucket=BUCKET, Key=ROOT + key, Body=b"{}\n")
        counts = {t.name: t.rows for t in lake.tables()}
        metadata = {t["Name"]: t["Parameters"]["metadata_location"]
                    for t in server.glue().get_tables(DatabaseName="stedi")["TableList"]}
        pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=ROOT)
        keys = sorted(o["Key"] for page in pages for o in page.get("Contents", []))
        yield {"keys": keys, "rows": counts, "metadata": metadata}
        server.drop_glue_database()


def _reader(server: s3server.S3Server, name: str, parameters: dict[str, str]) -> tuple[str, str]:
    """A user holding the template's readers' policy (for a stack of `parameters`), as a managed policy; its keys."""
    import boto3

    policy = stack(template(DEPLOYMENT), parameters)["Resources"]["ReadersPolicy"]["Properties"]["PolicyDocument"]
    iam = boto3.client("iam", endpoint_url=server.endpoint, region_name="us-east-1",
                       aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
    arn = iam.create_policy(PolicyName=name, PolicyDocument=json.dumps(policy))["Policy"]["Arn"]
    iam.create_user(UserName=name)
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return key["AccessKeyId"], key["SecretAccessKey"]


def _denied(call: Any, **kwargs: Any) -> bool:
    from botocore.exceptions import ClientError

    try:
        call(**kwargs)
    except ClientError as error:
        # a HEAD's refusal has no body to name its code
        assert error.response["Error"]["Code"] in ("AccessDenied", "403"), error.response
        return True
    return False


def _table_of(key: str) -> str | None:
    return next((t for t in TABLES if key.startswith(f"{ROOT}{table_folder(t)}/")), None)


@pytest.mark.parametrize("trusted", [False, True], ids=["curated", "curated-and-trusted"])
def test_a_reader_reads_the_tables_it_may_see_and_no_object_of_anything_else(
        server: s3server.S3Server, built: dict[str, Any], trusted: bool) -> None:
    access, secret = _reader(server, f"reader-{'trusted' if trusted else 'curated'}",
                             {"ReadersSeeTrusted": str(trusted).lower()})
    s3 = server.client(access, secret)
    seen = {t.name for t in TABLES.values() if t.zone == "curated" or (trusted and t.zone == "trusted")}
    keys: list[str] = built["keys"]
    folders = {key.split("/", 3)[2] for key in keys}  # what the root holds: the tables, the landing zone, privacy
    assert {"warehouse", "landing", "privacy"} <= folders, folders
    read: set[str] = set()
    for key in keys:
        table = _table_of(key)
        if table in seen:
            s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()  # every data and metadata file
            read.add(table)
        else:
            assert _denied(s3.get_object, Bucket=BUCKET, Key=key), key
            assert _denied(s3.head_object, Bucket=BUCKET, Key=key), key
    assert read == seen  # each of them has files, and all were read
    denied_tables = {_table_of(k) for k in keys} - seen - {None}
    assert {"customer_landing", "customer_quarantine", "runs"} <= denied_tables
    assert ("customer_trusted" in denied_tables) is not trusted
    assert any(k.startswith(f"{ROOT}landing/customer/") for k in keys)
    assert any(k.startswith(f"{ROOT}privacy/") for k in keys)

    # the tables themselves, as an engine reads them: metadata, manifests, data files
    from pyiceberg.table import StaticTable

    io = {"s3.endpoint": server.endpoint, "s3.region": "us-east-1", "s3.access-key-id": access,
          "s3.secret-access-key": secret}
    for table in sorted(seen):
        read_rows = StaticTable.from_metadata(built["metadata"][table], io).scan().to_arrow().num_rows
        assert read_rows == built["rows"][table] > 0, table

    # listing: the tables' folders and Athena's results; never the root, the landing zone or privacy
    for table in seen:
        s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{ROOT}{table_folder(table)}/")
    for prefix in ("", ROOT, f"{ROOT}landing/", f"{ROOT}privacy/", f"{ROOT}warehouse/",
                   f"{ROOT}{table_folder('customer_landing')}/", f"{ROOT}{table_folder('runs')}/"):
        assert _denied(s3.list_objects_v2, Bucket=BUCKET, Prefix=prefix), prefix
    # writes: Athena's results only; never a table's folder, the landing zone or privacy
    s3.put_object(Bucket=BUCKET, Key=f"{ROOT}athena-results/q-{trusted}.csv", Body=b"n\n1\n")
    assert s3.get_object(Bucket=BUCKET, Key=f"{ROOT}athena-results/q-{trusted}.csv")["Body"].read() == b"n\n1\n"
    s3.list_objects_v2(Bucket=BUCKET, Prefix=f"{ROOT}athena-results/")
    for key in (f"{ROOT}{table_folder('customers_curated')}/data/x.parquet", f"{ROOT}landing/customer/x.json",
                f"{ROOT}privacy/suppressed.json"):
        assert _denied(s3.put_object, Bucket=BUCKET, Key=key, Body=b"x"), key
        assert _denied(s3.delete_object, Bucket=BUCKET, Key=key), key


def test_the_lakehouse_the_readers_read_is_the_deployed_layout(built: dict[str, Any]) -> None:
    """The tables lie where the policy names them: under warehouse/stedi/<table>/ of the root."""
    for table, location in built["metadata"].items():
        assert location.startswith(f"s3://{BUCKET}/{ROOT}{table_folder(table)}/metadata/"), table
    assert set(built["metadata"]) == set(TABLES)
