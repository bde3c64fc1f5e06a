"""What the orchestrator's triggers ask the catalog (it owns the workflows).

- :data:`REQUEST_RUN` (message, queue ``catalog``): a trigger fired; the catalog takes the
  workflow's snapshot exactly as for a manual run and hands the orchestrator a ``StartRun``
  (:mod:`flowforge_shared.contracts.runs`) under the execution id the scheduler chose, so
  a request delivered twice starts one execution. A paused or deleted workflow is refused
  (in one process, at once: ``Conflict`` / ``NotFound``). An event trigger's request names
  the landing file each receiving CSV job reads (``files``: job id -> ``filePath``); the
  snapshot gives that job ``fileConfig.filePath`` = that file.
- :data:`WORKFLOW_INFO` (question): does the workflow exist, what is its name and status,
  and which of its jobs read a CSV file (an event trigger hands one of them its file).
  Answered directly where the catalog is served by this process, else by
  ``GET /api/internal/workflows/{workflowId}`` on the catalog with the service secret.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from flowforge_shared.contracts.base import ApiOutModel
from flowforge_shared.contracts.runs import UUID_PATTERN

REQUEST_RUN = "flowforge.catalog.request_run"
WORKFLOW_INFO = "flowforge.catalog.workflow_info"
WORKFLOW_INFO_PATH = "/api/internal/workflows/{workflow_id}"


class RunRequested(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: Literal[1] = 1
    execution_id: str = Field(alias="executionId", pattern=UUID_PATTERN)
    workflow_id: str = Field(alias="workflowId")
    trigger: str  # the trigger's kind: cron, dependency, event, webhook
    trigger_id: str = Field(alias="triggerId")
    cause: dict[str, Any] = Field(default_factory=dict)  # e.g. {"fireTime": ...}
    actor: str
    # An event firing: job id -> the landing path (relative) that job reads in this run.
    files: dict[str, str] | None = None

    def to_wire(self) -> dict[str, Any]:
        wire = self.model_dump(mode="json", by_alias=True)
        if wire["files"] is None:  # a reader of the first shape of this message still reads it
            del wire["files"]
        return wire


class CsvJob(ApiOutModel):
    """A job of the workflow that reads a CSV file (``sourceConfig.type`` csv)."""

    id: str
    name: str


class WorkflowInfo(ApiOutModel):
    id: str
    name: str
    status: str
    csv_jobs: list[CsvJob] = Field(default_factory=list)
