"""Which failures of a run event's record are tried again (the orchestrator's database
cannot be used) and which fail the delivery as before (anything else: a bad event must not
be retried for ever). The whole path, with a real outage, is in tests/system/test_faults.py."""

from __future__ import annotations

import sqlite3

from sqlalchemy import exc as sa_exc

from flowforge_orchestrator.tasks import OUTAGE_RETRY_MAX_SECONDS, outage_countdown


def _sqlite_error(code: int) -> sa_exc.OperationalError:
    error = sqlite3.OperationalError("database is locked")
    error.sqlite_errorcode = code
    return sa_exc.OperationalError("INSERT ...", {}, error)


def test_an_outage_is_tried_again_sooner_then_about_every_30_s_with_jitter():
    locked = _sqlite_error(sqlite3.SQLITE_BUSY)
    ceilings = [1, 2, 4, 8, 16, 30, 30, 30]
    for retries, ceiling in enumerate(ceilings):
        delays = {outage_countdown(locked, retries) for _ in range(50)}
        assert all(ceiling / 2 <= delay <= ceiling for delay in delays), (retries, delays)
        assert len(delays) > 1, "jittered: events held back together come back spread out"
    # an outage of days: the count of retries grows without bound, the delay does not
    assert 15 <= outage_countdown(locked, 5000) <= OUTAGE_RETRY_MAX_SECONDS


def test_anything_else_fails_the_delivery():
    assert outage_countdown(ValueError("not an event"), 0) is None
    assert outage_countdown(KeyError("run"), 3) is None
    assert outage_countdown(_sqlite_error(sqlite3.SQLITE_CONSTRAINT), 0) is None
