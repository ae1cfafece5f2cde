"""Which source a delivered file belongs to, from its folder or file names."""

from __future__ import annotations

from pathlib import Path

import pytest

from stedi.landing.zone import source_of


@pytest.mark.parametrize(("path", "source"), [
    ("data/customer/landing/customer-1.json", "customer"),
    ("data/accelerometer/a.json", "accelerometer"),
    ("x/step_trainer_landing_copy/step_trainer-9.json", "step_trainer"),
    ("x/landing/readings.json", None),
    ("customer/sub/c.json", None),
])
def test_source_comes_from_folder_or_file_names(path: str, source: str | None) -> None:
    assert source_of(Path(path)) == source
