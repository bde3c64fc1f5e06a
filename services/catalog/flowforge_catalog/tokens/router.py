from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response, status

from flowforge_catalog.tokens import service
from flowforge_catalog.tokens.schemas import TokenCreate, TokenCreated, TokenPublic, TokenSelf
from flowforge_shared.auth import require_admin, require_token_reader
from flowforge_shared.contracts.base import Page
from flowforge_shared.contracts.tokens import Introspection, IntrospectionRequest
from flowforge_shared.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/tokens", tags=["tokens"])


@router.get("", response_model=Page[TokenPublic], dependencies=[Depends(require_token_reader)])
def list_tokens(session: SessionDep):
    tokens = service.get_all(session)
    return Page[TokenPublic](
        data=[TokenPublic.model_validate(token) for token in tokens], count=len(tokens)
    )


@router.get("/me", response_model=TokenSelf)
def who_am_i(principal: PrincipalDep):
    """The calling token's name and role, for any role: a client (the web UI) shows what the
    role may do. The API still decides every request."""
    return TokenSelf(token_id=principal.token_id, name=principal.name, role=principal.role)


@router.post(
    "",
    response_model=TokenCreated,
    status_code=status.HTTP_201_CREATED,
    dependencies=[Depends(require_admin)],
)
def create_token(data: TokenCreate, session: SessionDep, principal: PrincipalDep):
    token, secret = service.create(session, data=data, actor=principal.actor)
    session.commit()
    return TokenCreated.model_validate({**service.snapshot(token), "token": secret})


@router.delete(
    "/{token_id}", status_code=status.HTTP_204_NO_CONTENT, dependencies=[Depends(require_admin)]
)
def revoke_token(
    token_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    token = service.revoke(session, token_id=token_id, actor=principal.actor)
    session.commit()
    # The principal this process keeps for the token (checker.py) goes too: it fails at once.
    forget = getattr(request.app.state.token_checker, "forget", None)
    if forget is not None:
        forget(token.token_hash)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


# Mounted by the app under /api behind the service secret (require_service), not a user token:
# the other services ask here who a bearer token stands for (flowforge_shared.contracts.tokens).
internal_router = APIRouter(prefix="/internal/tokens", tags=["internal"])


@internal_router.post("/introspect", response_model=Introspection)
def introspect(data: IntrospectionRequest, session: SessionDep):
    principal = service.check(session, secret=data.token)
    session.commit()  # its last use
    if principal is None:
        return Introspection(active=False)
    return Introspection(
        active=True, token_id=principal.token_id, name=principal.name, role=principal.role
    )
