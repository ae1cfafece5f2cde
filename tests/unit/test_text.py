"""Numbers in messages: singular and plural, and shares that never round to what they are compared with."""

from __future__ import annotations

import pytest

from stedi.text import percent, plural


def test_plural() -> None:
    assert plural(1, "file") == "1 file" and plural(0, "file") == "0 files" and plural(2, "file") == "2 files"
    assert plural(1, "person", "people") == "1 person" and plural(3, "person", "people") == "3 people"
    assert plural(1, "device") == "1 device" and plural(12_345, "row") == "12,345 rows"


@pytest.mark.parametrize(("share", "shown"), [
    (0, "0%"), (0.05, "5%"), (1, "100%"), (2 / 14, "14.3%"), (3 / 956, "0.314%"),
    (1 / 40_981, "0.00244%"),  # a share above a limit of 0% is not shown as 0.0%
    (0.99996, "99.996%"),  # nor one short of all as 100%
])
def test_percent(share: float, shown: str) -> None:
    assert percent(share) == shown
