from __future__ import annotations

from datetime import datetime

from flowforge_shared.contracts.base import ApiOutModel


class AssetColumn(ApiOutModel):
    name: str
    type: str
    nullable: bool


class AssetPublic(ApiOutModel):
    table: str
    layer: str
    location: str | None
    version: int | None
    row_count: int | None
    columns: list[AssetColumn]
    last_updated: datetime
    producing_job_id: str | None
    producing_job_name: str | None
    producing_execution_id: str | None
    workflow_id: str | None
