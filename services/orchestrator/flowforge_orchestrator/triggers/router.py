"""Triggers of a workflow and the history of their firings."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.triggers import lifecycle, service
from flowforge_orchestrator.triggers.schemas import (
    FiringList,
    NextRunList,
    TriggerCreate,
    TriggerList,
    TriggerPublic,
    TriggerUpdate,
    TriggerWithSecret,
)
from flowforge_shared.contracts.base import MAX_OFFSET
from flowforge_shared.deps import IfMatchDep, PrincipalDep, SessionDep, etag, expected_version
from flowforge_shared.errors import check_version

router = APIRouter(prefix="/workflows/{workflow_id}", tags=["triggers"])


def _known(request: Request, workflow_id: str) -> None:
    _info(request)(workflow_id)


def _info(request: Request):
    state = request.app.state
    return lambda wid: service.workflow_info(state.bus, state.settings, workflow_id=wid)


@router.get("/triggers", response_model=TriggerList)
def list_triggers(workflow_id: str, request: Request, session: SessionDep):
    _known(request, workflow_id)
    triggers = service.get_all(session, workflow_id=workflow_id)
    return TriggerList(data=[service.to_public(t) for t in triggers], count=len(triggers))


@router.post("/triggers", response_model=TriggerWithSecret, status_code=status.HTTP_201_CREATED)
def create_trigger(
    workflow_id: str,
    data: TriggerCreate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
):
    """A webhook trigger's answer holds its secret: the only time it is shown."""
    _known(request, workflow_id)
    trigger, secret = service.create(
        session,
        workflow_id=workflow_id,
        data=data,
        actor=principal.actor,
        box=request.app.state.secret_box,
        info=_info(request),
    )
    audit.record(
        session,
        actor=principal.actor,
        action="trigger.create",
        entity_type="trigger",
        entity_id=trigger.id,
        after=service.snapshot(trigger),
    )
    schedule = lifecycle.note_schedule(session, trigger)
    session.commit()
    lifecycle.publish(request.app.state.bus, schedule, session)
    response.headers["ETag"] = etag(trigger.version)
    return TriggerWithSecret(**service.to_public(trigger).model_dump(), secret=secret)


@router.post("/triggers/{trigger_id}/rotate-secret", response_model=TriggerWithSecret)
def rotate_trigger_secret(
    workflow_id: str,
    trigger_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
):
    """A new secret for a webhook trigger, shown in this answer only; the old one stops
    working at once."""
    trigger = service.get_or_raise(session, workflow_id=workflow_id, trigger_id=trigger_id)
    secret = service.rotate_secret(session, trigger=trigger, box=request.app.state.secret_box)
    audit.record(
        session,
        actor=principal.actor,
        action="trigger.rotate_secret",
        entity_type="trigger",
        entity_id=trigger.id,
        after=service.snapshot(trigger),
    )
    session.commit()
    return TriggerWithSecret(**service.to_public(trigger).model_dump(), secret=secret)


@router.get("/triggers/{trigger_id}", response_model=TriggerPublic)
def get_trigger(workflow_id: str, trigger_id: str, session: SessionDep, response: Response):
    trigger = service.get_or_raise(session, workflow_id=workflow_id, trigger_id=trigger_id)
    response.headers["ETag"] = etag(trigger.version)
    return service.to_public(trigger)


@router.patch("/triggers/{trigger_id}", response_model=TriggerPublic)
def update_trigger(
    workflow_id: str,
    trigger_id: str,
    data: TriggerUpdate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
):
    """Send the ``version`` you read (body) or ``If-Match``: 428 without, 409 when someone
    changed the trigger since."""
    trigger = service.get_or_raise(session, workflow_id=workflow_id, trigger_id=trigger_id)
    wanted = expected_version(data.version, if_match)
    before = service.snapshot(trigger)
    service.update(
        session, trigger=trigger, data=data, expected_version=wanted, info=_info(request)
    )
    audit.record(
        session,
        actor=principal.actor,
        action="trigger.update",
        entity_type="trigger",
        entity_id=trigger.id,
        before=before,
        after=service.snapshot(trigger),
    )
    schedule = lifecycle.note_schedule(session, trigger)
    session.commit()
    lifecycle.publish(request.app.state.bus, schedule, session)
    response.headers["ETag"] = etag(trigger.version)
    return service.to_public(trigger)


@router.delete("/triggers/{trigger_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_trigger(
    workflow_id: str,
    trigger_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
) -> Response:
    """``If-Match`` optional: when sent, a stale version is 409."""
    trigger = service.get_or_raise(session, workflow_id=workflow_id, trigger_id=trigger_id)
    check_version(trigger.version, if_match, what=f"trigger {trigger.name or trigger.id}")
    before = service.snapshot(trigger)
    service.delete(session, trigger=trigger)
    audit.record(
        session,
        actor=principal.actor,
        action="trigger.delete",
        entity_type="trigger",
        entity_id=trigger_id,
        before=before,
    )
    schedule = lifecycle.note_schedule(session, trigger)
    session.commit()
    lifecycle.publish(request.app.state.bus, schedule, session)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/firings", response_model=FiringList)
def list_firings(
    workflow_id: str,
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
):
    """Newest first: each firing's scheduled time, outcome (and why) and execution id."""
    _known(request, workflow_id)
    found = service.firings(session, workflow_id=workflow_id, limit=limit, offset=offset)
    return FiringList(data=[service.firing_public(f) for f in found], count=len(found))


next_runs_router = APIRouter(prefix="/triggers", tags=["triggers"])


@next_runs_router.get("/next-runs", response_model=NextRunList)
def next_runs(
    session: SessionDep,
    workflow_id: Annotated[list[str], Query(alias="workflowId", min_length=1, max_length=200)],
):
    """When each of these workflows' enabled cron triggers next fire (the earliest; the web
    UI's workflow list asks for its page's ids): one indexed query, workflows without one
    left out."""
    return NextRunList(data=service.next_runs(session, workflow_ids=workflow_id))
