"""The append-only audit log: who changed what, when, with a before/after diff. The database
refuses UPDATE and DELETE on it (the catalog's first migration)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, utcnow


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(64))
    diff: Mapped[dict] = mapped_column(JSON)
    # The id another service gave an entry it sent (None for the catalog's own): an entry
    # delivered twice is recorded once.
    origin_id: Mapped[str | None] = mapped_column(String(36), default=None)
