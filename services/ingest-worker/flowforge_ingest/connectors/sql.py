"""The statements a database read sends, per dialect and driver: pure functions, no I/O.

:func:`plan_read` (a table, a user's query or a stored procedure, full or incremental),
:func:`plan_max` (the upper bound an incremental run fixes first) and :func:`plan_preview`
return a :class:`ReadPlan`; :func:`check_read_only_query` (``flowforge_rules.read_only_query``,
which the catalog applies too) refuses user SQL that could change anything;
:func:`read_only_session_sql` lists what a connector runs when a session starts.

How the text is built, and why
------------------------------
- **Identifiers are quoted by the dialect, always** (``[dbo].[Order Lines]``, ``"public"."t"``,
  `` `shop`.`t` ``): SQLAlchemy's identifier preparer of the dialect doubles the closing quote
  inside a name. Names are therefore used exactly as the database's catalog spells them
  (Oracle and Snowflake store unquoted names in upper case: ``CUSTOMERS``). ``schema`` and
  ``table``/``procedure`` are one name each: a job's qualified ``tableName`` or
  ``storedProcedure`` (``sales.Orders``, ``[db].[risk].[usp_x]``) is split into its parts
  first (``flowforge_shared.contracts.names``, applied by ``database_source.read_target``).
- **Values are always bound, never formatted into the text**, in the driver's paramstyle:
  pymssql, psycopg, pymysql and snowflake-connector use ``%(name)s`` (pyformat; pymssql
  substitutes on the client, quoting each value), pyodbc ``?`` (qmark, ``params`` is then a
  tuple in placeholder order and ``names`` says which is which), oracledb and sqlite3
  ``:name``.
- **Percent signs.** Drivers that format with ``%`` read ``%%`` as ``%`` only when they are
  given parameters, and pymssql never does (SQLAlchemy notes the same). So a plan without
  values has ``params=None`` and its text is left alone: run it as
  ``cursor.execute(*plan.execute_args())``, which leaves the argument out. With values, ``%``
  in identifiers and in the user's query is doubled for psycopg, pymysql and Snowflake, and
  kept for pymssql, where a query holding ``%(name)s`` text is refused instead.
- The statement is assembled here rather than compiled by SQLAlchemy Core: Core adds casts
  (``%(lower)s::INTEGER``), table-qualifies every column and reads ``:word`` inside a user's
  query text as a bind parameter. The exact text is part of the contract; the tests pin it.
- **A user's query** is first checked by :func:`check_read_only_query`. A full read sends it
  unchanged. An incremental read wraps it: ``SELECT * FROM (<query>) AS flowforge_q WHERE
  ...`` (Oracle takes no ``AS`` before a subquery alias). SQL Server refuses a ``WITH`` inside
  a derived table, so there the query's common table expressions are lifted in front of the
  wrapper, text unchanged. Trailing semicolons and comments are cut so a ``--`` comment cannot
  swallow the closing parenthesis.
- **Incremental bounds** are ``delta > :lower AND delta <= :upper`` (``>=`` only when asked):
  the next run's lower bound is this run's upper bound, so no row is read twice or skipped.
  Bound values may be :class:`~flowforge_ingest.connectors.watermark.Watermark` s; with
  ``delta_type`` the placeholder is wrapped so the database converts the bound to the column's
  own type without losing digits (``CAST(%(lower)s AS datetime2(7))``). A first run (no lower
  bound) also reads rows whose delta is NULL.
- **Stored procedures**: SQL Server ``SET NOCOUNT ON; EXEC [schema].[proc] @name = %(p1)s``
  (NOCOUNT so that row counts of the procedure's own statements do not come before its first
  result set, which is the data); PostgreSQL set-returning functions ``SELECT * FROM
  "schema"."fn"(%(p1)s, ...)``; MySQL ``CALL `schema`.`proc`(%(p1)s, ...)``, arguments in the
  order given. Oracle (REF CURSOR out-parameters), Snowflake and SQLite are refused.

Read-only sessions
------------------
:func:`read_only_session_sql` gives PostgreSQL ``SET SESSION CHARACTERISTICS AS TRANSACTION
READ ONLY`` then ``SET TRANSACTION READ ONLY`` (session characteristics only apply to the
*next* transaction, and psycopg has already opened one when it ran the first statement; in
autocommit mode the second one is a harmless warning), MySQL ``SET SESSION TRANSACTION READ ONLY``, Oracle ``SET TRANSACTION READ
ONLY`` (first statement of the read's transaction), SQLite ``PRAGMA query_only = ON``, and
pins the session time zone to UTC where it changes values or bounds (PostgreSQL, MySQL,
Oracle, Snowflake). MySQL's ``SET SESSION TRANSACTION`` also applies from the next
transaction on: run these statements with autocommit on, or commit after them, before the
read starts. SQL Server has no session-wide read-only switch: ``ApplicationIntent=
ReadOnly`` only routes to a readable secondary of an availability group. There, as
everywhere, the login's permissions (``db_datareader``) are the real guarantee; the query
check and the read-only session are the layers in front of it. Snowflake likewise relies on
the role.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import sqlglot
from sqlalchemy.dialects import mssql, mysql, oracle, postgresql, sqlite
from sqlglot.tokens import Token, TokenType

from flowforge_ingest.connectors.types import DB_TYPES, parse_source_type
from flowforge_ingest.connectors.watermark import (
    Watermark,
    bound_expression,
    default_source_type,
    max_expression,
    to_bound,
)
from flowforge_rules.read_only_query import QueryRefused, check_read_only_query, query_tokens

QUERY_ALIAS = "flowforge_q"

DRIVERS: dict[str, dict[str, str]] = {
    "sql-server": {"mssql-python": "pyformat", "pymssql": "pyformat", "pyodbc": "qmark"},
    "postgresql": {"psycopg": "pyformat", "psycopg2": "pyformat"},
    "mysql": {"pymysql": "pyformat", "mysqlclient": "pyformat"},
    "oracle": {"oracledb": "named"},
    "snowflake": {"snowflake": "pyformat"},
    "sqlite": {"sqlite3": "named"},
}
"""The drivers each dialect is planned for, with their DB-API paramstyle."""

DEFAULT_DRIVERS = {
    "sql-server": "mssql-python",
    "postgresql": "psycopg",
    "mysql": "pymysql",
    "oracle": "oracledb",
    "snowflake": "snowflake",
    "sqlite": "sqlite3",
}

# Drivers that format the statement with % when given parameters, so a literal % is %%.
_DOUBLES_PERCENT = frozenset({"psycopg", "psycopg2", "pymysql", "mysqlclient", "snowflake"})
_PYMSSQL_PLACEHOLDER = re.compile(r"%\([^)]+\)[sd]")


@dataclass(frozen=True)
class KeyRange:
    """One range of a parallel read: ``lower <= key < upper`` (either end open when None);
    ``nulls`` adds the rows whose key is NULL (the first range carries them)."""

    column: str
    lower: int | None = None
    upper: int | None = None
    nulls: bool = False


class PlanError(ValueError):
    """A read that cannot be planned as asked (the message says what to change)."""


@dataclass(frozen=True)
class ReadPlan:
    """One statement for one driver.

    ``params`` is what the driver's ``execute`` takes: a dict for pyformat and named styles,
    a tuple in placeholder order for qmark, ``None`` when nothing is bound (then pass no
    second argument at all: :meth:`execute_args`). ``names`` lists the bound names in the
    order their placeholders appear.
    """

    sql: str
    params: Mapping[str, Any] | tuple[Any, ...] | None
    paramstyle: str
    names: tuple[str, ...] = ()

    def execute_args(self) -> tuple[Any, ...]:
        return (self.sql,) if self.params is None else (self.sql, self.params)

    @property
    def bound(self) -> dict[str, Any]:
        """Every bound value by name, whatever the paramstyle (for logs and tests)."""
        if self.params is None:
            return {}
        if isinstance(self.params, tuple):
            return dict(zip(self.names, self.params, strict=True))
        return dict(self.params)


# --- identifiers ------------------------------------------------------------------------------

# SQLAlchemy's preparers, made with the "named" paramstyle so that they never double "%"
# themselves (we do, only where the driver needs it). Snowflake quotes like PostgreSQL:
# double quotes, a double quote inside doubled.
_PREPARERS = {
    "sql-server": mssql.dialect(paramstyle="named").identifier_preparer,
    "postgresql": postgresql.dialect(paramstyle="named").identifier_preparer,
    "mysql": mysql.dialect(paramstyle="named").identifier_preparer,
    "oracle": oracle.dialect(paramstyle="named").identifier_preparer,
    "snowflake": postgresql.dialect(paramstyle="named").identifier_preparer,
    "sqlite": sqlite.dialect(paramstyle="named").identifier_preparer,
}


def quote_identifier(db_type: str, name: str) -> str:
    """``name`` quoted for ``db_type``: always quoted, the quote character escaped."""
    _check_db_type(db_type)
    if not isinstance(name, str) or not name:
        raise PlanError("a table, column or procedure name cannot be empty")
    if "\x00" in name:
        raise PlanError(f"the name {name!r} contains a NUL character")
    if db_type == "oracle" and '"' in name:
        raise PlanError(f"the Oracle name {name!r} contains a double quote, which Oracle forbids")
    return _PREPARERS[db_type].quote_identifier(name)


def qualified_name(db_type: str, schema: str | None, name: str) -> str:
    """``"schema"."name"`` (or just ``"name"`` without a schema), each part quoted."""
    quoted = quote_identifier(db_type, name)
    return f"{quote_identifier(db_type, schema)}.{quoted}" if schema else quoted


# --- the builder ------------------------------------------------------------------------------


class _Statement:
    """Text pieces and bound values; rendered for one driver at the end."""

    def __init__(self, db_type: str, driver: str | None) -> None:
        _check_db_type(db_type)
        self.db_type = db_type
        self.driver = driver or DEFAULT_DRIVERS[db_type]
        if self.driver not in DRIVERS[db_type]:
            raise PlanError(
                f"FlowForge reads {db_type} through {', '.join(DRIVERS[db_type])}, "
                f"not {self.driver!r}"
            )
        self.paramstyle = DRIVERS[db_type][self.driver]
        self.pieces: list[tuple[bool, str]] = []  # (is a placeholder, text)
        self.values: dict[str, Any] = {}
        self.order: list[str] = []

    def text(self, text: str) -> _Statement:
        self.pieces.append((False, text))
        return self

    def bind(self, name: str, value: Any, wrap: str | None = None) -> _Statement:
        """A placeholder for ``value``; ``wrap`` is SQL around it, ``{}`` marking the spot."""
        placeholder = {"pyformat": f"%({name})s", "qmark": "?", "named": f":{name}"}[
            self.paramstyle
        ]
        if wrap is not None:
            if "%" in wrap:
                raise PlanError("a bound value's SQL wrapper cannot contain '%'")
            placeholder = wrap.format(placeholder)
        self.pieces.append((True, placeholder))
        self.values[name] = value
        self.order.append(name)
        return self

    def plan(self, user_texts: Sequence[str] = ()) -> ReadPlan:
        if not self.order:
            return ReadPlan("".join(text for _, text in self.pieces), None, self.paramstyle)
        if self.driver in ("pymssql", "mssql-python"):
            for is_placeholder, text in self.pieces:
                if not is_placeholder and _PYMSSQL_PLACEHOLDER.search(text):
                    raise PlanError(
                        "the query or a name holds text like %(name)s, which would be taken "
                        "for a parameter; remove it"
                    )
        if self.paramstyle == "named":
            for text in user_texts:
                used = _named_parameters(self.db_type, text) & set(self.order)
                if used:
                    raise PlanError(
                        f"the query uses :{sorted(used)[0]}, which FlowForge binds itself; "
                        "rename it"
                    )
        escape = self.driver in _DOUBLES_PERCENT
        sql = "".join(
            text if is_placeholder or not escape else text.replace("%", "%%")
            for is_placeholder, text in self.pieces
        )
        if self.paramstyle == "qmark":
            params: Mapping[str, Any] | tuple[Any, ...] = tuple(
                self.values[name] for name in self.order
            )
        else:
            params = dict(self.values)
        return ReadPlan(sql, params, self.paramstyle, tuple(self.order))


def _named_parameters(db_type: str, text: str) -> set[str]:
    """The ``:name`` parameters of a query (not ``::`` casts, not text inside literals)."""
    tokens = query_tokens(db_type, text)
    return {
        following.text.lower()
        for token, following in zip(tokens, tokens[1:], strict=False)
        if token.token_type == TokenType.COLON and following.start == token.end + 1
    }


# --- plans ------------------------------------------------------------------------------------


def plan_read(
    db_type: str,
    *,
    schema: str | None,
    table: str | None = None,
    query: str | None = None,
    procedure: str | None = None,
    parameters: Mapping[str, Any] | None = None,
    delta_column: str | None = None,
    lower: Any = None,
    upper: Any = None,
    include_lower: bool = False,
    unique_key: Sequence[str] | None = None,
    delta_type: str | None = None,
    order: bool = False,
    driver: str | None = None,
    key_range: KeyRange | None = None,
) -> ReadPlan:
    """The statement reading a table, a user's query or a procedure's first result set.

    ``key_range`` reads one range of a table's key (a parallel read): ``WHERE (range)``,
    the delta bounds, if any, joined with ``AND (...)``.

    ``lower``/``upper`` bound ``delta_column`` (``> lower``, ``>= lower`` with
    ``include_lower``, ``<= upper``); they are Python values or Watermarks, and
    ``delta_type`` (the column's source type) makes the placeholder convert them in the
    database where a driver would lose digits. ``order`` sorts by the delta column, then
    ``unique_key`` (a full read with ``order`` sorts by ``unique_key``).
    """
    statement = _Statement(db_type, driver)
    modes = [name for name, given in (("table", table), ("query", query)) if given]
    modes += ["procedure"] if procedure else []
    if len(modes) != 1:
        raise PlanError("give exactly one of a table, a query or a stored procedure")
    if parameters and not procedure:
        raise PlanError("parameters go with a stored procedure")
    bounded = lower is not None or upper is not None
    if (bounded or order) and delta_column is None and not (order and unique_key):
        raise PlanError("an incremental read needs its delta column")
    if procedure:
        if delta_column is not None or bounded:
            raise PlanError("a stored procedure cannot be read incrementally; use a table or query")
        return _plan_procedure(statement, schema, procedure, parameters or {})

    user_texts: list[str] = []
    if key_range is not None and not table:
        raise PlanError("a parallel read splits a table, not a query")
    joined = False
    if table:
        statement.text("SELECT * FROM " + qualified_name(db_type, schema, table))  # noqa: S608
        if key_range is not None:
            joined = _where_key_range(statement, key_range)
    else:
        prepared = _prepare_query(db_type, query)
        needs_wrapper = delta_column is not None or order
        if not needs_wrapper:
            return statement.text(prepared.text).plan()
        _open_wrapper(statement, prepared, "SELECT * FROM")
        user_texts.append(prepared.text)
    if delta_column is not None:
        if joined and (lower is not None or upper is not None):
            statement.text(" AND (")
            _where_bounds(statement, delta_column, lower, upper, include_lower, delta_type, True)
            statement.text(")")
        else:
            _where_bounds(statement, delta_column, lower, upper, include_lower, delta_type)
    if order:
        keys = ([delta_column] if delta_column else []) + list(unique_key or ())
        statement.text(" ORDER BY " + ", ".join(quote_identifier(db_type, k) for k in keys))
    return statement.plan(user_texts)


def plan_max(
    db_type: str,
    *,
    schema: str | None,
    table: str | None = None,
    query: str | None = None,
    delta_column: str,
    delta_type: str | None = None,
    driver: str | None = None,
) -> ReadPlan:
    """``SELECT MAX(delta)``: the upper bound a run fixes before it reads.

    With ``delta_type`` the maximum comes back as text where a driver would cut digits
    (SQL Server ``CONVERT(varchar(40), MAX(...), 121)``); for a SQL Server rowversion only rows
    below ``MIN_ACTIVE_ROWVERSION()`` count, so a transaction still open when the run starts
    cannot commit a smaller rowversion after it (it would be skipped for ever).
    """
    if (table is None) == (query is None):
        raise PlanError("give exactly one of a table or a query")
    statement = _Statement(db_type, driver)
    column = quote_identifier(db_type, delta_column)
    select = "SELECT " + max_expression(db_type, delta_type, column) + " FROM"
    if table:
        statement.text(f"{select} {qualified_name(db_type, schema, table)}")
    else:
        _open_wrapper(statement, _prepare_query(db_type, query), select)
    rowversion = db_type == "sql-server" and delta_type is not None
    if rowversion and parse_source_type(db_type, delta_type).name in ("rowversion", "timestamp"):
        statement.text(f" WHERE {column} < MIN_ACTIVE_ROWVERSION()")
    return statement.plan()


def plan_key_bounds(
    db_type: str, *, schema: str | None, table: str, column: str, driver: str | None = None
) -> ReadPlan:
    """``SELECT MIN(k), MAX(k)``: the span a parallel read splits into ranges."""
    key = quote_identifier(db_type, column)
    source = qualified_name(db_type, schema, table)
    text = f"SELECT MIN({key}), MAX({key}) FROM {source}"  # noqa: S608 (quoted identifiers)
    return _Statement(db_type, driver).text(text).plan()


def _where_key_range(statement: _Statement, key_range: KeyRange) -> bool:
    """`` WHERE (lower <= k AND k < upper [OR k IS NULL])``; False when the range is the
    whole table (nothing written)."""
    key = quote_identifier(statement.db_type, key_range.column)
    parts: list[tuple[str, str, int]] = []
    if key_range.lower is not None:
        parts.append((f"{key} >= ", "key_lower", key_range.lower))
    if key_range.upper is not None:
        parts.append((f"{key} < ", "key_upper", key_range.upper))
    if not parts:
        return False
    statement.text(" WHERE (")
    for index, (text, name, value) in enumerate(parts):
        statement.text((" AND " if index else "") + text).bind(name, value)
    if key_range.nulls:
        statement.text(f" OR {key} IS NULL")
    statement.text(")")
    return True


def plan_preview(
    db_type: str, *, schema: str | None, table: str, limit: int, driver: str | None = None
) -> ReadPlan:
    """The first ``limit`` rows of a table: ``TOP (n)``, ``FETCH FIRST n ROWS ONLY`` or
    ``LIMIT n``, with ``n`` bound."""
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise PlanError(f"a preview limit is a whole number of rows, not {limit!r}")
    statement = _Statement(db_type, driver)
    source = qualified_name(db_type, schema, table)
    if db_type == "sql-server":
        statement.text("SELECT TOP (").bind("limit", limit).text(f") * FROM {source}")
    elif db_type == "oracle":
        statement.text(f"SELECT * FROM {source} FETCH FIRST ").bind("limit", limit)  # noqa: S608
        statement.text(" ROWS ONLY")
    else:
        statement.text(f"SELECT * FROM {source} LIMIT ").bind("limit", limit)  # noqa: S608
    return statement.plan()


def _plan_procedure(
    statement: _Statement, schema: str | None, procedure: str, parameters: Mapping[str, Any]
) -> ReadPlan:
    db_type = statement.db_type
    name = qualified_name(db_type, schema, procedure)
    if db_type == "sql-server":
        statement.text(f"SET NOCOUNT ON; EXEC {name}")
        for index, (key, value) in enumerate(parameters.items(), start=1):
            if not re.fullmatch(r"@?[^\W\d][\w@#$]*", key):
                raise PlanError(
                    f"{key!r} is not a SQL Server parameter name (@ then letters, digits, _)"
                )
            separator = " " if index == 1 else ", "
            statement.text(f"{separator}@{key.lstrip('@')} = ").bind(f"p{index}", value)
        return statement.plan()
    if db_type in ("postgresql", "mysql"):
        head = f"SELECT * FROM {name}(" if db_type == "postgresql" else f"CALL {name}("  # noqa: S608
        statement.text(head)
        for index, value in enumerate(parameters.values(), start=1):
            if index > 1:
                statement.text(", ")
            if db_type == "postgresql":
                value = _postgres_argument(value)
            statement.bind(f"p{index}", value)
        return statement.text(")").plan()
    reasons = {
        "oracle": "Oracle procedures return rows through REF CURSOR out-parameters, which "
        "FlowForge does not read",
        "snowflake": "Snowflake procedures return a single value, not rows",
        "sqlite": "SQLite has no stored procedures",
    }
    raise PlanError(f"{reasons[db_type]}; read a table, a view or a query instead")


def _postgres_argument(value: Any) -> Any:
    """A JSON number with a fraction goes to a PostgreSQL function as ``numeric``, not
    ``double precision``: PostgreSQL finds a function by its arguments' types, and casts
    ``numeric`` to a ``real``, ``double precision`` or ``numeric`` parameter implicitly but
    ``double precision`` to none but its own."""
    if isinstance(value, float) and math.isfinite(value):
        return Decimal(repr(value))
    return value


def _where_bounds(
    statement: _Statement,
    delta_column: str,
    lower: Any,
    upper: Any,
    include_lower: bool,
    delta_type: str | None,
    joined: bool = False,
) -> None:
    db_type = statement.db_type
    where = "" if joined else " WHERE "
    column = quote_identifier(db_type, delta_column)
    mark = next((b for b in (lower, upper) if isinstance(b, Watermark)), None)
    if delta_type is None and mark is not None:
        # the bound text and its conversion must agree: both follow the kind's usual type
        delta_type = default_source_type(db_type, mark.kind)
    wrap = bound_expression(db_type, delta_type, "{}") if delta_type else None
    if wrap == "{}":
        wrap = None
    conditions = 0
    if lower is not None:
        statement.text(f"{where}{column} {'>=' if include_lower else '>'} ")
        statement.bind("lower", _bound(lower, db_type, delta_type), wrap)
        conditions += 1
    if upper is not None:
        statement.text(f"{' AND ' if conditions else where}{column} <= ")
        statement.bind("upper", _bound(upper, db_type, delta_type), wrap)
        if lower is None:  # a first run: rows without a delta are read once, now
            statement.text(f" OR {column} IS NULL")


def _bound(value: Any, db_type: str, delta_type: str | None) -> Any:
    return to_bound(value, db_type, delta_type) if isinstance(value, Watermark) else value


# --- user queries -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _PreparedQuery:
    text: str  # the query without leading/trailing semicolons and trailing comments
    ctes: str  # SQL Server: the WITH clause lifted in front of the wrapper ("" if none)
    body: str  # what goes inside the wrapper's parentheses


def _prepare_query(db_type: str, query: str | None) -> _PreparedQuery:
    check_read_only_query(db_type, query or "")
    tokens = query_tokens(db_type, query or "")
    while tokens and tokens[0].token_type == TokenType.SEMICOLON:
        tokens = tokens[1:]
    while tokens and tokens[-1].token_type == TokenType.SEMICOLON:
        tokens = tokens[:-1]
    text = query[tokens[0].start : tokens[-1].end + 1]
    if db_type != "sql-server" or tokens[0].token_type != TokenType.WITH:
        return _PreparedQuery(text, "", text)
    body_start = _after_ctes(tokens)
    offset = tokens[0].start
    ctes = text[: tokens[body_start].start - offset].rstrip()
    body = text[tokens[body_start].start - offset :]
    return _PreparedQuery(text, ctes, body)


def _after_ctes(tokens: list[Token]) -> int:
    """Index of the first token after ``WITH a [(cols)] AS (...)[, b AS (...)]``."""
    # a CTE's name may be a keyword token (WITH first AS ...): anything but punctuation
    punctuation = {TokenType.L_PAREN, TokenType.R_PAREN, TokenType.COMMA, TokenType.SEMICOLON}
    names = tuple(kind for kind in TokenType if kind not in punctuation)

    def expect(position: int, kinds: tuple[TokenType, ...]) -> int:
        if position >= len(tokens) or tokens[position].token_type not in kinds:
            raise QueryRefused(
                "FlowForge cannot wrap this WITH clause for an incremental read on SQL Server; "
                "read from a view holding the query instead"
            )
        return position

    position = 1
    while True:
        position = expect(position, names) + 1  # the CTE's name
        if position < len(tokens) and tokens[position].token_type == TokenType.L_PAREN:
            position = _closing(tokens, position) + 1  # a column list
        position = expect(position, (TokenType.ALIAS,)) + 1
        position = _closing(tokens, expect(position, (TokenType.L_PAREN,))) + 1  # the query
        if tokens[expect(position, tuple(TokenType))].token_type != TokenType.COMMA:
            return position
        position += 1


def _closing(tokens: list[Token], opening: int) -> int:
    """Index of the parenthesis closing the one at ``opening``."""
    depth = 0
    for index in range(opening, len(tokens)):
        kind = tokens[index].token_type
        depth += kind == TokenType.L_PAREN
        depth -= kind == TokenType.R_PAREN
        if depth == 0:
            return index
    raise QueryRefused("the query's parentheses are not balanced")


def _open_wrapper(statement: _Statement, prepared: _PreparedQuery, select: str) -> None:
    db_type = statement.db_type
    if db_type == "sql-server":
        _refuse_order_in_derived_table(prepared.body)
    alias = QUERY_ALIAS if db_type == "oracle" else f"AS {QUERY_ALIAS}"
    head = f"{prepared.ctes} " if prepared.ctes else ""
    statement.text(f"{head}{select} (").text(prepared.body).text(f") {alias}")


def _refuse_order_in_derived_table(body: str) -> None:
    root = sqlglot.parse_one(body, read="tsql")
    if root.args.get("order") and not (root.args.get("limit") or root.args.get("offset")):
        raise QueryRefused(
            "SQL Server does not allow ORDER BY in a query FlowForge wraps for an "
            "incremental read (without TOP or OFFSET); remove the ORDER BY"
        )


# --- sessions ---------------------------------------------------------------------------------

_SESSION_SQL: dict[str, tuple[str, ...]] = {
    "postgresql": (
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET TRANSACTION READ ONLY",
        "SET TIME ZONE 'UTC'",
    ),
    "mysql": ("SET SESSION TRANSACTION READ ONLY", "SET time_zone = '+00:00'"),
    "oracle": ("ALTER SESSION SET TIME_ZONE = '+00:00'", "SET TRANSACTION READ ONLY"),
    "snowflake": ("ALTER SESSION SET TIMEZONE = 'UTC'",),
    "sqlite": ("PRAGMA query_only = ON",),
    "sql-server": (),
}


def read_only_session_sql(db_type: str) -> list[str]:
    """Statements to run, in order, when a read's session starts (see the module docstring;
    Oracle's SET TRANSACTION must be the first statement of the transaction that reads)."""
    _check_db_type(db_type)
    return list(_SESSION_SQL[db_type])


def _check_db_type(db_type: str) -> None:
    if db_type not in DB_TYPES:
        raise PlanError(f"unknown database type {db_type!r}; expected one of {', '.join(DB_TYPES)}")
