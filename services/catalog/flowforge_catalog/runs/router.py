"""Starting a workflow run: the catalog takes the snapshot and hands it to the orchestrator
as a :class:`StartRun` message (answered at once where this process serves the orchestrator
too; otherwise queued for the orchestrator's worker)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, status

from flowforge_catalog.audit import service as audit
from flowforge_catalog.runs import service
from flowforge_catalog.runs.schemas import RunRequest, RunStarted
from flowforge_catalog.workflows import service as workflow_service
from flowforge_catalog.workflows.schemas import WorkflowStatus
from flowforge_shared.contracts.runs import START_RUN
from flowforge_shared.contracts.tasks import EVENTS_QUEUE
from flowforge_shared.deps import PrincipalDep, SessionDep, json_answer
from flowforge_shared.errors import Conflict
from flowforge_shared.telemetry import current_trace_id

router = APIRouter(tags=["executions"])


@router.post(
    "/workflows/{workflow_id}/run",
    response_model=RunStarted,
    status_code=status.HTTP_202_ACCEPTED,
)
def run_workflow(
    workflow_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    data: RunRequest | None = None,
    force: Annotated[bool, Query(description="run a paused workflow anyway (audited)")] = False,
):
    """A paused workflow is refused (409) unless ``?force=true``: pause stops its runs, a
    person's included; a forced run is audited as ``workflow.run_forced``."""
    workflow = workflow_service.get_or_raise(session, workflow_id=workflow_id)
    paused = workflow.status == WorkflowStatus.PAUSED
    if paused and not force:
        raise Conflict(
            f"workflow {workflow.name} is paused: resume it, or run it anyway with ?force=true "
            "(audited)"
        )
    start = service.run_request(
        session,
        workflow_id=workflow_id,
        selected=data.jobs if data else None,
        trigger="manual",
        actor=principal.actor,
        trace_id=current_trace_id(),
    )
    session.rollback()  # the snapshot only read; end the transaction before handing it over
    if paused:
        audit.record(
            session,
            actor=principal.actor,
            action="workflow.run_forced",
            entity_type="workflow",
            entity_id=workflow_id,
            after={"status": "paused", "executionId": start.execution_id},
        )
        session.commit()
    session.close()  # its connection back before the hand-over opens its own
    request.app.state.bus.send(START_RUN, start.to_wire(), queue=EVENTS_QUEUE)
    return json_answer(RunStarted(execution_id=start.execution_id), status_code=202)
