"""Triggers (what starts a workflow's runs besides a person) and their firings.

A trigger has a ``kind`` and the settings of that kind as JSON (validated per kind by
:mod:`.schemas`), so the kinds to come (dependency, event, webhook) need no new table.
``next_fire_at`` is when a time trigger is next due: the scheduler claims due triggers by it
(``FOR UPDATE SKIP LOCKED`` on PostgreSQL); for an event trigger, when its landing prefix is
next listed. A firing is recorded once per trigger and
scheduled time (unique), with what became of it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow


class Trigger(Base):
    __tablename__ = "triggers"
    __table_args__ = (Index("ix_triggers_due", "enabled", "next_fire_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    kind: Mapped[str] = mapped_column(String(20))
    name: Mapped[str | None] = mapped_column(String(200))
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    settings: Mapped[dict] = mapped_column(JSON)
    # A webhook trigger's signing secret, encrypted (flowforge_shared.secrets); never shown
    # after the response that created or rotated it, never in the audit log.
    secret: Mapped[str | None] = mapped_column(Text)
    next_fire_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # An event trigger's files count from this time on (set when it is created, enabled again
    # or its settings change; files changed before it do not fire unless includeExisting).
    watch_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Optimistic concurrency: a change names the version it read (409 when stale). Bumped by
    # every change a person or FlowForge makes (service.bump), not by the scheduler's
    # next_fire_at bookkeeping.
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Why FlowForge disabled it (its upstream workflow was deleted, ...); cleared on enable.
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)


class TriggerFiring(Base):
    """One firing: ``pending`` (recorded, its run not yet asked for), ``queued`` (waiting for
    the workflow's running execution to end), ``requested`` (handed to the catalog through
    the broker), ``started`` or ``skipped`` — ``reason`` says why."""

    __tablename__ = "trigger_firings"
    __table_args__ = (
        UniqueConstraint("trigger_id", "fire_time", name="uq_trigger_firings_time"),
        # A webhook request's signature, a dependency's upstream execution, an event's file
        # (path, size, modification time): the same cause received twice is one firing.
        Index("uq_trigger_firings_key", "trigger_id", "firing_key", unique=True),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    trigger_id: Mapped[str] = mapped_column(
        String(36), ForeignKey("triggers.id", ondelete="CASCADE"), index=True
    )
    workflow_id: Mapped[str] = mapped_column(String(36), index=True)
    fire_time: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(20), index=True)
    reason: Mapped[str | None] = mapped_column(Text)
    execution_id: Mapped[str] = mapped_column(String(36), default=new_id)
    firing_key: Mapped[str | None] = mapped_column(String(200))
    cause: Mapped[dict | None] = mapped_column(JSON)  # added to the run's cause
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
