"""FastAPI dependencies: who is calling, and may they do this.

Every ``/api`` router is mounted behind :func:`authenticate`, which also applies the default
rule (reads need viewer, anything else editor), so no route can forget authentication;
routes that need more add :data:`require_admin`, :data:`require_editor`,
:data:`require_auditor` (the audit log: auditors, editors, admins) or
:data:`require_token_reader` (the token list: admins and auditors).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select

from flowforge_shared.auth.models import ApiToken, Role, hash_token
from flowforge_shared.db.base import utcnow

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer ff_...`")
# Writing last_used_at on every request would turn each read into a write; once a minute is enough.
LAST_USED_RESOLUTION = timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    token_id: str
    name: str
    role: Role

    @property
    def actor(self) -> str:
        return self.name


def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    database = request.app.state.database
    with database.session() as session:
        token = session.scalar(
            select(ApiToken).where(ApiToken.token_hash == hash_token(credentials.credentials))
        )
        if token is None or token.revoked_at is not None:
            raise HTTPException(
                status.HTTP_401_UNAUTHORIZED,
                "invalid or revoked token",
                headers={"WWW-Authenticate": "Bearer"},
            )
        now = utcnow()
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            token.last_used_at = now
        principal = Principal(token_id=token.id, name=token.name, role=Role(token.role))
    needed = Role.VIEWER if request.method in READ_METHODS else Role.EDITOR
    _check(principal, needed)
    request.state.principal = principal
    return principal


def _check(principal: Principal, needed: Role) -> None:
    if not principal.role.allows(needed):
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            f"role {principal.role.value} may not do this; it needs {_who(needed)}",
        )


def _who(needed: Role) -> str:
    """The roles that may do it, in words: ``editor or admin``."""
    order = [Role.VIEWER, Role.AUDITOR, Role.EDITOR, Role.ADMIN]
    granted = [role.value for role in order if role.allows(needed)]
    return " or ".join(granted) if len(granted) < len(order) else "any role"


def _require(needed: Role):
    def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        _check(principal, needed)
        return principal

    dependency.__name__ = f"require_{needed.value}"
    return dependency


def _require_one_of(*roles: Role):
    def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        if principal.role not in roles:
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                f"role {principal.role.value} may not do this; it needs "
                + " or ".join(role.value for role in roles),
            )
        return principal

    dependency.__name__ = "require_" + "_or_".join(role.value for role in roles)
    return dependency


require_admin = _require(Role.ADMIN)
require_editor = _require(Role.EDITOR)
require_auditor = _require(Role.AUDITOR)
# Token metadata (names, roles, last use; never a secret) is for those who manage or audit
# access, not for editors.
require_token_reader = _require_one_of(Role.ADMIN, Role.AUDITOR)
