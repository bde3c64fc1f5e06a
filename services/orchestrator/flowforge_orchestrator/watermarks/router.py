from __future__ import annotations

from fastapi import APIRouter, Response, status

from flowforge_orchestrator.audit import service as audit
from flowforge_orchestrator.watermarks import service
from flowforge_shared.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/workflows/{workflow_id}/jobs/{job_id}/watermark", tags=["watermarks"])


@router.get("")
def get_watermark(workflow_id: str, job_id: str, session: SessionDep) -> dict:
    """How far the incremental job has read (null before its first successful run)."""
    service.known_or_raise(session, workflow_id=workflow_id, job_id=job_id)
    mark = service.get(session, job_id=job_id)
    if mark is None:
        return {"jobId": job_id, "watermark": None}
    return {
        "jobId": job_id,
        "watermark": service.to_wire(mark),
        "executionId": mark.execution_id,
        "updatedAt": mark.updated_at.isoformat(),
    }


@router.delete("", status_code=status.HTTP_204_NO_CONTENT)
def reset_watermark(
    workflow_id: str, job_id: str, session: SessionDep, principal: PrincipalDep
) -> Response:
    """Forget the watermark: the next run reloads the whole source."""
    mark = service.get(session, job_id=job_id)
    before = service.to_wire(mark) if mark else None
    if service.reset(session, job_id=job_id):
        audit.record(
            session,
            actor=principal.actor,
            action="watermark.reset",
            entity_type="job",
            entity_id=job_id,
            before=before,
        )
    session.commit()
    return Response(status_code=status.HTTP_204_NO_CONTENT)
