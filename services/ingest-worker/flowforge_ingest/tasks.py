"""Celery tasks of the ingest worker: thin wrappers around plain functions."""

from __future__ import annotations

from functools import partial

from flowforge_ingest.runner import run_ingest_job
from flowforge_runtime.worker import run_job_task
from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import (
    DATABASE_OPERATION,
    INGEST_QUEUE,
    READ_RANGE,
    RUN_INGEST_JOB,
)


@celery.task(name=RUN_INGEST_JOB, bind=True)
def run_ingest(self, payload: dict) -> str:
    return run_job_task(self, payload, _runner())


def _runner():
    """The job runner of this worker: a parallel read's key ranges go to the ingest queue
    as ``read_range`` tasks (docs/connectors.md, "Distributed"), unless switched off."""
    from flowforge_ingest.distributed_read import RangeDispatch
    from flowforge_runtime.worker import redis_client, worker_settings

    settings = worker_settings()
    if not settings.distributed_ranges or not settings.broker_url:
        return run_ingest_job
    dispatch = RangeDispatch(
        client=redis_client(settings.broker_url),
        send=lambda spec, index: read_range.apply_async(args=[spec, index], queue=INGEST_QUEUE),
        claim_ttl=settings.range_claim_ttl,
    )
    return partial(run_ingest_job, dispatch=dispatch)


@celery.task(name=READ_RANGE, bind=True)
def read_range(self, spec: dict, index: int) -> str:
    """One key range of a distributed parallel read, staged for the job to commit. The
    holder is the task id: a redelivery of this message (its pool process was killed)
    takes its own claim back at once."""
    from flowforge_ingest.distributed_read import run_range_task
    from flowforge_ingest.range_claims import RangeClaims
    from flowforge_runtime.job import RedisCancelFlags
    from flowforge_runtime.worker import redis_client, worker_settings
    from flowforge_shared.lake import Lake

    settings = worker_settings()
    client = redis_client(settings.broker_url)
    claims = RangeClaims(
        client, spec["executionId"], spec["runSequence"], spec["attempt"], spec["claimTtl"]
    )
    flags = RedisCancelFlags(settings.broker_url, client)
    return run_range_task(
        spec,
        index,
        f"task:{self.request.id}",
        lake=Lake.from_settings(settings),
        settings=settings,
        claims=claims,
        cancelled=lambda: flags.is_cancelled(spec["executionId"]),
    )


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
