"""Celery task of the orchestrator: record a run event, dispatch what became ready."""

from __future__ import annotations

from functools import lru_cache

from flowforge_orchestrator.dispatch import CeleryRuntime, handle_event
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import RECORD_EVENT
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings


@lru_cache
def _context() -> tuple[Database, CeleryRuntime]:
    settings = Settings()
    return Database(settings.resolved_database_url), CeleryRuntime(settings)


@celery.task(name=RECORD_EVENT)
def record_event(event: dict) -> int:
    database, runtime = _context()
    tasks, queues = handle_event(database, event)
    runtime.send(tasks, queues)
    return len(tasks)
