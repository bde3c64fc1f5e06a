"""The audit log: the catalog's own changes recorded in their transaction (:func:`record`),
the other services' entries as they send them (:func:`record_sent`), and reading it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from flowforge_catalog.audit.models import AuditEntry
from flowforge_shared.audit import entry_fields
from flowforge_shared.contracts.audit import AuditRecorded
from flowforge_shared.db.engine import Database


def record(session: Session, **change: Any) -> AuditEntry:
    """Append one entry to the session's unit of work (the caller commits); ``change`` is
    :func:`flowforge_shared.audit.entry_fields`'s keywords."""
    entry = AuditEntry(**entry_fields(**change))
    session.add(entry)
    return entry


def record_sent(database: Database, payload: dict[str, Any]) -> bool:
    """An entry another service sent (masked there); False when it was recorded before."""
    sent = AuditRecorded.model_validate(payload)
    entry = AuditEntry(
        at=sent.at,
        actor=sent.actor,
        action=sent.action,
        entity_type=sent.entity_type,
        entity_id=sent.entity_id,
        diff=sent.diff,
        origin_id=sent.id,
    )
    try:
        with database.session() as session:
            if session.scalar(select(AuditEntry.id).where(AuditEntry.origin_id == sent.id)):
                return False
            session.add(entry)
    except IntegrityError:  # the same entry, recorded by a concurrent delivery
        return False
    return True


def get_all(
    session: Session,
    *,
    entity_type: str | None = None,
    entity_id: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    limit: int = 100,
    offset: int = 0,
) -> tuple[list[AuditEntry], int]:
    """Entries that match, newest first, and how many match in all."""
    query = select(AuditEntry)
    if entity_type:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id:
        query = query.where(AuditEntry.entity_id == entity_id)
    if actor:
        query = query.where(AuditEntry.actor == actor)
    if since:
        query = query.where(AuditEntry.at >= since)
    count = session.scalar(select(func.count()).select_from(query.subquery())) or 0
    entries = session.scalars(query.order_by(AuditEntry.id.desc()).limit(limit).offset(offset))
    return list(entries), count
