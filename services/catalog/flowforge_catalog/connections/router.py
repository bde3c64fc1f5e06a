from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from pydantic import ValidationError

from flowforge_catalog.connections import service
from flowforge_catalog.connections.models import Connection
from flowforge_catalog.connections.schemas import (
    ConnectionCreate,
    ConnectionFields,
    ConnectionPublic,
    ConnectionUpdate,
    TestConnectionRequest,
    TestConnectionResult,
)
from flowforge_shared.contracts import connection_forms
from flowforge_shared.contracts.base import Page
from flowforge_shared.deps import IfMatchDep, PrincipalDep, SessionDep, etag, expected_version
from flowforge_shared.errors import ApiError, Unprocessable
from flowforge_shared.operations import QUERY_FAILED, REQUEST_FAILED

router = APIRouter(tags=["connections"])


class SourceUnavailable(ApiError):
    status_code = 502


@router.get("/connection-types")
def connection_types() -> dict:
    """Each database type's sign-in methods and options: the connection form's fields."""
    forms = [form.to_wire() for form in connection_forms.FORMS.values()]
    return {"data": forms, "count": len(forms)}


@router.get("/connections", response_model=Page[ConnectionPublic])
def list_connections(session: SessionDep):
    connections = service.get_all(session)
    return Page[ConnectionPublic](
        data=[service.to_public(c) for c in connections], count=len(connections)
    )


@router.post("/connections", response_model=ConnectionPublic, status_code=status.HTTP_201_CREATED)
def create_connection(
    data: ConnectionCreate, request: Request, session: SessionDep, principal: PrincipalDep
):
    connection = service.create(
        session,
        data=data,
        settings=request.app.state.settings,
        box=request.app.state.secret_box,
        actor=principal.actor,
    )
    session.commit()
    return service.to_public(connection)


@router.get("/connections/{connection_id}", response_model=ConnectionPublic)
def get_connection(connection_id: str, session: SessionDep, response: Response):
    connection = service.get_or_raise(session, connection_id=connection_id)
    response.headers["ETag"] = etag(connection.version)
    return service.to_public(connection)


@router.patch("/connections/{connection_id}", response_model=ConnectionPublic)
def update_connection(
    connection_id: str,
    data: ConnectionUpdate,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    if_match: IfMatchDep,
):
    connection = service.get_or_raise(session, connection_id=connection_id)
    service.update(
        session,
        connection=connection,
        data=data,
        expected_version=expected_version(data.version, if_match),
        settings=request.app.state.settings,
        box=request.app.state.secret_box,
        actor=principal.actor,
    )
    session.commit()
    return service.to_public(connection)


@router.delete("/connections/{connection_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_connection(connection_id: str, session: SessionDep, principal: PrincipalDep) -> Response:
    connection = service.get_or_raise(session, connection_id=connection_id)
    service.delete(session, connection=connection, actor=principal.actor)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/test-connection/database", response_model=TestConnectionResult)
def test_connection(data: TestConnectionRequest, request: Request, session: SessionDep):
    """Connect through an ingest worker: success with the server version and tables, or a
    message that tells unreachable host, refused port, TLS, login and unknown database apart.

    The body is ``{"connectionId": "<id>"}`` (a saved connection), ``{"connection": {"type",
    "host", ...}}``, or the same fields at the top level, as ``POST /api/connections`` takes
    them (a ``name`` is ignored)."""
    connection = _tested_connection(data)
    if data.connection_id:
        payload = service.payload(service.get_or_raise(session, connection_id=data.connection_id))
    else:
        fields = service.resolve_fields(
            connection, request.app.state.settings, request.app.state.secret_box
        )
        # An unsaved connection: checked and encrypted exactly as a saved one would be.
        payload = service.payload(Connection(type=connection.type, **fields))
    session.close()
    answer = request.app.state.operations.call("test", payload, {})
    return TestConnectionResult.model_validate(answer)


TEST_SHAPES = (
    'give one of: {"connectionId": "<id>"} (a saved connection), {"connection": {"type": ..., '
    '"host": ..., ...}} (fields not saved), or those fields at the top level as POST '
    "/api/connections takes them"
)


def _tested_connection(data: TestConnectionRequest) -> ConnectionFields | None:
    """The unsaved connection to test (None for a saved one): ``connection``, or the
    top-level fields checked as ``connection`` would be, each problem named by its field."""
    flat = {key: value for key, value in (data.model_extra or {}).items() if key != "name"}
    given = [
        shape
        for shape, present in (
            ("connectionId", bool(data.connection_id)),
            ("connection", data.connection is not None),
            (f"top-level fields ({', '.join(sorted(flat))})", bool(flat)),
        )
        if present
    ]
    if not given:
        raise Unprocessable([((), f"nothing to test: {TEST_SHAPES}")])
    if len(given) > 1:
        raise Unprocessable([((), f"{' and '.join(given)} cannot go together; {TEST_SHAPES}")])
    if not flat:
        return data.connection
    try:
        return ConnectionFields.model_validate(flat)
    except ValidationError as error:
        raise Unprocessable(
            [(tuple(problem["loc"]), problem["msg"]) for problem in error.errors()]
        ) from None


def _operate(
    request: Request,
    session,
    connection_id: str,
    operation: str,
    args: dict,
    *,
    about: str | None = None,
) -> dict:
    """The worker's answer; a failure to connect is 502 (the source is unavailable), the
    database refusing the request (no such table) or a bad request is 422 naming the query
    parameter ``about``."""
    payload = service.payload(service.get_or_raise(session, connection_id=connection_id))
    session.close()
    answer = request.app.state.operations.call(operation, payload, args)
    if answer.get("success", False):
        return answer["result"]
    message = answer.get("message", "the database operation failed")
    if answer.get("kind") in (QUERY_FAILED, REQUEST_FAILED):
        raise Unprocessable([((about,) if about else (), message)], location="query")
    raise SourceUnavailable(message)


ConnectionId = Annotated[str, Query(alias="connectionId", min_length=1, max_length=64)]


@router.get("/database/tables")
def database_tables(
    request: Request,
    session: SessionDep,
    connection_id: ConnectionId,
    schema: Annotated[str | None, Query(max_length=128)] = None,
) -> dict:
    """Tables and views with estimated row counts."""
    return _operate(request, session, connection_id, "tables", {"schema": schema})


@router.get("/database/schema")
def database_schema(
    request: Request,
    session: SessionDep,
    connection_id: ConnectionId,
    table: Annotated[str, Query(min_length=1, max_length=256)],
    schema: Annotated[str | None, Query(max_length=128)] = None,
) -> dict:
    """Columns: name, source type, Arrow type, nullable, primary key, length/precision/scale."""
    return _operate(
        request,
        session,
        connection_id,
        "schema",
        {"schema": schema, "table": table},
        about="table",
    )


@router.get("/database/preview")
def database_preview(
    request: Request,
    session: SessionDep,
    connection_id: ConnectionId,
    table: Annotated[str, Query(min_length=1, max_length=256)],
    schema: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 10,
) -> dict:
    """The first rows, capped in rows and bytes."""
    return _operate(
        request,
        session,
        connection_id,
        "preview",
        {"schema": schema, "table": table, "limit": limit},
        about="table",
    )


@router.get("/database/procedures")
def database_procedures(request: Request, session: SessionDep, connection_id: ConnectionId) -> dict:
    """Stored procedures and their parameters."""
    return _operate(request, session, connection_id, "procedures", {})
