"""Numbers in messages and pages, written as a person reads them: "1 file", "2 files", "0.0024%"."""

from __future__ import annotations

import math


def plural(n: int, word: str, words: str | None = None) -> str:
    """`n` with `word`, or `words` (default `word` + "s") unless `n` is 1: plural(1, "person", "people")."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"


def percent(share: float, digits: int = 3) -> str:
    """`share` (0.05 for 5%) with `digits` significant digits, never rounded to nothing: a share above 0
    never reads 0%, nor one below 1 100% (a limit of 0% exceeded by 0.0024% must say so)."""
    value = share * 100
    if value == 0 or not math.isfinite(value):
        return f"{value:g}%"
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(value))))
    if 100 - value > 0:  # 99.996% is not 100%: as many decimals as it takes to tell them apart
        decimals = max(decimals, -math.floor(math.log10(100 - value)))
    text = f"{value:.{decimals}f}"
    return (text.rstrip("0").rstrip(".") if "." in text else text) + "%"
