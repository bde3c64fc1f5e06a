"""Annotated dependencies the routers of every service use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from flowforge_shared.auth.dependencies import Principal, authenticate
from flowforge_shared.errors import PreconditionRequired, Unprocessable


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request; the router commits, anything uncommitted is rolled back.

    Async: making a session does no I/O, so it is made on the event loop (a sync generator
    cost two hops to the thread pool per request). Closing one that holds a connection
    (rollback, back to the pool) runs in a thread of its own limiter, as FastAPI does for
    a sync dependency's exit: it never waits for the shared pool, whose threads may be
    waiting for the connection it gives back."""
    session = request.app.state.database.sessionmaker()
    try:
        yield session
    finally:
        if session.in_transaction():
            with CancelScope(shield=True):  # closed even when the client went away
                await anyio.to_thread.run_sync(session.close, limiter=CapacityLimiter(1))
        else:
            session.close()


def if_match_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """The version named by an ``If-Match`` ETag (``"3"``, ``W/"3"`` or ``3``)."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise Unprocessable([(("If-Match",), 'If-Match must be an ETag like "3"')])
    return int(value)


SessionDep = Annotated[Session, Depends(get_session)]
PrincipalDep = Annotated[Principal, Depends(authenticate)]
IfMatchDep = Annotated[int | None, Depends(if_match_version)]


def etag(version: int) -> str:
    return f'"{version}"'


def expected_version(body_version: int | None, header_version: int | None) -> int:
    """The version a client says it read, from the body or If-Match; a change must name one
    (428 otherwise), so that it can never overwrite, unseen, a change made since."""
    if body_version is not None and header_version is not None and body_version != header_version:
        raise Unprocessable([(("version",), "the body version and If-Match disagree")])
    version = body_version if body_version is not None else header_version
    if version is None:
        raise PreconditionRequired(
            "a change must say which version of the resource you read: send "
            '"version": N in the body (the version field of the GET answer) or the header '
            'If-Match: "N" (its ETag); without it, a change someone made since you read '
            "it could be overwritten unseen"
        )
    return version
