"""The rules of SQL expressions for derived columns and filters (sqlglot only, no DuckDB).

Users write DuckDB SQL expressions (``LOWER(TRIM(email))``, ``status = 'active'``) in job
configs. An expression is only ever run after it passed an allowlist of node types and
functions (:mod:`.allowlist`); the catalog checks it when a job is saved, and the transform
worker checks it again and evaluates it in its DuckDB sandbox
(``flowforge_transform.expressions``).

* :func:`check_expression`: refuse anything else;
* :func:`referenced_columns`: the input columns an expression reads (for lineage/validation).

Everything refused raises :class:`ExpressionError`.
"""

from flowforge_rules.expressions.checker import check_expression, referenced_columns
from flowforge_rules.expressions.errors import ExpressionError

__all__ = ["ExpressionError", "check_expression", "referenced_columns"]
