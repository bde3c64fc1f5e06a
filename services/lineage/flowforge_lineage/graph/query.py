"""Reading the lineage graph: a workflow's, and the neighbourhood of any dataset."""

from __future__ import annotations

from collections import deque
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_lineage.graph.models import LineageDataset, LineageEdge, LineageJob

Direction = Literal["upstream", "downstream", "both"]


def node(dataset: LineageDataset, jobs: dict[str, LineageJob]) -> dict[str, Any]:
    producer = jobs.get(dataset.producer_job_id or "")
    status = dataset.status if dataset.layer == "source" else None
    if producer is not None and dataset.layer != "source":
        status = producer.last_status
    return {
        "id": dataset.node_id,
        "type": dataset.layer,
        "label": dataset.label or dataset.name,
        "namespace": dataset.namespace,
        "name": dataset.name,
        "rowCount": dataset.row_count,
        "version": dataset.version,
        "lastUpdated": dataset.last_updated.isoformat() if dataset.last_updated else None,
        "status": status,
        "jobId": dataset.producer_job_id,
        "workflowId": dataset.workflow_id,
    }


def edge(row: LineageEdge) -> dict[str, Any]:
    return {
        "source": f"{row.source_namespace}:{row.source_name}",
        "target": f"{row.target_namespace}:{row.target_name}",
        "jobId": row.job_id,
        "jobName": row.job_name,
        "workflowId": row.workflow_id,
    }


def _graph(
    session: Session, keys: set[tuple[str, str]], edges: list[LineageEdge]
) -> dict[str, Any]:
    datasets = [session.get(LineageDataset, key) for key in sorted(keys)]
    datasets = [dataset for dataset in datasets if dataset is not None]
    producers = {d.producer_job_id for d in datasets if d.producer_job_id}
    jobs = {
        job.job_id: job
        for job in session.scalars(select(LineageJob).where(LineageJob.job_id.in_(producers)))
    }
    ordered = sorted(
        edges, key=lambda e: (e.source_namespace, e.source_name, e.target_name, e.job_id)
    )
    return {"nodes": [node(d, jobs) for d in datasets], "edges": [edge(e) for e in ordered]}


def workflow_graph(session: Session, workflow_id: str) -> dict[str, Any]:
    """The datasets a workflow's jobs read or wrote, and its jobs' edges."""
    edges = list(session.scalars(select(LineageEdge).where(LineageEdge.workflow_id == workflow_id)))
    keys = {(e.source_namespace, e.source_name) for e in edges}
    keys |= {(e.target_namespace, e.target_name) for e in edges}
    keys |= {
        (d.namespace, d.name)
        for d in session.scalars(
            select(LineageDataset).where(LineageDataset.workflow_id == workflow_id)
        )
    }
    return _graph(session, keys, edges)


def find_dataset(session: Session, reference: str) -> LineageDataset | None:
    """``<namespace>:<name>``; a namespace may hold colons itself (``postgres://host:5432``)."""
    for index, char in enumerate(reference):
        if char == ":":
            found = session.get(LineageDataset, (reference[:index], reference[index + 1 :]))
            if found is not None:
                return found
    return None


def neighbourhood(
    session: Session, start: LineageDataset, direction: Direction, depth: int
) -> dict[str, Any]:
    """The datasets within ``depth`` edges of ``start`` (upstream, downstream or both), across
    workflows, and the edges between them that were walked."""
    root = (start.namespace, start.name)
    keys = {root}
    found: dict[tuple, LineageEdge] = {}
    walks = ["upstream", "downstream"] if direction == "both" else [direction]
    for walk in walks:
        seen = {root}
        frontier = deque([(root, 0)])
        while frontier:
            (namespace, name), level = frontier.popleft()
            if level >= depth:
                continue
            if walk == "upstream":
                query = select(LineageEdge).where(
                    LineageEdge.target_namespace == namespace, LineageEdge.target_name == name
                )
            else:
                query = select(LineageEdge).where(
                    LineageEdge.source_namespace == namespace, LineageEdge.source_name == name
                )
            for row in session.scalars(query):
                found[
                    (
                        row.source_namespace,
                        row.source_name,
                        row.target_namespace,
                        row.target_name,
                        row.job_id,
                    )
                ] = row
                other = (
                    (row.source_namespace, row.source_name)
                    if walk == "upstream"
                    else (row.target_namespace, row.target_name)
                )
                keys.add(other)
                if other not in seen:
                    seen.add(other)
                    frontier.append((other, level + 1))
    graph = _graph(session, keys, list(found.values()))
    return {"root": start.node_id, **graph}
