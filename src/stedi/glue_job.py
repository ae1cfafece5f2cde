"""Run the stedi pipeline as an AWS Glue 5.0 job (Spark 3.5), on the job's own Spark session.

Glue calls the script with its job parameters as `--name value` pairs. stedi reads:

    --JOB_NAME             set by Glue
    --stedi_home           the lakehouse root (landing zone and Iceberg warehouse)
    --stedi_catalog        pyiceberg catalog properties as a JSON object; default {"type": "glue"},
                           the account's Glue Data Catalog
    --stedi_select         optional: comma-separated tables to build (with what they need)
    --stedi_full_refresh   optional: true to rebuild every table
    --stedi_consent_policy optional: any (default) or since_consent
    --stedi_pseudonym_key  the secret key of the pseudonyms (it is never logged); else
                           --stedi_pseudonym_key_secret, else STEDI_PSEUDONYM_KEY
    --stedi_pseudonym_key_secret
                           the ARN (or name) of an AWS Secrets Manager secret holding that key, read at
                           run time with the job role's credentials (what `stedi deploy aws` sets up)

See docs/glue.md for the deployment. Locally (tests, a laptop) the same entry point runs on a local
Spark session when awsglue is not installed:  python -m stedi.glue_job --JOB_NAME local --stedi_home ...
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from stedi.errors import ConfigError, StediError

OPTIONS = ("JOB_NAME", "stedi_home")
OPTIONAL = {"stedi_catalog": '{"type": "glue"}', "stedi_select": "", "stedi_full_refresh": "false",
            "stedi_consent_policy": "any", "stedi_pseudonym_key": "", "stedi_pseudonym_key_secret": ""}


@dataclass(frozen=True)
class JobArgs:
    job_name: str
    home: str
    catalog: dict[str, str]
    select: list[str]
    full_refresh: bool
    consent_policy: str = "any"
    pseudonym_key: str = ""
    pseudonym_key_secret: str = ""


def parse_args(argv: Sequence[str]) -> JobArgs:
    """The job's parameters, read as Glue's getResolvedOptions reads them."""
    values: dict[str, str] = dict(OPTIONAL)
    args = list(argv)
    for i, arg in enumerate(args):
        if arg.startswith("--") and i + 1 < len(args):
            key = arg[2:]
            if key in OPTIONS or key in OPTIONAL:
                values[key] = args[i + 1]
    missing = [name for name in OPTIONS if name not in values]
    if missing:
        raise ConfigError(f"missing job parameter(s): {', '.join('--' + m for m in missing)}")
    try:
        catalog = json.loads(values["stedi_catalog"])
    except ValueError as exc:
        raise ConfigError(f"--stedi_catalog must be a JSON object of pyiceberg properties: {exc}") from None
    if not isinstance(catalog, dict):
        raise ConfigError("--stedi_catalog must be a JSON object of pyiceberg properties")
    return JobArgs(
        job_name=values["JOB_NAME"],
        home=values["stedi_home"],
        catalog={str(k): str(v) for k, v in catalog.items()},
        select=[t.strip() for t in values["stedi_select"].split(",") if t.strip()],
        full_refresh=values["stedi_full_refresh"].lower() in ("true", "1", "yes"),
        consent_policy=values["stedi_consent_policy"],
        pseudonym_key=values["stedi_pseudonym_key"],
        pseudonym_key_secret=values["stedi_pseudonym_key_secret"],
    )


def secret_value(secret_id: str) -> str:
    """The text of a Secrets Manager secret, read with the standard AWS credentials (the job's role on Glue).
    The key stays out of the job's definition, where anyone allowed glue:GetJob could read it."""
    import botocore.exceptions
    import botocore.session

    try:
        client = botocore.session.get_session().create_client("secretsmanager")
        return str(client.get_secret_value(SecretId=secret_id)["SecretString"]).strip()  # as a key file is read
    except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError, KeyError) as exc:
        raise ConfigError(f"cannot read the pseudonym key from the secret {secret_id} "
                          f"(--stedi_pseudonym_key_secret): {exc}") from None


def _glue_job(job_name: str, argv: Sequence[str]) -> Any:
    """Glue's Job bookkeeping when running on Glue; None elsewhere."""
    try:
        from stedi.engines.spark import glue_job
    except ImportError:
        return None
    return glue_job(job_name)


def main(argv: Sequence[str] | None = None) -> int:
    from stedi.api import Lakehouse
    from stedi.config import load_settings

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = parse_args(argv)
        job = _glue_job(args.job_name, argv)  # starts Glue's Spark session, which the engine then uses
        key = args.pseudonym_key or (secret_value(args.pseudonym_key_secret) if args.pseudonym_key_secret else "")
        if key:
            os.environ["STEDI_PSEUDONYM_KEY"] = key  # for this process only
        settings = load_settings(env={}, home=args.home, engine="spark", catalog=args.catalog,
                                 consent_policy=args.consent_policy)
        report = Lakehouse(settings=settings).run(args.select, full_refresh=args.full_refresh, progress=print)
    except StediError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for t in report.tables:
        print(f"{t.table}\t{t.status}\t{t.rows_in}\t{t.rows_out}\t{t.seconds:.2f}")
    if job is not None:
        job.commit()
    return 0


if __name__ == "__main__":
    sys.exit(main())
