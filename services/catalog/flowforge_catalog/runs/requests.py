"""The catalog's side of the orchestrator's triggers (:mod:`flowforge_shared.contracts.triggers`):
a trigger that fired asks for a run (:data:`REQUEST_RUN`), and the triggers' API and the
scheduler ask what a workflow is (:data:`WORKFLOW_INFO`).

A fired trigger's run starts exactly as a manual one does: this service takes the snapshot
(:func:`flowforge_catalog.runs.service.run_request`) and sends the orchestrator its
``StartRun``; only the trigger's kind and the execution id (the scheduler's) differ.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from flowforge_catalog.jobs import service as job_service
from flowforge_catalog.runs import service
from flowforge_catalog.workflows import service as workflow_service
from flowforge_catalog.workflows.schemas import WorkflowStatus
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.runs import START_RUN
from flowforge_shared.contracts.tasks import EVENTS_QUEUE
from flowforge_shared.contracts.triggers import (
    REQUEST_RUN,
    WORKFLOW_INFO,
    CsvJob,
    RunRequested,
    WorkflowInfo,
)
from flowforge_shared.db.engine import Database
from flowforge_shared.deps import SessionDep
from flowforge_shared.errors import Conflict
from flowforge_shared.telemetry import current_trace_id

internal_router = APIRouter(prefix="/internal/workflows", tags=["internal"])


def workflow_info(session, workflow_id: str) -> WorkflowInfo:
    """NotFound for a workflow that does not exist."""
    workflow = workflow_service.get_or_raise(session, workflow_id=workflow_id)
    csv_jobs = [
        CsvJob(id=job.id, name=job.name)
        for job in job_service.get_all(session, workflow_id=workflow.id)
        if ((job.config or {}).get("sourceConfig") or {}).get("type") == "csv"
    ]
    return WorkflowInfo(
        id=workflow.id,
        name=workflow.name,
        status=workflow_service.to_public(workflow, 0).status.value,
        csv_jobs=csv_jobs,
    )


def request_run(database: Database, bus: Bus, payload: dict[str, Any]) -> str:
    """Start the run a trigger asks for; returns its execution id. Refused (Conflict) while
    the workflow is paused: pause stops every automatic trigger."""
    request = RunRequested.model_validate(payload)
    with database.session() as session:
        workflow = workflow_service.get_or_raise(session, workflow_id=request.workflow_id)
        if workflow.status == WorkflowStatus.PAUSED:
            raise Conflict(
                f"workflow {workflow.name} is paused: its {request.trigger} trigger does not "
                "start runs until it is resumed"
            )
        start = service.run_request(
            session,
            workflow_id=workflow.id,
            selected=None,
            trigger=request.trigger,
            actor=request.actor,
            trace_id=current_trace_id(),
            execution_id=request.execution_id,
            cause={"triggerId": request.trigger_id, **request.cause},
            files=request.files,
        )
        session.rollback()  # the snapshot only read
    bus.send(START_RUN, start.to_wire(), queue=EVENTS_QUEUE)
    return start.execution_id


@internal_router.get("/{workflow_id}", response_model=WorkflowInfo)
def get_workflow_info(workflow_id: str, session: SessionDep) -> WorkflowInfo:
    return workflow_info(session, workflow_id)


def install_run_requests(app) -> None:
    """Answer the orchestrator's triggers in this process."""
    database, bus = app.state.database, app.state.bus

    def info(payload: dict) -> dict:
        with database.session() as session:
            return workflow_info(session, payload["workflowId"]).model_dump(by_alias=True)

    bus.handle(WORKFLOW_INFO, info)
    bus.handle(REQUEST_RUN, lambda payload: request_run(database, bus, payload))
