"""Reading the FlowForge tables a transform job takes as input.

A ``multi-table`` source names tables, not layers: a table name is unique across the lake,
so :func:`find_table` looks in bronze, then silver, then gold. :func:`read_union` stacks
several tables BY COLUMN NAME (dlt and Spark's ``unionByName`` behave the same way): a column
missing from one table is null there, and types that widen safely (int32 and int64, int and
decimal, string and large string, null and anything) meet at the wider type. Rows keep table
order, then each table's row order, so the ingestion order survives for dedupe.

Also home of :class:`TransformError`, the error every table builder raises for a problem the
user must fix (terminal: a retry gives the same answer). Like the expression sandbox's
``ExpressionError`` it subclasses ``ValueError``; it pickles with its message, so it crosses
a Celery boundary intact.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import ClassVar

import pyarrow as pa
from deltalake import DeltaTable

from flowforge_shared.lake import LAYERS, Lake, Layer

BRONZE_AUDIT_COLUMNS = ("_ingested_at", "_execution_id", "_job_id", "_source", "_source_row")
"""The audit columns the ingest worker adds to every bronze row."""


class TransformError(ValueError):
    """A transform cannot run as configured; the message says what to change."""

    terminal: ClassVar[bool] = True


def find_table(lake: Lake, name: str) -> tuple[Layer, DeltaTable]:
    """The layer holding ``name`` and the table, or TransformError naming the missing table."""
    for layer in LAYERS:
        table = lake.load(layer, name)
        if table is not None:
            return layer, table
    raise TransformError(
        f"input table {name!r} does not exist in bronze, silver or gold: "
        "run the job that writes it first, or fix the table name"
    )


def read_table(lake: Lake, name: str) -> pa.Table:
    """The whole current version of the table called ``name``, from whichever layer holds it."""
    _, table = find_table(lake, name)
    return table.to_pyarrow_table()


def read_union(lake: Lake, tables: Sequence[str]) -> pa.Table:
    """The tables stacked by column name, in table order then row order.

    A table listed twice is read once: listing it again would only duplicate its rows.
    """
    names = list(dict.fromkeys(tables))
    if not names:
        raise TransformError("the source lists no input tables: name at least one table")
    return union_by_name([(name, read_table(lake, name)) for name in names])


ABSENT_COLUMNS_KEY = "flowforge.absent_columns"
"""Bronze commit metadata naming the table columns a load's source did not carry."""


def absent_columns(lake: Lake, tables: Sequence[str]) -> dict[tuple[str, str], frozenset[str]]:
    """Per bronze load, ``(_execution_id, _job_id)``, the columns its source did not have.

    Bronze writes such a column as nulls (a table keeps its columns) and names it in the
    commit; a null there means "not sent", not "empty", and silver leaves the stored value.
    Tables written before this was recorded, and silver or gold inputs, give nothing.
    """
    absent: dict[tuple[str, str], frozenset[str]] = {}
    for name in dict.fromkeys(tables):
        layer, table = find_table(lake, name)
        if layer != "bronze":
            continue
        for commit in table.history():
            recorded = commit.get(ABSENT_COLUMNS_KEY)
            if not recorded:
                continue
            try:
                load = json.loads(recorded)
                key = (str(load["executionId"]), str(load["jobId"]))
                columns = frozenset(str(column) for column in load["columns"])
            except (ValueError, KeyError, TypeError):
                continue  # not ours to interpret: treat the load as carrying every column
            absent[key] = absent.get(key, frozenset()) | columns
    return absent


def union_by_name(parts: Sequence[tuple[str, pa.Table]]) -> pa.Table:
    """Stack (table name, rows) pairs by column name; the names only serve error messages."""
    if len(parts) == 1:
        return parts[0][1]
    schema = _unified_schema(parts)
    stacked = []
    for name, table in parts:
        columns = []
        for field in schema:
            if field.name in table.column_names:
                columns.append(_cast_column(table.column(field.name), field, name))
            else:
                columns.append(pa.nulls(table.num_rows, type=field.type))
        stacked.append(pa.Table.from_arrays(columns, schema=schema))
    return pa.concat_tables(stacked)


def _unified_schema(parts: Sequence[tuple[str, pa.Table]]) -> pa.Schema:
    # Column order is the order of first appearance, so the first table's layout leads.
    seen: dict[str, tuple[pa.DataType, str]] = {}
    for name, table in parts:
        for field in table.schema:
            if field.name not in seen:
                seen[field.name] = (field.type, name)
                continue
            current, first_table = seen[field.name]
            seen[field.name] = (
                _wider_type(field.name, current, first_table, field.type, name),
                first_table,
            )
    return pa.schema(
        [pa.field(column, type_, nullable=True) for column, (type_, _) in seen.items()]
    )


def _wider_type(
    column: str, left: pa.DataType, left_table: str, right: pa.DataType, right_table: str
) -> pa.DataType:
    if left == right:
        return left
    try:
        unified = pa.unify_schemas(
            [pa.schema([pa.field(column, left)]), pa.schema([pa.field(column, right)])],
            promote_options="permissive",
        )
    except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise TransformError(
            f"cannot stack the input tables: column {column!r} is {left} in table "
            f"{left_table!r} but {right} in table {right_table!r}; give the column one type "
            "in both tables or rename one of them"
        ) from None
    return unified.field(column).type


def _cast_column(column: pa.ChunkedArray, field: pa.Field, table: str) -> pa.ChunkedArray:
    if column.type == field.type:
        return column
    try:
        return column.cast(field.type)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise TransformError(
            f"cannot stack the input tables: column {field.name!r} of table {table!r} does not "
            f"fit the common type {field.type} ({error})"
        ) from None
