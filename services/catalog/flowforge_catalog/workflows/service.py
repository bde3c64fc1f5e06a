"""Workflows: create, read, change, pause/resume, clone, delete.

The caller owns the transaction: these functions add and flush, the router commits.
Every mutation appends an audit entry in the same unit of work.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, Select, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.jobs import service as job_service
from flowforge_catalog.jobs.models import Job
from flowforge_catalog.workflows.models import Workflow
from flowforge_catalog.workflows.schemas import (
    WorkflowCreate,
    WorkflowPublic,
    WorkflowStatus,
    WorkflowUpdate,
    effective_status,
)
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable, check_version

ENTITY = "workflow"


def to_public(workflow: Workflow, job_count: int | None = None) -> WorkflowPublic:
    return WorkflowPublic(
        id=workflow.id,
        name=workflow.name,
        description=workflow.description,
        team=workflow.team,
        environment=workflow.environment,
        tags=list(workflow.tags),
        status=effective_status(workflow.status, bool(workflow.scheduled)),
        owner=workflow.owner,
        created_at=workflow.created_at,
        updated_at=workflow.updated_at,
        version=workflow.version,
        job_count=len(workflow.jobs) if job_count is None else job_count,
    )


def snapshot(workflow: Workflow) -> dict:
    """The audited form: the public fields, without bookkeeping that changes on every write."""
    data = to_public(workflow).model_dump(mode="json", by_alias=True)
    for key in ("createdAt", "updatedAt", "jobCount"):
        data.pop(key)
    return data


def get(session: Session, *, workflow_id: str) -> Workflow | None:
    """The workflow with this id, or None."""
    return session.get(Workflow, workflow_id)


def get_or_raise(session: Session, *, workflow_id: str) -> Workflow:
    """The workflow with this id, or NotFound."""
    workflow = get(session, workflow_id=workflow_id)
    if workflow is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return workflow


def get_by_name(session: Session, *, name: str) -> Workflow | None:
    """The workflow with this exact name, or None."""
    return session.scalar(select(Workflow).where(Workflow.name == name))


_JOB_COUNT = (
    select(func.count(Job.id))
    .where(Job.workflow_id == Workflow.id)
    .correlate(Workflow)
    .scalar_subquery()
    .label("job_count")
)
_ORDER = (Workflow.created_at, Workflow.id)


def _public_rows(*where) -> Select:
    """A read of workflows as rows of their columns (named as the model's attributes, so
    :func:`to_public` takes them) and each one's job count, counted in the same query."""
    return select(*Workflow.__table__.columns, _JOB_COUNT).where(*where)


def get_public_row(session: Session, *, workflow_id: str) -> Row:
    """The workflow with this id as a row with its ``job_count`` (one query), or NotFound."""
    row = session.connection().execute(_public_rows(Workflow.id == workflow_id)).first()
    if row is None:
        raise NotFound(f"workflow {workflow_id} not found")
    return row


def get_all(
    session: Session,
    *,
    status: WorkflowStatus | None = None,
    team: str | None = None,
    environment: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[tuple[Any, int]], int]:
    """A page of workflows (each with its job count) and the total that match.

    Read with SQLAlchemy Core on the session's connection: rows of the columns and each
    one's job count (a correlated count in the page's query), not ORM objects. A listing
    only reads; building identity-mapped instances, then ORM result rows, and a third
    query for the counts were most of a listing's own time (bench/README.md, bench_api)."""
    where = []
    if status == WorkflowStatus.SCHEDULED:
        where += [Workflow.status == WorkflowStatus.ACTIVE.value, Workflow.scheduled]
    elif status == WorkflowStatus.ACTIVE:
        where += [Workflow.status == status.value, Workflow.scheduled.is_(False)]
    elif status:
        where.append(Workflow.status == status.value)
    if team:
        where.append(Workflow.team == team)
    if environment:
        where.append(Workflow.environment == environment)
    if q:
        pattern = f"%{q.lower()}%"
        where.append(
            or_(
                func.lower(Workflow.name).like(pattern),
                func.lower(Workflow.description).like(pattern),
            )
        )
    connection = session.connection()
    if tag:  # tags are a JSON list; filtering in Python keeps SQLite and PostgreSQL alike
        ids = [
            workflow_id
            for workflow_id, tags in connection.execute(
                select(Workflow.id, Workflow.tags).where(*where).order_by(*_ORDER)
            )
            if tag in (tags or ())
        ]
        total = len(ids)
        wanted = ids[offset : offset + limit]
        page = (
            connection.execute(_public_rows(Workflow.id.in_(wanted)).order_by(*_ORDER)).all()
            if wanted
            else []
        )
    else:  # the page and the count in SQL: a listing reads only the rows it shows
        total = (
            connection.execute(select(func.count()).select_from(Workflow).where(*where)).scalar()
            or 0
        )
        page = connection.execute(
            _public_rows(*where).order_by(*_ORDER).limit(limit).offset(offset)
        ).all()
    return [(row, row.job_count) for row in page], total


def create(session: Session, *, data: WorkflowCreate, actor: str) -> Workflow:
    """A new workflow; names are unique."""
    _ensure_name_free(session, data.name)
    now = utcnow()
    workflow = Workflow(
        name=data.name,
        description=data.description,
        team=data.team,
        environment=data.environment.value,
        tags=list(dict.fromkeys(data.tags)),
        status=data.status.value,
        scheduled=False,
        schedule_sequence=0,
        owner=data.owner or actor,
        created_at=now,
        updated_at=now,
    )
    session.add(workflow)
    _flush(session, data.name)
    audit.record(
        session,
        actor=actor,
        action="workflow.create",
        entity_type=ENTITY,
        entity_id=workflow.id,
        after=snapshot(workflow),
    )
    return workflow


def update(
    session: Session,
    *,
    workflow: Workflow,
    data: WorkflowUpdate,
    expected_version: int | None,
    actor: str,
) -> Workflow:
    """Apply the given fields; refuses a stale version."""
    check_version(workflow.version, expected_version, what=f"workflow {workflow.name}")
    before = snapshot(workflow)
    changes = data.model_dump(exclude_unset=True, exclude={"version"})
    for required in ("name", "environment", "tags"):
        if required in changes and changes[required] is None:
            raise Unprocessable([((required,), f"{required} cannot be null")])
    if "name" in changes and changes["name"] != workflow.name:
        _ensure_name_free(session, changes["name"])
    if "status" in changes and changes["status"] is not None:
        changes["status"] = changes["status"].value
        workflow.status_before_pause = None
    if "environment" in changes:
        changes["environment"] = changes["environment"].value
    if "tags" in changes:
        changes["tags"] = list(dict.fromkeys(changes["tags"]))
    for key, value in changes.items():
        setattr(workflow, key, value)
    return _save_change(session, workflow, before, "workflow.update", actor)


def pause(session: Session, *, workflow: Workflow, actor: str) -> Workflow:
    """Stop triggers from starting runs; runs in flight go on."""
    if workflow.status == WorkflowStatus.PAUSED:
        raise Conflict(f"workflow {workflow.name} is already paused")
    if workflow.status == WorkflowStatus.DRAFT:
        raise Conflict(
            f"workflow {workflow.name} is a draft; only active or scheduled workflows pause"
        )
    before = snapshot(workflow)
    workflow.status_before_pause = workflow.status
    workflow.status = WorkflowStatus.PAUSED.value
    return _save_change(session, workflow, before, "workflow.pause", actor)


def resume(session: Session, *, workflow: Workflow, actor: str) -> Workflow:
    """Back to the status the workflow had before it was paused."""
    if workflow.status != WorkflowStatus.PAUSED:
        raise Conflict(f"workflow {workflow.name} is not paused (it is {workflow.status})")
    before = snapshot(workflow)
    workflow.status = workflow.status_before_pause or WorkflowStatus.ACTIVE.value
    workflow.status_before_pause = None
    return _save_change(session, workflow, before, "workflow.resume", actor)


def clone(
    session: Session,
    *,
    workflow: Workflow,
    name: str | None,
    actor: str,
    table_names: dict[str, str] | None = None,
) -> tuple[Workflow, dict[str, str]]:
    """A draft copy with copies of every job (dependsOn re-pointed at the copies), and the
    new names of the tables they write: a table has one owner job, so the copies write
    tables of their own (``table_names`` where given, else the clone's name as a suffix:
    ``bronze_x`` -> ``bronze_x_<clone name slug>``); reads among the copies follow."""
    name = name or _free_copy_name(session, workflow.name)
    renamed = job_service.clone_table_names(
        session, source=workflow, clone_name=name, chosen=table_names or {}
    )
    copy = create(
        session,
        data=WorkflowCreate(
            name=name,
            description=workflow.description,
            team=workflow.team,
            environment=workflow.environment,
            tags=list(workflow.tags),
        ),
        actor=actor,
    )
    job_service.copy_jobs(session, source=workflow, target=copy, actor=actor, table_names=renamed)
    return copy, renamed


def delete(session: Session, *, workflow: Workflow, actor: str, force: bool = False) -> None:
    """Delete the workflow and its jobs; data tables are never touched. Refused (409 listing
    them) while jobs of other workflows read a table only this workflow writes, unless
    ``force`` (they are then recorded in the audit entry)."""
    from flowforge_catalog.jobs import tables

    before = snapshot(workflow)
    jobs = list(workflow.jobs)
    written = {
        destination[1]
        for destination in (job_service.config_of(job).destination for job in jobs)
        if destination
    }
    forced_over = tables.refuse_orphaning(
        session,
        tables=written,
        leaving={job.id for job in jobs},
        what=f"workflow {workflow.name} writes tables jobs of other workflows read",
        force=force,
    )
    if forced_over:
        before["forcedOverReaders"] = forced_over
    for job in jobs:
        job_service.audit_delete(session, job=job, actor=actor, reason="workflow deleted")
    session.delete(workflow)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="workflow.delete",
        entity_type=ENTITY,
        entity_id=workflow.id,
        before=before,
    )


def _save_change(
    session: Session, workflow: Workflow, before: dict, action: str, actor: str
) -> Workflow:
    workflow.updated_at = utcnow()
    _flush(session, workflow.name)
    audit.record(
        session,
        actor=actor,
        action=action,
        entity_type=ENTITY,
        entity_id=workflow.id,
        before=before,
        after=snapshot(workflow),
    )
    return workflow


def _ensure_name_free(session: Session, name: str) -> None:
    if get_by_name(session, name=name) is not None:
        raise Conflict(f"a workflow named {name!r} already exists")


def _flush(session: Session, name: str) -> None:
    try:
        session.flush()
    except IntegrityError as error:  # a concurrent create took the name first
        raise Conflict(f"a workflow named {name!r} already exists") from error


def _free_copy_name(session: Session, name: str) -> str:
    candidate = f"{name} (copy)"
    number = 2
    while get_by_name(session, name=candidate) is not None:
        candidate = f"{name} (copy {number})"
        number += 1
    return candidate[:200]
