"""The suppression list: erased people, remembered by keyed hash only, kept out of the landing zone.

`<root>/privacy/suppressed.json` holds keyed hashes (stedi.privacy.keys.subject_hash) of each erased email
and device serial number: no address, no serial. A landed record is suppressed when its email (customer),
user (accelerometer) or serialNumber (any source) hashes to an entry. For a line that is not a valid
record, every email- or serial-like string in it is tried, so an erased person does not come back
through the quarantine's raw text either.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stedi.landing.records import NOT_JSON, Duplicated, LandedRecord, decode, is_json_array_file, scan_records
from stedi.privacy.keys import subject_hash

if TYPE_CHECKING:
    from stedi.storage.files import Storage

LIST = "privacy/suppressed.json"  # under the lakehouse root
EMAIL_LIKE = re.compile(rb"[^\s\"',;:<>\[\]{}()\\]+@[^\s\"',;:<>\[\]{}()\\]+")
SERIAL_LIKE = re.compile(rb"[0-9A-Za-z][0-9A-Za-z_-]{5,}")
FIELDS = {"customer": (("email", "email"), ("serial", "serialNumber")),
          "accelerometer": (("email", "user"),),
          "step_trainer": (("serial", "serialNumber"),)}


class Suppressed:
    """The keyed hashes of erased people, and the test of a landed record against them."""

    def __init__(self, storage: Storage, key: bytes | Callable[[], bytes]) -> None:
        """`key`: the pseudonym key, or how to load it (only when a record must be tested: a run that finds
        no new file needs no key)."""
        self.storage = storage
        self._key = key
        try:
            self.hashes: set[str] = set(json.loads(storage.read_bytes(LIST).decode("utf-8"))["hashes"])
        except FileNotFoundError:
            self.hashes = set()
        self.hit: set[str] = set()  # the hashes that matched a record, since this object was made

    @property
    def key(self) -> bytes:
        if callable(self._key):
            self._key = self._key()
        return self._key

    def __bool__(self) -> bool:
        return bool(self.hashes)

    def add(self, kind: str, values: Iterable[str]) -> set[str]:
        """Remember these people (their hashes, returned)."""
        added = {subject_hash(self.key, kind, v) for v in values}
        self.hashes.update(added)
        return added

    def save(self) -> None:
        self.storage.write_bytes(LIST, json.dumps({
            "about": "keyed hashes of erased people (stedi erase); no personal data",
            "hashes": sorted(self.hashes)}, indent=1).encode("utf-8"))

    def _hit(self, kind: str, value: Any) -> bool:
        if not isinstance(value, str):
            return False
        digest = subject_hash(self.key, kind, value)
        if digest in self.hashes:
            self.hit.add(digest)
            return True
        return False

    def record_hit(self, source: str, record: Any) -> bool:
        if not isinstance(record, dict):
            return False
        return any(self._hit(kind, record.get(name)) for kind, name in FIELDS[source])

    def text_hit(self, text: bytes) -> bool:
        """Whether an email- or serial-like string in text that is not a record is an erased person's."""
        text_hits = (self._hit("email", m.decode("utf-8", "replace")) for m in EMAIL_LIKE.findall(text))
        serial_hits = (self._hit("serial", m.decode("utf-8", "replace")) for m in SERIAL_LIKE.findall(text))
        return any(text_hits) or any(serial_hits)

    def suppresses(self, source: str, record: LandedRecord) -> bool:
        """Whether a landed record is an erased person's: by its fields, or, if it is not JSON, by its text."""
        if record.value is NOT_JSON or isinstance(record.value, Duplicated):  # a duplicate's other values count too
            return self.text_hit(record.raw) or (record.value is not NOT_JSON and self.record_hit(source, record.value))
        return self.record_hit(source, record.value)

    def filter_file(self, source: str, src: Path, dst: Path) -> tuple[int, int]:
        """Copy `src` to `dst` without suppressed records; (records kept, records dropped).

        Records are framed by the landing read's own reader (stedi.landing.records.scan_records). JSON Lines
        lose the dropped lines, other bytes untouched (the same file filtered twice gives the same bytes); a
        JSON array file is written back as an array of the kept elements (a damaged one is filtered as lines).
        """
        dropped: set[int] = set()
        elements: list[Any] = []
        damaged = False

        def visit(record: LandedRecord) -> None:
            nonlocal damaged
            if self.suppresses(source, record):
                dropped.add(record.position)
            if array:
                elements.append(record.value)
                damaged = damaged or record.value is NOT_JSON

        array = is_json_array_file(src)
        scan_records(src, visit)
        if array and not damaged:
            keep = [e for i, e in enumerate(elements, start=1) if i not in dropped]
            dst.write_text(json.dumps(keep), encoding="utf-8")
            return len(keep), len(elements) - len(keep)
        if array:  # a damaged array: its lines, as for JSON Lines
            return self._filter_lines(source, src, dst)
        kept = 0
        with src.open("rb") as fin, dst.open("wb") as fout:
            for number, line in enumerate(fin, start=1):
                if number not in dropped:
                    kept += bool(line.strip())
                    fout.write(line)
        return kept, len(dropped)

    def _filter_lines(self, source: str, src: Path, dst: Path) -> tuple[int, int]:
        """A file that is neither JSON Lines nor a valid array: each line tested as a record, else as text."""
        kept = dropped = 0
        with src.open("rb") as fin, dst.open("wb") as fout:
            for line in fin:
                if line.strip() and self.suppresses(source, LandedRecord(0, line, decode(line.rstrip(b"\r\n")))):
                    dropped += 1
                else:
                    kept += bool(line.strip())
                    fout.write(line)
        return kept, dropped
