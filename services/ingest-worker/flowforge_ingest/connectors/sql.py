"""The statements a database read sends, per dialect and driver: pure functions, no I/O.

:func:`plan_read` (a table, a user's query or a stored procedure, full or incremental),
:func:`plan_max` (the upper bound an incremental run fixes first) and :func:`plan_preview`
return a :class:`ReadPlan`; :func:`check_read_only_query` refuses user SQL that could change
anything; :func:`read_only_session_sql` lists what a connector runs when a session starts.

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

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlalchemy.dialects import mssql, mysql, oracle, postgresql, sqlite
from sqlglot import exp
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import Token, TokenType

from flowforge_ingest.connectors.types import DB_TYPES, parse_source_type
from flowforge_ingest.connectors.watermark import (
    Watermark,
    bound_expression,
    default_source_type,
    max_expression,
    to_bound,
)

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


class PlanError(ValueError):
    """A read that cannot be planned as asked (the message says what to change)."""


class QueryRefused(ValueError):
    """A user's query that is not one read-only SELECT; ``reason`` says what was found."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason

    def __reduce__(self):
        return (type(self), (self.reason,))


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
    tokens = _tokens(db_type, text)
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
) -> ReadPlan:
    """The statement reading a table, a user's query or a procedure's first result set.

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
    if table:
        statement.text("SELECT * FROM " + qualified_name(db_type, schema, table))  # noqa: S608
    else:
        prepared = _prepare_query(db_type, query)
        needs_wrapper = delta_column is not None or order
        if not needs_wrapper:
            return statement.text(prepared.text).plan()
        _open_wrapper(statement, prepared, "SELECT * FROM")
        user_texts.append(prepared.text)
    if delta_column is not None:
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
            statement.bind(f"p{index}", value)
        return statement.text(")").plan()
    reasons = {
        "oracle": "Oracle procedures return rows through REF CURSOR out-parameters, which "
        "FlowForge does not read",
        "snowflake": "Snowflake procedures return a single value, not rows",
        "sqlite": "SQLite has no stored procedures",
    }
    raise PlanError(f"{reasons[db_type]}; read a table, a view or a query instead")


def _where_bounds(
    statement: _Statement,
    delta_column: str,
    lower: Any,
    upper: Any,
    include_lower: bool,
    delta_type: str | None,
) -> None:
    db_type = statement.db_type
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
        statement.text(f" WHERE {column} {'>=' if include_lower else '>'} ")
        statement.bind("lower", _bound(lower, db_type, delta_type), wrap)
        conditions += 1
    if upper is not None:
        statement.text(f" {'AND' if conditions else 'WHERE'} {column} <= ")
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
    tokens = _tokens(db_type, query or "")
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


# --- the read-only check ----------------------------------------------------------------------

SQLGLOT_DIALECTS = {
    "sql-server": "tsql",
    "postgresql": "postgres",
    "mysql": "mysql",
    "oracle": "oracle",
    "snowflake": "snowflake",
    "sqlite": "sqlite",
}

_DENIED_FUNCTIONS: dict[str, frozenset[str]] = {
    "postgresql": frozenset(
        {
            "pg_sleep",
            "pg_sleep_for",
            "pg_sleep_until",
            "pg_read_file",
            "pg_read_binary_file",
            "pg_ls_dir",
            "pg_stat_file",
            "pg_file_write",
            "pg_file_rename",
            "pg_file_unlink",
            "pg_logdir_ls",
            "pg_ls_logdir",
            "pg_ls_waldir",
            "pg_ls_tmpdir",
            "pg_terminate_backend",
            "pg_cancel_backend",
            "pg_reload_conf",
            "pg_rotate_logfile",
            "pg_switch_wal",
            "pg_create_restore_point",
            "pg_promote",
            "pg_logical_emit_message",
            "pg_notify",
            "set_config",
            "nextval",
            "setval",
            "query_to_xml",
            "query_to_xmlschema",
            "query_to_xml_and_xmlschema",
            "cursor_to_xml",
            "lowrite",
        }
    ),
    "sql-server": frozenset(
        {
            "openrowset",
            "openquery",
            "opendatasource",
            "fn_get_audit_file",
            "fn_xe_file_target_read_file",
            "fn_trace_gettable",
        }
    ),
    "mysql": frozenset(
        {
            "load_file",
            "sleep",
            "benchmark",
            "get_lock",
            "release_lock",
            "release_all_locks",
            "master_pos_wait",
            "source_pos_wait",
            "wait_for_executed_gtid_set",
            "wait_until_sql_thread_after_gtids",
            "sys_exec",
            "sys_eval",
        }
    ),
    "oracle": frozenset({"httpuritype"}),
    "snowflake": frozenset(),
    "sqlite": frozenset(
        {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer", "zipfile"}
    ),
}
_DENIED_PREFIXES: dict[str, tuple[str, ...]] = {
    "postgresql": ("dblink", "lo_", "pg_advisory", "pg_try_advisory"),
    "sql-server": ("xp_", "sp_"),
    "mysql": (),
    "oracle": (),
    "snowflake": ("system$",),
    "sqlite": (),
}
# Oracle packages reach the network (UTL_HTTP, UTL_TCP...), files (UTL_FILE), other
# sessions (DBMS_PIPE, DBMS_ALERT), or run SQL text (DBMS_SQL, DBMS_XMLGEN): all refused
# but DBMS_LOB, which reads LOBs.
_ORACLE_ALLOWED_PACKAGES = frozenset({"dbms_lob"})
_LOCKING_HINTS = frozenset(
    {"updlock", "xlock", "tablock", "tablockx", "holdlock", "paglock", "serializable"}
    | {"repeatableread"}
)
_WRITES = {exp.Insert: "INSERT", exp.Update: "UPDATE", exp.Delete: "DELETE", exp.Merge: "MERGE"}
_CHANGES = (exp.Create, exp.Drop, exp.Alter, exp.TruncateTable, exp.Grant, exp.Revoke)
_RUNS = (exp.Command, exp.Execute, exp.Copy, exp.Set, exp.Use, exp.Transaction, exp.Commit)


def check_read_only_query(db_type: str, query: str) -> None:
    """Raise :class:`QueryRefused` unless ``query`` is exactly one read-only SELECT.

    Parsed with sqlglot in the source's dialect: one statement, a SELECT, a set operation of
    SELECTs, or WITH ... SELECT, with nothing inside it that writes (a data-modifying CTE),
    changes the schema or permissions, runs a procedure, selects INTO, takes locks (FOR
    UPDATE, UPDLOCK...), or calls a function of the dialect's short denylist (sleeping,
    reading files, reaching other servers, changing settings). Functions a user defined are
    not known here: the read-only session and the login's permissions cover them.
    """
    _check_db_type(db_type)
    if not isinstance(query, str) or not query.strip():
        raise QueryRefused("the query is empty")
    if "\x00" in query:
        raise QueryRefused("the query contains a NUL character")
    tokens = _tokens(db_type, query)
    _check_tokens(db_type, tokens)
    dialect = SQLGLOT_DIALECTS[db_type]
    try:
        parsed = sqlglot.parse(query, read=dialect)
        # a comment after the last ";" comes back as a Semicolon "statement"
        statements = [s for s in parsed if s is not None and not isinstance(s, exp.Semicolon)]
    except ParseError as error:
        keyword = next(t.text.upper() for t in tokens if t.token_type != TokenType.SEMICOLON)
        if keyword not in ("SELECT", "WITH", "(", "TABLE"):
            raise QueryRefused(
                f"only a SELECT (or WITH ... SELECT) is allowed, not {keyword}"
            ) from None
        first = error.errors[0] if error.errors else {}
        where = f" at line {first.get('line')}, column {first.get('col')}" if first else ""
        raise QueryRefused(
            f"FlowForge could not read the query as {db_type} SQL{where} "
            f"({first.get('description', 'invalid syntax') if first else error}); "
            "simplify it or read from a view"
        ) from None
    if not statements:
        raise QueryRefused("the query is empty")
    if len(statements) > 1:
        raise QueryRefused(
            f"the query has more than one statement ({len(statements)}); give one SELECT"
        )
    root = statements[0]
    reading = root.unnest() if isinstance(root, exp.Subquery) else root
    if not isinstance(reading, (exp.Select, exp.SetOperation)):
        raise QueryRefused(_statement_reason(reading, tokens))
    for node in root.walk():
        reason = _node_reason(db_type, node)
        if reason:
            raise QueryRefused(reason)


def _tokens(db_type: str, query: str) -> list[Token]:
    dialect = sqlglot.Dialect.get_or_raise(SQLGLOT_DIALECTS[db_type])
    try:
        tokens = dialect.tokenize(query)
    except TokenError as error:
        raise QueryRefused(f"the query cannot be read: {error}") from None
    if not [t for t in tokens if t.token_type != TokenType.SEMICOLON]:
        raise QueryRefused("the query is empty")
    return tokens


def _check_tokens(db_type: str, tokens: list[Token]) -> None:
    if db_type != "mysql":
        return
    for index, token in enumerate(tokens):
        for comment in token.comments:
            if comment.lstrip().startswith(("!", "M!", "m!")):
                raise QueryRefused(
                    "MySQL runs the text of /*! ... */ comments as SQL; remove such comments"
                )
        following = tokens[index + 1].text.upper() if index + 1 < len(tokens) else ""
        if token.token_type == TokenType.INTO and following in ("OUTFILE", "DUMPFILE"):
            raise QueryRefused(
                f"INTO {following} writes a file on the database server; it is not allowed"
            )


def _statement_reason(root: exp.Expression, tokens: list[Token]) -> str:
    keyword = next((t.text.upper() for t in tokens if t.token_type != TokenType.SEMICOLON), "it")
    for kind, word in _WRITES.items():
        if isinstance(root, kind):
            return f"the query writes: {word} is not allowed"
    if isinstance(root, (exp.Grant, exp.Revoke)):
        return f"the query changes permissions: {keyword} is not allowed"
    if isinstance(root, _CHANGES):
        return f"the query changes the database: {keyword} is not allowed"
    if isinstance(root, _RUNS):
        name = root.this.upper() if isinstance(root, exp.Command) and root.this else keyword
        return f"the query runs a command: {name} is not allowed; give one SELECT"
    return f"only a SELECT (or WITH ... SELECT) is allowed, not {keyword}"


def _node_reason(db_type: str, node: exp.Expression) -> str | None:
    for kind, word in _WRITES.items():
        if isinstance(node, kind):
            return f"the query writes: {word} is not allowed (found inside the SELECT)"
    if isinstance(node, _CHANGES) or isinstance(node, _RUNS):
        return "the query changes the database or runs a command inside the SELECT"
    if isinstance(node, exp.Select) and node.args.get("into"):
        return "SELECT ... INTO writes (a table or variables); remove the INTO clause"
    if isinstance(node, exp.Lock):
        clause = "FOR UPDATE" if node.args.get("update") else "FOR SHARE / LOCK IN SHARE MODE"
        return f"{clause} locks rows; a read must not take locks: remove it"
    if isinstance(node, exp.WithTableHint):
        for hint in node.expressions:
            if hint.name.lower() in _LOCKING_HINTS:
                return f"the table hint {hint.name.upper()} takes locks a read must not take"
    if isinstance(node, exp.NextValueFor):
        return "NEXT VALUE FOR advances a sequence: a read must not change it"
    if isinstance(node, exp.Func):
        return _function_reason(db_type, node)
    return None


def _function_reason(db_type: str, node: exp.Func) -> str | None:
    name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
    qualifier = ""
    parent = node.parent
    if isinstance(parent, exp.Dot) and parent.expression is node:
        qualifier = parent.this.sql(dialect=SQLGLOT_DIALECTS[db_type]).strip('"[]`').lower()
        qualifier = qualifier.rsplit(".", 1)[-1]
    shown = f"{qualifier}.{name}" if qualifier else name
    if name in _DENIED_FUNCTIONS[db_type] or name.startswith(_DENIED_PREFIXES[db_type]):
        return f"the function {shown.upper()} is not allowed in a FlowForge read"
    if db_type == "oracle" and qualifier.startswith(("utl_", "dbms_")):
        if qualifier not in _ORACLE_ALLOWED_PACKAGES:
            return f"the Oracle package {qualifier.upper()} is not allowed in a FlowForge read"
    return None


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
