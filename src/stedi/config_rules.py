"""How each setting is checked: what it accepts, and the pydantic schema that checks it.

A rule is the metadata of a field of `stedi.config.Settings` (`Annotated[float, Number(...)]`): one
declaration gives the setting's type, default, constraint and description, from which come its
validation (pydantic), its error message ("... it must be <accepts>") and the README's list.

pydantic is imported only when a schema is built (by `load_settings`), never with this module:
`stedi --help` and every command import the settings, and pydantic's import costs as much as the rest
of stedi's.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import KW_ONLY, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, get_args
from urllib.parse import urlparse

from stedi.storage.s3 import is_s3

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler
    from pydantic_core import CoreSchema, ErrorDetails

# pydantic error types of a well-formed value outside its bounds (NaN and infinity included)
RANGE_ERRORS = frozenset({"greater_than", "greater_than_equal", "less_than", "less_than_equal", "finite_number"})
SIZE_UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9, "KIB": 2**10, "MIB": 2**20, "GIB": 2**30}


# Rules are plain dataclasses (no eq, repr or frozen): these are several times faster to create, at import.
@dataclass(eq=False, repr=False)
class Rule:
    """A setting's check. `about`: what the setting does; `unset`: what applies when it is left unset
    (for a default of None); `env`: whether a STEDI_<NAME> variable sets it; `internal`: set by stedi,
    never by a user."""

    _: KW_ONLY
    about: str
    unset: str | None = None
    env: bool = True
    internal: bool = False

    @property
    def accepts(self) -> str:
        """What the setting accepts, completing "it must be ..."."""
        raise NotImplementedError

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """pydantic's hook for Annotated metadata: called only when a schema is built."""
        return self.schema(source, handler)

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        raise NotImplementedError

    def message(self, name: str, value: Any, where: str, errors: Sequence[ErrorDetails]) -> str:
        """One line for the first of `errors` (pydantic's, located under this setting). `where` says
        where the value comes from (" in /path/stedi.toml", " from STEDI_X" or "")."""
        error = errors[0]
        verdict = "is out of range" if error["type"] in RANGE_ERRORS else "is not valid"
        return f"{name} = {value!r}{where} {verdict}: it must be {self.accepts}{_hint(error)}"


def _hint(error: ErrorDetails) -> str:
    """The reason a validator of ours gave (ValueError("...")), in parentheses."""
    reason = str(error.get("ctx", {}).get("error", "")) if error["type"] == "value_error" else ""
    return f" ({reason})" if reason else ""


def _optional(source: Any) -> bool:
    return type(None) in get_args(source)


def _refuse_booleans(value: Any) -> Any:
    """pydantic reads True as 1 in lax mode; a number setting set to true is a mistake."""
    if isinstance(value, bool):
        raise ValueError
    return value


@dataclass(eq=False, repr=False)
class Number(Rule):
    """A number within bounds: `what` names it ("a number of seconds"), the bounds complete it."""

    what: str
    _: KW_ONLY
    ge: float | None = None
    gt: float | None = None
    le: float | None = None
    whole: bool = False

    @property
    def accepts(self) -> str:
        if self.ge is not None and self.le is not None:
            return f"{self.what} from {self.ge:g} to {self.le:g}"
        if self.gt is not None:
            return f"{self.what}, more than {self.gt:g}"
        return f"{self.what}, {self.ge:g} or more" if self.ge is not None else self.what

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        number: CoreSchema = (cs.int_schema(ge=_whole(self.ge), gt=_whole(self.gt), le=_whole(self.le)) if self.whole
                              else cs.float_schema(ge=self.ge, gt=self.gt, le=self.le, allow_inf_nan=False))
        checked = cs.no_info_before_validator_function(_refuse_booleans, number)
        return cs.nullable_schema(checked) if _optional(source) else checked


def _whole(bound: float | None) -> int | None:
    return None if bound is None else int(bound)


@dataclass(eq=False, repr=False)
class OneOf(Rule):
    choices: tuple[str, ...]

    @property
    def accepts(self) -> str:
        return f"one of: {', '.join(self.choices)}"

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.literal_schema(list(self.choices))

    def message(self, name: str, value: Any, where: str, errors: Sequence[ErrorDetails]) -> str:
        return f"unknown {name} {value!r}{where}; choose {self.accepts}"


def size_in_bytes(value: Any) -> int | None:
    """`256MB`, `1GiB`, `500kb`, `1048576` -> bytes; None for anything else (and for 0 or less)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    raw = str(value).strip().upper().replace(" ", "")
    number = raw.rstrip("KMGIB")
    try:
        size = int(float(number) * SIZE_UNITS[raw[len(number):]])
    except (ValueError, KeyError, OverflowError):
        return None
    return size if size > 0 else None


@dataclass(eq=False, repr=False)
class Size(Rule):
    """A size in bytes, kept as written (a string): DuckDB and the optimizer read it with parse_size."""

    @property
    def accepts(self) -> str:
        return 'a number of bytes with a unit, such as "256MB", "1GiB" or "500kB"'

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.no_info_plain_validator_function(_size)

    def message(self, name: str, value: Any, where: str, errors: Sequence[ErrorDetails]) -> str:
        return f"{name} = {value!r}{where} is not a size: write {self.accepts}"


def _size(value: Any) -> str:
    if size_in_bytes(value) is None:
        raise ValueError
    return str(value).strip()


@dataclass(eq=False, repr=False)
class Home(Rule):
    """The lakehouse root: an absolute local path, or s3://bucket/prefix (s3a:// is read as s3://)."""

    @property
    def accepts(self) -> str:
        return "a local folder or s3://bucket/prefix"

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.no_info_plain_validator_function(_home)


def _home(value: Any) -> str:
    home = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if not home or not isinstance(home, str):
        raise ValueError
    if home.startswith("s3a://"):
        home = "s3://" + home[len("s3a://"):]
    if is_s3(home):
        if not urlparse(home).netloc:
            raise ValueError("s3:// names no bucket")
        return home.rstrip("/")
    if "://" in home and not home.startswith("file://"):
        raise ValueError
    return str(Path(os.path.expanduser(home.removeprefix("file://"))).absolute())


@dataclass(eq=False, repr=False)
class LocalPath(Rule):
    """A file or folder on this machine, made absolute; an empty value leaves the setting unset.
    `in_bucket`: why an s3:// location will not do, when there is more to say than "a local path"."""

    in_bucket: str = ""

    @property
    def accepts(self) -> str:
        return "a local path"

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        assert handler is not None
        from pydantic_core import core_schema as cs

        path = cs.no_info_after_validator_function(_absolute, handler(source))
        return cs.no_info_before_validator_function(self._refuse_buckets, path)

    def _refuse_buckets(self, value: Any) -> Any:
        if value == "":
            return None
        if isinstance(value, str | Path) and is_s3(value):
            raise ValueError(self.in_bucket)
        return value


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else Path(os.path.expanduser(path)).absolute()


@dataclass(eq=False, repr=False)
class Table(Rule):
    """A [section] of key = value settings. With `keys`, only those (each with its rule; another key is
    refused with `unknown_hint`); without, any key, its value checked by `entries` (None: by whoever reads
    it, as DuckDB checks its own settings when stedi connects)."""

    _: KW_ONLY
    entries: Rule | None = None
    keys: tuple[tuple[str, Rule], ...] = ()
    unknown_hint: str = ""
    env: bool = False

    @property
    def accepts(self) -> str:
        return "a table of key = value settings"

    @property
    def known(self) -> dict[str, Rule]:
        return dict(self.keys)

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        if self.keys:
            fields = {key: cs.typed_dict_field(rule.schema(str, None), required=False) for key, rule in self.keys}
            return cs.typed_dict_schema(fields, extra_behavior="forbid")
        entries = cs.any_schema() if self.entries is None else self.entries.schema(Any, None)
        return cs.dict_schema(keys_schema=cs.str_schema(strict=True), values_schema=entries)

    def message(self, name: str, value: Any, where: str, errors: Sequence[ErrorDetails]) -> str:
        unknown = sorted(str(e["loc"][1]) for e in errors if e["type"] == "extra_forbidden")
        if unknown:
            return (f"unknown [{name}] setting(s) {', '.join(unknown)}{where}; known: {', '.join(self.known)}"
                    f"{self.unknown_hint}")
        loc = errors[0]["loc"]
        rule = self.known.get(str(loc[-1]), self.entries)
        if len(loc) == 2 and isinstance(value, Mapping) and rule is not None:
            return (f"[{name}] {loc[1]} = {value[loc[1]]!r}{where} is not valid: it must be "
                    f"{rule.accepts}{_hint(errors[0])}")
        return f"{name} = {value!r}{where} is not valid: it must be a [{name}] table of key = value settings"


@dataclass(eq=False, repr=False)
class Scalar(Rule):
    """A string, a number or a boolean: what a catalog or Spark property may be."""

    @property
    def accepts(self) -> str:
        return "a string, a number, true or false"

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.union_schema([cs.str_schema(strict=True), cs.bool_schema(strict=True), cs.int_schema(strict=True),
                                cs.float_schema(strict=True)], custom_error_type="scalar",
                               custom_error_message=self.accepts)


@dataclass(eq=False, repr=False)
class Flag(Rule):
    @property
    def accepts(self) -> str:
        return "true or false"

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.bool_schema()


@dataclass(eq=False, repr=False)
class Text(Rule):
    """A word with no blanks, such as a region or a profile name."""

    what: str

    @property
    def accepts(self) -> str:
        return self.what

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.str_schema(pattern=r"^\S+$")


@dataclass(eq=False, repr=False)
class Endpoint(Rule):
    @property
    def accepts(self) -> str:
        return 'an http(s) URL such as "http://127.0.0.1:9000", or a host name'

    def schema(self, source: Any, handler: GetCoreSchemaHandler | None) -> CoreSchema:
        from pydantic_core import core_schema as cs

        return cs.no_info_after_validator_function(_endpoint, cs.str_schema(pattern=r"^\S+$"))


def _endpoint(text: str) -> str:
    url = urlparse(text if "://" in text else f"https://{text}")
    if url.scheme not in ("http", "https") or not url.netloc:
        raise ValueError
    return text
