"""`stedi deploy aws`: a CloudFormation template that runs stedi as a scheduled AWS Glue 5.0 job.

The template is built here as plain data and written as JSON: CloudFormation, cfn-lint and
`aws cloudformation deploy` read JSON as they read YAML, and JSON needs no dependency (YAML would add
PyYAML to every install for one command). What it holds, for a bucket B and a prefix P:

    the bucket B (or an existing one, `existing_bucket`), the root s3://B/P: landing/, warehouse/ (the
        Iceberg tables), privacy/, glue/ (the job's script and temporary files), athena-results/; kept when
        the stack is deleted, and its policy refusing every request without TLS (a bucket the stack makes)
    a Glue database `stedi` (stedi's namespace), located at s3://B/P/warehouse/stedi; kept when the stack is
        deleted, and not made by a stack told `ExistingDatabase`
    a Secrets Manager secret with a generated pseudonym key, read by the job at run time; kept when the stack
        is deleted, and not made by a stack given `ExistingPseudonymKeySecretArn` (the job reads that one)
    an IAM role for Glue allowed only: objects under s3://B/P/, listing B under P/, the catalog, the
        database `stedi` and its tables, Glue's log groups, and that one secret
    a Glue 5.0 job running `stedi.glue_job`, installed from the zip of wheels s3://B/P/glue/<bundle> with no
        package index (stedi.deploy.glue_bundle), and a trigger starting it on a schedule, made stopped: it is
        started once the job's script and wheels are uploaded
    an Athena workgroup writing its results to s3://B/P/athena-results/, each query cut off at
        `AthenaBytesScannedCutoffPerQuery` bytes scanned
    the readers' managed policy (stedi.deploy.readers): queries through that workgroup of the curated
        tables, and of the trusted ones with `ReadersSeeTrusted`; never the landing zone, privacy/ or the key;
        and a role holding it that `ReaderPrincipal` may assume, when one is named

The parameters and conditions are stedi.deploy.parameters'. The Glue database is named `stedi` because that
is stedi's namespace in every catalog: one deployment per account and region.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi._version import __version__
from stedi.config import NAMESPACE
from stedi.deploy import parameters as params
from stedi.deploy import readers
from stedi.deploy.deployment import Deployment
from stedi.deploy.glue_bundle import BUNDLE_NAME
from stedi.errors import ConfigError

if TYPE_CHECKING:
    from stedi.storage.s3 import S3Connection

DEFAULT_OUT = Path("deploy/aws")
TEMPLATE_FILE = "stedi-aws.template.json"
PARAMETERS_FILE = "job-parameters.json"
SCRIPT_FILE = "glue/stedi_job.py"
BUNDLE_FILE = f"glue/{BUNDLE_NAME}"
STEPS_FILE = "README.md"

JOB_NAME = "stedi"
TRIGGER_NAME = "stedi-schedule"
WORKGROUP_NAME = readers.WORKGROUP_NAME
SECRET_NAME = params.SECRET_NAME
ATHENA_RESULTS_DAYS = 30

# The job's script: Glue needs one in S3; it only hands over to the installed package.
JOB_SCRIPT = "import sys\nfrom stedi.glue_job import main\n\nsys.exit(main())\n"

# What the job does to objects under the root (multipart uploads: pyarrow and DuckDB write large files so).
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload",
                  "s3:ListMultipartUploadParts"]
# pyiceberg's Glue catalog: load, create, commit (UpdateTable), drop and register tables; CreateDatabase is
# called by create-if-not-exists on the database the template made.
CATALOG_ACTIONS = ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:GetTables",
                   "glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"]
LOG_ACTIONS = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"]


# -- the template -------------------------------------------------------------------------------------

def job_arguments(d: Deployment) -> dict[str, str]:
    """The Glue job's parameters (its DefaultArguments): docs/glue.md says what each one does."""
    return {
        # stedi and what Glue lacks, from the deploy's own bucket; pip on Glue asks no package index
        "--additional-python-modules": d.uri(BUNDLE_FILE),
        "--python-modules-installer-option": "--no-index",
        "--stedi_home": d.home,
        "--stedi_catalog": json.dumps({"type": "glue", "warehouse": d.uri("warehouse")}),
        "--stedi_pseudonym_key_secret": SECRET_NAME,
        "--job-bookmark-option": "job-bookmark-disable",  # stedi's fingerprints decide what is new
        "--TempDir": d.uri("glue/temp/"),  # Glue's own scratch space, inside the root
    }



def role_policy(d: Deployment) -> dict[str, Any]:
    """The job role's only policy: the root's objects, the catalog's `stedi` database, logs, the secret."""
    glue = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    logs = "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws-glue/*"
    listing: dict[str, Any] = {"Sid": "ListTheRootOnly", "Effect": "Allow", "Action": "s3:ListBucket",
                               "Resource": params.sub(f"arn:${{AWS::Partition}}:s3:::{d.bucket}")}
    if d.prefix:
        listing["Condition"] = {"StringLike": {"s3:prefix": [d.prefix, f"{d.prefix}/*"]}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ObjectsUnderTheRoot", "Effect": "Allow", "Action": OBJECT_ACTIONS,
             "Resource": params.sub(f"arn:${{AWS::Partition}}:s3:::{d.bucket}/{d.key_prefix}*")},
            listing,
            {"Sid": "TheStediDatabase", "Effect": "Allow", "Action": CATALOG_ACTIONS,
             "Resource": [params.sub(f"{glue}:catalog"), params.sub(f"{glue}:database/{NAMESPACE}"),
                          params.sub(f"{glue}:table/{NAMESPACE}/*")]},
            {"Sid": "GlueJobLogs", "Effect": "Allow", "Action": LOG_ACTIONS,
             "Resource": [params.sub(logs), params.sub(f"{logs}:log-stream:*")]},
            {"Sid": "ThePseudonymKey", "Effect": "Allow", "Action": "secretsmanager:GetSecretValue",
             "Resource": params.secret_arn()},
        ],
    }


def _bucket(d: Deployment) -> dict[str, Any]:
    return {
        "Type": "AWS::S3::Bucket",
        # the lakehouse outlives the stack: deleting the stack keeps the bucket and everything in it
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "BucketName": d.bucket,
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "BlockPublicPolicy": True,
                                               "IgnorePublicAcls": True, "RestrictPublicBuckets": True},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [
                {"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]},
            # No versioning: `stedi erase` must be able to delete a person's old files for good.
            "LifecycleConfiguration": {"Rules": [
                {"Id": "athena-results", "Status": "Enabled", "Prefix": f"{d.key_prefix}{readers.ATHENA_RESULTS}/",
                 "ExpirationInDays": ATHENA_RESULTS_DAYS},
                {"Id": "unfinished-uploads", "Status": "Enabled", "Prefix": d.key_prefix,
                 "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}},
            ]},
        },
    }


def _bucket_policy() -> dict[str, Any]:
    """No request to the bucket without TLS (the bucket's own policy: it binds every caller)."""
    return {
        "Type": "AWS::S3::BucketPolicy",
        # kept with the bucket it protects
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Bucket": {"Ref": "LakehouseBucket"},
            "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Sid": "TLSOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                 "Resource": [{"Fn::GetAtt": ["LakehouseBucket", "Arn"]}, {"Fn::Sub": "${LakehouseBucket.Arn}/*"}],
                 "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]},
        },
    }


def template(d: Deployment) -> dict[str, Any]:
    """The CloudFormation template, as data."""
    resources: dict[str, Any] = {}
    if not d.existing_bucket:
        resources["LakehouseBucket"] = _bucket(d)
        resources["LakehouseBucketPolicy"] = _bucket_policy()
    resources[params.SECRET_RESOURCE] = {
        "Type": "AWS::SecretsManager::Secret",
        "Condition": params.NEW_SECRET,
        # another key gives other pseudonyms: the key outlives the stack too (ExistingPseudonymKeySecretArn
        # names it to the next one)
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "Name": SECRET_NAME,
            "Description": "The secret key of the customer_key pseudonyms in machine_learning_curated (stedi).",
            "GenerateSecretString": {"PasswordLength": 64, "ExcludePunctuation": True},
        },
    }
    resources["StediDatabase"] = {
        "Type": "AWS::Glue::Database",
        "Condition": params.NEW_DATABASE,
        # the tables' catalog entries outlive the stack with the tables (ExistingDatabase tells the next one)
        "DeletionPolicy": "Retain",
        "UpdateReplacePolicy": "Retain",
        "Properties": {
            "CatalogId": {"Ref": "AWS::AccountId"},
            "DatabaseInput": {"Name": NAMESPACE, "LocationUri": d.uri(f"warehouse/{NAMESPACE}"),
                              "Description": "stedi's Iceberg tables: landing, trusted, curated and audit."},
        },
    }
    resources["JobRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "Description": f"The stedi Glue job: {d.home} and the Glue database {NAMESPACE} only.",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]},
            "Policies": [{"PolicyName": "stedi-lakehouse", "PolicyDocument": role_policy(d)}],
        },
    }
    # the job does not need the database to be created (its runs do, and they come after the stack)
    resources["StediJob"] = {
        "Type": "AWS::Glue::Job",
        "Properties": {
            "Name": JOB_NAME,
            "Description": "stedi run: landing -> trusted -> curated Iceberg tables (stedi.glue_job).",
            "Role": {"Fn::GetAtt": ["JobRole", "Arn"]},
            "GlueVersion": "5.0",
            "Command": {"Name": "glueetl", "PythonVersion": "3", "ScriptLocation": d.uri(SCRIPT_FILE)},
            "DefaultArguments": {**job_arguments(d), "--stedi_pseudonym_key_secret": params.if_(
                params.NEW_SECRET, SECRET_NAME, {"Ref": params.EXISTING_SECRET})},
            "WorkerType": "G.1X",
            "NumberOfWorkers": 2,
            "Timeout": 120,
            "MaxRetries": 0,  # a failed run commits nothing; the next scheduled run starts over
            "ExecutionProperty": {"MaxConcurrentRuns": 1},  # one writer at a time
        },
    }
    resources["StediSchedule"] = {
        "Type": "AWS::Glue::Trigger",
        "Properties": {
            "Name": TRIGGER_NAME,
            "Type": "SCHEDULED",
            "Schedule": d.schedule,
            # started once the job's script is uploaded (the next steps say how): a run before would fail
            "StartOnCreation": False,
            "Actions": [{"JobName": {"Ref": "StediJob"}}],
        },
    }
    resources["AthenaWorkGroup"] = {
        "Type": "AWS::Athena::WorkGroup",
        "Properties": {
            "Name": WORKGROUP_NAME,
            "Description": f"Queries of stedi's tables; results in {d.uri(readers.ATHENA_RESULTS + '/')}",
            "State": "ENABLED",
            "RecursiveDeleteOption": True,
            "WorkGroupConfiguration": {
                "EnforceWorkGroupConfiguration": True,
                "BytesScannedCutoffPerQuery": {"Ref": params.BYTES_SCANNED_CUTOFF},
                "EngineVersion": {"SelectedEngineVersion": "Athena engine version 3"},  # reads Iceberg
                "ResultConfiguration": {"OutputLocation": d.uri(readers.ATHENA_RESULTS + "/"),
                                        "EncryptionConfiguration": {"EncryptionOption": "SSE_S3"}},
            },
        },
    }
    resources["ReadersPolicy"] = {
        "Type": "AWS::IAM::ManagedPolicy",
        "Properties": {
            "Description": f"Athena readers of stedi ({d.home}): the workgroup {WORKGROUP_NAME}, the curated tables "
                           "(and the trusted ones if ReadersSeeTrusted), never landing, privacy or the key.",
            "PolicyDocument": readers.readers_policy(d),
        },
    }
    resources["ReadersRole"] = {
        "Type": "AWS::IAM::Role",
        "Condition": params.READERS_ROLE,
        "Properties": {
            "Description": f"Athena readers of stedi ({d.home}): the readers' policy only.",
            "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Principal": {"AWS": {"Ref": params.READER_PRINCIPAL}},
                 "Action": "sts:AssumeRole"}]},
            "ManagedPolicyArns": [{"Ref": "ReadersPolicy"}],
        },
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"stedi {__version__}: the STEDI lakehouse at {d.home} as a scheduled AWS Glue 5.0 job "
                       "(written by `stedi deploy aws`).",
        "Parameters": params.parameters(),
        "Conditions": params.conditions(),
        "Resources": resources,
        "Outputs": {
            "Home": {"Description": "The lakehouse root (STEDI_HOME)", "Value": d.home},
            "JobName": {"Description": "The Glue job", "Value": {"Ref": "StediJob"}},
            "JobRoleArn": {"Description": "The job's role", "Value": {"Fn::GetAtt": ["JobRole", "Arn"]}},
            "PseudonymKeySecretArn": {"Description": "The pseudonym key's secret (ExistingPseudonymKeySecretArn "
                                                     "of a later stack)", "Value": params.secret_arn()},
            "Database": {"Description": "The Glue database", "Value": NAMESPACE},
            "AthenaWorkGroup": {"Description": "The Athena workgroup", "Value": {"Ref": "AthenaWorkGroup"}},
            "TriggerName": {"Description": "The job's schedule: start it once the job's script is uploaded",
                            "Value": {"Ref": "StediSchedule"}},
            "ReadersPolicyArn": {"Description": "The Athena readers' managed policy: attach it to analysts' roles",
                                 "Value": {"Ref": "ReadersPolicy"}},
            "ReadersRoleArn": {"Description": "The Athena readers' role (ReaderPrincipal may assume it)",
                               "Condition": params.READERS_ROLE,
                               "Value": {"Fn::GetAtt": ["ReadersRole", "Arn"]}},
        },
    }


# -- the files ----------------------------------------------------------------------------------------

def next_steps(d: Deployment, out: Path) -> str:
    region = f" --region {d.region}" if d.region else ""
    create_bucket = "" if not d.existing_bucket else (
        f"The bucket {d.bucket} must exist already (`--existing-bucket`): the stack does not create it.\n\n")
    upload_flags = f" --prefix {d.prefix}" if d.prefix else ""
    upload_flags += " --existing-bucket" if d.existing_bucket else ""
    return f"""# Deploying stedi to AWS

Written by `stedi deploy aws` (stedi {__version__}) for the lakehouse at {d.home}.
The whole walk, from an empty account to an Athena query and back out: docs/aws.md.

{create_bucket}```sh
# 1. the stack: bucket, Glue database and job, schedule ({d.schedule}, created stopped), role, secret,
#    Athena workgroup and the readers' policy
aws cloudformation deploy{region} --stack-name stedi --capabilities CAPABILITY_IAM \\
  --template-file {out / TEMPLATE_FILE}

# 2. the job's script and its zip of wheels (stedi and what Glue lacks), where the job looks for them
stedi deploy aws --bucket {d.bucket}{upload_flags} --out {out} --upload
#    or: aws s3 cp{region} {out / BUNDLE_FILE} {d.uri(BUNDLE_FILE)}
#        aws s3 cp{region} {out / SCRIPT_FILE} {d.uri(SCRIPT_FILE)}

# 3. optional: your own pseudonym key instead of the generated one (before the first run)
aws secretsmanager put-secret-value{region} --secret-id {SECRET_NAME} \\
  --secret-string "$(cat ~/.config/stedi/pseudonym.key)"

# 4. land data, then run the job now
stedi --home {d.home} ingest ./data/stedi
aws glue start-job-run{region} --job-name {JOB_NAME}

# 5. start the schedule (only now that the job has what it needs)
aws glue start-trigger{region} --name {TRIGGER_NAME}

# 6. query
aws athena start-query-execution{region} --work-group {WORKGROUP_NAME} \\
  --query-string "select count(*) from {NAMESPACE}.machine_learning_curated"
```

{PARAMETERS_FILE} holds the job's parameters (its DefaultArguments in the template).
"""


def write(d: Deployment, out: Path = DEFAULT_OUT, bundle: bool = True,
          progress: Callable[[str], None] = lambda _: None) -> list[Path]:
    """Write the template, the job's parameters, its script, the next steps and (unless `bundle` is False)
    the zip of wheels the job installs into `out`; their paths."""
    files = {
        TEMPLATE_FILE: json.dumps(template(d), indent=2) + "\n",
        PARAMETERS_FILE: json.dumps(job_arguments(d), indent=2) + "\n",
        SCRIPT_FILE: JOB_SCRIPT,
        STEPS_FILE: next_steps(d, out),
    }
    written = []
    for name, text in files.items():
        path = out / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if bundle:
        from stedi.deploy import glue_bundle

        written.append(glue_bundle.build((out / BUNDLE_FILE).parent, progress).path)
    return written


def upload(d: Deployment, out: Path, s3: S3Connection, progress: Callable[[str], None] = lambda _: None) -> list[str]:
    """Put the job's zip of wheels, then its script, from `out` where the job looks for them; their URIs.
    The script goes last: a job that finds it finds its wheels too."""
    from stedi.storage.s3 import explain

    fs = s3.filesystem()
    uploaded = []
    for name in (BUNDLE_FILE, SCRIPT_FILE):
        source, uri = out / name, d.uri(name)
        if not source.is_file():
            raise ConfigError(f"{source} is missing: write it first with `stedi deploy aws --bucket {d.bucket} "
                              f"--out {out}`")
        progress(f"uploading {source} to {uri}")
        try:
            with source.open("rb") as data, fs.open_output_stream(uri.removeprefix("s3://")) as target:
                while chunk := data.read(8 << 20):
                    target.write(chunk)
        except OSError as exc:
            raise explain(exc, f"uploading {source} to {uri}", s3) from None
        uploaded.append(uri)
    return uploaded
