from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from flowforge_lineage.graph import query as service
from flowforge_shared.deps import SessionDep

router = APIRouter(tags=["lineage"])

# The graphs are plain JSON data already: answered as is, not validated again against the
# declared model (on a graph of thousands of nodes that took longer than the query).
GraphModel = dict[str, Any]


@router.get("/workflows/{workflow_id}/lineage", response_model=GraphModel)
def workflow_lineage(workflow_id: str, session: SessionDep) -> JSONResponse:
    """The datasets the workflow's jobs read and wrote (nodes) and its jobs between them
    (edges), as the run events reported them; empty before its first run."""
    return JSONResponse(service.workflow_graph(session, workflow_id))


@router.get("/lineage", response_model=GraphModel)
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
    direction: Annotated[service.Direction, Query()] = "both",
    depth: Annotated[int, Query(ge=1, le=20)] = 5,
) -> JSONResponse:
    """The graph around one dataset, across workflows, up to ``depth`` edges away; 404 for
    an unknown dataset, 409 naming the candidates when an alias names tables of two lakes."""
    found = service.find_dataset(session, dataset)
    return JSONResponse(service.neighbourhood(session, found, direction, depth))
