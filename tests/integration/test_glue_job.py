"""The AWS Glue entry point, run locally: a local Spark session and the SQLite catalog."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi import ConfigError
from stedi.glue_job import main, parse_args


def test_job_parameters_are_read_as_glue_passes_them() -> None:
    args = parse_args(["--JOB_NAME", "nightly", "--stedi_home", "s3://bucket/lake", "--stedi_select",
                       "customer_trusted, machine_learning_curated", "--stedi_full_refresh", "true",
                       "--enable-metrics", "true"])
    assert (args.job_name, args.home, args.select, args.full_refresh) == (
        "nightly", "s3://bucket/lake", ["customer_trusted", "machine_learning_curated"], True)
    assert args.catalog == {"type": "glue"}


@pytest.mark.parametrize(("argv", "message"), [
    (["--JOB_NAME", "x"], "missing job parameter(s): --stedi_home"),
    (["--JOB_NAME", "x", "--stedi_home", "h", "--stedi_catalog", "[1]"], "must be a JSON object"),
])
def test_bad_job_parameters_are_named(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        parse_args(argv)


def test_job_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--JOB_NAME", "x", "--stedi_home", str(tmp_path / "empty"), "--stedi_catalog",
                 json.dumps({"type": "sql", "uri": f"sqlite:///{tmp_path / 'c.db'}",
                             "warehouse": (tmp_path / "w").as_uri()})])
    assert code == 1
    err = capsys.readouterr().err
    assert err.startswith(f"error: nothing has landed in {tmp_path / 'empty'} yet") and err.count("\n") == 1
    assert not (tmp_path / "empty").exists() and not (tmp_path / "w").exists()


def test_the_pseudonym_key_is_read_from_its_secret_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto import mock_aws

    from stedi.glue_job import secret_value

    for name, value in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                        "AWS_DEFAULT_REGION": "eu-west-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    args = parse_args(["--JOB_NAME", "x", "--stedi_home", "s3://b/p", "--stedi_pseudonym_key_secret", "stedi/key"])
    assert (args.pseudonym_key, args.pseudonym_key_secret) == ("", "stedi/key")
    with mock_aws():
        import boto3

        boto3.client("secretsmanager", region_name="eu-west-1").create_secret(
            Name="stedi/key", SecretString="k" * 64)
        assert secret_value("stedi/key") == "k" * 64
        with pytest.raises(ConfigError, match=r"cannot read the pseudonym key from the secret stedi/other"):
            secret_value("stedi/other")
