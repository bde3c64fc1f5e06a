"""What travels in a job task message: ids and the job's snapshot, never ORM objects."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

INGEST_QUEUE = "ingest"
TRANSFORM_QUEUE = "transform"
EVENTS_QUEUE = "events"
CATALOG_QUEUE = "catalog"
LINEAGE_QUEUE = "lineage"

RUN_INGEST_JOB = "flowforge.ingest.run_job"
RUN_TRANSFORM_JOB = "flowforge.transform.run_job"
RECORD_EVENT = "flowforge.orchestrator.record_event"
RECORD_HEARTBEAT = "flowforge.orchestrator.heartbeat"
DATABASE_OPERATION = "flowforge.ingest.database_operation"
# One key range of a distributed parallel read (docs/connectors.md, "Parallel reads").
READ_RANGE = "flowforge.ingest.read_range"
# A job's COMPLETE run event, passed on by the orchestrator to the catalog (its assets).
CATALOG_RECORD_OUTPUTS = "flowforge.catalog.record_outputs"
# Every run event the orchestrator receives, passed on to the lineage service (its graph).
LINEAGE_RECORD_EVENT = "flowforge.lineage.record_event"
# A header of every job task message: the id of this copy of the dispatch. The orchestrator
# may send one attempt twice (its reaper saw no record of the first send); a worker runs the
# copy that reached a worker first and drops the other (flowforge_runtime.worker).
COPY_HEADER = "flowforge_copy"


class JobTask(BaseModel):
    """The message a worker receives for one job run."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    execution_id: str
    run_sequence: int
    job_run_id: str
    job_id: str
    workflow_id: str
    workflow_name: str
    job: dict[str, Any]  # the job configuration snapshot, wire form
    # The attempt number this delivery starts at: 1, or past an attempt the orchestrator
    # found lost, so events of the lost attempt are told apart from the new one's.
    attempt: int = 1
    # Database jobs: the saved connection (password still encrypted) as the run request
    # carried it, and the watermark the last successful run stored, taken at dispatch.
    connection: dict[str, Any] | None = None
    watermark: dict[str, Any] | None = None

    @property
    def app_id(self) -> str:
        """The Delta application-transaction id of this job's writes."""
        return f"flowforge-job-{self.job_id}"
