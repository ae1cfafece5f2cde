from __future__ import annotations

from pathlib import Path

import pytest

from stedi import ConfigError, load_settings


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
    assert load_settings(env={}).catalog_properties() == {"type": "glue", "glue.region": "eu-west-1"}


@pytest.mark.parametrize(("text", "message"), [
    ("home = [", "not valid TOML"),
    ('colour = "blue"\n', "unknown setting(s) colour"),
    ('engine = "oracle"\n', "unknown engine 'oracle'"),
    ('catalog = "sqlite"\n', "[catalog]"),
])
def test_bad_settings_are_named(text: str, message: str) -> None:
    (Path.cwd() / "stedi.toml").write_text(text)
    with pytest.raises(ConfigError, match=r".*" + message.replace("[", r"\[").replace("(", r"\(")
                       .replace(")", r"\)")):
        load_settings(env={})


def test_a_named_config_file_must_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(env={"STEDI_CONFIG": str(tmp_path / "missing.toml")})
