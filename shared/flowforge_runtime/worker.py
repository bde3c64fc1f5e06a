"""The body of every job task in a Celery worker: set up the context, run one attempt,
schedule a retry for a transient failure. Tasks stay a few lines around this.

Run events go through the process's :class:`~flowforge_shared.outbox.Outbox` (kept on disk
while the broker is down); heartbeats are sent directly and dropped when they cannot be.
The attempt's owner is the worker's main process: while it lives, Celery itself redelivers
the task of a pool process that died (reject on worker lost); when it is gone too, the
orchestrator's reaper does.
"""

from __future__ import annotations

import logging
import os
from functools import lru_cache
from typing import Any

from flowforge_runtime.job import (
    JobContext,
    RedisCancelFlags,
    Runner,
    execute_job,
    retry_delay,
)
from flowforge_shared.celery_app import celery, described, summary
from flowforge_shared.contracts.tasks import (
    COPY_HEADER,
    EVENTS_QUEUE,
    RECORD_EVENT,
    RECORD_HEARTBEAT,
    JobTask,
)
from flowforge_shared.identity import process_identity
from flowforge_shared.lake import Lake
from flowforge_shared.outbox import Outbox
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import carrier, continued, task_headers, tracer

ATTEMPT_KEY = "flowforge:attempt:{job_run_id}"
log = logging.getLogger("flowforge.worker")


MAIN_PID = os.getpid()
"""The worker's main process (this module is imported before the pool forks)."""


def _send_event(message: dict[str, Any]) -> None:
    """Send one kept message: ``{"event": ..., "trace": ...}``, the trace context of the job
    span that emitted the event going as the task's headers, so the events worker's span
    recording it is that span's child. (A bare event, kept by an older version, goes without.)"""
    if "eventType" in message:
        event, headers = message, {}
    else:
        event, headers = message["event"], message.get("trace") or {}
    celery.send_task(
        RECORD_EVENT,
        args=[event],
        queue=EVENTS_QUEUE,
        headers=headers,
        **summary(described(event)),
    )


@lru_cache
def _outbox(pid: int, directory: str) -> Outbox:
    return Outbox(directory, _send_event)


class CeleryEventSink:
    """Run events go to the orchestrator over the ``events`` queue, through the outbox, each
    with the trace context it was emitted in (kept with it while the broker is down)."""

    def __init__(self, settings: Settings) -> None:
        self.outbox = _outbox(os.getpid(), str(settings.data_dir / "outbox"))

    def emit(self, event: dict[str, Any]) -> None:
        self.outbox.emit({"event": event, "trace": carrier()})

    def heartbeat(self, beat: dict[str, Any]) -> None:
        celery.send_task(
            RECORD_HEARTBEAT,
            args=[beat],
            queue=EVENTS_QUEUE,
            retry=False,
            **summary(f"heartbeat of job run {beat.get('jobRunId')}"),
        )


@lru_cache
def worker_settings() -> Settings:
    return Settings()


@lru_cache
def redis_client(url: str):
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


COPY_KEY = "flowforge:copy:{job_run_id}:{attempt}"
DUPLICATE = "duplicate"
"""What a task returns for a copy it dropped (:func:`next_attempt` answered None)."""

# One round trip: which copy of this dispatched attempt reached a worker first (KEYS[2],
# when the message names its copy), then the delivery count (KEYS[1]) never below the
# dispatched attempt (ARGV[1]). -1: another copy of this attempt reached a worker first.
_DELIVERY = """
if ARGV[2] ~= '' then
  local first = redis.call('GET', KEYS[2])
  if first and first ~= ARGV[2] then return -1 end
  if not first then redis.call('SET', KEYS[2], ARGV[2], 'EX', 86400) end
end
local counted = redis.call('INCR', KEYS[1])
local floor = tonumber(ARGV[1])
if counted < floor then
  redis.call('SET', KEYS[1], floor)
  counted = floor
end
redis.call('EXPIRE', KEYS[1], 86400)
return counted
"""


@lru_cache
def _delivery_script(url: str):
    return redis_client(url).register_script(_DELIVERY)


def next_attempt(
    settings: Settings, job_run_id: str, floor: int = 1, copy: str | None = None
) -> int | None:
    """Counts every delivery of a job run, redeliveries after a crash included, so a job that
    kills its worker every time ends failed instead of looping. Never below ``floor``, the
    attempt the orchestrator dispatched (the count may have been lost with a Redis restart).

    ``copy`` (the message's ``COPY_HEADER``) tells two copies of one dispatched attempt
    apart: the orchestrator sends an attempt again when it has no record of its first send
    (the process died before recording it, and no START came within the grace). None
    means another copy of this attempt reached a worker first: this one must not run (that
    one runs, or Celery delivers that same message again if its worker died). A redelivery
    of the same message carries the same copy and counts as the next attempt, as before.
    One round trip to Redis (a script)."""
    counted = _delivery_script(settings.broker_url)(
        keys=[
            ATTEMPT_KEY.format(job_run_id=job_run_id),
            COPY_KEY.format(job_run_id=job_run_id, attempt=floor),
        ],
        args=[floor, copy or ""],
    )
    return None if int(counted) < 0 else int(counted)


def _header(request, name: str) -> str | None:
    """A custom header of the task message (on the request itself, or under its headers)."""
    return request.get(name) or (getattr(request, "headers", None) or {}).get(name)


def run_job_task(task, payload: dict[str, Any], runner: Runner) -> str:
    settings = worker_settings()
    job_task = JobTask.model_validate(payload)
    attempt = next_attempt(
        settings, job_task.job_run_id, job_task.attempt, _header(task.request, COPY_HEADER)
    )
    if attempt is None:
        log.warning(
            "job run %s attempt %s: another copy of this dispatch reached a worker first; "
            "this one is dropped",
            job_task.job_run_id,
            job_task.attempt,
        )
        return DUPLICATE
    context = JobContext(
        task=job_task,
        attempt=attempt,
        settings=settings,
        lake=Lake.from_settings(settings),
        sink=CeleryEventSink(settings),
        cancel_flags=RedisCancelFlags(settings.broker_url, redis_client(settings.broker_url)),
        owner=process_identity("worker", MAIN_PID),
    )
    with continued(task_headers(task.request)):
        with tracer.start_as_current_span(
            f"job {job_task.job.get('name')}",
            attributes={
                "flowforge.execution_id": job_task.execution_id,
                "flowforge.job_id": job_task.job_id,
                "flowforge.job_run_id": job_task.job_run_id,
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
