"""Celery tasks of the orchestrator: start a requested run, record a run event and dispatch
what became ready, record a heartbeat; and the reaper thread of every events worker."""

from __future__ import annotations

from functools import lru_cache

from celery.signals import worker_ready

from flowforge_orchestrator.dispatch import (
    CeleryRuntime,
    handle_event,
    handle_heartbeat,
    handle_start_run,
    send_and_mark,
)
from flowforge_shared.bus import Bus
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.runs import START_RUN
from flowforge_shared.contracts.tasks import RECORD_EVENT, RECORD_HEARTBEAT
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings


@lru_cache
def _context() -> tuple[Database, CeleryRuntime, Bus]:
    settings = Settings()
    return Database(settings.resolved_database_url), CeleryRuntime(settings), Bus(settings)


@celery.task(name=RECORD_EVENT)
def record_event(event: dict) -> int:
    database, runtime, bus = _context()
    tasks, queues = handle_event(database, event, bus)
    send_and_mark(database, runtime, tasks, queues)
    return len(tasks)


@celery.task(name=START_RUN)
def start_run(request: dict) -> str:
    database, runtime, _ = _context()
    return handle_start_run(database, runtime, request, answer_conflict=False)


@celery.task(name=RECORD_HEARTBEAT)
def record_heartbeat(beat: dict) -> bool:
    database, _, _ = _context()
    return handle_heartbeat(database, beat)


@worker_ready.connect
def _start_reaper(**_kwargs) -> None:
    from flowforge_orchestrator.reaper import start_for_worker

    start_for_worker(Settings())
