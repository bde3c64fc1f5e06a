"""API tokens: issue (the secret is returned once), list, revoke."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.tokens.schemas import TokenCreate, TokenPublic
from flowforge_shared import audit
from flowforge_shared.auth.models import ApiToken, generate_token, hash_token
from flowforge_shared.db.base import utcnow
from flowforge_shared.errors import Conflict, NotFound

ENTITY = "token"


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
