"""API tokens: stored as SHA-256 hashes, shown once at creation."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from flowforge_shared.db.base import Base, UTCDateTime, new_id, utcnow

TOKEN_PREFIX = "ff_"  # noqa: S105 (a prefix, not a secret)


class Role(StrEnum):
    """What a token may do. ``admin``: everything, tokens included; ``editor``: create,
    change, run, and read the audit log; ``auditor``: read everything, the audit log and the
    token list included, change nothing; ``viewer``: read everything but the audit log and
    the token list."""

    ADMIN = "admin"
    EDITOR = "editor"
    AUDITOR = "auditor"
    VIEWER = "viewer"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what a route needing ``needed`` does."""
        return self in _GRANTED_BY[needed]


# For each role a route can need, the roles that satisfy it. Not a ladder: an auditor reads
# what only admins and editors read, yet changes nothing.
_GRANTED_BY: dict[Role, frozenset[Role]] = {
    Role.VIEWER: frozenset(Role),
    Role.AUDITOR: frozenset({Role.AUDITOR, Role.EDITOR, Role.ADMIN}),
    Role.EDITOR: frozenset({Role.EDITOR, Role.ADMIN}),
    Role.ADMIN: frozenset({Role.ADMIN}),
}


class ApiToken(Base):
    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(20))
    # Tokens carry 256 bits of randomness, so a plain SHA-256 is enough (no password stretching).
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    prefix: Mapped[str] = mapped_column(String(12))
    created_by: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


def generate_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
