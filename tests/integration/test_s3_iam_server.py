"""The test server authorizes S3 requests as S3 does (tests/s3_iam.py): what the limited-role tests rely on.

The facts held here are AWS's documented behaviour, not moto's: `s3:GetObject` covers GET and HEAD, a
ListBucket limited by `s3:prefix` lists only under it, and a GET or HEAD of a missing key is refused (403)
unless the caller's ListBucket covers a request that names no prefix. A moto release that changes its own
authorization shows up here first.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

import s3server
from s3_iam import allowed

pytestmark = [pytest.mark.s3]

BUCKET = "limited"
OBJECTS = {"Effect": "Allow", "Action": ["s3:GetObject", "s3:PutObject"],
           "Resource": f"arn:aws:s3:::{BUCKET}/team/lake/*"}
LIST_UNDER_PREFIX = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}",
                     "Condition": {"StringLike": {"s3:prefix": ["team/lake", "team/lake/*"]}}}
LIST_ALL = {"Effect": "Allow", "Action": "s3:ListBucket", "Resource": f"arn:aws:s3:::{BUCKET}"}


def _user(server: s3server.S3Server, name: str, *statements: dict[str, Any]) -> Any:
    import boto3

    admin = {"endpoint_url": server.endpoint, "region_name": "us-east-1",
             "aws_access_key_id": server.access_key, "aws_secret_access_key": server.secret_key}
    iam = boto3.client("iam", **admin)
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="p",
                        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return server.client(key["AccessKeyId"], key["SecretAccessKey"])


def _status(call: Any, **kwargs: Any) -> int:
    from botocore.exceptions import ClientError

    try:
        call(Bucket=BUCKET, **kwargs)
        return 200
    except ClientError as exc:
        return int(exc.response["ResponseMetadata"]["HTTPStatusCode"])


@pytest.fixture(scope="module")
def server() -> Any:
    srv = s3server.start()
    srv.create_bucket(BUCKET)
    srv.client().put_object(Bucket=BUCKET, Key="team/lake/privacy/present.json", Body=b"{}")
    srv.client().put_object(Bucket=BUCKET, Key="elsewhere/x.json", Body=b"{}")
    yield srv
    srv.stop()


def test_a_prefix_limited_role_as_on_s3(server: s3server.S3Server) -> None:
    user = _user(server, "limited", OBJECTS, LIST_UNDER_PREFIX)
    assert _status(user.head_object, Key="team/lake/privacy/present.json") == 200
    assert _status(user.get_object, Key="team/lake/privacy/present.json") == 200
    # missing: 403, not 404 (the ListBucket's s3:prefix condition does not cover an object request)
    assert _status(user.head_object, Key="team/lake/privacy/missing.json") == 403
    assert _status(user.get_object, Key="team/lake/privacy/missing.json") == 403
    assert _status(user.list_objects_v2, Prefix="team/lake/privacy/", Delimiter="/") == 200
    assert _status(user.list_objects_v2, Prefix="elsewhere/") == 403
    assert _status(user.list_objects_v2) == 403  # no prefix: the condition does not hold
    assert _status(user.get_object, Key="elsewhere/x.json") == 403


def test_a_role_that_may_list_the_bucket_is_told_404(server: s3server.S3Server) -> None:
    user = _user(server, "lister", OBJECTS, LIST_ALL)
    assert _status(user.head_object, Key="team/lake/privacy/missing.json") == 404
    assert _status(user.get_object, Key="team/lake/privacy/missing.json") == 404
    assert _status(user.list_objects_v2, Prefix="elsewhere/") == 200


def test_an_explicit_deny_wins() -> None:
    deny = {"Effect": "Deny", "Action": "s3:*", "Resource": f"arn:aws:s3:::{BUCKET}/team/lake/privacy/*"}
    arn = f"arn:aws:s3:::{BUCKET}/team/lake/privacy/present.json"
    assert allowed([OBJECTS], "s3:GetObject", arn, {})
    assert not allowed([OBJECTS, deny], "s3:GetObject", arn, {})
    assert not allowed([LIST_UNDER_PREFIX], "s3:ListBucket", f"arn:aws:s3:::{BUCKET}", {"s3:prefix": "other/"})
