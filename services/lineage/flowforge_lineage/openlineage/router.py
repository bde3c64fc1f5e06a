"""``POST /api/v1/lineage``: the OpenLineage HTTP endpoint (the path every OpenLineage HTTP
transport posts to by default), so Airflow's, Spark's or dbt's OpenLineage transport can
point at FlowForge with an editor's API token as its api key."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowforge_lineage.openlineage import service
from flowforge_shared.auth.dependencies import require_editor

PATH = "/v1/lineage"
API_PATH = f"/api{PATH}"

router = APIRouter(tags=["lineage"])

_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "description": "An OpenLineage 2-0-2 RunEvent (or JobEvent, DatasetEvent): "
                "https://openlineage.io/spec/2-0-2/OpenLineage.json; gzip with "
                "Content-Encoding: gzip",
            }
        }
    },
}


@router.post(
    PATH,
    status_code=201,
    dependencies=[Depends(require_editor)],
    openapi_extra={"requestBody": _BODY},
    responses={
        200: {"description": "applied before: nothing changed"},
        202: {"description": "a valid JobEvent or DatasetEvent: accepted, not applied"},
        400: {"description": "the body is not JSON"},
        413: {"description": "larger than FLOWFORGE_OPENLINEAGE_MAX_BYTES"},
        422: {"description": "not a valid OpenLineage event: where and what"},
    },
)
async def receive_event(request: Request) -> JSONResponse:
    """Validate an OpenLineage event against the spec and apply a RunEvent to the lineage
    graph (its datasets join FlowForge's by namespace and name)."""
    settings = request.app.state.settings
    body = await request.body()
    document: Any = service.read(
        body,
        encoding=request.headers.get("content-encoding"),
        max_bytes=settings.openlineage_max_bytes,
    )
    received = await run_in_threadpool(service.receive, request.app.state.database, document)
    return JSONResponse(received.body, status_code=received.status)


def install_body_limit(app: FastAPI) -> None:
    """Refuse an event larger than FLOWFORGE_OPENLINEAGE_MAX_BYTES (413) before anything
    reads it whole: every /api request's body is parsed by the shared dependencies before
    the route runs."""
    app.add_middleware(BodyLimit, path=API_PATH, max_bytes=app.state.settings.openlineage_max_bytes)


class BodyLimit:
    """ASGI middleware: a POST to ``path`` is read up to ``max_bytes`` (Content-Length
    first), then handed on whole; beyond it, 413 without reading further."""

    def __init__(self, app: ASGIApp, *, path: str, max_bytes: int) -> None:
        self.app = app
        self.path = path
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse({"detail": service.too_large(self.max_bytes)}, status_code=413)
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:  # pragma: no cover - a response never receives
    return {"type": "http.disconnect"}
