"""Annotated dependencies the routers of every service use."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Header, Request
from sqlalchemy.orm import Session

from flowforge_shared.auth.dependencies import Principal, authenticate
from flowforge_shared.errors import Unprocessable


def get_session(request: Request) -> Iterator[Session]:
    """A session for one request; the router commits, anything uncommitted is rolled back."""
    session = request.app.state.database.sessionmaker()
    try:
        yield session
    finally:
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


def expected_version(body_version: int | None, header_version: int | None) -> int | None:
    """The version a client says it read, from the body or If-Match."""
    if body_version is not None and header_version is not None and body_version != header_version:
        raise Unprocessable([(("version",), "the body version and If-Match disagree")])
    return body_version if body_version is not None else header_version
