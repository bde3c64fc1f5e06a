"""Reading the lineage graph (the read side; :mod:`.apply` writes it): a workflow's graph, a
dataset found by its id or a lake table's alias, and the nodes and edges both graphs show
(:mod:`.neighbourhood` walks the graph around a dataset).

Both graphs have the shape a React Flow component draws as is: ``{"nodes": [...], "edges":
[...]}``, a node's ``id`` being ``<namespace>:<name>`` and an edge's ``source``/``target``
naming two nodes. A node says what a user asks first — layer, label, row count, last update,
how the run that made it went and how long it took, its columns — and an edge names the job
that made it and how that job's last run went.

Reads are batched so a query costs a few statements whatever the graph's size: the nodes,
their jobs and the jobs' last runs are loaded in bulk (``IN`` lists in chunks below the
databases' parameter limits). Rows are read as plain tuples on the session's connection,
neither ORM objects nor through the ORM's result processing: the answer is JSON anyway, and
building thousands of tracked objects costs more than the queries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import ARRAY, String, and_, any_, bindparam, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from flowforge_lineage.graph.models import LineageDataset, LineageEdge, LineageJob, LineageRun
from flowforge_shared.errors import Conflict, NotFound

Key = tuple[str, str]  # (namespace, name) of a dataset

# Keys per IN list: two parameters each, far below SQLite's 32,766 (3.32+) and PostgreSQL's
# 65,535 parameters per statement, and short enough for the planners to use the indexes.
CHUNK = 500
LAKE_LAYERS = ("bronze", "silver", "gold")
# The namespace a reference may put before a lake table's alias: "flowforge:silver.customers".
ALIAS_NAMESPACE = "flowforge"
RUNNING = "running"

T = TypeVar("T")

_DATASET_COLUMNS = (
    LineageDataset.namespace,
    LineageDataset.name,
    LineageDataset.layer,
    LineageDataset.version,
    LineageDataset.row_count,
    LineageDataset.last_updated,
    LineageDataset.status,
    LineageDataset.producer_job_id,
    LineageDataset.workflow_id,
    LineageDataset.alias,
    LineageDataset.label,
    LineageDataset.schema_json,
)
# The walk reads the first four by position: keep them first, in this order.
EDGE_COLUMNS = (
    LineageEdge.source_namespace,
    LineageEdge.source_name,
    LineageEdge.target_namespace,
    LineageEdge.target_name,
    LineageEdge.job_id,
    LineageEdge.job_name,
    LineageEdge.workflow_id,
)


def rows_of(session: Session, statement: Any) -> Any:
    """The rows of a Core select, run on the session's connection: plain rows, without the
    ORM's result processing (half the time on thousands of rows)."""
    return session.connection().execute(statement)


def _chunks(items: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def dialect_of(session: Session) -> str:
    return session.get_bind().dialect.name


def one_of(column: Any, values: Sequence[str], dialect: str) -> ColumnElement[bool]:
    """``column`` is one of ``values``: ``IN (...)``; on PostgreSQL ``= ANY(:array)``, one
    parameter whatever the count (an IN list of 500 is 500 parameters to bind and a new
    statement text per length: the hub query spent about half its time there)."""
    if dialect == "postgresql":
        return column == any_(bindparam(None, list(values), type_=ARRAY(String)))
    return column.in_(values)


def _rows_by_key(
    session: Session,
    key: Any,
    wanted: Iterable[str | None],
    *columns: Any,
    joined: tuple[Any, Any] | None = None,
):
    """The rows whose ``key`` is one of ``wanted`` (chunked), by key, with ``columns``
    (of ``joined``, an outer-joined (table, on clause), too)."""
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted({value for value in wanted if value})):
        statement = select(key, *columns)
        if joined is not None:
            statement = statement.outerjoin(*joined)
        rows = rows_of(session, statement.where(one_of(key, chunk, dialect_of(session))))
        found.update((row[0], row) for row in rows)
    return found


def keys_in(
    namespace: Any, name: Any, keys: Sequence[Key], dialect: str = ""
) -> Iterator[ColumnElement[bool]]:
    """Conditions, one per chunk of ``keys``, that a row's (namespace, name) is one of them:
    ``namespace = :ns AND name IN (...)`` per namespace, OR-ed. Not a row-value ``IN``:
    SQLite scans the whole table for ``(a, b) IN (VALUES ...)``, while it searches the
    composite index for each of these terms (and PostgreSQL does either way)."""
    ordered = sorted(set(keys))
    for chunk in _chunks(ordered):
        names: dict[str, list[str]] = {}
        for space, value in chunk:
            names.setdefault(space, []).append(value)
        yield or_(
            *(
                and_(namespace == space, one_of(name, values, dialect))
                for space, values in names.items()
            )
        )


def node_id(namespace: str, name: str) -> str:
    return f"{namespace}:{name}"


def fallback_label(layer: str, name: str, alias: str | None) -> str:
    """What a node shows without a label: a lake table's name without its layer
    (``silver.customers`` -> ``customers``, ``.../silver/customers`` -> ``customers``), a
    source's name (a file's last path segment)."""
    if alias:
        head, dot, tail = alias.partition(".")
        return tail if dot and head in LAKE_LAYERS else alias
    head, dot, tail = name.partition(".")
    if dot and head in LAKE_LAYERS and "/" not in name:
        return tail
    last = name.rstrip("/").rsplit("/", 1)[-1]
    return last or name


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _schema(raw: str | None) -> list[dict[str, Any]] | None:
    if not raw:
        return None
    try:
        fields = json.loads(raw)
    except ValueError:
        return None  # a column written by an older producer: no schema rather than a 500
    return fields if isinstance(fields, list) else None


class _Jobs:
    """The jobs a graph names and their last runs, loaded in bulk (one statement per chunk:
    each job with its last run joined)."""

    def __init__(self, session: Session, job_ids: Iterable[str]) -> None:
        self.jobs: dict[str, Any] = _rows_by_key(
            session,
            LineageJob.job_id,
            job_ids,
            LineageJob.workflow_id,
            LineageJob.last_status,
            LineageRun.run_id,
            LineageRun.started_at,
            LineageRun.ended_at,
            LineageRun.status.label("run_status"),
            joined=(LineageRun, LineageRun.run_id == LineageJob.last_run_id),
        )
        self._last: dict[str | None, tuple[str | None, int | None]] = {}

    def last_run(self, job_id: str | None) -> tuple[str | None, int | None]:
        """(status, duration in ms) of the job's last run; the duration is None while it
        runs or when its start or end is unknown."""
        if job_id not in self._last:
            self._last[job_id] = self._last_run(job_id)
        return self._last[job_id]

    def _last_run(self, job_id: str | None) -> tuple[str | None, int | None]:
        job = self.jobs.get(job_id or "")
        if job is None:
            return None, None
        if job.run_id is None:  # no run recorded under its last run id
            return job.last_status, None
        status = job.run_status or job.last_status
        if status == RUNNING or job.started_at is None or job.ended_at is None:
            return status, None
        return status, round((job.ended_at - job.started_at).total_seconds() * 1000)


def _node(row: Any, jobs: _Jobs, reader: str | None) -> dict[str, Any]:
    # A lake table's run is its writer's; a source's is the newest job that read it.
    job_id = row.producer_job_id if row.layer != "source" else reader
    status, duration = jobs.last_run(job_id)
    if row.layer == "source" and status is None:
        status = row.status  # read by a job whose run left no edge (it wrote nothing)
    job = jobs.jobs.get(job_id or "")
    workflow_id = row.workflow_id or (job.workflow_id if job is not None else None)
    return {
        "id": node_id(row.namespace, row.name),
        "type": row.layer,
        "label": row.label or fallback_label(row.layer, row.name, row.alias),
        "alias": row.alias,
        "namespace": row.namespace,
        "name": row.name,
        "rowCount": row.row_count,
        "lastUpdated": _iso(row.last_updated),
        "status": status,
        "durationMs": duration,
        "schema": _schema(row.schema_json),
        "jobId": job_id,
        "workflowId": workflow_id,
        "version": row.version,
    }


def _edge(row: Any, jobs: _Jobs) -> dict[str, Any]:
    status, _ = jobs.last_run(row.job_id)
    return {
        "id": f"{node_id(row.source_namespace, row.source_name)}->"
        f"{node_id(row.target_namespace, row.target_name)}#{row.job_id}",
        "source": node_id(row.source_namespace, row.source_name),
        "target": node_id(row.target_namespace, row.target_name),
        "jobId": row.job_id,
        "jobName": row.job_name,
        "workflowId": row.workflow_id,
        "status": status,
    }


def _datasets(session: Session, keys: Iterable[Key]) -> list[Any]:
    found = []
    dialect = dialect_of(session)
    for condition in keys_in(LineageDataset.namespace, LineageDataset.name, list(keys), dialect):
        found.extend(rows_of(session, select(*_DATASET_COLUMNS).where(condition)))
    return sorted(found, key=lambda row: (row.namespace, row.name))


def _newest_readers(session: Session, sources: Sequence[Key]) -> dict[Key, str]:
    """The newest job (by the order key of its last event) that read each source: one row
    per source, ranked in the database, however many jobs read it."""
    newest: dict[Key, str] = {}
    dialect = dialect_of(session)
    for condition in keys_in(
        LineageEdge.source_namespace, LineageEdge.source_name, sources, dialect
    ):
        ranked = (
            select(
                LineageEdge.source_namespace,
                LineageEdge.source_name,
                LineageJob.job_id,
                func.row_number()
                .over(
                    partition_by=(LineageEdge.source_namespace, LineageEdge.source_name),
                    order_by=(LineageJob.status_key.desc(), LineageJob.job_id.desc()),
                )
                .label("rank"),
            )
            .join(LineageJob, LineageJob.job_id == LineageEdge.job_id)
            .where(condition)
            .subquery()
        )
        rows = rows_of(
            session,
            select(ranked.c.source_namespace, ranked.c.source_name, ranked.c.job_id).where(
                ranked.c.rank == 1
            ),
        )
        newest.update(((namespace, name), job_id) for namespace, name, job_id in rows)
    return newest


def graph_of(session: Session, keys: Iterable[Key], edges: Iterable[Any]) -> dict[str, Any]:
    """The nodes of ``keys`` (the datasets known among them) and ``edges``, each as the API
    shows it, with the jobs and last runs they name loaded in bulk."""
    datasets = _datasets(session, keys)
    ordered = sorted(
        edges,
        key=lambda e: (
            e.source_namespace,
            e.source_name,
            e.target_namespace,
            e.target_name,
            e.job_id,
        ),
    )
    sources = [(d.namespace, d.name) for d in datasets if d.layer == "source"]
    readers = _newest_readers(session, sources) if sources else {}
    jobs = _Jobs(
        session,
        [d.producer_job_id for d in datasets if d.layer != "source"]
        + [e.job_id for e in ordered]
        + list(readers.values()),
    )
    return {
        "nodes": [_node(d, jobs, readers.get((d.namespace, d.name))) for d in datasets],
        "edges": [_edge(e, jobs) for e in ordered],
    }


def workflow_graph(session: Session, workflow_id: str) -> dict[str, Any]:
    """The datasets a workflow's jobs read or wrote, and its jobs' edges."""
    edges = list(
        rows_of(session, select(*EDGE_COLUMNS).where(LineageEdge.workflow_id == workflow_id))
    )
    keys = {(e.source_namespace, e.source_name) for e in edges}
    keys |= {(e.target_namespace, e.target_name) for e in edges}
    keys |= {
        (namespace, name)
        for namespace, name in rows_of(
            session,
            select(LineageDataset.namespace, LineageDataset.name).where(
                LineageDataset.workflow_id == workflow_id
            ),
        )
    }
    return graph_of(session, keys, edges)


def find_dataset(session: Session, reference: str) -> LineageDataset:
    """The dataset a reference names: ``<namespace>:<name>`` (a namespace may hold colons
    itself: ``postgres://host:5432:db.schema.t``), or a lake table's alias (``silver.customers``,
    ``flowforge:silver.customers``, or qualified by its namespace, ``file:silver.customers``:
    the id lake tables had before they were named by location). NotFound when none does;
    Conflict, naming the candidates, when an alias names tables of two lakes."""
    splits = [
        (reference[:index], reference[index + 1 :])
        for index, char in enumerate(reference)
        if char == ":"
    ]
    if splits:
        exact = [
            dataset
            for condition in keys_in(LineageDataset.namespace, LineageDataset.name, splits)
            for dataset in session.scalars(select(LineageDataset).where(condition))
        ]
        if exact:
            # The longest namespace wins: "s3://b:k" is namespace "s3://b", never "s3".
            return max(exact, key=lambda dataset: len(dataset.namespace))
    matches = [LineageDataset.alias == reference]
    for namespace, rest in splits:
        if namespace == ALIAS_NAMESPACE:
            matches.append(LineageDataset.alias == rest)
        else:
            matches.append(
                and_(LineageDataset.namespace == namespace, LineageDataset.alias == rest)
            )
    candidates = session.scalars(
        select(LineageDataset)
        .where(or_(*matches))
        .order_by(LineageDataset.namespace, LineageDataset.name)
    ).all()
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        names = ", ".join(dataset.node_id for dataset in candidates)
        raise Conflict(
            f"{reference} names {len(candidates)} lake tables: {names}; "
            "ask for one by <namespace>:<name>"
        )
    raise NotFound(
        f"no dataset {reference} in the lineage graph (give <namespace>:<name>, e.g. "
        "file:/data/lake/silver/customers, or a lake table's alias, e.g. silver.customers)"
    )
