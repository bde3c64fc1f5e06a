from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from flowforge_catalog.jobs import service as job_service
from flowforge_catalog.templates import service
from flowforge_catalog.templates.schemas import (
    Instantiate,
    TemplateDetail,
    TemplateFromWorkflow,
    TemplateSummary,
    TemplateUpdate,
)
from flowforge_catalog.workflows import service as workflow_service
from flowforge_shared.auth import require_admin
from flowforge_shared.contracts.base import Page
from flowforge_shared.deps import IfMatchDep, PrincipalDep, SessionDep, etag, expected_version
from flowforge_shared.errors import check_version

router = APIRouter(prefix="/templates", tags=["templates"])


@router.get("", response_model=Page[TemplateSummary])
def list_templates(
    session: SessionDep,
    category: str | None = None,
    industry: str | None = None,
    tag: str | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
):
    templates = service.get_all(session, category=category, industry=industry, tag=tag, q=q)
    return Page[TemplateSummary](
        data=[service.to_summary(t) for t in templates], count=len(templates)
    )


@router.get("/{template_id}", response_model=TemplateDetail)
def get_template(template_id: str, session: SessionDep, response: Response):
    """The template with its jobs, the tables each reads and writes, and its parameters."""
    template = service.get_or_raise(session, template_id=template_id)
    response.headers["ETag"] = etag(template.version)
    return service.to_detail(template)


@router.post("/{template_id}/instantiate", status_code=status.HTTP_201_CREATED)
def instantiate_template(
    template_id: str,
    data: Instantiate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
) -> dict:
    """Create the workflow and all its jobs in one transaction; 422 lists every missing or
    invalid parameter."""
    template = service.get_or_raise(session, template_id=template_id, active=True)
    workflow = service.instantiate(
        session,
        template=template,
        data=data,
        settings=request.app.state.settings,
        box=request.app.state.secret_box,
        actor=principal.actor,
    )
    session.commit()
    session.refresh(workflow)
    body = workflow_service.to_public(workflow).model_dump(mode="json", by_alias=True)
    body["jobs"] = [
        job_service.to_public(job).model_dump(mode="json", by_alias=True, exclude_unset=True)
        for job in job_service.get_all(session, workflow_id=workflow.id)
    ]
    return body


@router.post(
    "",
    response_model=TemplateSummary,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin)],
)
def create_template(data: TemplateFromWorkflow, session: SessionDep, principal: PrincipalDep):
    template = service.create_from_workflow(session, data=data, actor=principal.actor)
    session.commit()
    return service.to_summary(template)


@router.patch(
    "/{template_id}", response_model=TemplateSummary, dependencies=[Depends(require_admin)]
)
def update_template(
    template_id: str,
    data: TemplateUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
):
    """Deactivate (or reactivate) a template; send its ``version`` or ``If-Match``."""
    template = service.get_or_raise(session, template_id=template_id)
    check_version(
        template.version,
        expected_version(data.version, if_match),
        what=f"template {template.id}",
    )
    service.set_active(session, template=template, active=data.is_active, actor=principal.actor)
    session.commit()
    response.headers["ETag"] = etag(template.version)
    return service.to_summary(template)
