"""Cron times of a trigger in its time zone: pure functions over ``croniter``.

croniter walks wall-clock times (naive local datetimes); each is then placed on the UTC
timeline here, which is what makes DST days behave as people expect:

- spring forward: a wall time in the gap (02:30 on the day clocks jump from 02:00 to 03:00)
  does not exist; it fires once, as far after the gap's start as it was meant to be (03:30:
  Python's ``fold=0`` reading of a missing time). Times in the gap that land on a later
  wall time of the same expression fire once.
- fall back: a wall time that occurs twice (01:30) fires once, at its first occurrence.
  An expression whose hour field is ``*`` (it fires every hour) fires in the repeated hour
  as well, so an interval schedule keeps its pace in real time.

Expressions have 5 fields (minute hour day month weekday) or 6, the 6th being seconds
(croniter's order), for tight schedules and tests.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

MARGIN = timedelta(hours=3)  # more than any DST shift: past it, no earlier instant can come
MAX_STEPS = 50_000  # wall times walked near a clock change (a per-second cron: 6 h)


class CronError(ValueError):
    """A cron expression or time zone that cannot be used; the message says why."""


def check_expression(expression: str) -> str:
    """The expression, normalised (single spaces); CronError saying why it is not usable."""
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(
            f"a cron expression has 5 fields (minute hour day month weekday) or 6 (seconds "
            f"last); {expression!r} has {len(fields)}"
        )
    normalised = " ".join(fields)
    try:
        croniter(normalised, datetime(2000, 1, 1))
    except Exception as error:  # noqa: BLE001 - croniter's errors are many; all mean "bad"
        raise CronError(f"{normalised!r} is not a valid cron expression: {error}") from None
    return normalised


def zone(name: str) -> ZoneInfo:
    """The IANA time zone; CronError when there is none of that name."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise CronError(
            f"{name!r} is not an IANA time zone (e.g. 'UTC', 'Europe/Paris', 'America/New_York')"
        ) from None


def _hourly(expression: str) -> bool:
    fields = expression.split()
    return fields[1] == "*"


def _instants(wall: datetime, tz: ZoneInfo, hourly: bool) -> list[datetime]:
    first = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if not hourly:
        return [first]
    second = wall.replace(tzinfo=tz, fold=1).astimezone(UTC)
    return [first] if second == first else [first, second]


def _near_shift(tz: ZoneInfo, at: datetime) -> bool:
    """Whether the zone's offset changes within MARGIN of ``at`` (a DST day)."""
    return (at - MARGIN).astimezone(tz).utcoffset() != (at + MARGIN).astimezone(tz).utcoffset()


def _next_wall(walls: croniter, expression: str, after: datetime) -> datetime:
    try:
        return walls.get_next(datetime)
    except Exception as error:  # noqa: BLE001 - e.g. "0 0 30 2 *" never matches a day
        raise CronError(
            f"{expression!r} does not fire after {after.isoformat()}: {error}"
        ) from None


def next_after(expression: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first firing strictly after ``after`` (an aware datetime), in UTC."""
    hourly = _hourly(expression)
    if not _near_shift(tz, after):
        # No clock change near: wall times after ``after``'s own map in order.
        walls = croniter(expression, after.astimezone(tz).replace(tzinfo=None))
        first = _instants(_next_wall(walls, expression, after), tz, hourly)[0]
        if first > after:
            return first
    # Near a clock change: walk from before it and keep the earliest instant after ``after``
    # (a wall time in the gap lands later than the wall times just after the gap).
    start = (after - MARGIN).astimezone(tz).replace(tzinfo=None)
    walls = croniter(expression, start)
    best: datetime | None = None
    for _ in range(MAX_STEPS):
        instants = _instants(_next_wall(walls, expression, after), tz, hourly)
        for instant in instants:
            if instant > after and (best is None or instant < best):
                best = instant
        if best is not None and instants[0] - best > MARGIN:
            return best
    if best is None:
        raise CronError(f"{expression!r} does not fire after {after.isoformat()}")
    return best


def fire_times(expression: str, tz: ZoneInfo, after: datetime, count: int) -> list[datetime]:
    """The next ``count`` firings strictly after ``after``, in UTC."""
    times: list[datetime] = []
    for _ in range(count):
        after = next_after(expression, tz, after)
        times.append(after)
    return times


def between(
    expression: str, tz: ZoneInfo, start: datetime, end: datetime, limit: int
) -> tuple[list[datetime], bool]:
    """Firings in ``[start, end]`` (at most ``limit``, the earliest), and whether there
    were more."""
    times: list[datetime] = []
    at = next_after(expression, tz, start - timedelta(microseconds=1))
    while at <= end:
        if len(times) == limit:
            return times, True
        times.append(at)
        at = next_after(expression, tz, at)
    return times, False


def latest_before(
    expression: str, tz: ZoneInfo, start: datetime, end: datetime, count: int
) -> list[datetime]:
    """The last ``count`` firings in ``[start, end]``, ascending, found walking back from
    ``end`` (a long outage of a tight schedule is not enumerated from its start)."""
    hourly = _hourly(expression)
    near = _near_shift(tz, end)
    walls = croniter(expression, end.astimezone(tz).replace(tzinfo=None) + timedelta(seconds=1))
    found: set[datetime] = set()
    for _ in range(MAX_STEPS):
        wall = walls.get_prev(datetime)
        instants = _instants(wall, tz, hourly)
        found.update(i for i in instants if start <= i <= end)
        if len(found) >= count and (
            not near or max(instants) < min(sorted(found)[-count:]) - MARGIN
        ):
            break
        if max(instants) < start - MARGIN:
            break
    return sorted(found)[-count:] if count else []
