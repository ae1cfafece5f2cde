from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stedi import ConfigError, load_settings
from stedi.config import reference, rules
from stedi.config_rules import Table
from stedi.storage.s3 import S3_KEYS


def test_defaults_put_everything_under_lakehouse_in_the_working_directory() -> None:
    settings = load_settings(env={})
    assert settings.home == str(Path.cwd() / "lakehouse")
    assert settings.engine == "duckdb"
    props = settings.catalog_properties()
    assert props["type"] == "sql"
    assert props["uri"] == f"sqlite:///{Path.cwd() / 'lakehouse' / 'catalog.db'}"
    assert props["warehouse"] == (Path.cwd() / "lakehouse" / "warehouse").as_uri()


def test_precedence_is_toml_then_environment_then_arguments(tmp_path: Path) -> None:
    (Path.cwd() / "stedi.toml").write_text('home = "from-toml"\n[duckdb]\nthreads = 1\n')
    assert load_settings(env={}).home == str(Path.cwd() / "from-toml")
    assert load_settings(env={}).duckdb == {"threads": 1}
    assert load_settings(env={"STEDI_HOME": str(tmp_path / "env")}).home == str(tmp_path / "env")
    assert load_settings(env={"STEDI_HOME": "x"}, home=tmp_path / "arg").home == str(tmp_path / "arg")


def test_relative_home_in_a_config_file_is_relative_to_that_file(tmp_path: Path) -> None:
    config = tmp_path / "conf" / "stedi.toml"
    config.parent.mkdir()
    config.write_text('home = "lake"\n')
    assert load_settings(config, env={}).home == str(tmp_path / "conf" / "lake")


def test_another_catalog_is_chosen_by_configuration_alone() -> None:
    (Path.cwd() / "stedi.toml").write_text('[catalog]\ntype = "glue"\n"glue.region" = "eu-west-1"\n')
    settings = load_settings(env={})
    # the tables go under the root's warehouse/ unless the catalog's own settings say otherwise (issue 18)
    assert settings.catalog_properties() == {"type": "glue", "glue.region": "eu-west-1",
                                             "warehouse": settings.warehouse_uri}
    (Path.cwd() / "stedi.toml").write_text('[catalog]\ntype = "glue"\nwarehouse = "s3://elsewhere/wh"\n')
    assert load_settings(env={}).catalog_properties() == {"type": "glue", "warehouse": "s3://elsewhere/wh"}


def test_a_file_that_is_not_toml_is_named_with_the_parser_s_reason() -> None:
    (Path.cwd() / "stedi.toml").write_text("home = [")
    with pytest.raises(tomllib.TOMLDecodeError) as reason:  # its wording is Python's
        tomllib.loads("home = [")
    with pytest.raises(ConfigError) as raised:
        load_settings(env={})
    assert str(raised.value) == f"config file stedi.toml is not valid TOML: {reason.value}"


@pytest.mark.parametrize(("text", "message"), [
    ('engine = "oracle"\n', "unknown engine 'oracle' in stedi.toml; choose one of: duckdb, spark"),
    ('catalog = "sqlite"\n',
     "catalog = 'sqlite' in stedi.toml is not valid: it must be a [catalog] table of key = value settings"),
])
def test_bad_settings_are_named(text: str, message: str) -> None:
    (Path.cwd() / "stedi.toml").write_text(text)
    with pytest.raises(ConfigError) as raised:
        load_settings(env={})
    assert str(raised.value) == message


# -- every setting's bad value, from each source -----------------------------------------------------------
KNOWN = ("catalog, catalog_file, checks_dir, consent_policy, duckdb, engine, home, lock_wait, max_quarantine_share, "
         "max_record_bytes, optimize_grace_minutes, pseudonym_key_file, query_timeout, s3, snapshot_retention_days, "
         "spark, target_file_size, verify_reconciliation")
SIZE = 'it must be a number of bytes with a unit, such as "256MB", "1GiB" or "500kB"'
IN_A_BUCKET = ('it must be a local path (SQLite cannot keep a catalog in a bucket; for a shared catalog use '
               '[catalog] type = "sql" on PostgreSQL, "glue" or "rest")')
CREDENTIALS = ("Credentials are not set here: they come from the AWS sources (environment, ~/.aws, instance role)")
TABLE = "table of key = value settings"
SCALAR = "it must be a string, a number, true or false"

# (stedi.toml, the message: {where} is " in <the file>")
BAD_IN_THE_FILE = [
    ("home = 3", "home = 3{where} is not valid: it must be a local folder or s3://bucket/prefix"),
    ('engine = "DuckDB"', "unknown engine 'DuckDB'{where}; choose one of: duckdb, spark"),
    ('catalog = "sqlite"', f"catalog = 'sqlite'{{where}} is not valid: it must be a [catalog] {TABLE}"),
    ('[catalog]\nuri = ["a", "b"]', f"[catalog] uri = ['a', 'b']{{where}} is not valid: {SCALAR}"),
    ("duckdb = 2", f"duckdb = 2{{where}} is not valid: it must be a [duckdb] {TABLE}"),
    ('spark = "local[*]"', f"spark = 'local[*]'{{where}} is not valid: it must be a [spark] {TABLE}"),
    ("[spark]\nconf = {a = 1}", f"[spark] conf = {{{{'a': 1}}}}{{where}} is not valid: {SCALAR}"),
    ("target_file_size = 0", "target_file_size = 0{where} is not a size: write a number of bytes with a unit, such "
     'as "256MB", "1GiB" or "500kB"'),
    ("snapshot_retention_days = -1", "snapshot_retention_days = -1{where} is out of range: it must be a number of "
     "days, 0 or more"),
    ("max_quarantine_share = 1.5", "max_quarantine_share = 1.5{where} is out of range: it must be a share from 0 to 1"),
    ("max_record_bytes = 1.5", "max_record_bytes = 1.5{where} is not valid: it must be a whole number of bytes, "
     "1 or more"),
    ('checks_dir = "s3://bucket/checks"', "checks_dir = 's3://bucket/checks'{where} is not valid: it must be a "
     "local path"),
    ("consent_policy = true", "unknown consent_policy True{where}; choose one of: any, since_consent"),
    ('verify_reconciliation = "sometimes"', "unknown verify_reconciliation 'sometimes'{where}; choose one of: never, "
     "always"),
    ('pseudonym_key_file = ["key"]', "pseudonym_key_file = ['key']{where} is not valid: it must be a local path"),
    ('catalog_file = "s3://bucket/catalog.db"', f"catalog_file = 's3://bucket/catalog.db'{{where}} is not valid: "
     f"{IN_A_BUCKET}"),
    ("s3 = true", f"s3 = True{{where}} is not valid: it must be a [s3] {TABLE}"),
    ('[s3]\nendpoint = "ftp://store"', "[s3] endpoint = 'ftp://store'{where} is not valid: it must be an http(s) URL "
     'such as "http://127.0.0.1:9000", or a host name'),
    ('[s3]\nregion = "eu west"', "[s3] region = 'eu west'{where} is not valid: it must be a region name such as "
     '"eu-west-1"'),
    ('[s3]\npath_style = "maybe"', "[s3] path_style = 'maybe'{where} is not valid: it must be true or false"),
    ("[s3]\nprofile = 7", "[s3] profile = 7{where} is not valid: it must be a profile name"),
    ('[s3]\nsecret_access_key = "x"\naccess_key_id = "AKIA"', "unknown [s3] setting(s) access_key_id, "
     f"secret_access_key{{where}}; known: endpoint, region, path_style, profile. {CREDENTIALS}"),
    ('lock_wait = "forever"', "lock_wait = 'forever'{where} is not valid: it must be a number of seconds, 0 or more"),
    ("query_timeout = 0", "query_timeout = 0{where} is out of range: it must be a number of seconds, more than 0"),
    ("optimize_grace_minutes = true", "optimize_grace_minutes = True{where} is not valid: it must be a number of "
     "minutes, 0 or more"),
    ('colour = "blue"', f"unknown setting(s) colour{{where}}; known: {KNOWN}"),
]


@pytest.mark.parametrize(("toml", "message"), BAD_IN_THE_FILE)
def test_a_bad_value_in_the_file_is_one_line_naming_the_setting_and_the_file(tmp_path: Path, toml: str,
                                                                             message: str) -> None:
    config = tmp_path / "stedi.toml"
    config.write_text(toml + "\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config, env={})
    assert str(raised.value) == message.format(where=f" in {config}")


# (the variable, its value, the message)
BAD_IN_THE_ENVIRONMENT = [
    ("STEDI_HOME", "ftp://host/lake", "home = 'ftp://host/lake' from STEDI_HOME is not valid: it must be a local "
     "folder or s3://bucket/prefix"),
    ("STEDI_HOME", "s3://", "home = 's3://' from STEDI_HOME is not valid: it must be a local folder or "
     "s3://bucket/prefix (s3:// names no bucket)"),
    ("STEDI_ENGINE", "oracle", "unknown engine 'oracle' from STEDI_ENGINE; choose one of: duckdb, spark"),
    ("STEDI_TARGET_FILE_SIZE", "12 parsecs", "target_file_size = '12 parsecs' from STEDI_TARGET_FILE_SIZE is not a "
     f"size: write {SIZE.removeprefix('it must be ')}"),
    ("STEDI_SNAPSHOT_RETENTION_DAYS", "soon", "snapshot_retention_days = 'soon' from STEDI_SNAPSHOT_RETENTION_DAYS is "
     "not valid: it must be a number of days, 0 or more"),
    ("STEDI_MAX_QUARANTINE_SHARE", "-0.1", "max_quarantine_share = '-0.1' from STEDI_MAX_QUARANTINE_SHARE is out of "
     "range: it must be a share from 0 to 1"),
    ("STEDI_MAX_RECORD_BYTES", "0", "max_record_bytes = '0' from STEDI_MAX_RECORD_BYTES is out of range: it must be "
     "a whole number of bytes, 1 or more"),
    ("STEDI_CHECKS_DIR", "s3://b/checks", "checks_dir = 's3://b/checks' from STEDI_CHECKS_DIR is not valid: it must "
     "be a local path"),
    ("STEDI_CONSENT_POLICY", "maybe", "unknown consent_policy 'maybe' from STEDI_CONSENT_POLICY; choose one of: any, "
     "since_consent"),
    ("STEDI_VERIFY_RECONCILIATION", "yes", "unknown verify_reconciliation 'yes' from STEDI_VERIFY_RECONCILIATION; "
     "choose one of: never, always"),
    ("STEDI_PSEUDONYM_KEY_FILE", "s3://b/key", "pseudonym_key_file = 's3://b/key' from STEDI_PSEUDONYM_KEY_FILE is "
     "not valid: it must be a local path"),
    ("STEDI_CATALOG_FILE", "s3://b/catalog.db", "catalog_file = 's3://b/catalog.db' from STEDI_CATALOG_FILE is not "
     f"valid: {IN_A_BUCKET}"),
    ("STEDI_LOCK_WAIT", "-3", "lock_wait = '-3' from STEDI_LOCK_WAIT is out of range: it must be a number of "
     "seconds, 0 or more"),
    ("STEDI_QUERY_TIMEOUT", "", "query_timeout = '' from STEDI_QUERY_TIMEOUT is not valid: it must be a number of "
     "seconds, more than 0"),
    ("STEDI_OPTIMIZE_GRACE_MINUTES", "inf", "optimize_grace_minutes = 'inf' from STEDI_OPTIMIZE_GRACE_MINUTES is out "
     "of range: it must be a number of minutes, 0 or more"),
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_IN_THE_ENVIRONMENT)
def test_a_bad_value_in_the_environment_is_one_line_naming_the_setting_and_the_variable(name: str, value: str,
                                                                                        message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env={name: value})
    assert str(raised.value) == message


# (the argument, its value, the message): options and the Python API name the setting itself
BAD_ARGUMENTS: list[tuple[str, Any, str]] = [
    ("home", "s3a://", "home = 's3a://' is not valid: it must be a local folder or s3://bucket/prefix (s3:// names no "
     "bucket)"),
    ("engine", "sparkk", "unknown engine 'sparkk'; choose one of: duckdb, spark"),
    ("catalog", "glue", f"catalog = 'glue' is not valid: it must be a [catalog] {TABLE}"),
    ("duckdb", ["threads"], f"duckdb = ['threads'] is not valid: it must be a [duckdb] {TABLE}"),
    ("spark", {"master": None}, f"[spark] master = None is not valid: {SCALAR}"),
    ("target_file_size", True, f"target_file_size = True is not a size: write {SIZE.removeprefix('it must be ')}"),
    ("snapshot_retention_days", float("inf"), "snapshot_retention_days = inf is out of range: it must be a number "
     "of days, 0 or more"),
    ("max_quarantine_share", "half", "max_quarantine_share = 'half' is not valid: it must be a share from 0 to 1"),
    ("max_record_bytes", True, "max_record_bytes = True is not valid: it must be a whole number of bytes, 1 or more"),
    ("checks_dir", 3, "checks_dir = 3 is not valid: it must be a local path"),
    ("consent_policy", "since consent", "unknown consent_policy 'since consent'; choose one of: any, since_consent"),
    ("verify_reconciliation", True, "unknown verify_reconciliation True; choose one of: never, always"),
    ("pseudonym_key_file", True, "pseudonym_key_file = True is not valid: it must be a local path"),
    ("catalog_file", "s3://lake/x/catalog.db", f"catalog_file = 's3://lake/x/catalog.db' is not valid: {IN_A_BUCKET}"),
    ("s3", {"path_style": 2}, "[s3] path_style = 2 is not valid: it must be true or false"),
    ("s3", {"session_token": "t"}, f"unknown [s3] setting(s) session_token; known: endpoint, region, path_style, "
     f"profile. {CREDENTIALS}"),
    ("lock_wait", -1, "lock_wait = -1 is out of range: it must be a number of seconds, 0 or more"),
    ("query_timeout", float("nan"), "query_timeout = nan is out of range: it must be a number of seconds, more than 0"),
    ("optimize_grace_minutes", "an hour", "optimize_grace_minutes = 'an hour' is not valid: it must be a number of "
     "minutes, 0 or more"),
    ("colour", "blue", f"unknown setting(s) colour; known: {KNOWN}"),
    ("data_dir", "/tmp", f"unknown setting(s) data_dir; known: {KNOWN}"),  # set by stedi only
]


@pytest.mark.parametrize(("name", "value", "message"), BAD_ARGUMENTS)
def test_a_bad_argument_is_one_line_naming_the_setting(name: str, value: Any, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_settings(env={}, **{name: value})
    assert str(raised.value) == message


def test_every_setting_has_a_bad_value_in_the_tests() -> None:
    def named(message: str) -> str:
        return message.removeprefix("unknown ").removeprefix("[").split(" ")[0].rstrip("]")

    for cases in ([named(m) for _, m in BAD_IN_THE_FILE], [named(m) for _, _, m in BAD_IN_THE_ENVIRONMENT],
                  [name for name, _, _ in BAD_ARGUMENTS]):
        assert set(rules()) - {"catalog", "duckdb", "spark", "s3"} <= set(cases)
    assert {"catalog", "duckdb", "spark", "s3"} <= {named(m) for _, m in BAD_IN_THE_FILE}


@given(name=st.sampled_from(sorted(rules())), value=st.one_of(
    st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=12), st.binary(max_size=4),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=4), st.integers() | st.text(max_size=3),
                                                          max_size=2)))
@settings(max_examples=300, deadline=None)
def test_any_value_of_any_setting_gives_settings_or_one_line(name: str, value: Any) -> None:
    """Never a pydantic ValidationError (many lines) nor another exception."""
    try:
        load_settings(env={}, **{name: value})
    except ConfigError as exc:
        assert "\n" not in str(exc) and name in str(exc)


def test_good_values_are_read_as_their_type(tmp_path: Path) -> None:
    config = tmp_path / "stedi.toml"
    config.write_text('home = "s3a://bucket/lake/"\ncatalog_file = "cat.db"\n[s3]\npath_style = "yes"\n'
                      'region = "eu-west-1"\n')
    settings = load_settings(config, env={"STEDI_MAX_RECORD_BYTES": "2048", "STEDI_LOCK_WAIT": "1.5",
                                          "STEDI_CHECKS_DIR": "", "STEDI_TARGET_FILE_SIZE": " 1GiB "},
                             query_timeout=30, pseudonym_key_file="~/key")
    assert (settings.home, settings.catalog_file, settings.s3) == (
        "s3://bucket/lake", tmp_path / "cat.db", {"path_style": True, "region": "eu-west-1"})
    assert (settings.max_record_bytes, settings.lock_wait, settings.query_timeout) == (2048, 1.5, 30.0)
    assert type(settings.max_record_bytes) is int and type(settings.query_timeout) is float
    assert settings.checks_dir is None  # an empty variable leaves the setting unset
    assert settings.target_file_size == "1GiB"
    assert settings.pseudonym_key_file == Path.home() / "key"
    assert settings.data_dir is not None and settings.data_dir.parts[-4:] == ("stedi", "s3", "bucket", "lake")


def test_settings_from_file_environment_and_arguments_are_named_in_that_order(tmp_path: Path) -> None:
    config = tmp_path / "stedi.toml"
    config.write_text("lock_wait = -1\n")
    for env, arguments, where in (({}, {}, f" in {config}"), ({"STEDI_LOCK_WAIT": "-2"}, {}, " from STEDI_LOCK_WAIT"),
                                  ({"STEDI_LOCK_WAIT": "-2"}, {"lock_wait": -3}, "")):
        with pytest.raises(ConfigError) as raised:
            load_settings(config, env=env, **arguments)
        assert str(raised.value).startswith(f"lock_wait = {(arguments or env or {'': -1}).popitem()[1]!r}{where} ")


def test_the_s3_section_knows_what_the_connection_reads() -> None:
    s3 = rules()["s3"]
    assert isinstance(s3, Table) and tuple(s3.known) == S3_KEYS


def test_the_readme_lists_every_setting_as_declared() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    assert reference() in readme, "README.md's table of settings is stale; paste stedi.config.reference():\n" + (
        reference())


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"STEDI_CONFIG": str(tmp_path / "missing.toml")})
