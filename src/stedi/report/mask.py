"""Masks for what a report shows of people: no email, name, phone, birthday or serial number appears
whole. Samples are masked column by column; the raw text of a quarantined record (which may be any
text, not even JSON) field by field where its keys can be read, and then by pattern everywhere."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

EMAIL = re.compile(r"[\w.+%-]+@[\w-]+(?:\.[\w-]+)*")
UUID = re.compile(r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")
# 7 to 12 digits, alone or in groups (801-555-1212, +1 (801) 555 1212); epoch milliseconds have 13.
PHONE = re.compile(r"(?<![\w.])\+?(?:\d[\s().-]{0,2}){6,11}\d(?![\w.])")
# A JSON string (maybe cut short at the end of the raw text); group 1: its content.
STRING = re.compile(r'"((?:[^"\\]|\\.)*)("?)')
SHORT_PLAIN = re.compile(r"[\d.+-]{1,6}")  # "123", "1.5": a wrongly typed number, kept as it is


def email(value: str) -> str:
    """j***@t***.com: the first letter of the name and of the domain, and the top-level domain."""
    local, at, domain = value.partition("@")
    if not at:
        return _first(value)
    host, dot, tld = domain.rpartition(".")
    return f"{_first(local)}@{_first(host)}.{tld}" if dot else f"{_first(local)}@{_first(domain)}"


def name(value: str) -> str:
    """J*** D***: each word's first letter."""
    return " ".join(_first(word) for word in value.split()) or "***"


def phone(value: str) -> str:
    """***-***-1212: the last four digits only."""
    digits = re.sub(r"\D", "", value)
    return "***-***-" + digits[-4:] if len(digits) > 4 else "***"


def birthday(value: str) -> str:
    """The year only (1965-**-**), when it starts with one."""
    year = re.match(r"\s*(\d{4})", value)
    return f"{year.group(1)}-**-**" if year else "****"


def serial(value: str) -> str:
    """A device id, shortened to its first four characters."""
    return value[:4] + "…" if len(value) > 4 else "****"


def pseudonym(value: str) -> str:
    """customer_key is a pseudonym already: shortened so that it stays readable."""
    return value[:12] + "…" if len(value) > 12 else value


def _first(value: str) -> str:
    return value[:1] + "***" if value else "***"


# What each column holds, by name (the source JSON's spelling): how a sample shows it.
COLUMN_MASKS: dict[str, Callable[[str], str]] = {
    "customerName": name, "email": email, "user": email, "phone": phone, "birthDay": birthday,
    "serialNumber": serial, "customer_key": pseudonym,
}
TEXT_COLUMNS = ("raw", "message")  # free text that may quote a record: masked by text()


def row(values: dict[str, Any]) -> dict[str, Any]:
    """A sample row as it may be shown."""
    out: dict[str, Any] = {}
    for column, value in values.items():
        if value is None:
            out[column] = None
        elif column in COLUMN_MASKS:
            out[column] = COLUMN_MASKS[column](str(value))
        elif column in TEXT_COLUMNS:
            out[column] = text(str(value))
        else:
            out[column] = value
    return out


def text(raw: str) -> str:
    """Free text (a record as landed, an error message): every string value masked (by its key when it
    follows one, else by its look), keys kept; then emails, serial numbers and phone numbers anywhere."""
    out: list[str] = []
    last = 0
    for match in STRING.finditer(raw):
        start, end = match.span()
        is_key = raw[end:].lstrip().startswith(":") and match.group(2)
        if is_key:
            continue
        key = _key_before(raw, start)
        out.append(raw[last:start])
        out.append('"' + _value(key, match.group(1)) + match.group(2))
        last = end
    out.append(raw[last:])
    masked = "".join(out)
    # numbers under a personal key ("phone": 8015551212) and whatever the string pass could not read
    masked = re.sub(r'("(?:phone|customerName|birthDay|email|user|serialNumber)"\s*:\s*)(-?[\d.eE+]+)',
                    lambda m: m.group(1) + "***", masked)
    masked = EMAIL.sub(lambda m: email(m.group(0)), masked)
    masked = UUID.sub(lambda m: serial(m.group(0)), masked)
    return PHONE.sub(lambda m: phone(m.group(0)), masked)


def _key_before(raw: str, start: int) -> str | None:
    """The JSON key a string value follows (`"phone": "..."`), if any."""
    found = re.search(r'"((?:[^"\\]|\\.)*)"\s*:\s*$', raw[max(0, start - 200):start])
    return found.group(1) if found else None


def _value(key: str | None, value: str) -> str:
    if key in COLUMN_MASKS:
        return COLUMN_MASKS[key](value)
    if EMAIL.fullmatch(value):
        return email(value)
    if SHORT_PLAIN.fullmatch(value):
        return value
    return _first(value)
