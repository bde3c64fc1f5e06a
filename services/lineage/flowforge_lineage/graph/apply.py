"""Applying run events to the graph (the write side; :mod:`.query` reads it).

An event is applied once (its ``flowforge_run`` eventId, kept in ``lineage_events``), and
every value it sets is kept only while no newer event set it: the order of two events is
their :func:`order_key` (a lake table's version first, then eventTime, then the event type's
place in a run, then the eventId), so replaying events, or receiving them out of order,
gives the same graph. A dataset keeps its first writer (the oldest event naming it as an
output) until a COMPLETE names one; an OTHER event (no status) changes no status.

This module turns an event into rows; the conditional upserts of :mod:`.upserts` let the
database decide, row by row, what the event may change (no reads, safe for appliers side
by side)."""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from flowforge_lineage.columns.service import apply_column_lineage, column_edges_of
from flowforge_lineage.graph.upserts import SEEN, dataset_row, statements
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


def apply_event(target: Session | Connection, event: dict[str, Any]) -> bool:
    """Apply one run event in the caller's transaction; False when it was applied before
    (nothing changes)."""
    return apply_events(target, [event]) == [True]


def apply_events(target: Session | Connection, events: Sequence[dict[str, Any]]) -> list[bool]:
    """Apply run events in the caller's transaction; for each, False when it was applied
    before (by an earlier call or earlier in the list).

    Every statement of :mod:`.upserts` runs once for the whole list, with the rows of every
    event (an executemany, in one order of keys); as each keeps only what is newer, that
    gives what applying the events one by one gives; so do the column edges, of which only
    each (target, job)'s newest in the list is written."""
    connection = target.connection() if isinstance(target, Session) else target
    sql = statements(connection.dialect.name)
    ids = [event_id_of(event) for event in events]
    parsed: dict[str, tuple[dict[str, Any], datetime]] = {}
    for event_id, event in zip(ids, events, strict=True):
        parsed.setdefault(event_id, (event, _time(event)))
    ledger = [
        {
            "event_id": event_id,
            "event_type": _type(event),
            "event_time": when,
            "job_run_id": (event.get("run") or {}).get("runId"),
            "applied_at": datetime.now(UTC),
        }
        for event_id, (event, when) in parsed.items()
    ]
    new = set(connection.execute(sql.event, ledger).scalars()) if ledger else set()
    rows = _Rows()
    for event_id in (event_id for event_id in parsed if event_id in new):
        rows.add(event_id, *parsed[event_id])
    for name, key in _ORDER:
        if found := rows.of(name):
            connection.execute(getattr(sql, name), sorted(found, key=key))
    apply_column_lineage(connection, rows.columns)
    applied = []
    for event_id in ids:
        applied.append(event_id in new)
        new.discard(event_id)  # a repeat later in the list was applied by the first
    return applied


def _type(event: dict[str, Any]) -> str:
    return str(event.get("eventType") or "RUNNING")


def _time(event: dict[str, Any]) -> datetime:
    when = datetime.fromisoformat(event["eventTime"])
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _dataset_key(row: dict[str, Any]) -> tuple:
    return (row["namespace"], row["name"])


_EDGE_KEYS = ("source_namespace", "source_name", "target_namespace", "target_name", "job_id")


# Statements in the order they run (the same in every applier, as are the rows' orders, so
# PostgreSQL row locks are taken in one order and never wait in a circle).
_ORDER = [
    ("job", lambda row: row["job_id"]),
    ("run", lambda row: row["run_id"]),
    ("source_input", _dataset_key),
    ("named", _dataset_key),
    ("output_seen", _dataset_key),
    ("output_written", _dataset_key),
    ("edge", lambda row: tuple(row[column] for column in _EDGE_KEYS)),
]


class _Rows:
    """The rows the events ask each statement for, and the column edges. Of several rows
    for one job, run or edge only the newest is kept (the older would change nothing after
    it; a run keeps its earliest start too): fewer rows, the same result."""

    def __init__(self) -> None:
        self.job: dict[str, dict] = {}
        self.run: dict[str, dict] = {}
        self.source_input: list[dict] = []
        self.named: list[dict] = []
        self.output_seen: list[dict] = []
        self.output_written: list[dict] = []
        self.edge: dict[tuple, dict] = {}
        self.columns: dict[tuple, tuple[str, list[dict]]] = {}  # the newest per (target, job)

    def of(self, name: str) -> list[dict]:
        found = getattr(self, name)
        return list(found.values()) if isinstance(found, dict) else found

    def add(self, event_id: str, event: dict[str, Any], when: datetime) -> None:
        event_type = _type(event)
        run_id = (event.get("run") or {}).get("runId")
        job_id, job_name = job_of(event)
        workflow_id = run_facet(event, "flowforge_run").get("workflowId")
        key = order_key(when, event_type, event_id)
        # An OTHER event (another producer's) adds datasets and edges, says nothing of status.
        status = STATUS.get(event_type)
        told = status is not None
        _keep_newest(
            self.job,
            job_id,
            "status_key",
            {
                "job_id": job_id,
                "job_name": job_name,
                "job_namespace": (event.get("job") or {}).get("namespace") if told else None,
                "workflow_id": workflow_id if told else None,
                "last_run_id": run_id if told else None,
                "last_status": status,
                "last_event_time": when if told else None,
                "status_key": key if told else "",
            },
        )
        if told and run_id:
            row = _run(event, str(run_id), job_id, when, key)
            held = self.run.get(str(run_id))
            starts = [t for t in (row["started_at"], held and held["started_at"]) if t]
            if held is not None and held["status_key"] >= row["status_key"]:
                row = dict(held)
            row["started_at"] = min(starts) if starts else None
            self.run[str(run_id)] = row
        inputs = [d for d in event.get("inputs") or [] if isinstance(d, dict)]
        outputs = [d for d in event.get("outputs") or [] if isinstance(d, dict)]
        datasets = _datasets(event, event_id, inputs, outputs, job_id, workflow_id, when, key)
        for name, found in datasets.items():
            getattr(self, name).extend(found)
        edges = {
            (s["namespace"], s["name"], t["namespace"], t["name"]): {
                "source_namespace": s["namespace"],
                "source_name": s["name"],
                "target_namespace": t["namespace"],
                "target_name": t["name"],
                "job_id": job_id,
                "job_name": job_name,
                "workflow_id": workflow_id,
                "seen_key": key,
            }
            for s in inputs
            for t in outputs
        }
        for ids, edge in edges.items():
            _keep_newest(self.edge, (*ids, job_id), "seen_key", edge)
        for group, found in column_edges_of(event, job_id, workflow_id, key).items():
            if group not in self.columns or key > self.columns[group][0]:
                self.columns[group] = (key, found)


def _run(event, run_id: str, job_id: str, when: datetime, key: str) -> dict[str, Any]:
    """The run's start (its START event), end and outcome (its newest event)."""
    event_type = str(event.get("eventType") or "RUNNING")
    error = run_facet(event, "errorMessage") or run_facet(event, "flowforge_error")
    return {
        "run_id": run_id,
        "job_id": job_id,
        "started_at": when if event_type == "START" else None,
        "ended_at": when if RANK.get(event_type) == 2 else None,
        "status": STATUS.get(event_type),
        "status_key": key,
        "error_message": error.get("message") if event_type == "FAIL" else None,
    }


def _datasets(event, event_id, inputs, outputs, job_id, workflow_id, when, key) -> dict:
    """The parameters of each dataset statement for this event's inputs and outputs."""
    event_type = str(event.get("eventType") or "RUNNING")
    status = STATUS.get(event_type)
    result = run_facet(event, "flowforge_result")
    found: dict[str, list] = {
        "source_input": [],
        "named": [],
        "output_seen": [],
        "output_written": [],
    }
    for dataset in inputs:
        layer, alias, label = describe(dataset)
        base = dataset_row(
            str(dataset["namespace"]), str(dataset["name"]), layer=layer, alias=alias, label=label
        )
        if layer != "source" or status is None:  # a lake table's state is its writer's
            found["named"].append({**base, "state_key": ""})
            continue
        rows = _statistic(dataset, "inputFacets", "inputStatistics", "dataQualityMetrics")
        if rows is None and event_type == "COMPLETE" and len(inputs) == 1:
            rows = result.get("rowsRead")
        schema = _schema(dataset)
        found["source_input"].append(
            {
                **base,
                "status": status,
                "last_updated": when,
                "state_key": key,
                "row_count": rows,
                "count_key": key if rows is not None else None,
                "schema_json": schema,
                "schema_key": key if schema is not None else None,
            }
        )
    for dataset in outputs:
        layer, alias, label = describe(dataset)
        base = dataset_row(
            str(dataset["namespace"]),
            str(dataset["name"]),
            layer=layer,
            alias=alias,
            label=label,
            producer_job_id=job_id,
            workflow_id=workflow_id,
        )
        if event_type != "COMPLETE":
            found["output_seen"].append({**base, "state_key": "", "writer_key": SEEN + key})
            continue
        facets = dataset.get("facets") or {}
        version = (facets.get("version") or {}).get("datasetVersion")
        version = int(version) if str(version or "").isdigit() else None
        written = order_key(when, event_type, event_id, version)
        rows = _statistic(dataset, "outputFacets", "outputStatistics")
        schema = _schema(dataset)
        found["output_written"].append(
            {
                **base,
                "version": version,
                "last_updated": when,
                "state_key": written,
                "writer_key": written,
                "row_count": rows,
                "count_key": written if rows is not None else None,
                "schema_json": schema,
                "schema_key": written if schema is not None else None,
            }
        )
    return found


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


def _keep_newest(found: dict, key: Any, order: str, row: dict[str, Any]) -> None:
    held = found.get(key)
    if held is None or row[order] > held[order]:
        found[key] = row
