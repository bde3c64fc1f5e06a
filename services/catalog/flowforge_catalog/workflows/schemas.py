from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from flowforge_shared.contracts.base import ApiModel, ApiOutModel
from flowforge_shared.contracts.jobs import Identifier

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Text = Annotated[str, StringConstraints(max_length=200)]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class WorkflowStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    SCHEDULED = "scheduled"


class SettableStatus(StrEnum):
    """The statuses a client may set; paused is reached through POST .../pause only, and
    scheduled is derived: an active workflow with an enabled time (cron) trigger."""

    DRAFT = "draft"
    ACTIVE = "active"


def effective_status(status: str, scheduled: bool) -> WorkflowStatus:
    """What a workflow's status reads: ``scheduled`` for an active one that has an enabled
    time trigger (the orchestrator's WORKFLOW_SCHEDULE said so); paused stays paused (pause
    stops every automatic trigger), draft stays draft."""
    if status == WorkflowStatus.ACTIVE and scheduled:
        return WorkflowStatus.SCHEDULED
    return WorkflowStatus(status)


class WorkflowCreate(ApiModel):
    name: Name
    description: str = Field(default="", max_length=10_000)
    team: Text | None = None
    environment: Environment = Environment.DEVELOPMENT
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    status: SettableStatus = SettableStatus.DRAFT
    owner: Text | None = None


class WorkflowUpdate(ApiModel):
    name: Name | None = None
    description: str | None = Field(default=None, max_length=10_000)
    team: Text | None = None
    environment: Environment | None = None
    tags: list[Tag] | None = Field(default=None, max_length=50)
    status: SettableStatus | None = None
    owner: Text | None = None
    version: int | None = Field(default=None, description="The version you read; 409 if stale")


class WorkflowClone(ApiModel):
    name: Name | None = None
    table_names: dict[Identifier, Identifier] = Field(
        default_factory=dict,
        description="New names for the tables the workflow's jobs write (old -> new); the "
        "others get the clone's name as a suffix",
    )


class WorkflowPublic(ApiOutModel):
    id: str
    name: str
    description: str
    team: str | None
    environment: Environment
    tags: list[str]
    status: WorkflowStatus
    owner: str | None
    created_at: datetime
    updated_at: datetime
    version: int
    job_count: int


class WorkflowCloned(WorkflowPublic):
    table_names: dict[str, str] = Field(
        description="The clone's jobs write these tables: original name -> the clone's name"
    )
