"""The run request: what the catalog hands the orchestrator to start a workflow run.

It carries everything the orchestrator needs, as snapshots taken when the run was asked
for — the workflow's name, each job's configuration (with the exact upload a CSV job reads),
the files' records for the run history and a database job's saved connection (its password
still encrypted) — so the orchestrator never reads the catalog's tables.

``executionId`` is chosen by the requester: delivering the same request twice starts one
execution (a broker may deliver a message twice; the sender may resend after a timeout).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

START_RUN = "flowforge.orchestrator.start_run"
START_RUN_VERSION = 1
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


class JobSnapshot(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    job_id: str = Field(alias="jobId")
    name: str
    position: int
    config: dict[str, Any]  # the job's configuration, wire form
    inputs: list[dict[str, Any]] = Field(default_factory=list)  # the files it reads
    connection: dict[str, Any] | None = None  # a database job's saved connection


class StartRun(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    version: Literal[1] = START_RUN_VERSION
    # The execution's OpenLineage run id: a UUID.
    execution_id: str = Field(alias="executionId", pattern=UUID_PATTERN)
    workflow_id: str = Field(alias="workflowId")
    workflow_name: str = Field(alias="workflowName")
    jobs: list[JobSnapshot]
    selected: list[str] | None = None  # run only these jobs (and what they need)
    trigger: str = "manual"
    # What made a trigger fire ({"triggerId", "fireTime", ...}); left off the wire when
    # none, so a consumer of an earlier build still takes a manual run's request.
    cause: dict[str, Any] | None = None
    actor: str
    trace_id: str | None = Field(default=None, alias="traceId")

    def to_wire(self) -> dict[str, Any]:
        wire = self.model_dump(mode="json", by_alias=True)
        if wire.get("cause") is None:
            wire.pop("cause", None)
        return wire
