"""Settings: one frozen object read from defaults, `stedi.toml`, `STEDI_*` variables and options.

Precedence, lowest first: defaults < stedi.toml < environment < explicit arguments (CLI options).

    # stedi.toml (in the working directory, or named by --config / STEDI_CONFIG)
    home = "./lakehouse"        # the lakehouse root; relative paths are relative to this file
    engine = "duckdb"
    [catalog]                   # pyiceberg catalog properties; default: SQLite inside the root
    type = "glue"
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
from typing import Any

from stedi.errors import ConfigError

CONFIG_FILE = "stedi.toml"
ENGINES = ("duckdb", "spark")
CONSENT_POLICIES = ("any", "since_consent")
NAMESPACE = "stedi"


@dataclass(frozen=True)
class Settings:
    home: Path = Path("lakehouse")
    engine: str = "duckdb"
    catalog: Mapping[str, str] = field(default_factory=dict)  # empty: the embedded SQLite catalog
    duckdb: Mapping[str, Any] = field(default_factory=dict)
    spark: Mapping[str, Any] = field(default_factory=dict)  # Spark configuration, e.g. master
    target_file_size: str = "256MB"
    max_quarantine_share: float = 0.05  # a run fails when more of a source's records are quarantined
    max_record_bytes: int = 1 << 20  # a longer landed record is quarantined as too_large
    checks_dir: Path | None = None  # your own quality checks (<dir>/<source>/<name>.sql); default <home>/checks
    consent_policy: str = "any"  # any: all readings of a consenting customer; since_consent: only later ones
    pseudonym_key_file: Path | None = None  # default ~/.config/stedi/pseudonym.key; STEDI_PSEUDONYM_KEY wins

    @property
    def landing_dir(self) -> Path:
        return self.home / "landing"

    @property
    def warehouse_dir(self) -> Path:
        return self.home / "warehouse"

    @property
    def user_checks_dir(self) -> Path:
        return self.checks_dir or self.home / "checks"

    @property
    def catalog_file(self) -> Path:
        return self.home / "catalog.db"

    def catalog_properties(self) -> dict[str, str]:
        """pyiceberg properties of the catalog: the configured one, else SQLite inside the root."""
        if self.catalog:
            return {k: str(v) for k, v in self.catalog.items()}
        return {
            "type": "sql",
            "uri": f"sqlite:///{self.catalog_file}",
            "warehouse": self.warehouse_dir.as_uri(),
        }


def load_settings(config_file: str | Path | None = None, env: Mapping[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Settings from stedi.toml, the environment and `overrides` (None values are ignored)."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}

    path = Path(config_file or env.get("STEDI_CONFIG") or CONFIG_FILE)
    if config_file is not None or "STEDI_CONFIG" in env or path.exists():
        values.update(_read_toml(path))

    for key in ("home", "engine", "target_file_size", "max_quarantine_share", "max_record_bytes", "checks_dir",
                "consent_policy", "pseudonym_key_file"):
        if f"STEDI_{key.upper()}" in env:
            values[key] = env[f"STEDI_{key.upper()}"]
    spark_master = overrides.pop("spark_master", None) or env.get("STEDI_SPARK_MASTER")
    values.update({k: v for k, v in overrides.items() if v is not None})
    if spark_master:
        values["spark"] = {**values.get("spark", {}), "spark.master": spark_master}

    known = {"home", "engine", "catalog", "duckdb", "spark", "target_file_size", "max_quarantine_share",
             "max_record_bytes", "checks_dir", "consent_policy", "pseudonym_key_file"}
    unknown = set(values) - known
    if unknown:
        raise ConfigError(f"unknown setting(s) {', '.join(sorted(unknown))} in {path}; "
                          f"known: {', '.join(sorted(known))}")
    try:
        if "max_quarantine_share" in values:
            values["max_quarantine_share"] = float(values["max_quarantine_share"])
            if not 0 <= values["max_quarantine_share"] <= 1:
                raise ValueError("a share between 0 and 1")
        if "max_record_bytes" in values:
            values["max_record_bytes"] = int(values["max_record_bytes"])
    except ValueError as exc:
        raise ConfigError(f"max_quarantine_share must be a number from 0 to 1 and max_record_bytes a whole "
                          f"number of bytes ({exc})") from None
    for key in ("checks_dir", "pseudonym_key_file"):
        if values.get(key):
            values[key] = Path(os.path.expanduser(str(values[key]))).absolute()
    if values.get("consent_policy", "any") not in CONSENT_POLICIES:
        raise ConfigError(f"unknown consent_policy {values['consent_policy']!r}; choose one of: "
                          f"{', '.join(CONSENT_POLICIES)}")
    if "home" in values:
        values["home"] = Path(os.path.expanduser(str(values["home"]))).absolute()
    else:
        values["home"] = Path("lakehouse").absolute()
    engine = values.get("engine", "duckdb")
    if engine not in ENGINES:
        raise ConfigError(f"unknown engine {engine!r}; choose one of: {', '.join(ENGINES)}")
    for section in ("catalog", "duckdb", "spark"):
        if not isinstance(values.get(section, {}), Mapping):
            raise ConfigError(f"[{section}] in {path} must be a table of key = value settings")
    return Settings(**values)


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found; create it or unset STEDI_CONFIG") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    if "home" in data:  # a relative home is relative to the file that names it
        data["home"] = str((path.parent / os.path.expanduser(str(data["home"]))).absolute())
    return data


__all__ = ["Settings", "load_settings"]
