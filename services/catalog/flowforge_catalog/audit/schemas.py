from __future__ import annotations

from datetime import datetime

from flowforge_shared.contracts.base import ApiOutModel


class AuditEntryPublic(ApiOutModel):
    id: int
    at: datetime
    actor: str
    action: str
    entity_type: str
    entity_id: str
    diff: dict
