"""stedi.landing.records: the exact landing parser. Every defect class is rejected with its reason, position and
a message naming the field, and the valid records around it are kept with their exact values."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from stedi import LandingError
from stedi.landing.records import KEY_FIELDS, RAW_LIMIT, REASONS, ParsedFile, Rejected, parse_file
from stedi.tables import SOURCES, landing_table

ACC_1 = {"user": "a@x.com", "timestamp": 1655564444103, "x": 1.0, "y": -1.0, "z": 0.5}
ACC_3 = {"user": "b@x.com", "timestamp": 1655564440170, "x": 0.0, "y": 2.25, "z": -1.0}
CUSTOMER = {"customerName": "Ann Bo", "email": "ann@test.com", "phone": "8015551212",
            "birthDay": "1999-01-01", "serialNumber": "sn-1", "registrationDate": 1655564376361,
            "lastUpdateDate": 1655564376362,
            "shareWithResearchAsOfDate": 1655564376363, "shareWithPublicAsOfDate": None,
            "shareWithFriendsAsOfDate": 1655564376364}
STEP = {"sensorReadingTime": 1655564444103, "serialNumber": "sn-1", "distanceFromObject": 218}
VALID = {"customer": CUSTOMER, "accelerometer": ACC_1, "step_trainer": STEP}
MAX_RAW = RAW_LIMIT + len("…[truncated, 1000000000 bytes]")
WS = b" \t\r\n"


# -- helpers -------------------------------------------------------------------------------------------

def write(tmp_path: Path, content: bytes | str, name: str = "f.json") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return path


def line(record: dict[str, Any]) -> bytes:
    return json.dumps(record).encode()


def typed(value: Any) -> tuple[str, Any]:
    """A value with its type, so that 1 and 1.0 (or True and 1) never compare equal."""
    return type(value).__name__, value


def row(parsed: ParsedFile, position: int) -> dict[str, tuple[str, Any]]:
    i = parsed.positions.index(position)
    return {name: typed(values[i]) for name, values in parsed.columns.items()}


def expected(source: str, record: dict[str, Any]) -> dict[str, tuple[str, Any]]:
    """The row a valid record must give: every column in order, null/missing as None, doubles as float."""
    out = {}
    for c in landing_table(source).columns:
        v = record.get(c.name)
        out[c.name] = typed(float(v) if c.type == "double" and v is not None else v)
    return out


def check_invariants(parsed: ParsedFile, source: str) -> None:
    assert parsed.read == len(parsed.positions) + len(parsed.rejected)
    assert list(parsed.columns) == landing_table(source).column_names
    assert all(len(values) == len(parsed.positions) for values in parsed.columns.values())
    for r in parsed.rejected:
        assert r.reason in REASONS and r.message and len(r.raw) <= MAX_RAW


def one_bad(tmp_path: Path, bad: bytes, source: str = "accelerometer") -> Rejected:
    """Parse valid, `bad`, valid lines; check the two valid rows are kept exactly; return the rejection."""
    first, third = (ACC_1, ACC_3) if source == "accelerometer" else (VALID[source], VALID[source])
    parsed = parse_file(write(tmp_path, line(first) + b"\n" + bad + b"\n" + line(third) + b"\n"), source)
    check_invariants(parsed, source)
    assert parsed.read == 3 and parsed.positions == [1, 3] and len(parsed.rejected) == 1
    assert row(parsed, 1) == expected(source, first)
    assert row(parsed, 3) == expected(source, third)
    rejected = parsed.rejected[0]
    assert rejected.position == 2
    text = bad.decode("utf-8", "backslashreplace")
    if len(bad) <= RAW_LIMIT and len(text) <= RAW_LIMIT:
        assert rejected.raw == text
    else:
        assert rejected.raw == text[:RAW_LIMIT] + f"…[truncated, {len(bad)} bytes]"
    return rejected


def with_field(record: dict[str, Any], field: str, literal: str) -> bytes:
    """`record` as JSON with `field` set to a raw JSON literal (which json.dumps could not write)."""
    return line({**record, field: "\0PLACEHOLDER"}).replace(b'"\\u0000PLACEHOLDER"', literal.encode())


# -- valid files ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("source", SOURCES)
def test_valid_records_give_typed_columns_in_table_order(tmp_path: Path, source: str) -> None:
    parsed = parse_file(write(tmp_path, line(VALID[source]) + b"\n"), source)
    check_invariants(parsed, source)
    assert (parsed.read, parsed.positions, parsed.rejected, parsed.unknown_fields) == (1, [1], [], {})
    assert row(parsed, 1) == expected(source, VALID[source])


def test_missing_or_null_non_key_fields_are_none_and_integers_are_doubles_in_double_columns(
        tmp_path: Path) -> None:
    record = {"user": "a@x.com", "timestamp": 5, "x": None, "y": 3}  # z missing, y an integer
    parsed = parse_file(write(tmp_path, line(record)), "accelerometer")
    assert row(parsed, 1) == {"user": ("str", "a@x.com"), "timestamp": ("int", 5), "x": ("NoneType", None),
                              "y": ("float", 3.0), "z": ("NoneType", None)}


def test_bom_crlf_and_no_final_newline(tmp_path: Path) -> None:
    bad = b'{"user": 1, "timestamp": 2}'
    data = b"\xef\xbb\xbf" + line(ACC_1) + b"\r\n" + bad + b"\r\n" + line(ACC_3)
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    check_invariants(parsed, "accelerometer")
    assert parsed.positions == [1, 3]  # the last line, without a newline, is read too
    assert row(parsed, 1) == expected("accelerometer", ACC_1)
    assert row(parsed, 3) == expected("accelerometer", ACC_3)
    assert [(r.position, r.reason, r.raw) for r in parsed.rejected] == [(2, "wrong_type", bad.decode())]
    # Raw text carries neither the BOM nor the CR.
    parsed = parse_file(write(tmp_path, b"\xef\xbb\xbf" + bad + b"\r\n"), "accelerometer")
    assert [(r.position, r.raw) for r in parsed.rejected] == [(1, bad.decode())]


def test_blank_lines_are_not_records_but_advance_the_line_number(tmp_path: Path) -> None:
    data = b"\n   \n" + line(ACC_1) + b"\n\t\r\n\r\n" + line(ACC_3) + b"\n \n"
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    assert (parsed.read, parsed.positions, parsed.rejected) == (2, [3, 6], [])


@pytest.mark.parametrize("content", [b"", b"\xef\xbb\xbf", b"\n\n", b" \r\n\t \r\n"])
def test_empty_and_blank_files_have_no_records(tmp_path: Path, content: bytes) -> None:
    parsed = parse_file(write(tmp_path, content), "customer")
    check_invariants(parsed, "customer")
    assert (parsed.read, parsed.positions, parsed.rejected) == (0, [], [])
    assert parsed.columns == {name: [] for name in landing_table("customer").column_names}


def test_unknown_fields_are_counted_on_valid_records_only_and_left_out(tmp_path: Path) -> None:
    data = b"\n".join([line({**ACC_1, "extra": 1, "note": None}), line({**ACC_3, "extra": "x"}),
                       line({"user": "c@x.com", "timestamp": "1", "extra": 2})])  # invalid: not counted
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    assert parsed.unknown_fields == {"extra": 2, "note": 1}
    assert list(parsed.columns) == ["user", "timestamp", "x", "y", "z"]
    assert row(parsed, 1) == expected("accelerometer", ACC_1)
    assert [r.reason for r in parsed.rejected] == ["wrong_type"]


def test_a_key_named_twice_is_quarantined_whichever_value_is_valid(tmp_path: Path) -> None:
    """Which of two values was meant cannot be known (a decision of the product: docs/decisions)."""
    data = b'{"user": "a", "timestamp": "bad", "timestamp": 7}'
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    assert parsed.positions == [] and parsed.columns["timestamp"] == []
    [r] = parsed.rejected
    assert (r.position, r.reason) == (1, "duplicate_key")
    assert r.message == "the key timestamp is named twice: which value was meant cannot be known"
    array = tmp_path / "array.json"
    array.write_bytes(b'[{"user": "a", "user": "b", "timestamp": 1}, {"user": "c", "timestamp": 2}]')
    parsed = parse_file(array, "accelerometer")
    assert [(r.position, r.reason, r.message) for r in parsed.rejected] == [
        (1, "duplicate_key", "the key user is named twice: which value was meant cannot be known")]
    assert parsed.columns["user"] == ["c"]


# -- one defect class per test -------------------------------------------------------------------------

def test_truncated_json_line(tmp_path: Path) -> None:
    bad = line(ACC_1)[:25]
    r = one_bad(tmp_path, bad)
    assert r.reason == "invalid_json"
    assert r.message.startswith("invalid JSON: ") and "column" in r.message


@pytest.mark.parametrize(("bad", "what"), [(b"[1, 2]", "array of 2 elements"), (b'"abc"', "string 'abc'"),
                                           (b"42", "integer 42"), (b"1.5", "float 1.5"), (b"null", "null"),
                                           (b"true", "boolean true")])
def test_not_an_object(tmp_path: Path, bad: bytes, what: str) -> None:
    r = one_bad(tmp_path, bad)
    assert (r.reason, r.message) == ("not_an_object", f"expected a JSON object, got {what}")


@pytest.mark.parametrize(("source", "key"), [(s, k) for s in SOURCES for k in KEY_FIELDS[s]])
def test_missing_key_field(tmp_path: Path, source: str, key: str) -> None:
    record = {k: v for k, v in VALID[source].items() if k != key}
    r = one_bad(tmp_path, line(record), source)
    assert (r.reason, r.message) == ("missing_key", f"{key}: key field is missing")


@pytest.mark.parametrize(("source", "key"), [(s, k) for s in SOURCES for k in KEY_FIELDS[s]])
def test_null_key_field(tmp_path: Path, source: str, key: str) -> None:
    r = one_bad(tmp_path, line({**VALID[source], key: None}), source)
    assert (r.reason, r.message) == ("missing_key", f"{key}: key field is null")


def test_numeric_string_where_an_integer_is_expected(tmp_path: Path) -> None:
    r = one_bad(tmp_path, line({**ACC_1, "timestamp": "1655564444103"}))
    assert r.reason == "wrong_type"
    assert r.message == "timestamp: expected an integer, got string '1655564444103'"


def test_string_where_a_double_is_expected(tmp_path: Path) -> None:
    r = one_bad(tmp_path, line({**ACC_1, "y": "1.0"}))
    assert (r.reason, r.message) == ("wrong_type", "y: expected a number, got string '1.0'")


@pytest.mark.parametrize(("field", "source"), [("timestamp", "accelerometer"),
                                               ("distanceFromObject", "step_trainer")])
def test_float_where_an_integer_is_expected(tmp_path: Path, field: str, source: str) -> None:
    r = one_bad(tmp_path, line({**VALID[source], field: 1.5}), source)
    assert (r.reason, r.message) == ("wrong_type", f"{field}: expected an integer, got float 1.5")
    r = one_bad(tmp_path, line({**VALID[source], field: 1.0}), source)
    assert r.reason == "wrong_type"
    assert r.message == (f"{field}: expected an integer, got float 1.0 (an integer written as a float; "
                         "values are not coerced)")


@pytest.mark.parametrize(("field", "value", "message"), [
    ("x", True, "x: expected a number, got boolean true"),
    ("timestamp", False, "timestamp: expected an integer, got boolean false"),
    ("user", True, "user: expected a string, got boolean true"),
])
def test_bool_where_a_number_or_string_is_expected(tmp_path: Path, field: str, value: bool,
                                                   message: str) -> None:
    r = one_bad(tmp_path, line({**ACC_1, field: value}))
    assert (r.reason, r.message) == ("wrong_type", message)


@pytest.mark.parametrize(("value", "what"), [(["a@x.com"], "array of 1 element"),
                                             ({"a": 1}, "object with 1 key"), (7, "integer 7")])
def test_list_object_or_number_where_a_string_is_expected(tmp_path: Path, value: Any, what: str) -> None:
    r = one_bad(tmp_path, line({**ACC_1, "user": value}))
    assert (r.reason, r.message) == ("wrong_type", f"user: expected a string, got {what}")


@pytest.mark.parametrize("value", [2**31, -(2**31) - 1])
def test_int32_overflow(tmp_path: Path, value: int) -> None:
    r = one_bad(tmp_path, line({**STEP, "distanceFromObject": value}), "step_trainer")
    assert r.reason == "out_of_range"
    assert r.message == f"distanceFromObject: {value} is outside the int range [-2147483648, 2147483647]"


def test_int32_and_int64_bounds_are_valid(tmp_path: Path) -> None:
    records = [{**STEP, "distanceFromObject": 2**31 - 1, "sensorReadingTime": 2**63 - 1},
               {**STEP, "distanceFromObject": -(2**31), "sensorReadingTime": -(2**63)}]
    parsed = parse_file(write(tmp_path, b"\n".join(line(record) for record in records)), "step_trainer")
    assert parsed.rejected == []
    assert parsed.columns["distanceFromObject"] == [2**31 - 1, -(2**31)]
    assert parsed.columns["sensorReadingTime"] == [2**63 - 1, -(2**63)]


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_int64_overflow(tmp_path: Path, value: int) -> None:
    r = one_bad(tmp_path, line({**ACC_1, "timestamp": value}))
    assert r.reason == "out_of_range"
    assert r.message == (f"timestamp: {value} is outside the bigint range "
                         "[-9223372036854775808, 9223372036854775807]")


def test_integer_literal_beyond_pythons_digit_limit(tmp_path: Path) -> None:
    r = one_bad(tmp_path, with_field(ACC_1, "timestamp", "9" * 5000))
    assert r.reason == "out_of_range"
    assert r.message.startswith("timestamp: integer of 5,000 digits is outside the bigint range")


@pytest.mark.parametrize(("literal", "message"), [
    ("1e400", "x: inf is not a finite number (the JSON number is too large for a double)"),
    ("-1e400", "x: -inf is not a finite number (the JSON number is too large for a double)"),
    ("1" + "0" * 400, "x: integer 10000000000000000000… (401 digits) is too large for a double"),
])
def test_double_out_of_range(tmp_path: Path, literal: str, message: str) -> None:
    r = one_bad(tmp_path, with_field(ACC_1, "x", literal))
    assert (r.reason, r.message) == ("out_of_range", message)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_literals_are_not_json(tmp_path: Path, literal: str) -> None:
    r = one_bad(tmp_path, with_field(ACC_1, "x", literal))
    assert r.reason == "invalid_json"
    assert r.message == f"invalid JSON: {literal} is not a JSON value"


@pytest.mark.parametrize("bad_bytes", [b"\xff", b"\xe2\x82", b"\xc0\xaf", b"\xed\xa0\x80"])
def test_invalid_utf8_byte_sequence(tmp_path: Path, bad_bytes: bytes) -> None:
    bad = b'{"user": "a' + bad_bytes + b'", "timestamp": 1}'
    r = one_bad(tmp_path, bad)
    assert r.reason == "invalid_utf8"
    assert r.message.startswith(f"invalid UTF-8: byte 0x{bad_bytes[0]:02x} at byte 12 of the line")
    assert "\\x" in r.raw


def test_lone_surrogate_escape_in_a_string_is_not_valid_unicode(tmp_path: Path) -> None:
    r = one_bad(tmp_path, b'{"user": "a\\ud800", "timestamp": 1}')
    assert r.reason == "invalid_utf8"
    assert r.message == "user: string has a lone surrogate escape, which is not valid Unicode"


def test_deep_nesting(tmp_path: Path) -> None:
    r = one_bad(tmp_path, b"[" * 100_000 + b"]" * 100_000)
    assert (r.reason, r.message) == ("invalid_json", "invalid JSON: nested too deeply to parse")
    r = one_bad(tmp_path, with_field(ACC_1, "x", "[" * 100_000 + "]" * 100_000))
    assert r.reason == "invalid_json"
    r = one_bad(tmp_path, with_field(ACC_1, "user", "[" * 50 + "]" * 50))  # shallow enough to parse
    assert (r.reason, r.message) == ("wrong_type", "user: expected a string, got array of 1 element")


def test_first_problem_in_reason_order_then_schema_order(tmp_path: Path) -> None:
    lines: list[dict[str, Any]] = [
        {"user": 5, "timestamp": None},  # missing_key beats an earlier wrong_type
        {"user": "a", "timestamp": 2**70, "x": "s"},  # wrong_type beats an earlier out_of_range
        {"user": "a", "timestamp": 1, "x": "s", "y": []},  # the first wrong field in schema order
    ]
    parsed = parse_file(write(tmp_path, b"\n".join(line(record) for record in lines)), "accelerometer")
    assert [(r.position, r.reason, r.message.split(":")[0]) for r in parsed.rejected] == [
        (1, "missing_key", "timestamp"), (2, "wrong_type", "x"), (3, "wrong_type", "x")]
    assert parsed.columns == {name: [] for name in parsed.columns}


def test_raw_text_is_cut_at_raw_limit(tmp_path: Path) -> None:
    bad = line({**ACC_1, "user": "é" * 3000, "timestamp": "x"})
    [r] = parse_file(write(tmp_path, bad), "accelerometer").rejected
    assert r.reason == "wrong_type"
    assert r.raw == bad.decode()[:RAW_LIMIT] + f"…[truncated, {len(bad)} bytes]"


# -- too large records and bounded memory --------------------------------------------------------------

def test_line_longer_than_max_record_bytes_is_too_large(tmp_path: Path) -> None:
    big = line({**ACC_1, "user": "u" * 300})
    data = line(ACC_1) + b"\n" + big + b"\n" + b" " * 500 + b"\n" + line(ACC_3)
    for chunk in (1, 7, 100, 1 << 20):  # inside a chunk and across chunks alike
        parsed = parse_file(write(tmp_path, data), "accelerometer", max_record_bytes=200, chunk_bytes=chunk)
        assert parsed.positions == [1, 4]  # the long blank line 3 is blank, not too large
        assert row(parsed, 4) == expected("accelerometer", ACC_3)
        [r] = parsed.rejected
        assert (r.position, r.reason) == (2, "too_large")
        assert r.message.startswith(f"record of {len(big)} bytes is larger than max_record_bytes (200)")
        assert r.raw == big.decode()


def _peak_memory(path: Path, source: str) -> tuple[ParsedFile, int]:
    tracemalloc.start()
    try:
        parsed = parse_file(path, source)
        return parsed, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_50_mb_line_is_too_large_and_read_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "big.json"
    head, tail = b'{"user": "', b'", "timestamp": 1}\r'
    with path.open("wb") as f:
        f.write(line(ACC_1) + b"\n" + head)
        for _ in range(50):
            f.write(b"u" * (1 << 20))
        f.write(tail + b"\n" + line(ACC_3) + b"\n")
    size = len(head) + (50 << 20) + len(tail)  # the line's bytes without its LF
    parsed, peak = _peak_memory(path, "accelerometer")
    assert peak < 8 << 20, f"peak traced memory {peak:,} bytes for a {size:,}-byte line"
    assert parsed.positions == [1, 3]
    assert row(parsed, 3) == expected("accelerometer", ACC_3)
    [r] = parsed.rejected
    assert (r.position, r.reason) == (2, "too_large")
    assert r.raw == ('{"user": "' + "u" * RAW_LIMIT)[:RAW_LIMIT] + f"…[truncated, {size} bytes]"
    assert r.message.startswith(f"record of {size:,} bytes is larger than max_record_bytes (1,048,576)")


def test_10_mb_of_nul_bytes_without_newline(tmp_path: Path) -> None:
    path = write(tmp_path, b"\0" * (10 << 20))
    parsed, peak = _peak_memory(path, "customer")
    assert peak < 8 << 20
    [r] = parsed.rejected
    assert (parsed.read, r.position, r.reason) == (1, 1, "too_large")
    assert r.raw == "\0" * RAW_LIMIT + f"…[truncated, {10 << 20} bytes]"


# -- JSON array files ----------------------------------------------------------------------------------

def test_json_array_file(tmp_path: Path) -> None:
    data = (b"\xef\xbb\xbf \r\n[\r\n " + line(ACC_1) + b",\r\n 5,\r\n" + line({**ACC_3, "new": 1}) +
            b"\r\n]\r\n")
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    check_invariants(parsed, "accelerometer")
    assert parsed.positions == [1, 3]
    assert row(parsed, 1) == expected("accelerometer", ACC_1)
    assert row(parsed, 3) == expected("accelerometer", ACC_3)
    assert parsed.unknown_fields == {"new": 1}
    assert [(r.position, r.reason, r.message, r.raw) for r in parsed.rejected] == [
        (2, "not_an_object", "expected a JSON object, got integer 5", "5")]


@pytest.mark.parametrize("content", [b"[]", b" [ ] \n", b"\xef\xbb\xbf[\n]"])
def test_empty_json_array(tmp_path: Path, content: bytes) -> None:
    parsed = parse_file(write(tmp_path, content), "step_trainer")
    assert (parsed.read, parsed.rejected) == (0, [])


@pytest.mark.parametrize(("tail", "position", "raw"), [
    (b', {"user": "c@x.com", "times', 3, '{"user": "c@x.com", "times'),  # cut inside element 3
    (b", ", 3, ""),  # cut before element 3
    (b"", 3, ""),  # cut before the closing ]
    (b' {"user": "c"}]', 3, '{"user": "c"}]'),  # missing comma
    (b"] x", 3, "x"),  # junk after the array
    (b', {"x": NaN}, ' + line(ACC_1) + b"]", 3, '{"x": NaN}, ' + line(ACC_1).decode() + "]"),
])
def test_damaged_json_array_keeps_elements_before_the_damage(tmp_path: Path, tail: bytes, position: int,
                                                             raw: str) -> None:
    parsed = parse_file(write(tmp_path, b"[" + line(ACC_1) + b", " + line(ACC_3) + tail), "accelerometer")
    check_invariants(parsed, "accelerometer")
    assert parsed.positions == [1, 2]
    assert row(parsed, 1) == expected("accelerometer", ACC_1)
    assert row(parsed, 2) == expected("accelerometer", ACC_3)
    [r] = parsed.rejected
    assert (r.position, r.reason, r.raw) == (position, "invalid_json", raw)


def test_invalid_utf8_in_a_json_array_element_rejects_that_element_only(tmp_path: Path) -> None:
    data = b'[{"user": "a\xff", "timestamp": 1}, ' + line(ACC_3) + b"]"
    parsed = parse_file(write(tmp_path, data), "accelerometer")
    assert parsed.positions == [2]
    [r] = parsed.rejected
    assert (r.position, r.reason, r.raw) == (1, "invalid_utf8", '{"user": "a\\xff", "timestamp": 1}')


def test_deeply_nested_json_array(tmp_path: Path) -> None:
    parsed = parse_file(write(tmp_path, b"[" + line(ACC_1) + b"," + b"[" * 100_000), "accelerometer")
    assert parsed.positions == [1]
    assert [(r.position, r.reason) for r in parsed.rejected] == [(2, "invalid_json")]


def test_json_array_element_too_large(tmp_path: Path) -> None:
    big = line({**ACC_1, "user": "u" * 300})
    data = b"[" + line(ACC_1) + b", " + big + b", " + line(ACC_3) + b"]"
    parsed = parse_file(write(tmp_path, data), "accelerometer", max_record_bytes=200)
    assert parsed.positions == [1, 3]
    [r] = parsed.rejected
    assert (r.position, r.reason, r.raw) == (2, "too_large", big.decode())
    assert r.message == f"record of {len(big)} bytes is larger than max_record_bytes (200)"


def test_json_array_file_too_large_is_one_record(tmp_path: Path) -> None:
    data = b"[" + b", ".join([line(ACC_1)] * 100) + b"]"
    parsed = parse_file(write(tmp_path, data), "accelerometer", max_record_bytes=64)
    [r] = parsed.rejected
    assert (parsed.read, r.position, r.reason) == (1, 1, "too_large")
    assert r.raw.endswith(f"…[truncated, {len(data)} bytes]")


# -- errors that do raise ------------------------------------------------------------------------------

def test_unreadable_file_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        parse_file(tmp_path / "missing.json", "customer")
    with pytest.raises(IsADirectoryError):
        parse_file(tmp_path, "customer")


def test_unknown_source_raises_landing_error(tmp_path: Path) -> None:
    with pytest.raises(LandingError, match="unknown source 'cars'"):
        parse_file(write(tmp_path, b""), "cars")


# -- property: no record lost, none invented, unmutated records kept exactly ---------------------------

TEXT = st.text(st.characters(codec="utf-8"), max_size=20)
VALUES = {"string": TEXT, "bigint": st.integers(-(2**63), 2**63 - 1), "int": st.integers(-(2**31), 2**31 - 1),
          "double": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**53), 2**53)}
MUTATIONS = ("truncate", "swap_type", "delete_key", "junk", "bad_utf8", "huge_number", "deep", "random_bytes")


def records(source: str) -> st.SearchStrategy[dict[str, Any]]:
    keys = KEY_FIELDS[source]
    columns = landing_table(source).columns
    return st.fixed_dictionaries(
        {c.name: VALUES[c.type] for c in columns if c.name in keys},
        optional={c.name: st.none() | VALUES[c.type] for c in columns if c.name not in keys})


@st.composite
def mutated(draw: st.DrawFn, record: dict[str, Any], ascii_only: bool) -> bytes:
    kind = draw(st.sampled_from(MUTATIONS))
    text = json.dumps(record, ensure_ascii=ascii_only).encode()
    field = draw(st.sampled_from(sorted(record)))
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text) - 1))]
    if kind == "swap_type":
        wrong = draw(st.sampled_from(["1", [1], {"a": 1}, True, 1.5, 1.0]))
        return json.dumps({**record, field: wrong}).encode()
    if kind == "delete_key":
        return json.dumps({k: v for k, v in record.items() if k != field}).encode()
    if kind in ("junk", "bad_utf8"):
        insert = draw(st.binary(min_size=1, max_size=8) if kind == "junk"
                      else st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\xf0\x9f"]))
        at = draw(st.integers(0, len(text)))
        return text[:at] + insert + text[at:]
    if kind == "huge_number":
        return with_field(record, field, draw(st.sampled_from(["1e400", str(2**64), "-" + "9" * 5000])))
    if kind == "deep":
        depth = draw(st.sampled_from([30, 3000]))
        return with_field(record, field, "[" * depth + "]" * depth)
    return draw(st.binary(max_size=40) | st.sampled_from([b'"x"', b"42", b"null", b"true", b"[]"]))


Landed = tuple[str, bytes, dict[int, dict[str, Any]], int, int]


@st.composite
def landed_files(draw: st.DrawFn) -> Landed:
    """(source, file bytes, unmutated records by line number, max_record_bytes, chunk_bytes)."""
    source = draw(st.sampled_from(SOURCES))
    ascii_only = draw(st.booleans())
    crlf = draw(st.sampled_from(["never", "always", "mixed"]))
    body = b""
    clean: dict[int, dict[str, Any]] = {}
    for record in draw(st.lists(records(source), max_size=12)):
        body += draw(st.sampled_from([b"", b"", b"\n", b"  \n", b"\r\n"]))  # blank lines
        lineno = body.count(b"\n") + 1
        if draw(st.integers(0, 3)) == 0:
            body += draw(mutated(record, ascii_only))
        else:
            body += json.dumps(record, ensure_ascii=ascii_only).encode()
            clean[lineno] = record
        body += b"\r\n" if crlf == "always" or (crlf == "mixed" and draw(st.booleans())) else b"\n"
    if body and draw(st.booleans()):
        body = body.rstrip(b"\n").rstrip(b"\r")  # no final newline
    assume(body.lstrip(WS)[:1] != b"[")  # would be read as a JSON array file: not this property
    bom = b"\xef\xbb\xbf" if draw(st.booleans()) else b""
    return (source, bom + body, clean, draw(st.sampled_from([600, 1 << 20])),
            draw(st.sampled_from([1, 5, 64, 4096, 1 << 20])))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(landed=landed_files())
def test_property_every_line_is_one_record_and_clean_lines_are_kept_exactly(
        tmp_path_factory: pytest.TempPathFactory, landed: Landed) -> None:
    source, data, clean, max_bytes, chunk = landed
    path = tmp_path_factory.mktemp("prop") / "f.json"
    path.write_bytes(data)
    parsed = parse_file(path, source, max_record_bytes=max_bytes, chunk_bytes=chunk)
    check_invariants(parsed, source)
    body = data.removeprefix(b"\xef\xbb\xbf")
    physical = body.split(b"\n")
    nonblank = [i for i, text in enumerate(physical, 1) if text.strip(WS)]
    assert parsed.read == len(nonblank)
    assert sorted(parsed.positions + [r.position for r in parsed.rejected]) == nonblank
    rejected = {r.position: r for r in parsed.rejected}
    for lineno, record in clean.items():
        if len(physical[lineno - 1]) > max_bytes:
            assert rejected[lineno].reason == "too_large"
        else:
            assert row(parsed, lineno) == expected(source, record), rejected.get(lineno)


def test_chunk_size_does_not_change_the_result(tmp_path: Path) -> None:
    data = (b"\xef\xbb\xbf" + line({**ACC_1, "user": "é€😀"}) + b"\r\n\n" + b"x" * 300 + b"\n" +
            json.dumps({**ACC_3, "user": "ü" * 50}, ensure_ascii=False).encode() + b"\r\n[1]\n\xff\n" +
            line(ACC_1))
    path = write(tmp_path, data)
    results = [parse_file(path, "accelerometer", max_record_bytes=200, chunk_bytes=chunk)
               for chunk in (1, 2, 3, 7, 1 << 20)]
    assert all(r == results[0] for r in results)
    assert results[0].positions == [1, 4, 7]
    assert [(r.position, r.reason) for r in results[0].rejected] == [(3, "too_large"), (5, "not_an_object"),
                                                                     (6, "invalid_utf8")]
