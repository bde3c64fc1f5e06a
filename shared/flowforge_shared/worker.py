"""The body of every job task in a Celery worker: set up the context, run one attempt,
schedule a retry for a transient failure. Tasks stay a few lines around this."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from flowforge_shared.celery_app import celery
from flowforge_shared.contracts.tasks import EVENTS_QUEUE, RECORD_EVENT, JobTask
from flowforge_shared.lake import Lake
from flowforge_shared.runtime import (
    JobContext,
    RedisCancelFlags,
    Runner,
    execute_job,
    retry_delay,
)
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import continued, tracer

ATTEMPT_KEY = "flowforge:attempt:{job_run_id}"


class CeleryEventSink:
    """Run events go to the orchestrator over the ``events`` queue."""

    def emit(self, event: dict[str, Any]) -> None:
        celery.send_task(RECORD_EVENT, args=[event], queue=EVENTS_QUEUE)


@lru_cache
def worker_settings() -> Settings:
    return Settings()


@lru_cache
def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def next_attempt(settings: Settings, job_run_id: str) -> int:
    """Counts every delivery of a job run, redeliveries after a crash included, so a job that
    kills its worker every time ends failed instead of looping."""
    key = ATTEMPT_KEY.format(job_run_id=job_run_id)
    client = redis_client(settings.broker_url)
    attempt = int(client.incr(key))
    client.expire(key, 86_400)
    return attempt


def trace_headers(request) -> dict[str, str]:
    """The W3C trace headers a task message carried (Celery exposes custom headers on the
    request itself, or under ``request.headers`` depending on the protocol)."""
    found = {}
    for key in ("traceparent", "tracestate"):
        value = request.get(key) or (request.headers or {}).get(key)
        if value:
            found[key] = value
    return found


def run_job_task(task, payload: dict[str, Any], runner: Runner) -> str:
    settings = worker_settings()
    job_task = JobTask.model_validate(payload)
    attempt = next_attempt(settings, job_task.job_run_id)
    context = JobContext(
        task=job_task,
        attempt=attempt,
        settings=settings,
        lake=Lake.from_settings(settings),
        sink=CeleryEventSink(),
        cancel_flags=RedisCancelFlags(settings.broker_url),
    )
    with continued(trace_headers(task.request)):
        with tracer.start_as_current_span(
            f"job {job_task.job.get('name')}",
            attributes={
                "flowforge.execution_id": job_task.execution_id,
                "flowforge.job_id": job_task.job_id,
                "flowforge.attempt": attempt,
            },
        ):
            outcome = execute_job(
                context, runner, final_attempt=attempt > settings.task_max_retries
            )
    if outcome == "retry":
        delay = retry_delay(attempt, settings.task_retry_backoff, settings.task_retry_backoff_max)
        raise task.retry(countdown=delay, max_retries=None)
    return outcome
