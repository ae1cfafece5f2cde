"""A real S3-protocol server for tests and benchmarks: moto's standalone server on 127.0.0.1.

Authentication is on: after the first few requests (which create an IAM user, its access key and a
policy) every request must be signed with a known key, so wrong credentials are refused as on AWS.
S3 requests are authorized as S3 does (IAM's actions, `s3:prefix` conditions, 403 for a missing key the
caller may not list): s3_iam.py patches moto's server for that, in its own process. moto before 5.2.5
rejected some of pyarrow's signatures (getmoto/moto#5948): the lock pins moto, and this module runs the
interpreter's own moto, never a moto_server on PATH.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETUP_REQUESTS = 3  # create_user, put_user_policy, create_access_key
# S3, the Glue Data Catalog (tests of a Glue catalog), and IAM (tests that make a user as limited as the
# role `stedi deploy aws` writes), STS (session credentials): moto serves them all, with authentication on
POLICY = ('{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": ["s3:*", "glue:*", "iam:*", "sts:*"], '
          '"Resource": "*"}]}')


@dataclass(frozen=True)
class S3Server:
    endpoint: str  # http://127.0.0.1:PORT
    access_key: str
    secret_key: str
    process: subprocess.Popen[bytes]

    def env(self) -> dict[str, str]:
        """The AWS variables a client needs to reach this server."""
        return {"AWS_ENDPOINT_URL": self.endpoint, "AWS_ACCESS_KEY_ID": self.access_key,
                "AWS_SECRET_ACCESS_KEY": self.secret_key, "AWS_DEFAULT_REGION": "us-east-1"}

    def client(self, access_key: str | None = None, secret_key: str | None = None):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=access_key or self.access_key,
                            aws_secret_access_key=secret_key or self.secret_key)

    def use(self, monkeypatch: Any, tmp_path: Path) -> None:
        """Point the standard AWS variables at this server, with no profile or credentials file of the
        developer's, and this machine's stedi data folder in `tmp_path`."""
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_REGION"):
            monkeypatch.delenv(name, raising=False)
        for name, value in self.env().items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))

    def create_bucket(self, name: str) -> None:
        self.client().create_bucket(Bucket=name)

    def glue(self):  # type: ignore[no-untyped-def]
        """A client of the server's Glue Data Catalog (one per account, as on AWS)."""
        import boto3

        return boto3.client("glue", endpoint_url=self.endpoint, region_name="us-east-1",
                            aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key)

    def drop_glue_database(self, name: str = "stedi") -> None:
        """The Glue Data Catalog without database `name` (and its tables): a test of a Glue catalog starts from
        none, as another test's tables would be of another bucket."""
        glue = self.glue()
        try:
            for table in glue.get_tables(DatabaseName=name)["TableList"]:
                glue.delete_table(DatabaseName=name, Name=table["Name"])
            glue.delete_database(Name=name)
        except glue.exceptions.EntityNotFoundException:
            pass

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start(timeout: float = 30) -> S3Server:
    """Start moto_server on a free port and create a user with full S3 access; returns once it answers."""
    import boto3

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(SETUP_REQUESTS)
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("s3_iam.py")), "-H", "127.0.0.1",
                                "-p", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(f"moto_server did not start on port {port}") from None
            time.sleep(0.05)
    endpoint = f"http://127.0.0.1:{port}"
    iam = boto3.client("iam", endpoint_url=endpoint, region_name="us-east-1",
                       aws_access_key_id="setup", aws_secret_access_key="setup")
    iam.create_user(UserName="stedi")
    iam.put_user_policy(UserName="stedi", PolicyName="s3", PolicyDocument=POLICY)
    key = iam.create_access_key(UserName="stedi")["AccessKey"]
    return S3Server(endpoint, key["AccessKeyId"], key["SecretAccessKey"], process)
