"""The lineage service's side of the run events: the orchestrator passes every run event it
receives on (:data:`LINEAGE_RECORD_EVENT`); in one process the bus calls
:func:`record_event` directly, otherwise ``flowforge worker lineage`` takes it from the
``lineage`` queue. Idempotent and order-free (see :mod:`flowforge_lineage.graph.apply`).

:func:`record_events` applies a batch (a backlog, a replay) in one transaction: it first
loads every job, dataset and edge row the batch touches with a few ``IN`` queries and holds
them, so the applier's lookups by primary key are answered from the session instead of one
``SELECT`` each, and the batch pays one commit instead of one per event."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_lineage.graph.apply import apply_event, event_id_of, job_of
from flowforge_lineage.graph.models import (
    LineageDataset,
    LineageEdge,
    LineageEvent,
    LineageJob,
    LineageRun,
)
from flowforge_lineage.graph.query import keys_in
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database

# One event at a time in this process; across processes, two events creating the same
# dataset or edge at once make one of them fail its insert, and it is applied again.
_lock = threading.Lock()
ATTEMPTS = 3
CHUNK = 500  # keys per IN list (two parameters each): below every database's limit


def record_event(database: Database, event: dict[str, Any]) -> bool:
    """Apply one run event; False if it was applied before."""
    return record_events(database, [event]) == [True]


def record_events(database: Database, events: Sequence[dict[str, Any]]) -> list[bool]:
    """Apply run events in one transaction, in the order given; for each, False if it was
    applied before (by an earlier call or earlier in the batch)."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _lock, database.session() as session:
                held = _preload(session, events) if len(events) > 1 else []
                applied = [apply_event(session, event) for event in events]
                del held
                return applied
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
    return []  # pragma: no cover - the loop returns or raises


def _preload(session: Session, events: Sequence[dict[str, Any]]) -> list[Any]:
    """The rows the batch will look up, loaded in bulk. The session's identity map holds
    objects weakly: the caller keeps the returned list until the batch is applied."""
    event_ids = sorted({event_id_of(event) for event in events})
    job_ids = sorted({job_of(event)[0] for event in events})
    run_ids = sorted({str((event.get("run") or {}).get("runId")) for event in events})
    keys = sorted(
        {
            (str(dataset["namespace"]), str(dataset["name"]))
            for event in events
            for dataset in (event.get("inputs") or []) + (event.get("outputs") or [])
        }
    )
    held: list[Any] = []
    for start in range(0, len(event_ids), CHUNK):
        chunk = event_ids[start : start + CHUNK]
        held += session.scalars(select(LineageEvent).where(LineageEvent.event_id.in_(chunk)))
    for start in range(0, len(job_ids), CHUNK):
        chunk = job_ids[start : start + CHUNK]
        held += session.scalars(select(LineageJob).where(LineageJob.job_id.in_(chunk)))
    for start in range(0, len(run_ids), CHUNK):
        chunk = run_ids[start : start + CHUNK]
        held += session.scalars(select(LineageRun).where(LineageRun.run_id.in_(chunk)))
    for condition in keys_in(LineageDataset.namespace, LineageDataset.name, keys):
        held += session.scalars(select(LineageDataset).where(condition))
    for condition in keys_in(LineageEdge.source_namespace, LineageEdge.source_name, keys):
        held += session.scalars(select(LineageEdge).where(condition))
    return held


def record_and_forward(database: Database, event: dict[str, Any], forwarder=None) -> bool:
    """Apply one run event and, the first time it is applied, queue it for the OpenLineage
    endpoint (``forwarder``: :class:`flowforge_lineage.openlineage.outbound.Forwarder`, or
    None when FLOWFORGE_OPENLINEAGE_URL is not set). Queuing never blocks nor raises."""
    applied = record_event(database, event)
    if applied and forwarder is not None:
        forwarder.submit(event)
    return applied


def install_event_consumer(app) -> None:
    """Take the orchestrator's run events in this process (after the OpenLineage install
    hook, which puts the forwarder on ``app.state``)."""
    database = app.state.database
    forwarder = getattr(app.state, "openlineage_outbound", None)
    app.state.bus.handle(
        LINEAGE_RECORD_EVENT, lambda event: record_and_forward(database, event, forwarder)
    )
