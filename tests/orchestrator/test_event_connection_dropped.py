"""The events worker records a run event without pinging a pooled connection it used less
than a second ago (``PING_AFTER_IDLE``: one PostgreSQL round trip less per event of a chain).
A connection the server dropped within that time is then found by the record's first
statement: that is an outage of the database, which the events worker retries
(``outage_countdown``), and the retry records the event once, dispatching the next job once.
Everything else on the same pool (a run request, a heartbeat) still pings first and never
sees the dropped connection. Real PostgreSQL; the server ends the connections with
``pg_terminate_backend``, as an administrator or a restart would."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select, text

from flowforge.app import upgrade_all
from flowforge_orchestrator import dispatch
from flowforge_orchestrator.runs.models import RunEvent
from flowforge_orchestrator.tasks import PING_AFTER_IDLE, outage_countdown
from flowforge_shared.db.engine import Database, outages_retried
from tests.orchestrator.test_dispatch_hop import Runtime, chain, event, jobs

ADMIN = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"


@pytest.fixture
def database(fresh_postgres_url):
    upgrade_all(fresh_postgres_url)
    db = Database(fresh_postgres_url, ping_after_idle=PING_AFTER_IDLE)
    yield db
    dispatch.flush_marks()
    db.dispose()


def _end_its_connections(database: Database) -> int:
    """The server ends every session of the test's database; how many it ended."""
    name = database.engine.url.database
    with psycopg.connect(ADMIN, autocommit=True) as admin:
        ended = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s",
            (name,),
        ).fetchone()
    return int(ended[0])


def _completes(database: Database, job_run_id: str) -> int:
    with database.session() as session:
        return session.scalar(
            select(func.count())
            .select_from(RunEvent)
            .where(RunEvent.job_run_id == job_run_id, RunEvent.event_type == "COMPLETE")
        )


def test_a_connection_dropped_after_its_last_use_is_an_outage_retried_once(database):
    execution_id, runs = chain(database)  # ingest -> gold, the ingest job started
    dispatch.flush_marks()
    runtime = Runtime([])
    complete = event(execution_id, runs[0], "COMPLETE")
    assert _end_its_connections(database) >= 1

    # The delivery's record meets the dropped connection: an outage, tried again later.
    with pytest.raises(Exception) as failed, outages_retried():
        dispatch.record_and_dispatch(database, runtime, complete, None)
    assert 0.5 <= outage_countdown(failed.value, 0) <= 1  # an outage: tried again in about 1 s
    assert runtime.sent == []
    assert jobs(database, execution_id)["a"]["status"] == "running"

    # The retry (the same event, sent again) records it and dispatches the next job once.
    with outages_retried():
        assert dispatch.record_and_dispatch(database, runtime, complete, None) == 1
        assert dispatch.record_and_dispatch(database, runtime, complete, None) == 0
    dispatch.flush_marks()
    assert runtime.sent == [(runs[1], 1)]
    assert _completes(database, runs[0]) == 1
    assert jobs(database, execution_id) == {
        "a": {"status": "succeeded", "attempt": 1, "dispatched": True, "sent": True},
        "b": {"status": "queued", "attempt": 1, "dispatched": True, "sent": True},
    }


def test_everything_else_on_the_pool_still_pings_and_never_sees_a_dropped_connection(database):
    execution_id, runs = chain(database)
    dispatch.flush_marks()
    assert _end_its_connections(database) >= 1

    # A heartbeat (no outage retry) gets a fresh connection from the ping, and counts.
    beat = {"jobRunId": runs[0], "attempt": 1, "owner": "worker@elsewhere/abc:1.1"}
    assert dispatch.handle_heartbeat(database, beat) is True


def test_a_connection_idle_longer_is_pinged_before_an_event_is_recorded(database, monkeypatch):
    execution_id, runs = chain(database)
    dispatch.flush_marks()
    monkeypatch.setattr("flowforge_shared.db.engine.time.monotonic", _later(PING_AFTER_IDLE))
    assert _end_its_connections(database) >= 1

    runtime = Runtime([])
    with outages_retried():
        assert (
            dispatch.record_and_dispatch(
                database, runtime, event(execution_id, runs[0], "COMPLETE"), None
            )
            == 1
        )
    assert runtime.sent == [(runs[1], 1)]
    with database.session() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1


def _later(seconds: float):
    """time.monotonic, ``seconds`` ahead of the real one (every connection looks idle)."""
    import time

    real = time.monotonic
    return lambda: real() + seconds
