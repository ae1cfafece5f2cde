"""The one reader of landed JSON: scan_records frames a file exactly as the landing read does, so erasure
and suppression see the very records the tables were built from."""

from __future__ import annotations

from pathlib import Path

import pytest

from stedi.landing.records import NOT_JSON, LandedRecord, parse_file, scan_records

CUSTOMER = ('{"customerName": "A", "email": "a@x.io", "phone": "1", "birthDay": "1990-01-01", '
            '"serialNumber": "S1", "registrationDate": 1, "lastUpdateDate": 2, "shareWithResearchAsOfDate": 3, '
            '"shareWithPublicAsOfDate": null, "shareWithFriendsAsOfDate": null}')
FILES = {
    "lines": f"{CUSTOMER}\n\n{CUSTOMER}\n".encode(),
    "crlf and bom": b"\xef\xbb\xbf" + f"{CUSTOMER}\r\n   \r\n{CUSTOMER}".encode(),
    "junk lines": f'{CUSTOMER}\nnot json\n[1, 2]\n{{"email": NaN}}\n\xff\xfe\n'.encode("latin-1"),
    "array": f"  [ {CUSTOMER},\n {CUSTOMER} ]\n".encode(),
    "damaged array": f"[{CUSTOMER}, {{\"email\": ".encode(),
    "empty": b"",
}


def scanned(path: Path) -> list[LandedRecord]:
    found: list[LandedRecord] = []
    scan_records(path, found.append)
    return found


@pytest.mark.parametrize("name", FILES)
def test_it_sees_the_records_the_landing_read_sees_at_the_same_positions(tmp_path: Path, name: str) -> None:
    path = tmp_path / "customer-1.json"
    path.write_bytes(FILES[name])
    parsed = parse_file(path, "customer")
    records = scanned(path)
    assert [r.position for r in records] == sorted(parsed.positions + [r.position for r in parsed.rejected])
    valid = set(parsed.positions)
    for record in records:
        if record.position in valid:
            assert isinstance(record.value, dict) and record.value["email"] == "a@x.io"


def test_values_that_are_not_json_are_marked_and_keep_their_text(tmp_path: Path) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(FILES["junk lines"])
    records = {r.position: r for r in scanned(path)}
    assert records[2].value is NOT_JSON and records[2].raw == b"not json"
    assert records[3].value == [1, 2]  # JSON, if not an object: the validator's business, not the reader's
    assert records[4].value is NOT_JSON  # NaN is not JSON
    assert records[5].value is NOT_JSON and records[5].raw == b"\xff\xfe"
