"""S3 connection settings, resolved once and handed to every component that touches the bucket.

Credentials, region and endpoint come from the standard AWS sources through botocore (environment,
shared config and credentials files, profiles, instance and container roles; `AWS_ENDPOINT_URL` /
`AWS_ENDPOINT_URL_S3` for S3-compatible stores), then the optional `[s3]` section of stedi.toml:

    [s3]
    endpoint = "http://127.0.0.1:9000"   # an S3-compatible store; default: AWS
    region = "eu-west-1"
    path_style = true                    # bucket in the path, not the host name (most local stores)
    profile = "analytics"                # a named profile of ~/.aws/config

pyarrow (the landing zone and table maintenance), pyiceberg (the catalog's file IO) and DuckDB (httpfs)
each get the same resolved values, so they never disagree about which account they talk to.
Credentials live only in memory: they are never written to the lakehouse, the catalog or a log, and
`S3Connection` keeps them out of its repr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from stedi.errors import ConfigError, StorageError

if TYPE_CHECKING:
    import pyarrow.fs as pafs

S3_KEYS = ("endpoint", "region", "path_style", "profile")


def is_s3(uri: str | os.PathLike[str]) -> bool:
    return str(uri).startswith(("s3://", "s3a://"))


def split(uri: str) -> tuple[str, str]:
    """`s3://bucket/some/key` -> (`bucket`, `some/key`)."""
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise ConfigError(f"{uri} names no bucket; write s3://bucket/prefix")
    return parsed.netloc, parsed.path.strip("/")


@dataclass(frozen=True)
class S3Connection:
    region: str
    endpoint: str | None = None  # full URL of an S3-compatible store; None: AWS
    path_style: bool = False
    access_key: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    session_token: str | None = field(default=None, repr=False)

    @property
    def where(self) -> str:
        """The endpoint, for messages (never a credential)."""
        return self.endpoint or f"AWS S3 ({self.region})"

    def filesystem(self) -> pafs.S3FileSystem:
        """A pyarrow S3 file system (one per connection: it holds a pool of HTTP connections)."""
        if self not in _filesystems:
            _filesystems[self] = self._new_filesystem()
        return _filesystems[self]

    def _new_filesystem(self) -> pafs.S3FileSystem:
        import pyarrow.fs as pafs

        options: dict[str, Any] = {"region": self.region, "connect_timeout": 5, "request_timeout": 60,
                                   "retry_strategy": pafs.AwsStandardS3RetryStrategy(max_attempts=3)}
        if self.access_key:
            options.update(access_key=self.access_key, secret_key=self.secret_key,
                           session_token=self.session_token)
        else:
            options["anonymous"] = True
        if self.endpoint:
            url = urlparse(self.endpoint)
            options.update(endpoint_override=url.netloc or url.path, scheme=url.scheme or "https")
        if self.path_style:
            options["force_virtual_addressing"] = False
        return pafs.S3FileSystem(**options)

    def client(self) -> Any:
        """A botocore S3 client, for what pyarrow's file system cannot do (conditional writes)."""
        if self not in _clients:
            import botocore
            import botocore.config
            import botocore.session

            config = botocore.config.Config(
                connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
                s3={"addressing_style": "path" if self.path_style else "virtual"},
                **({} if self.access_key else {"signature_version": botocore.UNSIGNED}))
            session = botocore.session.Session()
            _clients[self] = session.create_client(
                "s3", region_name=self.region, endpoint_url=self.endpoint, config=config,
                aws_access_key_id=self.access_key, aws_secret_access_key=self.secret_key,
                aws_session_token=self.session_token)
        return _clients[self]

    def iceberg_properties(self) -> dict[str, str]:
        """pyiceberg FileIO properties (stedi's PyArrowFileIO: iceberg/fileio.py)."""
        props = {"s3.region": self.region, "py-io-impl": "stedi.iceberg.fileio.FileIO"}
        if self.endpoint:
            props["s3.endpoint"] = self.endpoint
        if self.path_style:
            props["s3.force-virtual-addressing"] = "false"
        if self.access_key:
            props.update({"s3.access-key-id": self.access_key, "s3.secret-access-key": self.secret_key or ""})
        if self.session_token:
            props["s3.session-token"] = self.session_token
        return props

    def duckdb_secret(self) -> str:
        """A temporary (in-memory) DuckDB secret for httpfs."""
        def lit(text: str) -> str:
            return "'" + text.replace("'", "''") + "'"

        parts = ["TYPE s3", f"REGION {lit(self.region)}",
                 f"URL_STYLE {lit('path' if self.path_style else 'vhost')}"]
        if self.access_key:
            parts += [f"KEY_ID {lit(self.access_key)}", f"SECRET {lit(self.secret_key or '')}"]
            if self.session_token:
                parts.append(f"SESSION_TOKEN {lit(self.session_token)}")
        if self.endpoint:
            url = urlparse(self.endpoint)
            parts += [f"ENDPOINT {lit(url.netloc or url.path)}", f"USE_SSL {str(url.scheme != 'http').lower()}"]
        return f"CREATE OR REPLACE TEMPORARY SECRET stedi_s3 ({', '.join(parts)})"


_cache: dict[tuple[Any, ...], S3Connection] = {}
_filesystems: dict[S3Connection, pafs.S3FileSystem] = {}
_clients: dict[S3Connection, Any] = {}


def connection(options: Mapping[str, Any], env: Mapping[str, str] | None = None) -> S3Connection:
    """The S3 connection from the AWS sources and the `[s3]` options (which win)."""
    env = os.environ if env is None else env
    unknown = set(options) - set(S3_KEYS)
    if unknown:
        raise ConfigError(f"unknown [s3] setting(s) {', '.join(sorted(unknown))}; known: {', '.join(S3_KEYS)}")
    cache_key = (tuple(sorted((k, str(v)) for k, v in options.items())),
                 tuple(sorted((k, v) for k, v in env.items() if k.startswith("AWS_"))))
    if cache_key in _cache:
        return _cache[cache_key]
    try:
        import botocore.exceptions
        import botocore.session
    except ImportError:  # pragma: no cover - botocore is a dependency
        raise ConfigError("an s3:// location needs botocore: pip install botocore") from None
    try:
        session = botocore.session.Session(profile=options.get("profile"))
        credentials = session.get_credentials()
        frozen = credentials.get_frozen_credentials() if credentials is not None else None
        region = str(options.get("region") or session.get_config_variable("region") or "us-east-1")
    except botocore.exceptions.BotoCoreError as exc:
        raise StorageError(f"cannot read the AWS settings: {exc}") from None
    endpoint = (options.get("endpoint") or env.get("AWS_ENDPOINT_URL_S3") or env.get("AWS_ENDPOINT_URL")
                or _configured_endpoint(session))
    if endpoint and "://" not in str(endpoint):
        endpoint = f"https://{endpoint}"
    path_style = options.get("path_style")
    if isinstance(path_style, str):
        path_style = path_style.strip().lower() in ("1", "true", "yes")
    conn = S3Connection(
        region=region, endpoint=str(endpoint).rstrip("/") if endpoint else None,
        # S3-compatible stores mostly serve buckets by path; AWS by host name.
        path_style=bool(endpoint) if path_style is None else bool(path_style),
        access_key=frozen.access_key if frozen else None, secret_key=frozen.secret_key if frozen else None,
        session_token=frozen.token if frozen else None)
    _cache[cache_key] = conn
    return conn


def _configured_endpoint(session: Any) -> str | None:
    """`endpoint_url` from the profile in ~/.aws/config (the global or the s3 services section)."""
    try:
        profile = session.get_scoped_config()
    except Exception:
        return None
    services = profile.get("s3")
    if isinstance(services, dict) and services.get("endpoint_url"):
        return str(services["endpoint_url"])
    return str(profile["endpoint_url"]) if profile.get("endpoint_url") else None


def is_denied(exc: OSError) -> bool:
    """Whether S3 refused the request (pyarrow and DuckDB report it as text)."""
    return any(s in str(exc) for s in ("ACCESS_DENIED", "AccessDenied", "403"))


def listed(fs: pafs.FileSystem, path: str) -> bool:
    """Whether the object at `path` (`bucket/key`) is in its folder's listing. S3 answers a GET or HEAD of a
    missing key with 403, not 404, when the caller's s3:ListBucket does not cover that request, as the role
    `stedi deploy aws` writes does not (its ListBucket is limited to the root's prefix, and an object request
    names no prefix): the listing, which that role may make, tells a missing key from a refused one. A
    refused listing raises OSError: access is denied indeed."""
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(path.rsplit("/", 1)[0], allow_not_found=True, recursive=False))
    return any(info.path == path for info in infos)


def explain(exc: OSError, what: str, conn: S3Connection | None) -> StorageError:
    """A clear StorageError for an S3 failure reported by pyarrow (or DuckDB) as text."""
    text = str(exc)
    where = conn.where if conn else "S3"
    if "NO_SUCH_BUCKET" in text or "NoSuchBucket" in text or "bucket does not exist" in text:
        return StorageError(f"cannot use {what}: the bucket does not exist at {where}; create it first "
                            "(aws s3 mb s3://BUCKET) or fix the bucket name")
    if any(s in text for s in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ACCESS_DENIED", "AccessDenied",
                               "403", "INVALID_ACCESS_KEY", "InvalidToken", "ExpiredToken", "forbidden")):
        return StorageError(f"cannot use {what}: access denied by {where}; check the AWS credentials "
                            "(AWS_ACCESS_KEY_ID / AWS_PROFILE / the instance role) and their permissions")
    if any(s in text for s in ("NETWORK_CONNECTION", "Could not connect", "Couldn't connect", "Connection refused",
                               "Could not resolve", "Timeout", "timed out", "Could not establish")):
        return StorageError(f"cannot use {what}: the S3 endpoint {where} cannot be reached; check "
                            "AWS_ENDPOINT_URL / [s3] endpoint and the network")
    first = (text.strip().splitlines() or [""])[0][:300]
    return StorageError(f"cannot use {what} at {where}: {first}")
