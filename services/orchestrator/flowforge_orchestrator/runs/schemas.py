from __future__ import annotations

from datetime import datetime

from pydantic import Field

from flowforge_shared.contracts.base import ApiOutModel


class JobError(ApiOutModel):
    message: str
    detail: str | None = None


class JobRunPublic(ApiOutModel):
    job_id: str
    job_run_id: str
    name: str
    status: str
    attempt: int
    started_at: datetime | None
    finished_at: datetime | None
    rows_read: int
    rows_written: int
    outputs: list[dict]
    inputs: list[dict] = Field(
        default_factory=list,
        description="The exact file a CSV job reads, fixed when the run started: an upload's "
        "fileId, fileName, version, sha256, size and filePath (and what the job follows, "
        "for fileName jobs), or a landing filePath with the sha256 and size of the bytes "
        "the worker read",
    )
    quarantined_rows: int
    error: JobError | None
    note: str | None = Field(
        default=None,
        description="What to know besides the status: a lost worker being retried, a "
        "write found already applied by an earlier attempt, a table widened to a safe wider "
        "type, columns a load did not carry (several joined by '; ')",
    )
    last_heartbeat_at: datetime | None = None


class ExecutionPublic(ApiOutModel):
    id: str
    workflow_id: str
    workflow_name: str
    status: str
    trigger: str
    cause: dict | None = None  # what made a trigger fire: {"triggerId", "fireTime", ...}
    requested_by: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_ms: int | None
    trace_id: str | None
    error: str | None
    jobs: list[JobRunPublic]


class LatestRun(ApiOutModel):
    workflow_id: str
    execution_id: str
    status: str
    created_at: datetime
    finished_at: datetime | None


class LatestRunList(ApiOutModel):
    data: list[LatestRun]
