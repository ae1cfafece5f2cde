"""The parameters of `stedi deploy aws`'s template: what a stack is told when it is created or updated
(`aws cloudformation deploy --parameter-overrides Name=value`), its conditions, and the values that follow.

    ReadersSeeTrusted                 "false" (default) or "true": the readers' policy reaches the trusted
                                      tables as well as the curated ones
    ReaderPrincipal                   "" (default: no role) or the account ID or IAM ARN allowed to assume
                                      the readers' role, which the stack then creates
    AthenaBytesScannedCutoffPerQuery  the most bytes one query of the stedi workgroup may scan (10 GB;
                                      Athena's least is 10 MB)
    ExistingDatabase                  "false" (default) or "true": the Glue database `stedi` exists (kept
                                      from an earlier stack) and the stack does not create it
    ExistingPseudonymKeySecretArn     "" (default: the stack creates the secret) or the ARN of the secret
                                      holding the pseudonym key (kept from an earlier stack)

The database and the secret outlive the stack (DeletionPolicy Retain), so a stack made again after one was
deleted is told of them rather than creating them again; the name `stedi` is fixed, so `ExistingDatabase`
is a yes or no, while the secret is named by its ARN, which the job and its role then use.
"""

from __future__ import annotations

from typing import Any

READERS_SEE_TRUSTED = "ReadersSeeTrusted"
READER_PRINCIPAL = "ReaderPrincipal"
BYTES_SCANNED_CUTOFF = "AthenaBytesScannedCutoffPerQuery"
EXISTING_DATABASE = "ExistingDatabase"
EXISTING_SECRET = "ExistingPseudonymKeySecretArn"

# the conditions
TRUSTED_FOR_READERS = "TrustedForReaders"
READERS_ROLE = "MakeReadersRole"
NEW_DATABASE = "CreateDatabase"
NEW_SECRET = "CreatePseudonymKeySecret"

SECRET_RESOURCE = "PseudonymKeySecret"  # the logical id of the secret the stack creates
SECRET_NAME = "stedi/pseudonym-key"  # its name (Secrets Manager's ARN of it ends in -<6 characters>)
DEFAULT_BYTES_SCANNED_CUTOFF = 10_000_000_000  # 10 GB: a few dollars of Athena at most per query
MIN_BYTES_SCANNED_CUTOFF = 10_000_000  # Athena's least cutoff, 10 MB

_YES_NO = ["false", "true"]


def parameters() -> dict[str, Any]:
    return {
        READERS_SEE_TRUSTED: {
            "Type": "String", "Default": "false", "AllowedValues": _YES_NO,
            "Description": "true: the readers' policy (and role) may read the trusted tables (customer_trusted, "
                           "accelerometer_trusted, step_trainer_trusted: emails and names) as well as the "
                           "curated ones. Never the landing zone, the privacy folder or the pseudonym key."},
        READER_PRINCIPAL: {
            "Type": "String", "Default": "",
            "AllowedPattern": r"^$|^[0-9]{12}$|^arn:aws[a-z-]*:(iam|sts)::[0-9]{12}:\S+$",
            "ConstraintDescription": "empty, a 12-digit account ID, or an IAM ARN (a role, a user, an account's root)",
            "Description": "Who may assume the readers' role: an account ID (its administrators then grant "
                           "sts:AssumeRole to whom they choose) or an IAM role or user ARN (e.g. an IAM Identity "
                           "Center role, with its path). Empty: no role; attach the readers' policy yourself."},
        BYTES_SCANNED_CUTOFF: {
            "Type": "Number", "Default": DEFAULT_BYTES_SCANNED_CUTOFF, "MinValue": MIN_BYTES_SCANNED_CUTOFF,
            "Description": "The most bytes one query of the stedi Athena workgroup may scan before Athena "
                           "cancels it (Athena bills by the bytes scanned). At least 10000000 (10 MB)."},
        EXISTING_DATABASE: {
            "Type": "String", "Default": "false", "AllowedValues": _YES_NO,
            "Description": "true: the Glue database stedi exists already (kept when an earlier stack was "
                           "deleted); the stack uses it and does not create it."},
        EXISTING_SECRET: {
            "Type": "String", "Default": "",
            "AllowedPattern": r"^$|^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:\S+$",
            "ConstraintDescription": "empty, or a Secrets Manager secret's ARN",
            "Description": "The ARN of an existing secret holding the pseudonym key (kept when an earlier stack "
                           "was deleted: another key gives other pseudonyms). Empty: the stack creates one."},
    }


def conditions() -> dict[str, Any]:
    return {
        TRUSTED_FOR_READERS: {"Fn::Equals": [{"Ref": READERS_SEE_TRUSTED}, "true"]},
        READERS_ROLE: {"Fn::Not": [{"Fn::Equals": [{"Ref": READER_PRINCIPAL}, ""]}]},
        NEW_DATABASE: {"Fn::Equals": [{"Ref": EXISTING_DATABASE}, "false"]},
        NEW_SECRET: {"Fn::Equals": [{"Ref": EXISTING_SECRET}, ""]},
    }


def if_(condition: str, then: Any, otherwise: Any) -> dict[str, Any]:
    return {"Fn::If": [condition, then, otherwise]}


def sub(text: str) -> dict[str, str]:
    """`Fn::Sub` of `text` (its ${AWS::...} filled in by CloudFormation)."""
    return {"Fn::Sub": text}


def secret_arn() -> dict[str, Any]:
    """The pseudonym key's secret: the one the stack creates, or the existing one it was given."""
    return if_(NEW_SECRET, {"Ref": SECRET_RESOURCE}, {"Ref": EXISTING_SECRET})


def secrets_named_so() -> dict[str, Any]:
    """Every secret named as the stack names the pseudonym key's (whichever stack made it), and the existing
    one the stack was given: what no reader may touch."""
    named = sub(f"arn:${{AWS::Partition}}:secretsmanager:${{AWS::Region}}:${{AWS::AccountId}}:secret:"
                f"{SECRET_NAME}-*")
    return if_(NEW_SECRET, named, [named, {"Ref": EXISTING_SECRET}])
