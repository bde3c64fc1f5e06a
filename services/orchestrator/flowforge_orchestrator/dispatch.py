"""How job runs reach workers and how their events come back.

- :class:`CeleryRuntime`: tasks go to the ``ingest`` / ``transform`` queues on the broker,
  events come back on ``events`` and are recorded by ``flowforge worker events``.
- :class:`InProcessRuntime` (the embedded default, no broker): the same task code runs in a
  thread pool of this process and events are recorded directly.

Both record events through :func:`handle_event`, which serialises the handling per process
(and, on PostgreSQL, per execution row) so two jobs finishing together cannot both miss the
job that needed them both.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flowforge_catalog.assets.service import apply_run_event
from flowforge_orchestrator.runs import service
from flowforge_orchestrator.watermarks.service import apply_run_event as store_watermark
from flowforge_shared.contracts.tasks import (
    INGEST_QUEUE,
    RUN_INGEST_JOB,
    RUN_TRANSFORM_JOB,
    JobTask,
)
from flowforge_shared.db.engine import Database
from flowforge_shared.lake import Lake
from flowforge_shared.runtime import JobContext, LocalCancelFlags, execute_job, retry_delay
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import carrier, continued, tracer

log = logging.getLogger("flowforge.orchestrator")
CONSUMERS = (apply_run_event, store_watermark)
_record_lock = threading.Lock()


def handle_event(
    database: Database, event: dict[str, Any]
) -> tuple[list[JobTask], dict[str, str]]:
    """Record one run event; returns the tasks that became ready and each one's queue (to
    send after commit)."""
    with _record_lock, database.session() as session:
        execution, tasks = service.record_event(session, event, CONSUMERS)
        queues = {task.job_run_id: service.queue_of(execution, task.job_run_id) for task in tasks}
    return tasks, queues


class CeleryRuntime:
    def __init__(self, settings: Settings) -> None:
        from flowforge_shared.celery_app import client
        from flowforge_shared.runtime import RedisCancelFlags

        self.celery = client(settings)
        self.flags = RedisCancelFlags(settings.broker_url)

    def send(self, tasks: list[JobTask], queues: dict[str, str]) -> None:
        for task in tasks:
            queue = queues[task.job_run_id]
            name = RUN_INGEST_JOB if queue == INGEST_QUEUE else RUN_TRANSFORM_JOB
            with tracer.start_as_current_span(
                "dispatch",
                attributes={"flowforge.job_id": task.job_id, "messaging.destination": queue},
            ):
                self.celery.send_task(
                    name,
                    args=[task.model_dump()],
                    queue=queue,
                    task_id=task.job_run_id,
                    headers=carrier(),  # the dispatch span's context, for the worker
                )

    def cancel(self, execution_id: str, task_ids: list[str]) -> None:
        self.flags.cancel(execution_id)
        if task_ids:
            self.celery.control.revoke(task_ids)

    def close(self) -> None:
        pass


class InProcessRuntime:
    """Runs job tasks in threads of this process (embedded default)."""

    def __init__(self, settings: Settings, database: Database) -> None:
        self.settings = settings
        self.database = database
        self.flags = LocalCancelFlags()
        self.pool = ThreadPoolExecutor(
            settings.embedded_workers, thread_name_prefix="flowforge-job"
        )
        self.lake = Lake.from_settings(settings)

    def send(self, tasks: list[JobTask], queues: dict[str, str]) -> None:
        for task in tasks:
            with tracer.start_as_current_span(
                "dispatch", attributes={"flowforge.job_id": task.job_id}
            ):
                headers = carrier()
            self.pool.submit(self._run, task, queues[task.job_run_id], headers)

    def emit(self, event: dict[str, Any]) -> None:
        self.send(*handle_event(self.database, event))

    def cancel(self, execution_id: str, task_ids: list[str]) -> None:
        self.flags.cancel(execution_id)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=False)

    def _run(self, task: JobTask, queue: str, headers: dict[str, str]) -> None:
        runner = _runner(queue)
        attempt = 0
        try:
            with (
                continued(headers),
                tracer.start_as_current_span(
                    f"job {task.job.get('name')}",
                    attributes={
                        "flowforge.execution_id": task.execution_id,
                        "flowforge.job_id": task.job_id,
                    },
                ),
            ):
                while True:
                    attempt += 1
                    context = JobContext(
                        task=task,
                        attempt=attempt,
                        settings=self.settings,
                        lake=self.lake,
                        sink=self,
                        cancel_flags=self.flags,
                    )
                    outcome = execute_job(
                        context, runner, final_attempt=attempt > self.settings.task_max_retries
                    )
                    if outcome != "retry":
                        return
                    time.sleep(
                        retry_delay(
                            attempt,
                            self.settings.task_retry_backoff,
                            self.settings.task_retry_backoff_max,
                        )
                    )
        except Exception:  # a thread must not die silently: the run would hang
            log.exception("job run %s could not be executed", task.job_run_id)


def _runner(queue: str):
    if queue == INGEST_QUEUE:
        from flowforge_ingest.runner import run_ingest_job

        return run_ingest_job
    from flowforge_transform.runner import run_transform_job

    return run_transform_job


def make_runtime(settings: Settings, database: Database):
    return (
        InProcessRuntime(settings, database) if settings.embedded_tasks else CeleryRuntime(settings)
    )


def install_runtime(app) -> Callable[[], None]:
    """Put the task runtime on ``app.state``; returns its shutdown."""
    runtime = make_runtime(app.state.settings, app.state.database)
    app.state.runtime = runtime
    return runtime.close
