"""A catalog chosen in stedi.toml is the one a lakehouse builds its tables in."""

from __future__ import annotations

from pathlib import Path

from stedi import Lakehouse

from support import write_jsonl


def test_a_configured_catalog_is_used_instead_of_the_embedded_one(tmp_path: Path) -> None:
    """Selecting a catalog is configuration only: here a SQL catalog kept outside the root."""
    shared = tmp_path / "shared-catalog"
    shared.mkdir()
    (Path.cwd() / "stedi.toml").write_text(
        f'home = "lake"\n[catalog]\ntype = "sql"\nuri = "sqlite:///{shared / "iceberg.db"}"\n'
        f'warehouse = "{(shared / "warehouse").as_uri()}"\n')
    lake = Lakehouse()
    lake.ingest(write_jsonl(tmp_path / "customer" / "c.json", [
        {"customerName": "A", "email": "a@x.com", "serialNumber": "s", "lastUpdateDate": 1,
         "shareWithResearchAsOfDate": 1}]))
    lake.run(["customer_trusted"])
    assert lake.describe("customer_trusted").rows == 1
    assert (shared / "iceberg.db").exists() and not (Path.cwd() / "lake" / "catalog.db").exists()
    assert list((shared / "warehouse").rglob("*.parquet"))
