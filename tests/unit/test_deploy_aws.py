"""`stedi deploy aws`: the template passes cfn-lint (for every stack its parameters make), its role reaches
nothing outside the root, the database and its tables, Glue's logs and the secret, the readers' policy nothing
but the tables they may see, the database and the secret outlive the stack, and bad names or schedules are
clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stedi import ConfigError, __version__
from stedi._version import DISTRIBUTION
from stedi.cli.main import cli
from stedi.deploy.aws import SECRET_NAME, job_arguments, role_policy, template, write
from stedi.deploy.deployment import DEFAULT_SCHEDULE, Deployment, check_schedule, deployment
from stedi.tables import TABLES

import s3_iam
from cfn import ACCOUNT, REGION, stack
from support import REPO

GLUE = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
LOGS = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws-glue/*"
CASES = [deployment("stedi-team", "lake/prod"), deployment("stedi-team"),
         deployment("stedi-team", "lake", existing_bucket=True)]


def _lint(text: str) -> list[str]:
    from cfnlint.api import ManualArgs, lint

    # every region the team might deploy to has Glue 5.0, Athena and Secrets Manager
    matches = lint(text, config=ManualArgs(regions=["us-east-1", "eu-west-1", "ap-southeast-2"]))
    return [f"{m.rule.id} {m.message} ({m.path})" for m in matches]


@pytest.mark.parametrize("d", CASES, ids=["prefix", "bucket-top", "existing-bucket"])
def test_the_template_passes_cfn_lint_with_no_finding(d: Deployment, tmp_path: Path) -> None:
    # not even a warning: nothing to justify
    assert _lint(json.dumps(template(d))) == []


def test_the_job_runs_this_stedi_on_glue_5_with_the_roots_catalog_and_the_secret() -> None:
    d = deployment("stedi-team", "/lake/prod/", "cron(30 4 ? * MON-FRI *)")
    resources = template(d)["Resources"]
    job = resources["StediJob"]["Properties"]
    assert (job["GlueVersion"], job["Command"]) == ("5.0", {
        "Name": "glueetl", "PythonVersion": "3", "ScriptLocation": "s3://stedi-team/lake/prod/glue/stedi_job.py"})
    args = job["DefaultArguments"]
    assert DISTRIBUTION == "stedi-lakehouse"
    # only the deploy's zip of wheels, in the bucket, and no package index
    assert args["--additional-python-modules"] == (
        f"s3://stedi-team/lake/prod/glue/stedi-lakehouse-{__version__}.gluewheels.zip")
    assert args["--python-modules-installer-option"] == "--no-index"
    assert args["--stedi_home"] == "s3://stedi-team/lake/prod"
    assert json.loads(args["--stedi_catalog"]) == {"type": "glue", "warehouse": "s3://stedi-team/lake/prod/warehouse"}
    assert args["--stedi_pseudonym_key_secret"] == {"Fn::If": [
        "CreatePseudonymKeySecret", resources["PseudonymKeySecret"]["Properties"]["Name"],
        {"Ref": "ExistingPseudonymKeySecretArn"}]}
    assert resources["StediSchedule"]["Properties"]["Schedule"] == "cron(30 4 ? * MON-FRI *)"
    # the schedule is started by hand once the job's script is uploaded: a run before it would fail
    assert resources["StediSchedule"]["Properties"]["StartOnCreation"] is False
    assert resources["StediSchedule"]["Properties"]["Actions"] == [{"JobName": {"Ref": "StediJob"}}]
    athena = resources["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
    assert athena["OutputLocation"] == "s3://stedi-team/lake/prod/athena-results/"
    assert resources["StediDatabase"]["Properties"]["DatabaseInput"]["Name"] == "stedi"
    assert resources["LakehouseBucket"]["Properties"]["BucketName"] == "stedi-team"
    assert "LakehouseBucket" not in template(deployment("stedi-team", existing_bucket=True))["Resources"]


def _statements(d: Deployment) -> list[dict[str, Any]]:
    return list(role_policy(d)["Statement"])


def _resources(statement: dict[str, Any]) -> list[str]:
    """Each Resource as text: Fn::Sub's string, or the logical id a Ref names (the secret: the one the stack
    creates, or the one it is given)."""
    found = statement["Resource"]
    secret = {"Fn::If": ["CreatePseudonymKeySecret", {"Ref": "PseudonymKeySecret"},
                         {"Ref": "ExistingPseudonymKeySecretArn"}]}
    return ["Ref:PseudonymKeySecret" if r == secret else r.get("Fn::Sub") or f"Ref:{r['Ref']}"
            for r in (found if isinstance(found, list) else [found])]


@pytest.mark.parametrize(("prefix", "objects", "listing"), [
    ("lake/prod", "arn:${AWS::Partition}:s3:::stedi-team/lake/prod/*", ["lake/prod", "lake/prod/*"]),
    ("", "arn:${AWS::Partition}:s3:::stedi-team/*", None),
])
def test_the_role_reaches_only_the_root_the_database_its_logs_and_its_secret(
        prefix: str, objects: str, listing: list[str] | None) -> None:
    d = deployment("stedi-team", prefix)
    allowed = {objects, "arn:${AWS::Partition}:s3:::stedi-team", f"{GLUE}:catalog", f"{GLUE}:database/stedi",
               f"{GLUE}:table/stedi/*", LOGS, f"{LOGS}:log-stream:*", "Ref:PseudonymKeySecret"}
    seen: set[str] = set()
    for statement in _statements(d):
        assert statement["Effect"] == "Allow" and "NotAction" not in statement and "NotResource" not in statement
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert not any("*" in a for a in actions), actions  # no wildcard actions
        resources = _resources(statement)
        assert set(resources) <= allowed, resources  # no "*" anywhere: no action here needs it
        seen.update(resources)
        (service,) = {a.split(":")[0] for a in actions}  # each statement one service, on its own resources
        expected_arn = {"s3": ":s3:::stedi-team", "glue": ":glue:", "logs": ":logs:", "secretsmanager": "Ref:"}
        assert all(expected_arn[service] in r for r in resources)
        if resources == ["arn:${AWS::Partition}:s3:::stedi-team"]:  # the bucket itself: listing, under P/ only
            assert actions == ["s3:ListBucket"]
            assert statement.get("Condition", {}).get("StringLike", {}).get("s3:prefix") == listing
    assert seen == allowed
    # the one table wildcard is within the database; the one log wildcard within Glue's log groups
    trust = template(d)["Resources"]["JobRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]


# -- parameters: the stacks one template makes ---------------------------------------------------------

SECRET_ARN = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:stedi/pseudonym-key-AbCdEf"
ANALYSTS = "arn:aws:iam::210987654321:role/aws-reserved/sso.amazonaws.com/eu-west-1/AWSReservedSSO_Analysts_0a1b2c"
DEFAULTS: dict[str, str] = {}
EVERY_OTHER = {"ReadersSeeTrusted": "true", "ReaderPrincipal": ANALYSTS, "ExistingDatabase": "true",
               "ExistingPseudonymKeySecretArn": SECRET_ARN, "AthenaBytesScannedCutoffPerQuery": "10000000"}
MIXED = {"ReadersSeeTrusted": "true", "ReaderPrincipal": "210987654321"}
MIXED_OTHERWISE = {"ExistingDatabase": "true", "ExistingPseudonymKeySecretArn": SECRET_ARN}


@pytest.mark.parametrize("values", [DEFAULTS, EVERY_OTHER, MIXED, MIXED_OTHERWISE],
                         ids=["defaults", "every-other-value", "readers", "existing"])
def test_each_stack_the_parameters_make_passes_cfn_lint(values: dict[str, str]) -> None:
    # the template as one stack has it: conditions decided, Fn::If taken, parameters put in
    assert _lint(json.dumps(stack(template(CASES[0]), values, pseudo=False))) == []


def test_the_database_and_the_secret_outlive_the_stack_and_a_later_stack_is_told_of_them() -> None:
    body = template(deployment("stedi-team", "lake"))
    for name in ("StediDatabase", "PseudonymKeySecret", "LakehouseBucket", "LakehouseBucketPolicy"):
        resource = body["Resources"][name]
        assert (resource["DeletionPolicy"], resource["UpdateReplacePolicy"]) == ("Retain", "Retain"), name
    assert body["Parameters"]["ExistingDatabase"]["Default"] == "false"
    assert body["Parameters"]["ExistingPseudonymKeySecretArn"]["Default"] == ""

    made = stack(body)
    assert {"StediDatabase", "PseudonymKeySecret"} <= set(made["Resources"])
    assert made["Resources"]["StediJob"]["Properties"]["DefaultArguments"]["--stedi_pseudonym_key_secret"] == (
        SECRET_NAME)
    assert made["Outputs"]["PseudonymKeySecretArn"]["Value"] == {"Ref": "PseudonymKeySecret"}

    again = stack(body, {"ExistingDatabase": "true", "ExistingPseudonymKeySecretArn": SECRET_ARN})
    assert not {"StediDatabase", "PseudonymKeySecret"} & set(again["Resources"])
    assert again["Resources"]["StediJob"]["Properties"]["DefaultArguments"]["--stedi_pseudonym_key_secret"] == (
        SECRET_ARN)
    job_policy = again["Resources"]["JobRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"]
    assert {s["Sid"]: s for s in job_policy}["ThePseudonymKey"]["Resource"] == SECRET_ARN
    assert again["Outputs"]["PseudonymKeySecretArn"]["Value"] == SECRET_ARN
    assert again["Outputs"]["Database"]["Value"] == "stedi"  # named, not a Ref of a resource it may not have
    assert "DependsOn" not in again["Resources"]["StediJob"]  # nothing depends on a resource it may not have


def test_the_bucket_refuses_any_request_without_tls_when_the_stack_makes_it() -> None:
    resources = template(deployment("stedi-team", "lake"))["Resources"]
    policy = resources["LakehouseBucketPolicy"]
    assert policy["Properties"]["Bucket"] == {"Ref": "LakehouseBucket"}
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
         "Resource": [{"Fn::GetAtt": ["LakehouseBucket", "Arn"]}, {"Fn::Sub": "${LakehouseBucket.Arn}/*"}],
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]
    # a bucket the stack does not make keeps the policy its owner gave it
    assert "LakehouseBucketPolicy" not in template(deployment("stedi-team", "lake", existing_bucket=True))["Resources"]


def test_the_workgroup_cuts_a_query_off_at_the_bytes_the_stack_is_given() -> None:
    import botocore.session

    body = template(deployment("stedi-team", "lake"))
    cutoff = body["Parameters"]["AthenaBytesScannedCutoffPerQuery"]
    athena = botocore.session.get_session().get_service_model("athena")
    least = athena.shape_for("WorkGroupConfiguration").members["BytesScannedCutoffPerQuery"].metadata["min"]
    assert (cutoff["Type"], cutoff["MinValue"], cutoff["Default"]) == ("Number", least, 10_000_000_000)
    assert least == 10_000_000  # Athena's least: 10 MB
    configuration = stack(body, {"AthenaBytesScannedCutoffPerQuery": "50000000"})["Resources"][
        "AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]
    assert (configuration["BytesScannedCutoffPerQuery"], configuration["EnforceWorkGroupConfiguration"]) == (
        "50000000", True)  # enforced: a query cannot choose another limit or results folder


def test_the_readers_role_is_made_only_for_a_named_principal_and_holds_the_readers_policy_alone() -> None:
    body = template(deployment("stedi-team", "lake"))
    assert "ReadersRole" not in stack(body)["Resources"] and "ReadersRoleArn" not in stack(body)["Outputs"]
    assert stack(body)["Outputs"]["ReadersPolicyArn"]["Value"] == {"Ref": "ReadersPolicy"}
    for principal in (ANALYSTS, "210987654321"):
        made = stack(body, {"ReaderPrincipal": principal})
        role = made["Resources"]["ReadersRole"]["Properties"]
        assert role["AssumeRolePolicyDocument"]["Statement"] == [
            {"Effect": "Allow", "Principal": {"AWS": principal}, "Action": "sts:AssumeRole"}]
        assert role["ManagedPolicyArns"] == [{"Ref": "ReadersPolicy"}] and "Policies" not in role
        assert made["Outputs"]["ReadersRoleArn"]["Value"] == {"Fn::GetAtt": ["ReadersRole", "Arn"]}
    pattern = body["Parameters"]["ReaderPrincipal"]["AllowedPattern"]
    import re

    assert all(re.fullmatch(pattern, v) for v in ("", "210987654321", ANALYSTS, "arn:aws:iam::210987654321:root"))
    assert not any(re.fullmatch(pattern, v) for v in ("*", "analysts", "arn:aws:iam::21098765432:root"))


def _readers(trusted: bool, prefix: str = "lake/prod", secret: str = "") -> list[dict[str, Any]]:
    """The readers' policy as the stack has it (ReadersSeeTrusted `trusted`, ExistingPseudonymKeySecretArn
    `secret`)."""
    made = stack(template(deployment("stedi-team", prefix)),
                 {"ReadersSeeTrusted": str(trusted).lower(), "ExistingPseudonymKeySecretArn": secret})
    return list(made["Resources"]["ReadersPolicy"]["Properties"]["PolicyDocument"]["Statement"])


def _may(statements: list[dict[str, Any]], action: str, resource: str, prefix: str | None = None) -> bool:
    """IAM's verdict on one request (tests/s3_iam.py: an applicable Deny wins, then any Allow)."""
    return s3_iam.allowed(statements, action, resource, {} if prefix is None else {"s3:prefix": prefix})


GLUE_ARN = f"arn:aws:glue:{REGION}:{ACCOUNT}"
BUCKET = "arn:aws:s3:::stedi-team"
ROOT = f"{BUCKET}/lake/prod"


@pytest.mark.parametrize("trusted", [False, True], ids=["curated", "curated-and-trusted"])
def test_readers_reach_the_tables_they_may_see_and_nothing_of_landing_privacy_or_the_key(trusted: bool) -> None:
    statements = _readers(trusted)
    seen = {name for name, t in TABLES.items() if t.zone == "curated" or (trusted and t.zone == "trusted")}
    assert {"customers_curated", "machine_learning_curated"} <= seen
    for name in TABLES:
        folder = f"lake/prod/warehouse/stedi/{name}"
        for key in (f"{folder}/data/00000-0-x.parquet", f"{folder}/metadata/00001-x.metadata.json"):
            assert _may(statements, "s3:GetObject", f"{BUCKET}/{key}") == (name in seen), key
            for change in ("s3:PutObject", "s3:DeleteObject"):  # readers never change a table
                assert not _may(statements, change, f"{BUCKET}/{key}"), (change, key)
        assert _may(statements, "s3:ListBucket", BUCKET, f"{folder}/") == (name in seen), name
        for read in ("glue:GetTable", "glue:GetPartitions"):
            assert _may(statements, read, f"{GLUE_ARN}:table/stedi/{name}") == (name in seen), (read, name)
        assert not _may(statements, "glue:UpdateTable", f"{GLUE_ARN}:table/stedi/{name}")
    assert _may(statements, "glue:GetDatabase", f"{GLUE_ARN}:database/stedi")
    assert not _may(statements, "glue:GetTable", f"{GLUE_ARN}:table/other/customers_curated")

    for key in ("lake/prod/landing/customer/customer-1.json", "lake/prod/landing/manifest.json",
                "lake/prod/privacy/suppressed.json", "lake/prod/privacy/erasures.jsonl", "lake/prod/catalog.json",
                "lake/prod/glue/stedi_job.py", "elsewhere/warehouse/stedi/customers_curated/data/x.parquet"):
        assert not _may(statements, "s3:GetObject", f"{BUCKET}/{key}"), key
    for prefix in (None, "", "lake/prod/", "lake/prod/landing/", "lake/prod/privacy/", "lake/prod/warehouse/"):
        assert not _may(statements, "s3:ListBucket", BUCKET, prefix), prefix
    assert not _may(statements, "secretsmanager:GetSecretValue", SECRET_ARN)  # the one a stack makes
    other = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:team/lake-key-AbCdEf"
    assert not _may(_readers(trusted, secret=other), "secretsmanager:GetSecretValue", other)  # the one it is given

    # Athena: the stedi workgroup only; its results are read and written with the reader's credentials
    assert _may(statements, "athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/stedi")
    assert not _may(statements, "athena:StartQueryExecution", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/primary")
    assert not _may(statements, "athena:UpdateWorkGroup", f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/stedi")
    for action in ("s3:PutObject", "s3:GetObject"):
        assert _may(statements, action, f"{ROOT}/athena-results/0f0e.csv")
    assert _may(statements, "s3:ListBucket", BUCKET, "lake/prod/athena-results/")
    assert _may(statements, "s3:GetBucketLocation", BUCKET)

    # the Deny statements hold whatever else a reader's role is given
    broad = [*statements, {"Effect": "Allow", "Action": ["s3:*", "secretsmanager:*"], "Resource": "*"}]
    for key in ("landing/customer/customer-1.json", "privacy/suppressed.json",
                "warehouse/stedi/customer_landing/data/x.parquet", "warehouse/stedi/customer_quarantine/data/x.parquet",
                "warehouse/stedi/quality_failures/metadata/00001-x.metadata.json"):
        assert not _may(broad, "s3:GetObject", f"{ROOT}/{key}"), key
    assert not _may(broad, "s3:ListBucket", BUCKET, "lake/prod/landing/")
    assert not _may(broad, "secretsmanager:GetSecretValue", SECRET_ARN)
    assert not _may([*_readers(trusted, secret=other), *broad[-1:]], "secretsmanager:GetSecretValue", other)
    assert _may(broad, "s3:GetObject", f"{ROOT}/warehouse/stedi/customer_trusted/data/x.parquet")


def test_the_readers_policy_allows_no_wildcard_action_and_writes_only_athenas_results() -> None:
    for trusted in (False, True):
        for statement in _readers(trusted, prefix=""):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
            assert "NotAction" not in statement and "NotResource" not in statement
            if statement["Effect"] == "Deny":
                continue
            assert not any("*" in a for a in actions), actions
            assert "*" not in resources
            writes = {a for a in actions if a.split(":")[1].startswith(("Put", "Delete", "Abort", "Create", "Update"))}
            if writes:
                assert writes == {"s3:PutObject", "s3:AbortMultipartUpload"}
                assert resources == ["arn:aws:s3:::stedi-team/athena-results/*"]


def test_the_command_writes_the_template_parameters_script_and_next_steps(tmp_path: Path) -> None:
    out = tmp_path / "deploy"
    result = CliRunner().invoke(cli, ["deploy", "aws", "--bucket", "stedi-team", "--prefix", "lake",
                                      "--schedule", "0 6 * * ? *", "--out", str(out), "--region", "eu-west-1",
                                      "--no-bundle"])
    assert result.exit_code == 0, result.output
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == ["README.md", "glue/stedi_job.py", "job-parameters.json", "stedi-aws.template.json"]
    written = json.loads((out / "stedi-aws.template.json").read_text())
    assert written == template(deployment("stedi-team", "lake", "cron(0 6 * * ? *)"))
    assert json.loads((out / "job-parameters.json").read_text()) == job_arguments(deployment("stedi-team", "lake"))
    script = (out / "glue/stedi_job.py").read_text()
    assert "from stedi.glue_job import main" in script
    compile(script, "stedi_job.py", "exec")
    steps = (out / "README.md").read_text()
    assert "aws cloudformation deploy --region eu-west-1 --stack-name stedi --capabilities CAPABILITY_IAM" in steps
    assert f"aws s3 cp --region eu-west-1 {out / 'glue/stedi_job.py'} s3://stedi-team/lake/glue/stedi_job.py" in steps


def test_the_default_schedule_is_daily_and_rewriting_gives_the_same_files(tmp_path: Path) -> None:
    d = deployment("stedi-team")
    assert d.schedule == DEFAULT_SCHEDULE == "cron(0 2 * * ? *)"
    first = [p.read_bytes() for p in write(d, tmp_path, bundle=False)]
    assert [p.read_bytes() for p in write(d, tmp_path, bundle=False)] == first


@pytest.mark.parametrize(("args", "message"), [
    (["--bucket", "Stedi_Team"], "--bucket 'Stedi_Team' is not a valid S3 bucket name: 3 to 63 lowercase"),
    (["--bucket", "s3://stedi-team/lake"], "give the bucket's name alone"),
    (["--bucket", "ab"], "is not a valid S3 bucket name"),
    (["--bucket", "stedi..team"], "no two dots"),
    (["--bucket", "192.168.1.10"], "may not look like an IP address"),
    (["--bucket", "xn--stedi"], "reserved by AWS"),
    (["--bucket", "stedi-team", "--prefix", "lake/*"], "--prefix 'lake/*' is not usable: each part"),
    (["--bucket", "stedi-team", "--prefix", "lake//prod"], "is not usable"),
    (["--bucket", "stedi-team", "--prefix", "a/../b"], "'..' is not"),
    (["--bucket", "stedi-team", "--prefix", "${AWS::Region}"], "is not usable"),
    (["--bucket", "stedi-team", "--schedule", "0 2 * * *"], "must be AWS's cron with six fields"),
    (["--bucket", "stedi-team", "--schedule", "cron(0 2 * * * *)"], "exactly one of day-of-month and day-of-week"),
    (["--bucket", "stedi-team", "--schedule", "cron(0 25 * * ? *)"], "the hours field '25' is out of range"),
    (["--bucket", "stedi-team", "--schedule", "cron(0 2 * * ? * *)"], "six fields"),
    (["--bucket", "stedi-team", "--schedule", "cron(0 2 $ * ? *)"], "the day-of-month field '$' is not valid"),
    (["--bucket", "stedi-team", "--region", "Ireland"], "--region 'Ireland' is not an AWS region name"),
])
def test_bad_buckets_prefixes_schedules_and_regions_are_clear_errors(
        args: list[str], message: str, tmp_path: Path) -> None:
    from stedi.cli.main import main

    with pytest.raises(SystemExit) as exit_:
        main(["deploy", "aws", *args, "--out", str(tmp_path / "out")])
    assert exit_.value.code == 2  # a bad option value: a usage error
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")
                       .replace("$", r"\$").replace(".", r"\.")):
        deployment(*_positional(args))


def _positional(args: list[str]) -> list[Any]:
    options = dict(zip(args[::2], args[1::2], strict=True))
    return [options["--bucket"], options.get("--prefix", ""), options.get("--schedule"), options.get("--region")]


@pytest.mark.parametrize(("given", "taken"), [
    ("cron(0 2 * * ? *)", "cron(0 2 * * ? *)"),
    ("  0/15 * ? * MON-FRI *  ", "cron(0/15 * ? * MON-FRI *)"),
    ("cron(0 12 L * ? 2027)", "cron(0 12 L * ? 2027)"),
    ("cron(0 8 ? * 2#1 *)", "cron(0 8 ? * 2#1 *)"),
])
def test_aws_cron_expressions_are_taken_as_glue_takes_them(given: str, taken: str) -> None:
    assert check_schedule(given) == taken


def test_the_smoke_script_of_a_real_account_is_valid_bash_and_walks_the_documented_steps() -> None:
    script = REPO / "scripts" / "aws-smoke.sh"
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
    text = script.read_text()
    steps = ["deploy aws", "aws cloudformation deploy", "--no-bundle --upload", "ingest", "aws glue start-job-run",
             "aws athena start-query-execution", "machine_learning_curated"]
    assert [text.index(step) for step in steps] == sorted(text.index(step) for step in steps)
