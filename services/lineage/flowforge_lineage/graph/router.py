from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from flowforge_lineage.graph import neighbourhood as around
from flowforge_lineage.graph import query as service
from flowforge_shared.deps import SessionDep

router = APIRouter(tags=["lineage"])

# The graphs are plain JSON data already: answered as is, not validated again against the
# declared models (on a graph of thousands of nodes that took longer than the query). The
# models say in the OpenAPI document what the answers hold.
GraphModel = dict[str, Any]


class NeighbourhoodModel(BaseModel):
    """The graph around one dataset, at most ``limit`` datasets, the nearest first."""

    root: str = Field(description="the id (<namespace>:<name>) of the dataset asked for")
    nodes: list[dict[str, Any]] = Field(
        description="datasets, nearest first: by `depth` (edges from the root, 0 for the "
        "root), then by id; each as in the workflow graph plus `depth`"
    )
    edges: list[dict[str, Any]] = Field(
        description="the walked edges between returned nodes (never to a node left out)"
    )
    truncated: bool = Field(
        description="true when more datasets lie within `depth` than `limit`: the answer "
        "holds the `limit` nearest"
    )
    limit: int = Field(description="the most nodes this answer could hold (the `limit` asked)")
    omittedNodes: int = Field(
        description="datasets found and left out (0 unless truncated). The walk stops at "
        "the level where it passes `limit`, so at least this many more lie within `depth`"
    )
    completeDepth: int = Field(
        description="every dataset up to this many edges away is in the answer (`depth` "
        "unless truncated)"
    )


@router.get("/workflows/{workflow_id}/lineage", response_model=GraphModel)
def workflow_lineage(workflow_id: str, session: SessionDep) -> JSONResponse:
    """The datasets the workflow's jobs read and wrote (nodes) and its jobs between them
    (edges), as the run events reported them; empty before its first run."""
    return JSONResponse(service.workflow_graph(session, workflow_id))


@router.get("/lineage", response_model=NeighbourhoodModel)
def dataset_lineage(
    session: SessionDep,
    dataset: Annotated[
        str,
        Query(
            description="<namespace>:<name> (e.g. file:/data/lake/silver/customers or "
            "postgres://db:5432:bank.public.accounts), or a lake table's alias "
            "(silver.customers, flowforge:silver.customers)"
        ),
    ],
    direction: Annotated[around.Direction, Query()] = "both",
    depth: Annotated[int, Query(ge=1, le=20, description="edges away, 1 to 20")] = 5,
    limit: Annotated[
        int,
        Query(
            ge=1,
            le=around.MAX_LIMIT,
            description=f"the most datasets (nodes) to return, 1 to {around.MAX_LIMIT:,}; "
            "beyond it the nearest are returned and `truncated` is true",
        ),
    ] = around.DEFAULT_LIMIT,
) -> JSONResponse:
    """The graph around one dataset, across workflows, up to ``depth`` edges away and at
    most ``limit`` datasets, the nearest first; ``truncated``, ``omittedNodes`` and
    ``completeDepth`` say what was left out. 404 for an unknown dataset, 409 naming the
    candidates when an alias names tables of two lakes, 422 for a parameter out of range."""
    found = service.find_dataset(session, dataset)
    return JSONResponse(around.neighbourhood(session, found, direction, depth, limit))
