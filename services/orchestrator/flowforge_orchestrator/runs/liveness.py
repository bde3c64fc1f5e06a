"""Finding lost job runs and settling them: the reaper's rules, as plain functions of a
session (the thread that applies them every few seconds lives in
:mod:`flowforge_orchestrator.reaper`).

A job run in flight is *lost* when nothing will ever report on it again:

==========================================  ===========================================
what the database shows                     what the reaper does
==========================================  ===========================================
queued, dispatched, never sent, for longer  sends the same attempt again (the sender
than ``dispatch_grace`` (the API or events  stopped between its commit and its send)
worker stopped in between)
queued, sent, not started, and the broker   queues the next attempt (a Redis restarted
has restarted since (another Redis run id)  empty forgot the task)
queued or running, and its holder is a      the next attempt, at once (same host: the
process of this host that has ended         process is certainly gone)
running, no heartbeat for                   the next attempt (the worker or its host
``heartbeat_timeout``                       died, or is cut off)
==========================================  ===========================================

"The next attempt" is a retry while attempts remain (the job shows ``queued`` again with a
note: "worker lost (...); retrying (attempt 2)"); after the last one the job fails with the
reason, and the jobs that need it are skipped. In a ``cancelling`` execution a lost job is
cancelled. Events of the lost attempt that still arrive are ignored (the attempt number
moved on), and writes are idempotent, so a worker that was only cut off and still commits
makes the retry find "already applied" instead of writing twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs import service
from flowforge_orchestrator.runs.models import Execution, JobRun
from flowforge_orchestrator.runs.state import JOB_MOVES, TERMINAL, Status, move
from flowforge_shared.contracts.events import run_event
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.db.base import utcnow


@dataclass(frozen=True)
class Lease:
    heartbeat_timeout: float
    dispatch_grace: float
    max_attempts: int

    @classmethod
    def from_settings(cls, settings) -> Lease:
        return cls(
            heartbeat_timeout=settings.heartbeat_timeout,
            dispatch_grace=settings.dispatch_grace,
            max_attempts=settings.task_max_retries + 1,
        )


@dataclass
class Sweep:
    """What one pass decided: tasks to send once committed, executions whose cancel flag to
    raise again (a broker that restarted empty forgot it), and what happened, for the log."""

    tasks: list[JobTask] = field(default_factory=list)
    resent: list[JobTask] = field(default_factory=list)
    cancelling: list[str] = field(default_factory=list)
    settled: list[str] = field(default_factory=list)


def candidates(session: Session) -> list[str]:
    """Active executions: the only ones that can hold a lost job run."""
    return list(
        session.scalars(
            select(Execution.id).where(Execution.status.in_(service.ACTIVE)).order_by(Execution.seq)
        )
    )


def lock(session: Session, execution_id: str) -> Execution | None:
    """The execution, locked against event recording (PostgreSQL; SQLite serialises writers);
    None when another reaper holds it or it ended meanwhile."""
    query = (
        select(Execution)
        .where(Execution.id == execution_id, Execution.status.in_(service.ACTIVE))
        .with_for_update(skip_locked=True)
    )
    return session.scalar(query)


def reap(
    session: Session,
    execution: Execution,
    *,
    lease: Lease,
    epoch: str | None,
    gone: Callable[[str | None], bool],
    judge_heartbeats: bool = True,
    now: datetime | None = None,
) -> Sweep:
    """Settle the lost job runs of one (locked) execution.

    ``epoch`` is the broker's current identity (None: unknown or not a Redis broker);
    ``gone(owner)`` tells whether a holder has certainly ended; ``judge_heartbeats`` is
    False while heartbeats cannot be trusted to have arrived (the reaper or the broker has
    not been up for a whole lease)."""
    now = now or utcnow()
    sweep = Sweep()
    for job in execution.jobs:
        if job.status in TERMINAL or not job.dispatched:
            continue
        if job.status == Status.QUEUED and job.sent_at is None and job.heartbeat_at is None:
            if gone(job.owner) or _older(job.dispatched_at, lease.dispatch_grace, now):
                sweep.resent.append(service.task_for(session, execution, job))
                sweep.settled.append(f"{job.name}: dispatch never sent; sending it again")
            continue
        reason = _lost(job, lease, epoch, gone, judge_heartbeats, now)
        if reason:
            sweep.settled.append(f"{job.name}: {reason}")
            _settle(session, execution, job, reason, lease)
    service.finish_if_done(execution)
    session.flush()
    sweep.tasks = service.ready_tasks(session, execution)
    if execution.status == Status.CANCELLING:
        sweep.cancelling.append(execution.id)
    return sweep


def _lost(
    job: JobRun,
    lease: Lease,
    epoch: str | None,
    gone: Callable[[str | None], bool],
    judge_heartbeats: bool,
    now: datetime,
) -> str | None:
    """Why the job run is lost, or None while it may still be alive."""
    if gone(job.owner):
        return f"its worker {job.owner} has stopped"
    started = job.status == Status.RUNNING or job.heartbeat_at is not None
    if not started:
        if epoch and job.sent_epoch and job.sent_epoch != epoch:
            return "the broker restarted and lost the queued task"
        return None  # waiting in the broker's queue for a free worker
    last = job.heartbeat_at or job.started_at or job.sent_at or job.dispatched_at
    if judge_heartbeats and _older(last, lease.heartbeat_timeout, now):
        silent = int((now - last).total_seconds()) if last else None
        who = job.owner or "its worker"
        return f"no heartbeat from {who} for {silent} s"
    return None


def _settle(session: Session, execution: Execution, job: JobRun, reason: str, lease: Lease) -> None:
    if execution.status == Status.CANCELLING:
        _end(job, Status.CANCELLED)
        job.note = f"cancelled: worker lost while stopping ({reason})"
        _record(session, execution, job, "ABORT", job.note)
        return
    if job.attempt >= lease.max_attempts:
        _end(job, Status.FAILED)
        message = f"worker lost ({reason}); gave up after {job.attempt} attempts"
        job.error = {"message": message, "detail": None}
        job.note = None
        service.skip_downstream(execution, job.job_id)
        _record(session, execution, job, "FAIL", message)
        return
    # Back to queued for the next attempt: ready_tasks dispatches it in this transaction.
    if job.status == Status.RUNNING:
        move(job, JOB_MOVES, Status.QUEUED)
    job.dispatched = False
    job.rows_read = 0
    job.note = f"worker lost ({reason}); retrying (attempt {job.attempt + 1})"
    _record(session, execution, job, "RETRY", job.note)


def _end(job: JobRun, status: Status) -> None:
    """End a lost job: like any job that did not complete, it counts no row as written."""
    move(job, JOB_MOVES, status)
    job.finished_at = utcnow()
    job.rows_written = 0


def _record(session: Session, execution: Execution, job: JobRun, kind: str, message: str) -> None:
    """Put the reaper's decision in the run's history and live stream."""
    facets = {"flowforge_error": {"message": message, "detail": None, "retryable": kind == "RETRY"}}
    event = run_event(
        "RUNNING" if kind == "RETRY" else kind,
        job_run_id=job.id,
        execution_id=execution.id,
        workflow_id=execution.workflow_id,
        workflow_name=execution.workflow_name,
        job_id=job.job_id,
        job_name=job.name,
        attempt=job.attempt,
        owner="orchestrator",
        facets=facets,
    )
    service.add_event(session, execution, job, event, event_type=kind)


def _older(moment: datetime | None, seconds: float, now: datetime) -> bool:
    return moment is not None and moment < now - timedelta(seconds=seconds)
