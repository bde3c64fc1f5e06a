"""Executions: start a run from a workflow's jobs, record what the workers report, decide
what runs next, cancel.

The caller owns the transaction and sends the returned tasks only after it committed, so a
worker never receives a job run the database does not show yet; once sent, it records that
with :func:`mark_sent` (a dispatch committed but never sent is found by the reaper).
One execution per workflow is active at a time, enforced by a partial unique index
(``uq_executions_one_active``), so two racing run requests cannot both get in.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from sqlalchemy import (
    JSON,
    Integer,
    Text,
    and_,
    bindparam,
    cast,
    exists,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, object_session

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.runs import execution_events, planner
from flowforge_orchestrator.runs.models import ACTIVE_STATUSES, Execution, JobRun, RunEvent
from flowforge_orchestrator.runs.pipeline import Statements
from flowforge_orchestrator.runs.state import EXECUTION_MOVES, JOB_MOVES, TERMINAL, Status, move
from flowforge_shared.contracts.events import input_files, output_datasets, run_facet
from flowforge_shared.contracts.runs import JobSnapshot, StartRun
from flowforge_shared.contracts.tasks import JobTask
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound

ENTITY = "execution"
ACTIVE = ACTIVE_STATUSES
DISPATCHING = (Status.QUEUED.value, Status.RUNNING.value)
"""Executions that may still dispatch jobs (a cancelling one may not)."""

EventConsumer = Callable[[Session, dict[str, Any]], None]


def get_or_raise(session: Session, *, execution_id: str, lock: bool = False) -> Execution:
    """The execution, or NotFound; ``lock`` serialises event handling on PostgreSQL."""
    query = select(Execution).where(Execution.id == execution_id)
    if lock:
        query = query.with_for_update()
    execution = session.scalar(query)
    if execution is None:
        raise NotFound(f"execution {execution_id} not found")
    return execution


def latest_runs(session: Session, *, workflow_ids: list[str]) -> list[dict[str, Any]]:
    """The newest execution of each workflow (``seq`` grows with every run): one query,
    the newest ``seq`` per workflow joined back to its row."""
    newest = (
        select(Execution.workflow_id, func.max(Execution.seq).label("seq"))
        .where(Execution.workflow_id.in_(set(workflow_ids)))
        .group_by(Execution.workflow_id)
        .subquery()
    )
    rows = session.execute(
        select(
            Execution.workflow_id,
            Execution.id,
            Execution.status,
            Execution.created_at,
            Execution.finished_at,
        ).join(newest, Execution.seq == newest.c.seq)
    )
    return [
        {
            "workflow_id": row.workflow_id,
            "execution_id": row.id,
            "status": row.status,
            "created_at": row.created_at,
            "finished_at": row.finished_at,
        }
        for row in rows
    ]


def get_all(
    session: Session,
    *,
    workflow_id: str | None = None,
    status: str | None = None,
    limit: int = 50,
) -> list[Execution]:
    """Newest first."""
    query = select(Execution)
    if workflow_id:
        query = query.where(Execution.workflow_id == workflow_id)
    if status:
        query = query.where(Execution.status == status)
    return list(session.scalars(query.order_by(Execution.seq.desc()).limit(limit)))


def start(
    session: Session,
    *,
    workflow_id: str,
    workflow_name: str,
    jobs: list[tuple[str, str, int, dict]],
    selected: Iterable[str] | None,
    trigger: str,
    actor: str,
    trace_id: str | None = None,
    execution_id: str | None = None,
    snapshots: dict[str, JobSnapshot] | None = None,
    cause: dict | None = None,
) -> tuple[Execution, list[JobTask]]:
    """A new execution with a snapshot of the jobs, and the tasks to send once committed.

    ``snapshots`` (by job id) add what the run request carried besides each job's
    configuration: the files it reads and its saved connection.

    Conflict when the workflow has an active execution; a request that loses the race to
    another is refused by the database's unique index and gets the same answer."""
    _refuse_if_active(session, workflow_id, workflow_name)
    planned = planner.plan(jobs, selected)
    snapshots = snapshots or {}
    execution = Execution(
        **({"id": execution_id} if execution_id else {}),
        workflow_id=workflow_id,
        workflow_name=workflow_name,
        status=Status.QUEUED.value,
        trigger=trigger,
        cause=cause,
        requested_by=actor,
        trace_id=trace_id,
        created_at=utcnow(),
    )
    session.add(execution)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        _refuse_if_active(session, workflow_id, workflow_name)
        raise
    for job in planned:
        session.add(
            JobRun(
                execution_id=execution.id,
                job_id=job.job_id,
                name=job.name,
                position=job.position,
                config=job.config,
                needs=job.needs,
                queue=job.queue,
                status=Status.QUEUED.value,
                dispatched=False,
                attempt=0,
                rows_read=0,
                rows_written=0,
                quarantined_rows=0,
                outputs=[],
                inputs=_snapshot(snapshots, job.job_id).inputs or None,
                connection=_snapshot(snapshots, job.job_id).connection,
            )
        )
    session.flush()
    session.refresh(execution)
    audit.record(
        session,
        actor=actor,
        action="execution.start",
        entity_type=ENTITY,
        entity_id=execution.id,
        after={
            "workflowId": workflow_id,
            "trigger": trigger,
            **({"cause": cause} if cause else {}),
            "jobs": [job.job_id for job in planned],
        },
    )
    execution_events.note(session, execution, "START")
    return execution, ready_tasks(session, execution)


def start_requested(session: Session, request: StartRun) -> tuple[Execution, list[JobTask]]:
    """The execution a run request asks for; the same request again starts nothing more (a
    message may be delivered twice) and returns the execution with no tasks."""
    existing = session.scalar(select(Execution).where(Execution.id == request.execution_id))
    if existing is not None:
        return existing, []
    return start(
        session,
        workflow_id=request.workflow_id,
        workflow_name=request.workflow_name,
        jobs=[(job.job_id, job.name, job.position, job.config) for job in request.jobs],
        selected=request.selected,
        trigger=request.trigger,
        actor=request.actor,
        trace_id=request.trace_id,
        execution_id=request.execution_id,
        snapshots={job.job_id: job for job in request.jobs},
        cause=request.cause,
    )


def refuse_if_running(session: Session, request: StartRun) -> None:
    """Conflict when :func:`start_requested` would refuse the request: its workflow has an
    active execution and the request's own execution does not exist yet (a request repeated
    returns its execution). Only reads: a request that passes may still be refused there."""
    if session.scalar(select(Execution.id).where(Execution.id == request.execution_id)):
        return
    _refuse_if_active(session, request.workflow_id, request.workflow_name)


def record_refused(session: Session, request: StartRun, reason: str) -> Execution:
    """A run request that arrived by message and could not start (its workflow was already
    running): kept as a failed execution saying why, so the id the requester was given
    answers instead of being unknown."""
    existing = session.scalar(select(Execution).where(Execution.id == request.execution_id))
    if existing is not None:
        return existing
    now = utcnow()
    execution = Execution(
        id=request.execution_id,
        workflow_id=request.workflow_id,
        workflow_name=request.workflow_name,
        status=Status.FAILED.value,
        trigger=request.trigger,
        cause=request.cause,
        requested_by=request.actor,
        trace_id=request.trace_id,
        created_at=now,
        finished_at=now,
        error=f"not started: {reason}",
    )
    session.add(execution)
    session.flush()
    execution_events.note(session, execution, "START")
    execution_events.note(session, execution, "FAIL")
    return execution


_NO_SNAPSHOT = JobSnapshot(jobId="", name="", position=0, config={})


def _snapshot(snapshots: dict[str, JobSnapshot], job_id: str) -> JobSnapshot:
    return snapshots.get(job_id, _NO_SNAPSHOT)


def _refuse_if_active(session: Session, workflow_id: str, workflow_name: str) -> None:
    active = session.scalar(
        select(Execution.id).where(
            Execution.workflow_id == workflow_id, Execution.status.in_(ACTIVE)
        )
    )
    if active:
        raise Conflict(f"workflow {workflow_name} is already running (execution {active})")


def ready_tasks(session: Session, execution: Execution) -> list[JobTask]:
    """Mark every job run whose needs all succeeded as dispatched, as its next attempt, and
    return its task (with the saved connection and the stored watermark of a database job)."""
    if execution.status not in DISPATCHING:
        return []
    succeeded = {job.job_id for job in execution.jobs if job.status == Status.SUCCEEDED}
    tasks = []
    for job in execution.jobs:
        if job.status == Status.QUEUED and not job.dispatched and set(job.needs) <= succeeded:
            job.dispatched = True
            job.attempt += 1  # events of an attempt before this one are ignored from now on
            job.dispatched_at = utcnow()
            job.sent_at = job.sent_epoch = job.owner = job.heartbeat_at = None
            tasks.append(task_for(session, execution, job))
    return tasks


def task_for(session: Session, execution: Execution, job: JobRun) -> JobTask:
    """The task message of the job run's current attempt."""
    return JobTask(
        execution_id=execution.id,
        run_sequence=execution.seq,
        job_run_id=job.id,
        job_id=job.job_id,
        workflow_id=execution.workflow_id,
        workflow_name=execution.workflow_name,
        job=job.config,
        attempt=max(job.attempt, 1),
        **_source_state(session, job),
    )


def mark_sent(
    session: Session,
    sent: Iterable[str | tuple[str, int]],
    *,
    epoch: str | None,
    owner: str | None,
    statements: Statements | None = None,
) -> None:
    """The broker (or the in-process pool) took these tasks. ``owner`` is who holds a task
    until a worker starts it (the embedded process; None when the broker holds it).

    ``sent`` holds job run ids, or (job run id, attempt) pairs: a pair marks only that
    attempt, so a mark recorded late (in the background, :class:`~flowforge_orchestrator.
    dispatch.Marker`) never marks a later attempt the reaper dispatched meanwhile.

    One UPDATE per job run (two with an owner), queued on ``statements`` when given (sent
    by the caller with its other statements: one PostgreSQL round trip), else sent here."""
    pairs = [(item, None) if isinstance(item, str) else item for item in sent]
    if not pairs:
        return
    batch = statements if statements is not None else Statements(session)
    now = utcnow()
    for job_run_id, attempt in pairs:
        any_attempt = attempt is None
        which = {"m_job_run_id": job_run_id, **({} if any_attempt else {"m_attempt": attempt})}
        batch.add(
            ("mark.sent", any_attempt),
            lambda a=any_attempt: _mark(a),
            which | {"m_now": now, "m_epoch": epoch},
        )
        if owner is not None:
            batch.add(
                ("mark.owner", any_attempt),
                lambda a=any_attempt: _own(a),
                which | {"m_owner": owner},
            )
    if statements is None:
        batch.send()


def _marked(any_attempt: bool):
    table = JobRun.__table__
    condition = table.c.id == bindparam("m_job_run_id", type_=table.c.id.type)
    if not any_attempt:
        condition = and_(condition, table.c.attempt == bindparam("m_attempt", type_=Integer()))
    return table, condition


def _mark(any_attempt: bool):
    table, which = _marked(any_attempt)
    return (
        update(table)
        .where(which, table.c.sent_at.is_(None))
        .values(
            sent_at=bindparam("m_now", type_=table.c.sent_at.type),
            sent_epoch=bindparam("m_epoch", type_=table.c.sent_epoch.type),
        )
    )


def _own(any_attempt: bool):
    table, which = _marked(any_attempt)
    return (
        update(table)
        .where(which, table.c.status == Status.QUEUED.value, table.c.owner.is_(None))
        .values(owner=bindparam("m_owner", type_=table.c.owner.type))
    )


def record_heartbeat(session: Session, beat: dict[str, Any]) -> bool:
    """A running attempt is alive; beats of an attempt the orchestrator gave up on, or of a
    job run that ended, change nothing. Returns whether it counted."""
    values: dict[str, Any] = {"heartbeat_at": utcnow()}
    if beat.get("owner"):
        values["owner"] = beat["owner"]
    result = session.execute(
        update(JobRun)
        .where(
            JobRun.id == beat.get("jobRunId"),
            JobRun.attempt <= int(beat.get("attempt") or 0),
            JobRun.status.in_(DISPATCHING),
        )
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def _source_state(session: Session, job: JobRun) -> dict[str, Any]:
    database = (job.config.get("sourceConfig") or {}).get("databaseConfig")
    if not database:
        return {}
    from flowforge_orchestrator.watermarks.service import get as get_watermark
    from flowforge_orchestrator.watermarks.service import to_wire

    mark = get_watermark(session, job_id=job.job_id) if database.get("isIncremental") else None
    return {"connection": job.connection, "watermark": to_wire(mark) if mark else None}


def queue_of(execution: Execution, job_run_id: str) -> str:
    return next(job.queue for job in execution.jobs if job.id == job_run_id)


def add_event(
    session: Session,
    execution: Execution,
    job: JobRun,
    event: dict[str, Any],
    *,
    event_type: str | None = None,
) -> None:
    """Record an event the orchestrator itself made (a lost worker, a retry), so the run's
    history and live stream show it like the workers' own."""
    facet = run_facet(event, "flowforge_run")
    session.add(
        RunEvent(
            event_id=facet["eventId"],
            execution_id=execution.id,
            job_run_id=job.id,
            event_type=event_type or event.get("eventType", "?"),
            received_at=utcnow(),
            payload=event,
        )
    )


def record_event(
    session: Session,
    event: dict[str, Any],
    consumers: Iterable[EventConsumer] = (),
    *,
    commit: bool = False,
) -> tuple[Row | None, list[JobTask]]:
    """Apply one run event; returns the execution (:class:`Row`, with its ``jobs``) and the
    tasks that became ready.

    Idempotent: an event already recorded (same eventId) changes nothing.

    Written with Core in two sends of statements (:class:`~.pipeline.Statements`: one
    round trip each on PostgreSQL): the execution's row locked, its job runs read and the
    event inserted unless recorded already; then the columns the event changed, one UPDATE
    per row. The job runs are read by a statement of their own, after the lock is held: a
    ``SELECT ... FOR UPDATE`` that waited for the lock returns the locked row as committed
    by the holder but the rows it joins as they were when it started (PostgreSQL's
    EvalPlanQual), so a join would miss what the holder just wrote to them (two jobs
    finishing at once in two processes: the second would not see the first succeeded, and
    the job that needs both would never be dispatched).

    ``commit``: the caller's session ends with this record (it commits right after, as the
    events worker does); the session must not have begun. On PostgreSQL the record then
    owns the transaction: ``BEGIN`` goes with the first send and ``COMMIT`` with the
    writes, so a START costs two round trips, one before its ``startedAt`` is stamped, and
    a COMPLETE one after its ``finishedAt`` (plus the watermark's statements when it
    reports one)."""
    facet = run_facet(event, "flowforge_run")
    execution_id, event_id = facet.get("executionId"), facet.get("eventId")
    if not execution_id or not event_id:
        return None, []
    statements = Statements(session, own_transaction=commit)
    dialect = statements.dialect.name
    at_once = dialect in ("postgresql", "sqlite")
    found = statements.add("record.execution", _execution_locked, {"execution_id": execution_id})
    runs = statements.add("record.job_runs", _job_runs_of, {"execution_id": execution_id})
    job_run_id = event.get("run", {}).get("runId")
    row = {
        "event_id": event_id,
        "execution_id": execution_id,
        "job_run_id": job_run_id,
        "event_type": event.get("eventType", "?"),
        "received_at": utcnow(),
        "payload": event,
    }
    if at_once:  # inserted after the lock is held, and only for an execution that exists
        inserted = statements.add(
            ("record.insert", dialect), lambda: _insert_event_once(dialect), _prefixed(row)
        )
    statements.send()
    if (execution_row := found.first()) is None:
        return None, []
    execution = Row(EXECUTION_COLUMNS, execution_row)
    execution.jobs = [Row(JOB_RUN_COLUMNS, job_row) for job_row in runs.rows]
    if not (inserted.first() is not None if at_once else _insert_once(session, row)):
        return execution, []  # already recorded (a redelivered message)
    job = next((j for j in execution.jobs if j.id == job_run_id), None)
    if job is None:
        return execution, []
    _apply(execution, job, event, facet)
    if event.get("eventType") == "COMPLETE":
        for consumer in consumers:
            consumer(session, event)
    finish_if_done(execution, session)
    tasks = ready_tasks(session, execution)
    for table, changed in [
        (Execution.__table__, execution),
        *((JobRun.__table__, j) for j in execution.jobs),
    ]:
        if changed.changed:
            columns = tuple(sorted(changed.changed))
            statements.add(
                ("record.update", table.name, columns),
                lambda table=table, columns=columns: _update_columns(table, columns),
                {"row_id": changed.id, **_prefixed(changed.changed)},
            )
    statements.send(commit=True)
    return execution, tasks


class Row:
    """A row the record path read with Core: its columns as attributes, a JSON column
    parsed when first read (read as text: an event reads every job run's configuration and
    uses one or two); what was set to another value is kept in ``changed``, written back
    by one UPDATE of those columns only (as the ORM would: a column another writer changes
    without the execution's lock, a heartbeat's ``owner`` say, is not written unless the
    event changed it)."""

    def __init__(self, columns: tuple[tuple[str, bool], ...], values: Sequence[Any]) -> None:
        state = self.__dict__  # plain attributes: read without a call
        unparsed = state["_unparsed"] = {}
        for (name, is_json), value in zip(columns, values, strict=True):
            if is_json:
                unparsed[name] = value
            else:
                state[name] = value
        state["changed"] = {}

    def __getattr__(self, name: str) -> Any:  # a JSON column, first read
        unparsed = self.__dict__["_unparsed"]
        if name not in unparsed:
            raise AttributeError(name)
        text = unparsed.pop(name)
        value = self.__dict__[name] = None if text is None else json.loads(text)
        return value

    def __setattr__(self, name: str, value: Any) -> None:
        if name != "jobs" and getattr(self, name) != value:
            self.changed[name] = value
        self.__dict__[name] = value


def _json_as_text(table) -> tuple[tuple[str, bool], ...]:
    return tuple((column.name, isinstance(column.type, JSON)) for column in table.columns)


EXECUTION_COLUMNS = _json_as_text(Execution.__table__)
JOB_RUN_COLUMNS = _json_as_text(JobRun.__table__)


def _selected(table):
    return [
        cast(column, Text).label(column.name) if isinstance(column.type, JSON) else column
        for column in table.columns
    ]


def _execution_locked():
    table = Execution.__table__
    return (
        select(*_selected(table)).where(table.c.id == bindparam("execution_id")).with_for_update()
    )


def _job_runs_of():
    table = JobRun.__table__
    return (
        select(*_selected(table))
        .where(table.c.execution_id == bindparam("execution_id"))
        .order_by(table.c.position)
    )


def _prefixed(values: dict[str, Any]) -> dict[str, Any]:
    return {f"v_{name}": value for name, value in values.items()}


def _insert_event_once(dialect: str):
    """``INSERT INTO run_events ... SELECT <the event> WHERE EXISTS (<its execution>) ON
    CONFLICT (event_id) DO NOTHING RETURNING id``: a row back when it was inserted."""
    table, executions = RunEvent.__table__, Execution.__table__
    columns = [
        table.c[name]
        for name in (
            "event_id",
            "execution_id",
            "job_run_id",
            "event_type",
            "received_at",
            "payload",
        )
    ]
    event = select(*[bindparam(f"v_{column.name}", type_=column.type) for column in columns]).where(
        exists().where(executions.c.id == bindparam("v_execution_id", type_=executions.c.id.type))
    )
    insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
    return (
        insert(table)
        .from_select(columns, event)
        .on_conflict_do_nothing(index_elements=[table.c.event_id])
        .returning(table.c.id)
    )


def _update_columns(table, columns: tuple[str, ...]):
    return (
        update(table)
        .where(table.c.id == bindparam("row_id", type_=table.c.id.type))
        .values({name: bindparam(f"v_{name}", type_=table.c[name].type) for name in columns})
    )


def _insert_once(session: Session, row: dict[str, Any]) -> bool:
    """Insert the run event unless its eventId is recorded already; whether it was inserted.

    One statement where the database can say "unless" itself (PostgreSQL, SQLite:
    ``INSERT ... ON CONFLICT DO NOTHING``); elsewhere a look-up, then the insert."""
    dialect = session.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):
        insert = postgresql_insert if dialect == "postgresql" else sqlite_insert
        inserted = session.execute(
            insert(RunEvent)
            .values(**row)
            .on_conflict_do_nothing(index_elements=[RunEvent.event_id])
            .returning(RunEvent.id)
        ).first()
        return inserted is not None
    if session.scalar(select(RunEvent.id).where(RunEvent.event_id == row["event_id"])):
        return False
    try:
        with session.begin_nested():
            session.add(RunEvent(**row))
    except IntegrityError:  # recorded concurrently by a redelivered message
        return False
    return True


def _apply(execution: Execution, job: JobRun, event: dict[str, Any], facet: dict) -> None:
    kind = event.get("eventType")
    attempt = int(facet.get("attempt") or 1)
    if attempt < job.attempt:
        return  # a late event of an earlier attempt (one given up as lost, say)
    if job.status not in TERMINAL:
        job.heartbeat_at = utcnow()
        job.owner = facet.get("owner") or job.owner
        _record_files_read(job, event)
    if kind == "START":
        if move(job, JOB_MOVES, Status.RUNNING):
            job.attempt = attempt
            job.started_at = job.started_at or utcnow()
            if move(execution, EXECUTION_MOVES, Status.RUNNING):
                execution.started_at = utcnow()
    elif kind == "RUNNING":
        progress = run_facet(event, "flowforge_progress")
        if job.status == Status.RUNNING and attempt == job.attempt:
            # Rows read so far; nothing counts as written before the commit (COMPLETE).
            job.rows_read = int(progress.get("rowsRead", job.rows_read))
    elif kind == "COMPLETE":
        if move(job, JOB_MOVES, Status.SUCCEEDED):
            result = run_facet(event, "flowforge_result")
            job.attempt = max(job.attempt, attempt)
            job.finished_at = utcnow()
            job.started_at = job.started_at or job.finished_at
            job.rows_read = int(result.get("rowsRead", job.rows_read))
            job.rows_written = int(result.get("rowsWritten") or 0)
            job.outputs = [
                {"table": out["table"], "layer": out["layer"], "version": out["version"]}
                for out in output_datasets(event)
            ]
            job.quarantined_rows = int(result.get("quarantined") or 0)
            notes = [str(note) for note in result.get("notes") or []]
            applied = result.get("alreadyApplied")
            if applied:
                notes.insert(0, _already_applied_note(execution, applied))
            if notes:
                job.note = "; ".join(notes)
    elif kind == "FAIL":
        if move(job, JOB_MOVES, Status.FAILED):
            error = run_facet(event, "flowforge_error")
            job.finished_at = utcnow()
            job.rows_written = 0  # a failed job committed nothing
            job.error = {
                "message": error.get("message", "the job failed"),
                "detail": error.get("detail"),
            }
            skip_downstream(execution, job.job_id)
    elif kind == "ABORT":
        if move(job, JOB_MOVES, Status.CANCELLED):
            job.finished_at = utcnow()
            job.rows_written = 0  # stopped before its commit


def _record_files_read(job: JobRun, event: dict[str, Any]) -> None:
    """Add the digest and size of the landing files the worker read (computed from the bytes
    it read) to the job run's ``inputs``. Uploads already carry theirs, fixed when the run
    started; the newest attempt's word stands."""
    read = [f for f in input_files(event) if f["filePath"]]
    if not read:
        return
    inputs = [dict(entry) for entry in job.inputs or []]
    for file in read:
        entry = next((e for e in inputs if e.get("filePath") == file["filePath"]), None)
        if entry is None:
            inputs.append(
                {"filePath": file["filePath"], "sha256": file["sha256"], "size": file["size"]}
            )
        elif "fileId" not in entry:
            entry.update(sha256=file["sha256"], size=file["size"])
    if inputs != (job.inputs or []):
        job.inputs = inputs  # a new list: the JSON column sees the change


def _already_applied_note(execution: Execution, applied: dict[str, Any]) -> str:
    by = applied.get("executionId") or "an earlier attempt"
    if by == execution.id:
        by = f"execution {by} (this one, an earlier attempt)"
    elif applied.get("executionId"):
        by = f"execution {by}"
    version = applied.get("version")
    where = f" as table version {version}" if version is not None else ""
    return (
        f"already applied by {by}{where}: this attempt found the write committed and wrote "
        f"nothing again; rowsWritten counts that commit"
    )


def skip_downstream(execution: Execution, failed_job_id: str) -> None:
    blocked = {failed_job_id}
    changed = True
    while changed:
        changed = False
        for job in execution.jobs:
            if job.job_id not in blocked and blocked & set(job.needs):
                blocked.add(job.job_id)
                changed = True
                if move(job, JOB_MOVES, Status.SKIPPED):
                    job.finished_at = utcnow()
                    job.error = {
                        "message": "skipped: a job it needs did not succeed",
                        "detail": None,
                    }


def finish_if_done(execution: Execution | Row, session: Session | None = None) -> None:
    if any(job.status not in TERMINAL for job in execution.jobs):
        return
    statuses = {job.status for job in execution.jobs}
    if execution.status in (Status.CANCELLED, Status.CANCELLING):
        outcome = Status.CANCELLED
    elif statuses & {Status.FAILED, Status.SKIPPED}:
        outcome = Status.FAILED
    elif Status.CANCELLED in statuses:
        outcome = Status.CANCELLED
    else:
        outcome = Status.SUCCEEDED
    if move(execution, EXECUTION_MOVES, outcome) or execution.finished_at is None:
        execution.finished_at = utcnow()
        if outcome == Status.FAILED:
            failed = [job.name for job in execution.jobs if job.status == Status.FAILED]
            execution.error = f"job(s) failed: {', '.join(failed)}" if failed else None
        execution_events.note_end(session or object_session(execution), execution)


def cancel(session: Session, *, execution: Execution, actor: str) -> list[str]:
    """Cancel: queued jobs at once, running ones at their next batch (the execution is
    ``cancelling`` until they have stopped, and keeps its workflow until then). Returns the
    job runs whose tasks are sent and not started, to revoke (a task's id is its job run id)."""
    if execution.status == Status.CANCELLING:
        raise Conflict(f"execution {execution.id} is already being cancelled")
    if execution.status not in ACTIVE:
        raise Conflict(f"execution {execution.id} already ended ({execution.status})")
    revoke = []
    for job in execution.jobs:
        if job.status == Status.QUEUED:
            if job.dispatched:
                revoke.append(job.id)  # the task id is the job run id
            move(job, JOB_MOVES, Status.CANCELLED)
            job.finished_at = utcnow()
    if all(job.status in TERMINAL for job in execution.jobs):
        move(execution, EXECUTION_MOVES, Status.CANCELLED)
        execution.finished_at = utcnow()
        execution_events.note_end(session, execution)
    else:
        move(execution, EXECUTION_MOVES, Status.CANCELLING)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="execution.cancel",
        entity_type=ENTITY,
        entity_id=execution.id,
        before={"status": "active"},
        after={"status": execution.status},
    )
    return revoke


def events_after(session: Session, *, execution_id: str, after_id: int) -> list[RunEvent]:
    return list(
        session.scalars(
            select(RunEvent)
            .where(RunEvent.execution_id == execution_id, RunEvent.id > after_id)
            .order_by(RunEvent.id)
        )
    )
