"""Running one job run on a worker: the plain function every job task wraps.

    execute_job(context, runner) -> Outcome

It reports START, progress, and COMPLETE / FAIL / ABORT as OpenLineage run events through an
:class:`EventSink`, classifies errors (transient errors are retried with exponential backoff
and jitter, up to a limit; everything else fails at once with a message for the user and the
technical detail apart), honours cancellation between batches, sends a heartbeat from a thread
of its own while the attempt runs (the orchestrator's reaper settles attempts whose beats
stop) and, once a job succeeded, removes its tables' data files that no commit references
and maintains those tables (checkpoint interval, compaction, vacuum: a failure there is a
note on the job run, never a failed job).
The same code runs in a Celery worker and, in the embedded default, in a thread of the API
process.
"""

from __future__ import annotations

import logging
import random
import threading
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from flowforge_shared.contracts.events import Dataset, run_event
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.errors import PermanentError, TaskError, TransientError
from flowforge_shared.lake import Lake, PriorCommit
from flowforge_shared.settings import Settings
from flowforge_shared.telemetry import carrier, continued

log = logging.getLogger("flowforge.worker")


class EventSink(Protocol):
    def emit(self, event: dict[str, Any]) -> None: ...

    def heartbeat(self, beat: dict[str, Any]) -> None:
        """A sign of life of the attempt (best effort: a lost one is not kept)."""


class CancelFlags(Protocol):
    def is_cancelled(self, execution_id: str) -> bool: ...

    def cancel(self, execution_id: str) -> None: ...


class LocalCancelFlags:
    """Cancellation flags of the embedded default (one process)."""

    def __init__(self) -> None:
        self._cancelled: set[str] = set()

    def is_cancelled(self, execution_id: str) -> bool:
        return execution_id in self._cancelled

    def cancel(self, execution_id: str) -> None:
        self._cancelled.add(execution_id)


class RedisCancelFlags:
    """Cancellation flags shared by every worker, kept a day in Redis."""

    def __init__(self, url: str, client=None) -> None:
        """``client``: a Redis client of ``url`` to share (a worker's, kept across its tasks:
        no new connection pool per task)."""
        import redis

        self.client = client or redis.Redis.from_url(
            url, socket_timeout=5, socket_connect_timeout=5
        )

    def is_cancelled(self, execution_id: str) -> bool:
        """Whether the execution was cancelled. While Redis cannot be asked, the job goes
        on (a broker outage must not fail a healthy job); a cancel made meanwhile is raised
        again by the orchestrator's reaper once Redis is back, and seen at the next batch."""
        import redis

        try:
            return bool(self.client.exists(f"flowforge:cancel:{execution_id}"))
        except redis.RedisError as error:
            log.warning("cancel flag of %s unreadable (%s); going on", execution_id, error)
            return False

    def cancel(self, execution_id: str) -> None:
        self.client.set(f"flowforge:cancel:{execution_id}", "1", ex=86_400)


class Cancelled(PermanentError):
    """The execution was cancelled; the job stopped before committing."""


@dataclass
class JobOutcome:
    rows_read: int = 0
    rows_written: int = 0
    inputs: list[Dataset] = field(default_factory=list)
    outputs: list[Dataset] = field(default_factory=list)
    quarantined: int = 0
    already_applied: PriorCommit | None = None  # a retry found this run's own commit
    watermark: dict[str, Any] | None = None  # incremental jobs: how far this run read
    notes: list[str] = field(default_factory=list)  # what the user should know (the job's note)
    # (layer, table) -> the DeltaTable of a table the job wrote, as of its commit: the upkeep
    # after the job (orphan files, maintenance) starts from it instead of reading the log.
    tables: dict[tuple[str, str], Any] = field(default_factory=dict)


@dataclass
class JobContext:
    task: JobTask
    attempt: int
    settings: Settings
    lake: Lake
    sink: EventSink
    cancel_flags: CancelFlags
    owner: str | None = None  # who runs the attempt (flowforge_shared.identity)
    # What the attempt has read so far (files with their digest): carried on every later
    # event, so a run that fails after reading still records what it read.
    inputs: list[Dataset] = field(default_factory=list)
    # The trace context of the job's span (set by execute_job): every event is emitted in
    # it, from whichever thread reports (delta-rs calls the progress back on its own).
    trace: dict[str, str] = field(default_factory=dict)
    _batch: int = 0

    def reading(self, dataset: Dataset) -> None:
        """The attempt read ``dataset``; later events say so."""
        self.inputs = [d for d in self.inputs if d.name != dataset.name] + [dataset]

    def should_stop(self) -> bool:
        return self.cancel_flags.is_cancelled(self.task.execution_id)

    def progress(self, rows_read: int, *, staged: int = 0) -> None:
        """A batch went through: report the running totals. ``staged`` rows are written to
        data files but not committed: a job's ``rowsWritten`` comes only with COMPLETE."""
        self._batch += 1
        self.emit(
            "RUNNING",
            facets={
                "flowforge_progress": {
                    "rowsRead": rows_read,
                    "rowsStaged": staged,
                    "batch": self._batch,
                }
            },
        )

    def heartbeat(self) -> None:
        task = self.task
        self.sink.heartbeat(
            {
                "jobRunId": task.job_run_id,
                "executionId": task.execution_id,
                "attempt": self.attempt,
                "owner": self.owner,
            }
        )

    def emit(self, event_type, **kwargs) -> None:
        task = self.task
        if self.inputs and event_type != "START" and not kwargs.get("inputs"):
            kwargs["inputs"] = self.inputs
        event = run_event(
            event_type,
            job_run_id=task.job_run_id,
            execution_id=task.execution_id,
            workflow_id=task.workflow_id,
            workflow_name=task.workflow_name,
            job_id=task.job_id,
            job_name=task.job.get("name", task.job_id),
            attempt=self.attempt,
            owner=self.owner,
            **kwargs,
        )
        if not self.trace:
            self.sink.emit(event)
            return
        with continued(self.trace):
            self.sink.emit(event)


Runner = Callable[[JobContext], JobOutcome]
Outcome = Literal["succeeded", "failed", "cancelled", "retry"]


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff with full jitter in its upper half: attempt 1 -> base/2..base.
    Any attempt number will do: past the cap the exponent stops growing (2 ** 2000 would not
    fit a float)."""
    ceiling = min(cap, base * 2.0 ** min(max(0, attempt - 1), 60))
    return random.uniform(ceiling / 2, ceiling)


def classify(error: BaseException) -> TaskError:
    """Our own errors as they are; the rest sorted into transient (network, storage I/O) or
    permanent (everything else), with the technical detail kept apart."""
    if isinstance(error, TaskError):
        return error
    detail = "".join(traceback.format_exception_only(type(error), error)).strip()
    terminal = getattr(error, "terminal", None)
    if terminal is True or (terminal is None and isinstance(error, ValueError)):
        return PermanentError(str(error), detail)
    if (
        terminal is False
        or isinstance(error, ConnectionError | TimeoutError)
        or _looks_transient(error)
    ):
        return TransientError(f"a temporary error interrupted the job: {error}", detail)
    return PermanentError(f"the job failed unexpectedly: {type(error).__name__}: {error}", detail)


def _looks_transient(error: BaseException) -> bool:
    text = str(error).lower()
    return any(
        marker in text
        for marker in ("connection reset", "timed out", "503", "502", "500 internal", "slow down")
    )


class Heartbeat:
    """Beats every ``interval`` seconds on a thread of its own while the attempt runs, so a
    long read or commit is never taken for a lost worker; the orchestrator's reaper acts
    only when beats stop (the process died, or the host went away)."""

    def __init__(self, context: JobContext, interval: float) -> None:
        self._context = context
        self._interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="flowforge-heartbeat", daemon=True)

    def __enter__(self) -> Heartbeat:
        if self._interval > 0:
            self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _beat(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._context.heartbeat()
            except Exception:  # noqa: BLE001 - a lost beat is retried by the next one
                log.debug("heartbeat of %s not sent", self._context.task.job_run_id, exc_info=True)


ORPHAN_MIN_AGE = 6 * 3600.0
"""Uncommitted data files younger than this (or twice the task time limit) are left alone:
they may belong to a write still under way."""


def _remove_orphans(context: JobContext, outcome: JobOutcome) -> None:
    """Tidy the tables the job wrote: data files of writers killed before their commit.
    Best effort: a failure here never fails the job."""
    age = max(ORPHAN_MIN_AGE, 2.0 * context.settings.task_time_limit)
    for dataset in outcome.outputs:
        if dataset.layer is None:
            continue
        try:
            removed = context.lake.remove_orphans(
                dataset.layer,
                dataset.table,
                age,
                current=outcome.tables.get((dataset.layer, dataset.table)),
            )
        except Exception:  # noqa: BLE001 - tidying is never worth a failed job
            log.warning("could not remove orphan files of %s", dataset.label, exc_info=True)
            continue
        if removed:
            log.info("removed %d orphan data file(s) of %s", len(removed), dataset.label)


def _maintain(context: JobContext, outcome: JobOutcome) -> None:
    """Maintain the tables the job wrote (flowforge_shared.maintenance), before COMPLETE so
    the job's next run cannot write the table meanwhile. A step that fails is a note on the
    job run, never a failure: the write has committed."""
    from flowforge_shared.maintenance import MaintenancePolicy, maintain_after_write

    if not context.settings.table_maintenance:
        return
    policy = MaintenancePolicy.from_settings(context.settings)
    for dataset in outcome.outputs:
        if dataset.layer is None:
            continue
        try:
            maintained = maintain_after_write(
                context.lake,
                dataset.layer,
                dataset.table,
                policy,
                current=outcome.tables.get((dataset.layer, dataset.table)),
            )
        except Exception as error:  # noqa: BLE001 - never worth a failed job
            log.warning("maintenance of %s failed", dataset.label, exc_info=True)
            outcome.notes.append(
                f"maintenance of {dataset.label} failed ({error}); the write itself is committed"
            )
            continue
        if maintained.done:
            log.info("maintained %s: %s", dataset.label, maintained.done)
        outcome.notes.extend(maintained.warnings)


def execute_job(context: JobContext, runner: Runner, *, final_attempt: bool) -> Outcome:
    """Run one attempt. Returns "retry" for a transient failure with attempts left (the caller
    schedules the retry); otherwise the job's final outcome, already reported. Called in the
    job's span: its events carry that span's context."""
    context.trace = carrier()
    context.emit("START")
    with Heartbeat(context, context.settings.heartbeat_interval):
        return _attempt(context, runner, final_attempt)


def _attempt(context: JobContext, runner: Runner, final_attempt: bool) -> Outcome:
    context.inputs = []  # a new attempt reads its inputs again
    try:
        if context.should_stop():
            raise Cancelled("the execution was cancelled before the job started")
        outcome = runner(context)
    except Cancelled:
        context.emit("ABORT")
        return "cancelled"
    except Exception as raw:  # noqa: BLE001 - every failure is classified and reported
        error = classify(raw)
        log.warning(
            "job %s attempt %s: %s", context.task.job_run_id, context.attempt, error.message
        )
        if error.retryable and not final_attempt:
            return "retry"
        message = error.message
        if error.retryable:
            message = f"{message} (gave up after {context.attempt} attempts)"
        context.emit(
            "FAIL",
            facets={
                "flowforge_error": {
                    "message": message,
                    "detail": error.detail,
                    "retryable": error.retryable,
                }
            },
        )
        return "failed"
    _remove_orphans(context, outcome)
    _maintain(context, outcome)
    context.emit(
        "COMPLETE",
        inputs=outcome.inputs,
        outputs=outcome.outputs,
        facets={
            "flowforge_result": {
                "rowsRead": outcome.rows_read,
                "rowsWritten": outcome.rows_written,
                "quarantined": outcome.quarantined,
                "alreadyApplied": outcome.already_applied.describe()
                if outcome.already_applied
                else None,
                "watermark": outcome.watermark,
                "runSequence": context.task.run_sequence,
                "notes": list(outcome.notes),
            }
        },
    )
    return "succeeded"
