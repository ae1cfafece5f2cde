"""Settings: one frozen object read from defaults, `stedi.toml`, `STEDI_*` variables and options.

Precedence, lowest first: defaults < stedi.toml < environment < explicit arguments (CLI options).

    # stedi.toml (in the working directory, or named by --config / STEDI_CONFIG)
    home = "./lakehouse"        # the lakehouse root (or s3://bucket/prefix); relative to this file
    engine = "duckdb"
    catalog_file = "…/catalog.db"  # the embedded SQLite catalog; default: in the root, or for an s3://
                                # root in the user data directory (~/.local/share/stedi/s3/<bucket>/…)
    [catalog]                   # pyiceberg catalog properties; default: the embedded SQLite catalog
    type = "glue"
    [s3]                        # optional; see stedi.storage.s3 (credentials come from the AWS sources only)
    endpoint = "http://127.0.0.1:9000"
    [duckdb]
    threads = 2
    memory_limit = "8GB"
    [spark]                     # any Spark configuration (the `spark.` prefix may be left out)
    master = "local[*]"
    "executor.memory" = "4g"
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi.errors import ConfigError
from stedi.storage.s3 import S3_KEYS, is_s3, split

if TYPE_CHECKING:
    from stedi.storage.files import Storage
    from stedi.storage.s3 import S3Connection

CONFIG_FILE = "stedi.toml"
ENGINES = ("duckdb", "spark")
CONSENT_POLICIES = ("any", "since_consent")
NAMESPACE = "stedi"


@dataclass(frozen=True)
class Settings:
    home: str = "lakehouse"  # an absolute local path, or s3://bucket/prefix
    engine: str = "duckdb"
    catalog: Mapping[str, str] = field(default_factory=dict)  # empty: the embedded SQLite catalog
    duckdb: Mapping[str, Any] = field(default_factory=dict)
    spark: Mapping[str, Any] = field(default_factory=dict)  # Spark configuration, e.g. master
    target_file_size: str = "256MB"
    snapshot_retention_days: float = 7.0  # `stedi optimize` expires older snapshots (the current one stays)
    max_quarantine_share: float = 0.05  # a run fails when more of a source's records are quarantined
    max_record_bytes: int = 1 << 20  # a longer landed record is quarantined as too_large
    checks_dir: Path | None = None  # your own quality checks (<dir>/<source>/<name>.sql); default <home>/checks
    consent_policy: str = "any"  # any: all readings of a consenting customer; since_consent: only later ones
    pseudonym_key_file: Path | None = None  # default ~/.config/stedi/pseudonym.key; STEDI_PSEUDONYM_KEY wins
    catalog_file: Path | None = None  # the embedded catalog's SQLite file; see `catalog_path`
    data_dir: Path | None = None  # this machine's folder for an s3:// root; see `state_dir`
    s3: Mapping[str, Any] = field(default_factory=dict)  # [s3]: endpoint, region, path_style, profile
    lock_wait: float = 0.0  # seconds a writer waits for another writer's lock (0: fail at once)
    query_timeout: float | None = None  # seconds a `stedi sql` query may run (None: no limit)
    optimize_grace_minutes: float = 60.0  # `stedi optimize` deletes no file a reader may still be using

    @property
    def remote(self) -> bool:
        """Whether the root is in an S3 bucket."""
        return is_s3(self.home)

    def location(self, *parts: str) -> str:
        """A location under the root: a local path or an s3:// URI."""
        return "/".join([self.home.rstrip("/"), *parts])

    @property
    def warehouse_uri(self) -> str:
        return self.location("warehouse") if self.remote else Path(self.home, "warehouse").as_uri()

    @property
    def state_dir(self) -> Path:
        """Local files of this machine: the root itself, or for an s3:// root a folder in the user data
        directory (the embedded catalog by default, and scratch space)."""
        if not self.remote:
            return Path(self.home)
        return self.data_dir or default_data_dir(self.home, os.environ)

    @property
    def catalog_path(self) -> Path:
        """The embedded SQLite catalog (used when no [catalog] section is configured)."""
        return self.catalog_file or self.state_dir / "catalog.db"

    @property
    def scratch_dir(self) -> Path:
        """Local scratch space: DuckDB's spill files, files on their way in or out."""
        return self.state_dir / ".tmp"

    def s3_connection(self) -> S3Connection:
        from stedi.storage.s3 import connection

        return connection(self.s3)

    def storage(self) -> Storage:
        """The lakehouse's files: the root on the local disk or in the bucket."""
        from stedi.storage.files import Storage

        return Storage(self.home, self.s3_connection() if self.remote else None)

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg properties of the catalog: the configured one, else the embedded SQLite catalog.
        An s3:// root adds the resolved S3 file IO properties (credentials stay in memory)."""
        if self.catalog:
            props = {k: str(v) for k, v in self.catalog.items()}
        else:
            props = {"type": "sql", "uri": f"sqlite:///{self.catalog_path}", "warehouse": self.warehouse_uri}
        if self.remote:
            for key, value in self.s3_connection().iceberg_properties().items():
                props.setdefault(key, value)
        return props


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Settings from stedi.toml, the environment and `overrides` (None values are ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    path = Path(config_file or env.get("STEDI_CONFIG") or CONFIG_FILE)
    if config_file is not None or "STEDI_CONFIG" in env or path.exists():
        values.update(_read_toml(path))

    for key in ("home", "engine", "target_file_size", "max_quarantine_share", "max_record_bytes", "checks_dir",
                "consent_policy", "pseudonym_key_file", "catalog_file", "snapshot_retention_days", "lock_wait",
                "query_timeout", "optimize_grace_minutes"):
        if f"STEDI_{key.upper()}" in env:
            values[key] = env[f"STEDI_{key.upper()}"]
    spark_master = overrides.pop("spark_master", None) or env.get("STEDI_SPARK_MASTER")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if spark_master:
        values["spark"] = {**values.get("spark", {}), "spark.master": spark_master}

    known = {"home", "engine", "catalog", "duckdb", "spark", "target_file_size", "max_quarantine_share",
             "max_record_bytes", "checks_dir", "consent_policy", "pseudonym_key_file", "catalog_file", "s3",
             "snapshot_retention_days", "lock_wait", "query_timeout", "optimize_grace_minutes"}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))} in {path}; "
                          f"known: {', '.join(sorted(known))}")
    for key, (kind, low, high, what) in NUMBERS.items():
        if values.get(key) is not None:
            values[key] = _number(key, values[key], kind, low, high, what)
    if "target_file_size" in values:
        _size("target_file_size", values["target_file_size"])
    for key in ("checks_dir", "pseudonym_key_file", "catalog_file"):
        if values.get(key) and is_s3(str(values[key])):
            what = ("SQLite cannot keep a catalog in a bucket: keep catalog_file on a local disk, or use a "
                    "shared catalog ([catalog] type = \"sql\" on PostgreSQL, \"glue\" or \"rest\")"
                    if key == "catalog_file" else "it must be a local path")
            raise ConfigError(f"{key} = {values[key]}: {what}")
        if values.get(key):
            values[key] = Path(os.path.expanduser(str(values[key]))).absolute()
    if values.get("consent_policy", "any") not in CONSENT_POLICIES:
        raise ConfigError(f"unknown consent_policy {values['consent_policy']!r}; choose one of: "
                          f"{', '.join(CONSENT_POLICIES)}")
    home = str(values.get("home", "lakehouse"))
    if home.startswith("s3a://"):
        home = "s3://" + home[len("s3a://"):]
    if is_s3(home):
        values["home"] = home.rstrip("/")
        values["data_dir"] = default_data_dir(values["home"], env)  # fixed now, not when first used
    elif "://" in home and not home.startswith("file://"):
        raise ConfigError(f"home = {home}: a lakehouse root is a local folder or s3://bucket/prefix")
    else:
        values["home"] = str(Path(os.path.expanduser(home.removeprefix("file://"))).absolute())
    engine = values.get("engine", "duckdb")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    for section in ("catalog", "duckdb", "spark", "s3"):
        if not isinstance(values.get(section, {}), Mapping):
            raise ConfigError(f"[{section}] in {path} must be a table of key = value settings")
    unknown_s3 = set(values.get("s3", {})) - set(S3_KEYS)
    if unknown_s3:
        raise ConfigError(f"unknown [s3] setting(s) {', '.join(sorted(unknown_s3))} in {path}; known: "
                          f"{', '.join(S3_KEYS)}. Credentials are not set here: they come from the AWS sources "
                          "(environment, ~/.aws, instance role)")
    style = values.get("s3", {}).get("path_style")
    if style is not None and str(style).strip().lower() not in ("true", "false", "1", "0", "yes", "no"):
        raise ConfigError(f"[s3] path_style = {style!r} is not valid: it must be true or false")
    return Settings(**values)


# Numeric settings: (type, lowest, highest, what the value is), checked wherever they come from.
NUMBERS: dict[str, tuple[type, float, float, str]] = {
    "max_quarantine_share": (float, 0, 1, "a share from 0 to 1"),
    "max_record_bytes": (int, 1, float("inf"), "a whole number of bytes, at least 1"),
    "snapshot_retention_days": (float, 0, float("inf"), "a number of days, 0 or more"),
    "lock_wait": (float, 0, float("inf"), "a number of seconds, 0 or more"),
    "query_timeout": (float, 0.001, float("inf"), "a number of seconds, more than 0"),
    "optimize_grace_minutes": (float, 0, float("inf"), "a number of minutes, 0 or more"),
}


def _number(key: str, value: Any, kind: type, low: float, high: float, what: str) -> float | int:
    try:
        if isinstance(value, bool) or (kind is int and isinstance(value, float) and not value.is_integer()):
            raise ValueError
        number = kind(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key} = {value!r} is not valid: it must be {what}") from None
    if not low <= number <= high or number != number:  # NaN compares false to everything
        raise ConfigError(f"{key} = {value!r} is out of range: it must be {what}")
    return number  # type: ignore[no-any-return]


def _size(key: str, value: Any) -> int:
    """A size such as `256MB`, `1GiB` or `1048576`, in bytes; a ConfigError naming `key` otherwise."""
    units = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}
    raw = str(value).strip().upper().replace(" ", "")
    number = raw.rstrip("KMGIB")
    try:
        size = int(float(number) * units[raw[len(number):]])
    except (ValueError, KeyError):
        size = 0
    if isinstance(value, bool) or size <= 0:
        raise ConfigError(f"{key} = {value!r} is not a size: write a number of bytes with a unit, such as "
                          "\"256MB\", \"1GiB\" or \"500kB\"")
    return size


def parse_size(text: str) -> int:
    """`256MB`, `1GiB`, `500kb`, `1048576` -> bytes."""
    return _size("size", text)


def default_data_dir(home: str, env: Mapping[str, str]) -> Path:
    """The user data directory's folder for an s3:// root (XDG_DATA_HOME, else ~/.local/share)."""
    bucket, prefix = split(home)
    data = Path(env.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return data / "stedi" / "s3" / bucket / (prefix or "_root")


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; create it or unset STEDI_CONFIG") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    for key in ("home", "catalog_file"):  # a relative path is relative to the file that names it
        if key in data and not is_s3(str(data[key])):
            data[key] = str((path.parent / os.path.expanduser(str(data[key]))).absolute())
    return data


__all__ = ["Settings", "load_settings"]
