"""The data catalog of tables, kept from run events: every COMPLETE event's outputs update
the table's entry (location, Delta version, row count, schema, freshness, producer)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_catalog.assets.models import Asset
from flowforge_catalog.assets.schemas import AssetPublic
from flowforge_shared.contracts.events import output_datasets, run_facet
from flowforge_shared.errors import NotFound


def apply_run_event(session: Session, event: dict[str, Any]) -> None:
    """Upsert the catalog entry of each table a completed job wrote."""
    if event.get("eventType") != "COMPLETE":
        return
    facet = run_facet(event, "flowforge_run")
    when = datetime.fromisoformat(event["eventTime"])
    job_name = event.get("job", {}).get("name", "")
    for output in output_datasets(event):
        if output["layer"] not in ("bronze", "silver", "gold"):
            continue
        asset = session.get(Asset, output["table"])
        if asset is None:
            asset = Asset(table_name=output["table"], columns=[])
            session.add(asset)
        elif asset.version is not None and (output["version"] or -1) < asset.version:
            continue  # an older event arriving late never rolls the catalog back
        asset.layer = output["layer"]
        asset.location = output["location"] or asset.location
        asset.version = output["version"]
        asset.row_count = output["rowCount"]
        asset.columns = output["schema"] or asset.columns
        asset.last_updated = when
        asset.producing_job_id = facet.get("jobId")
        asset.producing_job_name = job_name.split(".", 1)[-1] if job_name else None
        asset.producing_execution_id = facet.get("executionId")
        asset.workflow_id = facet.get("workflowId")
    session.flush()


def to_public(asset: Asset) -> AssetPublic:
    return AssetPublic(
        table=asset.table_name,
        layer=asset.layer,
        location=asset.location,
        version=asset.version,
        row_count=asset.row_count,
        columns=asset.columns,
        last_updated=asset.last_updated,
        producing_job_id=asset.producing_job_id,
        producing_job_name=asset.producing_job_name,
        producing_execution_id=asset.producing_execution_id,
        workflow_id=asset.workflow_id,
    )


def get_all(session: Session, *, layer: str | None = None) -> list[Asset]:
    """Every table, by layer then name."""
    query = select(Asset)
    if layer:
        query = query.where(Asset.layer == layer)
    return list(session.scalars(query.order_by(Asset.layer, Asset.table_name)))


def get_or_raise(session: Session, *, table: str) -> Asset:
    asset = session.get(Asset, table)
    if asset is None:
        raise NotFound(f"no table {table} in the catalog")
    return asset
