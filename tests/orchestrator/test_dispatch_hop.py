"""The hop from one job's COMPLETE to the next job's task, as the events worker makes it:
the record commits, the next task is sent at once, the send is recorded by the process's
marks thread while the event is passed on to the services served elsewhere. What makes that
safe is checked here on real databases (SQLite and PostgreSQL), with a real SIGKILL between
the commit and the send, and another between the send and its mark: the event's message is
redelivered (late acks), its record dispatches nothing twice, the services get the event
again, the reaper sends the next job's task again as the same attempt, and of two copies of
an attempt a worker runs one (a Redis server of the test's own, so that it can also be
restarted: a send that reused the identity of the server before the restart)."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import threading
import time
import uuid

import pytest

from flowforge.app import upgrade_all
from flowforge_orchestrator import dispatch
from flowforge_orchestrator.reaper import Reaper
from flowforge_orchestrator.runs import service
from flowforge_shared.contracts.events import run_event
from flowforge_shared.contracts.tasks import (
    CATALOG_RECORD_OUTPUTS,
    COPY_HEADER,
    LINEAGE_RECORD_EVENT,
)
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from tests.catalog.factories import csv_job, gold_job
from tests.system.processes import RedisServer

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


def event(
    execution_id: str, job_run_id: str, kind: str, job_id: str = "a", attempt: int = 1
) -> dict:
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
        attempt=attempt,
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
    assert dispatch.flush_marks()
    assert jobs(database, execution_id)["b"]["sent"] is True  # the send is recorded after


def test_the_events_worker_goes_on_while_the_send_is_being_recorded(database, monkeypatch):
    """The mark is the marks thread's: the record of the event returns (its message is
    acknowledged, the next event taken) while the mark waits, each mark naming the attempt
    it was sent as."""
    execution_id, runs = chain(database)
    release = threading.Event()
    recorded = []
    mark_sent = service.mark_sent

    def slow_mark(session, sent, **kwargs):
        assert release.wait(30)
        recorded.append(list(sent))
        mark_sent(session, sent, **kwargs)

    monkeypatch.setattr(service, "mark_sent", slow_mark)
    log: list = []
    complete = event(execution_id, runs[0], "COMPLETE")
    assert dispatch.record_and_dispatch(database, Runtime(log), complete, Bus(log)) == 1
    assert jobs(database, execution_id)["b"] == {  # returned, the mark still waiting
        "status": "queued",
        "attempt": 1,
        "dispatched": True,
        "sent": False,
    }
    assert log[0] == ("task", runs[1], 1)  # sent, and the event passed on meanwhile
    assert [entry[1] for entry in log[1:]] == [LINEAGE_RECORD_EVENT, CATALOG_RECORD_OUTPUTS]
    release.set()
    assert dispatch.flush_marks()
    assert recorded == [[(runs[1], 1)]]
    dispatch.handle_event(database, event(execution_id, runs[1], "START", "b"))
    assert jobs(database, execution_id)["b"] == {
        "status": "running",
        "attempt": 1,
        "dispatched": True,
        "sent": True,
    }


def test_a_late_mark_never_marks_a_later_attempt(database):
    execution_id, runs = chain(database)
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        job = next(job for job in execution.jobs if job.id == runs[0])
        job.attempt = 2  # the reaper dispatched attempt 2 since attempt 1 was sent
        job.sent_at = None
    dispatch.mark(database, {("redis-1", None): [(runs[0], 1)]})
    assert jobs(database, execution_id)["a"]["sent"] is False
    dispatch.mark(database, {("redis-1", None): [(runs[0], 2)]})
    assert jobs(database, execution_id)["a"]["sent"] is True


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


class PrivateRedis(RedisServer):
    """A Redis server of the test's own (no persistence, like the broker's): it can be
    restarted, which the shared one must never be."""

    def restart(self) -> None:
        self.kill()
        self.start()

    def client(self):
        import redis

        return redis.Redis.from_url(self.url, socket_timeout=5)

    def run_id(self) -> str:
        return str(self.client().info("server")["run_id"])

    def queued(self, queue: str) -> list[tuple[str, int, str]]:
        """The task messages waiting in ``queue``, oldest first: (job run id, attempt, the
        copy's id)."""
        found = []
        for raw in reversed(self.client().lrange(queue, 0, -1)):  # pushed left, taken right
            message = json.loads(raw)
            payload = json.loads(base64.b64decode(message["body"]))[0][0]
            found.append(
                (payload["job_run_id"], payload["attempt"], message["headers"][COPY_HEADER])
            )
        return found


@pytest.fixture
def private_redis(tmp_path):
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.kill()


# A real events worker's record of the COMPLETE on a real broker, killed by SIGKILL once the
# next task is sent and before its send is recorded: the marks thread is where it dies.
KILLED_BETWEEN_SEND_AND_MARK = """
import json, os, signal, sys, time
from flowforge_orchestrator import dispatch
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings

def dies(database, marks):
    os.kill(os.getpid(), signal.SIGKILL)

dispatch.mark = dies
url, broker, complete = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
runtime = dispatch.CeleryRuntime(Settings(broker_url=broker))
dispatch.record_and_dispatch(Database(url), runtime, complete, None)
time.sleep(60)
"""


class Request(dict):
    """A Celery task's request as run_job_task reads it: custom headers as its items."""

    headers: dict = {}


class Task:
    def __init__(self, copy: str) -> None:
        self.request = Request({COPY_HEADER: copy})


def test_killed_between_the_send_and_its_mark_the_next_job_runs_once(
    database, private_redis, monkeypatch
):
    from flowforge_runtime import worker

    execution_id, runs = chain(database)
    complete = event(execution_id, runs[0], "COMPLETE")
    child = subprocess.run(
        [sys.executable, "-c", KILLED_BETWEEN_SEND_AND_MARK, database.url, private_redis.url]
        + [json.dumps(complete)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert child.returncode == -signal.SIGKILL, child.stderr
    # The task is on the broker; the database shows it dispatched and never sent.
    assert [copy[:2] for copy in private_redis.queued("transform")] == [(runs[1], 1)]
    assert jobs(database, execution_id)["b"] == {
        "status": "queued",
        "attempt": 1,
        "dispatched": True,
        "sent": False,
    }
    settings = Settings(broker_url=private_redis.url)
    runtime = dispatch.CeleryRuntime(settings)
    # The COMPLETE's message, never acknowledged, comes again: nothing is dispatched twice.
    assert dispatch.record_and_dispatch(database, runtime, complete, None) == 0
    assert dispatch.flush_marks()

    # No START within the grace (every worker busy, say): the reaper sends the same attempt.
    time.sleep(0.1)
    sweeper = reaper(database, runtime)
    sweeper.sweep()
    sweeper.sweep()
    copies = private_redis.queued("transform")
    assert [copy[:2] for copy in copies] == [(runs[1], 1), (runs[1], 1)]
    assert copies[0][2] != copies[1][2]
    assert jobs(database, execution_id)["b"]["sent"] is True

    # The workers take both copies in order: the first runs, the second is dropped before
    # anything runs; a redelivery of the first (its pool process died) runs as attempt 2.
    monkeypatch.setattr(worker, "worker_settings", lambda: settings)

    def must_not_run(context):
        raise AssertionError("the second copy ran")

    assert worker.next_attempt(settings, runs[1], 1, copies[0][2]) == 1
    payload = json.loads(json.dumps(service_task(database, execution_id, runs[1])))
    assert worker.run_job_task(Task(copies[1][2]), payload, must_not_run) == worker.DUPLICATE
    assert worker.next_attempt(settings, runs[1], 1, copies[0][2]) == 2
    dispatch.handle_event(database, event(execution_id, runs[1], "START", "b"))
    dispatch.handle_event(database, event(execution_id, runs[1], "COMPLETE", "b"))
    assert {job["status"] for job in jobs(database, execution_id).values()} == {"succeeded"}


def service_task(database, execution_id: str, job_run_id: str) -> dict:
    """The task message the orchestrator sends for the job run's current attempt."""
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        job = next(job for job in execution.jobs if job.id == job_run_id)
        return service.task_for(session, execution, job).model_dump()


def test_a_broker_restarted_within_the_reused_identity_runs_the_job_as_one_attempt(
    database, private_redis
):
    """A send reuses the broker's identity for EPOCH_TTL (a second). When Redis restarts
    within it, the next task goes to the new server under the old one's identity. If a
    worker takes it before the reaper's next pass, that is all; if not, the reaper takes it
    for lost with the old server's queue and dispatches the next attempt, and the copy of
    the earlier attempt, delivered as well, counts for nothing: its events are ignored."""
    from flowforge_runtime.worker import next_attempt

    settings = Settings(broker_url=private_redis.url)
    execution_id, runs = chain(database)
    runtime = dispatch.CeleryRuntime(settings)
    runtime.epoch_ttl = 60.0  # the restart falls within it, however slow the machine is
    before = runtime.epoch()
    private_redis.restart()
    assert private_redis.run_id() != before
    assert runtime.recent_epoch() == before  # no round trip: the identity of before

    assert (
        dispatch.record_and_dispatch(
            database, runtime, event(execution_id, runs[0], "COMPLETE"), None
        )
        == 1
    )
    assert dispatch.flush_marks()
    assert [copy[:2] for copy in private_redis.queued("transform")] == [(runs[1], 1)]
    with database.session() as session:
        execution = service.get_or_raise(session, execution_id=execution_id)
        assert next(job for job in execution.jobs if job.id == runs[1]).sent_epoch == before

    # The reaper asks the broker itself: another identity, the job never started.
    sweeper = reaper(database, dispatch.CeleryRuntime(settings))
    sweeper.sweep()
    assert jobs(database, execution_id)["b"] == {
        "status": "queued",
        "attempt": 2,
        "dispatched": True,
        "sent": True,
    }
    copies = private_redis.queued("transform")
    assert [copy[:2] for copy in copies] == [(runs[1], 1), (runs[1], 2)]

    # A worker takes the copy of attempt 1 first: it runs, and the record ignores it.
    assert next_attempt(settings, runs[1], 1, copies[0][2]) == 1
    dispatch.handle_event(database, event(execution_id, runs[1], "START", "b", attempt=1))
    assert jobs(database, execution_id)["b"]["status"] == "queued"
    assert next_attempt(settings, runs[1], 2, copies[1][2]) == 2
    for kind in ("START", "COMPLETE"):
        dispatch.handle_event(database, event(execution_id, runs[1], kind, "b", attempt=2))
    dispatch.handle_event(database, event(execution_id, runs[1], "COMPLETE", "b", attempt=1))
    assert jobs(database, execution_id)["b"] == {
        "status": "succeeded",
        "attempt": 2,
        "dispatched": True,
        "sent": True,
    }
    with database.session() as session:
        assert service.get_or_raise(session, execution_id=execution_id).status == "succeeded"


def test_a_task_message_names_its_job_run_in_a_few_words_not_its_snapshot(database, private_redis):
    """What a worker's logs and ``inspect`` listings show of a task's arguments is a summary
    the sender gives (Celery's saferepr of the whole snapshot was a quarter of a send's CPU)."""
    execution_id, runs = chain(database)
    runtime = dispatch.CeleryRuntime(Settings(broker_url=private_redis.url))
    complete = event(execution_id, runs[0], "COMPLETE")
    assert dispatch.record_and_dispatch(database, runtime, complete, None) == 1
    assert dispatch.flush_marks()
    [raw] = private_redis.client().lrange("transform", 0, -1)
    message = json.loads(raw)
    assert message["headers"]["argsrepr"] == f"job run {runs[1]}, attempt 1"
    assert message["headers"]["kwargsrepr"] == "{}"
    assert json.loads(base64.b64decode(message["body"]))[0][0]["job_run_id"] == runs[1]
