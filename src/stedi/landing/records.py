"""The exact, slow path of the landing read: one landed file -> typed valid rows + rejected records.

`parse_file` reads a JSON Lines file (one object per line) or a file holding one JSON array of
objects, validates every record against the source's landing schema (`stedi.tables`) and returns the
valid rows column by column plus every other record with a reason from `REASONS`. Nothing is ever
silently dropped or coerced: `read == len(positions) + len(rejected)`, and a value is kept only if its
JSON type is exactly the column's type ("123" is not an integer, 1.0 is not an integer either).

JSON Lines files are streamed in `chunk_bytes` chunks; a line longer than `max_record_bytes` is
rejected as `too_large` while it is skipped, so memory stays bounded whatever the file holds. Array
files are parsed whole (they are small in practice) unless larger than `ARRAY_FILE_LIMIT` records'
worth of bytes.

A record gets one reason: the first problem found in the order of `REASONS` (a too-large record is
never read, so `too_large` is known first); within one reason, the first field in schema order.
"""

from __future__ import annotations

import codecs
import json
import math
import os
import re
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import IO, Any, Final, Protocol

from stedi.errors import LandingError
from stedi.tables import SOURCES, landing_table

REASONS: Final = ("invalid_utf8", "invalid_json", "not_an_object", "duplicate_key", "missing_key", "wrong_type",
                  "out_of_range", "too_large")
# Bump when a file already read would now be read differently: landing tables are then read again.
# 2: a record naming a key twice is quarantined (duplicate_key); before, its last value was taken.
VERSION: Final = "2"
RAW_LIMIT: Final = 1024  # characters of a rejected record's text kept in `Rejected.raw`
ARRAY_FILE_LIMIT: Final = 64  # an array file may be at most this many times max_record_bytes

# The fields every record must carry, from the one schema list.
KEY_FIELDS: dict[str, tuple[str, ...]] = {source: landing_table(source).keys for source in SOURCES}


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid row, and why."""

    position: int  # 1-based line number (JSON Lines) or 1-based element index (JSON array file)
    reason: str  # one of REASONS
    message: str  # names the field and what is wrong with it
    raw: str  # the record's text (bad bytes backslash-escaped), at most RAW_LIMIT characters + a marker


@dataclass
class ParsedFile:
    """The valid rows of one file, column by column, and its rejected records."""

    columns: dict[str, list[Any]]  # column -> values (str/int/float/None), table column order, valid rows
    positions: list[int]  # the position of each valid row, in the same order
    rejected: list[Rejected]
    read: int  # records seen = len(positions) + len(rejected); blank lines are not records
    unknown_fields: dict[str, int]  # field not in the schema -> number of valid records carrying it


_UTF8, _JSON, _NOT_OBJECT, _DUPLICATE_KEY, _MISSING_KEY, _WRONG_TYPE, _OUT_OF_RANGE, _TOO_LARGE = range(8)
_BOM = b"\xef\xbb\xbf"
_WS = b" \t\r\n"  # JSON's whitespace: a line of only these is blank, not a record
_WS_RE = re.compile(r"[ \t\r\n]*")
_MISSING = object()
_TITLE = {_UTF8: "invalid UTF-8", _JSON: "invalid JSON"}
_STRING, _BIGINT, _INT, _DOUBLE = range(4)
_KINDS = {"string": _STRING, "bigint": _BIGINT, "int": _INT, "double": _DOUBLE}
_EXPECTED = {_STRING: "a string", _BIGINT: "an integer", _INT: "an integer", _DOUBLE: "a number"}
_RANGES = {_BIGINT: (-(1 << 63), (1 << 63) - 1), _INT: (-(1 << 31), (1 << 31) - 1)}


class _RefusedConstant(ValueError):
    """NaN/Infinity: Python's json accepts them, JSON does not."""


class _BigInt:
    """An integer literal too long for int() (sys.get_int_max_str_digits): out of every range anyway."""

    __slots__ = ("digits",)

    def __init__(self, text: str) -> None:
        self.digits = len(text.lstrip("-"))


def _refuse_constant(name: str) -> Any:
    raise _RefusedConstant(f"{name} is not a JSON value")


def _parse_big_int(text: str) -> int | _BigInt:
    try:
        return int(text)
    except ValueError:
        return _BigInt(text)


class Duplicated(dict[str, Any]):
    """A JSON object that names a key twice ({"x": 1, "x": 2}): which value was meant cannot be known, so
    such a record is quarantined (duplicate_key), and erasure and suppression read all of its text."""

    twice: tuple[str, ...] = ()


def _members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object from its members, marked when a key comes twice (json's dict keeps only the last)."""
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    marked = Duplicated(obj)
    marked.twice = tuple(sorted(k for k, n in Counter(k for k, _ in pairs).items() if n > 1))
    return marked


# The fast decoder runs on every record; the big-int one only after the fast one hit int()'s limit, so
# the common path pays no Python-level parse_int call. Both see each object's members, to catch a key
# named twice (about 0.4 us a record).
_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, object_pairs_hook=_members)
_BIG_DECODER = json.JSONDecoder(parse_constant=_refuse_constant, parse_int=_parse_big_int,
                                object_pairs_hook=_members)
_SCAN: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


NOT_JSON: Final = object()  # the value of a landed record that is not JSON (LandedRecord.value)


@dataclass(frozen=True)
class LandedRecord:
    """One record of a landed file as the landing read frames it, before any validation."""

    position: int  # as Rejected.position: the line number, or the element's index in an array file
    raw: bytes  # the line, or the element's text (a damaged array's rest: its first RAW_LIMIT characters)
    value: Any  # the decoded JSON value, or NOT_JSON


def scan_records(path: str | Path, visit: Callable[[LandedRecord], None], *, chunk_bytes: int = 1 << 20) -> None:
    """Every record of a landed file, framed exactly as `parse_file` frames it (JSON Lines or one JSON
    array, a byte-order mark skipped, blank lines not records), handed to `visit` one at a time: the one
    reader of landed JSON for the landing read, erasure and suppression alike. No size limit: a caller
    that must bound memory per record uses parse_file."""
    sink = _Visit(visit)
    with open(path, "rb") as f:
        if _starts_with_bracket(f, chunk_bytes):
            _parse_array(f, sink, sys.maxsize // ARRAY_FILE_LIMIT)
        else:
            _parse_lines(f, sink, sys.maxsize, chunk_bytes)


def parse_file(path: str | Path, source: str, *, max_record_bytes: int = 1 << 20,
               chunk_bytes: int = 1 << 20) -> ParsedFile:
    """Parse and validate one landed file of `source` record by record.

    The file is JSON Lines, or one JSON array of objects when its first non-whitespace byte (after an
    optional UTF-8 BOM) is `[`. Bad content never raises: it becomes `Rejected` records. Only an
    unreadable file raises (OSError); an unknown source raises LandingError.

    JSON Lines: positions are physical line numbers; blank lines are skipped but counted. Memory stays
    around 2 x chunk_bytes + max_record_bytes whatever the file holds.
    JSON array: positions are element indexes. Where the array is damaged (truncated, a missing comma,
    an element that is not JSON, content after the closing `]`), the elements before are kept and the
    rest of the file becomes one `invalid_json` record at the next index, even when that rest is empty
    (a missing `]`), so the damage is never silent. A file over ARRAY_FILE_LIMIT x max_record_bytes is
    one `too_large` record.
    """
    if source not in SOURCES:
        raise LandingError(f"unknown source {source!r}; choose one of: {', '.join(SOURCES)}")
    max_record_bytes = max(1, max_record_bytes)
    chunk_bytes = max(1, chunk_bytes)
    out = _Builder(source, max_record_bytes)
    with open(path, "rb") as f:
        if _starts_with_bracket(f, chunk_bytes):
            _parse_array(f, out, max_record_bytes)
        else:
            _parse_lines(f, out, max_record_bytes, chunk_bytes)
    return out.result()


class _Sink(Protocol):
    """What the framing of a landed file hands each record to: the validator or scan_records."""

    def line(self, position: int, data: bytes) -> None: ...

    def element(self, position: int, value: Any, span: str) -> None: ...

    def reject(self, position: int, reason: int, message: str, raw: str) -> None: ...

    def too_large(self, position: int, over: _Oversize) -> None: ...


def _starts_with_bracket(f: IO[bytes], chunk_bytes: int) -> bool:
    """Whether the first significant byte is `[`; leaves `f` just after the BOM (if any)."""
    start = 3 if f.read(3) == _BOM else 0
    f.seek(start)
    first = b""
    while not first and (chunk := f.read(chunk_bytes)):  # chunk by chunk: leading blanks may be huge
        first = chunk.lstrip(_WS)[:1]
    f.seek(start)
    return first == b"["


def is_json_array_file(path: str | Path) -> bool:
    """Whether a landed file is one JSON array (its first significant byte, after a BOM, is `[`)."""
    with open(path, "rb") as f:
        return _starts_with_bracket(f, 1 << 16)


# -- JSON Lines --------------------------------------------------------------------------------------

class _Oversize:
    """What is kept of a line too large to hold: its first bytes, its size and whether it is blank."""

    __slots__ = ("head", "size", "blank")

    def __init__(self) -> None:
        self.head = bytearray()
        self.size = 0
        self.blank = True

    def add(self, piece: bytes) -> None:
        if len(self.head) < RAW_LIMIT:
            self.head += piece[:RAW_LIMIT - len(self.head)]
        self.size += len(piece)
        if self.blank and piece.strip(_WS):
            self.blank = False


def _parse_lines(f: IO[bytes], out: _Sink, max_bytes: int, chunk_bytes: int) -> None:
    lineno = 0  # physical line number of the last complete line; blank lines count too
    # The start of the current line, from earlier chunks (a bytearray: with tiny chunks, a list of
    # pieces would cost far more than the bytes themselves).
    pending = bytearray()
    over: _Oversize | None = None  # set while skipping the rest of a too-large line
    line_at = out.line
    while chunk := f.read(chunk_bytes):
        parts = chunk.split(b"\n")
        tail = parts.pop()  # the start of the next line (b"" if the chunk ends with a newline)
        if parts:
            # parts[0] ends the current line; it may continue pieces of earlier chunks.
            first = parts[0]
            lineno += 1
            if over is None and len(pending) + len(first) > max_bytes:
                over = _Oversize()
                over.add(bytes(pending))
            if over is not None:
                over.add(first)
                out.too_large(lineno, over)
                over = None
            else:
                if pending:
                    pending += first
                    first = bytes(pending)
                if first[:1] == b"{" or first.strip(_WS):
                    line_at(lineno, first)
            pending = bytearray()
            for line in islice(parts, 1, None):
                lineno += 1
                if len(line) > max_bytes:
                    big = _Oversize()
                    big.add(line)
                    out.too_large(lineno, big)
                elif line[:1] == b"{" or line.strip(_WS):  # `{` first: skip the strip for usual lines
                    line_at(lineno, line)
            del parts, first
        if tail:
            if over is None and len(pending) + len(tail) > max_bytes:
                # Too large: stop accumulating, keep only its head and count the rest as it streams by.
                over = _Oversize()
                over.add(bytes(pending))
                pending = bytearray()
            if over is not None:
                over.add(tail)
            else:
                pending += tail
    # The last line had no newline.
    if over is not None:
        out.too_large(lineno + 1, over)
    elif pending:
        last = bytes(pending)
        if last.strip(_WS):
            out.line(lineno + 1, last)


# -- JSON array files --------------------------------------------------------------------------------

def _parse_array(f: IO[bytes], out: _Sink, max_bytes: int) -> None:
    start = f.tell()
    size = os.fstat(f.fileno()).st_size - start
    if size > ARRAY_FILE_LIMIT * max_bytes:
        out.reject(1, _TOO_LARGE, f"JSON array file of {size:,} bytes is larger than {ARRAY_FILE_LIMIT} x "
                   f"max_record_bytes ({ARRAY_FILE_LIMIT * max_bytes:,} bytes); convert it to JSON Lines",
                   _raw_bytes(f.read(RAW_LIMIT), size))
        return
    # surrogateescape keeps bad bytes as U+DC80..U+DCFF, so one bad byte rejects one element, not the file.
    text = f.read().decode("utf-8", "surrogateescape")
    n = len(text)
    pos = _skip_ws(text, 0) + 1  # just after the `[`
    index = 0  # elements seen
    pos = _skip_ws(text, pos)
    closed = pos < n and text[pos] == "]"
    if closed:
        pos += 1
    while not closed:
        index += 1
        if pos >= n:
            out.reject(index, _JSON, f"invalid JSON: the array is truncated, the file ends before element "
                       f"{index} or the closing ']'", "")
            return
        start_el = pos
        try:
            try:
                value, end = _DECODER.raw_decode(text, pos)
            except (json.JSONDecodeError, _RefusedConstant):
                raise
            except ValueError:  # an integer literal longer than int() accepts
                value, end = _BIG_DECODER.raw_decode(text, pos)
        except (ValueError, RecursionError) as exc:
            rest = _raw_text(text[start_el:])
            whole = "the rest of the file from there is rejected as one record"
            if isinstance(exc, json.JSONDecodeError) and _is_bad_byte(text, exc.pos):
                out.reject(index, _UTF8, f"invalid UTF-8: {_char(text[exc.pos])} in element {index}; {whole}",
                           rest)
            else:
                out.reject(index, _JSON, f"{_decode_error(exc)} in element {index}; {whole}", rest)
            return
        span = text[start_el:end]
        out.element(index, value, span)
        pos = _skip_ws(text, end)
        if pos >= n:
            out.reject(index + 1, _JSON, f"invalid JSON: the array is truncated, the file ends after element "
                       f"{index} without ',' or ']'", "")
            return
        sep = text[pos]
        if sep == "]":
            pos += 1
            closed = True
        elif sep == ",":
            pos = _skip_ws(text, pos + 1)
        else:
            reason = _UTF8 if _is_bad_byte(text, pos) else _JSON
            out.reject(index + 1, reason, f"{_TITLE[reason]}: expected ',' or ']' after element {index}, got "
                       f"{_char(text[pos])}; the rest of the file from there is rejected as one record",
                       _raw_text(text[pos:]))
            return
    pos = _skip_ws(text, pos)
    if pos < n:
        reason = _UTF8 if _is_bad_byte(text, pos) else _JSON
        out.reject(index + 1, reason, f"{_TITLE[reason]}: content after the closing ']' of the array, "
                   f"starting with {_char(text[pos])}; it is rejected as one record", _raw_text(text[pos:]))


def _skip_ws(text: str, pos: int) -> int:
    match = _WS_RE.match(text, pos)
    return match.end() if match else pos


def _is_bad_byte(text: str, pos: int) -> bool:
    return pos < len(text) and "\udc80" <= text[pos] <= "\udcff"


def _char(c: str) -> str:
    return f"byte 0x{ord(c) - 0xDC00:02x}" if "\udc80" <= c <= "\udcff" else repr(c)


# -- records -----------------------------------------------------------------------------------------

class _Builder:
    """Validates records of one source and collects rows, positions and rejections."""

    def __init__(self, source: str, max_bytes: int) -> None:
        table = landing_table(source)
        keys = KEY_FIELDS[source]
        self.names = frozenset(table.column_names)
        self.columns: dict[str, list[Any]] = {c.name: [] for c in table.columns}
        self.lists = list(self.columns.values())
        # Per column: name, kind, is it a key, integer range, and the append of its value list.
        self.spec = [(c.name, _KINDS[c.type], c.name in keys, *_RANGES.get(_KINDS[c.type], (0, 0)),
                      self.columns[c.name].append) for c in table.columns]
        self.positions: list[int] = []
        self.rejected: list[Rejected] = []
        self.unknown: dict[str, int] = {}
        self.max_bytes = max_bytes

    def result(self) -> ParsedFile:
        return ParsedFile(self.columns, self.positions, self.rejected,
                          len(self.positions) + len(self.rejected), self.unknown)

    def reject(self, position: int, reason: int, message: str, raw: str) -> None:
        self.rejected.append(Rejected(position, REASONS[reason], message, raw))

    def too_large(self, position: int, over: _Oversize) -> None:
        if not over.blank:
            self.reject(position, _TOO_LARGE, f"record of {over.size:,} bytes is larger than "
                        f"max_record_bytes ({self.max_bytes:,}); it was skipped unread",
                        _raw_bytes(bytes(over.head), over.size))

    def line(self, position: int, data: bytes) -> None:
        """One non-blank line of a JSON Lines file, at most max_bytes long."""
        try:
            text = data.decode()
        except UnicodeDecodeError as exc:
            self.reject(position, _UTF8, f"invalid UTF-8: byte 0x{data[exc.start]:02x} at byte "
                        f"{exc.start + 1} of the line ({exc.reason})", _raw_bytes(data))
            return
        try:
            # The C scanner directly: decode() adds two regex calls per line. Leading/trailing
            # whitespace (CRLF) or any error goes to the full decoder, which also words the error.
            value, end = _SCAN(text, 0)
            if end != len(text):
                value = _DECODER.decode(text)
        except (ValueError, RecursionError, StopIteration):
            try:
                value = _DECODER.decode(text)
            except (ValueError, RecursionError) as exc:
                value = self._decode_slowly(position, text, data, exc)
                if value is _MISSING:
                    return
        problem = self.record(position, value)
        if problem is not None:
            self.reject(position, problem[0], problem[1], _raw_bytes(data))

    def _decode_slowly(self, position: int, text: str, data: bytes, exc: Exception) -> Any:
        """The value of a line the fast decoder refused; _MISSING after rejecting it."""
        if type(exc) is ValueError:  # neither a JSON syntax error nor NaN: an over-long integer literal
            try:
                return _BIG_DECODER.decode(text)
            except (ValueError, RecursionError) as again:
                exc = again
        self.reject(position, _JSON, _decode_error(exc), _raw_bytes(data))
        return _MISSING

    def element(self, position: int, value: Any, span: str) -> None:
        """One element of a JSON array file; `span` is its text (bad bytes as surrogate escapes)."""
        if not span.isascii():
            try:
                size = len(span.encode())
            except UnicodeEncodeError as exc:
                self.reject(position, _UTF8, f"invalid UTF-8: {_char(span[exc.start])} at character "
                            f"{exc.start + 1} of the element", _raw_text(span))
                return
        else:
            size = len(span)
        if size > self.max_bytes:
            self.reject(position, _TOO_LARGE, f"record of {size:,} bytes is larger than max_record_bytes "
                        f"({self.max_bytes:,})", _raw_text(span))
            return
        problem = self.record(position, value)
        if problem is not None:
            self.reject(position, problem[0], problem[1], _raw_text(span))

    def record(self, position: int, obj: Any) -> tuple[int, str] | None:
        """Add `obj` as a row, or return (reason, message) of its first problem."""
        if type(obj) is not dict:
            if type(obj) is Duplicated:
                return _DUPLICATE_KEY, (f"the key {', '.join(obj.twice)} is named twice: which value was meant "
                                        "cannot be known")
            return _NOT_OBJECT, f"expected a JSON object, got {_show(obj)}"
        # Values go straight into the columns; a record with a problem is taken out again at the end.
        rank = 99  # the first problem of the lowest reason wins
        message = ""
        absent = 0
        isfinite = math.isfinite
        for name, kind, is_key, lo, hi, add in self.spec:
            v = obj.get(name, _MISSING)
            if v is None or v is _MISSING:
                if v is not None:
                    absent += 1
                if is_key and rank > _MISSING_KEY:
                    rank, message = _MISSING_KEY, f"{name}: key field is {'null' if v is None else 'missing'}"
                add(None)
                continue
            t = type(v)
            if kind == _STRING:
                if t is str:
                    if v.isascii() or _encodable(v):
                        add(v)
                        continue
                    problem = _UTF8, f"{name}: string has a lone surrogate escape, which is not valid Unicode"
                else:
                    problem = _WRONG_TYPE, _wrong_type(name, kind, v)
            elif kind == _DOUBLE:
                if t is float:
                    if isfinite(v):
                        add(v)
                        continue
                    problem = _OUT_OF_RANGE, f"{name}: {v!r} is not a finite number (the JSON number is " \
                                             "too large for a double)"
                elif t is int:
                    # An integer is a valid JSON number; the column is double, so it is stored as one.
                    try:
                        add(float(v))
                        continue
                    except OverflowError:
                        problem = _OUT_OF_RANGE, f"{name}: integer {_int_text(v)} is too large for a double"
                elif t is _BigInt:
                    problem = _OUT_OF_RANGE, f"{name}: {_show(v)} is too large for a double"
                else:
                    problem = _WRONG_TYPE, _wrong_type(name, kind, v)
            else:
                if t is int:
                    if lo <= v <= hi:
                        add(v)
                        continue
                    problem = _OUT_OF_RANGE, f"{name}: {_int_text(v)} is outside the " \
                                             f"{'bigint' if kind == _BIGINT else 'int'} range [{lo}, {hi}]"
                elif t is _BigInt:
                    problem = _OUT_OF_RANGE, f"{name}: {_show(v)} is outside the " \
                                             f"{'bigint' if kind == _BIGINT else 'int'} range [{lo}, {hi}]"
                else:
                    problem = _WRONG_TYPE, _wrong_type(name, kind, v)
            if problem[0] < rank:
                rank, message = problem
            add(None)
        if rank != 99:
            kept = len(self.positions)
            for column in self.lists:
                del column[kept:]
            return rank, message
        self.positions.append(position)
        if len(obj) > len(self.spec) - absent:  # extra fields: counted, not kept
            unknown = self.unknown
            for name in obj:
                if name not in self.names:
                    unknown[name] = unknown.get(name, 0) + 1
        return None


def decode(data: bytes) -> Any:
    """The JSON value of one landed record's bytes as the landing read decodes it (NaN refused, a key named
    twice marked, long integers kept), or NOT_JSON."""
    try:
        text = data.decode()
        try:
            return _DECODER.decode(text)
        except (json.JSONDecodeError, _RefusedConstant):
            raise
        except ValueError:  # an integer literal longer than int() accepts
            return _BIG_DECODER.decode(text)
    except (ValueError, RecursionError):
        return NOT_JSON


class _Visit:
    """The sink of scan_records: each framed record decoded, handed on as a LandedRecord."""

    def __init__(self, visit: Callable[[LandedRecord], None]) -> None:
        self.visit = visit

    def line(self, position: int, data: bytes) -> None:
        self.visit(LandedRecord(position, data, decode(data)))

    def element(self, position: int, value: Any, span: str) -> None:
        self.visit(LandedRecord(position, span.encode("utf-8", "surrogateescape"), value))

    def reject(self, position: int, reason: int, message: str, raw: str) -> None:
        self.visit(LandedRecord(position, raw.encode("utf-8", "surrogateescape"), NOT_JSON))

    def too_large(self, position: int, over: _Oversize) -> None:  # pragma: no cover - scan_records has no limit
        self.visit(LandedRecord(position, bytes(over.head), NOT_JSON))


def _encodable(s: str) -> bool:
    """False for strings with lone surrogates (from JSON escapes like \\ud800): no UTF-8 form, no row."""
    try:
        s.encode()
    except UnicodeEncodeError:
        return False
    return True


def _wrong_type(name: str, kind: int, v: Any) -> str:
    message = f"{name}: expected {_EXPECTED[kind]}, got {_show(v)}"
    if type(v) is float and v.is_integer() and kind in (_BIGINT, _INT):
        message += " (an integer written as a float; values are not coerced)"
    return message


def _show(v: Any) -> str:
    """A short description of a JSON value for messages (never its whole text: it may be huge or deep)."""
    t = type(v)
    if t is str:
        return f"string {v!r}" if len(v) <= 60 else f"string {v[:60]!r}… ({len(v):,} characters)"
    if t is bool:
        return "boolean true" if v else "boolean false"
    if t is int:
        return f"integer {_int_text(v)}"
    if t is float:
        return f"float {v!r}"
    if t is list:
        return f"array of {len(v):,} element{'s' if len(v) != 1 else ''}"
    if t is dict:
        return f"object with {len(v):,} key{'s' if len(v) != 1 else ''}"
    if t is _BigInt:
        return f"integer of {v.digits:,} digits"
    return "null"


def _int_text(v: int) -> str:
    s = str(v)  # < int()'s digit limit: longer literals arrive as _BigInt
    return s if len(s) <= 40 else f"{s[:20]}… ({len(s.lstrip('-')):,} digits)"


def _decode_error(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"invalid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}" if exc.lineno > 1 \
            else f"invalid JSON: {exc.msg} at column {exc.colno}"
    if isinstance(exc, RecursionError):
        return "invalid JSON: nested too deeply to parse"
    return f"invalid JSON: {exc}"


def _raw_bytes(data: bytes, size: int | None = None) -> str:
    """A record's raw text from its bytes; `size`: its full size when `data` is only its first bytes.

    Sizes count the bytes of a line without its LF (a CR before it counts); the CR is left out of the text.
    """
    size = len(data) if size is None else size
    whole = size == len(data)
    if whole and data[-1:] == b"\r":
        data = data[:-1]
    cut = not whole or len(data) > RAW_LIMIT
    # An incremental decoder holds back a multi-byte character cut at RAW_LIMIT instead of escaping it.
    decode: Callable[[bytes, bool], str] = codecs.getincrementaldecoder("utf-8")("backslashreplace").decode
    text = decode(data[:RAW_LIMIT], not cut)
    if not cut and len(text) <= RAW_LIMIT:
        return text
    return f"{text[:RAW_LIMIT]}…[truncated, {size} bytes]"


def _raw_text(span: str) -> str:
    """A record's raw text from array-file text (bad bytes as surrogate escapes)."""
    if span.isascii() and len(span) <= RAW_LIMIT:
        return span
    data = span.encode("utf-8", "surrogateescape")
    return _raw_bytes(data)
