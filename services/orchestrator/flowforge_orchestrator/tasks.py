"""Celery tasks of the orchestrator: start a requested run, record a run event and dispatch
what became ready, record a heartbeat; and the reaper thread of every events worker."""

from __future__ import annotations

from functools import lru_cache

from celery.signals import worker_process_shutdown, worker_ready

from flowforge_orchestrator.audit.service import install as send_audit_at_commit
from flowforge_orchestrator.dispatch import (
    CeleryRuntime,
    flush_marks,
    handle_heartbeat,
    handle_start_run,
    install_execution_events,
    record_and_dispatch,
)
from flowforge_runtime.job import retry_delay
from flowforge_shared.bus import Bus
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.runs import START_RUN
from flowforge_shared.contracts.tasks import RECORD_EVENT, RECORD_HEARTBEAT
from flowforge_shared.contracts.workflow_events import WORKFLOW_DELETED
from flowforge_shared.db.engine import Database, outages_retried
from flowforge_shared.outages import unavailable_reason
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, task_headers


@lru_cache
def _context() -> tuple[Database, CeleryRuntime, Bus]:
    settings = Settings()
    bus = Bus(settings)
    database = Database(settings.database_url_for("orchestrator"), ping_after_idle=PING_AFTER_IDLE)
    install_execution_events(bus, database)
    send_audit_at_commit(database, bus)
    return database, CeleryRuntime(settings), bus


OUTAGE_RETRY_MAX_SECONDS = 30
PING_AFTER_IDLE = 1.0
"""Seconds a pooled connection may sit unused and still record a run event without a ping
first (one PostgreSQL round trip less per event in a chain): one the server dropped within
that time fails the record as an outage, which :func:`outage_countdown` retries."""


def outage_countdown(error: BaseException, retries: int) -> float | None:
    """Seconds before a run event whose record failed is tried again, or None when the
    failure is not an outage of the orchestrator's database (then the task fails as any
    other). While the database cannot be used (down, restarting, out of connections, its
    disk full) the event is kept and tried again after about 1, 2, 4, ... then 30 s, for as
    long as the outage lasts: a COMPLETE lost here would leave its job looking alive until
    the reaper re-ran it, and its next job waiting. The delays are the jobs' own backoff
    (:func:`retry_delay`, jittered in each step's upper half), so the events held back by
    one outage do not all come back in the same instant when it ends."""
    if unavailable_reason(error) is None:
        return None
    return retry_delay(retries + 1, 1.0, OUTAGE_RETRY_MAX_SECONDS)


@celery.task(name=RECORD_EVENT, bind=True, max_retries=None)
def record_event(self, event: dict) -> int:
    """Continues the trace of the job span that emitted the event (the task's headers).
    An outage of the database sends the event again later (:func:`outage_countdown`): the
    retry is published before this delivery is acknowledged, so the event is never lost."""
    database, runtime, bus = _context()
    with continued(task_headers(self.request)):
        try:
            with outages_retried():
                return record_and_dispatch(database, runtime, event, bus)
        except Exception as error:
            countdown = outage_countdown(error, self.request.retries)
            if countdown is None:
                raise
            raise self.retry(exc=error, countdown=countdown) from error


@celery.task(name=START_RUN, bind=True)
def start_run(self, request: dict) -> str:
    """Continues the trace of the API request that asked for the run (the task's headers)."""
    database, runtime, _ = _context()
    with continued(task_headers(self.request)):
        return handle_start_run(database, runtime, request, answer_conflict=False)


@celery.task(name=RECORD_HEARTBEAT)
def record_heartbeat(beat: dict) -> bool:
    database, _, _ = _context()
    return handle_heartbeat(database, beat)


@celery.task(name=WORKFLOW_DELETED, bind=True)
def workflow_deleted(self, payload: dict) -> list[str]:
    """The catalog deleted a workflow: disable the triggers that wait for it."""
    from flowforge_orchestrator.triggers.lifecycle import on_workflow_deleted

    database, _, _ = _context()
    with continued(task_headers(self.request)):
        return on_workflow_deleted(database, payload)


@worker_ready.connect
def _start_reaper(**_kwargs) -> None:
    from flowforge_orchestrator.reaper import start_for_worker

    _context()  # the reaper's commits hand execution events over through this bus too
    start_for_worker(Settings())


@worker_process_shutdown.connect
def _flush_marks(**_kwargs) -> None:
    """A pool process that stops records the sends its marks thread still holds (a pool
    process does not run atexit handlers)."""
    flush_marks()
