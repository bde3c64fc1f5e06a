"""The one Celery app of FlowForge, configured for at-least-once delivery.

Settings follow RELIABILITY-NOTES: late acks *and* reject-on-worker-lost (late acks alone
still lose a task whose pool process is killed), prefetch 1, JSON only, a visibility timeout
above the hard time limit, no result backend (results travel as run events).
"""

from __future__ import annotations

from celery import Celery

from flowforge_shared.contracts.runs import START_RUN
from flowforge_shared.contracts.tasks import (
    CATALOG_QUEUE,
    CATALOG_RECORD_OUTPUTS,
    DATABASE_OPERATION,
    EVENTS_QUEUE,
    INGEST_QUEUE,
    LINEAGE_QUEUE,
    LINEAGE_RECORD_EVENT,
    RECORD_EVENT,
    RECORD_HEARTBEAT,
    RUN_INGEST_JOB,
    RUN_TRANSFORM_JOB,
    TRANSFORM_QUEUE,
)
from flowforge_shared.contracts.workflow_events import WORKFLOW_DELETED, WORKFLOW_SCHEDULE
from flowforge_shared.settings import Settings

celery = Celery("flowforge")


def client(settings: Settings) -> Celery:
    """A Celery app of its own for a process that only sends (an API): its broker connections
    belong to these settings, never to another app's in the same process."""
    return configure(settings, Celery("flowforge-client"))


def configure(settings: Settings, app: Celery | None = None) -> Celery:
    """Configure ``app`` (default: the workers' app, where the tasks are registered)."""
    app = app or celery
    if settings.broker_visibility_timeout <= settings.task_time_limit:
        raise ValueError(
            "FLOWFORGE_BROKER_VISIBILITY_TIMEOUT must exceed FLOWFORGE_TASK_TIME_LIMIT, "
            "or a long task is delivered twice while it still runs"
        )
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": settings.broker_visibility_timeout},
        task_serializer="json",
        accept_content=["json"],
        result_backend=None,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_time_limit=settings.task_time_limit,
        task_routes={
            RUN_INGEST_JOB: {"queue": INGEST_QUEUE},
            DATABASE_OPERATION: {"queue": INGEST_QUEUE},
            RUN_TRANSFORM_JOB: {"queue": TRANSFORM_QUEUE},
            RECORD_EVENT: {"queue": EVENTS_QUEUE},
            RECORD_HEARTBEAT: {"queue": EVENTS_QUEUE},
            START_RUN: {"queue": EVENTS_QUEUE},
            CATALOG_RECORD_OUTPUTS: {"queue": CATALOG_QUEUE},
            WORKFLOW_SCHEDULE: {"queue": CATALOG_QUEUE},
            WORKFLOW_DELETED: {"queue": EVENTS_QUEUE},
            LINEAGE_RECORD_EVENT: {"queue": LINEAGE_QUEUE},
        },
        task_default_queue=EVENTS_QUEUE,
        worker_hijack_root_logger=False,
    )
    return app
