from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import Field

from flowforge_catalog.connections.schemas import ConnectionFields
from flowforge_catalog.workflows.schemas import Environment, Name, Tag
from flowforge_shared.contracts.base import ApiModel, ApiOutModel
from flowforge_shared.contracts.jobs import Identifier
from flowforge_shared.contracts.landing import LandingPath


class TemplateJobBrief(ApiOutModel):
    """A job the template creates, as the gallery's card lists it."""

    key: str
    name: str
    type: str
    layer: str | None = Field(
        description="bronze, silver or gold: the layer of the table it writes"
    )
    writes: str | None


Complexity = Literal["simple", "moderate", "advanced"]


class TemplateBase(ApiOutModel):
    id: str
    name: str
    description: str
    category: str
    industry_vertical: str | None
    use_case: str | None
    template_version: int
    thumbnail_url: str | None
    demo_data_url: str | None
    documentation_url: str | None
    tags: list[str]
    is_active: bool
    is_builtin: bool
    created_at: datetime
    updated_at: datetime
    version: int = Field(
        description="changes with every change of the template; send it (or If-Match) with a PATCH"
    )


class TemplateSummary(TemplateBase):
    complexity: Complexity = Field(
        description="derived from the definition (docs/templates): jobs, sources to give, joins "
        "and aggregations"
    )
    estimated_minutes: int = Field(
        description="minutes to set it up and see a first run, derived from the definition"
    )
    creates: list[TemplateJobBrief] = Field(description="the jobs an instantiation creates")


class TemplateJob(ApiOutModel):
    key: str
    name: str
    type: str
    reads: list[str]
    writes: str | None
    config: dict[str, Any]


class TemplateDetail(TemplateSummary):
    jobs: list[TemplateJob]
    parameters: dict[str, Any]
    workflow: dict[str, Any]


class ConnectionChoice(ApiModel):
    """A saved connection, or inline fields that become a saved, encrypted connection."""

    connection_id: str | None = None
    connection: ConnectionFields | None = None
    name: str | None = Field(default=None, max_length=200)


class FileChoice(ApiModel):
    """One of: an upload (``fileId``), an upload name whose newest (or given) version each run
    reads (``fileName`` + ``fileVersion``), or a landing-area path (``filePath``)."""

    file_id: str | None = None
    file_path: LandingPath | None = Field(default=None, max_length=1024)
    file_name: str | None = Field(default=None, min_length=1, max_length=255)
    file_version: Literal["latest"] | Annotated[int, Field(ge=1)] = "latest"


class Instantiate(ApiModel):
    workflow_name: Name | None = None
    team: str | None = Field(default=None, max_length=200)
    environment: Environment | None = None
    tags: list[Tag] | None = None
    connections: dict[str, ConnectionChoice] = Field(default_factory=dict)
    files: dict[str, FileChoice] = Field(default_factory=dict)
    table_names: dict[Identifier, Identifier] = Field(default_factory=dict)


class TemplateFromWorkflow(ApiModel):
    from_workflow_id: str
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    name: Name
    description: str = Field(default="", max_length=10_000)
    category: str = Field(min_length=1, max_length=40)
    industry_vertical: str | None = None
    use_case: str | None = None
    tags: list[Tag] = Field(default_factory=list)


class TemplateUpdate(ApiModel):
    is_active: bool
    version: int | None = Field(default=None, ge=0, le=2**63 - 1)
