from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Annotated

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse

from flowforge_orchestrator.runs import service
from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.runs.schemas import (
    ExecutionPublic,
    JobRunPublic,
    LatestRunList,
)
from flowforge_orchestrator.runs.state import Status
from flowforge_shared.contracts.base import Page
from flowforge_shared.contracts.events import run_facet
from flowforge_shared.deps import PrincipalDep, SessionDep

router = APIRouter(tags=["executions"])

SSE_POLL_SECONDS = 0.25
SSE_HEARTBEAT_SECONDS = 15.0
SSE_KINDS = {
    "START": "job.started",
    "RUNNING": "batch.written",
    "COMPLETE": "job.finished",
    "FAIL": "job.failed",
    "ABORT": "job.cancelled",
    "RETRY": "job.retrying",
}


def to_public(execution: Execution) -> ExecutionPublic:
    duration = None
    if execution.started_at and execution.finished_at:
        duration = int((execution.finished_at - execution.started_at).total_seconds() * 1000)
    return ExecutionPublic(
        id=execution.id,
        workflow_id=execution.workflow_id,
        workflow_name=execution.workflow_name,
        status=execution.status,
        trigger=execution.trigger,
        cause=execution.cause,
        requested_by=execution.requested_by,
        created_at=execution.created_at,
        started_at=execution.started_at,
        finished_at=execution.finished_at,
        duration_ms=duration,
        trace_id=execution.trace_id,
        error=execution.error,
        jobs=[
            JobRunPublic(
                job_id=job.job_id,
                job_run_id=job.id,
                name=job.name,
                status=job.status,
                attempt=job.attempt,
                started_at=job.started_at,
                finished_at=job.finished_at,
                rows_read=job.rows_read,
                rows_written=job.rows_written,
                outputs=job.outputs,
                inputs=job.inputs or [],
                quarantined_rows=job.quarantined_rows,
                error=job.error,
                note=job.note,
                last_heartbeat_at=job.heartbeat_at,
            )
            for job in execution.jobs
        ],
    )


@router.get("/executions", response_model=Page[ExecutionPublic])
def list_executions(
    session: SessionDep,
    workflow_id: Annotated[str | None, Query(alias="workflowId")] = None,
    status_: Annotated[Status | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
):
    executions = service.get_all(
        session,
        workflow_id=workflow_id,
        status=status_.value if status_ else None,
        limit=limit,
    )
    return Page[ExecutionPublic](data=[to_public(e) for e in executions], count=len(executions))


@router.get("/executions/latest", response_model=LatestRunList)
def latest_runs(
    session: SessionDep,
    workflow_id: Annotated[list[str], Query(alias="workflowId", min_length=1, max_length=200)],
):
    """The newest run of each of these workflows (the web UI's workflow list asks for its
    page's ids): one grouped query on the workflow index; workflows never run left out."""
    return LatestRunList(data=service.latest_runs(session, workflow_ids=workflow_id))


@router.get("/executions/{execution_id}", response_model=ExecutionPublic)
def get_execution(execution_id: str, session: SessionDep):
    return to_public(service.get_or_raise(session, execution_id=execution_id))


@router.post("/executions/{execution_id}/cancel", response_model=ExecutionPublic)
def cancel_execution(
    execution_id: str, request: Request, session: SessionDep, principal: PrincipalDep
):
    execution = service.get_or_raise(session, execution_id=execution_id)
    revoke = service.cancel(session, execution=execution, actor=principal.actor)
    session.commit()
    request.app.state.runtime.cancel(execution.id, revoke)
    return to_public(execution)


@router.get(
    "/executions/{execution_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
def stream_execution_events(
    execution_id: str,
    request: Request,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
):
    """Server-sent events: job.started, batch.written, job.finished / job.failed /
    job.cancelled, then execution.finished; replays what happened so far first, or only
    what came after ``Last-Event-ID`` (what a browser sends when it reconnects). Every event
    has its own id, larger than the one before."""
    # No SessionDep: a dependency's end comes after the response, here the whole stream, so
    # each open stream held one of the API's request slots (on PostgreSQL 20 run pages left
    # open made every other request wait, then 503).
    database = request.app.state.database
    with database.session() as session:
        service.get_or_raise(session, execution_id=execution_id)
    after = _event_id(last_event_id)
    return StreamingResponse(
        _event_stream(database, execution_id, after),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _event_stream(database, execution_id: str, after: int = 0) -> Iterator[str]:
    last_id = after
    last_sent = time.monotonic()
    while True:
        with database.session() as session:
            events = service.events_after(session, execution_id=execution_id, after_id=last_id)
            execution = service.get_or_raise(session, execution_id=execution_id)
            finished = execution.status in {
                s.value for s in (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
            }
            summary = (
                to_public(execution).model_dump(mode="json", by_alias=True) if finished else None
            )
            for event in events:
                last_id = event.id
                yield _sse(
                    event.id, SSE_KINDS.get(event.event_type, "event"), _describe(event.payload)
                )
                last_sent = time.monotonic()
        if finished and not events:
            running = [job for job in summary["jobs"] if job["status"] == Status.RUNNING]
            if not running:
                # Its own id, after the last run event's (not that event's id again: a client
                # keeping ids would take it for a repeat).
                yield _sse(last_id + 1, "execution.finished", summary)
                return
        if time.monotonic() - last_sent > SSE_HEARTBEAT_SECONDS:
            yield ": keep-alive\n\n"
            last_sent = time.monotonic()
        time.sleep(SSE_POLL_SECONDS)


def _event_id(text: str | None) -> int:
    """A Last-Event-ID this stream sent (a non-negative integer); anything else replays all."""
    text = (text or "").strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 18:
        return 0
    return int(text)


def _describe(event: dict) -> dict:
    run = run_facet(event, "flowforge_run")
    progress = run_facet(event, "flowforge_progress") or run_facet(event, "flowforge_result")
    error = run_facet(event, "flowforge_error")
    return {
        "jobRunId": event.get("run", {}).get("runId"),
        "jobId": run.get("jobId"),
        "job": event.get("job", {}).get("name", "").split(".", 1)[-1],
        "attempt": run.get("attempt"),
        "rowsRead": progress.get("rowsRead"),
        "rowsStaged": progress.get("rowsStaged"),
        "rowsWritten": progress.get("rowsWritten"),
        "error": {"message": error.get("message"), "detail": error.get("detail")}
        if error
        else None,
        "eventTime": event.get("eventTime"),
    }


def _sse(event_id: int, kind: str, data: dict) -> str:
    return f"id: {event_id}\nevent: {kind}\ndata: {json.dumps(data, default=str)}\n\n"
