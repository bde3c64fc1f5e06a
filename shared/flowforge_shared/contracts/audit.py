"""Audit entries made by a service other than the catalog, which owns the audit log.

- :data:`RECORD_AUDIT` (message, queue ``catalog``): one entry, already masked. The sender
  keeps it in its own database in the same transaction as the change it tells of, and sends
  it once that transaction has committed (again until it is sent, after a crash), so the
  catalog records it by its ``id``: an entry delivered twice is recorded once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RECORD_AUDIT = "flowforge.catalog.record_audit"


class AuditRecorded(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: Literal[1] = 1
    id: str = Field(min_length=1, max_length=36)  # the sender's, unique: the catalog's key
    at: datetime
    actor: str
    action: str
    entity_type: str = Field(alias="entityType")
    entity_id: str = Field(alias="entityId")
    diff: dict[str, Any]

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)
