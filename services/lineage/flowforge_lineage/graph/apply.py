"""Applying run events to the graph (the write side; :mod:`.query` reads it).

An event is applied once (its ``flowforge_run`` eventId, kept in ``lineage_events``), and
every value it sets is kept only while no newer event set it: the order of two events is
their :func:`order_key` (a lake table's version first, then eventTime, then the event type's
place in a run, then the eventId), so replaying events, or receiving them out of order,
gives the same graph."""

from __future__ import annotations

import hashlib
import json
import posixpath
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from flowforge_lineage.columns.service import apply_column_lineage
from flowforge_lineage.graph.models import (
    LineageDataset,
    LineageEdge,
    LineageEvent,
    LineageJob,
    LineageRun,
)
from flowforge_shared.contracts.events import run_facet, schema_columns, table_of

# Where an event type stands in a run: at the same eventTime the later one wins.
RANK = {"START": 0, "RUNNING": 1, "COMPLETE": 2, "FAIL": 2, "ABORT": 2}
STATUS = {
    "START": "running",
    "RUNNING": "running",
    "COMPLETE": "succeeded",
    "FAIL": "failed",
    "ABORT": "aborted",
}


def event_id_of(event: dict[str, Any]) -> str:
    """The event's own id; an event without one (not FlowForge's) is known by its content."""
    given = run_facet(event, "flowforge_run").get("eventId")
    if given:
        return str(given)
    return hashlib.sha256(json.dumps(event, sort_keys=True).encode()).hexdigest()[:64]


def order_key(event_time: datetime, event_type: str, event_id: str, version: int | None = None):
    """A string that sorts as the events it describes: version (none first), time, type."""
    stamp = event_time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return f"{(version if version is not None else -1) + 1:020d}|{stamp}|{RANK.get(event_type, 1)}|{event_id}"


def job_of(event: dict[str, Any]) -> tuple[str, str]:
    """(job id, job name): FlowForge's job id and name, or another producer's
    ``<namespace>/<name>`` and its name."""
    facet = run_facet(event, "flowforge_run")
    job = event.get("job") or {}
    full_name = str(job.get("name") or "unknown")
    if facet.get("jobId"):
        return str(facet["jobId"]), full_name.split(".", 1)[-1]
    return f"{job.get('namespace') or 'unknown'}/{full_name}", full_name


def apply_event(session: Session, event: dict[str, Any]) -> bool:
    """Apply one run event; False when it was applied before (nothing changes)."""
    event_id = event_id_of(event)
    if session.get(LineageEvent, event_id) is not None:
        return False
    event_type = str(event.get("eventType") or "RUNNING")
    when = datetime.fromisoformat(event["eventTime"])
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    run = event.get("run") or {}
    session.add(
        LineageEvent(
            event_id=event_id, event_type=event_type, event_time=when, job_run_id=run.get("runId")
        )
    )
    facet = run_facet(event, "flowforge_run")
    job_id, job_name = job_of(event)
    workflow_id = facet.get("workflowId")
    key = order_key(when, event_type, event_id)
    status = STATUS.get(event_type)

    job = session.get(LineageJob, job_id)
    if job is None:
        job = LineageJob(job_id=job_id, job_name=job_name, status_key="")
        session.add(job)
    # An OTHER event (another producer's) adds datasets and edges, and says nothing of status.
    tells_status = status is not None
    if tells_status and key > job.status_key:
        job.job_name = job_name
        job.job_namespace = (event.get("job") or {}).get("namespace")
        job.workflow_id = workflow_id
        job.last_run_id = run.get("runId")
        job.last_status = status
        job.last_event_time = when
        job.status_key = key
    if tells_status and run.get("runId"):
        _run(session, event, str(run["runId"]), job_id, when, key)

    inputs = event.get("inputs") or []
    outputs = event.get("outputs") or []
    result = run_facet(event, "flowforge_result")
    for dataset in inputs:
        row = _dataset(session, dataset)
        if row.layer != "source":
            continue  # a lake table's state is what its writer reported
        rows = _statistic(dataset, "inputFacets", "inputStatistics", "dataQualityMetrics")
        if rows is None and event_type == "COMPLETE" and len(inputs) == 1:
            rows = result.get("rowsRead")
        if tells_status and key > row.state_key:
            row.status = status
            row.last_updated = when
            row.row_count = rows if rows is not None else row.row_count
            row.schema_json = _schema(dataset) or row.schema_json
            row.state_key = key
    for dataset in outputs:
        row = _dataset(session, dataset)
        if row.producer_job_id is None:
            row.producer_job_id = job_id
            row.workflow_id = workflow_id
        if event_type != "COMPLETE":
            continue
        facets = dataset.get("facets") or {}
        version = facets.get("version", {}).get("datasetVersion")
        version = int(version) if str(version or "").isdigit() else None
        written = order_key(when, event_type, event_id, version)
        if written > row.state_key:
            row.version = version
            rows = _statistic(dataset, "outputFacets", "outputStatistics")
            row.row_count = rows if rows is not None else row.row_count
            row.schema_json = _schema(dataset) or row.schema_json
            row.last_updated = when
            row.producer_job_id = job_id
            row.workflow_id = workflow_id
            row.state_key = written
    for source in inputs:
        for target in outputs:
            _edge(session, source, target, job_id, job_name, workflow_id, key)
    apply_column_lineage(session, event, job_id, workflow_id, key)
    session.flush()
    return True


def _run(session, event, run_id: str, job_id: str, when: datetime, key: str) -> None:
    """The run's start (its START event), end and outcome (its newest event)."""
    event_type = str(event.get("eventType") or "RUNNING")
    row = session.get(LineageRun, run_id)
    if row is None:
        row = LineageRun(run_id=run_id, job_id=job_id, status_key="")
        session.add(row)
    if event_type == "START" and (row.started_at is None or when < row.started_at):
        row.started_at = when
    if key > row.status_key:
        row.status = STATUS.get(event_type)
        row.ended_at = when if RANK.get(event_type) == 2 else None
        error = run_facet(event, "errorMessage") or run_facet(event, "flowforge_error")
        row.error_message = error.get("message") if event_type == "FAIL" else None
        row.status_key = key


def _statistic(dataset: dict[str, Any], where: str, *facets: str) -> int | None:
    for name in facets:
        value = ((dataset.get(where) or {}).get(name) or {}).get("rowCount")
        if isinstance(value, int):
            return value
    return None


def _schema(dataset: dict[str, Any]) -> str | None:
    columns = schema_columns(dataset)
    return json.dumps(columns) if columns else None


def describe(dataset: dict[str, Any]) -> tuple[str, str | None, str]:
    """(layer, alias, label): a lake table's layer, short name (``silver.customers``) and
    table name; a source's layer is ``source``, its label its name (a file's: its file name)."""
    layer, table = table_of(dataset)
    name = str(dataset["name"])
    if layer:
        return layer, f"{layer}.{table}", str(table)
    if (dataset.get("facets") or {}).get("flowforge_file"):
        return "source", None, posixpath.basename(name) or name
    return "source", None, name


def _dataset(session: Session, dataset: dict[str, Any]) -> LineageDataset:
    namespace, name = str(dataset["namespace"]), str(dataset["name"])
    row = session.get(LineageDataset, (namespace, name))
    if row is None:
        layer, alias, label = describe(dataset)
        row = LineageDataset(
            namespace=namespace, name=name, layer=layer, alias=alias, label=label, state_key=""
        )
        session.add(row)
        session.flush()
    return row


def _edge(session, source, target, job_id, job_name, workflow_id, key) -> None:
    ids = (source["namespace"], source["name"], target["namespace"], target["name"], job_id)
    edge = session.get(LineageEdge, ids)
    if edge is None:
        edge = LineageEdge(
            source_namespace=ids[0],
            source_name=ids[1],
            target_namespace=ids[2],
            target_name=ids[3],
            job_id=job_id,
            seen_key="",
        )
        session.add(edge)
    if key > edge.seen_key:
        edge.job_name = job_name
        edge.workflow_id = workflow_id
        edge.seen_key = key
