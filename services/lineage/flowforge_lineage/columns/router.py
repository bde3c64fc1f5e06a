from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from flowforge_lineage.columns import service
from flowforge_lineage.graph.query import find_dataset
from flowforge_shared.deps import SessionDep
from flowforge_shared.errors import NotFound

router = APIRouter(tags=["lineage"])


@router.get("/lineage/columns")
def column_lineage(
    session: SessionDep,
    dataset: Annotated[str, Query(min_length=3, description="<namespace>:<name>")],
    column: Annotated[str, Query(min_length=1, max_length=255)],
    direction: Annotated[service.Direction, Query()] = "both",
    depth: Annotated[int, Query(ge=1, le=20)] = 5,
) -> dict[str, Any]:
    """The columns one column comes from (upstream) and the columns that come from it
    (downstream: what a change to it affects), across jobs and workflows, each with how
    (identity, rename, derived, aggregation, join, filter, group_by, sort) and the job."""
    found = find_dataset(session, dataset)
    if found is None:
        raise NotFound(f"no dataset {dataset} in the lineage graph")
    known = service.columns_of(session, found)
    if column not in known:
        listed = ", ".join(known) if known else "none recorded yet"
        raise NotFound(f"dataset {dataset} has no column {column!r}; its columns: {listed}")
    return service.column_lineage(session, found, column, direction, depth)
