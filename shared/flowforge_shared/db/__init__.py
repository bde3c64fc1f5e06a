"""Database plumbing shared by every service: the declarative base, engine and sessions,
and the Alembic migrations that build the whole schema on SQLite and PostgreSQL alike."""

from flowforge_shared.db.base import Base, new_id, utcnow
from flowforge_shared.db.engine import Database

__all__ = ["Base", "Database", "new_id", "utcnow"]
