"""Audit entries the orchestrator made and has not yet handed to the catalog."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, String
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow


class AuditOutboxEntry(Base):
    __tablename__ = "audit_outbox"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(64))
    diff: Mapped[dict] = mapped_column(JSON)
