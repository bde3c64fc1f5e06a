from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request, Response, status
from fastapi.responses import JSONResponse

from flowforge_catalog.files import service, upload
from flowforge_catalog.files.schemas import FilePreview, FilePublic
from flowforge_shared.contracts.base import Page
from flowforge_shared.contracts.jobs import uploaded_file_path
from flowforge_shared.db.base import new_id
from flowforge_shared.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/files", tags=["files"])


@router.post(
    "",
    response_model=FilePublic,
    status_code=status.HTTP_201_CREATED,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {"file": {"type": "string", "format": "binary"}},
                    }
                }
            },
        }
    },
)
async def upload_file(request: Request, principal: PrincipalDep):
    """Upload a CSV (multipart field ``file``), streamed to the landing area."""
    from anyio import to_thread

    settings = request.app.state.settings
    file_id = new_id()
    path = uploaded_file_path(file_id)
    received = await upload.receive(request, settings, path)

    def record():
        with request.app.state.database.session() as session:
            file = service.create(
                session, file_id=file_id, path=path, received=received, actor=principal.actor
            )
            return service.to_public(file)

    return await to_thread.run_sync(record)


@router.get("", response_model=Page[FilePublic])
def list_files(
    session: SessionDep,
    name: Annotated[
        str | None, Query(max_length=255, description="only the versions of this originalName")
    ] = None,
):
    files = service.get_all(session, name=name)
    return Page[FilePublic](data=[service.to_public(f) for f in files], count=len(files))


@router.get("/{file_id}", response_model=FilePublic)
def get_file(file_id: str, session: SessionDep):
    return service.to_public(service.get_or_raise(session, file_id=file_id))


@router.delete("/{file_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_file(
    file_id: str, request: Request, session: SessionDep, principal: PrincipalDep
) -> Response:
    file = service.get_or_raise(session, file_id=file_id)
    service.delete(session, file=file, settings=request.app.state.settings, actor=principal.actor)
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get("/{file_id}/schema")
def get_file_schema(
    file_id: str,
    request: Request,
    session: SessionDep,
    allow_sample_values: Annotated[bool, Query(alias="allowSampleValues")] = False,
) -> dict:
    """The detected dialect and columns (heuristic; OpenAI-assisted when a key is set)."""
    file = service.get_or_raise(session, file_id=file_id)
    if service.kept_detection(file, allow_sample_values) is None:
        session.close()  # detecting can take seconds: no transaction or database turn held
    result = service.detection(
        session,
        file=file,
        settings=request.app.state.settings,
        allow_sample_values=allow_sample_values,
    )
    session.commit()
    # Already JSON (model_dump(mode="json")): sent as is. FastAPI's own encoding of a
    # returned dict walks every value again, seconds for a file of 20,000 columns.
    return JSONResponse(result)


@router.get("/{file_id}/preview", response_model=FilePreview)
def preview_file(
    file_id: str,
    request: Request,
    session: SessionDep,
    rows: Annotated[int, Query(ge=1, le=1000)] = 20,
):
    file = service.get_or_raise(session, file_id=file_id)
    if service.kept_detection(file) is None:
        session.close()  # detecting can take seconds: no transaction or database turn held
    result = service.file_preview(
        session, file=file, settings=request.app.state.settings, rows=rows
    )
    session.commit()
    return result
