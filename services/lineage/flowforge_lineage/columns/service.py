"""Column lineage: applying the ``columnLineage`` facets of COMPLETE events (write side), and
walking one column's upstream sources and downstream dependants (read side).

Per output dataset and job, the column edges are those of the newest COMPLETE event that
carried the facet (by the graph's order key, kept in ``seen_key``): a newer event replaces
them all (a derived column removed from the job loses its lineage), an older one changes
nothing, so replays and any arrival order give the same edges. The writes are Core
statements of :mod:`flowforge_lineage.graph.upserts`. ``how`` is FlowForge's word
for the OpenLineage transformation (:func:`flowforge_shared.contracts.column_lineage.how_of`).
"""

from __future__ import annotations

import json
from collections import deque
from typing import Any, Literal

from sqlalchemy import or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from flowforge_lineage.graph.models import LineageColumnEdge, LineageDataset
from flowforge_lineage.graph.upserts import statements
from flowforge_shared.contracts.column_lineage import FACET_NAME, how_of

Direction = Literal["upstream", "downstream", "both"]

# Column sizes (migration 0010): a longer value from another producer is not stored.
_LIMITS = {"namespace": 255, "name": 500, "column": 255, "how": 20}


Group = tuple[str, str, str]  # target namespace, target name, job id


def column_edges_of(
    event: dict[str, Any], job_id: str, workflow_id: str | None, key: str
) -> dict[Group, list[dict[str, Any]]]:
    """The column edge rows a COMPLETE event says each of its outputs has, by (target, job):
    an output whose facet names no valid edge has none (its older edges go)."""
    found: dict[Group, list[dict[str, Any]]] = {}
    if event.get("eventType") != "COMPLETE":
        return found
    for output in event.get("outputs") or []:
        if not isinstance(output, dict):
            continue
        facet = (output.get("facets") or {}).get(FACET_NAME)
        namespace, name = str(output.get("namespace")), str(output.get("name"))
        if isinstance(facet, dict) and _fits(namespace, name):
            found[(namespace, name, job_id)] = [
                {
                    "target_namespace": namespace,
                    "target_name": name,
                    "target_column": column,
                    "source_namespace": src_namespace,
                    "source_name": src_name,
                    "source_column": field,
                    "job_id": job_id,
                    "how": how,
                    "transformation_type": values["type"],
                    "subtype": values["subtype"],
                    "description": "; ".join(values["descriptions"]) or None,
                    "workflow_id": workflow_id,
                    "seen_key": key,
                }
                for (column, src_namespace, src_name, field, how), values in sorted(
                    _edges(facet).items()
                )
            ]
    return found


def apply_column_lineage(
    connection: Connection, newest: dict[Group, tuple[str, list[dict[str, Any]]]]
) -> None:
    """Replace each (target, job)'s column edges by those of ``newest`` ({group: (key,
    rows)}, the newest event of a batch for it) unless a newer event's are stored: two
    statements for the whole batch, no read. In the caller's transaction, after the outputs'
    own upserts (on PostgreSQL those hold each output's row lock, so two appliers replacing
    one table's edges take their turns)."""
    if not newest:
        return
    sql = statements(connection.dialect.name)
    groups = sorted(newest)
    connection.execute(
        sql.columns_clear,
        [
            {
                "target_namespace": ns,
                "target_name": name,
                "job_id": job,
                "seen_key": newest[(ns, name, job)][0],
            }
            for ns, name, job in groups
        ],
    )
    rows = [row for group in groups for row in newest[group][1]]
    if rows:
        connection.execute(sql.columns_add, rows)


def _edges(facet: dict[str, Any]) -> dict[tuple, dict[str, Any]]:
    """{(target column, source namespace, name, column, how): the edge's other values}.
    What another producer sent malformed or too long for the table is left out."""
    edges: dict[tuple, dict[str, Any]] = {}
    fields = facet.get("fields")
    for column, value in fields.items() if isinstance(fields, dict) else []:
        inputs = value.get("inputFields") if isinstance(value, dict) else None
        for source in inputs if isinstance(inputs, list) else []:
            named = (
                [source.get(k) for k in ("namespace", "name", "field")]
                if isinstance(source, dict)
                else []
            )
            if not named or not all(isinstance(part, str) and part for part in named):
                continue
            namespace, name, field = named
            # Facets before 1-1-0 say how on the field itself (IDENTITY, MASKED).
            transformations = source.get("transformations") or [
                {
                    "type": "DIRECT",
                    "subtype": value.get("transformationType"),
                    "description": value.get("transformationDescription"),
                }
            ]
            for transformation in transformations if isinstance(transformations, list) else []:
                if not isinstance(transformation, dict):
                    continue
                kind = str(transformation.get("type") or "DIRECT").upper()
                subtype = transformation.get("subtype")
                subtype = str(subtype) if subtype is not None else None
                how = how_of(kind, subtype, renamed=field != column)
                if (
                    not _fits(namespace, name, str(column), field)
                    or max(len(kind), len(how), len(subtype or "")) > _LIMITS["how"]
                ):
                    continue
                edge = edges.setdefault(
                    (str(column), namespace, name, field, how),
                    {"type": kind, "subtype": subtype, "descriptions": []},
                )
                description = transformation.get("description")
                if description and str(description) not in edge["descriptions"]:
                    edge["descriptions"].append(str(description))
    return edges


def _fits(namespace: str, name: str, *columns: str) -> bool:
    return (
        len(namespace) <= _LIMITS["namespace"]
        and len(name) <= _LIMITS["name"]
        and all(len(column) <= _LIMITS["column"] for column in columns)
    )


def columns_of(session: Session, dataset: LineageDataset) -> list[str]:
    """The columns known of a dataset: its recorded schema, and those column edges name."""
    known: dict[str, None] = {}
    for field in _schema(dataset.schema_json):
        known[field] = None
    where = or_(
        (LineageColumnEdge.target_namespace == dataset.namespace)
        & (LineageColumnEdge.target_name == dataset.name),
        (LineageColumnEdge.source_namespace == dataset.namespace)
        & (LineageColumnEdge.source_name == dataset.name),
    )
    me = (dataset.namespace, dataset.name)
    for row in session.scalars(select(LineageColumnEdge).where(where)):
        if (row.target_namespace, row.target_name) == me:
            known[row.target_column] = None
        if (row.source_namespace, row.source_name) == me:
            known[row.source_column] = None
    return sorted(known)


def _schema(schema_json: str | None) -> list[str]:
    try:
        fields = json.loads(schema_json) if schema_json else []
    except ValueError:
        return []
    names = []
    for field in fields if isinstance(fields, list) else []:
        name = field.get("name") if isinstance(field, dict) else field
        if isinstance(name, str):
            names.append(name)
    return names


def column_lineage(
    session: Session, dataset: LineageDataset, column: str, direction: Direction, depth: int
) -> dict[str, Any]:
    """The columns ``column`` of ``dataset`` comes from (upstream) and the columns that come
    from it (downstream), transitively up to ``depth`` edges, across jobs and workflows."""
    root = (dataset.namespace, dataset.name, column)
    answer: dict[str, Any] = {"dataset": dataset.node_id, "column": column}
    for walk in ("upstream", "downstream") if direction == "both" else (direction,):
        answer[walk] = _walk(session, root, walk, depth)
    return answer


def _walk(session: Session, root: tuple[str, str, str], walk: str, depth: int) -> list[dict]:
    found: list[dict[str, Any]] = []
    seen = {root}
    frontier = deque([(root, 1)])
    while frontier:
        (namespace, name, column), level = frontier.popleft()
        if level > depth:
            continue
        if walk == "upstream":
            query = select(LineageColumnEdge).where(
                LineageColumnEdge.target_namespace == namespace,
                LineageColumnEdge.target_name == name,
                LineageColumnEdge.target_column == column,
            )
        else:
            query = select(LineageColumnEdge).where(
                LineageColumnEdge.source_namespace == namespace,
                LineageColumnEdge.source_name == name,
                LineageColumnEdge.source_column == column,
            )
        for row in session.scalars(query):
            source = (row.source_namespace, row.source_name, row.source_column)
            target = (row.target_namespace, row.target_name, row.target_column)
            other, via = (source, target) if walk == "upstream" else (target, source)
            found.append(
                _entry(row, other, via, "target" if walk == "upstream" else "source", level)
            )
            if other not in seen:
                seen.add(other)
                frontier.append((other, level + 1))
    return sorted(
        found,
        key=lambda e: (e["depth"], e["dataset"], e["column"], e["how"], e["jobId"], str(e)),
    )


def _entry(row: LineageColumnEdge, other: tuple, via: tuple, via_name: str, level: int) -> dict:
    return {
        "dataset": f"{other[0]}:{other[1]}",
        "column": other[2],
        "how": row.how,
        "transformationType": row.transformation_type,
        "subtype": row.subtype,
        "description": row.description,
        "jobId": row.job_id,
        "workflowId": row.workflow_id,
        "depth": level,
        via_name: {"dataset": f"{via[0]}:{via[1]}", "column": via[2]},
    }
