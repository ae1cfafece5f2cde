"""No query path prints a credential (issue 25): the API, `stedi sql` and `stedi serve`'s SQL routes, asked
through every introspection DuckDB has, with the S3 credentials from the environment, from a shared
credentials file, and from a credential provider (the container endpoint a role's credentials come from
on ECS or EKS, here a local HTTP endpoint serving STS session credentials, token included)."""

from __future__ import annotations

import contextlib
import io
import json
import threading
import urllib.parse
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import duckdb
import pytest

from stedi import Lakehouse, QueryError
from stedi.cli.main import main
from stedi.engines import open_query_engine
from stedi.engines.duckdb import INTROSPECTION, load_httpfs
from stedi.serve.server import ReportServer

import s3server
from support import FIXTURES

pytestmark = [pytest.mark.s3]

SOURCES = ["env", "file", "provider"]
CLI_PROBES = ("select * from duckdb_settings()", "select current_setting('s3_secret_access_key')",
              "select * from duckdb_secrets()", "select * from pg_settings")


def _main(args: list[str]) -> tuple[int, str]:
    """`stedi ARGS` through main(): (exit code, all it printed)."""
    out = io.StringIO()
    with contextlib.redirect_stderr(out), contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        main(args)
    return (exited.value.code if isinstance(exited.value.code, int) else 1), out.getvalue()


def _probes() -> list[str]:
    """Every table function DuckDB (with httpfs) takes without arguments, every setting by name, and the ways
    around a name check (SQL run from text, the catalog's views)."""
    con = duckdb.connect()
    load_httpfs(con)
    functions = [name for (name,) in con.execute(
        "select distinct function_name from duckdb_functions() where function_type = 'table' "
        "and len(parameters) = 0 and function_name not like '%checkpoint%'").fetchall()]
    settings = [name for (name,) in con.execute("select name from duckdb_settings()").fetchall()]
    con.close()
    return ([f"select * from {name}()" for name in sorted(functions)]
            + [f"select current_setting('{name}')" for name in settings]
            + ["select * from pg_settings", "select * from duckdb_secrets(redact => false)",
               "select * from which_secret('s3://creds/lake/x', 's3')",
               "select * from query('select * from duckdb_' || 'settings()')",
               "select getvariable('x')", "explain analyze select * from duckdb_settings()"])


@pytest.fixture(scope="module")
def session(server: s3server.S3Server) -> dict[str, str]:
    """A role's temporary credentials (a session token with them), as a service running as the role gets."""
    import boto3

    admin = {"endpoint_url": server.endpoint, "region_name": "us-east-1",
             "aws_access_key_id": server.access_key, "aws_secret_access_key": server.secret_key}
    iam = boto3.client("iam", **admin)
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
                                                     "Action": "sts:AssumeRole"}]}
    role = iam.create_role(RoleName="lake", AssumeRolePolicyDocument=json.dumps(trust))["Role"]
    iam.put_role_policy(RoleName="lake", PolicyName="s3", PolicyDocument=json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}))
    sts = boto3.client("sts", **admin)
    credentials = sts.assume_role(RoleArn=role["Arn"], RoleSessionName="stedi")["Credentials"]
    return dict(credentials, Expiration="2099-01-01T00:00:00Z")


@pytest.fixture
def provider(session: dict[str, str]) -> Iterator[str]:
    """A container credentials endpoint on loopback, as botocore reads a role's credentials on ECS/EKS."""
    body = json.dumps({k: session[k] for k in ("AccessKeyId", "SecretAccessKey", "Expiration")}
                      | {"Token": session["SessionToken"]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/creds"
    httpd.shutdown()


@pytest.fixture(params=SOURCES)
def credentials(request: pytest.FixtureRequest, server: s3server.S3Server, session: dict[str, str],
                monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> tuple[str, list[str]]:
    """The credentials of one source in force: its name, and the secrets no output may hold."""
    server.use(monkeypatch, tmp_path)
    if request.param == "env":
        return request.param, [server.secret_key]
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    if request.param == "file":
        path = tmp_path / "credentials"
        path.write_text(f"[default]\naws_access_key_id = {session['AccessKeyId']}\n"
                        f"aws_secret_access_key = {session['SecretAccessKey']}\n"
                        f"aws_session_token = {session['SessionToken']}\n")
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    else:
        monkeypatch.setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", request.getfixturevalue("provider"))
    return request.param, [session["SecretAccessKey"], session["SessionToken"]]


def test_no_query_path_prints_a_credential(server: s3server.S3Server, credentials: tuple[str, list[str]]) -> None:
    source, secrets = credentials
    bucket = f"creds-{source}"
    server.create_bucket(bucket)
    lake = Lakehouse(f"s3://{bucket}/lake")
    lake.ingest(FIXTURES / "edge")
    lake.run(select=["customer_trusted"])
    assert lake.sql("select count(*) as n from customer_trusted").to_pylist()[0]["n"] > 0  # the credentials work

    said: list[str] = []
    refused = set()

    def ask(engine: Any, probe: str) -> None:
        try:
            said.append(json.dumps(engine.query(probe).to_pylist(), default=str))
        except QueryError as exc:
            said.append(str(exc))
            refused.add(probe)

    # every probe on the connection `stedi sql` opens (one, so the sweep stays quick), a few through the API
    engine = open_query_engine(lake.settings)
    try:
        for probe in _probes():
            ask(engine, probe)
    finally:
        engine.close()
    assert {p for p in _probes() if any(f"{name}(" in p or f"from {name}" in p for name in INTROSPECTION)} <= refused
    for probe in CLI_PROBES:
        with pytest.raises(QueryError, match="not available in stedi's SQL"):
            lake.sql(probe)

    for probe in CLI_PROBES:
        code, err = _main(["--home", lake.settings.home, "sql", probe])
        assert code == 1 and "not available in stedi's SQL" in err
        said.append(err)

    served = ReportServer(lake, port=0)
    served.start()
    try:
        for probe in ("select current_setting('s3_session_token')", "select * from duckdb_settings()"):
            for request in (urllib.request.Request(f"{served.url}sql.csv?q={urllib.parse.quote(probe)}"),
                            urllib.request.Request(f"{served.url}sql", data=json.dumps({"q": probe}).encode(),
                                                   headers={"Content-Type": "application/json"})):
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        said.append(response.read().decode())
                except urllib.error.HTTPError as exc:
                    said.append(exc.read().decode())
                    assert exc.code == 400
    finally:
        served.shutdown()
        served.server_close()

    text = "\n".join(said)
    assert "not available in stedi's SQL" in text
    for secret in secrets:
        assert secret not in text
