"""A run event's record as the events worker makes it (``dispatch.handle_event``): written
with SQLAlchemy Core in two sends of statements, one PostgreSQL round trip each (psycopg's
pipeline mode), and still one transaction per event, under the execution's row lock,
recorded once however often it is delivered.

The round trips are counted from libpq's own trace of the connection (every message the
client sent and the server answered), not estimated. The races are real: two sessions of
one database, as two events worker processes would hold, the second waiting on the first
one's lock until it commits."""

from __future__ import annotations

import tempfile
import threading
import time
import uuid

import psycopg
import pytest
from sqlalchemy import event as sa_event
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from flowforge.app import upgrade_all
from flowforge_orchestrator import dispatch
from flowforge_orchestrator.runs import service
from flowforge_orchestrator.runs.models import RunEvent
from flowforge_orchestrator.tasks import PING_AFTER_IDLE
from flowforge_shared.contracts.events import run_event
from flowforge_shared.db.engine import Database, outages_retried
from tests.catalog.factories import csv_job, gold_job


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade_all(url)
    db = Database(url, ping_after_idle=None if request.param == "sqlite" else PING_AFTER_IDLE)
    yield db
    db.dispose()


@pytest.fixture
def postgres(fresh_postgres_url):
    upgrade_all(fresh_postgres_url)
    db = Database(fresh_postgres_url, ping_after_idle=PING_AFTER_IDLE)
    yield db
    db.dispose()


def _config(job: dict) -> dict:
    return {k: v for k, v in job.items() if k != "name"}


def start(database, jobs) -> tuple[str, dict[str, str]]:
    """An execution of ``jobs`` (id, config); (its id, job run id by job id)."""
    with database.session() as session:
        execution, _tasks = service.start(
            session,
            workflow_id="w1",
            workflow_name="w1",
            jobs=[(job_id, job_id, i, config) for i, (job_id, config) in enumerate(jobs)],
            selected=None,
            trigger="manual",
            actor="test",
        )
        return execution.id, {job.job_id: job.id for job in execution.jobs}


def event(execution_id: str, runs: dict[str, str], job_id: str, kind: str) -> dict:
    facets = {}
    if kind == "COMPLETE":
        facets = {"flowforge_result": {"rowsRead": 3, "rowsWritten": 3, "runSequence": 1}}
    return run_event(
        kind,
        job_run_id=runs[job_id],
        execution_id=execution_id,
        workflow_name="w1",
        job_id=job_id,
        job_name=job_id,
        attempt=1,
        owner="worker@elsewhere/abc:1.1",
        facets=facets,
    )


def state(database, execution_id: str) -> dict[str, tuple[str, bool]]:
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        return {job.job_id: (job.status, job.dispatched) for job in execution.jobs}


def recorded(database, event_id: str) -> int:
    with database.session() as session:
        return session.scalar(
            select(func.count()).select_from(RunEvent).where(RunEvent.event_id == event_id)
        )


def event_id(payload: dict) -> str:
    return payload["run"]["facets"]["flowforge_run"]["eventId"]


def chain(n: int) -> list[tuple[str, dict]]:
    """j0 (an ingest) -> j1 -> ... (gold jobs, each reading the one before)."""
    jobs = [("j0", _config(csv_job("bronze_c0")))]
    tables = ["bronze_c0"] + [f"gold_c{i}" for i in range(1, n)]
    jobs += [(f"j{i}", _config(gold_job(tables[i - 1], tables[i]))) for i in range(1, n)]
    return jobs


class Trips:
    """Round trips of the database's connections, from libpq's trace: a run of messages the
    client sent, answered by a run of messages from the server, is one."""

    def __init__(self, database: Database) -> None:
        self.file = tempfile.TemporaryFile("w+")
        fileno = self.file.fileno()

        def trace(pgconn) -> None:
            pgconn.trace(fileno)
            pgconn.set_trace_flags(psycopg.pq.Trace.SUPPRESS_TIMESTAMPS)

        sa_event.listen(database.engine, "connect", lambda conn, _record: trace(conn.pgconn))

        def checked_in(conn, _record) -> None:
            if conn is not None:  # libpq writes its trace through a buffer: flushed here
                conn.pgconn.untrace()
                trace(conn.pgconn)

        sa_event.listen(database.engine, "checkin", checked_in)
        database.engine.dispose()

    def take(self) -> int:
        self.file.seek(0)
        lines = self.file.read().splitlines()
        self.file.seek(0)
        self.file.truncate()
        count, last = 0, None
        for line in lines:
            side = line[:1]
            if side == "B" and last == "F":
                count += 1
            if side in ("F", "B"):
                last = side
        return count


def test_an_event_costs_two_round_trips_to_postgresql(postgres):
    execution_id, runs = start(postgres, chain(4))
    trips = Trips(postgres)
    counts: dict[str, list[int]] = {"START": [], "COMPLETE": [], "again": []}
    with outages_retried():  # as the events worker records (no ping of a recent connection)
        postgres.ping()
        trips.take()
        for i in range(4):
            for kind in ("START", "COMPLETE"):
                payload = event(execution_id, runs, f"j{i}", kind)
                dispatch.handle_event(postgres, payload)
                counts[kind].append(trips.take())
                dispatch.handle_event(postgres, payload)  # delivered again: changes nothing
                counts["again"].append(trips.take())
    # START: BEGIN, the lock, the job runs, the insert | the job's UPDATE(s), COMMIT.
    # COMPLETE: the same first trip | the finished job's and the next one's UPDATEs, COMMIT.
    # Again: the first trip finds the event recorded | COMMIT. (Before: 5, 6 and 4.)
    assert counts == {"START": [2] * 4, "COMPLETE": [2] * 4, "again": [2] * 8}
    assert state(postgres, execution_id) == {f"j{i}": ("succeeded", True) for i in range(4)}
    assert recorded(postgres, event_id(payload)) == 1
    # the record's autocommit mode ended with it: the pool's connection is back to
    # transactions (the marks' SET LOCAL, every other session)
    with postgres.engine.connect() as connection:
        assert connection.connection.driver_connection.autocommit is False
        assert connection.execute(text("SHOW transaction_isolation")).scalar() == "read committed"


def test_two_jobs_finishing_at_once_in_two_processes_dispatch_the_one_needing_both(postgres):
    """The second record waits for the first one's lock, then must see the first job
    succeeded: a read joined to the locking SELECT would see it running (PostgreSQL returns
    the joined rows as they were when that statement started) and never dispatch c."""
    jobs = [
        ("a", _config(csv_job("bronze_ra"))),
        ("b", _config(csv_job("bronze_rb"))),
        ("c", {**_config(gold_job("bronze_ra", "gold_rc"))}),
    ]
    jobs[2][1]["sourceConfig"] = {"type": "multi-table", "tables": ["bronze_ra", "bronze_rb"]}
    execution_id, runs = start(postgres, jobs)
    with postgres.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        assert {job.job_id: job.needs for job in execution.jobs}["c"] == ["a", "b"]
    for job_id in ("a", "b"):
        dispatch.handle_event(postgres, event(execution_id, runs, job_id, "START"))

    first = postgres.sessionmaker()
    _, first_tasks = service.record_event(first, event(execution_id, runs, "a", "COMPLETE"))
    assert first_tasks == []  # b still runs; the lock is held until `first` commits
    second: dict = {}

    def other_process() -> None:
        with postgres.session() as session:
            second["tasks"] = service.record_event(
                session, event(execution_id, runs, "b", "COMPLETE"), commit=True
            )[1]

    thread = threading.Thread(target=other_process)
    thread.start()
    _wait_for_a_lock_wait(postgres)
    first.commit()
    first.close()
    thread.join(10)
    assert [task.job_id for task in second["tasks"]] == ["c"]
    assert state(postgres, execution_id)["c"] == ("queued", True)


def test_one_event_delivered_twice_at_once_is_recorded_once(postgres):
    execution_id, runs = start(postgres, chain(2))
    dispatch.handle_event(postgres, event(execution_id, runs, "j0", "START"))
    complete = event(execution_id, runs, "j0", "COMPLETE")

    first = postgres.sessionmaker()
    _, first_tasks = service.record_event(first, complete)
    second: dict = {}

    def other_process() -> None:
        with postgres.session() as session:
            second["tasks"] = service.record_event(session, complete, commit=True)[1]

    thread = threading.Thread(target=other_process)
    thread.start()
    _wait_for_a_lock_wait(postgres)
    first.commit()
    first.close()
    thread.join(10)
    assert [task.job_id for task in first_tasks] == ["j1"]
    assert second["tasks"] == []
    assert recorded(postgres, event_id(complete)) == 1
    assert state(postgres, execution_id) == {"j0": ("succeeded", True), "j1": ("queued", True)}


def _wait_for_a_lock_wait(database: Database, timeout: float = 10.0) -> None:
    name = database.engine.url.database
    admin = "host=127.0.0.1 port=5432 user=postgres dbname=postgres"
    deadline = time.monotonic() + timeout
    with psycopg.connect(admin, autocommit=True) as connection:
        while time.monotonic() < deadline:
            waiting = connection.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s"
                " AND wait_event_type = 'Lock'",
                (name,),
            ).fetchone()[0]
            if waiting:
                return
            time.sleep(0.02)
    raise AssertionError("the second record never waited for the lock")


def test_an_event_of_an_unknown_execution_records_nothing(database):
    execution_id, runs = start(database, chain(2))
    stray = event(str(uuid.uuid4()), runs, "j0", "START")
    assert dispatch.handle_event(database, stray) == ([], {})
    assert recorded(database, event_id(stray)) == 0
    assert state(database, execution_id)["j0"] == ("queued", True)


def test_a_record_that_fails_midway_leaves_nothing_and_the_next_one_records(database):
    """A consumer of the COMPLETE (the watermark's store) fails after the event's insert:
    the whole record rolls back, and the connection goes on (the redelivery records it)."""
    execution_id, runs = start(database, chain(2))
    dispatch.handle_event(database, event(execution_id, runs, "j0", "START"))
    complete = event(execution_id, runs, "j0", "COMPLETE")

    def broken(_session, _event) -> None:
        raise RuntimeError("the watermark store failed")

    with pytest.raises(RuntimeError), database.session() as session:
        service.record_event(session, complete, [broken], commit=True)
    assert recorded(database, event_id(complete)) == 0
    assert state(database, execution_id)["j0"] == ("running", True)

    tasks, _queues = dispatch.handle_event(database, complete)
    assert [task.job_id for task in tasks] == ["j1"]
    assert recorded(database, event_id(complete)) == 1
    with database.session() as session:
        assert session.execute(text("SELECT 1")).scalar() == 1


def test_a_column_the_event_did_not_change_keeps_what_another_writer_committed(postgres):
    """Writers without the execution's lock (a send's mark, a heartbeat) may change a job
    run between the record's read and its write: the record writes only what the event
    changed, so their write stands."""
    execution_id, runs = start(postgres, chain(2))
    dispatch.handle_event(postgres, event(execution_id, runs, "j0", "START"))

    def meanwhile(_session, _event) -> None:  # between the two sends of the COMPLETE's record
        with postgres.engine.connect() as other:
            other.execute(
                text("UPDATE job_runs SET sent_epoch = 'redis-2' WHERE id = :id"),
                {"id": runs["j0"]},
            )
            other.commit()

    with postgres.session() as session:
        service.record_event(
            session, event(execution_id, runs, "j0", "COMPLETE"), [meanwhile], commit=True
        )
    with postgres.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        j0 = next(job for job in execution.jobs if job.job_id == "j0")
        assert (j0.status, j0.sent_epoch) == ("succeeded", "redis-2")


def test_a_send_is_marked_in_one_round_trip_after_the_ping(postgres):
    """The marks thread's transaction (``SET LOCAL synchronous_commit TO OFF``, the
    UPDATE, COMMIT) goes as one batch; its checkout still pings (it is not retried)."""
    execution_id, runs = start(postgres, chain(2))
    trips = Trips(postgres)
    postgres.ping()
    trips.take()
    dispatch.mark(postgres, {("redis-1", None): [(runs["j0"], 1)]})
    assert trips.take() == 2  # before: the ping, BEGIN, SET LOCAL, UPDATE, COMMIT (5)
    with postgres.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        j0 = next(job for job in execution.jobs if job.job_id == "j0")
        assert (j0.sent_epoch, j0.sent_at is not None, j0.owner) == ("redis-1", True, None)
        assert session.execute(text("SHOW synchronous_commit")).scalar() == "on"


def test_a_consumers_write_commits_with_the_event_or_neither_does(database):
    """A consumer of the COMPLETE writes through the session's ORM (the watermark's store)
    between the two sends: its write goes in the record's transaction, even unflushed; one
    that fails fails the record (nothing committed), not after the event's commit."""
    from flowforge_orchestrator.watermarks.models import JobWatermark
    from flowforge_shared.db.base import utcnow

    execution_id, runs = start(database, chain(2))
    dispatch.handle_event(database, event(execution_id, runs, "j0", "START"))
    complete = event(execution_id, runs, "j0", "COMPLETE")

    def store(session, _event, job_id="j0") -> None:
        session.add(
            JobWatermark(
                job_id=job_id,
                workflow_id="w1",
                column_name="id",
                kind="int",
                value="3",
                execution_id=execution_id,
                run_sequence=1,
                updated_at=utcnow(),
            )
        )

    with database.session() as session:
        store(session, None, job_id="j0")  # already there: the consumer's insert will fail
    with pytest.raises(IntegrityError), database.session() as session:
        service.record_event(session, complete, [store], commit=True)
    assert recorded(database, event_id(complete)) == 0
    assert state(database, execution_id)["j0"] == ("running", True)
    with database.session() as session:
        session.delete(session.get(JobWatermark, "j0"))

    with database.session() as session:
        _, tasks = service.record_event(session, complete, [store], commit=True)
    assert [task.job_id for task in tasks] == ["j1"]
    with database.session() as session:
        assert session.get(JobWatermark, "j0").value == "3"
    assert state(database, execution_id)["j0"] == ("succeeded", True)
