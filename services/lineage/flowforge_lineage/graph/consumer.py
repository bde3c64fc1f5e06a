"""The lineage service's side of the run events: the orchestrator passes every run event it
receives on (:data:`LINEAGE_RECORD_EVENT`); in one process the bus calls
:func:`record_event` directly, otherwise ``flowforge worker lineage`` takes it from the
``lineage`` queue. Idempotent and order-free (see :mod:`flowforge_lineage.graph.apply`).

:func:`record_events` applies a batch (a backlog, a replay) in one transaction: the batch
pays one commit instead of one per event. The applier's conditional upserts need no reads,
so there is nothing to preload.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from contextlib import nullcontext
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from flowforge_lineage.graph.apply import apply_events
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database

# SQLite has one writer at a time: threads of this process take their turns here rather
# than in SQLite's busy loop. PostgreSQL appliers run side by side (the upserts make that
# safe); a deadlock between two of them (two batches locking the same datasets in another
# order, one statement kind after the other) is retried, as is SQLite's "database is locked".
_sqlite_lock = threading.Lock()
ATTEMPTS = 5


def record_event(database: Database, event: dict[str, Any]) -> bool:
    """Apply one run event; False if it was applied before."""
    return record_events(database, [event]) == [True]


def record_events(database: Database, events: Sequence[dict[str, Any]]) -> list[bool]:
    """Apply run events in one transaction, in the order given; for each, False if it was
    applied before (by an earlier call or earlier in the batch)."""
    lock = _sqlite_lock if database.engine.dialect.name == "sqlite" else nullcontext()
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with lock, database.engine.begin() as connection:
                return apply_events(connection, events)
        except (IntegrityError, OperationalError):
            if attempt == ATTEMPTS:
                raise
    return []  # pragma: no cover - the loop returns or raises


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
