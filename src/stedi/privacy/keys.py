"""Keys and pseudonyms: the secret key, customer_key, and the keyed hashes that remember erasures.

The key never enters the lakehouse and is never printed. It comes from STEDI_PSEUDONYM_KEY, else from a
key file outside the lakehouse root (`pseudonym_key_file`, default ~/.config/stedi/pseudonym.key,
written by `stedi keygen`). The same key gives the same pseudonyms in every run; another key, others.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from pathlib import Path

from stedi.config import Settings
from stedi.errors import ConfigError

KEY_ENV = "STEDI_PSEUDONYM_KEY"
DEFAULT_KEY_FILE = Path("~/.config/stedi/pseudonym.key")
MIN_KEY_CHARS = 16


def key_file(settings: Settings) -> Path:
    return settings.pseudonym_key_file or DEFAULT_KEY_FILE.expanduser()


def load_key(settings: Settings) -> bytes:
    """The pseudonym key; a ConfigError that says how to create one when there is none."""
    text = os.environ.get(KEY_ENV)
    where = KEY_ENV
    if not text:
        path = key_file(settings)
        _refuse_inside_root(path, settings)
        try:
            text = path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            raise ConfigError(
                f"no pseudonym key: machine_learning_curated identifies customers by a keyed pseudonym. "
                f"Create a key with `stedi keygen` (writes {path}, outside the lakehouse) or set "
                f"{KEY_ENV}; keep it secret and keep it: another key gives other pseudonyms") from None
        except OSError as exc:
            raise ConfigError(f"cannot read the pseudonym key file {path}: {exc.strerror}") from None
        where = str(path)
    if len(text) < MIN_KEY_CHARS:
        raise ConfigError(f"the pseudonym key in {where} is too short (at least {MIN_KEY_CHARS} characters); "
                          "`stedi keygen` makes a good one")
    return text.encode("utf-8")


def keygen(settings: Settings, path: Path | None = None) -> Path:
    """Write a new random key (256 bits, hex) to a file only its owner can read; never overwrites."""
    target = (path or key_file(settings)).expanduser().absolute()
    _refuse_inside_root(target, settings)
    if target.exists():
        raise ConfigError(f"{target} already exists; stedi never overwrites a key (the pseudonyms made with "
                          "it would change). Remove it yourself if you really mean to")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return target


def normalise_email(email: str) -> str:
    return email.strip().lower()


def pseudonym(key: bytes, email: str) -> str:
    """customer_key: HMAC-SHA256 of the normalised email under the key, as hex."""
    return hmac.digest(key, normalise_email(email).encode("utf-8"), "sha256").hex()  # one call: C throughout


def key_id(key: bytes) -> str:
    """Names a key without revealing it, so tables built with another key are rebuilt."""
    return hmac.new(key, b"stedi:key-id", hashlib.sha256).hexdigest()[:16]


def subject_hash(key: bytes, kind: str, value: str) -> str:
    """Keyed hash by which an erased person (kind email or serial) is remembered; not a pseudonym."""
    text = normalise_email(value) if kind == "email" else value
    return hmac.new(key, f"stedi:erased:{kind}:{text}".encode(), hashlib.sha256).hexdigest()


def _refuse_inside_root(path: Path, settings: Settings) -> None:
    if settings.remote:
        return  # a local key file is never inside a bucket
    resolved, home = path.expanduser().absolute(), Path(settings.home)
    if resolved == home or home in resolved.parents:
        raise ConfigError(f"the pseudonym key file {path} is inside the lakehouse root {home}; keep the key "
                          "outside it (anyone who can read the lakehouse must not be able to undo the pseudonyms)")
