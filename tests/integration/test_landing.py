from __future__ import annotations

import json
from pathlib import Path

import pytest

from stedi import Lakehouse, LandingError

from support import write_jsonl

CUSTOMER = {"customerName": "A B", "email": "a@x.com", "phone": "1", "birthDay": "2000-01-01",
            "serialNumber": "s1", "registrationDate": 1, "lastUpdateDate": 1, "shareWithResearchAsOfDate": 1}


def test_ingest_lands_files_by_source_and_skips_other_files(lake: Lakehouse, tmp_path: Path) -> None:
    src = tmp_path / "starter"
    write_jsonl(src / "customer" / "landing" / "customer-1.json", [CUSTOMER])
    write_jsonl(src / "accelerometer" / "a.json", [{"user": "a@x.com", "timestamp": 1, "x": 0, "y": 0, "z": 0}])
    (src / "README.md").write_text("about the data")
    write_jsonl(src / "misc" / "other.json", [{}])
    report = lake.ingest(src)
    assert sorted((f.source, f.name) for f in report.landed) == [("accelerometer", "a.json"),
                                                               ("customer", "customer-1.json")]
    assert sorted(Path(p).name for p, _ in report.skipped) == ["README.md", "other.json"]
    landed = Path(lake.settings.home, "landing")
    assert (landed / "customer" / "customer-1.json").read_bytes() == \
        (src / "customer" / "landing" / "customer-1.json").read_bytes()
    manifest = json.loads((landed / "manifest.json").read_text())["files"]
    assert {(e["source"], e["name"], e["size"]) for e in manifest} == {
        ("accelerometer", "a.json", (src / "accelerometer" / "a.json").stat().st_size),
        ("customer", "customer-1.json", (src / "customer" / "landing" / "customer-1.json").stat().st_size)}
    assert all(len(e["sha256"]) == 64 and e["landed_at"] for e in manifest)


def test_ingest_is_idempotent_and_detects_the_same_content_under_another_name(lake: Lakehouse,
                                                                               tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "customer" / "c1.json", [CUSTOMER])
    assert len(lake.ingest(first).landed) == 1
    again = lake.ingest(first)
    assert again.landed == [] and again.unchanged == [(str(first), "already landed as customer/c1.json")]
    copy = tmp_path / "elsewhere" / "customer" / "copy.json"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(first.read_bytes())
    assert lake.ingest(copy).landed == []
    assert [f.name for f in lake.landed_files()] == ["c1.json"]


def test_a_different_file_under_a_landed_name_is_refused_and_nothing_lands(lake: Lakehouse,
                                                                          tmp_path: Path) -> None:
    lake.ingest(write_jsonl(tmp_path / "v1" / "customer" / "c.json", [CUSTOMER]))
    new_ok = write_jsonl(tmp_path / "v2" / "customer" / "other.json", [{**CUSTOMER, "email": "b@x.com"}])
    changed = write_jsonl(tmp_path / "v2" / "customer" / "c.json", [{**CUSTOMER, "phone": "2"}])
    with pytest.raises(LandingError, match=r"never overwritten.*c\.json differs from the landed customer/c\.json"):
        lake.ingest(new_ok, changed)
    assert [f.name for f in lake.landed_files()] == ["c.json"]
    assert json.loads((Path(lake.settings.home, "landing") / "customer" / "c.json").read_text())["phone"] == "1"


def test_source_option_overrides_folder_names(lake: Lakehouse, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "drop" / "today.json", [CUSTOMER])
    assert lake.ingest(path).skipped and not lake.landed_files()
    assert [(f.source, f.name) for f in lake.ingest(path, source="customer").landed] == [("customer", "today.json")]
    with pytest.raises(LandingError, match="unknown source 'orders'"):
        lake.ingest(path, source="orders")


def test_missing_path_is_an_error(lake: Lakehouse, tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="does not exist"):
        lake.ingest(tmp_path / "nope")


def test_files_dropped_into_the_landing_zone_by_hand_are_adopted(lake: Lakehouse) -> None:
    write_jsonl(Path(lake.settings.home, "landing") / "customer" / "manual.json", [CUSTOMER])
    [entry] = lake.landed_files()
    assert (entry.source, entry.name, entry.origin) == ("customer", "manual.json", "found in the landing zone")
    lake.run(["customer_trusted"])
    assert lake.describe("customer_trusted").rows == 1
