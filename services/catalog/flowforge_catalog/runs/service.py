"""A workflow's run request: the snapshot the orchestrator starts the run from.

The catalog owns workflows, jobs, files and connections, so it takes the snapshot: each
job's configuration, the exact upload a CSV job will read (a job following ``fileName``
reads the newest version there is now), and a database job's saved connection (its password
still encrypted). The orchestrator gets all of it in one :class:`StartRun` message.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from flowforge_catalog.connections.models import Connection
from flowforge_catalog.connections.service import payload
from flowforge_catalog.files.service import resolve_for_run
from flowforge_catalog.jobs import service as job_service
from flowforge_catalog.workflows import service as workflow_service
from flowforge_shared.contracts.runs import JobSnapshot, StartRun
from flowforge_shared.db.base import new_id
from flowforge_shared.errors import Unprocessable


def run_request(
    session: Session,
    *,
    workflow_id: str,
    selected: list[str] | None,
    trigger: str,
    actor: str,
    trace_id: str | None,
    execution_id: str | None = None,
    cause: dict[str, Any] | None = None,
    files: dict[str, str] | None = None,
) -> StartRun:
    """The run's snapshot. ``files`` (an event trigger's): job id -> the landing path that
    CSV job reads in this run instead of its own file."""
    workflow = workflow_service.get_or_raise(session, workflow_id=workflow_id)
    all_jobs = job_service.get_all(session, workflow_id=workflow.id)
    _check_files(files or {}, all_jobs)
    jobs = []
    for job in all_jobs:
        config, inputs, connection = job.config, [], None
        if files and job.id in files:
            config = with_landing_file(config, files[job.id])
        if selected is None or job.id in selected:  # a job not run need not find its file
            config, inputs = resolve_for_run(session, job.name, config)
            connection = _connection(session, job.name, config)
        jobs.append(
            JobSnapshot(
                jobId=job.id,
                name=job.name,
                position=job.position,
                config=config,
                inputs=inputs,
                connection=connection,
            )
        )
    return StartRun(
        executionId=execution_id or new_id(),
        workflowId=workflow.id,
        workflowName=workflow.name,
        jobs=jobs,
        selected=selected,
        trigger=trigger,
        cause=cause,
        actor=actor,
        traceId=trace_id,
    )


def _check_files(files: dict[str, str], jobs) -> None:
    csv = {job.id for job in jobs if (job.config.get("sourceConfig") or {}).get("type") == "csv"}
    missing = sorted(set(files) - csv)
    if missing:
        raise Unprocessable(
            [(("files", job_id), "no CSV job of this id in the workflow") for job_id in missing]
        )


def with_landing_file(config: dict[str, Any], file_path: str) -> dict[str, Any]:
    """A CSV job's config reading the landing file ``file_path`` (its parse options kept; the
    upload it named, if any, dropped)."""
    source = config.get("sourceConfig") or {}
    file_config = {
        key: value
        for key, value in (source.get("fileConfig") or {}).items()
        if key not in ("fileId", "fileName", "fileVersion", "filePath")
    }
    file_config["filePath"] = file_path
    return {**config, "sourceConfig": {**source, "fileConfig": file_config}}


def _connection(session: Session, job_name: str, config: dict[str, Any]) -> dict | None:
    database = (config.get("sourceConfig") or {}).get("databaseConfig")
    if not database:
        return None
    connection = session.get(Connection, database.get("connectionId"))
    if connection is None:
        raise Unprocessable(
            [
                (
                    ("jobs", job_name, "sourceConfig", "databaseConfig", "connectionId"),
                    f"connection {database.get('connectionId')} not found",
                )
            ]
        )
    return payload(connection)
