"""The first admin token: from FLOWFORGE_ADMIN_TOKEN, or generated into the data dir once."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flowforge_catalog.tokens.models import ApiToken
from flowforge_shared.auth.roles import Role
from flowforge_shared.auth.tokens import generate_token, hash_token
from flowforge_shared.db.engine import Database

ENV_TOKEN_NAME = "admin (FLOWFORGE_ADMIN_TOKEN)"  # noqa: S105 (a name, not a secret)
GENERATED_TOKEN_NAME = "admin (generated)"  # noqa: S105
TOKEN_FILE = "admin-token"  # noqa: S105


def ensure_admin_token(database: Database, configured: str | None, data_dir: Path) -> str | None:
    """Make sure an admin can log in. Returns a newly generated token (to print once), else None.

    A configured token is registered once; it is never re-enabled after an admin revoked it.
    Without one, a token is generated only while no admin token exists at all.
    """
    if configured:
        _insert_if_absent(database, configured, ENV_TOKEN_NAME)
        return None
    with database.session() as session:
        has_admin = session.scalar(
            select(ApiToken.id).where(ApiToken.role == Role.ADMIN.value).limit(1)
        )
    if has_admin:
        return None
    token = generate_token()
    if not _insert_if_absent(database, token, GENERATED_TOKEN_NAME):
        return None
    path = data_dir / TOKEN_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(token + "\n")
    return token


def _insert_if_absent(database: Database, token: str, name: str) -> bool:
    digest = hash_token(token)
    try:
        with database.session() as session:
            if session.scalar(select(ApiToken.id).where(ApiToken.token_hash == digest)):
                return False
            session.add(
                ApiToken(
                    name=name,
                    role=Role.ADMIN.value,
                    token_hash=digest,
                    prefix=token[:8],
                    created_by="bootstrap",
                )
            )
    except IntegrityError:  # another process registered it at the same moment
        return False
    return True
