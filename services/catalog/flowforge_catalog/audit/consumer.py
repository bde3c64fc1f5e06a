"""The audit entries other services send (:data:`RECORD_AUDIT`): in one process the bus
calls :func:`record_sent` directly, otherwise ``flowforge worker catalog`` takes them from
the ``catalog`` queue. Idempotent: an entry delivered twice is recorded once."""

from __future__ import annotations

from flowforge_catalog.audit.service import record_sent
from flowforge_shared.contracts.audit import RECORD_AUDIT


def install_audit_consumer(app) -> None:
    database = app.state.database
    app.state.bus.handle(RECORD_AUDIT, lambda payload: record_sent(database, payload))
