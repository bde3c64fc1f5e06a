"""Run events in the OpenLineage RunEvent shape, the one stream the orchestrator, the data
catalog and the lineage service all consume unchanged.

A job run is an OpenLineage run (``run.runId`` = the job run id) whose ``parent`` facet names
the execution; datasets are ``(namespace, name)`` with ``name = "<layer>.<table>"``. FlowForge's
own details ride in facets prefixed ``flowforge_``:

- ``flowforge_run``: executionId, jobId, attempt, owner (the process running the attempt),
  eventId (on every event)
- ``flowforge_progress``: rowsRead, rowsStaged (in data files, not committed), batch (RUNNING
  events: a batch went through)
- ``flowforge_error``: message (for the user), detail (technical), retryable (FAIL events)
- ``flowforge_file`` (a dataset facet of an input file): sha256 and size of the exact bytes
  the worker read, computed while it copied them (RUNNING, COMPLETE and FAIL events once the
  file was read)
- ``flowforge_result``: rowsRead, rowsWritten (committed), quarantined, alreadyApplied (a
  retry found this run's own commit: executionId, runSequence, version, rowsWritten),
  watermark (COMPLETE)

Heartbeats are not run events: they travel apart (``flowforge.orchestrator.heartbeat``) and
only refresh the job run's ``heartbeat_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

PRODUCER = "https://github.com/flowforge/flowforge"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
JOB_NAMESPACE = "flowforge"
FACET_SCHEMA = "https://openlineage.io/spec/facets/1-1-1/SchemaDatasetFacet.json"

EventType = Literal["START", "RUNNING", "COMPLETE", "FAIL", "ABORT"]


@dataclass(frozen=True)
class Dataset:
    """A table a job read or wrote, with what we know of it."""

    namespace: str
    name: str
    schema: list[dict[str, Any]] | None = None  # [{"name", "type", "nullable"}]
    row_count: int | None = None
    version: int | None = None
    location: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def layer(self) -> str | None:
        head, _, _ = self.name.partition(".")
        return head if head in ("bronze", "silver", "gold") else None

    @property
    def table(self) -> str:
        return self.name.partition(".")[2] if self.layer else self.name

    def to_openlineage(self, output: bool) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if self.schema is not None:
            facets["schema"] = {
                "_producer": PRODUCER,
                "_schemaURL": FACET_SCHEMA,
                "fields": [
                    {"name": f["name"], "type": f["type"], "nullable": f.get("nullable", True)}
                    for f in self.schema
                ],
            }
        if self.version is not None:
            facets["version"] = {"_producer": PRODUCER, "datasetVersion": str(self.version)}
        if self.location:
            facets["storage"] = {
                "_producer": PRODUCER,
                "storageLayer": "delta",
                "fileFormat": "parquet",
                "location": self.location,
            }
        facets.update(self.extra)
        dataset: dict[str, Any] = {"namespace": self.namespace, "name": self.name, "facets": facets}
        if self.row_count is not None:
            key, facet = (
                (
                    "outputFacets",
                    {"outputStatistics": {"_producer": PRODUCER, "rowCount": self.row_count}},
                )
                if output
                else (
                    "inputFacets",
                    {"dataQualityMetrics": {"_producer": PRODUCER, "rowCount": self.row_count}},
                )
            )
            dataset[key] = facet
        return dataset


def run_event(
    event_type: EventType,
    *,
    job_run_id: str,
    execution_id: str,
    workflow_id: str | None = None,
    workflow_name: str,
    job_id: str,
    job_name: str,
    attempt: int,
    owner: str | None = None,
    inputs: list[Dataset] | None = None,
    outputs: list[Dataset] | None = None,
    facets: dict[str, Any] | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """One RunEvent as JSON-ready data, with a unique ``eventId`` for idempotent recording."""
    run_facets: dict[str, Any] = {
        "parent": {
            "_producer": PRODUCER,
            "run": {"runId": execution_id},
            "job": {"namespace": JOB_NAMESPACE, "name": workflow_name},
        },
        "flowforge_run": {
            "_producer": PRODUCER,
            "executionId": execution_id,
            "workflowId": workflow_id,
            "jobId": job_id,
            "attempt": attempt,
            "owner": owner,
            "eventId": str(uuid.uuid4()),
        },
    }
    for name, facet in (facets or {}).items():
        run_facets[name] = {"_producer": PRODUCER, **facet}
    return {
        "eventType": event_type,
        "eventTime": (event_time or datetime.now(UTC)).isoformat(),
        "producer": PRODUCER,
        "schemaURL": SCHEMA_URL,
        "run": {"runId": job_run_id, "facets": run_facets},
        "job": {"namespace": JOB_NAMESPACE, "name": f"{workflow_name}.{job_name}"},
        "inputs": [dataset.to_openlineage(output=False) for dataset in inputs or []],
        "outputs": [dataset.to_openlineage(output=True) for dataset in outputs or []],
    }


def file_dataset(namespace: str, name: str, *, sha256: str, size: int) -> Dataset:
    """An input file, with the digest and size of the bytes the worker read."""
    facet = {"_producer": PRODUCER, "sha256": sha256, "size": size}
    return Dataset(namespace=namespace, name=name, extra={"flowforge_file": facet})


def input_files(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The input files an event says were read: namespace, name, sha256, size."""
    files = []
    for dataset in event.get("inputs") or []:
        facet = (dataset.get("facets") or {}).get("flowforge_file")
        if facet and facet.get("sha256"):
            files.append(
                {
                    "namespace": dataset.get("namespace"),
                    "name": dataset.get("name"),
                    "sha256": facet["sha256"],
                    "size": facet.get("size"),
                }
            )
    return files


def run_facet(event: dict[str, Any], name: str) -> dict[str, Any]:
    return event.get("run", {}).get("facets", {}).get(name) or {}


def output_datasets(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Outputs flattened for consumers: name, layer, table, version, rowCount, schema, location."""
    flattened = []
    for dataset in event.get("outputs", []):
        facets = dataset.get("facets", {})
        layer, _, table = dataset["name"].partition(".")
        version = facets.get("version", {}).get("datasetVersion")
        flattened.append(
            {
                "namespace": dataset["namespace"],
                "name": dataset["name"],
                "layer": layer,
                "table": table,
                "version": int(version) if version is not None else None,
                "rowCount": dataset.get("outputFacets", {})
                .get("outputStatistics", {})
                .get("rowCount"),
                "schema": facets.get("schema", {}).get("fields"),
                "location": facets.get("storage", {}).get("location"),
            }
        )
    return flattened
