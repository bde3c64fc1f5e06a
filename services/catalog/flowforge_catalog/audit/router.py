from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from flowforge_catalog.audit import service
from flowforge_catalog.audit.schemas import AuditEntryPublic
from flowforge_shared.auth import require_auditor
from flowforge_shared.contracts.base import MAX_OFFSET, Page
from flowforge_shared.deps import SessionDep

# Read-only by design: no route here (or anywhere) changes or deletes an entry. Auditors,
# editors and admins read it; viewers do not.
router = APIRouter(prefix="/audit", tags=["audit"], dependencies=[Depends(require_auditor)])


@router.get("", response_model=Page[AuditEntryPublic])
def list_audit_entries(
    session: SessionDep,
    entity_type: Annotated[str | None, Query(alias="entityType")] = None,
    entity_id: Annotated[str | None, Query(alias="entityId")] = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
):
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    entries, count = service.get_all(
        session,
        entity_type=entity_type,
        entity_id=entity_id,
        actor=actor,
        since=since,
        limit=limit,
        offset=offset,
    )
    return Page[AuditEntryPublic](
        data=[AuditEntryPublic.model_validate(entry) for entry in entries], count=count
    )
