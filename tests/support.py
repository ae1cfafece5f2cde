"""Helpers for tests (importable as `support`: tests/ is on pytest's pythonpath)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stedi import Lakehouse

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data" / "stedi"
FIXTURES = Path(__file__).parent / "fixtures"
TEST_KEY = "stedi-test-key-0123456789abcdef"


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def rows(lake: Lakehouse, query: str) -> list[tuple[Any, ...]]:
    """The rows of a query as tuples, in the query's order."""
    table = lake.sql(query)
    return [tuple(r.values()) for r in table.to_pylist()]


def key_of(email: str, key: str = TEST_KEY) -> str:
    """customer_key computed here, independently of stedi: HMAC-SHA256 of the trimmed, lower-cased email."""
    import hashlib
    import hmac

    return hmac.new(key.encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()
