"""Time axes whose ticks a person can tell apart: each tick at a whole step (a second, 5 minutes, a day...)
labelled to that step, and no more ticks than the chart's width holds. Left to Vega, runs seconds apart
got ticks a fraction of a minute apart, each labelled with the same minute."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

# Steps from the finest, as (unit, count); seconds, minutes, hours and days are counted from the epoch.
STEPS = [("second", n) for n in (1, 5, 15, 30)] + [("minute", n) for n in (1, 5, 15, 30)] + \
        [("hour", n) for n in (1, 3, 6, 12)] + [("day", n) for n in (1, 2, 7, 14)] + \
        [("month", n) for n in (1, 3, 6)] + [("year", n) for n in (1, 2, 5, 10, 25, 50, 100)]
UNIT_SECONDS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400}
APPROX_SECONDS = {**UNIT_SECONDS, "month": 2_629_746, "year": 31_556_952}
MOST = 12  # ticks of an axis, at most
FORMATS = {"second": "%H:%M:%S", "minute": "%H:%M", "hour": "%H:%M", "day": "%Y-%m-%d", "month": "%Y-%m",
           "year": "%Y"}
CHAR_PX = 6.5  # the width of a label's character (10 px, a wide sans-serif), and the room between labels
GAP_PX = 20


@dataclass(frozen=True)
class TimeAxis:
    ticks: list[datetime]  # UTC
    format: str  # strftime / d3-time-format, as Vega applies it in UTC
    days: str | None  # the day (or two) of every tick, when the labels leave it out: for the axis title

    @property
    def domain(self) -> tuple[datetime, datetime]:
        return self.ticks[0], self.ticks[-1]

    def labels(self) -> list[str]:
        return [t.strftime(self.format) for t in self.ticks]


Moment = datetime | date | str | int | float


def axis(times: list[Moment], width: int, finest: str = "second") -> TimeAxis:
    """The axis over `times` (datetimes, dates, ISO 8601 text, or epoch milliseconds as Vega reads numbers;
    UTC unless they say otherwise) for a chart `width` pixels wide, with no step finer than the unit `finest`."""
    moments = sorted(_utc(t) for t in times)
    low, high = moments[0], moments[-1]
    steps = STEPS[[unit for unit, _ in STEPS].index(finest):]
    for unit, count in steps:
        if (high - low).total_seconds() / (APPROX_SECONDS[unit] * count) > MOST and (unit, count) != steps[-1]:
            continue  # far too many (and not made: a second's ticks over years would take a while)
        ticks = _ticks(low, high, unit, count)
        fmt, days = FORMATS[unit], None
        if unit in ("second", "minute", "hour"):
            first, last = ticks[0].date(), ticks[-1].date()
            if ticks[-1] - ticks[0] >= timedelta(days=1):
                fmt = "%b %d " + fmt  # a day or more: a time of day would come twice
            else:
                days = f"{first}" if first == last else f"{first} to {last}"
        room = int(width // (len(ticks[0].strftime(fmt)) * CHAR_PX + GAP_PX))
        if len(ticks) <= min(MOST, max(2, room)) or (unit, count) == steps[-1]:
            return TimeAxis(ticks, fmt, days)
    raise AssertionError("unreachable: the last step is always taken")


def _utc(value: Moment) -> datetime:
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, tz=UTC)
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _ticks(low: datetime, high: datetime, unit: str, count: int) -> list[datetime]:
    """Every whole step from the last at or before `low` to the first at or after `high`."""
    out = [_floor(low, unit, count)]
    if low == high == out[0]:  # one time, on a step (a day): in the middle
        out = [_floor(low - timedelta(microseconds=1), unit, count), low, _next(low, unit, count)]
    while out[-1] < high or len(out) < 2:  # two at least: a domain with a width
        out.append(_next(out[-1], unit, count))
    return out


def _floor(moment: datetime, unit: str, count: int) -> datetime:
    if unit in UNIT_SECONDS:
        step = UNIT_SECONDS[unit] * count
        epoch = int(moment.timestamp() // step * step)
        return datetime.fromtimestamp(epoch, tz=UTC)
    if unit == "month":
        months = (moment.year * 12 + moment.month - 1) // count * count
        return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    return datetime(moment.year // count * count or 1, 1, 1, tzinfo=UTC)


def _next(moment: datetime, unit: str, count: int) -> datetime:
    if unit in UNIT_SECONDS:
        return moment + timedelta(seconds=UNIT_SECONDS[unit] * count)
    if unit == "month":
        months = moment.year * 12 + moment.month - 1 + count
        return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    return datetime(moment.year + count, 1, 1, tzinfo=UTC)
