from __future__ import annotations

from typing import Literal

from fastapi import APIRouter

from flowforge_catalog.assets import service
from flowforge_catalog.assets.schemas import AssetPublic
from flowforge_shared.contracts.base import Page
from flowforge_shared.deps import SessionDep

router = APIRouter(prefix="/catalog/assets", tags=["catalog"])


@router.get("", response_model=Page[AssetPublic])
def list_assets(session: SessionDep, layer: Literal["bronze", "silver", "gold"] | None = None):
    assets = service.get_all(session, layer=layer)
    return Page[AssetPublic](data=[service.to_public(a) for a in assets], count=len(assets))


@router.get("/{table}", response_model=AssetPublic)
def get_asset(table: str, session: SessionDep):
    return service.to_public(service.get_or_raise(session, table=table))
