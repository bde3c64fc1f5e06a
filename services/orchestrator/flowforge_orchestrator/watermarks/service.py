"""Watermarks of incremental jobs: read at dispatch, advanced from COMPLETE events, reset."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_orchestrator.runs.models import Execution, JobRun
from flowforge_orchestrator.watermarks.models import JobWatermark
from flowforge_shared.contracts.events import run_facet
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import NotFound


def to_wire(mark: JobWatermark) -> dict[str, Any]:
    return {"column": mark.column_name, "kind": mark.kind, "value": mark.value}


def get(session: Session, *, job_id: str) -> JobWatermark | None:
    return session.get(JobWatermark, job_id)


def known_or_raise(session: Session, *, workflow_id: str, job_id: str) -> None:
    """NotFound unless the job has run in that workflow: the orchestrator knows a workflow's
    jobs from their runs (the catalog owns the jobs themselves)."""
    mark = session.get(JobWatermark, job_id)
    if mark is not None and mark.workflow_id == workflow_id:
        return
    ran = session.scalar(
        select(JobRun.id)
        .join(Execution, Execution.id == JobRun.execution_id)
        .where(JobRun.job_id == job_id, Execution.workflow_id == workflow_id)
        .limit(1)
    )
    if ran is None:
        raise NotFound(f"job {job_id} has never run in workflow {workflow_id}: it has no watermark")


def apply_run_event(session: Session, event: dict[str, Any]) -> None:
    """Store the watermark a completed job reports; never move it back for an older run."""
    if event.get("eventType") != "COMPLETE":
        return
    result = run_facet(event, "flowforge_result")
    mark = result.get("watermark")
    if not mark:
        return
    run = run_facet(event, "flowforge_run")
    sequence = int(result.get("runSequence") or 0)
    current = session.get(JobWatermark, run["jobId"])
    if current is None:
        current = JobWatermark(job_id=run["jobId"], workflow_id=run.get("workflowId") or "")
        session.add(current)
    elif current.run_sequence > sequence:
        return
    current.column_name = mark["column"]
    current.kind = mark["kind"]
    current.value = mark["value"]
    current.execution_id = run.get("executionId")
    current.run_sequence = sequence
    current.updated_at = utcnow()
    session.flush()


def reset(session: Session, *, job_id: str) -> bool:
    mark = session.get(JobWatermark, job_id)
    if mark is None:
        return False
    session.delete(mark)
    session.flush()
    return True
