"""Internal: the catalog's question "which active runs write this table?"."""

from __future__ import annotations

from fastapi import APIRouter

from flowforge_orchestrator.tables import service
from flowforge_shared.contracts.tables import TABLE_WRITERS, TableWriters
from flowforge_shared.deps import SessionDep

router = APIRouter(tags=["internal"])


@router.get("/internal/tables/{table}/writers", response_model=TableWriters)
def table_writers(table: str, session: SessionDep) -> TableWriters:
    return service.writers(session, table)


def install_table_writers(app) -> None:
    """Answer the question in this process too (the catalog served here asks directly)."""
    database = app.state.database

    def answer(payload: dict) -> dict:
        with database.session() as session:
            return service.writers(session, payload["table"]).model_dump(by_alias=True)

    app.state.bus.handle(TABLE_WRITERS, answer)
