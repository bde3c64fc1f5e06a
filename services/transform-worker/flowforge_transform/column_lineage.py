"""Column lineage of a silver or gold build, from the job's configuration alone.

:func:`column_lineage` follows the steps :mod:`.silver` and :mod:`.gold` run, but over column
names instead of rows: each column of the rows being built carries the input columns it comes
from (:class:`~flowforge_shared.contracts.column_lineage.Source`, with FlowForge's ``how``),
and each step that decides which rows there are (filters, keys, joins, groupBy, dedupe
order) adds INDIRECT sources that touch every output column. What a SQL expression reads is
sqlglot's lineage of it, resolved through the derived columns before it.

Input datasets are the ones the run reports (their namespace and name are never built here),
keyed by table name; their ``schema`` says which columns each holds. A column missing from
the output's schema (or an input without a schema) simply has no lineage.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError
from sqlglot.lineage import lineage

from flowforge_rules.expressions import referenced_columns
from flowforge_shared.contracts.column_lineage import Source, facet
from flowforge_shared.contracts.events import Dataset
from flowforge_shared.contracts.jobs import (
    JobConfig,
    Join,
    MultiTableSource,
    SilverConfig,
    TransformationConfig,
)
from flowforge_transform.inputs import BRONZE_AUDIT_COLUMNS
from flowforge_transform.silver import DROPPED_AUDIT_COLUMNS, INGESTION_ORDER, primary_key_columns

Columns = dict[str, list[Source]]
"""The columns of the rows being built, each with the input columns it comes from."""

_RELATION = "flowforge_input"
_OUT = "__flowforge_out"


def column_lineage(
    job: JobConfig, inputs: Mapping[str, Dataset], output: Dataset
) -> dict[str, Any] | None:
    """The ``columnLineage`` facet of ``output`` written by the silver or gold ``job``, whose
    input tables are ``inputs`` (table name -> the dataset the run reports); None when the
    job writes neither."""
    if not isinstance(job.source_config, MultiTableSource):
        return None
    steps = job.transformation_config or TransformationConfig()
    tables = list(dict.fromkeys(job.source_config.tables))
    destination = job.destination_config
    if destination.silver_config is not None:
        combine = len(job.source_config.tables) > 1  # as the runner decides it
        columns, indirect = _silver(destination.silver_config, steps, tables, inputs, combine)
    elif destination.gold_config is not None:
        config = destination.gold_config
        columns, indirect = _gold(
            steps,
            tables,
            inputs,
            joins=config.denormalization_enabled is not False,
            aggregate=config.aggregation_enabled is not False,
        )
    else:
        return None
    return _facet(columns, indirect, output)


def _silver(
    config: SilverConfig,
    steps: TransformationConfig,
    tables: Sequence[str],
    inputs: Mapping[str, Dataset],
    combine: bool,
) -> tuple[Columns, list[Source]]:
    columns = _union(inputs[table] for table in tables if table in inputs)
    keys = primary_key_columns(config)
    indirect: list[Source] = []
    if combine and keys:
        indirect += _as(columns, keys, "group_by", "combine key: one record per primaryKey")
    columns, read = _expressions(columns, steps)
    indirect += read
    if keys:
        indirect += _as(columns, keys, "filter", "rows with a null primaryKey are rejected")
        if config.dedupe:
            indirect += _as(columns, keys, "group_by", "dedupe: one row per primaryKey")
            order = [config.delta_column] if config.delta_column else []
            order += [c for c in INGESTION_ORDER if c in columns]
            indirect += _as(columns, order, "sort", "dedupe keeps the latest row by this")
        if config.merge_strategy == "merge":
            indirect += _as(columns, keys, "join", "merge key: rows are upserted on it")
    for column in DROPPED_AUDIT_COLUMNS:
        columns.pop(column, None)
    if config.surrogate_key:
        columns.pop(config.surrogate_key, None)
        number = _as(columns, keys, "derived", "surrogate key: one number per primaryKey")
        columns = {config.surrogate_key: number, **columns}
    return columns, indirect


def _gold(
    steps: TransformationConfig,
    tables: Sequence[str],
    inputs: Mapping[str, Dataset],
    *,
    joins: bool,
    aggregate: bool,
) -> tuple[Columns, list[Source]]:
    columns = _without_audit(_union(inputs[table] for table in tables if table in inputs))
    indirect: list[Source] = []
    for join in (steps.joins or []) if joins else []:
        right = inputs.get(join.table)
        columns, on = _join(columns, _without_audit(_union([right] if right else [])), join)
        indirect += on
    columns, read = _expressions(columns, steps)
    indirect += read
    if steps.aggregations and aggregate:
        groups = list(steps.group_by or [])
        indirect += _as(columns, groups, "group_by", "groupBy")
        aggregated: Columns = {group: list(columns.get(group, [])) for group in groups}
        for aggregation in steps.aggregations:
            what = f"{aggregation.function}({aggregation.column})"
            read_columns = [] if aggregation.column == "*" else [aggregation.column]
            aggregated[aggregation.alias] = _as(columns, read_columns, "aggregation", what)
        columns = aggregated
    return columns, indirect


def _join(left: Columns, right: Columns, join: Join) -> tuple[Columns, list[Source]]:
    """The columns after :func:`flowforge_transform.gold.join_table`, and its key sources."""
    keys = [join.on] if isinstance(join.on, str) else list(join.on)
    described = f"join with {join.table} on {', '.join(keys)}"
    on = _as(left, keys, "join", described) + _as(right, keys, "join", described)
    joined = {name: list(sources) for name, sources in left.items()}
    if join.type in ("right", "full"):  # the key is whichever side has it
        for key in keys:
            joined[key] = _unique(joined.get(key, []) + right.get(key, []))
    taken = {name.lower() for name in joined}
    for name, sources in right.items():
        if name in keys:
            continue
        result_name = name if name.lower() not in taken else f"{name}_{join.table}"
        taken.add(result_name.lower())
        joined[result_name] = list(sources)
    return joined, on


def _expressions(columns: Columns, steps: TransformationConfig) -> tuple[Columns, list[Source]]:
    """Derived columns (each may read the ones before it), then the filters' sources."""
    columns = dict(columns)
    for derived in steps.derived_columns or []:
        read = expression_columns(derived.expression, columns)
        columns[derived.name] = _as(columns, read, "derived", derived.expression)
    indirect: list[Source] = []
    for condition in steps.filters or []:
        indirect += _as(columns, expression_columns(condition, columns), "filter", condition)
    return columns, indirect


def expression_columns(expression: str, available: Iterable[str]) -> list[str]:
    """The columns of ``available`` a SQL expression reads, by sqlglot's lineage of it
    (DuckDB's rules: names compare case-insensitively)."""
    by_lower: dict[str, str] = {}
    for name in available:
        by_lower.setdefault(name.lower(), name)
    try:
        select = exp.select(
            exp.alias_(sqlglot.parse_one(expression, dialect="duckdb"), _OUT, quoted=True)
        ).from_(_RELATION)
        schema = {_RELATION: {name: "TEXT" for name in by_lower.values()}}
        root = lineage(_OUT, select, schema=schema, dialect="duckdb")
        names = [
            sqlglot.parse_one(node.name, dialect="duckdb").name
            for node in root.walk()
            if not node.downstream and node is not root
        ]
    except SqlglotError:
        names = sorted(referenced_columns(expression))  # the checker's own reading
    found = [by_lower.get(name.lower()) for name in names]
    return list(dict.fromkeys(name for name in found if name is not None))


def _union(datasets: Iterable[Dataset]) -> Columns:
    """The input tables stacked by column name: each column is each table's same-named one."""
    columns: Columns = {}
    for dataset in datasets:
        for field in dataset.schema or []:
            source = Source(dataset.namespace, dataset.name, field["name"], "identity")
            columns.setdefault(field["name"], []).append(source)
    return columns


def _without_audit(columns: Columns) -> Columns:
    return {name: s for name, s in columns.items() if name not in BRONZE_AUDIT_COLUMNS}


def _as(columns: Columns, names: Iterable[str], how: str, description: str) -> list[Source]:
    """The input columns behind ``names``, used ``how``: a column copied unchanged keeps
    what it was (an identity stays one), any other step names itself."""
    return _unique(
        source if how == "identity" else replace(source, how=how, description=description)
        for name in names
        for source in columns.get(name, [])
    )


def _unique(sources: Iterable[Source]) -> list[Source]:
    return list(dict.fromkeys(sources))


def _facet(columns: Columns, indirect: list[Source], output: Dataset) -> dict[str, Any]:
    written = [f["name"] for f in output.schema] if output.schema is not None else list(columns)
    indirect = _unique(indirect)
    fields = {}
    for column in written:
        if column not in columns:
            continue  # a table column this build did not produce (kept from an earlier one)
        direct = [
            replace(source, how="rename", description="rename")
            if source.how == "identity" and source.field != column
            else source
            for source in columns[column]
        ]
        fields[column] = [*direct, *indirect]
    return facet(fields, indirect)
