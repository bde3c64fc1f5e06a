"""How job runs reach workers and how their events come back.

- :class:`CeleryRuntime`: tasks go to the ``ingest`` / ``transform`` queues on the broker,
  events and heartbeats come back on ``events`` and are recorded by ``flowforge worker
  events``, which also runs the reaper.
- :class:`InProcessRuntime` (the embedded default, no broker): the workers' job runners run
  in a thread pool of this process, events and heartbeats are recorded directly, and the
  reaper runs on a thread of this process. The orchestrator does not import the workers: the
  composition root (``flowforge/app.py``) puts their runners on ``app.state.job_runners``
  before :func:`install_runtime` builds the runtime, and an orchestrator served alone
  without a broker, which has none, refuses to start.

Both record events through :func:`record_and_dispatch` and :func:`handle_event`, which serialises the handling per process
(and, on PostgreSQL, per execution row) so two jobs finishing together cannot both miss the
job that needed them both, and send what became ready after the commit, then record that the
send happened (:func:`send_and_mark`; for run events, by the marks thread of the process,
:class:`Marker`). A send that fails (broker down) leaves the job run unsent; the reaper sends
it once the broker is back, so a run request during a broker outage is accepted and delayed,
never lost.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import text

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.runs import execution_events, service
from flowforge_orchestrator.runs.pipeline import Statements
from flowforge_orchestrator.watermarks.service import apply_run_event as store_watermark
from flowforge_runtime.job import JobContext, LocalCancelFlags, Runner, execute_job, retry_delay
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.runs import START_RUN, StartRun
from flowforge_shared.contracts.tasks import (
    CATALOG_QUEUE,
    CATALOG_RECORD_OUTPUTS,
    COPY_HEADER,
    EVENTS_QUEUE,
    INGEST_QUEUE,
    LINEAGE_QUEUE,
    LINEAGE_RECORD_EVENT,
    RUN_INGEST_JOB,
    RUN_TRANSFORM_JOB,
    TRANSFORM_QUEUE,
    JobTask,
)
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ConfigurationError, Conflict
from flowforge_shared.identity import process_identity
from flowforge_shared.lake import Lake
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import carrier, continued, tracer

log = logging.getLogger("flowforge.orchestrator")
JOB_QUEUES = (INGEST_QUEUE, TRANSFORM_QUEUE)
NO_RUNNERS = (
    "the orchestrator has no broker (FLOWFORGE_BROKER_URL) and no workers in this process "
    "to run jobs: set FLOWFORGE_BROKER_URL and run `flowforge worker ingest|transform|events`, "
    "or run every service in one process with `flowforge serve`"
)
CONSUMERS = (store_watermark,)
EPOCH_TTL = 1.0
"""Seconds a sender reuses the broker's identity it asked (:meth:`CeleryRuntime.recent_epoch`)."""
record_lock = threading.Lock()
ASYNC_COMMIT = "SET LOCAL synchronous_commit TO OFF"


def handle_event(
    database: Database, event: dict[str, Any], bus: Bus | None = None
) -> tuple[list[JobTask], dict[str, str]]:
    """Record one run event; returns the tasks that became ready and each one's queue (to
    send after commit). The services of this process that keep their own record of the event
    get it first (:func:`pass_on_event`); :func:`record_and_dispatch` passes it on to the
    others once the tasks are sent."""
    if bus is not None:
        pass_on_event(bus, event, served_here=True)
    with record_lock, database.session() as session:
        execution, tasks = service.record_event(session, event, CONSUMERS, commit=True)
        queues = {task.job_run_id: service.queue_of(execution, task.job_run_id) for task in tasks}
    return tasks, queues


def record_and_dispatch(database: Database, runtime, event: dict[str, Any], bus: Bus | None):
    """Record one run event and send what became ready, in one span (the child of the job
    span that emitted the event); returns how many tasks were sent for.

    The critical path of a chain is: the COMPLETE event's record commits, the next task is
    sent. Everything else comes after the send: the record that the tasks were sent is
    handed to the process's marks thread (:class:`Marker`), which commits it while this
    thread passes the event on to the services served elsewhere (messages on their queues)
    and takes the next event. A crash anywhere after the commit loses none of it: the
    event's message is acknowledged only after this returns (late acks), so it is delivered
    again; the record then finds it already there and dispatches nothing, the event is
    passed on again (both consumers apply it once), and a task whose send is not recorded is
    sent again by the reaper (dispatched, never sent), a second copy of the same attempt
    that a worker drops when the first one reached a worker
    (:func:`flowforge_runtime.worker.next_attempt`)."""
    run = event.get("run") or {}
    with tracer.start_as_current_span(
        f"record {event.get('eventType')}",
        attributes={
            "flowforge.event_type": str(event.get("eventType")),
            "flowforge.job_run_id": str(run.get("runId")),
        },
    ):
        try:
            tasks, queues = handle_event(database, event, bus)
            sent, epoch = send_tasks(runtime, tasks, queues)
            marker(database).put(sent, epoch, runtime.owner)
        finally:  # a delivery whose record failed is passed on all the same, as before
            if bus is not None:
                pass_on_event(bus, event, served_here=False)
    return len(tasks)


def pass_on_event(bus: Bus, event: dict[str, Any], *, served_here: bool) -> None:
    """Pass a job's run event on to the services that keep their own record of it, those
    served by this process (``served_here``: a direct call) or the others (a message on
    their queue): every event to the lineage service, a COMPLETE one to the catalog too."""
    targets = [(LINEAGE_RECORD_EVENT, LINEAGE_QUEUE, "lineage service")]
    if event.get("eventType") == "COMPLETE":
        targets.append((CATALOG_RECORD_OUTPUTS, CATALOG_QUEUE, "catalog"))
    for name, queue, owner in targets:
        if bus.serves(name) == served_here:
            pass_on(bus, event, name, queue, owner)


def pass_on(bus: Bus, event: dict[str, Any], name: str, queue: str, owner: str) -> None:
    """Hand a run event to the service that keeps its own record of it: every event to the
    lineage service (its graph), a COMPLETE one to the catalog too (the tables the job wrote,
    as assets).

    A service served by this process gets it before the event is recorded, in the caller's
    thread: it has the table once the run shows the job succeeded, and the services'
    transactions never wait on each other. A service served elsewhere gets a message once the
    record has committed and the next tasks are sent (:func:`record_and_dispatch`): its
    worker takes it in its own time anyway, and the next job need not wait for the publish.
    Every delivery is passed on, a repeated one included: both consumers are idempotent (the
    catalog never moves an asset back to an older table version; the lineage service applies
    an event once, by its eventId, in any order). A failure to pass it on is logged and never
    stops the run's record: the catalog catches up on the table's next write."""
    try:
        bus.send(name, event, queue=queue)
    except Exception:  # noqa: BLE001 - the run's own record must go on
        log.exception("run event %s did not reach the %s", event.get("eventTime"), owner)


def install_execution_events(bus: Bus, database: Database | None = None) -> None:
    """Hand the executions' own run events (:mod:`.runs.execution_events`) to the lineage
    service once the session that started or ended an execution has committed, and (given
    the database) each ending to the dependency triggers."""
    execution_events.install(
        lambda event: pass_on(bus, event, LINEAGE_RECORD_EVENT, LINEAGE_QUEUE, "lineage service")
    )
    if database is not None:
        from flowforge_orchestrator.triggers.dependencies import on_ended

        execution_events.install_endings(database.engine, on_ended(database))


def handle_start_run(
    database: Database, runtime, payload: dict[str, Any], *, answer_conflict: bool
) -> str:
    """Start the execution a run request (:class:`StartRun`) asks for and send its first
    tasks; returns the execution id. Delivered twice, it starts one execution.

    ``answer_conflict``: the requester is waiting (embedded), so a workflow that is already
    running is its Conflict (409). Otherwise (by message) the refusal is recorded as a
    failed execution saying why, under the id the requester was given."""
    request = StartRun.model_validate(payload)
    with tracer.start_as_current_span(
        "start run", attributes={"flowforge.execution_id": request.execution_id}
    ):
        if answer_conflict:
            # A workflow already running is answered before record_lock, which every run
            # event and start waits for (a retry storm on a running workflow queued there);
            # a request that passes this read is still refused under the lock, by the same
            # check and by the database's unique index of active runs.
            with database.session() as session:
                service.refuse_if_running(session, request)
        # the audit entry "execution.start" is committed with the execution, and handed to
        # the catalog once record_lock is released (every run event waits for that lock)
        with audit.hand_over_after(), record_lock, database.session() as session:
            try:
                execution, tasks = service.start_requested(session, request)
            except Conflict as conflict:
                if answer_conflict:
                    raise
                session.rollback()
                execution, tasks = service.record_refused(session, request, conflict.message), []
            queues = {
                task.job_run_id: service.queue_of(execution, task.job_run_id) for task in tasks
            }
            execution_id = execution.id
        send_and_mark(database, runtime, tasks, queues)
    return execution_id


def handle_heartbeat(database: Database, beat: dict[str, Any]) -> bool:
    with database.session() as session:
        return service.record_heartbeat(session, beat)


def send_and_mark(database: Database, runtime, tasks: list[JobTask], queues: dict[str, str]):
    """Send committed tasks, then record which ones the broker took, and the broker's
    identity when it took them (in this thread: the run's start and the reaper)."""
    sent, epoch = send_tasks(runtime, tasks, queues)
    if sent:
        mark(database, {(epoch, runtime.owner): sent})


Sent = list[tuple[str, int]]
"""The tasks a broker took: (job run id, attempt)."""


def send_tasks(runtime, tasks: list[JobTask], queues: dict[str, str]) -> tuple[Sent, str | None]:
    """Send committed tasks; the job runs the broker took, with their attempts, and the
    broker's identity."""
    if not tasks:
        return [], None
    attempts = {task.job_run_id: task.attempt for task in tasks}
    taken, epoch = runtime.send(tasks, queues)
    return [(job_run_id, attempts[job_run_id]) for job_run_id in taken], epoch


def mark(database: Database, marks: dict[tuple[str | None, str | None], Sent]) -> None:
    """Record that the broker took these tasks, in one transaction: ``marks`` maps (the
    broker's identity, the holder) to the tasks sent then. Not worth waiting for the disk: a
    mark lost with a PostgreSQL crash is a dispatch that looks never sent, which the reaper
    sends again after the grace (the same attempt, as after a crash between commit and
    send)."""
    if not any(marks.values()):
        return
    try:
        with record_lock, database.session() as session:
            # one transaction, one PostgreSQL round trip (runs/pipeline.py)
            statements = Statements(session, own_transaction=True)
            if statements.dialect.name == "postgresql":
                statements.add("mark.async", lambda: text(ASYNC_COMMIT), {})
            for (epoch, owner), sent in marks.items():
                service.mark_sent(session, sent, epoch=epoch, owner=owner, statements=statements)
            statements.send(commit=True)
    except Exception:  # noqa: BLE001 - the tasks are out; the reaper copes with the missing mark
        count = sum(len(sent) for sent in marks.values())
        log.exception("could not record that %d task(s) were sent", count)


class Marker:
    """The marks thread of a process: records the sends of run events' dispatches
    (:func:`mark`) off the events worker's path, so the worker acknowledges the event and
    takes the next one (in a chain, the next job's START) while the mark commits. Marks
    queued while a transaction is under way are recorded together in the next one.

    A mark that dies with the process (SIGKILL before this thread committed it) is the case
    the reaper covers: the job run looks dispatched and never sent, and unless its START
    arrived first it is sent again after ``FLOWFORGE_DISPATCH_GRACE``, the same attempt;
    a worker that already got the first copy drops the second
    (:func:`flowforge_runtime.worker.next_attempt`). Each mark names its attempt, so a
    late one never marks an attempt dispatched after it. :func:`flush_marks` waits for the
    pending ones (at a worker's shutdown, the embedded server's close, and in tests)."""

    def __init__(self, database: Database) -> None:
        self._database = weakref.ref(database)
        self._start()

    def _start(self) -> None:
        self._pid = os.getpid()
        self._changed = threading.Condition()
        self._pending: list[tuple[str | None, str | None, Sent]] = []
        self._busy = False
        self._thread: threading.Thread | None = None
        self._held: Database | None = None  # while marks are pending, whoever dropped it

    def put(self, sent: Sent, epoch: str | None, owner: str | None) -> None:
        if not sent:
            return
        self._forked()
        with self._changed:
            self._pending.append((epoch, owner, list(sent)))
            self._held = self._database()
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="flowforge-marks", daemon=True
                )
                self._thread.start()
            self._changed.notify_all()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until every mark queued so far is recorded (or failed and was logged)."""
        self._forked()
        with self._changed:
            return self._changed.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _forked(self) -> None:
        """A forked child (a Celery pool process) has neither the parent's thread nor its
        marks (which the parent records): it starts afresh."""
        if self._pid != os.getpid():
            self._start()

    def _run(self) -> None:
        while True:
            with self._changed:
                self._changed.wait_for(lambda: self._pending)
                batch, self._pending = self._pending, []
                database, self._busy = self._held, True
            try:
                marks: dict[tuple[str | None, str | None], Sent] = {}
                for epoch, owner, sent in batch:
                    marks.setdefault((epoch, owner), []).extend(sent)
                if database is not None:
                    mark(database, marks)
            finally:
                with self._changed:
                    self._busy = False
                    if not self._pending:
                        self._held = None
                    self._changed.notify_all()


_markers: weakref.WeakKeyDictionary[Database, Marker] = weakref.WeakKeyDictionary()
_markers_lock = threading.Lock()


def marker(database: Database) -> Marker:
    """The marks thread of this process for ``database``."""
    with _markers_lock:
        found = _markers.get(database)
        if found is None:
            found = _markers[database] = Marker(database)
        return found


def flush_marks(timeout: float = 10.0) -> bool:
    """Wait for the marks queued so far in this process to be recorded; False on timeout."""
    with _markers_lock:
        markers = list(_markers.values())
    return all(found.flush(timeout) for found in markers)


atexit.register(flush_marks)


class CeleryRuntime:
    owner = None  # a sent task is held by the broker, not by this process

    def __init__(self, settings: Settings) -> None:
        from flowforge_runtime.job import RedisCancelFlags
        from flowforge_shared.celery_app import client

        self.celery = client(settings)
        self.flags = RedisCancelFlags(settings.broker_url)
        # The broker is a Redis server: it can say who it is and how long a queue is.
        self.redis = (
            self.flags.client
            if (settings.broker_url or "").startswith(("redis://", "rediss://"))
            else None
        )
        self.epoch_ttl = EPOCH_TTL
        self._epoch: tuple[float, str | None] | None = None

    def epoch(self) -> str | None:
        """The broker's identity, asked now (the reaper's question): a Redis server's run id
        changes when it restarts (and a Redis without persistence forgets its queues then).
        None for other brokers."""
        value = None if self.redis is None else str(self.redis.info("server")["run_id"])
        self._epoch = (time.monotonic(), value)
        return value

    def recent_epoch(self) -> str | None:
        """The broker's identity as asked at most ``epoch_ttl`` seconds ago (a send's: one
        round trip to Redis less per hop). A Redis restarted within that time makes the
        tasks sent meanwhile carry the identity of the one before: the reaper takes them for
        lost if they are still queued at its next pass and dispatches the next attempt, and
        the copy of the earlier attempt that still arrives is ignored by the run's record
        (its attempt is behind) and finds its write applied, never makes it twice
        (docs/run-engine.md, "Liveness"; tests/orchestrator/test_dispatch_hop.py)."""
        cached = self._epoch
        if cached is not None and time.monotonic() - cached[0] < self.epoch_ttl:
            return cached[1]
        return self.epoch()

    def backlog(self) -> int:
        """Events and heartbeats waiting to be recorded (Redis brokers; 0 otherwise)."""
        return 0 if self.redis is None else int(self.redis.llen(EVENTS_QUEUE))

    def send(self, tasks: list[JobTask], queues: dict[str, str]) -> tuple[list[str], str | None]:
        """Send each task; returns the job runs the broker took, and the broker's identity.
        Each message carries an id of its own (``COPY_HEADER``): a job run's attempt sent
        twice (the reaper's resend of a send it saw no record of) is two copies a worker
        tells apart."""
        try:
            epoch = self.recent_epoch()
        except Exception:  # noqa: BLE001 - the sends below fail the same way and say why
            epoch = None
        from flowforge_shared.celery_app import summary

        sent = []
        for task in tasks:
            queue = queues[task.job_run_id]
            name = RUN_INGEST_JOB if queue == INGEST_QUEUE else RUN_TRANSFORM_JOB
            with tracer.start_as_current_span(
                "dispatch",
                attributes={
                    "flowforge.job_id": task.job_id,
                    "flowforge.job_run_id": task.job_run_id,
                    "messaging.destination": queue,
                },
            ):
                try:
                    self.celery.send_task(
                        name,
                        args=[task.model_dump()],
                        queue=queue,
                        task_id=task.job_run_id,
                        # the dispatch span's context, for the worker, and this copy's id
                        headers={**carrier(), COPY_HEADER: uuid.uuid4().hex},
                        **summary(f"job run {task.job_run_id}, attempt {task.attempt}"),
                    )
                except Exception as error:  # noqa: BLE001 - left unsent: the reaper resends
                    log.warning("job run %s not sent (%s); will retry", task.job_run_id, error)
                    self._epoch = None  # the broker may come back as another one: ask again
                    continue
            sent.append(task.job_run_id)
        return sent, epoch

    def cancel(self, execution_id: str, job_run_ids: list[str]) -> None:
        """Raise the execution's cancel flag (a running job stops at its next batch) and revoke
        the tasks of ``job_run_ids`` still in the queue (a task's id is its job run id), so a
        worker discards them instead of starting them."""
        self.flags.cancel(execution_id)
        if job_run_ids:
            self.celery.control.revoke(job_run_ids)

    def close(self) -> None:
        pass


class InProcessRuntime:
    """Runs job tasks in threads of this process (embedded default), with the job runner of
    each queue it is handed (the workers' code, given by the composition root)."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        runners: Mapping[str, Runner],
        bus: Bus | None = None,
    ) -> None:
        missing = [queue for queue in JOB_QUEUES if queue not in runners]
        if missing:
            raise ConfigurationError(f"{NO_RUNNERS} (no job runner for {', '.join(missing)})")
        self.settings = settings
        self.database = database
        self.runners = dict(runners)
        self.bus = bus
        self.flags = LocalCancelFlags()
        self.pool = ThreadPoolExecutor(
            settings.embedded_workers, thread_name_prefix="flowforge-job"
        )
        self.lake = Lake.from_settings(settings)
        # A task submitted here lives only as long as this process: the reaper of the next
        # process on this host sees this identity gone and settles what it held.
        self.owner = process_identity("embedded")
        self.reaper = None

    def epoch(self) -> str | None:
        return None

    def backlog(self) -> int:
        return 0

    def send(self, tasks: list[JobTask], queues: dict[str, str]) -> tuple[list[str], None]:
        for task in tasks:
            with tracer.start_as_current_span(
                "dispatch",
                attributes={
                    "flowforge.job_id": task.job_id,
                    "flowforge.job_run_id": task.job_run_id,
                },
            ):
                headers = carrier()
            self.pool.submit(self._run, task, queues[task.job_run_id], headers)
        return [task.job_run_id for task in tasks], None

    def emit(self, event: dict[str, Any]) -> None:
        record_and_dispatch(self.database, self, event, self.bus)

    def heartbeat(self, beat: dict[str, Any]) -> None:
        handle_heartbeat(self.database, beat)

    def cancel(self, execution_id: str, job_run_ids: list[str]) -> None:
        """Raise the cancel flag: a job not started yet aborts before it reads."""
        self.flags.cancel(execution_id)

    def close(self) -> None:
        if self.reaper is not None:
            self.reaper.stop()
        self.pool.shutdown(wait=True, cancel_futures=False)
        marker(self.database).flush()  # the sends of the jobs' last events, recorded

    def _run(self, task: JobTask, queue: str, headers: dict[str, str]) -> None:
        runner = self.runners[queue]
        attempt = task.attempt - 1
        try:
            with (
                continued(headers),
                tracer.start_as_current_span(
                    f"job {task.job.get('name')}",
                    attributes={
                        "flowforge.execution_id": task.execution_id,
                        "flowforge.job_id": task.job_id,
                        "flowforge.job_run_id": task.job_run_id,
                    },
                ),
            ):
                while True:
                    attempt += 1
                    context = JobContext(
                        task=task,
                        attempt=attempt,
                        settings=self.settings,
                        lake=self.lake,
                        sink=self,
                        cancel_flags=self.flags,
                        owner=self.owner,
                    )
                    outcome = execute_job(
                        context, runner, final_attempt=attempt > self.settings.task_max_retries
                    )
                    if outcome != "retry":
                        return
                    time.sleep(
                        retry_delay(
                            attempt,
                            self.settings.task_retry_backoff,
                            self.settings.task_retry_backoff_max,
                        )
                    )
        except Exception:  # a thread must not die silently: the reaper settles the job
            log.exception("job run %s could not be executed", task.job_run_id)


def make_runtime(
    settings: Settings,
    database: Database,
    runners: Mapping[str, Runner] | None = None,
    bus: Bus | None = None,
):
    """The broker's runtime when one is configured, else the in-process one, which needs the
    job runners (:class:`ConfigurationError` without them)."""
    if not settings.embedded_tasks:
        return CeleryRuntime(settings)
    if not runners:
        raise ConfigurationError(NO_RUNNERS)
    return InProcessRuntime(settings, database, runners, bus)


def install_runtime(app) -> Callable[[], None]:
    """Put the task runtime on ``app.state`` (and, embedded, start its reaper); returns its
    shutdown. Embedded, it runs the job runners the composition root put on
    ``app.state.job_runners`` (queue -> runner)."""
    runtime = make_runtime(
        app.state.settings,
        app.state.database,
        getattr(app.state, "job_runners", None),
        app.state.bus,
    )
    app.state.runtime = runtime
    install_execution_events(app.state.bus, app.state.database)
    app.state.bus.handle(
        START_RUN,
        lambda payload: handle_start_run(
            app.state.database, runtime, payload, answer_conflict=True
        ),
    )
    if isinstance(runtime, InProcessRuntime):
        from flowforge_orchestrator.reaper import Reaper

        runtime.reaper = Reaper(app.state.database, runtime, app.state.settings)
        app.state.starters.append(runtime.reaper.start)
    return runtime.close
