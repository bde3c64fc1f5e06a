"""Cron times and misfire plans as pure functions: DST days in two zones, and what a
scheduler outage becomes under each misfire policy (a fake clock, no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowforge_orchestrator.triggers import cron
from flowforge_orchestrator.triggers.scheduler import plan
from flowforge_orchestrator.triggers.schemas import Misfire

NEW_YORK = cron.zone("America/New_York")
PARIS = cron.zone("Europe/Paris")
UTC_ZONE = cron.zone("UTC")
GRACE = timedelta(seconds=60)


def local(times, tz):
    return [time.astimezone(tz).isoformat() for time in times]


def at(*parts) -> datetime:
    return datetime(*parts, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "before", "expected"),
    [
        # spring forward: 02:30 does not exist that day; it runs once, at 03:30
        (
            NEW_YORK,
            at(2026, 3, 7),
            ["2026-03-07T02:30:00-05:00", "2026-03-08T03:30:00-04:00", "2026-03-09T02:30:00-04:00"],
        ),
        (
            PARIS,
            at(2026, 3, 28),
            ["2026-03-28T02:30:00+01:00", "2026-03-29T03:30:00+02:00", "2026-03-30T02:30:00+02:00"],
        ),
    ],
)
def test_daily_0230_runs_once_on_the_spring_forward_day(tz, before, expected):
    assert local(cron.fire_times("30 2 * * *", tz, before, 3), tz) == expected


@pytest.mark.parametrize(
    ("tz", "before", "expected"),
    [
        # fall back: 01:30 happens twice in New York; it runs once, the first time
        (
            NEW_YORK,
            at(2026, 10, 31, 12),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"],
        ),
        # and 02:30 twice in Paris
        (
            PARIS,
            at(2026, 10, 24, 12),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"],
        ),
    ],
)
def test_daily_time_in_the_repeated_hour_runs_once_on_the_fall_back_day(tz, before, expected):
    expression = "30 1 * * *" if tz is NEW_YORK else "30 2 * * *"
    assert local(cron.fire_times(expression, tz, before, 2), tz) == expected


def test_an_interval_schedule_keeps_its_pace_through_both_dst_days():
    # every 30 minutes: the repeated hour is run too, the missing one is not invented
    fall = cron.fire_times("*/30 * * * *", NEW_YORK, at(2026, 11, 1, 5, 15), 4)
    assert [b - a for a, b in zip(fall, fall[1:], strict=False)] == [timedelta(minutes=30)] * 3
    assert local(fall, NEW_YORK)[1:3] == ["2026-11-01T01:00:00-05:00", "2026-11-01T01:30:00-05:00"]
    spring = cron.fire_times("*/30 * * * *", PARIS, at(2026, 3, 29, 0, 15), 3)
    assert local(spring, PARIS) == [
        "2026-03-29T01:30:00+01:00",
        "2026-03-29T03:00:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]
    assert spring[1] - spring[0] == timedelta(minutes=30)


def test_seconds_as_a_sixth_field():
    times = cron.fire_times("* * * * * */2", UTC_ZONE, at(2026, 1, 1, 0, 0, 1), 3)
    assert [t.second for t in times] == [2, 4, 6]


def test_bad_expressions_and_zones_say_why():
    with pytest.raises(cron.CronError, match="5 fields"):
        cron.check_expression("* * * * * * *")
    with pytest.raises(cron.CronError, match="not a valid cron expression"):
        cron.check_expression("0 25 * * *")
    with pytest.raises(cron.CronError, match="IANA"):
        cron.zone("Europe/Atlantis")


EVERY_MINUTE = "* * * * *"
OUTAGE_FROM = at(2026, 6, 1, 12, 0)  # next_fire_at when the scheduler stopped
BACK_AT = at(2026, 6, 1, 12, 30, 5)  # it is back 30 minutes later


def outage_plan(misfire: Misfire, max_catch_up: int = 10):
    return plan(
        EVERY_MINUTE,
        UTC_ZONE,
        due_from=OUTAGE_FROM,
        now=BACK_AT,
        misfire=misfire,
        max_catch_up=max_catch_up,
        grace=GRACE,
    )


def test_on_time_firings_fire_and_the_trigger_moves_past_now():
    result = plan(
        EVERY_MINUTE,
        UTC_ZONE,
        due_from=at(2026, 6, 1, 12, 0),
        now=at(2026, 6, 1, 12, 0, 1),
        misfire=Misfire.SKIP,
        max_catch_up=10,
        grace=GRACE,
    )
    assert result.fire == [(at(2026, 6, 1, 12, 0), None)] and result.skipped == []
    assert result.next_fire_at == at(2026, 6, 1, 12, 1)


def test_misfire_skip_runs_only_what_is_on_time_and_records_the_miss():
    result = outage_plan(Misfire.SKIP)
    # 12:30 is 5 s late (within the grace): it runs; 12:00..12:29 were missed
    assert result.fire == [(at(2026, 6, 1, 12, 30), None)]
    [(time, why)] = result.skipped
    assert time == at(2026, 6, 1, 12, 29)
    assert "missed: 30 firing(s)" in why and "skip" in why
    assert result.next_fire_at == at(2026, 6, 1, 12, 31)


def test_misfire_run_once_runs_one_for_all_missed():
    result = outage_plan(Misfire.RUN_ONCE)
    assert [time for time, _ in result.fire] == [at(2026, 6, 1, 12, 29), at(2026, 6, 1, 12, 30)]
    assert "one run for 30 missed" in result.fire[0][1]
    assert result.skipped == []


def test_misfire_catch_up_runs_each_missed_at_most_max():
    result = outage_plan(Misfire.CATCH_UP, max_catch_up=3)
    assert [time for time, _ in result.fire] == [
        at(2026, 6, 1, 12, 27),
        at(2026, 6, 1, 12, 28),
        at(2026, 6, 1, 12, 29),
        at(2026, 6, 1, 12, 30),
    ]
    assert "27 earlier missed firing(s) not run (maxCatchUp 3)" in result.fire[0][1]
    everything = outage_plan(Misfire.CATCH_UP, max_catch_up=100)
    assert len(everything.fire) == 31 and "not run" not in everything.fire[0][1]


def test_a_long_outage_of_a_tight_schedule_is_not_enumerated_from_its_start():
    result = plan(
        "* * * * * *",  # every second
        UTC_ZONE,
        due_from=at(2026, 6, 1),
        now=at(2026, 6, 3),  # two days later
        misfire=Misfire.SKIP,
        max_catch_up=10,
        grace=timedelta(0),
    )
    [(time, why)] = result.skipped
    assert time == at(2026, 6, 2, 23, 59, 59) and "1000 or more" in why
    assert result.fire == [(at(2026, 6, 3), None)]
