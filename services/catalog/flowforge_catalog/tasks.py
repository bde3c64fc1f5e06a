"""Celery tasks of the catalog (``flowforge worker catalog``): the assets a job wrote, from
the COMPLETE run events the orchestrator passes on."""

from __future__ import annotations

from functools import lru_cache

from flowforge_catalog.assets.consumer import record_outputs as record
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import CATALOG_RECORD_OUTPUTS
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, task_headers, tracer


@lru_cache
def _database() -> Database:
    return Database(Settings().resolved_database_url)


@celery.task(name=CATALOG_RECORD_OUTPUTS, bind=True)
def record_outputs(self, event: dict) -> None:
    """In the trace of the events worker's span that passed the event on."""
    with (
        continued(task_headers(self.request)),
        tracer.start_as_current_span("record outputs"),
    ):
        record(_database(), event)
