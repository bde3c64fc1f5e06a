"""Evaluating checked expressions over an Arrow table in a locked-down DuckDB.

Layers, each enough to stop what the others miss:

1. the sqlglot allowlist (``flowforge_rules.expressions.checker``) refuses anything but one
   allowed expression;
2. DuckDB's own parser reads the exact SQL we are about to run (``json_serialize_sql``) and that
   tree is checked against the same allowlist in DuckDB's vocabulary;
3. the connection is in memory, has file, network and extension access switched off and its
   configuration locked before any user-derived text touches it, and its only relation holds
   just the columns the expression reads (renamed ``c0``, ``c1``, ...).

Only the expression's value comes back from DuckDB: derived columns are added to, and filters
applied to, the caller's Arrow table by pyarrow, so the other columns keep their exact types
and the rows keep their order.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import duckdb
import pyarrow as pa

from flowforge_rules.expressions import allowlist, strict_time
from flowforge_rules.expressions.checker import Compiled, compile_expression
from flowforge_rules.expressions.errors import ExpressionError

RELATION = "flowforge_input"

_CONFIG: dict[str, Any] = {
    "enable_external_access": False,
    "autoload_known_extensions": False,
    "autoinstall_known_extensions": False,
    "allow_community_extensions": False,
    "python_enable_replacements": False,
}
# UTC: CURRENT_DATE must not depend on the worker's time zone (a rerun elsewhere must agree).
_SETTINGS = {"TimeZone": "UTC", "preserve_insertion_order": True}


def add_derived_columns(table: pa.Table, derived: Sequence[tuple[str, str]]) -> pa.Table:
    """Add (or replace, in place) one column per ``(name, expression)``, in order.

    Each expression may read the input columns and the derived columns before it. All of
    them are checked before any is evaluated.
    """
    available = list(table.column_names)
    compiled: list[Compiled] = []
    for name, expression in derived:
        compiled.append(compile_expression(expression, available))
        if name not in available:
            available.append(name)
    if not compiled:
        return table
    with _sandbox() as connection:
        for (name, expression), plan in zip(derived, compiled, strict=True):
            values = _evaluate(connection, table, expression, plan)
            if name in table.column_names:
                table = table.set_column(table.column_names.index(name), name, values)
            else:
                table = table.append_column(name, values)
    return table


def apply_filters(table: pa.Table, filters: Sequence[str]) -> pa.Table:
    """Keep the rows for which every filter is true (NULL counts as not true), in order.

    Filters apply one after another, so a later filter only sees rows the earlier ones kept.
    """
    compiled = [compile_expression(expression, table.column_names) for expression in filters]
    if not compiled:
        return table
    with _sandbox() as connection:
        for expression, plan in zip(filters, compiled, strict=True):
            mask = _evaluate(connection, table, expression, plan)
            if pa.types.is_null(mask.type):
                mask = mask.cast(pa.bool_())
            if not pa.types.is_boolean(mask.type):
                raise ExpressionError(
                    expression,
                    f"a filter must be a condition (true or false); this one gives {mask.type}",
                    stage="evaluation",
                )
            table = table.filter(mask, null_selection_behavior="drop")
    return table


@contextmanager
def _sandbox() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(":memory:", config=_CONFIG)
    try:
        for name, value in _SETTINGS.items():
            connection.execute(f"SET {name} = {_sql_value(value)}")
        for macro in strict_time.MACROS:
            connection.execute(macro)
        connection.execute("SET lock_configuration = true")
        _assert_locked_down(connection)
        yield connection
    finally:
        connection.close()


def _sql_value(value: object) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else f"'{value}'"


def _assert_locked_down(connection: duckdb.DuckDBPyConnection) -> None:
    # Fail closed if a DuckDB upgrade ever ignores one of these settings.
    expected: dict[str, Any] = {**_CONFIG, **_SETTINGS, "lock_configuration": True}
    for name, value in expected.items():
        rows = connection.execute("SELECT current_setting($1)", [name]).fetchall()
        actual = rows[0][0] if rows else None
        if str(actual).lower() != str(value).lower():
            raise RuntimeError(f"DuckDB sandbox setting {name} is {actual!r}, expected {value!r}")


def _evaluate(
    connection: duckdb.DuckDBPyConnection, table: pa.Table, expression: str, plan: Compiled
) -> pa.ChunkedArray:
    aliases = [f"c{index}" for index in range(len(plan.inputs))]
    if plan.inputs:
        columns = [table.column(table.column_names.index(name)) for name in plan.inputs]
        relation = pa.Table.from_arrays(columns, names=aliases)
    else:
        # No column read (e.g. CURRENT_DATE): still one value per row.
        relation = pa.table({"rows": pa.nulls(table.num_rows)})
    # plan.sql is sqlglot's rendering of a checked tree, never the user's text; DuckDB's own
    # parse of this exact string is checked next.
    sql = f'SELECT {plan.sql} FROM "{RELATION}"'  # noqa: S608
    verify_with_duckdb(connection, sql, expression, set(aliases))
    connection.register(RELATION, relation)
    try:
        result = connection.sql(sql).to_arrow_table()
    except duckdb.Error as error:
        raise ExpressionError(expression, _duckdb_message(error), stage="evaluation") from error
    finally:
        connection.unregister(RELATION)
    if result.num_rows != table.num_rows:
        raise RuntimeError(f"DuckDB returned {result.num_rows} rows for {table.num_rows}")
    return result.column(0)


def _duckdb_message(error: duckdb.Error) -> str:
    # DuckDB appends the SQL it ran (with our internal column aliases) and candidate lists;
    # the first line is the part a user can act on.
    lines = str(error).strip().splitlines()
    return lines[0] if lines else type(error).__name__


def verify_with_duckdb(
    connection: duckdb.DuckDBPyConnection, sql: str, expression: str, columns: set[str]
) -> None:
    """Refuse ``sql`` unless DuckDB's own parse of it is ``SELECT <allowed> FROM RELATION``."""
    # fetchall, not fetchone: DuckDB refuses other work while a result is left unfinished.
    rows = connection.execute("SELECT json_serialize_sql($1::VARCHAR)", [sql]).fetchall()
    parsed = json.loads(rows[0][0]) if rows else {}
    statements = parsed.get("statements") or []
    if parsed.get("error") or len(statements) != 1:
        raise ExpressionError(expression, "DuckDB does not read it as one expression")
    node = statements[0].get("node", {})
    source = node.get("from_table") or {}
    shape_ok = (
        node.get("type") == "SELECT_NODE"
        and len(node.get("select_list") or []) == 1
        and not node.get("modifiers")
        and not (node.get("cte_map") or {}).get("map")
        and source.get("type") == "BASE_TABLE"
        and source.get("table_name") == RELATION
        and not source.get("schema_name")
        and not source.get("catalog_name")
        and not node.get("group_expressions")
        and not node.get("group_sets")
        and all(node.get(key) is None for key in ("where_clause", "having", "qualify", "sample"))
    )
    if not shape_ok:
        raise ExpressionError(expression, "DuckDB does not read it as one expression")
    problem = _duckdb_node_problem(node["select_list"][0], columns)
    if problem is not None:
        raise ExpressionError(expression, f"{problem} is not allowed")


def _duckdb_node_problem(root: object, columns: set[str]) -> str | None:
    """Walk DuckDB's JSON parse tree; every dict with a "class" is an expression node."""
    pending = [root]  # an explicit stack: deep expressions must not exhaust Python's
    while pending:
        node = pending.pop()
        if isinstance(node, list):
            pending.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        kind = node.get("class")
        if kind is not None:
            problem = _duckdb_class_problem(kind, node, columns)
            if problem is not None:
                return problem
        # a CAST's target type was checked whole; its parameters are not expressions
        pending.extend(
            value for key, value in node.items() if not (kind == "CAST" and key == "type_expr")
        )
    return None


def _duckdb_class_problem(kind: object, node: dict[str, Any], columns: set[str]) -> str | None:
    if kind not in allowlist.DUCKDB_CLASSES:
        return f"{str(kind).lower().replace('_', ' ')}"
    if kind == "COLUMN_REF":
        names = node.get("column_names") or []
        known = len(names) == 1 and (
            names[0] in columns or str(names[0]).lower() in allowlist.DUCKDB_KEYWORD_VALUES
        )
        return None if known else f"column {'.'.join(map(str, names))}"
    if kind == "FUNCTION":
        name = str(node.get("function_name", "")).lower()
        plain = (
            not node.get("schema")
            and not node.get("catalog")
            and node.get("filter") is None
            and not (node.get("order_bys") or {}).get("orders")
            and not node.get("distinct")
            and not node.get("export_state")
        )
        known = name in allowlist.DUCKDB_FUNCTIONS or name in strict_time.FUNCTIONS
        return None if known and plain else f"function {name}"
    if kind == "CAST":
        return _duckdb_cast_type_problem(node.get("type_expr") or {})
    return None


def _duckdb_cast_type_problem(type_expr: dict[str, Any]) -> str | None:
    name = str(type_expr.get("type_name", "")).upper()
    parameters = type_expr.get("children") or []
    plain = (
        type_expr.get("class") == "TYPE"
        and not type_expr.get("catalog")
        and not type_expr.get("schema")
        and all(
            isinstance(parameter, dict)
            and parameter.get("class") == "CONSTANT"
            and (parameter.get("literal") or {}).get("kind") == "INTEGER"
            for parameter in parameters
        )
    )
    return None if name in allowlist.DUCKDB_CAST_TYPES and plain else f"cast to {name or '?'}"
