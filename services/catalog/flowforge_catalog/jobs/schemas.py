from __future__ import annotations

from datetime import datetime

from pydantic import Field, model_validator

from flowforge_shared.contracts.base import ApiModel
from flowforge_shared.contracts.incremental import incremental_warnings
from flowforge_shared.contracts.jobs import (
    DestinationConfig,
    Identifier,
    JobConfig,
    JobType,
    SourceConfig,
    TransformationConfig,
)
from flowforge_shared.errors import dotted


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
    table_name: Identifier | None = Field(
        default=None,
        description="The table the copy writes; default the original's name with a _copy "
        "suffix (a shared-append bronze table stays shared)",
    )


class JobWarning(ApiModel):
    """Something the job, as configured, may get wrong; it is saved and runs all the same."""

    field: str = Field(
        description="The field path to change, e.g. sourceConfig.databaseConfig.uniqueKey"
    )
    msg: str


class JobPublic(JobConfig):
    """A job as stored: its configuration unchanged, plus identity and bookkeeping, and
    ``warnings`` (only when there are any), computed from the configuration on every read."""

    id: str
    workflow_id: str
    position: int
    version: int
    created_at: datetime
    updated_at: datetime
    warnings: list[JobWarning] | None = None

    @model_validator(mode="after")
    def _warn(self) -> JobPublic:
        # Computed from the configuration, never stored; set only when there are some, as
        # responses carry only the fields that were set.
        found = incremental_warnings(self)
        if found:
            self.warnings = [JobWarning(field=dotted(path), msg=msg) for path, msg in found]
        return self


class JobList(ApiModel):
    data: list[JobPublic]
    count: int
