"""Celery tasks of the lineage service (``flowforge worker lineage``): the graph, from the
run events the orchestrator passes on."""

from __future__ import annotations

from functools import lru_cache

from flowforge_lineage.graph.consumer import record_event as record
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, task_headers, tracer


@lru_cache
def _database() -> Database:
    return Database(Settings().resolved_database_url)


@celery.task(name=LINEAGE_RECORD_EVENT, bind=True)
def record_event(self, event: dict) -> None:
    """In the trace of the events worker's span that passed the event on."""
    with (
        continued(task_headers(self.request)),
        tracer.start_as_current_span("record lineage"),
    ):
        record(_database(), event)
