"""Jobs of a workflow: create, read, change, clone, delete, each checked as a whole.

A job is saved only when its configuration is valid on its own and in its workflow:
the combination rules of the contract, ``dependsOn`` naming jobs of the same workflow, and a
job graph without cycles.
"""

from __future__ import annotations

from collections.abc import Callable
from copy import deepcopy
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.jobs import tables
from flowforge_catalog.jobs.models import Job
from flowforge_catalog.jobs.schemas import JobPublic
from flowforge_shared import dag
from flowforge_shared.contracts.jobs import DatabaseSource, JobConfig, combination_errors
from flowforge_shared.contracts.names import NameProblem, database_conflict
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound, Unprocessable, check_version

ENTITY = "job"
Completer = Callable[[JobConfig], JobConfig] | None


def config_of(job: Job) -> JobConfig:
    return JobConfig.model_validate({"name": job.name, **job.config})


def wire_of(job: Job) -> dict[str, Any]:
    return {"name": job.name, **job.config}


def to_public(job: Job) -> JobPublic:
    return JobPublic.model_validate(
        {
            **wire_of(job),
            "id": job.id,
            "workflowId": job.workflow_id,
            "position": job.position,
            "version": job.version,
            "createdAt": job.created_at,
            "updatedAt": job.updated_at,
        }
    )


def get_or_raise(session: Session, *, workflow_id: str, job_id: str) -> Job:
    """The job of this workflow, or NotFound."""
    job = session.get(Job, job_id)
    if job is None or job.workflow_id != workflow_id:
        raise NotFound(f"job {job_id} not found in workflow {workflow_id}")
    return job


def get_all(session: Session, *, workflow_id: str) -> list[Job]:
    """The workflow's jobs in their order."""
    return list(
        session.scalars(
            select(Job).where(Job.workflow_id == workflow_id).order_by(Job.position, Job.id)
        )
    )


def create(
    session: Session, *, workflow, config: JobConfig, actor: str, complete: Completer = None
) -> Job:
    """Append a job to the workflow; ``complete`` fills defaults (e.g. an uploaded file's
    detected schema) before the job is checked."""
    if complete:
        config = complete(config)
    wire = config.to_wire()
    job = Job(
        workflow_id=workflow.id,
        name=config.name,
        position=_next_position(session, workflow.id),
        config=_without_name(wire),
        created_at=utcnow(),
        updated_at=utcnow(),
    )
    _validate_in_workflow(session, workflow_id=workflow.id, job_id=None, config=config)
    tables.owner_conflict(session, job_id=None, config=config)
    session.add(job)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="job.create",
        entity_type=ENTITY,
        entity_id=job.id,
        after={"workflowId": workflow.id, **wire},
    )
    return job


def update(
    session: Session,
    *,
    job: Job,
    changes: dict[str, Any],
    expected_version: int | None,
    actor: str,
    complete: Completer = None,
    force: bool = False,
) -> Job:
    """Replace the given top-level fields (wire names); the result is validated as a whole.
    A change that makes the job stop writing a table other jobs read is refused (409 listing
    them) unless ``force``."""
    check_version(job.version, expected_version, what=f"job {job.name}")
    before = wire_of(job)
    merged = {key: value for key, value in {**before, **changes}.items() if value is not None}
    try:
        config = JobConfig.model_validate(merged)
    except ValidationError as error:
        raise Unprocessable(
            [(tuple(item["loc"]), item["msg"]) for item in error.errors()]
        ) from error
    if complete:
        config = complete(config)
    _validate_in_workflow(session, workflow_id=job.workflow_id, job_id=job.id, config=config)
    tables.owner_conflict(session, job_id=job.id, config=config)
    previous = config_of(job).destination
    forced_over: dict[str, list[str]] = {}
    if previous and previous[1] != (config.destination or ("", ""))[1]:
        forced_over = tables.refuse_orphaning(
            session,
            tables={previous[1]},
            leaving={job.id},
            what=f"job {job.name} would stop writing table {previous[1]!r}",
            force=force,
        )
    wire = config.to_wire()
    job.name = config.name
    job.config = _without_name(wire)
    job.updated_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="job.update",
        entity_type=ENTITY,
        entity_id=job.id,
        before=before,
        after={**wire, "forcedOverReaders": forced_over} if forced_over else wire,
    )
    return job


def delete(session: Session, *, job: Job, actor: str, force: bool = False) -> None:
    """Delete a job no other job names in dependsOn and whose table no other job reads
    (unless ``force``: the readers are then recorded in the audit entry)."""
    dependents = [
        other.name
        for other in get_all(session, workflow_id=job.workflow_id)
        if job.id in (other.config.get("dependsOn") or [])
    ]
    if dependents:
        raise Conflict(
            f"job {job.name} is named in dependsOn of {', '.join(dependents)}; "
            "remove those dependencies first"
        )
    destination = config_of(job).destination
    forced_over = tables.refuse_orphaning(
        session,
        tables={destination[1]} if destination else set(),
        leaving={job.id},
        what=f"job {job.name} writes a table other jobs read",
        force=force,
    )
    audit_delete(session, job=job, actor=actor, forced_over=forced_over)
    session.delete(job)
    session.flush()


def audit_delete(
    session: Session,
    *,
    job: Job,
    actor: str,
    reason: str | None = None,
    forced_over: dict[str, list[str]] | None = None,
) -> None:
    before = {"workflowId": job.workflow_id, **wire_of(job)}
    if reason:
        before["deletedBecause"] = reason
    if forced_over:
        # ?force=true: the jobs left reading a table nobody writes any more.
        before["forcedOverReaders"] = forced_over
    audit.record(
        session,
        actor=actor,
        action="job.delete",
        entity_type=ENTITY,
        entity_id=job.id,
        before=before,
    )


def clone(
    session: Session,
    *,
    job: Job,
    target,
    name: str | None,
    actor: str,
    table_name: str | None = None,
) -> Job:
    """A copy with a new id and a ' (copy)' name, in the same or another workflow. The copy
    writes ``table_name``, by default the original's table with a ``_copy`` suffix (a table
    has one owner job); a shared-append bronze table stays shared."""
    wire = wire_of(job)
    wire["name"] = name or f"{job.name} (copy)"[:200]
    if target.id != job.workflow_id:
        wire.pop("dependsOn", None)  # those ids belong to the other workflow
    original = config_of(job)
    if original.destination and (table_name or not tables.shared_append(original)):
        new = table_name or tables.free_table_name(
            tables.taken_table_names(session), original.destination[1], "copy"
        )
        wire = rename_tables(wire, {original.destination[1]: new}, reads=False)
    return create(session, workflow=target, config=JobConfig.model_validate(wire), actor=actor)


def rename_tables(wire: dict[str, Any], names: dict[str, str], *, reads: bool = True) -> dict:
    """The job (wire form) with its written table renamed and, with ``reads``, the tables it
    reads (multi-table sources, joins)."""
    wire = deepcopy(wire)
    for layer in (wire.get("destinationConfig") or {}).values():
        if isinstance(layer, dict) and layer.get("tableName") in names:
            layer["tableName"] = names[layer["tableName"]]
    if not reads:
        return wire
    source = wire.get("sourceConfig") or {}
    if isinstance(source.get("tables"), list):
        source["tables"] = [names.get(table, table) for table in source["tables"]]
    for join in (wire.get("transformationConfig") or {}).get("joins") or []:
        if isinstance(join, dict) and join.get("table") in names:
            join["table"] = names[join["table"]]
    return wire


def clone_table_names(
    session: Session, *, source, clone_name: str, chosen: dict[str, str]
) -> dict[str, str]:
    """Old -> new name of every table ``source``'s jobs write: ``chosen`` where given, else
    the table with the clone's name as a suffix (numbered when taken). A chosen name that a
    job or catalog asset already has is refused (409)."""
    written = []
    for job in get_all(session, workflow_id=source.id):
        destination = config_of(job).destination
        if destination and destination[1] not in written:
            written.append(destination[1])
    unknown = [old for old in chosen if old not in written]
    if unknown:
        raise Unprocessable(
            [(("tableNames", old), f"no job of this workflow writes {old}") for old in unknown]
        )
    taken = tables.taken_table_names(session)
    suffix = tables.slug(clone_name)
    names: dict[str, str] = {}
    for old in written:
        new = chosen.get(old)
        if new is not None:
            if new in taken or new in names.values():
                raise Conflict(
                    f"tableNames.{old}: table {new!r} already exists or is written by a job; "
                    "choose another name"
                )
        else:
            new = tables.free_table_name(taken | set(names.values()), old, suffix)
        names[old] = new
    return names


def copy_jobs(
    session: Session, *, source, target, actor: str, table_names: dict[str, str] | None = None
) -> list[Job]:
    """Copies of all of ``source``'s jobs in ``target``, dependsOn re-pointed at the copies,
    the tables they write (and read among themselves) renamed per ``table_names``."""
    originals = get_all(session, workflow_id=source.id)
    copies = [
        Job(
            workflow_id=target.id,
            name=original.name,
            position=original.position,
            config=rename_tables(dict(original.config), table_names or {}),
            created_at=utcnow(),
            updated_at=utcnow(),
        )
        for original in originals
    ]
    session.add_all(copies)
    session.flush()
    new_ids = {original.id: copy.id for original, copy in zip(originals, copies, strict=True)}
    for copy in copies:
        if copy.config.get("dependsOn"):
            copy.config = {
                **copy.config,
                "dependsOn": [new_ids.get(dep, dep) for dep in copy.config["dependsOn"]],
            }
    session.flush()
    for copy in copies:
        audit.record(
            session,
            actor=actor,
            action="job.create",
            entity_type=ENTITY,
            entity_id=copy.id,
            after={"workflowId": target.id, **wire_of(copy)},
        )
    return copies


def _validate_in_workflow(
    session: Session, *, workflow_id: str, job_id: str | None, config: JobConfig
) -> None:
    errors = (
        list(combination_errors(config))
        + expression_errors(config)
        + source_errors(session, config)
    )
    missing = tables.missing_inputs(session, job_id=job_id, config=config)
    errors += missing
    if not errors:
        errors += column_errors(session, config)
    siblings = {
        job.id: job for job in get_all(session, workflow_id=workflow_id) if job.id != job_id
    }
    for index, dependency in enumerate(config.depends_on or []):
        if dependency == job_id:
            errors.append((("dependsOn", index), "a job cannot depend on itself"))
        elif dependency not in siblings:
            errors.append((("dependsOn", index), f"no job {dependency} in this workflow"))
    if not errors:
        graph_jobs = {sibling_id: config_of(sibling) for sibling_id, sibling in siblings.items()}
        this_id = job_id or "<this job>"
        graph_jobs[this_id] = config
        cycle = dag.find_cycle(dag.dependencies(graph_jobs))
        if cycle:
            names = {sibling_id: sibling.name for sibling_id, sibling in siblings.items()}
            names[this_id] = config.name
            loop = " -> ".join(names.get(node, node) for node in cycle)
            errors.append((("dependsOn",), f"this job would close a dependency cycle: {loop}"))
    if errors:
        raise Unprocessable(errors)


def expression_errors(config: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Derived columns and filters are checked against the sandbox's allowlist on save, so a
    refused expression never reaches a run."""
    # sqlglot is imported when a job is checked, not with the API (RSS at rest)
    from flowforge_rules.expressions import ExpressionError, check_expression

    transformation = config.transformation_config
    if transformation is None:
        return []
    path = ("transformationConfig",)
    checks = [
        (path + ("derivedColumns", index, "expression"), derived.expression)
        for index, derived in enumerate(transformation.derived_columns or [])
    ] + [
        (path + ("filters", index), text) for index, text in enumerate(transformation.filters or [])
    ]
    errors = []
    for field_path, expression in checks:
        try:
            check_expression(expression)
        except ExpressionError as error:
            errors.append((field_path, str(error)))
    return errors


def column_errors(session: Session, config: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Derived columns and filters that name a column the input does not have, where the
    input can be known on save: every table the job reads is in the data catalog (its columns
    as the last run wrote them) and the job has no joins. The message is the run's."""
    from flowforge_catalog.assets.models import Asset
    from flowforge_rules.expressions import ExpressionError, check_expression

    transformation = config.transformation_config
    if transformation is None or transformation.joins or not config.input_tables:
        return []
    if not (transformation.derived_columns or transformation.filters):
        return []
    columns: list[str] = []
    for name in config.input_tables:
        asset = session.get(Asset, name)
        if asset is None or not asset.columns:
            return []  # not known before the job that writes it has run
        for column in asset.columns:
            if column.get("name") not in columns:
                columns.append(column["name"])
    path = ("transformationConfig",)
    errors: list[tuple[tuple[str | int, ...], str]] = []
    available = list(columns)
    for index, derived in enumerate(transformation.derived_columns or []):
        try:
            check_expression(derived.expression, available)
        except ExpressionError as error:
            errors.append((path + ("derivedColumns", index, "expression"), str(error)))
        if derived.name not in available:
            available.append(derived.name)
    for index, text in enumerate(transformation.filters or []):
        try:
            check_expression(text, available)
        except ExpressionError as error:
            errors.append((path + ("filters", index), str(error)))
    return errors


def source_errors(session: Session, config: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """A database job names a saved connection of its source type, and a query only reads."""
    from flowforge_catalog.connections.models import Connection
    from flowforge_rules.read_only_query import QueryRefused, check_read_only_query

    source = config.source_config
    if not isinstance(source, DatabaseSource):
        return []
    path = ("sourceConfig", "databaseConfig")
    database = source.database_config
    errors: list[tuple[tuple[str | int, ...], str]] = []
    connection = session.get(Connection, database.connection_id)
    if connection is None:
        errors.append((path + ("connectionId",), f"no connection {database.connection_id}"))
    elif connection.type != source.type:
        errors.append(
            (
                ("sourceConfig", "type"),
                f"connection {connection.name} is {connection.type}, not {source.type}",
            )
        )
    else:
        # [db].[schema].[name]: the database part must be the one the connection reads.
        for key, text in (
            ("tableName", database.table_name),
            ("storedProcedure", database.stored_procedure),
        ):
            try:
                conflict = text and database_conflict(source.type, text, connection.database)
            except NameProblem:
                continue  # the contract has said why the name cannot be read
            if conflict:
                errors.append((path + (key,), conflict))
    if database.query:
        try:
            check_read_only_query(source.type, database.query)
        except QueryRefused as error:
            errors.append((path + ("query",), str(error)))
    return errors


def _next_position(session: Session, workflow_id: str) -> int:
    current = session.scalar(select(func.max(Job.position)).where(Job.workflow_id == workflow_id))
    return 0 if current is None else current + 1


def _without_name(wire: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in wire.items() if key != "name"}
