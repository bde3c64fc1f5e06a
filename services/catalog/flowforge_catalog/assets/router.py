from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import Field

from flowforge_catalog.assets import lifecycle, pii, service
from flowforge_catalog.assets.schemas import AssetPublic
from flowforge_catalog.assets.writers import writers_of
from flowforge_shared.auth import require_admin
from flowforge_shared.contracts.base import ApiModel, Page
from flowforge_shared.deps import PrincipalDep, SessionDep
from flowforge_shared.lake import Lake
from flowforge_shared.maintenance import min_vacuum_hours

router = APIRouter(prefix="/catalog/assets", tags=["catalog"])
ADMIN = {"dependencies": [Depends(require_admin)]}


class Confirm(ApiModel):
    confirm: str = Field(description="The table's name, typed again")


class Restore(Confirm):
    version: int = Field(ge=0, description="The Delta version to go back to")


class Vacuum(ApiModel):
    retention_hours: int = Field(
        default=168, ge=1, le=100_000, description="Keep files removed less than this ago"
    )


class Maintenance(ApiModel):
    compact: bool = False
    checkpoint: bool = False
    vacuum: Vacuum | None = None


@router.get("", response_model=Page[AssetPublic])
def list_assets(session: SessionDep, layer: Literal["bronze", "silver", "gold"] | None = None):
    assets = service.get_all(session, layer=layer)
    return Page[AssetPublic](data=[service.to_public(a) for a in assets], count=len(assets))


@router.get("/{table}", response_model=AssetPublic)
def get_asset(table: str, session: SessionDep):
    return service.to_public(service.get_or_raise(session, table=table))


@router.get("/{table}/history")
def table_history(
    table: str,
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> dict[str, Any]:
    """The table's Delta commits, newest first."""
    layers = lifecycle.layers_of(session, table)
    session.close()  # the lake's log can be slow to read (S3): no database turn held
    entries = lifecycle.history(_lake(request), table, layers, limit)
    return {"data": entries, "count": len(entries)}


@router.get("/{table}/sample")
def table_sample(
    table: str,
    request: Request,
    session: SessionDep,
    principal: PrincipalDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """The first rows of the table's current version (the web UI's catalog page); columns
    that identify a person (``pii``) are masked for viewers."""
    layers = lifecycle.layers_of(session, table)
    session.close()  # the lake can be slow to read (S3): no database turn held meanwhile
    return lifecycle.sample(
        _lake(request), table, layers, limit, reveal_pii=pii.may_see_pii(principal.role)
    )


@router.post("/{table}/restore", **ADMIN)
def restore_table(
    table: str, data: Restore, request: Request, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    lifecycle.confirm(table, data.confirm)
    result = lifecycle.restore(
        session,
        _lake(request),
        table,
        version=data.version,
        actor=principal.actor,
        writers=writers_of(request.app),
    )
    session.commit()
    return result


@router.post("/{table}/reset", **ADMIN)
def reset_table(
    table: str, data: Confirm, request: Request, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    lifecycle.confirm(table, data.confirm)
    result = lifecycle.reset(
        session, _lake(request), table, actor=principal.actor, writers=writers_of(request.app)
    )
    session.commit()
    return result


@router.post("/{table}/drop", **ADMIN)
def drop_table(
    table: str, data: Confirm, request: Request, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    lifecycle.confirm(table, data.confirm)
    result = lifecycle.drop(
        session, _lake(request), table, actor=principal.actor, writers=writers_of(request.app)
    )
    session.commit()
    return result


@router.post("/{table}/maintenance", **ADMIN)
def maintain_table(
    table: str, data: Maintenance, request: Request, session: SessionDep, principal: PrincipalDep
) -> dict[str, Any]:
    settings = request.app.state.settings
    result = lifecycle.maintain(
        session,
        _lake(request),
        table,
        compact=data.compact,
        checkpoint=data.checkpoint,
        vacuum_hours=data.vacuum.retention_hours if data.vacuum else None,
        min_vacuum_hours=min_vacuum_hours(settings),
        actor=principal.actor,
        writers=writers_of(request.app),
    )
    session.commit()
    return result


def _lake(request: Request) -> Lake:
    return Lake.from_settings(request.app.state.settings)
