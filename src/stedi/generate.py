"""Synthetic STEDI landing data, shaped like the real landing files.

    <out>/customer/landing/customer-<n>.json
    <out>/accelerometer/landing/accelerometer-<n>.json
    <out>/step_trainer/landing/step_trainer-<n>.json

The shape follows facts measured on the public STEDI data (956 customers, 81,273 accelerometer and
28,680 step trainer readings), scaled linearly by `scale`:

- every customer's device takes 30 readings on an exact time grid (one step of 2,033-4,000 ms per
  customer); the phone takes 1-4 readings (2.83 on average) at each of those timestamps, so the
  per-customer join on time pairs every step trainer reading with its owner's phone readings;
- the readings end ~72 s after registration, so ~22% of a consenting customer's readings predate
  the consent date (the consent date is the lastUpdateDate);
- ~5% of timestamps are shared with a customer recording at the same time, so a join on time alone
  pairs devices with the wrong phones;
- about half the customers consent to research; ~2% also have an older record (same email, earlier
  lastUpdateDate, research consent the other way round).

Deterministic: the output depends only on (scale, seed). Readings are generated and written in
chunks of customers, so memory stays bounded at any scale.

`generate_batch` makes the next daily batch of such data: new customers with their readings, and
newer records of a few existing customers whose research consent changed.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from numbers import Integral, Real
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

__all__ = ["GenerateReport", "generate", "generate_batch"]

I64 = npt.NDArray[np.int64]
Rng = np.random.Generator

# -- facts of the real landing data -----------------------------------------------------------------
CUSTOMERS_AT_SCALE_1 = 956
SLOTS = 30  # step trainer readings per device, each at a distinct timestamp
ACCEL_PER_SLOT_P = np.array([92, 4589, 23996, 3], dtype=np.float64)  # 1, 2, 3, 4 phone readings
ACCEL_PER_SLOT_P /= ACCEL_PER_SLOT_P.sum()
EXPECTED_ACCEL_PER_SLOT = float(ACCEL_PER_SLOT_P @ np.arange(1, 5))
STEPS_MS = (2000 + np.arange(1, 61) * 100 / 3).astype(np.int64)  # the 60 grid steps seen: 2033..4000
FIRST_REGISTRATION_MS = 1_655_561_994_131
REGISTRATION_SPACING_MS = 2_565  # 956 registrations over ~41 minutes; kept per customer when scaling
LAST_READING_AFTER_REGISTRATION_MS = 74_100  # minus an exponential: median ~72 s, never below 54 s
LAST_READING_SPREAD_MS = 3_500
LAST_READING_MIN_MS = 54_000
CONSENT_P = 0.5  # each of research / public / friends, independently (482, 491, 508 of 956)
UPDATED_P = 0.046  # records whose lastUpdateDate is a minute or so after registration (44 of 956)
UPDATE_DELAY_MS = (60_000, 68_300)
OLDER_VERSION_P = 0.02  # not in the real data: customers that also have an older record
PHONE = "8015551212"
BIRTH_YEARS = (967, 1964)  # birthDay strings like "1399-01-01"
DISTANCE = (201, 300)
# (x, y, z) are -1.0 / 0.0 / 1.0 (z never 1.0): 18 combinations, pre-formatted as line tails.
XYZ_TAILS = np.array(
    [f',"x":{x:.1f},"y":{y:.1f},"z":{z:.1f}}}\n'
     for x in (-1, 0, 1) for y in (-1, 0, 1) for z in (-1, 0)], dtype=object)
XYZ_STRIDES = np.array([1, 5, 7, 11, 13, 17])  # coprime with 18: distinct x/y/z within a timestamp

# Shared timestamps: a slot picked with this probability takes the nearest grid timestamp of a
# customer up to SHARE_NEIGHBOURS registrations away. Tuned so ~5.5% of distinct timestamps belong
# to more than one customer (real: 1,481 of 27,110).
SHARE_P = 0.082
SHARE_NEIGHBOURS = 16

# The real data has no older records; the pools hold its names plus more so emails stay
# First.Last@test.com at scale 1 and only get a number (First.Last7@test.com) at larger scales.
FIRST_NAMES = (
    "Santosh Spencer Jane Jerry Senthil Liz Travis Sean Eric Ben Lyn Craig John Manoj Frank David Edward "
    "Jaya Jacob Neeraj Sarah Chris Danny Christina Trevor Jason Ashley Dan Bobby Suresh Larry Angie Gail "
    "Maria Ahmed Priya Olga Kenji Fatima Lucas Emma Noah Mia Omar Grace Ivan Nina Pedro Aisha Tom Rosa "
    "Victor Hana Leo Zoe Samuel Ingrid Rahul Chloe Diego Mei").split()
LAST_NAMES = (
    "Hansen Wu Habschied Olson Smith Anandh Doshi Howard Jackson Fibonnaci Abram Ahmed Sanchez Anderson "
    "Huey Clayton Khatib Jones Staples Gonzalez Jefferson Davis Harris Mitra Aristotle Spencer Lincoln "
    "Clark Phillips Nguyen Garcia Kowalski Tanaka Okafor Rossi Novak Silva Schmidt Kim Patel Larsen "
    "Dubois Moreau Ivanova Haddad Costa Murphy Yilmaz Becker Chen Lopez Fischer Santos Kaur Berg Walsh "
    "Romero Fernandes").split()

# -- output layout ------------------------------------------------------------------------------------
CHUNK_CUSTOMERS = 2048  # readings are generated and written this many customers at a time
GROUP_CUSTOMERS = 24  # real files interleave ~24 customers, each in several short runs ("rounds")
ROUNDS = 6
FILE_NUMBER_BASE = 1_691_348_231_425  # names like customer-1691348231425.json
FILE_NUMBER_STEP = 50
MIN_LINES_PER_FILE = 10_000  # the real files hold 10,000 lines
MAX_LINES_PER_FILE = 50_000
TARGET_FILES = 100


@dataclass(frozen=True)
class GenerateReport:
    """What `generate` wrote."""

    out: Path
    customers: int  # distinct new customers (emails)
    customer_records: int  # customer lines written (includes older versions and changed customers)
    accelerometer_records: int
    step_trainer_records: int
    files: int
    seconds: float
    changed_customers: int = 0  # existing customers given a newer record (generate_batch only)


@dataclass(frozen=True)
class _Customers:
    """All customers, in registration order (index = customer id)."""

    email: list[str]
    name: list[str]
    serial: list[str]
    birthday: list[str]
    registration: I64
    last_update: I64
    research: I64  # consent dates; -1 for none
    public: I64
    friends: I64
    older: I64  # ids of customers that also have an older record


def generate(out: Path | str, scale: float = 1.0, seed: int = 0,
             progress: Callable[[str], None] | None = None) -> GenerateReport:
    """Write synthetic customer, accelerometer and step trainer landing files under `out`.

    `scale` 1 is about the size of the real data (956 customers, ~81k accelerometer and ~29k step
    trainer readings); counts grow linearly with it. The same (scale, seed) gives byte-identical
    files. Files of an earlier run in the three landing folders (`<source>-*.json`) are replaced.
    `progress`, if given, receives a short message per file written.
    """
    if isinstance(scale, bool) or not isinstance(scale, Real) or not math.isfinite(scale) or scale <= 0:
        raise ValueError(f"scale must be a positive number (1 is the size of the real data), got {scale!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    seed, scale = int(seed), float(scale)
    began = time.perf_counter()
    root = Path(out)
    say = progress or (lambda _msg: None)
    n = max(1, round(CUSTOMERS_AT_SCALE_1 * scale))
    say(f"generating {n:,} customers (scale {scale:g}, seed {seed}) into {root}")

    customers = _make_customers(np.random.default_rng([seed, 0]), n)
    n_records = n + len(customers.older)
    expected_accel = math.ceil(n * SLOTS * EXPECTED_ACCEL_PER_SLOT)
    cust_lpf, accel_lpf, st_lpf = (_lines_per_file(t) for t in (n_records, expected_accel, n * SLOTS))
    # Deterministic, increasing file numbers: customers first, then accelerometer, then step trainer
    # (the accelerometer count is an estimate; its margin keeps the three ranges apart).
    cust_files = math.ceil(n_records / cust_lpf)
    accel_files = math.ceil(expected_accel * 1.05 / accel_lpf) + 1
    writers = {
        "customer": _Writer(root, "customer", 0, cust_lpf, say),
        "accelerometer": _Writer(root, "accelerometer", cust_files, accel_lpf, say),
        "step_trainer": _Writer(root, "step_trainer", cust_files + accel_files, st_lpf, say),
    }
    _write_all(writers, customers, n, [seed], [])
    return _report(root, writers, n, began)


def _write_all(writers: dict[str, _Writer], customers: _Customers, n: int, rng_key: list[int],
               more_customer_lines: list[str]) -> None:
    """The customers' records (and `more_customer_lines`), then their readings a chunk at a time; random
    streams keyed by `rng_key`, so the output depends only on it."""
    try:
        _write_customers(writers["customer"], customers, np.random.default_rng([*rng_key, 1]))
        if more_customer_lines:
            writers["customer"].write(more_customer_lines)
        writers["customer"].close()
        for chunk, first in enumerate(range(0, n, CHUNK_CUSTOMERS)):
            ids = np.arange(first, min(first + CHUNK_CUSTOMERS, n))
            accel, steps = _chunk_readings(np.random.default_rng([*rng_key, 2, chunk]), customers, ids)
            writers["accelerometer"].write(accel)
            writers["step_trainer"].write(steps)
    finally:
        for writer in writers.values():
            writer.close()


def _report(root: Path, writers: dict[str, _Writer], customers: int, began: float, changed: int = 0
            ) -> GenerateReport:
    return GenerateReport(
        out=root,
        customers=customers,
        customer_records=writers["customer"].lines,
        accelerometer_records=writers["accelerometer"].lines,
        step_trainer_records=writers["step_trainer"].lines,
        files=sum(w.files for w in writers.values()),
        seconds=time.perf_counter() - began,
        changed_customers=changed,
    )


def generate_batch(base: Path | str, out: Path | str, share: float = 0.01, changed: float = 0.1, seed: int = 1,
                   progress: Callable[[str], None] | None = None) -> GenerateReport:
    """Write the next daily batch of landing files for the data `generate` wrote under `base`.

    The batch holds `round(share * customers in base)` (at least 1) new customers with their readings,
    shaped like `generate`'s, registered after the latest registration in base, with emails that base
    does not have (a batch-specific suffix: `First.Last.b<n>@test.com`); and, for `round(changed * new
    customers)` (at least 1) existing customers, a newer record: same fields, a lastUpdateDate after
    every record in base, and research consent toggled (a consenting customer withdraws; the others
    consent as of the new lastUpdateDate). Files go to `<out>/<source>/landing/<source>-<n>.json`, numbered
    after the highest file number in base, so the batch lands beside base without a name clash.

    Deterministic in (base content, share, changed, seed). Base's customer files are read twice, line
    by line, keeping one date per customer; readings are made in chunks, so memory stays bounded.
    """
    for name, value in (("share", share), ("changed", changed)):
        if isinstance(value, bool) or not isinstance(value, Real) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name} must be a non-negative fraction of customers, got {value!r}")
    if isinstance(seed, bool) or not isinstance(seed, Integral) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    began = time.perf_counter()
    base, root = Path(base), Path(out)
    if root.resolve() == base.resolve():
        raise ValueError(f"the batch must go to another folder than its base ({base})")
    say = progress or (lambda _msg: None)
    files = sorted((base / "customer" / "landing").glob("*.json"))

    # Pass 1: each customer's latest lastUpdateDate, and the latest time anything happened in base.
    latest: dict[str, int] = {}
    last_time = FIRST_REGISTRATION_MS
    for record in _records(files):
        email, updated = record["email"], int(record["lastUpdateDate"])
        latest[email] = max(updated, latest.get(email, updated))
        last_time = max(last_time, updated, int(record["registrationDate"]))
    if not latest:
        raise ValueError(f"no customer records under {base / 'customer' / 'landing'}: generate the base first")
    n_new = max(1, round(share * len(latest)))
    n_changed = min(len(latest), max(1, round(changed * n_new)))
    first_file = _next_file_index(base)
    say(f"generating a batch of {n_new:,} new and {n_changed:,} changed customers (seed {seed}) "
        f"after {len(latest):,} customers in {base} into {root}")

    # New customers, registered after everything in base, under emails base does not have.
    start = last_time + REGISTRATION_SPACING_MS
    customers = _make_customers(np.random.default_rng([seed, 3, 0]), n_new, first_registration=start)
    tag = f".b{first_file}@"
    customers = replace(customers, email=[e.replace("@", tag, 1) for e in customers.email])
    if clash := [e for e in customers.email if e in latest]:
        raise ValueError(f"{len(clash)} new emails are in base already (e.g. {clash[0]}): a batch of this "
                         f"base was merged into it under other file names")

    # Pass 2: the latest record of each changed customer, updated within the batch's time window.
    rng = np.random.default_rng([seed, 3, 3])
    emails = sorted(latest)
    chosen = [emails[i] for i in np.sort(rng.choice(len(emails), size=n_changed, replace=False)).tolist()]
    stamps = rng.integers(start, start + n_new * REGISTRATION_SPACING_MS + 1, n_changed).tolist()
    update = dict(zip(chosen, stamps, strict=True))
    changed_lines: dict[str, str] = {}
    for record in _records(files):
        email = record["email"]
        if email in update and email not in changed_lines and record["lastUpdateDate"] == latest[email]:
            stamp = update[email]
            record["lastUpdateDate"] = stamp
            record["shareWithResearchAsOfDate"] = None if record["shareWithResearchAsOfDate"] is not None else stamp
            changed_lines[email] = json.dumps(record) + "\n"
    del latest, emails

    n_records = n_new + len(customers.older) + n_changed
    expected_accel = math.ceil(n_new * SLOTS * EXPECTED_ACCEL_PER_SLOT)
    cust_lpf, accel_lpf, st_lpf = (_lines_per_file(t) for t in (n_records, expected_accel, n_new * SLOTS))
    cust_files = math.ceil(n_records / cust_lpf)
    accel_files = math.ceil(expected_accel * 1.05 / accel_lpf) + 1
    writers = {
        "customer": _Writer(root, "customer", first_file, cust_lpf, say),
        "accelerometer": _Writer(root, "accelerometer", first_file + cust_files, accel_lpf, say),
        "step_trainer": _Writer(root, "step_trainer", first_file + cust_files + accel_files, st_lpf, say),
    }
    _write_all(writers, customers, n_new, [seed, 3], [changed_lines[e] for e in chosen])
    report = _report(root, writers, n_new, began, n_changed)
    return report


def _records(files: list[Path]) -> Iterator[dict[str, Any]]:
    """The customer records of landing files, one line at a time (blank lines skipped)."""
    for path in files:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)


def _next_file_index(base: Path) -> int:
    """The first file index whose number (see _Writer) is above every landing file number in base."""
    highest = -1
    for path in base.glob("*/landing/*.json"):
        if match := _FILE_NUMBER.fullmatch(path.name):
            highest = max(highest, int(match[1]))
    return max(0, (highest - FILE_NUMBER_BASE) // FILE_NUMBER_STEP + 1)


_FILE_NUMBER = re.compile(r".+-(\d+)\.json")


def _make_customers(rng: Rng, n: int, first_registration: int = FIRST_REGISTRATION_MS) -> _Customers:
    # Unique emails: distinct (first, last, repeat) combinations; repeat > 0 adds a number.
    pool = len(FIRST_NAMES) * len(LAST_NAMES)
    combos = rng.choice(pool * math.ceil(n / pool), size=n, replace=False)
    first = [FIRST_NAMES[c % len(FIRST_NAMES)] for c in (combos % pool).tolist()]
    last = [LAST_NAMES[c // len(FIRST_NAMES)] for c in (combos % pool).tolist()]
    repeat = (combos // pool).tolist()
    email = [f"{f}.{s}{r + 1 if r else ''}@test.com" for f, s, r in zip(first, last, repeat, strict=True)]
    name = [f"{f} {s}" for f, s in zip(first, last, strict=True)]

    serial = _uuid4_strings(rng, n)
    years = rng.integers(BIRTH_YEARS[0], BIRTH_YEARS[1] + 1, n)
    birthday = [f"{y:04d}-01-01" for y in years.tolist()]

    registration = np.sort(rng.integers(0, n * REGISTRATION_SPACING_MS, n)) + first_registration
    older = np.sort(rng.choice(n, size=round(n * OLDER_VERSION_P), replace=False))
    # An older record needs room before the current one: those customers were always updated.
    updated = rng.random(n) < UPDATED_P - OLDER_VERSION_P
    updated[older] = True
    delay = rng.integers(UPDATE_DELAY_MS[0], UPDATE_DELAY_MS[1], n)
    last_update = registration + np.where(updated, delay, 0)
    research, public, friends = (np.where(rng.random(n) < CONSENT_P, last_update, -1) for _ in range(3))
    return _Customers(email, name, serial, birthday, registration, last_update, research, public,
                      friends, older)


def _uuid4_strings(rng: Rng, n: int) -> list[str]:
    """n distinct version-4 UUID strings drawn from rng (not from the OS, to stay deterministic)."""
    while True:
        raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
        raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
        raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
        hexes = raw.tobytes().hex()
        out = []
        for i in range(0, 32 * n, 32):
            h = hexes[i:i + 32]
            out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
        if len(set(out)) == n:  # a collision of 122 random bits will not happen, but must not slip by
            return out


def _write_customers(writer: _Writer, c: _Customers, rng: Rng) -> None:
    n = len(c.email)
    ids = list(range(n))
    # Older records: registered at the same time, last updated at registration, research consent the
    # other way round (so some customers withdrew and some consented later); the other consents are
    # redrawn, and a consent kept into the current record keeps its original date.
    old = c.older
    old_last = c.registration[old]
    old_research = np.where(c.research[old] < 0, old_last, -1)
    old_public, old_friends = (np.where(rng.random(len(old)) < CONSENT_P, old_last, -1) for _ in range(2))
    public, friends = c.public.copy(), c.friends.copy()
    public[old] = np.where((public[old] >= 0) & (old_public >= 0), old_public, public[old])
    friends[old] = np.where((friends[old] >= 0) & (old_friends >= 0), old_friends, friends[old])

    rows = [(i, int(c.last_update[i]), int(c.research[i]), int(public[i]), int(friends[i])) for i in ids]
    rows += [(int(i), int(lu), int(r), int(p), int(f))
             for i, lu, r, p, f in zip(old, old_last, old_research, old_public, old_friends, strict=True)]
    # The export is in no particular order (like the real file): an older record may come after the
    # current one, even in a later file; only lastUpdateDate tells them apart.
    order = rng.permutation(len(rows))

    def opt(v: int) -> str:
        return "null" if v < 0 else str(v)

    lines = []
    for k in order.tolist():
        i, lu, r, p, f = rows[k]
        lines.append(
            f'{{"customerName": "{c.name[i]}", "email": "{c.email[i]}", "phone": "{PHONE}", '
            f'"birthDay": "{c.birthday[i]}", "serialNumber": "{c.serial[i]}", '
            f'"registrationDate": {c.registration[i]}, "lastUpdateDate": {lu}, '
            f'"shareWithResearchAsOfDate": {opt(r)}, "shareWithPublicAsOfDate": {opt(p)}, '
            f'"shareWithFriendsAsOfDate": {opt(f)}}}\n')
    writer.write(lines)


def _chunk_readings(rng: Rng, c: _Customers, ids: I64) -> tuple[list[str], list[str]]:
    """Accelerometer and step trainer lines of the customers `ids` (consecutive in registration)."""
    k = len(ids)
    step = rng.choice(STEPS_MS, size=k)
    last = c.registration[ids] + np.maximum(
        LAST_READING_AFTER_REGISTRATION_MS - rng.exponential(LAST_READING_SPREAD_MS, k).astype(np.int64),
        LAST_READING_MIN_MS)
    start = last - (SLOTS - 1) * step
    times = _share_timestamps(rng, start[:, None] + np.arange(SLOTS) * step[:, None], start, step)

    # Step trainer: one reading per slot. Real files interleave customers of a group in rounds, each
    # round listing some of a customer's timestamps newest first.
    cust = np.repeat(np.arange(k), SLOTS)
    ts = times.ravel()
    rnd = rng.integers(0, ROUNDS, k * SLOTS)
    distance = rng.integers(DISTANCE[0], DISTANCE[1] + 1, k * SLOTS)
    order = np.lexsort((-ts, cust, rnd, cust // GROUP_CUSTOMERS))
    serial_part = np.array([f',"serialNumber":"{c.serial[i]}","distanceFromObject":' for i in ids.tolist()],
                           dtype=object)
    steps = [f'{{"sensorReadingTime":{t}{s}{d}}}\n' for t, s, d in
             zip(ts[order].tolist(), serial_part[cust[order]].tolist(), distance[order].tolist(),
                 strict=True)]

    # Accelerometer: 1-4 readings per slot with distinct x/y/z; the first in the slot's round, any
    # further ones in the same or a later round.
    per_slot = rng.choice(4, size=k * SLOTS, p=ACCEL_PER_SLOT_P) + 1
    first_of_slot = np.cumsum(per_slot) - per_slot
    nth = np.arange(int(per_slot.sum())) - np.repeat(first_of_slot, per_slot)
    a_cust, a_ts, a_rnd = (np.repeat(v, per_slot) for v in (cust, ts, rnd))
    a_rnd = np.where(nth > 0, rng.integers(a_rnd, ROUNDS), a_rnd)
    base, stride = rng.integers(0, 18, k * SLOTS), rng.choice(XYZ_STRIDES, k * SLOTS)
    xyz = (np.repeat(base, per_slot) + nth * np.repeat(stride, per_slot)) % 18
    order = np.lexsort((-a_ts, a_cust, a_rnd, a_cust // GROUP_CUSTOMERS))
    user_part = np.array([f'{{"user":"{c.email[i]}","timestamp":' for i in ids.tolist()], dtype=object)
    accel = [f"{u}{t}{x}" for u, t, x in
             zip(user_part[a_cust[order]].tolist(), a_ts[order].tolist(), XYZ_TAILS[xyz[order]].tolist(),
                 strict=True)]
    return accel, steps


def _share_timestamps(rng: Rng, grid: I64, start: I64, step: I64) -> I64:
    """Move some slots onto the nearest grid timestamp of a customer recording at the same time.

    Only moves of less than half the customer's own step are made, so its timestamps stay distinct;
    a slot that is itself moved is never a target, so the shared value stays in both grids.
    """
    k, slots = grid.shape
    picked = rng.random(grid.shape) < SHARE_P
    who, slot = np.nonzero(picked)
    other = who + rng.integers(1, SHARE_NEIGHBOURS + 1, who.size) * rng.choice([-1, 1], who.size)
    ok = (other >= 0) & (other < k)
    who, slot, other = who[ok], slot[ok], other[ok]
    t = grid[who, slot]
    target = np.rint((t - start[other]) / step[other]).astype(np.int64)
    ok = (target >= 0) & (target < slots)
    who, slot, other, target, t = who[ok], slot[ok], other[ok], target[ok], t[ok]
    shared = grid[other, target]
    ok = (np.abs(shared - t) * 2 < step[who]) & ~picked[other, target]
    out = grid.copy()
    out[who[ok], slot[ok]] = shared[ok]
    return out


def _lines_per_file(total: int) -> int:
    """Lines per file: 10,000 like the real files, more at large scales to keep ~100 files."""
    return min(MAX_LINES_PER_FILE, max(MIN_LINES_PER_FILE, math.ceil(total / TARGET_FILES)))


class _Writer:
    """Appends lines to <root>/<source>/landing/<source>-<n>.json, starting a new file every
    `lines_per_file` lines; file numbers are fixed, so reruns give the same names."""

    def __init__(self, root: Path, source: str, first_file: int, lines_per_file: int,
                 say: Callable[[str], None]) -> None:
        self.folder = root / source / "landing"
        self.source = source
        self.first_file = first_file
        self.lines_per_file = lines_per_file
        self.say = say
        self.files = 0
        self.lines = 0
        self._fh: TextIO | None = None
        self._path = self.folder
        self._in_file = 0
        self.folder.mkdir(parents=True, exist_ok=True)
        for stale in self.folder.glob(f"{source}-*.json"):  # a rerun must not leave files of the last one
            stale.unlink()

    def write(self, lines: list[str]) -> None:
        pos = 0
        while pos < len(lines):
            if self._fh is None:
                number = FILE_NUMBER_BASE + (self.first_file + self.files) * FILE_NUMBER_STEP
                self._path = self.folder / f"{self.source}-{number}.json"
                self._fh = open(self._path, "w", encoding="utf-8", newline="\n")
                self.files += 1
                self._in_file = 0
            take = min(len(lines) - pos, self.lines_per_file - self._in_file)
            self._fh.write("".join(lines[pos:pos + take]))
            pos += take
            self._in_file += take
            self.lines += take
            if self._in_file == self.lines_per_file:
                self._finish()

    def close(self) -> None:
        if self._fh is not None:
            self._finish()

    def _finish(self) -> None:
        assert self._fh is not None
        self._fh.close()
        self._fh = None
        self.say(f"wrote {self.source}/landing/{self._path.name} ({self._in_file:,} lines)")
