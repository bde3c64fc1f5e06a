"""Celery tasks of the lineage service (``flowforge worker lineage``): the graph, from the
run events the orchestrator passes on, and each applied event on to FLOWFORGE_OPENLINEAGE_URL
when it is set. A task also applies the events waiting behind it, in one transaction
(:mod:`flowforge_lineage.graph.backlog`), so a backlog drains in batches."""

from __future__ import annotations

from functools import lru_cache

from celery.signals import worker_process_shutdown

from flowforge_lineage.graph.backlog import record_with_backlog
from flowforge_lineage.openlineage.outbound import Forwarder, forwarder_for
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, task_headers, tracer


@lru_cache
def _database() -> Database:
    return Database(Settings().database_url_for("lineage"))


@lru_cache
def _forwarder() -> Forwarder | None:
    """This worker process's sender to FLOWFORGE_OPENLINEAGE_URL (its thread starts on the
    first event)."""
    return forwarder_for(Settings())


@worker_process_shutdown.connect
def _send_what_is_queued(**_kwargs) -> None:
    """A worker process that stops sends what it still holds, for a few seconds at most."""
    if _forwarder.cache_info().currsize and (forwarder := _forwarder()) is not None:
        forwarder.close()


@celery.task(name=LINEAGE_RECORD_EVENT, bind=True)
def record_event(self, event: dict) -> None:
    """In the trace of the events worker's span that passed the event on."""
    with (
        continued(task_headers(self.request)),
        tracer.start_as_current_span("record lineage"),
    ):
        record_with_backlog(_database(), event, self.app, _forwarder())
