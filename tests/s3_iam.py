"""S3's authorization as AWS documents it, for the tests' moto server (run inside its process by s3server.py).

moto enforces IAM on S3 requests, but not as S3 does, and differently from one release to the next:
- moto 5.2.6 authorizes an S3 request under its API operation's name (`s3:HeadObject`, `s3:ListObjectsV2`),
  which is no IAM action: a user allowed `s3:GetObject` and `s3:ListBucket` can neither HEAD its objects
  nor list (5.2.5 used IAM's names);
- neither evaluates a `StringLike` condition (moto knows `StringEquals` only and ignores the rest), so a
  `s3:ListBucket` limited by `s3:prefix` lists the whole bucket;
- neither answers a GET or HEAD of a missing key as S3 does: 403, not 404, when the caller's `s3:ListBucket`
  does not cover the request (an object request carries no `s3:prefix`, so a prefix-limited ListBucket never
  does).

Here S3 requests are authorized by the statements of the caller's policies (inline and attached), under
IAM's actions (moto's own map, ACTION_MAP), with S3's `s3:prefix` in the context of a listing, `StringLike`
and `StringEquals` conditions (a condition on a key the request lacks does not hold), an explicit Deny
winning, and the missing-key rule above. tests/integration/test_s3_iam_server.py holds the server to it.
Everything else (signatures, the other services) stays moto's.
"""

from __future__ import annotations

import fnmatch
import sys
from typing import Any
from urllib.parse import parse_qs, urlsplit

# moto's names that are not IAM's: HeadBucket is authorized as s3:ListBucket
IAM_NAMES = {"HeadBucket": "ListBucket"}


def _statements(policy: Any) -> list[dict[str, Any]]:
    from moto.iam.access_control import IAMPolicy

    statements = IAMPolicy(policy)._policy_json["Statement"]
    return statements if isinstance(statements, list) else [statements]


def _matches(patterns: Any, value: str, case: bool = True) -> bool:
    patterns = patterns if isinstance(patterns, list) else [patterns]
    if not case:  # IAM's action names are case-insensitive; ARNs are not
        value, patterns = value.lower(), [p.lower() for p in patterns]
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def _condition_holds(condition: dict[str, dict[str, Any]], context: dict[str, str]) -> bool:
    for operator, tests in condition.items():
        for key, expected in tests.items():
            if key not in context:
                return False
            values = expected if isinstance(expected, list) else [expected]
            if operator == "StringLike":
                if not any(fnmatch.fnmatchcase(context[key], v) for v in values):
                    return False
            elif operator == "StringEquals":
                if context[key] not in values:
                    return False
            else:  # not needed by the tests: refuse rather than guess
                return False
    return True


def allowed(statements: list[dict[str, Any]], action: str, resource: str, context: dict[str, str]) -> bool:
    """IAM's evaluation of identity policies: an applicable Deny wins, then any applicable Allow."""
    verdict = False
    for s in statements:
        if not (_matches(s.get("Action", []), action, case=False) and _matches(s.get("Resource", "*"), resource)
                and _condition_holds(s.get("Condition", {}), context)):
            continue
        if s.get("Effect") == "Deny":
            return False
        verdict = True
    return verdict


def _log_denial(method: str, action: str, resource: str, context: dict[str, str]) -> None:
    """With S3_IAM_DENIALS set to a file, each refusal is appended to it: what a failing test was refused."""
    import os

    if os.environ.get("S3_IAM_DENIALS"):
        with open(os.environ["S3_IAM_DENIALS"], "a") as log:
            log.write(f"{method} {action} {resource} {context}\n")


def install() -> None:
    from moto.iam.access_control import S3IAMRequest
    from moto.s3.models import s3_backends
    from moto.s3.responses import S3Response

    def iam_action(self: S3Response) -> str:  # what moto's S3 code sets from ACTION_MAP, before authorizing
        action = self.data.get("Action") if isinstance(self.data, dict) else None
        action = str(action[0] if isinstance(action, list) else action)
        return IAM_NAMES.get(action, action)

    def check_action_permitted(self: S3IAMRequest, resource: str) -> None:
        statements = [s for policy in self._access_key.collect_policies() for s in _statements(policy)]
        query = parse_qs(urlsplit(self._path).query, keep_blank_values=True)
        context = {"s3:prefix": query["prefix"][0]} if self._action == "s3:ListBucket" and "prefix" in query else {}
        if not allowed(statements, self._action, resource, context):
            _log_denial(self._method, self._action, resource, context)
            self._raise_access_denied()
        bucket, _, key = resource.split(":::", 1)[1].partition("/")
        if self._action == "s3:GetObject" and self._method in ("GET", "HEAD") and key:
            try:
                missing = s3_backends[self.account_id]["aws"].get_object(bucket, key) is None
            except Exception:
                missing = True
            if missing and not allowed(statements, "s3:ListBucket", f"arn:aws:s3:::{bucket}", {}):
                _log_denial(self._method, "(missing key)", resource, context)
                self._raise_access_denied()

    S3Response._get_action = iam_action  # type: ignore[method-assign]
    S3IAMRequest.check_action_permitted = check_action_permitted  # type: ignore[method-assign]


def main() -> None:
    """`python s3_iam.py [moto_server's arguments]`: moto's server with S3's authorization."""
    install()
    from moto.server import main as serve

    serve(sys.argv[1:])


if __name__ == "__main__":
    main()

