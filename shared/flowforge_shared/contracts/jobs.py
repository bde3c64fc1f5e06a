"""The job configuration: the product's core contract.

On the wire it is camelCase exactly as the templates spell it; snake_case is accepted on
input; unknown keys are refused. Types and shapes are checked by pydantic; the rules that
tie fields together (a database job needs a database source, a merge needs a key, ...) and
the rules checked on save only (``filePath`` stays inside the landing area: see
``contracts/landing.py``) are checked by :func:`combination_errors`, which names the field
path of each problem.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from flowforge_shared.contracts.base import ApiModel
from flowforge_shared.contracts.landing import landing_path_problem, shown
from flowforge_shared.contracts.names import NameProblem, schema_conflict, split_name

Identifier = Annotated[
    str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", min_length=1, max_length=128)
]
"""A table or column name FlowForge creates: letters, digits and underscores."""

SourceColumn = Annotated[str, StringConstraints(min_length=1, max_length=256)]
"""A column as the source names it (may hold spaces or dots; always quoted when used)."""

Expression = Annotated[str, StringConstraints(min_length=1, max_length=4000)]


class JobType(StrEnum):
    FILE_BASED = "file-based"
    DATABASE = "database"
    GOLD_ANALYTICS = "gold-analytics"


DATABASE_SOURCE_TYPES = ("sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite")
PARALLEL_READ_LIMIT = 16
PARALLEL_READ_TYPES = ("postgresql", "mysql")
DatabaseSourceType = Literal["sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite"]


class ColumnOverride(ApiModel):
    """A user's correction of a detected column: a new name and/or type."""

    name: SourceColumn
    rename: Identifier | None = None
    type: (
        Literal["integer", "decimal", "float", "boolean", "date", "timestamp", "string"] | None
    ) = None
    format: str | None = Field(default=None, max_length=64)
    precision: int | None = Field(default=None, ge=1, le=38)
    scale: int | None = Field(default=None, ge=0, le=38)
    # Numbers written the local way (1.234,56 €): how to read them as integer/decimal/float.
    decimal_separator: Literal[".", ","] | None = None
    thousands_separator: Literal[",", ".", " ", "'", "\u00a0", "\u202f"] | None = None
    currency_symbol: str | None = Field(default=None, min_length=1, max_length=8)
    # Booleans spelled other than true/false or 1/0 (compared case-insensitively).
    true_values: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] | None = None
    false_values: list[Annotated[str, StringConstraints(min_length=1, max_length=32)]] | None = None


class FileConfig(ApiModel):
    # Checked by combination_errors (on save), not here: a job saved before the landing rule
    # existed must still read back, so that it can be corrected.
    file_path: str | None = Field(default=None, max_length=1024)
    file_id: str | None = Field(default=None, min_length=1, max_length=64)
    # The original name of uploads: the job reads the newest version (or fileVersion) of
    # that name, resolved when a run starts.
    file_name: str | None = Field(default=None, min_length=1, max_length=255)
    file_version: Literal["latest"] | Annotated[int, Field(ge=1)] = "latest"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    encoding: str = Field(default="utf-8", min_length=1, max_length=32)
    has_header: bool = True
    quote_char: str | None = Field(default='"', max_length=1)
    escape_char: str | None = Field(default=None, max_length=1)
    null_values: list[str] | None = None
    # Physical lines before the header (or the first record) that are not part of the table
    # (a title, a description, a metadata block), comment and blank lines included.
    skip_rows: int = Field(default=0, ge=0, le=1_000_000)
    # Lines starting with this character (outside a quoted value) are ignored wherever they
    # are; they are not counted as rows.
    comment_char: str | None = Field(default=None, min_length=1, max_length=1)
    malformed_rows: Literal["fail", "quarantine"] = "fail"
    columns: list[ColumnOverride] | None = None


class DatabaseConfig(ApiModel):
    connection_id: str = Field(min_length=1, max_length=64)
    schema_name: str | None = Field(default=None, alias="schema", max_length=128)
    table_name: SourceColumn | None = None
    query: str | None = Field(default=None, min_length=1, max_length=100_000)
    stored_procedure: SourceColumn | None = None
    parameters: dict[str, str | int | float | bool | None] | None = None
    is_incremental: bool = False
    delta_column: SourceColumn | None = None
    unique_key: list[SourceColumn] | None = None
    batch_size: int = Field(default=10_000, ge=1, le=1_000_000)
    # Parallel reads (docs/connectors.md, "Parallel reads"): a table read split into this
    # many key ranges, each read on its own connection, all committed once. 1 = one stream.
    partitions: int = Field(default=1, ge=1, le=PARALLEL_READ_LIMIT)
    partition_column: SourceColumn | None = None


class CsvSource(ApiModel):
    type: Literal["csv"]
    file_config: FileConfig


class DatabaseSource(ApiModel):
    type: DatabaseSourceType
    database_config: DatabaseConfig


class MultiTableSource(ApiModel):
    type: Literal["multi-table"]
    tables: list[Identifier] = Field(min_length=1, max_length=64)


SourceConfig = Annotated[CsvSource | DatabaseSource | MultiTableSource, Field(discriminator="type")]


class BronzeConfig(ApiModel):
    table_name: Identifier
    format: Literal["delta"] = "delta"
    write_mode: Literal["append", "overwrite"] = "append"
    audit_columns: bool = True
    # A table has one owner job; several jobs may append to one bronze table only when every
    # one of them says so (the catalog refuses a second writer otherwise).
    shared_append: bool = False


class SilverConfig(ApiModel):
    table_name: Identifier
    merge_strategy: Literal["merge", "overwrite", "append"] = "merge"
    primary_key: Identifier | list[Identifier] | None = None
    surrogate_key: Identifier | None = None
    dedupe: bool = True
    delta_column: Identifier | None = None


class GoldConfig(ApiModel):
    table_name: Identifier
    aggregation_enabled: bool | None = None
    denormalization_enabled: bool | None = None
    materialization: Literal["table", "view"] = "table"
    rebuild: Literal["full"] = "full"


class DestinationConfig(ApiModel):
    bronze_config: BronzeConfig | None = None
    silver_config: SilverConfig | None = None
    gold_config: GoldConfig | None = None


class DerivedColumn(ApiModel):
    name: Identifier
    expression: Expression


class Aggregation(ApiModel):
    column: Identifier | Literal["*"]
    function: Literal["SUM", "COUNT", "AVG", "MIN", "MAX", "COUNT_DISTINCT"]
    alias: Identifier


class Join(ApiModel):
    table: Identifier
    on: Identifier | list[Identifier]
    type: Literal["inner", "left", "right", "full"] = "left"


class TransformationConfig(ApiModel):
    derived_columns: list[DerivedColumn] | None = None
    aggregations: list[Aggregation] | None = None
    group_by: list[Identifier] | None = None
    joins: list[Join] | None = None
    filters: list[Expression] | None = None


class JobConfig(ApiModel):
    """Everything that says what a job does (no identity, no bookkeeping)."""

    name: str = Field(min_length=1, max_length=200)
    type: JobType
    description: str | None = Field(default=None, max_length=4000)
    source_config: SourceConfig
    destination_config: DestinationConfig
    transformation_config: TransformationConfig | None = None
    depends_on: list[str] | None = None

    @property
    def destination(self) -> tuple[str, str] | None:
        """(layer, table) this job writes, or None while the config is incomplete."""
        destination = self.destination_config
        for layer, config in (
            ("bronze", destination.bronze_config),
            ("silver", destination.silver_config),
            ("gold", destination.gold_config),
        ):
            if config is not None:
                return layer, config.table_name
        return None

    @property
    def input_tables(self) -> list[str]:
        """The FlowForge tables this job reads (not external sources)."""
        tables: list[str] = []
        if isinstance(self.source_config, MultiTableSource):
            tables.extend(self.source_config.tables)
        transformation = self.transformation_config
        if transformation and transformation.joins:
            tables.extend(join.table for join in transformation.joins)
        return list(dict.fromkeys(tables))


SOURCE_FOR_JOB_TYPE: dict[JobType, tuple[str, ...]] = {
    JobType.FILE_BASED: ("csv",),
    JobType.DATABASE: DATABASE_SOURCE_TYPES,
    JobType.GOLD_ANALYTICS: ("multi-table",),
}


def combination_errors(job: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    """Rules across fields. Each error is (field path in camelCase, message)."""
    errors: list[tuple[tuple[str | int, ...], str]] = []
    source = job.source_config
    allowed = SOURCE_FOR_JOB_TYPE[job.type]
    if source.type not in allowed:
        errors.append(
            (
                ("sourceConfig", "type"),
                f"a {job.type.value} job reads {', '.join(allowed)}, not {source.type}",
            )
        )

    if isinstance(source, CsvSource):
        file_config = source.file_config
        given = [file_config.file_path, file_config.file_id, file_config.file_name]
        if sum(value is not None for value in given) != 1:
            errors.append(
                (
                    ("sourceConfig", "fileConfig"),
                    "give exactly one of filePath, fileId or fileName",
                )
            )
        if "file_version" in file_config.model_fields_set and file_config.file_name is None:
            errors.append(
                (
                    ("sourceConfig", "fileConfig", "fileVersion"),
                    "fileVersion goes with fileName",
                )
            )
        if file_config.file_path is not None:
            problem = landing_path_problem(file_config.file_path)
            if problem is not None:
                path = ("sourceConfig", "fileConfig", "filePath")
                errors.append((path, f"{shown(file_config.file_path)} {problem}"))
    if isinstance(source, DatabaseSource):
        errors.extend(_database_errors(source))

    destination = job.destination_config
    layers = [
        name
        for name, config in (
            ("bronzeConfig", destination.bronze_config),
            ("silverConfig", destination.silver_config),
            ("goldConfig", destination.gold_config),
        )
        if config is not None
    ]
    if job.type in (JobType.FILE_BASED, JobType.DATABASE):
        if layers != ["bronzeConfig"]:
            errors.append(
                (
                    ("destinationConfig",),
                    f"a {job.type.value} job writes one bronze table: give bronzeConfig only",
                )
            )
    elif len(layers) != 1 or layers[0] == "bronzeConfig":
        errors.append(
            (
                ("destinationConfig",),
                "a gold-analytics job writes one table: give silverConfig or goldConfig",
            )
        )

    bronze = destination.bronze_config
    if bronze is not None and bronze.shared_append and bronze.write_mode != "append":
        errors.append(
            (
                ("destinationConfig", "bronzeConfig", "sharedAppend"),
                "a shared table is only appended to: sharedAppend needs writeMode append",
            )
        )

    silver = destination.silver_config
    if silver is not None:
        if silver.merge_strategy == "merge" and not silver.primary_key:
            errors.append(
                (
                    ("destinationConfig", "silverConfig", "primaryKey"),
                    "mergeStrategy merge needs a primaryKey",
                )
            )
        if silver.surrogate_key and not silver.primary_key:
            errors.append(
                (
                    ("destinationConfig", "silverConfig", "surrogateKey"),
                    "a surrogateKey is assigned per primaryKey: give a primaryKey",
                )
            )

    errors.extend(_transformation_errors(job))

    destination_table = job.destination
    if destination_table and destination_table[1] in job.input_tables:
        errors.append((("destinationConfig",), f"the job reads and writes {destination_table[1]}"))
    return errors


def _database_errors(source: DatabaseSource) -> list[tuple[tuple[str | int, ...], str]]:
    path = ("sourceConfig", "databaseConfig")
    config = source.database_config
    errors: list[tuple[tuple[str | int, ...], str]] = []
    # A qualified name (sales.Orders, [db].[risk].[usp_x]) is read with the dialect's
    # quotes: see contracts/names.py. The catalog checks a database part on save.
    for key, text in (
        ("tableName", config.table_name),
        ("storedProcedure", config.stored_procedure),
    ):
        if text is None:
            continue
        try:
            split_name(source.type, text)
        except NameProblem as problem:
            errors.append((path + (key,), str(problem)))
            continue
        conflict = schema_conflict(source.type, text, config.schema_name)
        if conflict:
            errors.append((path + (key,), conflict))
    modes = [m for m in ("table_name", "query", "stored_procedure") if getattr(config, m)]
    if len(modes) != 1:
        errors.append((path, "give exactly one of tableName, query or storedProcedure"))
    if config.parameters is not None and config.stored_procedure is None:
        errors.append((path + ("parameters",), "parameters go with a storedProcedure"))
    errors.extend(_partition_errors(source))
    if config.is_incremental:
        if not config.delta_column:
            errors.append((path + ("deltaColumn",), "an incremental load needs a deltaColumn"))
        if config.stored_procedure:
            errors.append(
                (
                    path + ("isIncremental",),
                    "a stored procedure cannot be read incrementally; use a table or query",
                )
            )
    return errors


def _partition_errors(source: DatabaseSource) -> list[tuple[tuple[str | int, ...], str]]:
    path = ("sourceConfig", "databaseConfig")
    config = source.database_config
    if config.partitions == 1:
        if config.partition_column:
            return [
                (
                    path + ("partitionColumn",),
                    "partitionColumn splits a parallel read: set partitions to 2 or more",
                )
            ]
        return []
    errors: list[tuple[tuple[str | int, ...], str]] = []
    if source.type not in PARALLEL_READ_TYPES:
        errors.append(
            (
                path + ("partitions",),
                f"parallel reads are for PostgreSQL and MySQL/MariaDB tables, not {source.type}; "
                "set partitions to 1",
            )
        )
    if not config.table_name:
        errors.append(
            (
                path + ("partitions",),
                "a parallel read splits a table by key ranges: partitions needs a tableName "
                "(a query or stored procedure is read in one stream)",
            )
        )
    return errors


def _transformation_errors(job: JobConfig) -> list[tuple[tuple[str | int, ...], str]]:
    transformation = job.transformation_config
    if transformation is None:
        return []
    path = ("transformationConfig",)
    errors: list[tuple[tuple[str | int, ...], str]] = []
    gold = job.destination_config.gold_config
    for key, attribute in (
        ("aggregations", "aggregations"),
        ("groupBy", "group_by"),
        ("joins", "joins"),
    ):
        if getattr(transformation, attribute) and gold is None:
            errors.append((path + (key,), f"{key} build gold tables: give goldConfig"))
    if transformation.group_by and not transformation.aggregations:
        errors.append((path + ("groupBy",), "groupBy needs at least one aggregation"))
    if gold is not None:
        if transformation.aggregations and gold.aggregation_enabled is False:
            errors.append(
                (
                    ("destinationConfig", "goldConfig", "aggregationEnabled"),
                    "aggregations are configured but aggregationEnabled is false",
                )
            )
        if transformation.joins and gold.denormalization_enabled is False:
            errors.append(
                (
                    ("destinationConfig", "goldConfig", "denormalizationEnabled"),
                    "joins are configured but denormalizationEnabled is false",
                )
            )
    names = [column.name for column in transformation.derived_columns or []]
    for index, name in enumerate(names):
        if name in names[:index]:
            errors.append(
                (path + ("derivedColumns", index, "name"), f"derived column {name} is repeated")
            )
    aliases = [aggregation.alias for aggregation in transformation.aggregations or []]
    for index, alias in enumerate(aliases):
        if alias in aliases[:index]:
            errors.append((path + ("aggregations", index, "alias"), f"alias {alias} is repeated"))
    return errors


UPLOADS_DIR = "uploads"


def uploaded_file_path(file_id: str) -> str:
    """Where an uploaded file lives, relative to the landing area (its name is generated)."""
    if not file_id.replace("-", "").isalnum():
        raise ValueError(f"not a file id: {file_id!r}")
    return f"{UPLOADS_DIR}/{file_id}.csv"
