"""FastAPI dependencies: who is calling, and may they do this.

Every ``/api`` router is mounted behind :func:`authenticate`, which also applies the default
rule (reads need viewer, anything else editor), so no route can forget authentication;
routes that need more add :data:`require_admin`, :data:`require_editor`,
:data:`require_auditor` (the audit log: auditors, editors, admins) or
:data:`require_token_reader` (the token list: admins and auditors).
"""

from __future__ import annotations

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from flowforge_shared.auth.roles import Role
from flowforge_shared.auth.tokens import Principal

READ_METHODS = {"GET", "HEAD", "OPTIONS"}
_bearer = HTTPBearer(auto_error=False, description="An API token: `Authorization: Bearer ff_...`")


async def authenticate(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
) -> Principal:
    """The caller, as ``app.state.token_checker`` knows them (the catalog's own check in a
    process that serves the catalog, else the catalog asked over HTTP).

    Async, so that a token the checker holds in memory (its ``peek``) is answered on the
    event loop; only a check that reads the database or asks the catalog goes to a thread.
    Each hop to AnyIO's thread pool and back was a measurable share of a small request
    (bench/bench_api.py); these dependencies and the role checks below are CPU only."""
    if credentials is None or credentials.scheme.lower() != "bearer" or not credentials.credentials:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "missing bearer token: send 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": "Bearer"},
        )
    checker = request.app.state.token_checker
    peek = getattr(checker, "peek", None)
    principal = peek(credentials.credentials) if peek is not None else None
    if principal is None:
        principal = await run_in_threadpool(checker.check, credentials.credentials)
    if principal is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            "invalid or revoked token",
            headers={"WWW-Authenticate": "Bearer"},
        )
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
    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
        _check(principal, needed)
        return principal

    dependency.__name__ = f"require_{needed.value}"
    return dependency


def _require_one_of(*roles: Role):
    async def dependency(principal: Principal = Depends(authenticate)) -> Principal:
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
