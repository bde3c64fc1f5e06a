"""API tokens: issue (the secret is returned once), list, revoke, and check one."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.audit import service as audit
from flowforge_catalog.tokens.models import ApiToken
from flowforge_catalog.tokens.schemas import TokenCreate, TokenPublic
from flowforge_shared.auth.roles import Role
from flowforge_shared.auth.tokens import Principal, generate_token, hash_token
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound

ENTITY = "token"
# Writing last_used_at on every request would turn each read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


def snapshot(token: ApiToken) -> dict:
    return TokenPublic.model_validate(token).model_dump(mode="json", by_alias=True)


def get_all(session: Session) -> list[ApiToken]:
    """Every token, newest first."""
    return list(session.scalars(select(ApiToken).order_by(ApiToken.created_at.desc())))


def create(session: Session, *, data: TokenCreate, actor: str) -> tuple[ApiToken, str]:
    """A new token and its secret (which is not stored)."""
    secret = generate_token()
    token = ApiToken(
        name=data.name,
        role=data.role.value,
        token_hash=hash_token(secret),
        prefix=secret[:8],
        created_by=actor,
        created_at=utcnow(),
    )
    session.add(token)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.create",
        entity_type=ENTITY,
        entity_id=token.id,
        after=snapshot(token),
    )
    return token, secret


def revoke(session: Session, *, token_id: str, actor: str) -> ApiToken:
    """Revoke a token: it stops working at once and stays listed."""
    token = session.get(ApiToken, token_id)
    if token is None:
        raise NotFound(f"token {token_id} not found")
    if token.revoked_at is not None:
        raise Conflict(f"token {token.name} is already revoked")
    before = snapshot(token)
    token.revoked_at = utcnow()
    session.flush()
    audit.record(
        session,
        actor=actor,
        action="token.revoke",
        entity_type=ENTITY,
        entity_id=token.id,
        before=before,
        after=snapshot(token),
    )
    return token


def check(session: Session, *, secret: str) -> Principal | None:
    """Who ``secret`` stands for, or None when it is unknown or revoked; notes its use."""
    token = session.scalar(select(ApiToken).where(ApiToken.token_hash == hash_token(secret)))
    if token is None or token.revoked_at is not None:
        return None
    now = utcnow()
    if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
        token.last_used_at = now
    return Principal(token_id=token.id, name=token.name, role=Role(token.role))
