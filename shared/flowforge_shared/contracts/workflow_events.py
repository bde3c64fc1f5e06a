"""What the catalog and the orchestrator tell each other about a workflow's life.

- :data:`WORKFLOW_SCHEDULE` (orchestrator -> catalog, queue ``catalog``): whether the
  workflow has an enabled time (cron) trigger, sent after every committed change of its time
  triggers (create, change, enable, disable, delete; the scheduler disabling one). The
  catalog shows an active workflow with one as ``status: "scheduled"``. ``sequence``
  increases per workflow in the order the changes committed (the orchestrator numbers them
  under a row lock): the catalog applies a message only when its sequence is above the last
  one applied, so a repeated or late message never overwrites a newer one.
- :data:`WORKFLOW_DELETED` (catalog -> orchestrator, queue ``events``): a workflow was
  deleted. The orchestrator disables the dependency triggers that wait for it (saying why,
  audited) and the deleted workflow's own triggers. Idempotent: a repeated message finds
  them disabled already.

In one process :class:`~flowforge_shared.bus.Bus` calls the owner's handler directly after
the sender's commit; served apart they are Celery tasks (``flowforge worker catalog``,
``flowforge worker events``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

WORKFLOW_SCHEDULE = "flowforge.catalog.workflow_schedule"
WORKFLOW_DELETED = "flowforge.orchestrator.workflow_deleted"


class _Message(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class WorkflowSchedule(_Message):
    version: Literal[1] = 1  # of this contract
    workflow_id: str = Field(alias="workflowId", max_length=36)
    sequence: int = Field(ge=1)
    scheduled: bool  # an enabled time trigger exists
    time_triggers: int = Field(alias="timeTriggers", ge=0)  # how many are enabled
    changed_at: datetime = Field(alias="changedAt")


class WorkflowDeleted(_Message):
    version: Literal[1] = 1  # of this contract
    workflow_id: str = Field(alias="workflowId", max_length=36)
    name: str
    actor: str
    deleted_at: datetime = Field(alias="deletedAt")
