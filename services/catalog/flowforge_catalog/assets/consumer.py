"""The catalog's side of a job's COMPLETE run event: the tables it wrote become (or update)
assets. The orchestrator passes the event on (:data:`CATALOG_RECORD_OUTPUTS`); in one
process the bus calls :func:`record_outputs` directly, otherwise ``flowforge worker
catalog`` takes it from the ``catalog`` queue. Idempotent: a repeated or late event never
moves an asset back to an older table version."""

from __future__ import annotations

from typing import Any

from flowforge_catalog.assets.service import apply_run_event
from flowforge_shared.contracts.tasks import CATALOG_RECORD_OUTPUTS
from flowforge_shared.db.engine import Database


def record_outputs(database: Database, event: dict[str, Any]) -> None:
    with database.session() as session:
        apply_run_event(session, event)


def install_outputs_consumer(app) -> None:
    """Take the orchestrator's COMPLETE events in this process."""
    database = app.state.database
    app.state.bus.handle(CATALOG_RECORD_OUTPUTS, lambda event: record_outputs(database, event))
