from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowforge_catalog.workflows import schedule, service
from flowforge_catalog.workflows.schemas import (
    Environment,
    WorkflowClone,
    WorkflowCloned,
    WorkflowCreate,
    WorkflowPublic,
    WorkflowStatus,
    WorkflowUpdate,
)
from flowforge_shared.contracts.base import MAX_OFFSET, Page
from flowforge_shared.deps import (
    IfMatchDep,
    PrincipalDep,
    SessionDep,
    etag,
    expected_version,
    json_answer,
)
from flowforge_shared.errors import check_version

router = APIRouter(prefix="/workflows", tags=["workflows"])


@router.get("", response_model=Page[WorkflowPublic])
def list_workflows(
    session: SessionDep,
    status_: Annotated[WorkflowStatus | None, Query(alias="status")] = None,
    team: str | None = None,
    environment: Environment | None = None,
    tag: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
):
    rows, count = service.get_all(
        session,
        status=status_,
        team=team,
        environment=environment.value if environment else None,
        tag=tag,
        q=q,
        limit=limit,
        offset=offset,
    )
    page = Page[WorkflowPublic](
        data=[service.to_public(workflow, job_count) for workflow, job_count in rows], count=count
    )
    # Written here, on the endpoint's thread: the page was built (and validated) just above,
    # and FastAPI would validate all of it again on another hop to the thread pool before
    # writing the same JSON (bench/bench_api.py). The schema stays response_model's.
    return json_answer(page, session)


@router.post("", response_model=WorkflowPublic, status_code=status.HTTP_201_CREATED)
def create_workflow(
    data: WorkflowCreate, session: SessionDep, principal: PrincipalDep, response: Response
):
    workflow = service.create(session, data=data, actor=principal.actor)
    session.commit()
    response.headers["ETag"] = etag(workflow.version)
    return service.to_public(workflow, 0)


@router.get("/{workflow_id}", response_model=WorkflowPublic)
def get_workflow(workflow_id: str, session: SessionDep):
    workflow = service.get_public_row(session, workflow_id=workflow_id)
    public = service.to_public(workflow, workflow.job_count)
    return json_answer(public, session, headers={"ETag": etag(workflow.version)})


@router.patch("/{workflow_id}", response_model=WorkflowPublic)
def update_workflow(
    workflow_id: str,
    data: WorkflowUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
):
    workflow = service.get_or_raise(session, workflow_id=workflow_id)
    service.update(
        session,
        workflow=workflow,
        data=data,
        expected_version=expected_version(data.version, if_match),
        actor=principal.actor,
    )
    session.commit()
    response.headers["ETag"] = etag(workflow.version)
    return service.to_public(workflow)


@router.delete("/{workflow_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_workflow(
    workflow_id: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    force: Annotated[
        bool,
        Query(description="Delete although jobs of other workflows read its tables (audited)"),
    ] = False,
) -> Response:
    workflow = service.get_or_raise(session, workflow_id=workflow_id)
    check_version(workflow.version, if_match, what=f"workflow {workflow.name}")
    name = workflow.name
    service.delete(session, workflow=workflow, actor=principal.actor, force=force)
    session.commit()
    # The dependency triggers waiting for it are disabled by the orchestrator (its tables).
    schedule.announce_deletion(
        request.app.state.bus, workflow_id=workflow_id, name=name, actor=principal.actor
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{workflow_id}/pause", response_model=WorkflowPublic)
def pause_workflow(workflow_id: str, session: SessionDep, principal: PrincipalDep):
    workflow = service.get_or_raise(session, workflow_id=workflow_id)
    service.pause(session, workflow=workflow, actor=principal.actor)
    session.commit()
    return service.to_public(workflow)


@router.post("/{workflow_id}/resume", response_model=WorkflowPublic)
def resume_workflow(workflow_id: str, session: SessionDep, principal: PrincipalDep):
    workflow = service.get_or_raise(session, workflow_id=workflow_id)
    service.resume(session, workflow=workflow, actor=principal.actor)
    session.commit()
    return service.to_public(workflow)


@router.post(
    "/{workflow_id}/clone", response_model=WorkflowCloned, status_code=status.HTTP_201_CREATED
)
def clone_workflow(
    workflow_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    data: WorkflowClone | None = None,
):
    workflow = service.get_or_raise(session, workflow_id=workflow_id)
    copy, renamed = service.clone(
        session,
        workflow=workflow,
        name=data.name if data else None,
        actor=principal.actor,
        table_names=data.table_names if data else None,
    )
    session.commit()
    session.refresh(copy)
    return WorkflowCloned(**service.to_public(copy).model_dump(), table_names=renamed)
