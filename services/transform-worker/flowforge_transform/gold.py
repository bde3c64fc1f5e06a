"""Gold tables: joined and aggregated views of silver (or bronze) data, rebuilt in full.

:func:`build_gold` runs these steps, in this order:

0. the bronze audit columns (``_ingested_at``, ``_source``, ...) of the input are left out:
   gold is a business output, and a rebuild from unchanged data must give equal rows.
1. joins: the input is joined with each listed table in turn (found in any layer), on the
   same-named key column(s). For a right or full join the key is the value of whichever side
   has it. The joined table's bronze audit columns are left out (they describe how the lookup
   table was loaded, not the rows being built); any other column whose name clashes with one
   already present (compared case-insensitively, as Delta and DuckDB compare names) is renamed
   ``<column>_<joined table>``. Row order: the input's, then the joined table's.
2. derived columns, then filters (the expression sandbox) — the same order as silver, so a
   filter may use a derived column.
3. groupBy + aggregations. SUM of integers is int64, SUM of decimals keeps the decimal scale
   (exact, at precision 38), AVG is a double, COUNT and COUNT_DISTINCT are int64, ``COUNT`` of
   ``*`` counts rows. Without groupBy the aggregations give one row. Rows come sorted by the
   group columns.
4. one overwrite commit (``schema_mode="overwrite"``): readers see the old table or the new
   one, never a mix, and the schema follows the configuration.

The computation runs in an in-memory DuckDB with file access disabled; the only SQL text is
built here from identifiers quoted by :func:`~flowforge_transform.silver.quote_identifier`.
User expressions reach DuckDB only through the expression sandbox.

Retry safety: the commit carries ``commit_properties(app_id, run_sequence, ...)``; a retry that
finds this run's own commit reports it and builds nothing, a later run's commit makes this run
stale (``StaleRunError``). ``materialization: view`` is written as a
table too (Delta has no views).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa
from deltalake import write_deltalake
from deltalake.exceptions import CommitFailedError

from flowforge_shared.contracts.jobs import Aggregation, GoldConfig, Join, TransformationConfig
from flowforge_shared.lake import Lake, PriorCommit, commit_properties, this_runs_commit
from flowforge_transform.inputs import BRONZE_AUDIT_COLUMNS, TransformError, read_table
from flowforge_transform.silver import apply_expressions, positions, quote_identifier

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 3
_LEFT_POSITION = "__flowforge_left_position"
_RIGHT_POSITION = "__flowforge_right_position"
# What the data or the configuration can cause (types that do not compare, a sum that
# overflows int64); anything else from DuckDB is not the user's to fix and propagates.
_USER_ERRORS = (
    duckdb.BinderException,
    duckdb.ConversionException,
    duckdb.OutOfRangeException,
    duckdb.InvalidInputException,
)
_JOIN_SQL = {"inner": "INNER", "left": "LEFT", "right": "RIGHT", "full": "FULL OUTER"}


@dataclass(frozen=True)
class GoldResult:
    rows_written: int
    """Rows in the rebuilt table (of this run's earlier commit, when already applied)."""
    version: int | None
    row_count: int
    """Rows in the table after the build."""
    already_applied: PriorCommit | None = None

    @property
    def skipped_as_already_committed(self) -> bool:
        return self.already_applied is not None


def build_gold(
    lake: Lake,
    input: pa.Table,
    transformation: TransformationConfig | None,
    config: GoldConfig,
    *,
    app_id: str,
    run_sequence: int,
    execution_id: str,
) -> GoldResult:
    """Rebuild the gold table ``config.table_name`` from ``input`` in one commit."""
    target = lake.load("gold", config.table_name)
    prior = this_runs_commit(target, app_id, run_sequence, f"gold table {config.table_name!r}")
    if prior is not None:
        assert target is not None
        return GoldResult(prior.rows or 0, prior.version, target.count(), prior)

    steps = transformation or TransformationConfig()
    # Gold tables are business outputs: the load bookkeeping of bronze and silver (when a row
    # was ingested, from which file) stays behind, so a rebuild from unchanged data is equal.
    rows = input.drop_columns([c for c in BRONZE_AUDIT_COLUMNS if c in input.column_names])
    if steps.joins and config.denormalization_enabled is not False:
        for join in steps.joins:
            rows = join_table(rows, read_table(lake, join.table), join)
    rows = apply_expressions(rows, steps.derived_columns, steps.filters)
    if steps.group_by and not steps.aggregations:
        raise TransformError(
            f"gold table {config.table_name!r}: groupBy needs at least one aggregation"
        )
    if steps.aggregations and config.aggregation_enabled is not False:
        rows = aggregate(rows, steps.group_by or [], steps.aggregations)
    return _write(lake, rows, config.table_name, app_id, run_sequence, execution_id)


def _write(
    lake: Lake, rows: pa.Table, table_name: str, app_id: str, run_sequence: int, execution_id: str
) -> GoldResult:
    properties = commit_properties(app_id, run_sequence, execution_id=execution_id)
    for attempt in range(1, MAX_ATTEMPTS + 1):
        # A new table is created empty, then written against its snapshot like any later
        # build (a commit to a path with no table escapes delta-rs's duplicate check).
        target = lake.load_or_create("gold", table_name, rows.schema)
        prior = this_runs_commit(target, app_id, run_sequence, f"gold table {table_name!r}")
        if prior is not None:
            return GoldResult(prior.rows or 0, prior.version, target.count(), prior)
        try:
            write_deltalake(
                target,
                rows,
                mode="overwrite",
                schema_mode="overwrite",
                commit_properties=properties,
            )
        except CommitFailedError:
            # The rows do not depend on the old gold table: rewriting them is the whole retry.
            if attempt == MAX_ATTEMPTS:
                raise
            log.info("gold table %s changed while writing: retrying", table_name)
            continue
        return GoldResult(rows.num_rows, target.version(), target.count())
    raise AssertionError("unreachable")


def join_table(left: pa.Table, right: pa.Table, join: Join) -> pa.Table:
    """``left`` joined with the table ``join.table`` (its rows in ``right``)."""
    keys = [join.on] if isinstance(join.on, str) else list(join.on)
    for side, table in (("the input", left), (f"table {join.table!r}", right)):
        missing = [key for key in keys if key not in table.column_names]
        if missing:
            raise TransformError(
                f"join with {join.table!r}: key column(s) {', '.join(missing)} not in {side}; "
                f"its columns are {', '.join(table.column_names)}"
            )
    taken = {name.lower() for name in left.column_names}
    added: list[tuple[str, str]] = []  # (column in right, name in the result)
    for name in right.column_names:
        if name in keys or name in BRONZE_AUDIT_COLUMNS:
            continue
        result_name = name if name.lower() not in taken else f"{name}_{join.table}"
        if result_name.lower() in taken:
            raise TransformError(
                f"join with {join.table!r}: column {name!r} clashes with an input column, and "
                f"so does its renamed form {result_name!r}; rename one of them upstream"
            )
        taken.add(result_name.lower())
        added.append((name, result_name))

    q = quote_identifier
    outer_right = join.type in ("right", "full")
    selected = []
    for name in left.column_names:
        if name in keys and outer_right:
            selected.append(f"COALESCE(l.{q(name)}, r.{q(name)}) AS {q(name)}")
        else:
            selected.append(f"l.{q(name)}")
    selected.extend(f"r.{q(name)} AS {q(result_name)}" for name, result_name in added)
    condition = " AND ".join(f"l.{q(key)} = r.{q(key)}" for key in keys)
    # Only identifiers quoted above and the fixed words of _JOIN_SQL go into the text.
    sql = (
        f"SELECT {', '.join(selected)} FROM left_rows AS l "  # noqa: S608
        f"{_JOIN_SQL[join.type]} JOIN right_rows AS r ON {condition} "
        f"ORDER BY l.{q(_LEFT_POSITION)} NULLS LAST, r.{q(_RIGHT_POSITION)} NULLS LAST"
    )
    tables = {
        "left_rows": _with_position(left, _LEFT_POSITION),
        "right_rows": _with_position(right, _RIGHT_POSITION),
    }
    return _run(sql, tables, f"join with {join.table!r} on {', '.join(keys)}")


def aggregate(
    rows: pa.Table, group_by: Sequence[str], aggregations: Sequence[Aggregation]
) -> pa.Table:
    """One row per group (or one row without groups) holding each aggregation's alias."""
    missing = [c for c in group_by if c not in rows.column_names]
    if missing:
        raise TransformError(
            f"groupBy column(s) {', '.join(missing)} not in the rows being aggregated; "
            f"the columns are {', '.join(rows.column_names)}"
        )
    groups = {column.lower() for column in group_by}
    q = quote_identifier
    selected = [q(column) for column in group_by]
    for aggregation in aggregations:
        if aggregation.alias.lower() in groups:
            raise TransformError(
                f"aggregation alias {aggregation.alias!r} is also a groupBy column: "
                "choose another alias"
            )
        selected.append(f"{_aggregate_sql(rows, aggregation)} AS {q(aggregation.alias)}")
    sql = f"SELECT {', '.join(selected)} FROM rows"  # noqa: S608 (quoted identifiers only)
    if group_by:
        columns = ", ".join(q(column) for column in group_by)
        sql += f" GROUP BY {columns} ORDER BY {columns} NULLS LAST"
    return _run(sql, {"rows": rows}, "aggregation")


def _aggregate_sql(rows: pa.Table, aggregation: Aggregation) -> str:
    function, column = aggregation.function, aggregation.column
    if column == "*":
        if function != "COUNT":
            raise TransformError(
                f"aggregation {aggregation.alias!r}: {function} needs a column; "
                "only COUNT takes '*'"
            )
        return "COUNT(*)"
    if column not in rows.column_names:
        raise TransformError(
            f"aggregation {aggregation.alias!r}: column {column!r} not in the rows being "
            f"aggregated; the columns are {', '.join(rows.column_names)}"
        )
    type_ = rows.schema.field(column).type
    quoted = quote_identifier(column)
    if function in ("SUM", "AVG"):
        numeric = pa.types.is_integer(type_) or pa.types.is_floating(type_)
        if not (numeric or pa.types.is_decimal(type_)):
            raise TransformError(
                f"aggregation {aggregation.alias!r}: {function} needs a numeric column, "
                f"but {column!r} is {type_}"
            )
        if function == "SUM" and pa.types.is_integer(type_):
            # DuckDB sums integers as a 128-bit integer, which Delta cannot store.
            return f"CAST(SUM({quoted}) AS BIGINT)"
        return f"{function}({quoted})"
    if function == "COUNT_DISTINCT":
        return f"COUNT(DISTINCT {quoted})"
    return f"{function}({quoted})"


def _with_position(table: pa.Table, name: str) -> pa.Table:
    return table.append_column(name, positions(table.num_rows))


def _run(sql: str, tables: dict[str, pa.Table], step: str) -> pa.Table:
    connection = duckdb.connect(
        ":memory:",
        config={
            "enable_external_access": False,
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
        },
    )
    try:
        connection.execute("SET TimeZone = 'UTC'")  # timestamps come back labelled UTC
        connection.execute("SET lock_configuration = true")
        for name, table in tables.items():
            connection.register(name, table)
        return connection.sql(sql).to_arrow_table()
    except _USER_ERRORS as error:
        raise TransformError(f"gold {step} failed: {error}") from None
    finally:
        connection.close()
