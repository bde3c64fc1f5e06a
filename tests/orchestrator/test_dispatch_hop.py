"""The hop from one job's COMPLETE to the next job's task, as the events worker makes it:
the record commits, the next task is sent at once, and only then is the event passed on to
the services served elsewhere and the send recorded. What makes that safe is checked here on
real databases (SQLite and PostgreSQL), with a real SIGKILL between the commit and the send:
the event's message is redelivered (late acks), its record dispatches nothing twice, the
services get the event again, and the reaper sends the next job's task exactly once."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid

import pytest

from flowforge.app import upgrade_all
from flowforge_orchestrator import dispatch
from flowforge_orchestrator.reaper import Reaper
from flowforge_orchestrator.runs import service
from flowforge_shared.contracts.events import run_event
from flowforge_shared.contracts.tasks import CATALOG_RECORD_OUTPUTS, LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from tests.catalog.factories import csv_job, gold_job

REMOTE = "remote"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        url = request.getfixturevalue("fresh_postgres_url")
    upgrade_all(url)
    db = Database(url)
    yield db
    db.dispose()


class Runtime:
    """The broker as the orchestrator sees it: takes tasks and says so; ``on_send`` runs at
    each send (to look at the database at that moment)."""

    owner = None

    def __init__(self, log: list, on_send=None) -> None:
        self.log, self.on_send, self.sent = log, on_send, []

    def epoch(self) -> str:
        return "redis-1"

    def backlog(self) -> int:
        return 0

    def send(self, tasks, queues):
        if self.on_send is not None:
            self.on_send(tasks)
        for task in tasks:
            self.log.append(("task", task.job_run_id, task.attempt))
            self.sent.append((task.job_run_id, task.attempt))
        return [task.job_run_id for task in tasks], "redis-1"

    def cancel(self, execution_id, job_run_ids) -> None:
        pass


class Bus:
    """The process's bus: ``local`` names are served here (a direct call), the others are
    messages to their owners' queues; both are logged in the order they happen."""

    def __init__(self, log: list, local=(), on_local=None) -> None:
        self.log, self.local, self.on_local = log, set(local), on_local

    def serves(self, name: str) -> bool:
        return name in self.local

    def send(self, name, payload, *, queue):
        if name in self.local and self.on_local is not None:
            self.on_local(name, payload)
        self.log.append(("local" if name in self.local else REMOTE, name, payload["eventType"]))


def chain(database) -> tuple[str, list]:
    """An execution of ingest -> gold whose first job has started; (its id, job run ids)."""
    jobs = [
        ("a", "ingest", 0, {k: v for k, v in csv_job("bronze_tx").items() if k != "name"}),
        ("b", "gold", 1, {k: v for k, v in gold_job("bronze_tx", "gold_tx").items()}),
    ]
    with database.session() as session:
        execution, tasks = service.start(
            session,
            workflow_id="w1",
            workflow_name="w1",
            jobs=jobs,
            selected=None,
            trigger="manual",
            actor="test",
        )
        execution_id = execution.id
        runs = [job.id for job in execution.jobs]
    dispatch.send_and_mark(database, Runtime([]), tasks, {tasks[0].job_run_id: "ingest"})
    dispatch.handle_event(database, event(execution_id, runs[0], "START"))
    return execution_id, runs


def event(execution_id: str, job_run_id: str, kind: str, job_id: str = "a") -> dict:
    facets = {}
    if kind == "COMPLETE":
        facets = {"flowforge_result": {"rowsRead": 3, "rowsWritten": 3, "runSequence": 1}}
    return run_event(
        kind,
        job_run_id=job_run_id,
        execution_id=execution_id,
        workflow_name="w1",
        job_id=job_id,
        job_name=job_id,
        attempt=1,
        owner="worker@elsewhere/abc:1.1",
        facets=facets,
    )


def jobs(database, execution_id: str) -> dict[str, dict]:
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        return {
            job.job_id: {
                "status": job.status,
                "attempt": job.attempt,
                "dispatched": job.dispatched,
                "sent": job.sent_at is not None,
            }
            for job in execution.jobs
        }


def reaper(database, runtime) -> Reaper:
    return Reaper(database, runtime, Settings(dispatch_grace=0.05, heartbeat_timeout=60))


# A real events worker's record of the COMPLETE, killed by SIGKILL once its commit is in and
# before its send: the runtime's send is where it dies.
KILLED_BETWEEN_COMMIT_AND_SEND = """
import json, os, signal, sys
from flowforge_orchestrator import dispatch
from flowforge_shared.db.engine import Database

class DiesAtSend:
    owner = None
    def send(self, tasks, queues):
        os.kill(os.getpid(), signal.SIGKILL)

url, complete = sys.argv[1], json.loads(sys.argv[2])
dispatch.record_and_dispatch(Database(url), DiesAtSend(), complete, None)
"""


def test_killed_between_commit_and_send_the_next_job_still_starts_once(database):
    execution_id, runs = chain(database)
    complete = event(execution_id, runs[0], "COMPLETE")
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BETWEEN_COMMIT_AND_SEND, database.url, json.dumps(complete)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # The record committed: the job succeeded, the next one is dispatched and never sent.
    assert jobs(database, execution_id) == {
        "a": {"status": "succeeded", "attempt": 1, "dispatched": True, "sent": True},
        "b": {"status": "queued", "attempt": 1, "dispatched": True, "sent": False},
    }

    # The message was never acknowledged: it is delivered again to another events worker.
    log: list = []
    runtime, bus = Runtime(log), Bus(log)
    assert dispatch.record_and_dispatch(database, runtime, complete, bus) == 0
    assert runtime.sent == []  # the record was there already: nothing dispatched twice
    assert log == [  # ... and the services still get the event, the catalog included
        (REMOTE, LINEAGE_RECORD_EVENT, "COMPLETE"),
        (REMOTE, CATALOG_RECORD_OUTPUTS, "COMPLETE"),
    ]
    assert jobs(database, execution_id)["b"]["attempt"] == 1

    # The reaper sends the unsent dispatch after the grace: the same attempt, once.
    time.sleep(0.1)
    sweeper = reaper(database, runtime)
    sweeper.sweep()
    sweeper.sweep()
    assert runtime.sent == [(runs[1], 1)]
    assert jobs(database, execution_id)["b"] == {
        "status": "queued",
        "attempt": 1,
        "dispatched": True,
        "sent": True,
    }
    dispatch.handle_event(database, event(execution_id, runs[1], "START", "b"))
    dispatch.handle_event(database, event(execution_id, runs[1], "COMPLETE", "b"))
    assert {job["status"] for job in jobs(database, execution_id).values()} == {"succeeded"}
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        assert execution.status == "succeeded"


def test_the_next_task_goes_out_after_the_commit_and_before_the_services_get_the_event(
    database,
):
    execution_id, runs = chain(database)
    log: list = []
    seen_at_send: list = []
    runtime = Runtime(log, on_send=lambda tasks: seen_at_send.append(jobs(database, execution_id)))
    bus = Bus(log)
    assert (
        dispatch.record_and_dispatch(
            database, runtime, event(execution_id, runs[0], "COMPLETE"), bus
        )
        == 1
    )
    # At the send, another session already saw the COMPLETE's record committed.
    assert seen_at_send == [
        {
            "a": {"status": "succeeded", "attempt": 1, "dispatched": True, "sent": True},
            "b": {"status": "queued", "attempt": 1, "dispatched": True, "sent": False},
        }
    ]
    assert log == [
        ("task", runs[1], 1),
        (REMOTE, LINEAGE_RECORD_EVENT, "COMPLETE"),
        (REMOTE, CATALOG_RECORD_OUTPUTS, "COMPLETE"),
    ]
    assert jobs(database, execution_id)["b"]["sent"] is True  # the send is recorded after


def test_services_served_here_have_the_event_before_the_run_shows_it(database):
    """In one process (the embedded default) the catalog and the lineage service are direct
    calls, made before the record: once the run shows the job succeeded, they have it."""
    execution_id, runs = chain(database)
    log: list = []
    status_when_handled = []
    bus = Bus(
        log,
        local={LINEAGE_RECORD_EVENT, CATALOG_RECORD_OUTPUTS},
        on_local=lambda name, _: status_when_handled.append(
            (name, jobs(database, execution_id)["a"]["status"])
        ),
    )
    dispatch.record_and_dispatch(
        database, Runtime(log), event(execution_id, runs[0], "COMPLETE"), bus
    )
    assert status_when_handled == [
        (LINEAGE_RECORD_EVENT, "running"),
        (CATALOG_RECORD_OUTPUTS, "running"),
    ]
    assert [entry[0] for entry in log] == ["local", "local", "task"]


def test_an_event_whose_record_fails_is_still_passed_on(tmp_path):
    """A delivery whose record raises (here: a database without the orchestrator's tables)
    still reaches the services served elsewhere, as it did when they came first."""
    broken = Database(f"sqlite:///{tmp_path / 'empty.db'}")
    log: list = []
    complete = event(str(uuid.uuid4()), str(uuid.uuid4()), "COMPLETE")
    with pytest.raises(Exception, match="no such table"):
        dispatch.record_and_dispatch(broken, Runtime(log), complete, Bus(log))
    assert log == [
        (REMOTE, LINEAGE_RECORD_EVENT, "COMPLETE"),
        (REMOTE, CATALOG_RECORD_OUTPUTS, "COMPLETE"),
    ]
    broken.dispose()


def test_every_delivery_of_a_job_run_is_counted_in_one_round_trip_never_below_the_floor():
    """The worker's delivery count (one pipelined round trip to Redis before START): each
    delivery counts, the count never falls below the attempt the orchestrator dispatched (a
    Redis that forgot it), and it expires after a day."""
    from tests.conftest import require_service

    require_service("Redis", "127.0.0.1", 6379)
    from flowforge_runtime.worker import ATTEMPT_KEY, next_attempt, redis_client

    settings = Settings(broker_url="redis://127.0.0.1:6379/13")
    job_run_id = str(uuid.uuid4())
    key = ATTEMPT_KEY.format(job_run_id=job_run_id)
    client = redis_client(settings.broker_url)
    try:
        assert [next_attempt(settings, job_run_id) for _ in range(3)] == [1, 2, 3]
        assert 86_000 < client.ttl(key) <= 86_400
        client.delete(key)  # a Redis restarted without persistence
        assert next_attempt(settings, job_run_id, floor=4) == 4
        assert int(client.get(key)) == 4 and 86_000 < client.ttl(key) <= 86_400
        assert next_attempt(settings, job_run_id, floor=4) == 5
    finally:
        client.delete(key)
