from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status

from flowforge_catalog.files.service import complete_job_config
from flowforge_catalog.jobs import service
from flowforge_catalog.jobs.schemas import JobClone, JobCreate, JobList, JobPublic, JobUpdate
from flowforge_catalog.workflows import service as workflow_service
from flowforge_shared.contracts.jobs import JobConfig
from flowforge_shared.deps import IfMatchDep, PrincipalDep, SessionDep, etag, expected_version
from flowforge_shared.errors import check_version

router = APIRouter(prefix="/workflows/{workflow_id}/jobs", tags=["jobs"])
# Responses carry only the fields the job was given, so a job round-trips unchanged.
AS_GIVEN = {"response_model_exclude_unset": True}
FORCE = (
    "Go ahead although other jobs read a table this job would stop writing (they are "
    "named in the audit entry)"
)


@router.get("", response_model=JobList, **AS_GIVEN)
def list_jobs(workflow_id: str, session: SessionDep):
    workflow_service.get_or_raise(session, workflow_id=workflow_id)
    jobs = service.get_all(session, workflow_id=workflow_id)
    return JobList(data=[service.to_public(job) for job in jobs], count=len(jobs))


@router.post("", response_model=JobPublic, status_code=status.HTTP_201_CREATED, **AS_GIVEN)
def create_job(
    workflow_id: str,
    request: Request,
    data: JobCreate,
    session: SessionDep,
    principal: PrincipalDep,
    response: Response,
):
    workflow = workflow_service.get_or_raise(session, workflow_id=workflow_id)
    config = JobConfig.model_validate(data.to_wire())
    job = service.create(
        session,
        workflow=workflow,
        config=config,
        actor=principal.actor,
        complete=_file_defaults(session, request),
    )
    session.commit()
    response.headers["ETag"] = etag(job.version)
    return service.to_public(job)


@router.get("/{job_id}", response_model=JobPublic, **AS_GIVEN)
def get_job(workflow_id: str, job_id: str, session: SessionDep, response: Response):
    job = service.get_or_raise(session, workflow_id=workflow_id, job_id=job_id)
    response.headers["ETag"] = etag(job.version)
    return service.to_public(job)


@router.patch("/{job_id}", response_model=JobPublic, **AS_GIVEN)
def update_job(
    workflow_id: str,
    job_id: str,
    request: Request,
    data: JobUpdate,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    response: Response,
    force: Annotated[bool, Query(description=FORCE)] = False,
):
    job = service.get_or_raise(session, workflow_id=workflow_id, job_id=job_id)
    changes = data.model_dump(mode="json", by_alias=True, exclude_unset=True)
    changes.pop("version", None)
    service.update(
        session,
        job=job,
        changes=changes,
        expected_version=expected_version(data.version, if_match),
        actor=principal.actor,
        complete=_file_defaults(session, request),
        force=force,
    )
    session.commit()
    response.headers["ETag"] = etag(job.version)
    return service.to_public(job)


@router.delete("/{job_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_job(
    workflow_id: str,
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
    force: Annotated[bool, Query(description=FORCE)] = False,
) -> Response:
    job = service.get_or_raise(session, workflow_id=workflow_id, job_id=job_id)
    check_version(job.version, if_match, what=f"job {job.name}")
    service.delete(session, job=job, actor=principal.actor, force=force)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{job_id}/clone", response_model=JobPublic, status_code=status.HTTP_201_CREATED, **AS_GIVEN
)
def clone_job(
    workflow_id: str,
    job_id: str,
    session: SessionDep,
    principal: PrincipalDep,
    data: JobClone | None = None,
):
    job = service.get_or_raise(session, workflow_id=workflow_id, job_id=job_id)
    target_id = (data.target_workflow_id if data else None) or workflow_id
    target = workflow_service.get_or_raise(session, workflow_id=target_id)
    copy = service.clone(
        session,
        job=job,
        target=target,
        name=data.name if data else None,
        actor=principal.actor,
        table_name=data.table_name if data else None,
    )
    session.commit()
    return service.to_public(copy)


def _file_defaults(session, request: Request):
    settings = request.app.state.settings
    return lambda config: complete_job_config(session, settings, config)
