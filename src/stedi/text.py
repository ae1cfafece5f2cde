"""Words for people: a count with its noun in the right number."""

from __future__ import annotations


def plural(n: int, word: str, words: str | None = None) -> str:
    """`1 file`, `2 files`, `1,000 people` (`words` when the plural is not `word` + s)."""
    return f"{n:,} {word if n == 1 else words or word + 's'}"
