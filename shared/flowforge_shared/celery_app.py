"""The one Celery app of FlowForge, configured for at-least-once delivery.

Settings follow RELIABILITY-NOTES: late acks *and* reject-on-worker-lost (late acks alone
still lose a task whose pool process is killed), prefetch 1, JSON only, a visibility timeout
above the hard time limit, no result backend (results travel as run events).
"""

from __future__ import annotations

from typing import Any

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
    READ_RANGE,
    RECORD_EVENT,
    RECORD_HEARTBEAT,
    RUN_INGEST_JOB,
    RUN_TRANSFORM_JOB,
    TRANSFORM_QUEUE,
)
from flowforge_shared.contracts.workflow_events import WORKFLOW_DELETED, WORKFLOW_SCHEDULE
from flowforge_shared.settings import Settings

celery = Celery("flowforge")


def summary(text: str) -> dict[str, str]:
    """``send_task`` options that describe a message's arguments in a few words (``text``)
    where a worker's logs, events and ``inspect`` listings show them. Without them Celery
    builds ``saferepr`` of the whole arguments at every send: about a quarter of the CPU of
    a ``send_task`` of a run event or a job task (0.12-0.16 ms of 0.47-0.57 ms, measured),
    on every hop of a chain (bench/README.md, bench_dispatch)."""
    return {"argsrepr": text, "kwargsrepr": "{}"}


def described(payload: Any) -> str:
    """A message's arguments in a few words for :func:`summary`: a run event's type and job
    run."""
    if isinstance(payload, dict) and "eventType" in payload:
        return f"{payload['eventType']} of job run {(payload.get('run') or {}).get('runId')}"
    return "(payload)"


def client(settings: Settings) -> Celery:
    """A Celery app of its own for a process that only sends (an API): its broker connections
    belong to these settings, never to another app's in the same process."""
    return configure(settings, Celery("flowforge-client"))


def transport_options(settings: Settings, queue: str | None = None) -> dict:
    """The Redis transport's options for a process consuming ``queue`` (None: any other).

    A worker that dies (SIGKILL, the host) leaves the messages it took unacknowledged; they
    come back when a worker's periodic scan finds them older than the visibility timeout.
    The job queues need a timeout above the task time limit (a long job would otherwise run
    twice), so their messages come back after hours. The lineage worker's tasks are short
    and idempotent (an event is applied once, by its id), so it keeps its unacknowledged
    messages under keys of its own, with a visibility timeout of a minute and a scan every
    few seconds: its scans never touch another queue's messages, and the graph catches up
    soon after the worker is back. Senders do not use these keys, only consumers do."""
    if queue == LINEAGE_QUEUE:
        timeout = settings.lineage_visibility_timeout
        return {
            "visibility_timeout": timeout,
            "unacked_key": "unacked_lineage",
            "unacked_index_key": "unacked_index_lineage",
            "unacked_mutex_key": "unacked_mutex_lineage",
            "unacked_restore_interval": max(1, min(5, timeout // 4)),
            "unacked_restore_throttle": 1,
        }
    return {"visibility_timeout": settings.broker_visibility_timeout}


def configure(settings: Settings, app: Celery | None = None, *, queue: str | None = None) -> Celery:
    """Configure ``app`` (default: the workers' app, where the tasks are registered) for a
    process that consumes ``queue`` (None: it only sends, or consumes a job queue)."""
    app = app or celery
    if settings.broker_visibility_timeout <= settings.task_time_limit:
        raise ValueError(
            "FLOWFORGE_BROKER_VISIBILITY_TIMEOUT must exceed FLOWFORGE_TASK_TIME_LIMIT, "
            "or a long task is delivered twice while it still runs"
        )
    app.conf.update(
        broker_url=settings.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options=transport_options(settings, queue),
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
            READ_RANGE: {"queue": INGEST_QUEUE},
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
