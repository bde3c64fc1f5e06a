"""Templates: list and describe them, instantiate one into a workflow with its jobs (all or
nothing), make one from an existing workflow, deactivate.

A template's jobs use placeholders for what each installation differs in:
``${connection:KEY}`` (a connection id), ``${sourceType:KEY}`` (that connection's database
type) and ``${file:KEY}`` (an uploaded file id or a landing path); table names are renamed
everywhere they appear (destinations, multi-table sources, joins).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.connections import service as connection_service
from flowforge_catalog.connections.models import Connection
from flowforge_catalog.connections.schemas import ConnectionCreate
from flowforge_catalog.files import service as file_service
from flowforge_catalog.files.models import UploadedFile
from flowforge_catalog.jobs import service as job_service
from flowforge_catalog.templates.models import WorkflowTemplate
from flowforge_catalog.templates.schemas import (
    Instantiate,
    TemplateBase,
    TemplateDetail,
    TemplateFromWorkflow,
    TemplateJob,
    TemplateJobBrief,
    TemplateSummary,
)
from flowforge_catalog.workflows import service as workflow_service
from flowforge_catalog.workflows.schemas import WorkflowCreate
from flowforge_shared.contracts.jobs import JobConfig
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable

ENTITY = "template"
PLACEHOLDER = re.compile(r"^\$\{(connection|sourceType|file):([A-Za-z0-9_]+)\}$")


def to_summary(template: WorkflowTemplate) -> TemplateSummary:
    config = template.config or {}
    return TemplateSummary(
        **TemplateBase.model_validate(template, from_attributes=True).model_dump(),
        complexity=complexity(config),
        estimated_minutes=estimated_minutes(config),
        creates=[
            TemplateJobBrief(
                key=job.get("key", job["name"]),
                name=job["name"],
                type=job["type"],
                layer=_layer(job),
                writes=_writes(job),
            )
            for job in config.get("jobs", [])
        ],
    )


def _features(job: dict) -> int:
    """How many kinds of transformation a job does (joins, aggregations, derived columns,
    filters, ...): each one is something to understand and adapt."""
    transformation = job.get("transformationConfig") or {}
    return sum(1 for value in transformation.values() if value)


def complexity(config: dict) -> str:
    """simple (a few jobs, little transformation), moderate, advanced: the jobs plus each kind
    of transformation they do plus each source to give, scored."""
    parameters = config.get("parameters") or {}
    sources = len(parameters.get("connections") or []) + len(parameters.get("files") or [])
    jobs = config.get("jobs") or []
    score = len(jobs) + sum(_features(job) for job in jobs) + sources
    return "simple" if score <= 4 else "moderate" if score <= 12 else "advanced"


def estimated_minutes(config: dict) -> int:
    """Minutes from the gallery to a first run: 5 for the wizard, 3 per source to give
    (a connection to test, a file to upload), 1 per job to run; rounded up to 5."""
    parameters = config.get("parameters") or {}
    sources = len(parameters.get("connections") or []) + len(parameters.get("files") or [])
    minutes = 5 + 3 * sources + len(config.get("jobs") or [])
    return -(-minutes // 5) * 5


def _layer(job: dict) -> str | None:
    for key, layer in (
        ("bronzeConfig", "bronze"),
        ("silverConfig", "silver"),
        ("goldConfig", "gold"),
    ):
        if (job.get("destinationConfig") or {}).get(key):
            return layer
    return None


def to_detail(template: WorkflowTemplate) -> TemplateDetail:
    config = template.config
    jobs = [
        TemplateJob(
            key=job.get("key", job["name"]),
            name=job["name"],
            type=job["type"],
            reads=_reads(job),
            writes=_writes(job),
            config={k: v for k, v in job.items() if k != "key"},
        )
        for job in config.get("jobs", [])
    ]
    return TemplateDetail(
        **to_summary(template).model_dump(),
        jobs=jobs,
        parameters=config.get("parameters", {}),
        workflow=config.get("workflow", {}),
    )


def get_all(
    session: Session,
    *,
    category: str | None = None,
    industry: str | None = None,
    tag: str | None = None,
    q: str | None = None,
) -> list[WorkflowTemplate]:
    """Active templates matching every filter given."""
    query = select(WorkflowTemplate).where(WorkflowTemplate.is_active.is_(True))
    if category:
        query = query.where(WorkflowTemplate.category == category)
    templates = list(session.scalars(query.order_by(WorkflowTemplate.name)))
    if industry:
        templates = [
            t for t in templates if industry.lower() in (t.industry_vertical or "").lower()
        ]
    if tag:
        templates = [t for t in templates if tag in t.tags]
    if q:
        text = q.lower()
        templates = [
            t
            for t in templates
            if text in t.name.lower()
            or text in t.description.lower()
            or text in (t.use_case or "").lower()
        ]
    return templates


def get_or_raise(session: Session, *, template_id: str, active: bool = False) -> WorkflowTemplate:
    template = session.get(WorkflowTemplate, template_id)
    if template is None or (active and not template.is_active):
        raise NotFound(f"template {template_id} not found")
    return template


def instantiate(
    session: Session, *, template: WorkflowTemplate, data: Instantiate, settings, box, actor: str
):
    """The workflow and all its jobs, created in the caller's transaction (all or nothing)."""
    config = copy.deepcopy(template.config)
    parameters = config.get("parameters", {})
    errors: list[tuple[tuple, str]] = []
    values: dict[tuple[str, str], Any] = {}

    for parameter in parameters.get("connections", []):
        key = parameter["key"]
        choice = data.connections.get(key)
        path = ("connections", key)
        if choice is None:
            errors.append((path, f"a connection is needed: {parameter.get('description', key)}"))
            continue
        if (choice.connection_id is None) == (choice.connection is None):
            errors.append((path, "give connectionId or connection (inline fields)"))
            continue
        if choice.connection_id:
            connection = session.get(Connection, choice.connection_id)
            if connection is None:
                errors.append((path + ("connectionId",), f"no connection {choice.connection_id}"))
                continue
        else:
            name = choice.name or f"{data.workflow_name or config['workflow']['name']} {key}"
            try:
                connection = connection_service.create(
                    session,
                    data=ConnectionCreate(
                        name=name, **choice.connection.model_dump(by_alias=False)
                    ),
                    settings=settings,
                    box=box,
                    actor=actor,
                )
            except Unprocessable as error:
                errors.extend((path + ("connection", *field), msg) for field, msg in error.errors)
                continue
            except Conflict as error:
                errors.append((path + ("name",), error.message))
                continue
        allowed = parameter.get("types")
        if allowed and connection.type not in allowed:
            errors.append(
                (path, f"a {connection.type} connection cannot serve here ({', '.join(allowed)})")
            )
            continue
        values[("connection", key)] = connection.id
        values[("sourceType", key)] = connection.type

    for parameter in parameters.get("files", []):
        key = parameter["key"]
        choice = data.files.get(key)
        path = ("files", key)
        given = [] if choice is None else [choice.file_id, choice.file_path, choice.file_name]
        if sum(value is not None for value in given) != 1:
            errors.append(
                (
                    path,
                    "give exactly one of fileId, fileName or filePath: "
                    + parameter.get("description", key),
                )
            )
            continue
        if "file_version" in choice.model_fields_set and choice.file_name is None:
            errors.append((path + ("fileVersion",), "fileVersion goes with fileName"))
            continue
        if choice.file_id and session.get(UploadedFile, choice.file_id) is None:
            errors.append((path + ("fileId",), f"no uploaded file {choice.file_id}"))
            continue
        if choice.file_name is not None:
            version = None if choice.file_version == "latest" else choice.file_version
            if file_service.newest(session, choice.file_name, version) is None:
                errors.append(
                    (
                        path + ("fileName",),
                        f"no upload is named {choice.file_name!r}: upload it first"
                        if version is None
                        else f"there is no version {version} of the upload {choice.file_name!r}",
                    )
                )
                continue
        values[("file", key)] = choice

    known_tables = {t for job in config.get("jobs", []) for t in [*_reads(job), _writes(job)] if t}
    for old, new in data.table_names.items():
        if old not in known_tables:
            errors.append((("tableNames", old), f"the template has no table {old}"))
        elif new in known_tables - {old} and new not in data.table_names:
            errors.append((("tableNames", old), f"{new} is already a table of this template"))
    if errors:
        raise Unprocessable(errors)

    workflow_config = config.get("workflow", {})
    workflow = workflow_service.create(
        session,
        data=WorkflowCreate(
            name=data.workflow_name or workflow_config.get("name", template.name),
            description=workflow_config.get("description", template.description),
            team=data.team if data.team is not None else workflow_config.get("team"),
            environment=data.environment or workflow_config.get("environment", "development"),
            tags=data.tags if data.tags is not None else workflow_config.get("tags", []),
        ),
        actor=actor,
    )
    ids: dict[str, str] = {}
    for job in config.get("jobs", []):
        key = job.pop("key", job["name"])
        job = _rename_tables(_substitute(job, values), data.table_names)
        if job.get("dependsOn"):
            job["dependsOn"] = [ids.get(dep, dep) for dep in job["dependsOn"]]
        try:
            job_config = JobConfig.model_validate(job)
            created = job_service.create(session, workflow=workflow, config=job_config, actor=actor)
        except ValidationError as error:
            raise Unprocessable(
                [(("jobs", key, *item["loc"]), item["msg"]) for item in error.errors()]
            ) from None
        except Unprocessable as error:
            raise Unprocessable(
                [(("jobs", key, *field), msg) for field, msg in error.errors]
            ) from None
        except Conflict as error:  # a table of the template is another job's already
            raise Conflict(
                f"job {key} of the template: {error.message}; to install the template again, "
                "give tableNames new names for its tables"
            ) from None
        ids[key] = created.id
    audit.record(
        session,
        actor=actor,
        action="template.instantiate",
        entity_type=ENTITY,
        entity_id=template.id,
        after={"workflowId": workflow.id, "jobs": list(ids.values())},
    )
    return workflow


def create_from_workflow(
    session: Session, *, data: TemplateFromWorkflow, actor: str
) -> WorkflowTemplate:
    workflow = workflow_service.get_or_raise(session, workflow_id=data.from_workflow_id)
    if session.get(WorkflowTemplate, data.id):
        raise Conflict(f"a template with id {data.id} already exists")
    jobs = []
    for job in job_service.get_all(session, workflow_id=workflow.id):
        wire = job_service.wire_of(job)
        wire.pop("dependsOn", None)
        jobs.append({"key": job.id, **wire})
    now = utcnow()
    template = WorkflowTemplate(
        id=data.id,
        name=data.name,
        description=data.description,
        category=data.category,
        industry_vertical=data.industry_vertical,
        use_case=data.use_case,
        template_version=1,
        config={
            "workflow": {
                "name": data.name,
                "description": workflow.description,
                "team": workflow.team,
                "environment": workflow.environment,
                "tags": list(workflow.tags),
            },
            "parameters": {},
            "jobs": jobs,
        },
        thumbnail_url=None,
        demo_data_url=None,
        documentation_url=None,
        tags=data.tags,
        is_active=True,
        is_builtin=False,
        created_at=now,
        updated_at=now,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="template.create",
        entity_type=ENTITY,
        entity_id=template.id,
        after={"fromWorkflowId": workflow.id, "jobs": len(jobs)},
    )
    return template


def set_active(session: Session, *, template: WorkflowTemplate, active: bool, actor: str) -> None:
    before = template.is_active
    template.is_active = active
    template.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="template.update",
        entity_type=ENTITY,
        entity_id=template.id,
        before={"isActive": before},
        after={"isActive": active},
    )


def _substitute(value: Any, values: dict[tuple[str, str], Any]) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            match = PLACEHOLDER.match(item) if isinstance(item, str) else None
            if match and match.group(1) == "file":
                choice = values[("file", match.group(2))]
                if choice.file_id:
                    out["fileId"] = choice.file_id
                elif choice.file_name:
                    out["fileName"] = choice.file_name
                    if "file_version" in choice.model_fields_set:
                        out["fileVersion"] = choice.file_version
                else:
                    out["filePath"] = choice.file_path
            else:
                out[key] = _substitute(item, values)
        return out
    if isinstance(value, list):
        return [_substitute(item, values) for item in value]
    if isinstance(value, str):
        match = PLACEHOLDER.match(value)
        if match:
            return values[(match.group(1), match.group(2))]
    return value


def _rename_tables(job: dict, names: dict[str, str]) -> dict:
    if not names:
        return job
    source = job.get("sourceConfig", {})
    if "tables" in source:
        source["tables"] = [names.get(t, t) for t in source["tables"]]
    for layer in job.get("destinationConfig", {}).values():
        if isinstance(layer, dict) and "tableName" in layer:
            layer["tableName"] = names.get(layer["tableName"], layer["tableName"])
    for join in (job.get("transformationConfig") or {}).get("joins") or []:
        join["table"] = names.get(join["table"], join["table"])
    return job


def _reads(job: dict) -> list[str]:
    tables = list(job.get("sourceConfig", {}).get("tables", []))
    tables += [j["table"] for j in (job.get("transformationConfig") or {}).get("joins") or []]
    return tables


def _writes(job: dict) -> str | None:
    for layer in job.get("destinationConfig", {}).values():
        if isinstance(layer, dict) and "tableName" in layer:
            return layer["tableName"]
    return None
