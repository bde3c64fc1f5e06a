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


def install_event_consumer(app) -> None:
    """Take the orchestrator's run events in this process."""
    database = app.state.database
    app.state.bus.handle(LINEAGE_RECORD_EVENT, lambda event: record_event(database, event))
