"""The SQL expression sandbox for derived columns and filters.

Users write DuckDB SQL expressions (``LOWER(TRIM(email))``, ``status = 'active'``) in job
configs. A SQL engine is not a sandbox by itself, so an expression is only ever run after it
passed an allowlist of node types and functions (``flowforge_rules.expressions``, which the
catalog also applies when a job is saved), and then only in an in-memory DuckDB that can
reach no file, network or extension and sees only the columns the expression reads.

* :func:`check_expression`: refuse anything else, at job save time and again at run time;
* :func:`referenced_columns`: the input columns an expression reads (for lineage/validation);
* :func:`add_derived_columns` and :func:`apply_filters`: evaluate them over a pyarrow Table.

Everything refused or failing raises :class:`ExpressionError`.
"""

from flowforge_rules.expressions import ExpressionError, check_expression, referenced_columns
from flowforge_transform.expressions.sandbox import add_derived_columns, apply_filters

__all__ = [
    "ExpressionError",
    "add_derived_columns",
    "apply_filters",
    "check_expression",
    "referenced_columns",
]
