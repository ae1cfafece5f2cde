from __future__ import annotations

import subprocess
import sys

import stedi


def test_all_is_sorted_and_complete() -> None:
    assert stedi.__all__ == sorted(stedi.__all__)
    for name in stedi.__all__:
        assert hasattr(stedi, name), name


def test_every_error_has_one_root() -> None:
    errors = [getattr(stedi, n) for n in stedi.__all__ if n.endswith("Error")]
    assert len(errors) == 13  # StateError (issue 16) is the newest
    assert all(issubclass(e, stedi.StediError) for e in errors)


def test_importing_the_cli_does_not_import_engines_or_pyiceberg() -> None:
    code = ("import sys, stedi.cli.main; "
            "print(sorted(m for m in ('duckdb', 'pyiceberg', 'pyarrow') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
