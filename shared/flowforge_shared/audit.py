"""The append-only audit log: who changed what, when, with a before/after diff.

Every service records its mutations here in the same transaction as the change itself, so a
change and its audit entry land together or not at all. Secrets are masked before they are
stored; the database refuses UPDATE and DELETE on the table (see migration 0001).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Integer, String
from sqlalchemy.orm import Mapped, Session, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, utcnow
from flowforge_shared.secrets import MASK

SECRET_KEY = re.compile(
    r"(pass(word|wd)?|pwd|secret|token|api[_-]?key|apikey|private[_-]?key|credential)",
    re.IGNORECASE,
)
# key=value secrets inside connection strings (ADO.NET / ODBC / libpq) and URL userinfo.
SECRET_IN_TEXT = re.compile(r"(?i)\b(password|pwd)\s*=\s*(\{[^}]*\}|[^;\s]*)")
SECRET_IN_URL = re.compile(r"(?i)(\w+://[^:/@\s]*:)([^@\s]*)(@)")


class AuditEntry(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(60))
    entity_type: Mapped[str] = mapped_column(String(60))
    entity_id: Mapped[str] = mapped_column(String(64))
    diff: Mapped[dict] = mapped_column(JSON)


def mask_secrets(value: Any) -> Any:
    """A copy of ``value`` with every secret-looking field and embedded password masked."""
    if isinstance(value, dict):
        return {
            key: (MASK if _is_secret_key(key, item) else mask_secrets(item))
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [mask_secrets(item) for item in value]
    if isinstance(value, str):
        masked = SECRET_IN_TEXT.sub(lambda m: f"{m.group(1)}={MASK}", value)
        return SECRET_IN_URL.sub(lambda m: f"{m.group(1)}{MASK}{m.group(3)}", masked)
    return value


def _is_secret_key(key: Any, item: Any) -> bool:
    # A boolean like "hasPassword" or a null is no secret; masking it would hide information.
    return (
        isinstance(key, str)
        and SECRET_KEY.search(key) is not None
        and item is not None
        and not isinstance(item, bool)
    )


def diff(before: dict | None, after: dict | None) -> dict:
    """Top-level fields that changed, each side masked."""
    if before is None or after is None:
        return {"before": mask_secrets(before), "after": mask_secrets(after)}
    keys = [key for key in {**before, **after} if before.get(key) != after.get(key)]
    return {
        "before": mask_secrets({key: before.get(key) for key in keys}),
        "after": mask_secrets({key: after.get(key) for key in keys}),
    }


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    before: dict | None = None,
    after: dict | None = None,
) -> AuditEntry:
    """Append one entry to the session's unit of work (the caller commits)."""
    entry = AuditEntry(
        at=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        diff=diff(before, after),
    )
    session.add(entry)
    return entry
