"""The lineage service's side of the run events: the orchestrator passes every run event it
receives on (:data:`LINEAGE_RECORD_EVENT`); in one process the bus calls
:func:`record_event` directly, otherwise ``flowforge worker lineage`` takes it from the
``lineage`` queue. Idempotent and order-free (see :mod:`flowforge_lineage.graph.apply`)."""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.exc import IntegrityError

from flowforge_lineage.graph.apply import apply_event
from flowforge_shared.contracts.tasks import LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database

# One event at a time in this process; across processes, two events creating the same
# dataset or edge at once make one of them fail its insert, and it is applied again.
_lock = threading.Lock()
ATTEMPTS = 3


def record_event(database: Database, event: dict[str, Any]) -> bool:
    """Apply one run event; False if it was applied before."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with _lock, database.session() as session:
                return apply_event(session, event)
        except IntegrityError:
            if attempt == ATTEMPTS:
                raise
    return False  # pragma: no cover - the loop returns or raises


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
