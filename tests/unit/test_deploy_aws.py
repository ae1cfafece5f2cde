"""`stedi deploy aws`: the template passes cfn-lint, its role reaches nothing outside the root, the database
and its tables, Glue's logs and the secret, and bad names or schedules are clear errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stedi import ConfigError, __version__
from stedi._version import DISTRIBUTION
from stedi.cli.main import cli
from stedi.deploy.aws import (
    DEFAULT_SCHEDULE,
    Deployment,
    check_schedule,
    deployment,
    job_arguments,
    role_policy,
    template,
    write,
)

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
    assert args["--stedi_pseudonym_key_secret"] == resources["PseudonymKeySecret"]["Properties"]["Name"]
    assert resources["StediSchedule"]["Properties"]["Schedule"] == "cron(30 4 ? * MON-FRI *)"
    assert resources["StediSchedule"]["Properties"]["Actions"] == [{"JobName": {"Ref": "StediJob"}}]
    athena = resources["AthenaWorkGroup"]["Properties"]["WorkGroupConfiguration"]["ResultConfiguration"]
    assert athena["OutputLocation"] == "s3://stedi-team/lake/prod/athena-results/"
    assert resources["StediDatabase"]["Properties"]["DatabaseInput"]["Name"] == "stedi"
    assert resources["LakehouseBucket"]["Properties"]["BucketName"] == "stedi-team"
    assert "LakehouseBucket" not in template(deployment("stedi-team", existing_bucket=True))["Resources"]


def _statements(d: Deployment) -> list[dict[str, Any]]:
    return list(role_policy(d)["Statement"])


def _resources(statement: dict[str, Any]) -> list[str]:
    """Each Resource as text: Fn::Sub's string, or the logical id a Ref names."""
    found = statement["Resource"]
    return [r.get("Fn::Sub") or f"Ref:{r['Ref']}" for r in (found if isinstance(found, list) else [found])]


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
    first = [p.read_bytes() for p in write(d, tmp_path)]
    assert [p.read_bytes() for p in write(d, tmp_path)] == first


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
