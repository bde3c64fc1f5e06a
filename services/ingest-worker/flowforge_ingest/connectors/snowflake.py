"""Snowflake through snowflake-connector-python: connect, introspect, stream a query as
Arrow (Snowflake sends Arrow result chunks; they are sliced to batch_size and cast to the
schema the description promised, since a chunk may use a narrower integer type).

Snowflake is reached over HTTPS by its account host name, whose certificate must match:
the connection cannot be pinned to a resolved address (``resolved_addresses`` is ignored;
the SSRF check already vetted the name). Sessions run with ``TIMEZONE = 'UTC'``, a query
tag, and ``STATEMENT_TIMEOUT_IN_SECONDS`` when a query timeout is set. Snowflake has no
read-only session: use a role that may only read. Parameters are the connector's
``%(name)s`` (client-side bound by the connector).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa

from flowforge_ingest.connectors.arrowing import (
    SourceColumn,
    SourceQueryError,
    arrow_type_for,
    rebatch,
    resolve_columns,
    schema_of,
    value_converter,
)
from flowforge_ingest.connectors.base import (
    ColumnInfo,
    ConnectError,
    ConnectFailure,
    ConnectionParams,
    ParameterInfo,
    ProcedureInfo,
    SourceReadError,
    TableInfo,
)
from flowforge_ingest.connectors.registry import connect_failure, error_text, generic_kind

DB_TYPE = "snowflake"
_HOST_SUFFIX = ".snowflakecomputing.com"
_FIELD_NAMES = {
    0: "number",
    1: "float",
    2: "varchar",
    3: "date",
    4: "timestamp_ntz",
    5: "variant",
    6: "timestamp_ltz",
    7: "timestamp_tz",
    8: "timestamp_ntz",
    9: "object",
    10: "array",
    11: "binary",
    12: "time",
    13: "boolean",
    14: "geography",
    15: "geometry",
}


def account_of(params: ConnectionParams) -> str:
    """The account identifier: the ``account`` option, or the host without its suffix."""
    account = params.options.get("account") or (params.host or "")
    account = str(account).strip().lower()
    if account.endswith(_HOST_SUFFIX):
        account = account[: -len(_HOST_SUFFIX)]
    if not account:
        raise ConnectError(
            ConnectFailure.OTHER,
            "give the Snowflake account (such as xy12345.eu-west-1) or its host name",
        )
    return account


def connect_arguments(params: ConnectionParams) -> dict[str, Any]:
    """Keyword arguments for ``snowflake.connector.connect``."""
    options = params.options
    session: dict[str, Any] = {"TIMEZONE": "UTC", "QUERY_TAG": "FlowForge"}
    if params.query_timeout:
        session["STATEMENT_TIMEOUT_IN_SECONDS"] = params.query_timeout
    arguments: dict[str, Any] = {
        "account": account_of(params),
        "user": params.username,
        "password": params.password,
        "database": params.database,
        "schema": options.get("schema"),
        "warehouse": options.get("warehouse"),
        "role": options.get("role"),
        "login_timeout": params.connect_timeout,
        "network_timeout": max(params.connect_timeout, 60),
        "socket_timeout": max(params.connect_timeout, 60),
        "application": "FlowForge",
        "client_session_keep_alive": False,
        "autocommit": True,
        "session_parameters": session,
        "validate_default_parameters": True,
    }
    if params.host and params.host.lower().endswith(_HOST_SUFFIX):
        arguments["host"] = params.host
    return {key: value for key, value in arguments.items() if value is not None}


class SnowflakeConnector:
    db_type = DB_TYPE

    def connect(self, params: ConnectionParams):
        import snowflake.connector

        try:
            return snowflake.connector.connect(**connect_arguments(params))
        except ConnectError:
            raise
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            raise self._classify(error, params) from None

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        text = error_text(error)
        number = getattr(error, "errno", None)
        lowered = text.lower()
        if number in (390100, 390144, 390422) or "incorrect username or password" in lowered:
            kind = ConnectFailure.LOGIN
        elif number in (390201, 2043) or "database" in lowered and "does not exist" in lowered:
            kind = ConnectFailure.DATABASE
        elif "404" in text or "account" in lowered and "not found" in lowered:
            kind = ConnectFailure.UNREACHABLE  # no such account: the host does not exist
        else:
            kind = generic_kind(text) or ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    def server_version(self, conn) -> str:
        return f"Snowflake {_fetch_all(conn, 'SELECT CURRENT_VERSION()', None)[0][0]}"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        rows = _fetch_all(conn, LIST_TABLES, {"schema": schema})
        return [
            TableInfo(
                schema=table_schema,
                name=name,
                kind="view" if "VIEW" in table_type else "table",
                estimated_rows=None if "VIEW" in table_type or count is None else int(count),
            )
            for table_schema, name, table_type, count in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = _fetch_all(conn, DESCRIBE, {"schema": schema, "table": table})
        if not rows:
            raise SourceQueryError(
                f"the table {table!r} does not exist in this Snowflake database, or this role "
                "cannot see it"
            )
        keys = _primary_keys(conn, rows[0][0], table)
        columns = []
        for table_schema, name, data_type, length, precision, scale, nullable in rows:
            del table_schema
            base = data_type.lower()
            numeric = base == "number"
            source = f"number({precision},{scale})" if numeric else base
            if base in ("text", "varchar") and length:
                source = f"varchar({length})"
            arrow = arrow_type_for(
                DB_TYPE,
                source,
                int(precision) if numeric else None,
                int(scale) if numeric else None,
                int(length) if length else None,
            )
            columns.append(
                ColumnInfo(
                    name=name,
                    source_type=source,
                    arrow_type=str(arrow),
                    nullable=nullable == "YES",
                    primary_key=name in keys,
                    max_length=int(length) if length else None,
                    precision=int(precision) if numeric else None,
                    scale=int(scale) if numeric else None,
                )
            )
        return columns

    def procedures(self, conn) -> list[ProcedureInfo]:
        rows = _fetch_all(conn, PROCEDURES, None)
        return [
            ProcedureInfo(schema=schema, name=name, parameters=parse_signature(signature or ""))
            for schema, name, signature in rows
        ]

    def execute_batches(
        self,
        conn,
        sql: str,
        params: Mapping[str, Any] | None,
        batch_size: int,
        columns: list[ColumnInfo] | None = None,
    ) -> _ArrowStream:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        cursor = conn.cursor()
        try:
            cursor.execute(sql, dict(params) if params else None)
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            cursor.close()
            raise read_error(error) from None
        derived = [description_column(item) for item in cursor.description or ()]
        return _ArrowStream(cursor, resolve_columns(derived, columns), batch_size)


class _ArrowStream:
    def __init__(self, cursor, columns: list[SourceColumn], batch_size: int) -> None:
        self.schema = schema_of(columns, DB_TYPE)
        self._fixers = [column.fixer(DB_TYPE) for column in columns]
        self._cursor = cursor
        self._batch_size = batch_size

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            tables = self._cursor.fetch_arrow_batches() or ()
            for table in tables:
                for batch in table.to_batches():
                    conformed = conform(batch, self.schema, self._fixers)
                    yield from rebatch([conformed], self._batch_size)
        except (SourceQueryError, SourceReadError):
            raise
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            raise read_error(error) from None
        finally:
            self.close()

    def close(self) -> None:
        with contextlib.suppress(Exception):  # already closed with its connection
            self._cursor.close()


def conform(batch: pa.RecordBatch, schema: pa.Schema, fixers: list) -> pa.RecordBatch:
    """``batch`` in ``schema``'s types: a safe cast, or value by value (through
    types.converter) where no cast exists (VARIANT to text, ...)."""
    arrays = []
    for index, field in enumerate(schema):
        array = batch.column(index)
        if array.type != field.type:
            try:
                array = array.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
                array = value_converter(field, fixers[index])(array.to_pylist())
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def description_source_type(type_code: int, precision: int | None, scale: int | None) -> str:
    name = _FIELD_NAMES.get(type_code, "varchar")
    if name == "number":
        return f"number({precision or 38},{scale or 0})"
    return name


def description_column(item) -> SourceColumn:
    name, type_code, _display, internal, precision, scale, nullable = tuple(item)[:7]
    source = description_source_type(type_code, precision, scale)
    numeric = source.startswith("number(")
    return SourceColumn(
        name,
        source,
        (precision or 38) if numeric else None,
        (scale or 0) if numeric else scale,
        internal if source == "varchar" else None,
        bool(nullable) if nullable is not None else True,
    )


def parse_signature(signature: str) -> tuple[ParameterInfo, ...]:
    """``(A NUMBER, B VARCHAR)`` from INFORMATION_SCHEMA.PROCEDURES as parameters."""
    inner = signature.strip().removeprefix("(").removesuffix(")").strip()
    if not inner:
        return ()
    parameters = []
    for part in inner.split(","):
        name, _, type_text = part.strip().partition(" ")
        parameters.append(ParameterInfo(name=name, source_type=type_text.strip()))
    return tuple(parameters)


def read_error(error: BaseException) -> Exception:
    if isinstance(error, (SourceQueryError, SourceReadError)):
        return error
    text = error_text(error)
    number = getattr(error, "errno", None)
    if number in (604, 630) or "timeout" in text.lower() and "statement" in text.lower():
        return SourceQueryError(
            "Snowflake stopped the query: it ran longer than the connection's queryTimeout",
            text,
        )
    if type(error).__name__ in ("OperationalError", "InterfaceError") or isinstance(error, OSError):
        return SourceReadError(
            "the connection to Snowflake was lost while reading; the job will be retried", text
        )
    first = text.splitlines()[0] if text else "unknown error"
    return SourceQueryError(f"Snowflake refused the query: {first}", text)


def _primary_keys(conn, schema: str, table: str) -> set[str]:
    try:
        cursor = conn.cursor()
        try:
            # SHOW takes no bind values: the name is quoted by the server's IDENTIFIER().
            cursor.execute(
                "SHOW PRIMARY KEYS IN TABLE IDENTIFIER(%(name)s)",
                {
                    "name": f'"{schema.replace(chr(34), chr(34) * 2)}".'
                    f'"{table.replace(chr(34), chr(34) * 2)}"'
                },
            )
            names = [column[0] for column in cursor.description]
            index = names.index("column_name")
            return {row[index] for row in cursor.fetchall()}
        finally:
            cursor.close()
    except Exception:  # noqa: BLE001 (no keys known is not an error)
        return set()


def _fetch_all(conn, sql: str, params: Mapping[str, Any] | None) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, dict(params) if params else None)
        return list(cursor.fetchall())
    finally:
        cursor.close()


LIST_TABLES = """
SELECT table_schema, table_name, table_type, row_count
FROM information_schema.tables
WHERE table_schema <> 'INFORMATION_SCHEMA'
  AND (%(schema)s IS NULL AND table_schema = CURRENT_SCHEMA() OR table_schema = %(schema)s)
ORDER BY table_schema, table_name
"""

DESCRIBE = """
SELECT table_schema, column_name, data_type, character_maximum_length, numeric_precision,
       numeric_scale, is_nullable
FROM information_schema.columns
WHERE table_schema = COALESCE(%(schema)s, CURRENT_SCHEMA()) AND table_name = %(table)s
ORDER BY ordinal_position
"""

PROCEDURES = """
SELECT procedure_schema, procedure_name, argument_signature
FROM information_schema.procedures
WHERE procedure_schema <> 'INFORMATION_SCHEMA'
ORDER BY procedure_schema, procedure_name
"""
