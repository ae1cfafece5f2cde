"""Settings: one frozen object read from defaults, `stedi.toml`, `STEDI_*` variables and options.

Precedence, lowest first: defaults < stedi.toml < environment < explicit arguments (CLI options).
Each setting is declared once, as a field of `Settings` with its rule (stedi.config_rules): its type,
default, constraint and description. A bad value from any source is a ConfigError of one line naming the
setting, where the value comes from and what it accepts; `reference()` is the README's table of them.

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
from dataclasses import MISSING, dataclass, field, fields, replace
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, get_type_hints

from stedi.config_rules import (
    Endpoint,
    Flag,
    Home,
    LocalPath,
    Number,
    OneOf,
    Rule,
    Scalar,
    Size,
    Table,
    Text,
    size_in_bytes,
)
from stedi.errors import ConfigError
from stedi.storage.s3 import is_s3, split

if TYPE_CHECKING:
    from pydantic import TypeAdapter

    from stedi.storage.files import Storage
    from stedi.storage.s3 import S3Connection

CONFIG_FILE = "stedi.toml"
ENGINES = ("duckdb", "spark")
CONSENT_POLICIES = ("any", "since_consent")
VERIFY_RECONCILIATION = ("never", "always")
NAMESPACE = "stedi"
FILE_RELATIVE = ("home", "catalog_file")  # in stedi.toml, relative to the file (others: to the working dir)
S3_SECTION = Table(
    about="how the bucket is reached; credentials come from the AWS sources only (docs/s3.md)",
    keys=(("endpoint", Endpoint(about="an S3-compatible store (default: AWS, or AWS_ENDPOINT_URL)")),
          ("region", Text('a region name such as "eu-west-1"', about="the bucket's region")),
          ("path_style", Flag(about="the bucket in the path, not the host name (default: true with an endpoint)")),
          ("profile", Text("a profile name", about="a named profile of ~/.aws/config"))),
    unknown_hint=". Credentials are not set here: they come from the AWS sources (environment, ~/.aws, "
                 "instance role)")


# Each field is one setting: its type, its default, and in its annotation the rule that checks it (its
# constraint, what it accepts, what it is for; see stedi.config_rules). Settings stays a frozen dataclass
# rather than a pydantic model: every command (and `stedi --help`) imports this module, which must not
# import pydantic (as long to import as the rest of stedi), and `dataclasses.replace` derives settings.
# load_settings validates through pydantic all the same (a TypeAdapter of this class, built on first use).
@dataclass(frozen=True)
class Settings:
    __pydantic_config__: ClassVar[dict[str, Any]] = {"validate_default": True}  # the default home is made absolute

    home: Annotated[str, Home(about="the lakehouse root; in stedi.toml, relative to the file")] = "lakehouse"
    engine: Annotated[str, OneOf(ENGINES, about="the engine that builds the tables")] = "duckdb"
    catalog: Annotated[Mapping[str, str], Table(
        entries=Scalar(about="a pyiceberg catalog property"), unset="the embedded SQLite catalog",
        about='any pyiceberg catalog: type = "glue", "rest", or "sql" with a uri')] = field(default_factory=dict)
    duckdb: Annotated[Mapping[str, Any], Table(
        about="any DuckDB setting, such as threads or memory_limit (DuckDB checks them as stedi connects)",
    )] = field(default_factory=dict)
    spark: Annotated[Mapping[str, Any], Table(
        entries=Scalar(about="a Spark property"),
        about="any Spark configuration (the spark. prefix may be left out); STEDI_SPARK_MASTER sets master",
    )] = field(default_factory=dict)
    target_file_size: Annotated[str, Size(about="Parquet files are split at about this size")] = "256MB"
    snapshot_retention_days: Annotated[float, Number(
        "a number of days", ge=0, about="`stedi optimize` expires older snapshots (the current one stays)")] = 7.0
    max_quarantine_share: Annotated[float, Number(
        "a share", ge=0, le=1, about="a run fails when more of a source's records are quarantined")] = 0.05
    max_record_bytes: Annotated[int, Number(
        "a whole number of bytes", ge=1, whole=True, about="a longer landed record is quarantined as too_large",
    )] = 1 << 20
    checks_dir: Annotated[Path | None, LocalPath(
        unset="`<home>/checks`", about="your own quality checks, `<dir>/<source>/<name>.sql`")] = None
    consent_policy: Annotated[str, OneOf(
        CONSENT_POLICIES, about="any: every reading of a consenting customer; since_consent: only later ones",
    )] = "any"
    verify_reconciliation: Annotated[str, OneOf(
        VERIFY_RECONCILIATION, about="always: `stedi run` recounts every source from the tables after recording "
                                     "its figures and fails if they disagree (as `stedi reconcile --verify`)",
    )] = "never"
    pseudonym_key_file: Annotated[Path | None, LocalPath(
        unset="`~/.config/stedi/pseudonym.key`",
        about="the pseudonym key, never inside home; STEDI_PSEUDONYM_KEY (the key itself) wins")] = None
    catalog_file: Annotated[Path | None, LocalPath(
        in_bucket='SQLite cannot keep a catalog in a bucket; for a shared catalog use [catalog] type = "sql" '
                  'on PostgreSQL, "glue" or "rest"',
        unset="`<home>/catalog.db`; for an s3:// home `~/.local/share/stedi/s3/<bucket>/<prefix>/catalog.db`",
        about="the embedded catalog's SQLite file; in stedi.toml, relative to the file")] = None
    data_dir: Annotated[Path | None, LocalPath(
        internal=True, env=False, about="this machine's folder for an s3:// root; see `state_dir`")] = None
    s3: Annotated[Mapping[str, Any], S3_SECTION] = field(default_factory=dict)
    lock_wait: Annotated[float, Number(
        "a number of seconds", ge=0, about="a writer waits this long for another writer's lock (0: fail at once)",
    )] = 0.0
    query_timeout: Annotated[float | None, Number(
        "a number of seconds", gt=0, unset="no limit", about="a `stedi sql` query is stopped after this long",
    )] = None
    optimize_grace_minutes: Annotated[float, Number(
        "a number of minutes", ge=0, about="`stedi optimize` deletes no file a reader may still be using")] = 60.0

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
            # Tables go under the root's warehouse/ whatever the catalog, unless its own settings say where
            # (without one, a Glue or REST catalog has no default location and refuses to create a table).
            props.setdefault("warehouse", self.warehouse_uri)
        else:
            props = {"type": "sql", "uri": f"sqlite:///{self.catalog_path}", "warehouse": self.warehouse_uri}
        if self.remote:
            for key, value in self.s3_connection().iceberg_properties().items():
                props.setdefault(key, value)
        return props


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Settings from stedi.toml, the environment and `overrides` (None values are ignored).
    A bad value, from any of them, is a ConfigError of one line that names the setting, where its value
    comes from and what it accepts."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    where: dict[str, str] = {}  # each value's source, for messages: " in <file>", " from STEDI_X" or ""

    path = Path(config_file or env.get("STEDI_CONFIG") or CONFIG_FILE)
    if config_file is not None or "STEDI_CONFIG" in env or path.exists():
        _add(values, where, _read_toml(path), f" in {path}")
    for var, name in env_variables().items():
        if var in env:
            values[name], where[name] = env[var], f" from {var}"
    spark_master = overrides.pop("spark_master", None) or env.get("STEDI_SPARK_MASTER")
    _add(values, where, {k: v for k, v in overrides.items() if v is not None}, "")
    if spark_master:
        spark = values.get("spark", {})
        values["spark"] = {**spark, "spark.master": spark_master} if isinstance(spark, Mapping) else spark

    settings = _validate(values, where)
    if settings.remote:  # this machine's folder is fixed now, not when first used
        settings = replace(settings, data_dir=default_data_dir(settings.home, env))
    return settings


def _add(values: dict[str, Any], where: dict[str, str], layer: Mapping[str, Any], source: str) -> None:
    """One source's values over the lower ones; a name no setting has is refused here, with its source."""
    unknown = set(layer) - set(rules())
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))}{source}; "
                          f"known: {', '.join(sorted(rules()))}")
    values.update(layer)
    where.update(dict.fromkeys(layer, source))


def _validate(values: Mapping[str, Any], where: Mapping[str, str]) -> Settings:
    from pydantic import ValidationError

    try:
        return _adapter().validate_python(values)
    except ValidationError as exc:
        errors = exc.errors()
        name = str(errors[0]["loc"][0])
        mine = [e for e in errors if e["loc"][0] == name]
        raise ConfigError(declared()[name].message(name, values.get(name), where.get(name, ""), mine)) from None


@cache
def _adapter() -> TypeAdapter[Settings]:
    from pydantic import TypeAdapter

    return TypeAdapter(Settings)


@cache
def declared() -> dict[str, Rule]:
    """Each field of Settings with its rule, in the order of the declaration."""
    hints = get_type_hints(Settings, include_extras=True)
    return {f.name: next(m for m in hints[f.name].__metadata__ if isinstance(m, Rule)) for f in fields(Settings)}


@cache
def rules() -> dict[str, Rule]:
    """Each setting a user may set (not the internal ones), with its rule."""
    return {name: rule for name, rule in declared().items() if not rule.internal}


@cache
def env_variables() -> dict[str, str]:
    """STEDI_<NAME> -> the setting it sets."""
    return {f"STEDI_{name.upper()}": name for name, rule in rules().items() if rule.env}


def parse_size(text: str) -> int:
    """`256MB`, `1GiB`, `500kb`, `1048576` -> bytes."""
    size = size_in_bytes(text)
    if size is None:
        raise ConfigError(Size(about="").message("size", text, "", []))
    return size


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
    for key in FILE_RELATIVE:  # a relative path is relative to the file that names it
        if isinstance(data.get(key), str) and data[key] and not is_s3(data[key]):
            data[key] = str((path.parent / os.path.expanduser(data[key])).absolute())
    return data


def reference() -> str:
    """The README's table of settings, from their declarations."""
    rows = ["| setting | environment | default | accepts | what it does |", "|---|---|---|---|---|"]
    for f in fields(Settings):
        rule = rules().get(f.name)
        if rule is not None:
            env = f"`STEDI_{f.name.upper()}`" if rule.env else ""
            rows.append(_row(f"`{f.name}`", env, _shown(f.default) or rule.unset or "", rule))
        if isinstance(rule, Table):
            rows += [_row(f"`{key}` in `[{f.name}]`", "", sub.unset or "", sub) for key, sub in rule.keys]
    return "\n".join(rows)


def _row(name: str, env: str, default: str, rule: Rule) -> str:
    return f"| {name} | {env} | {default} | {rule.accepts} | {rule.about} |"


def _shown(default: Any) -> str:
    if default is None or default is MISSING:  # said by the rule's `unset`
        return ""
    if isinstance(default, str):
        return f'`"{default}"`'
    return f"`{default:g}`" if isinstance(default, float) else f"`{default}`"


__all__ = ["Settings", "load_settings"]
