"""`stedi deploy aws`'s template deployed to moto's CloudFormation (in process, `mock_aws`).

moto 5.2's CloudFormation creates the bucket, the IAM roles with their policies and the readers' managed
policy, and decides the template's conditions from the stack's parameters; it skips, with a warning,
AWS::Glue::Database, AWS::Glue::Job, AWS::Glue::Trigger, AWS::Athena::WorkGroup, AWS::SecretsManager::Secret
and AWS::S3::BucketPolicy (no CloudFormation model for them), of the bucket's properties it applies the
name and the encryption only, and of a role's it ignores ManagedPolicyArns. Those are created here from the template's
own properties through the services' APIs (botocore validates every parameter name and type against the
API's model, and moto keeps what it is given), so a property that Glue or Secrets Manager would not take
fails this test too. Athena's work group is held to botocore's model of CreateWorkGroup without a server:
which routes moto serves changes with botocore's protocols (botocore 1.44 sends CreateWorkGroup as
`POST /workgroups`, which moto 5.2.6 answers 404), so no moto route is relied on for it. What none of this
can prove: that the job runs on Glue, or that Athena accepts the work group (docs/aws.md walks both).
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

from stedi._version import DISTRIBUTION, __version__
from stedi.deploy.aws import template
from stedi.deploy.deployment import Deployment, deployment

from cfn import stack

# moto warns again of each resource it skips whenever it reads the stack; _deploy records the first warnings
pytestmark = pytest.mark.filterwarnings("ignore:Tried to parse AWS:UserWarning")

REGION = "eu-west-1"
NOT_IN_MOTO = {"AWS::Glue::Database", "AWS::Glue::Job", "AWS::Glue::Trigger", "AWS::Athena::WorkGroup",
               "AWS::SecretsManager::Secret", "AWS::S3::BucketPolicy"}
ACCOUNT = "123456789012"  # moto's


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from moto import mock_aws

    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": REGION}.items():
        monkeypatch.setenv(name, value)
    with mock_aws():
        yield


def _client(service: str) -> Any:
    import boto3

    return boto3.client(service, region_name=REGION)


def _valid_request(service: str, operation: str, request: dict[str, Any]) -> None:
    """Raise botocore's ParamValidationError unless `request` is what the operation's API model takes: every
    name known and required, every value of its type (what botocore checks before it sends a request)."""
    import botocore.session
    import botocore.validate

    model = botocore.session.get_session().get_service_model(service).operation_model(operation)
    botocore.validate.validate_parameters(request, model.input_shape)


def _deploy(d: Deployment, parameters: dict[str, str] | None = None) -> tuple[dict[str, Any], list[str]]:
    """Create the stack (with `parameters`); the template and moto's warnings about what it could not create."""
    body = template(d)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _client("cloudformation").create_stack(
            StackName="stedi", TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_IAM"],
            Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in (parameters or {}).items()])
    return body, [str(w.message) for w in caught]


def _created() -> dict[str, dict[str, Any]]:
    return {r["LogicalResourceId"]: r for r in _client("cloudformation").list_stack_resources(StackName="stedi")[
        "StackResourceSummaries"] if r["LogicalResourceId"]}


def _managed_policy(arn: str) -> dict[str, Any]:
    iam = _client("iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _policy(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


def _policy(document: Any) -> dict[str, Any]:
    # moto returns an inline policy made by CloudFormation as Python's repr of the dict, not JSON
    if isinstance(document, dict):
        return document
    try:
        return dict(json.loads(document))
    except ValueError:
        return dict(ast.literal_eval(document))


@pytest.mark.parametrize("prefix", ["lake/prod", ""])
def test_the_stack_creates_the_bucket_and_the_limited_role(aws: None, prefix: str) -> None:
    d = deployment("stedi-team", prefix)
    body, skipped = _deploy(d)
    cf = _client("cloudformation")
    assert cf.describe_stacks(StackName="stedi")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    created = _created()
    assert {name: r["ResourceType"] for name, r in created.items()} == {
        "LakehouseBucket": "AWS::S3::Bucket", "JobRole": "AWS::IAM::Role", "ReadersPolicy": "AWS::IAM::ManagedPolicy"}
    assert {kind for kind in NOT_IN_MOTO if any(kind in w for w in skipped)} == NOT_IN_MOTO
    assert {body["Resources"][n]["Type"] for n in body["Resources"]} - NOT_IN_MOTO == {
        "AWS::S3::Bucket", "AWS::IAM::Role", "AWS::IAM::ManagedPolicy"}

    s3 = _client("s3")
    assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["stedi-team"]
    # moto's bucket model takes the name and the encryption; it ignores PublicAccessBlockConfiguration and
    # LifecycleConfiguration (cfn-lint checks them against CloudFormation's schema)
    rules = s3.get_bucket_encryption(Bucket="stedi-team")["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}

    iam = _client("iam")
    role = created["JobRole"]["PhysicalResourceId"]
    trust = _policy(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    assert trust["Statement"][0]["Principal"] == {"Service": "glue.amazonaws.com"}
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == ["stedi-lakehouse"]
    policy = _policy(iam.get_role_policy(RoleName=role, PolicyName="stedi-lakehouse")["PolicyDocument"])
    statements = {s["Sid"]: s for s in policy["Statement"]}
    root = f"stedi-team/{prefix}/*" if prefix else "stedi-team/*"
    assert statements["ObjectsUnderTheRoot"]["Resource"] == f"arn:aws:s3:::{root}"
    assert statements["ListTheRootOnly"]["Resource"] == "arn:aws:s3:::stedi-team"
    assert statements["ListTheRootOnly"].get("Condition") == (
        {"StringLike": {"s3:prefix": [prefix, f"{prefix}/*"]}} if prefix else None)
    assert statements["TheStediDatabase"]["Resource"] == [
        f"arn:aws:glue:{REGION}:123456789012:catalog", f"arn:aws:glue:{REGION}:123456789012:database/stedi",
        f"arn:aws:glue:{REGION}:123456789012:table/stedi/*"]

    # the readers' policy, as IAM holds it: the curated tables' files only (ReadersSeeTrusted is "false")
    readers = {s["Sid"]: s for s in _managed_policy(created["ReadersPolicy"]["PhysicalResourceId"])["Statement"]}
    tables = f"arn:aws:s3:::{root[:-1]}warehouse/stedi"
    assert readers["TheirFiles"]["Resource"] == [f"{tables}/{t}/*" for t in ("customers_curated",
                                                                              "machine_learning_curated")]
    assert readers["NeverThePseudonymKey"]["Resource"] == (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:stedi/pseudonym-key-*")
    outputs = {o["OutputKey"] for o in cf.describe_stacks(StackName="stedi")["Stacks"][0]["Outputs"]}
    assert "ReadersPolicyArn" in outputs and "ReadersRoleArn" not in outputs  # no ReaderPrincipal, no role

    # the bucket's policy (which moto's CloudFormation skips), as S3 takes it
    bucket = {"LakehouseBucket": "stedi-team", "LakehouseBucket.Arn": "arn:aws:s3:::stedi-team"}
    bucket_policy = stack(body, physical=bucket)["Resources"]["LakehouseBucketPolicy"]["Properties"]
    s3.put_bucket_policy(Bucket=bucket_policy["Bucket"], Policy=json.dumps(bucket_policy["PolicyDocument"]))
    (tls,) = json.loads(s3.get_bucket_policy(Bucket="stedi-team")["Policy"])["Statement"]
    assert tls["Resource"] == ["arn:aws:s3:::stedi-team", "arn:aws:s3:::stedi-team/*"]
    assert (tls["Effect"], tls["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})


def test_a_stack_told_of_the_kept_database_and_secret_makes_neither_and_uses_them(aws: None) -> None:
    """A stack made again after one was deleted (the database and the secret were kept), with a readers'
    role: the job's role and argument name the given secret, the readers' role holds the readers' policy."""
    kept = _client("secretsmanager").create_secret(Name="team/stedi-key", SecretString="k" * 64)["ARN"]
    analysts = "arn:aws:iam::210987654321:role/analysts"
    given = {"ExistingDatabase": "true", "ExistingPseudonymKeySecretArn": kept, "ReaderPrincipal": analysts,
             "ReadersSeeTrusted": "true"}
    body, skipped = _deploy(deployment("stedi-team", "lake"), given)
    cf = _client("cloudformation")
    assert cf.describe_stacks(StackName="stedi")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    created = _created()
    assert {name: r["ResourceType"] for name, r in created.items()} == {
        "LakehouseBucket": "AWS::S3::Bucket", "JobRole": "AWS::IAM::Role", "ReadersPolicy": "AWS::IAM::ManagedPolicy",
        "ReadersRole": "AWS::IAM::Role"}
    assert not any("AWS::Glue::Database" in w or "AWS::SecretsManager::Secret" in w for w in skipped)  # not tried
    this_stack = stack(body, given, physical={"ReadersPolicy": created["ReadersPolicy"]["PhysicalResourceId"]})

    iam = _client("iam")
    job = _policy(iam.get_role_policy(RoleName=created["JobRole"]["PhysicalResourceId"],
                                      PolicyName="stedi-lakehouse")["PolicyDocument"])
    assert {s["Sid"]: s for s in job["Statement"]}["ThePseudonymKey"]["Resource"] == kept
    role = created["ReadersRole"]["PhysicalResourceId"]
    trust = _policy(iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"])
    assert trust["Statement"] == [{"Effect": "Allow", "Principal": {"AWS": analysts}, "Action": "sts:AssumeRole"}]
    readers = created["ReadersPolicy"]["PhysicalResourceId"]
    assert iam.list_role_policies(RoleName=role)["PolicyNames"] == []  # nothing of its own
    # moto's role model ignores ManagedPolicyArns: the template's, as IAM takes it
    (attached,) = this_stack["Resources"]["ReadersRole"]["Properties"]["ManagedPolicyArns"]
    iam.attach_role_policy(RoleName=role, PolicyArn=attached)
    assert [p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]] == [readers]
    files = {s["Sid"]: s for s in _managed_policy(readers)["Statement"]}["TheirFiles"]["Resource"]
    assert "arn:aws:s3:::stedi-team/lake/warehouse/stedi/customer_trusted/*" in files  # ReadersSeeTrusted
    never = {s["Sid"]: s for s in _managed_policy(readers)["Statement"]}["NeverThePseudonymKey"]["Resource"]
    assert kept in never

    outputs = {o["OutputKey"]: o["OutputValue"] for o in cf.describe_stacks(StackName="stedi")["Stacks"][0]["Outputs"]}
    assert (outputs["PseudonymKeySecretArn"], outputs["Database"]) == (kept, "stedi")
    assert outputs["ReadersRoleArn"].endswith(role) and outputs["ReadersPolicyArn"] == readers
    job_arguments = this_stack["Resources"]["StediJob"]["Properties"]["DefaultArguments"]
    assert job_arguments["--stedi_pseudonym_key_secret"] == kept  # what the job reads the key from
    assert _client("secretsmanager").get_secret_value(SecretId=kept)["SecretString"] == "k" * 64


def test_what_moto_cannot_create_from_the_template_its_apis_take_as_written(aws: None) -> None:
    d = deployment("stedi-team", "lake", "cron(15 3 * * ? *)")
    body, _ = _deploy(d)
    # the properties as CloudFormation passes them on (the parameters' defaults: conditions, Fn::If, Ref)
    res = {name: r["Properties"] for name, r in stack(body)["Resources"].items()}
    role_arn = "arn:aws:iam::123456789012:role/stedi-job"  # what Fn::GetAtt JobRole.Arn gives on AWS

    glue = _client("glue")
    glue.create_database(DatabaseInput=res["StediDatabase"]["DatabaseInput"])
    assert glue.get_database(Name="stedi")["Database"]["LocationUri"] == "s3://stedi-team/lake/warehouse/stedi"

    job = {k: v for k, v in res["StediJob"].items() if k != "Role"}
    glue.create_job(Role=role_arn, **job)
    made = glue.get_job(JobName="stedi")["Job"]
    assert (made["GlueVersion"], made["Command"]["Name"], made["WorkerType"], made["NumberOfWorkers"]) == (
        "5.0", "glueetl", "G.1X", 2)
    assert made["Command"]["ScriptLocation"] == "s3://stedi-team/lake/glue/stedi_job.py"
    assert made["DefaultArguments"]["--stedi_home"] == "s3://stedi-team/lake"
    assert made["DefaultArguments"]["--stedi_pseudonym_key_secret"] == "stedi/pseudonym-key"
    assert made["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert made["DefaultArguments"]["--additional-python-modules"] == (
        f"s3://stedi-team/lake/glue/{DISTRIBUTION}-{__version__}.gluewheels.zip")

    trigger = dict(res["StediSchedule"], Actions=[{"JobName": "stedi"}])  # Ref StediJob is the job's name
    glue.create_trigger(**trigger)
    made_trigger = glue.get_trigger(Name="stedi-schedule")["Trigger"]
    assert (made_trigger["Type"], made_trigger["Schedule"], made_trigger["Actions"]) == (
        "SCHEDULED", "cron(15 3 * * ? *)", [{"JobName": "stedi"}])
    assert made_trigger["State"] == "CREATED"  # not ACTIVATED: started once the job's script is uploaded

    group = res["AthenaWorkGroup"]
    request = {"Name": group["Name"], "Description": group["Description"],
               "Configuration": group["WorkGroupConfiguration"]}
    _valid_request("athena", "CreateWorkGroup", request)
    assert request["Configuration"]["ResultConfiguration"]["OutputLocation"] == "s3://stedi-team/lake/athena-results/"
    assert request["Configuration"]["BytesScannedCutoffPerQuery"] == 10_000_000_000
    with pytest.raises(Exception, match="Invalid value for parameter Configuration.BytesScannedCutoffPerQuery"):
        _valid_request("athena", "CreateWorkGroup", dict(request, Configuration={  # Athena's least is 10 MB
            **request["Configuration"], "BytesScannedCutoffPerQuery": 9_999_999}))
    with pytest.raises(Exception, match="Unknown parameter in Configuration"):  # the check can fail
        _valid_request("athena", "CreateWorkGroup", dict(request, Configuration={**request["Configuration"],
                                                                                 "OutputLocation": "s3://x/"}))

    secrets = _client("secretsmanager")
    secret = res["PseudonymKeySecret"]
    value = secrets.get_random_password(**secret["GenerateSecretString"])["RandomPassword"]
    assert len(value) == 64 and value.isalnum()  # long enough for stedi's key (16 characters at least)
    secrets.create_secret(Name=secret["Name"], Description=secret["Description"], SecretString=value)
    assert secrets.get_secret_value(SecretId="stedi/pseudonym-key")["SecretString"] == value
