"""Which active runs write a table: what the catalog asks the orchestrator before it
restores, resets or drops a table, so no run is writing it meanwhile.

In one process the question is a direct call (:data:`TABLE_WRITERS` on the bus); otherwise
``GET /api/internal/tables/{table}/writers`` on the orchestrator, with
``Authorization: Bearer <FLOWFORGE_SERVICE_SECRET>``.
"""

from __future__ import annotations

from flowforge_shared.contracts.base import ApiOutModel

TABLE_WRITERS = "flowforge.orchestrator.table_writers"
TABLE_WRITERS_PATH = "/api/internal/tables/{table}/writers"


class TableWriter(ApiOutModel):
    execution_id: str
    workflow_name: str
    job_name: str


class TableWriters(ApiOutModel):
    table: str
    writers: list[TableWriter]
