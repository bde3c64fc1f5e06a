from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from flowforge_lineage.graph import query as service
from flowforge_shared.deps import SessionDep

router = APIRouter(tags=["lineage"])


@router.get("/workflows/{workflow_id}/lineage")
def workflow_lineage(workflow_id: str, session: SessionDep) -> dict[str, Any]:
    """The datasets the workflow's jobs read and wrote (nodes) and its jobs between them
    (edges), as the run events reported them; empty before its first run."""
    return service.workflow_graph(session, workflow_id)


@router.get("/lineage")
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
) -> dict[str, Any]:
    """The graph around one dataset, across workflows, up to ``depth`` edges away; 404 for
    an unknown dataset, 409 naming the candidates when an alias names tables of two lakes."""
    found = service.find_dataset(session, dataset)
    return service.neighbourhood(session, found, direction, depth)
