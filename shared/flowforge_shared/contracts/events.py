"""Run events: OpenLineage RunEvents (spec 2-0-2), the one stream the orchestrator, the data
catalog and the lineage service all consume unchanged.

Built from openlineage-python's typed classes, so every facet carries a right ``_producer``
and ``_schemaURL``; FlowForge's own facets (:mod:`flowforge_shared.contracts.facets`) point
at the JSON schemas published in ``docs/openlineage/facets/``.

- A job run is an OpenLineage run (``run.runId`` = the job run id, job
  ``flowforge`` / ``<workflow>.<job>``) whose ``parent`` facet names the execution; the
  execution has run events of its own (:func:`execution_event`: START, then one COMPLETE,
  FAIL or ABORT; job ``flowforge`` / ``<workflow>``).
- Datasets are named by the OpenLineage naming conventions: a lake table by its storage
  location (``file`` + absolute path, or ``s3://bucket`` + key), with its layer and table in
  ``flowforge_table`` and its short name (``bronze.accounts``) as a ``symlinks`` identifier;
  a database source as ``postgres://host:5432`` + ``db.schema.table`` and so on; a file by
  its location too, its landing path in ``flowforge_file``.
- Run facets: ``flowforge_run`` (executionId, workflowId, jobId, attempt, owner, eventId — on
  every event), ``flowforge_progress`` (RUNNING), ``flowforge_error`` and the standard
  ``errorMessage`` (FAIL; ``flowforge_error`` also on the orchestrator's retry notices),
  ``flowforge_result`` (COMPLETE: rowsRead, rowsWritten, quarantined, alreadyApplied,
  watermark, runSequence, notes), ``parent``, ``processing_engine``.
- Dataset facets: ``schema`` (columns with ``nullable``), ``version``, ``storage``,
  ``symlinks``, ``flowforge_table``, ``flowforge_file``, ``columnLineage``; input
  ``inputStatistics`` and output ``outputStatistics`` (rowCount).

Heartbeats are not run events: they travel apart (``flowforge.orchestrator.heartbeat``) and
only refresh the job run's ``heartbeat_at``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from openlineage.client import event_v2 as ol
from openlineage.client.generated import (
    dataset_version_dataset,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    parent_run,
    processing_engine_run,
    schema_dataset,
    storage_dataset,
    symlinks_dataset,
)
from openlineage.client.serde import Serde

from flowforge_shared.contracts import facets as ff

PRODUCER = "https://github.com/flowforge/flowforge"
SCHEMA_URL = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
JOB_NAMESPACE = "flowforge"
LAKE_LAYERS = ("bronze", "silver", "gold")

EventType = Literal["START", "RUNNING", "COMPLETE", "FAIL", "ABORT"]


def _version(package: str) -> str:
    try:
        return version(package)
    except PackageNotFoundError:  # pragma: no cover - running from a bare source tree
        return "0"


FLOWFORGE_VERSION = _version("flowforge")
OPENLINEAGE_VERSION = _version("openlineage-python")


@dataclass(frozen=True)
class Dataset:
    """A dataset a job read or wrote, with what we know of it. A lake table has its
    ``layer`` and ``table``; ``extra`` holds more dataset facets (typed, or JSON-ready)."""

    namespace: str
    name: str
    schema: list[dict[str, Any]] | None = None  # [{"name", "type", "nullable"}]
    row_count: int | None = None
    version: int | None = None
    location: str | None = None
    layer: str | None = None
    table: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.layer}.{self.table}" if self.layer else self.name

    def facets(self) -> dict[str, Any]:
        facets: dict[str, Any] = {}
        if self.schema is not None:
            facets["schema"] = schema_dataset.SchemaDatasetFacet(
                fields=[
                    ff.SchemaField(name=f["name"], type=f["type"], nullable=f.get("nullable", True))
                    for f in self.schema
                ],
                producer=PRODUCER,
            )
        if self.version is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(self.version), producer=PRODUCER
            )
        if self.layer:
            facets["storage"] = storage_dataset.StorageDatasetFacet(
                storageLayer="delta", fileFormat="parquet", producer=PRODUCER
            )
            facets["symlinks"] = symlinks_dataset.SymlinksDatasetFacet(
                identifiers=[
                    symlinks_dataset.Identifier(
                        namespace=JOB_NAMESPACE, name=self.label, type="TABLE"
                    )
                ],
                producer=PRODUCER,
            )
            facets["flowforge_table"] = ff.FlowForgeTableDatasetFacet(
                layer=self.layer, table=self.table or "", location=self.location, producer=PRODUCER
            )
        facets.update(self.extra)
        return facets

    def as_input(self) -> ol.InputDataset:
        statistics = {}
        if self.row_count is not None:
            statistics["inputStatistics"] = (
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=self.row_count, producer=PRODUCER
                )
            )
        return ol.InputDataset(
            namespace=self.namespace, name=self.name, facets=self.facets(), inputFacets=statistics
        )

    def as_output(self) -> ol.OutputDataset:
        statistics = {}
        if self.row_count is not None:
            statistics["outputStatistics"] = (
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=self.row_count, producer=PRODUCER
                )
            )
        return ol.OutputDataset(
            namespace=self.namespace, name=self.name, facets=self.facets(), outputFacets=statistics
        )


def _parent(execution_id: str, workflow_name: str) -> parent_run.ParentRunFacet:
    return parent_run.ParentRunFacet(
        run=parent_run.Run(runId=execution_id),
        job=parent_run.Job(namespace=JOB_NAMESPACE, name=workflow_name),
        root=parent_run.Root(
            run=parent_run.RootRun(runId=execution_id),
            job=parent_run.RootJob(namespace=JOB_NAMESPACE, name=workflow_name),
        ),
        producer=PRODUCER,
    )


def _engine() -> processing_engine_run.ProcessingEngineRunFacet:
    return processing_engine_run.ProcessingEngineRunFacet(
        version=FLOWFORGE_VERSION,
        name="FlowForge",
        openlineageAdapterVersion=OPENLINEAGE_VERSION,
        producer=PRODUCER,
    )


def _job(name: str, job_type: str) -> ol.Job:
    return ol.Job(
        namespace=JOB_NAMESPACE,
        name=name,
        facets={
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="FLOWFORGE", jobType=job_type, producer=PRODUCER
            )
        },
    )


def _serialise(
    event_type: str,
    run: ol.Run,
    job: ol.Job,
    event_time: datetime | None,
    inputs: list[Dataset] | None = None,
    outputs: list[Dataset] | None = None,
) -> dict[str, Any]:
    event = ol.RunEvent(
        eventType=ol.RunState(event_type),
        eventTime=(event_time or datetime.now(UTC)).isoformat(),
        run=run,
        job=job,
        inputs=[dataset.as_input() for dataset in inputs or []],
        outputs=[dataset.as_output() for dataset in outputs or []],
        producer=PRODUCER,
    )
    return Serde.to_dict(event)


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
    """One job run's RunEvent as JSON-ready data, with a unique ``eventId`` for idempotent
    recording. ``facets``: FlowForge's run facets by name (``flowforge_progress``,
    ``flowforge_error``, ``flowforge_result``) as plain values; a FAIL event's
    ``flowforge_error`` also becomes the standard ``errorMessage``."""
    run_facets: dict[str, Any] = {
        "parent": _parent(execution_id, workflow_name),
        "processing_engine": _engine(),
        "flowforge_run": ff.FlowForgeRunFacet(
            executionId=execution_id,
            eventId=str(uuid.uuid4()),
            workflowId=workflow_id,
            jobId=job_id,
            attempt=attempt,
            owner=owner,
            producer=PRODUCER,
        ),
    }
    for name, values in (facets or {}).items():
        run_facets[name] = ff.RUN_FACETS[name](**values, producer=PRODUCER)
    error = (facets or {}).get("flowforge_error")
    if event_type == "FAIL" and error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error["message"],
            programmingLanguage="python",
            stackTrace=error.get("detail"),
            producer=PRODUCER,
        )
    return _serialise(
        event_type,
        ol.Run(runId=job_run_id, facets=run_facets),
        _job(f"{workflow_name}.{job_name}", "JOB"),
        event_time,
        inputs,
        outputs,
    )


def execution_event(
    event_type: EventType,
    *,
    execution_id: str,
    workflow_id: str | None,
    workflow_name: str,
    error: str | None = None,
    event_time: datetime | None = None,
) -> dict[str, Any]:
    """The execution's own RunEvent (the parent of its job runs): START when it starts, one
    COMPLETE, FAIL (with ``errorMessage``) or ABORT when it ends."""
    run_facets: dict[str, Any] = {
        "processing_engine": _engine(),
        "flowforge_run": ff.FlowForgeRunFacet(
            executionId=execution_id,
            eventId=f"{execution_id}:{event_type}",
            workflowId=workflow_id,
            producer=PRODUCER,
        ),
    }
    if event_type == "FAIL":
        message = error or "the execution failed"
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=message, programmingLanguage="python", producer=PRODUCER
        )
        run_facets["flowforge_error"] = ff.FlowForgeErrorRunFacet(
            message=message, producer=PRODUCER
        )
    return _serialise(
        event_type,
        ol.Run(runId=execution_id, facets=run_facets),
        _job(workflow_name, "DAG"),
        event_time,
    )


def file_dataset(
    namespace: str, name: str, *, sha256: str, size: int, file_path: str | None = None
) -> Dataset:
    """An input file at its location, with the digest and size of the bytes the worker read
    and its path in the landing area."""
    facet = ff.FlowForgeFileDatasetFacet(
        sha256=sha256, size=size, filePath=file_path, producer=PRODUCER
    )
    return Dataset(namespace=namespace, name=name, extra={"flowforge_file": facet})


def input_files(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The input files an event says were read: namespace, name, filePath, sha256, size."""
    files = []
    for dataset in event.get("inputs") or []:
        facet = (dataset.get("facets") or {}).get("flowforge_file")
        if facet and facet.get("sha256"):
            files.append(
                {
                    "namespace": dataset.get("namespace"),
                    "name": dataset.get("name"),
                    "filePath": facet.get("filePath"),
                    "sha256": facet["sha256"],
                    "size": facet.get("size"),
                }
            )
    return files


def run_facet(event: dict[str, Any], name: str) -> dict[str, Any]:
    return event.get("run", {}).get("facets", {}).get(name) or {}


def table_of(dataset: dict[str, Any]) -> tuple[str | None, str | None]:
    """(layer, table) of a lake table in an event; (None, None) for anything else."""
    facet = (dataset.get("facets") or {}).get("flowforge_table") or {}
    if facet.get("layer") in LAKE_LAYERS:
        return facet["layer"], facet.get("table")
    return None, None


def schema_columns(dataset: dict[str, Any]) -> list[dict[str, Any]] | None:
    """A dataset's columns from its ``schema`` facet: name, type, nullable."""
    fields = ((dataset.get("facets") or {}).get("schema") or {}).get("fields")
    if not isinstance(fields, list):
        return None
    return [
        {"name": f.get("name"), "type": f.get("type"), "nullable": f.get("nullable", True)}
        for f in fields
        if isinstance(f, dict)
    ]


def output_datasets(event: dict[str, Any]) -> list[dict[str, Any]]:
    """Outputs flattened for consumers: namespace, name, layer, table, version, rowCount,
    schema, location (layer and table are None for what is not a lake table)."""
    flattened = []
    for dataset in event.get("outputs", []):
        facets = dataset.get("facets", {})
        layer, table = table_of(dataset)
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
                "schema": schema_columns(dataset),
                "location": facets.get("flowforge_table", {}).get("location"),
            }
        )
    return flattened
