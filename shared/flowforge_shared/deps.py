"""Annotated dependencies the routers of every service use."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
import anyio.to_thread
from anyio import CancelScope, CapacityLimiter
from fastapi import Depends, Header, Request, Response
from pydantic import BaseModel
from sqlalchemy.orm import Session

from flowforge_shared.auth.dependencies import Principal, authenticate
from flowforge_shared.errors import PreconditionRequired, ServiceUnavailable, Unprocessable

ADMISSION_WAIT = 10.0
"""Seconds a request waits for one of the database's request slots before its 503."""


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session for one request; the router commits, anything uncommitted is rolled back.

    Async: making a session does no I/O, so it is made on the event loop (a sync generator
    cost two hops to the thread pool per request). Closing one that holds a connection
    (rollback, back to the pool) runs in a thread of its own limiter, as FastAPI does for
    a sync dependency's exit: it never waits for the shared pool, whose threads may be
    waiting for the connection it gives back.

    The request first takes one of ``database.request_slots`` (on the event loop, holding
    neither a thread nor a connection), kept until the request ends. A sync route's request
    holds its connection until its answer is validated on a thread again; without the
    slots, once every thread waited for a connection and every connection was held by a
    request waiting for a thread, both waited for the pool's 30 s timeout (150 clients on
    PostgreSQL: 60 s stalls, then 503s). With them no request thread waits for the pool,
    and a request that cannot get a slot within
    :data:`ADMISSION_WAIT` seconds is answered 503 with ``Retry-After``. On SQLite (an
    unbounded pool) the slots are fewer, for the GIL's sake
    (:data:`~flowforge_shared.db.engine.SQLITE_REQUEST_SLOTS`), each given back as soon as
    the route closes its session (``database.slot_until_closed``)."""
    database = request.app.state.database
    slots = _slots_of(database)
    given_back = False

    def give_back() -> None:  # on the event loop: the slot is an AnyIO semaphore of it
        nonlocal given_back
        if slots is not None and not given_back:
            given_back = True
            slots.release()

    if slots is not None:
        admitted = False
        with anyio.move_on_after(ADMISSION_WAIT):
            await slots.acquire()
            admitted = True
        if not admitted:
            raise ServiceUnavailable(
                f"the server is busy: {database.request_slots} requests are using the "
                f"database and this one waited {ADMISSION_WAIT:.0f} s for its turn; send it "
                "again in a moment",
                retry_after=1,
            )
    try:
        session = database.sessionmaker()
        if slots is not None and getattr(database, "slot_until_closed", False):
            loop = asyncio.get_running_loop()
            session.on_close = lambda: loop.call_soon_threadsafe(give_back)
        try:
            yield session
        finally:
            session.on_close = None
            if session.in_transaction():
                with CancelScope(shield=True):  # closed even when the client went away
                    await anyio.to_thread.run_sync(session.close, limiter=CapacityLimiter(1))
            else:
                session.close()
    finally:
        give_back()


def _slots_of(database) -> anyio.Semaphore | None:
    """The database's request slots, made in the serving event loop at first use."""
    if getattr(database, "request_slots", None) is None:
        return None
    slots = getattr(database, "_request_semaphore", None)
    if slots is None:
        slots = database._request_semaphore = anyio.Semaphore(database.request_slots)
    return slots


def json_answer(
    model: BaseModel,
    session: Session | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> Response:
    """A sync route's answer written on its own thread: ``session`` closed first (its
    connection back to the pool here, not on another hop to the thread pool when the
    request ends), then ``model`` (built, so validated, by the route; keep the route's
    ``response_model`` for the schema) as JSON by alias, as FastAPI writes it. Returning
    the model instead costs two more hops per request: FastAPI validates a sync route's
    answer again on another thread, and the session is closed on a third (bench/README.md,
    bench_api)."""
    if session is not None:
        session.close()
    return Response(
        model.model_dump_json(by_alias=True),
        status_code=status_code,
        headers=headers,
        media_type="application/json",
    )


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
