"""The OpenLineage 2-0-2 events ``POST /api/v1/lineage`` accepts, as pydantic models that
mirror the official JSON schemas (``spec/OpenLineage.json`` and ``spec/facets/*.json`` of the
OpenLineage repository; those files ship in no package, so they are not read here).

What is mirrored:

- an event is exactly one of RunEvent (``run`` and ``job``), JobEvent (``job``, no ``run``)
  and DatasetEvent (``dataset``, not both ``job`` and ``run``): the spec's ``oneOf``;
- the required fields and JSON types of every object, and the formats: ``runId`` a uuid,
  ``eventTime`` an RFC 3339 date-time, ``producer``/``schemaURL``/``_producer``/``_schemaURL``
  URIs, ``eventType`` one of the spec's values;
- every facet (run, job, dataset, input and output facets) is an object with ``_producer``
  and ``_schemaURL``; job and dataset facets may carry ``_deleted`` (a boolean);
- the standard facets in :data:`RunFacets`, :data:`JobFacets`, :data:`DatasetFacets`,
  :data:`InputFacets` and :data:`OutputFacets` are checked against their own schema
  (required fields and types); any other facet (``airflow``, ``spark_properties``, a
  producer's own) against the base facet only, as the spec itself does.

Like the spec, unknown properties are allowed everywhere (``extra="allow"``): producers add
fields and facets freely, and refusing them would refuse valid OpenLineage. JSON types are
checked strictly (a string is not an integer; ``null`` is no value of any type: an optional
field is absent or of its type), and a JSON integer may be written ``5.0``, as JSON Schema
says. The models only validate; what is applied and answered is the event as sent."""

from __future__ import annotations

import calendar
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainValidator, model_validator

SPEC_VERSION = "2-0-2"
EVENT_TYPES = ("START", "RUNNING", "COMPLETE", "ABORT", "FAIL", "OTHER")

_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# RFC 3339 section 5.6 (the JSON Schema "date-time" format): full date, "T", full time with
# a zone; a leap second (60) is allowed.
_DATE_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt]([01]\d|2[0-3]):([0-5]\d):([0-5]\d|60)(\.\d+)?"
    r"([Zz]|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)
# RFC 3986 URI (absolute, a fragment allowed): a scheme, then only unreserved, reserved and
# percent-encoded characters; brackets only around an IP literal host.
_URI = re.compile(
    r"^[A-Za-z][A-Za-z0-9+.\-]*:"
    r"(?://(?:(?:[A-Za-z0-9\-._~!$&'()*+,;=:]|%[0-9A-Fa-f]{2})*@)?"
    r"(?:\[[0-9A-Fa-f:.vV\-]+\]|(?:[A-Za-z0-9\-._~!$&'()*+,;=]|%[0-9A-Fa-f]{2})*)"
    r"(?::\d*)?)?"
    r"(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/]|%[0-9A-Fa-f]{2})*"
    r"(?:\?(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?"
    r"(?:#(?:[A-Za-z0-9\-._~!$&'()*+,;=:@/?]|%[0-9A-Fa-f]{2})*)?$"
)


def _string(value: object) -> str:
    if not isinstance(value, str):
        raise ValueError(f"must be a string, not {_json_type(value)}")
    return value


def _uuid(value: object) -> str:
    if not _UUID.match(_string(value)):
        raise ValueError(f"must be a UUID (8-4-4-4-12 hex digits), not {value!r}")
    return value


def _date_time(value: object) -> str:
    match = _DATE_TIME.match(_string(value))
    if match:
        year, month, day = (int(part) for part in match.group(1, 2, 3))
        if 1 <= month <= 12 and 1 <= day <= calendar.monthrange(year, month)[1]:
            return value
    raise ValueError(
        "must be an RFC 3339 date-time with a time zone, e.g. 2024-05-01T12:00:00.000Z, "
        f"not {value!r}"
    )


def _uri(value: object) -> str:
    if not _URI.match(_string(value)):
        raise ValueError(f"must be an absolute URI (RFC 3986), not {value!r}")
    return value


def _integer(value: object) -> int | float:
    if isinstance(value, bool) or not (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    ):
        raise ValueError(f"must be an integer, not {_json_type(value)}")
    return value


def _number(value: object) -> int | float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"must be a number, not {_json_type(value)}")
    return value


def _event_type(value: object) -> str:
    if value not in EVENT_TYPES:
        raise ValueError(f"must be one of {', '.join(EVENT_TYPES)}, not {value!r}")
    return value


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


Str = Annotated[str, PlainValidator(_string)]
Uuid = Annotated[str, PlainValidator(_uuid)]
DateTime = Annotated[str, PlainValidator(_date_time)]
Uri = Annotated[str, PlainValidator(_uri)]
Integer = Annotated[int, PlainValidator(_integer)]
Number = Annotated[float, PlainValidator(_number)]
EventType = Annotated[str, PlainValidator(_event_type)]

# An optional property is absent or of its type, never null: the field's type does not
# admit None and its default (None: absent) is not validated.
ABSENT: Any = None


class Spec(BaseModel):
    """Strict JSON types; unknown properties allowed, as in the spec."""

    model_config = ConfigDict(strict=True, extra="allow", populate_by_name=False)


class BaseFacet(Spec):
    producer: Uri = Field(alias="_producer")
    schema_url: Uri = Field(alias="_schemaURL")


class RunFacet(BaseFacet):
    pass


class JobFacet(BaseFacet):
    deleted: bool = Field(default=ABSENT, alias="_deleted")


class DatasetFacet(JobFacet):
    pass


class InputDatasetFacet(BaseFacet):
    pass


class OutputDatasetFacet(BaseFacet):
    pass


# Run facets -----------------------------------------------------------------------------


class _FacetRunRef(Spec):
    runId: Uuid
    facets: dict[str, RunFacet] = ABSENT


class _FacetJobRef(Spec):
    namespace: Str
    name: Str
    facets: dict[str, JobFacet] = ABSENT


class _Root(Spec):
    run: _FacetRunRef
    job: _FacetJobRef


class ParentRunFacet(RunFacet):
    run: _FacetRunRef
    job: _FacetJobRef
    root: _Root = ABSENT


class ProcessingEngineRunFacet(RunFacet):
    version: Str
    name: Str = ABSENT
    openlineageAdapterVersion: Str = ABSENT


class ErrorMessageRunFacet(RunFacet):
    message: Str
    programmingLanguage: Str
    stackTrace: Str = ABSENT


class NominalTimeRunFacet(RunFacet):
    nominalStartTime: DateTime
    nominalEndTime: DateTime = ABSENT


class _Tag(Spec):
    key: Str
    value: Str
    source: Str = ABSENT


class TagsRunFacet(RunFacet):
    tags: list[_Tag] = ABSENT


class _EnvironmentVariable(Spec):
    name: Str
    value: Str


class EnvironmentVariablesRunFacet(RunFacet):
    environmentVariables: list[_EnvironmentVariable]


class ExternalQueryRunFacet(RunFacet):
    externalQueryId: Str
    source: Str


class _ExecutionParameter(Spec):
    model_config = ConfigDict(extra="forbid")  # the one closed object of the spec

    key: Str
    name: Str = ABSENT
    description: Str = ABSENT
    value: Str = ABSENT


class ExecutionParametersRunFacet(RunFacet):
    parameters: list[_ExecutionParameter] = ABSENT


class _ExtractionError(Spec):
    errorMessage: Str
    stackTrace: Str = ABSENT
    task: Str = ABSENT
    taskNumber: Integer = ABSENT


class ExtractionErrorRunFacet(RunFacet):
    totalTasks: Integer
    failedTasks: Integer
    errors: list[_ExtractionError]


class RunFacets(Spec):
    """``run.facets``: the standard run facets checked by their schema, any other as a run facet."""

    __pydantic_extra__: dict[str, RunFacet]
    parent: ParentRunFacet = ABSENT
    processing_engine: ProcessingEngineRunFacet = ABSENT
    errorMessage: ErrorMessageRunFacet = ABSENT
    nominalTime: NominalTimeRunFacet = ABSENT
    tags: TagsRunFacet = ABSENT
    environmentVariables: EnvironmentVariablesRunFacet = ABSENT
    externalQuery: ExternalQueryRunFacet = ABSENT
    executionParameters: ExecutionParametersRunFacet = ABSENT
    extractionError: ExtractionErrorRunFacet = ABSENT


# Job facets -----------------------------------------------------------------------------


class _EmissionPattern(Spec):
    eventTrigger: Str
    eventContentMode: Str
    windowDuration: Integer = ABSENT

    @model_validator(mode="after")
    def _window_at_least_one(self) -> _EmissionPattern:
        if self.windowDuration is not None and self.windowDuration < 1:
            raise ValueError("windowDuration must be at least 1")
        return self


class JobTypeJobFacet(JobFacet):
    processingType: Str
    integration: Str
    jobType: Str = ABSENT
    emissionPattern: _EmissionPattern = ABSENT


class SQLJobFacet(JobFacet):
    query: Str
    dialect: Str = ABSENT


class SourceCodeJobFacet(JobFacet):
    language: Str
    sourceCode: Str


class SourceCodeLocationJobFacet(JobFacet):
    type: Str
    url: Uri
    repoUrl: Str = ABSENT
    path: Str = ABSENT
    version: Str = ABSENT
    tag: Str = ABSENT
    branch: Str = ABSENT
    pullRequestNumber: Str = ABSENT


class DocumentationJobFacet(JobFacet):
    description: Str
    contentType: Str = ABSENT


class _Owner(Spec):
    name: Str
    type: Str = ABSENT


class OwnershipJobFacet(JobFacet):
    owners: list[_Owner] = ABSENT


class TagsJobFacet(JobFacet):
    tags: list[_Tag] = ABSENT


class JobFacets(Spec):
    """``job.facets``."""

    __pydantic_extra__: dict[str, JobFacet]
    jobType: JobTypeJobFacet = ABSENT
    sql: SQLJobFacet = ABSENT
    sourceCode: SourceCodeJobFacet = ABSENT
    sourceCodeLocation: SourceCodeLocationJobFacet = ABSENT
    documentation: DocumentationJobFacet = ABSENT
    ownership: OwnershipJobFacet = ABSENT
    tags: TagsJobFacet = ABSENT


# Dataset facets -------------------------------------------------------------------------


class _SchemaField(Spec):
    name: Str
    type: Str = ABSENT
    description: Str = ABSENT
    ordinal_position: Integer = ABSENT
    fields: list[_SchemaField] = ABSENT


class SchemaDatasetFacet(DatasetFacet):
    fields: list[_SchemaField] = ABSENT


class DatasourceDatasetFacet(DatasetFacet):
    name: Str = ABSENT
    uri: Uri = ABSENT


class DatasetVersionDatasetFacet(DatasetFacet):
    datasetVersion: Str


class StorageDatasetFacet(DatasetFacet):
    storageLayer: Str
    fileFormat: Str = ABSENT


class _Identifier(Spec):
    namespace: Str
    name: Str
    type: Str


class SymlinksDatasetFacet(DatasetFacet):
    identifiers: list[_Identifier] = ABSENT


class _Transformation(Spec):
    type: Str
    subtype: Str = ABSENT
    description: Str = ABSENT
    masking: bool = ABSENT


class _InputField(Spec):
    namespace: Str
    name: Str
    field: Str
    transformations: list[_Transformation] = ABSENT


class _FieldLineage(Spec):
    inputFields: list[_InputField]
    transformationDescription: Str = ABSENT
    transformationType: Str = ABSENT


class ColumnLineageDatasetFacet(DatasetFacet):
    fields: dict[str, _FieldLineage]
    dataset: list[_InputField] = ABSENT


class DocumentationDatasetFacet(DatasetFacet):
    description: Str
    contentType: Str = ABSENT


class DatasetTypeDatasetFacet(DatasetFacet):
    datasetType: Str
    subType: Str = ABSENT


class _PreviousIdentifier(Spec):
    name: Str
    namespace: Str


class LifecycleStateChangeDatasetFacet(DatasetFacet):
    lifecycleStateChange: Literal["ALTER", "CREATE", "DROP", "OVERWRITE", "RENAME", "TRUNCATE"]
    previousIdentifier: _PreviousIdentifier = ABSENT


class OwnershipDatasetFacet(DatasetFacet):
    owners: list[_Owner] = ABSENT


class _DatasetTag(_Tag):
    field: Str = ABSENT


class TagsDatasetFacet(DatasetFacet):
    tags: list[_DatasetTag] = ABSENT


class _ColumnMetrics(Spec):
    nullCount: Integer = ABSENT
    distinctCount: Integer = ABSENT
    sum: Number = ABSENT
    count: Number = ABSENT
    min: Number = ABSENT
    max: Number = ABSENT
    quantiles: dict[str, Number] = ABSENT


class _DataQualityMetrics(Spec):
    rowCount: Integer = ABSENT
    bytes: Integer = ABSENT
    fileCount: Integer = ABSENT
    lastUpdated: DateTime = ABSENT
    columnMetrics: dict[str, _ColumnMetrics]


class DataQualityMetricsDatasetFacet(_DataQualityMetrics, DatasetFacet):
    pass


class DataQualityMetricsInputDatasetFacet(_DataQualityMetrics, InputDatasetFacet):
    pass


class InputStatisticsInputDatasetFacet(InputDatasetFacet):
    rowCount: Integer = ABSENT
    size: Integer = ABSENT
    fileCount: Integer = ABSENT


class OutputStatisticsOutputDatasetFacet(OutputDatasetFacet):
    rowCount: Integer = ABSENT
    size: Integer = ABSENT
    fileCount: Integer = ABSENT


class _HierarchyLevel(Spec):
    type: Str
    name: Str


class HierarchyDatasetFacet(DatasetFacet):
    hierarchy: list[_HierarchyLevel]


class CatalogDatasetFacet(DatasetFacet):
    framework: Str
    type: Str
    name: Str
    metadataUri: Str = ABSENT
    warehouseUri: Str = ABSENT
    source: Str = ABSENT
    catalogProperties: dict[str, Str] = ABSENT


class DatasetFacets(Spec):
    """A dataset's ``facets``."""

    __pydantic_extra__: dict[str, DatasetFacet]
    schema_: SchemaDatasetFacet = Field(default=ABSENT, alias="schema")
    dataSource: DatasourceDatasetFacet = ABSENT
    version: DatasetVersionDatasetFacet = ABSENT
    storage: StorageDatasetFacet = ABSENT
    symlinks: SymlinksDatasetFacet = ABSENT
    columnLineage: ColumnLineageDatasetFacet = ABSENT
    documentation: DocumentationDatasetFacet = ABSENT
    datasetType: DatasetTypeDatasetFacet = ABSENT
    lifecycleStateChange: LifecycleStateChangeDatasetFacet = ABSENT
    ownership: OwnershipDatasetFacet = ABSENT
    tags: TagsDatasetFacet = ABSENT
    dataQualityMetrics: DataQualityMetricsDatasetFacet = ABSENT
    hierarchy: HierarchyDatasetFacet = ABSENT
    catalog: CatalogDatasetFacet = ABSENT


class _Assertion(Spec):
    assertion: Str
    success: bool
    column: Str = ABSENT
    severity: Str = ABSENT
    name: Str = ABSENT
    description: Str = ABSENT
    expected: Str = ABSENT
    actual: Str = ABSENT
    content: Str = ABSENT
    contentType: Str = ABSENT
    params: dict[str, Any] = ABSENT


class DataQualityAssertionsDatasetFacet(InputDatasetFacet):
    assertions: list[_Assertion]


class InputFacets(Spec):
    """An input dataset's ``inputFacets``."""

    __pydantic_extra__: dict[str, InputDatasetFacet]
    dataQualityMetrics: DataQualityMetricsInputDatasetFacet = ABSENT
    inputStatistics: InputStatisticsInputDatasetFacet = ABSENT
    dataQualityAssertions: DataQualityAssertionsDatasetFacet = ABSENT


class OutputFacets(Spec):
    """An output dataset's ``outputFacets``."""

    __pydantic_extra__: dict[str, OutputDatasetFacet]
    outputStatistics: OutputStatisticsOutputDatasetFacet = ABSENT


# The event ------------------------------------------------------------------------------


class Run(Spec):
    runId: Uuid
    facets: RunFacets = ABSENT


class Job(Spec):
    namespace: Str
    name: Str
    facets: JobFacets = ABSENT


class Dataset(Spec):
    namespace: Str
    name: Str
    facets: DatasetFacets = ABSENT


class InputDataset(Dataset):
    inputFacets: InputFacets = ABSENT


class OutputDataset(Dataset):
    outputFacets: OutputFacets = ABSENT


class BaseEvent(Spec):
    eventTime: DateTime
    producer: Uri
    schemaURL: Uri


class RunEvent(BaseEvent):
    """A run's state change and what it read and wrote: applied to the graph."""

    eventType: EventType = ABSENT
    run: Run
    job: Job
    inputs: list[InputDataset] = ABSENT
    outputs: list[OutputDataset] = ABSENT


class JobEvent(BaseEvent):
    """A job's static metadata, no run."""

    job: Job
    inputs: list[InputDataset] = ABSENT
    outputs: list[OutputDataset] = ABSENT

    @model_validator(mode="after")
    def _no_run(self) -> JobEvent:
        if "run" in (self.model_extra or {}):
            raise ValueError("a JobEvent has no run (an event with a run is a RunEvent)")
        return self


class DatasetEvent(BaseEvent):
    """A dataset's static metadata, no job run."""

    dataset: Dataset

    @model_validator(mode="after")
    def _not_job_and_run(self) -> DatasetEvent:
        extra = self.model_extra or {}
        if "job" in extra and "run" in extra:
            raise ValueError("a DatasetEvent has not both a job and a run")
        return self


KINDS: dict[str, type[BaseEvent]] = {
    "RunEvent": RunEvent,
    "JobEvent": JobEvent,
    "DatasetEvent": DatasetEvent,
}
