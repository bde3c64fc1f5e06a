"""FlowForge's own OpenLineage facets, typed like the client's generated ones.

Each one's ``_schemaURL`` names its JSON schema, published in ``docs/openlineage/facets/``
(a test checks every facet FlowForge emits against it). The standard facets come from
``openlineage.client.generated``; these carry what only FlowForge knows."""

from __future__ import annotations

from typing import Any

import attr
from openlineage.client.generated.base import DatasetFacet, RunFacet
from openlineage.client.generated.schema_dataset import SchemaDatasetFacetFields

SCHEMA_BASE = "https://raw.githubusercontent.com/flowforge/flowforge/main/docs/openlineage/facets"


def schema_url(name: str) -> str:
    return f"{SCHEMA_BASE}/{name}.json#/$defs/{name}"


@attr.define
class SchemaField(SchemaDatasetFacetFields):
    """A column of the standard ``schema`` facet, with whether it may hold nulls (the
    spec's field object allows more properties)."""

    nullable: bool | None = attr.field(default=None)


@attr.define
class FlowForgeRunFacet(RunFacet):
    """``flowforge_run``: which execution, workflow and job a run belongs to, the attempt,
    the process running it, and the event's own id (events are applied once by it)."""

    executionId: str  # noqa: N815
    eventId: str  # noqa: N815
    workflowId: str | None = attr.field(default=None)  # noqa: N815
    jobId: str | None = attr.field(default=None)  # noqa: N815
    attempt: int | None = attr.field(default=None)
    owner: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeRunFacet")


@attr.define
class FlowForgeProgressRunFacet(RunFacet):
    """``flowforge_progress``: a batch went through (RUNNING events)."""

    rowsRead: int  # noqa: N815
    rowsStaged: int = attr.field(default=0)  # noqa: N815
    batch: int | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeProgressRunFacet")


@attr.define
class FlowForgeErrorRunFacet(RunFacet):
    """``flowforge_error``: why a run failed or is retried — the message for the user, the
    technical detail, and whether another attempt may succeed."""

    message: str
    detail: str | None = attr.field(default=None)
    retryable: bool = attr.field(default=False)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeErrorRunFacet")


@attr.define
class FlowForgeResultRunFacet(RunFacet):
    """``flowforge_result``: what a completed run did."""

    rowsRead: int  # noqa: N815
    rowsWritten: int  # noqa: N815
    quarantined: int = attr.field(default=0)
    alreadyApplied: dict[str, Any] | None = attr.field(default=None)  # noqa: N815
    watermark: dict[str, Any] | None = attr.field(default=None)
    runSequence: int | None = attr.field(default=None)  # noqa: N815
    notes: list[str] | None = attr.field(factory=list)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeResultRunFacet")


@attr.define
class FlowForgeTableDatasetFacet(DatasetFacet):
    """``flowforge_table``: a lake table's layer, table name and storage location."""

    layer: str
    table: str
    location: str | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeTableDatasetFacet")


@attr.define
class FlowForgeFileDatasetFacet(DatasetFacet):
    """``flowforge_file``: the digest and size of the exact bytes a worker read from an input
    file, and its path in the landing area."""

    sha256: str
    size: int
    filePath: str | None = attr.field(default=None)  # noqa: N815

    @staticmethod
    def _get_schema() -> str:
        return schema_url("FlowForgeFileDatasetFacet")


RUN_FACETS: dict[str, type[RunFacet]] = {
    "flowforge_progress": FlowForgeProgressRunFacet,
    "flowforge_error": FlowForgeErrorRunFacet,
    "flowforge_result": FlowForgeResultRunFacet,
}
