"""Celery task of the ingest worker: a thin wrapper around run_ingest_job."""

from __future__ import annotations

from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.worker import run_job_task
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import DATABASE_OPERATION, RUN_INGEST_JOB


@celery.task(name=RUN_INGEST_JOB, bind=True)
def run_ingest(self, payload: dict) -> str:
    return run_job_task(self, payload, run_ingest_job)


@celery.task(name=DATABASE_OPERATION, acks_late=False)
def database_operation(operation: str, connection: dict, args: dict, reply_to: str) -> None:
    """Answer an API's question about a source database on the Redis list it waits on.
    Not acked late: an answer nobody waits for any more is not worth a redelivery."""
    import json

    from flowforge_ingest.operations import perform
    from flowforge_runtime.worker import redis_client, worker_settings

    settings = worker_settings()
    answer = perform(operation, connection, args, settings)
    client = redis_client(settings.broker_url)
    client.rpush(reply_to, json.dumps(answer))
    client.expire(reply_to, int(settings.operation_timeout) + 60)
