from __future__ import annotations

from datetime import datetime

from pydantic import Field

from flowforge_shared.contracts.base import ApiModel
from flowforge_shared.contracts.jobs import (
    DestinationConfig,
    JobConfig,
    JobType,
    SourceConfig,
    TransformationConfig,
)


class JobCreate(JobConfig):
    """A new job: the job configuration, exactly as templates spell it."""


class JobUpdate(ApiModel):
    """Top-level fields to replace; ``null`` removes an optional section."""

    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: JobType | None = None
    description: str | None = Field(default=None, max_length=4000)
    source_config: SourceConfig | None = None
    destination_config: DestinationConfig | None = None
    transformation_config: TransformationConfig | None = None
    depends_on: list[str] | None = None
    version: int | None = Field(default=None, description="The version you read; 409 if stale")


class JobClone(ApiModel):
    target_workflow_id: str | None = Field(
        default=None, description="Clone into another workflow; default the same one"
    )
    name: str | None = Field(default=None, min_length=1, max_length=200)


class JobPublic(JobConfig):
    """A job as stored: its configuration unchanged, plus identity and bookkeeping."""

    id: str
    workflow_id: str
    position: int
    version: int
    created_at: datetime
    updated_at: datetime


class JobList(ApiModel):
    data: list[JobPublic]
    count: int
