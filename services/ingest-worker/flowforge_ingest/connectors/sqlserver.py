"""SQL Server through pymssql (a self-contained wheel with FreeTDS): connect, introspect,
stream a query as Arrow.

Connections speak TDS 7.4, go to ``resolved_addresses[0]`` (or the host resolved here:
FreeTDS reports a failed lookup as "Unknown error"), honour a named instance when no
port is given (the SQL Browser then names the port), ApplicationIntent=ReadOnly, and
FreeTDS's encryption levels (Encrypt=yes or strict -> require; otherwise request).
pymssql cannot verify the server certificate against a CA or host name, nor log in with
Azure AD: such settings are refused with a message rather than silently weakened.

Parameters are pymssql's ``%(name)s`` and are quoted by pymssql; datetimes are sent as
datetime2 (``use_datetime2``) so a watermark keeps its microseconds. Values come back as
Python objects with microsecond precision: a ``datetime2(7)`` loses its 100 ns digit.

The result's types come from ``sp_describe_first_result_set`` before the query runs
(pymssql's own description only says "number" or "string"); when SQL Server cannot
describe a query (temporary tables, dynamic SQL), the first batch's values decide.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flowforge_ingest.connectors.arrowing import (
    RowStream,
    SourceColumn,
    SourceQueryError,
    arrow_type_for,
    converters_of,
    resolve_columns,
    schema_of,
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
from flowforge_ingest.connectors.registry import (
    connect_failure,
    error_text,
    first_address,
    generic_kind,
)

DB_TYPE = "sql-server"
TDS_VERSION = "7.4"
_DEFAULT_QUERY_WAIT = 3600  # seconds FreeTDS waits for the server's next answer


def connect_arguments(params: ConnectionParams, address: str) -> dict[str, Any]:
    """Keyword arguments for ``pymssql.connect`` (to ``address``, the checked IP)."""
    if params.authentication not in ("sql", "windows"):
        raise ConnectError(
            ConnectFailure.OTHER,
            f"the SQL Server driver here (pymssql) cannot log in with {params.authentication}; "
            "use a SQL login (or Windows DOMAIN\\user)",
        )
    options = params.options
    instance = options.get("instance")
    encrypt = str(options.get("encrypt", "")).lower()
    trust = str(options.get("trustServerCertificate", "")).lower()
    if encrypt == "strict" or (encrypt == "true" and trust != "true"):
        raise ConnectError(
            ConnectFailure.TLS,
            "the SQL Server driver here (pymssql/FreeTDS) encrypts but cannot verify the "
            "server's certificate; set TrustServerCertificate=yes to accept that, or "
            "Encrypt=no",
        )
    arguments: dict[str, Any] = {
        "server": address,
        "port": str(params.port or 1433),
        "user": params.username,
        "password": params.password,
        "database": params.database or "",
        "login_timeout": params.connect_timeout,
        "timeout": params.query_timeout or _DEFAULT_QUERY_WAIT,
        "tds_version": TDS_VERSION,
        "appname": str(options.get("applicationName") or "FlowForge"),
        "charset": "UTF-8",
        "autocommit": True,
        "use_datetime2": True,
        "encryption": "require" if encrypt == "true" else "request",
        "read_only": options.get("applicationIntent") == "ReadOnly",
    }
    if instance and not params.port:
        arguments["server"] = f"{address}\\{instance}"  # the SQL Browser names the port
    return arguments


class SQLServerConnector:
    db_type = DB_TYPE

    # --- connecting -------------------------------------------------------------------------

    def connect(self, params: ConnectionParams):
        import pymssql

        try:
            address = first_address(DB_TYPE, params, params.port or 1433)
            arguments = connect_arguments(params, address)
            if "\\" not in arguments["server"]:
                _probe(address, int(arguments["port"]), params.connect_timeout)
        except ConnectError:
            raise
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            raise self._classify(error, params) from None
        try:
            return pymssql.connect(**arguments)
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            failure = self._classify(error, params)
            if failure.kind is ConnectFailure.UNREACHABLE:
                # The probe reached the port: a silent listener, not an unreachable host.
                failure = connect_failure(ConnectFailure.PROTOCOL, error, DB_TYPE, params)
            raise failure from None

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        text = error_text(error)
        codes = _error_codes(error, text)
        lowered = text.lower()
        lost = _lost_server_message(error)
        if lost is not None:
            codes.discard(lost.number)  # an earlier connection's
        # 4060: SQL Server's "Cannot open database requested by the login"; 911: "Database
        # 'x' does not exist", which Babelfish answers to such a login.
        unknown_database = 911 in codes and re.search(r"database .* does not exist", lowered)
        if (
            4060 in codes
            or unknown_database
            or "cannot open database" in lowered
            or (lost is not None and lost.severity in _DATABASE_SEVERITIES)
        ):
            kind = ConnectFailure.DATABASE
        elif (
            18456 in codes
            or "login failed" in lowered
            or (lost is not None and lost.severity == _LOGIN_SEVERITY)
        ):
            kind = ConnectFailure.LOGIN
        elif "connection refused" in lowered:
            kind = ConnectFailure.REFUSED
        elif 20003 in codes or "timed out" in lowered:
            kind = ConnectFailure.UNREACHABLE
        elif re.search(r"\bssl\b|\btls\b|certificate|encrypt", lowered):
            kind = ConnectFailure.TLS
        elif codes & {20017, 20002, 20020} or "unexpected eof" in lowered:
            # the listener accepted the connection but did not answer in TDS
            kind = ConnectFailure.PROTOCOL
        else:
            kind = generic_kind(text) or ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    # --- introspection ----------------------------------------------------------------------

    def server_version(self, conn) -> str:
        rows = _fetch_all(
            conn,
            "SELECT CAST(SERVERPROPERTY('ProductVersion') AS nvarchar(128)), "
            "CAST(SERVERPROPERTY('Edition') AS nvarchar(128))",
            None,
        )
        version, edition = rows[0]
        return f"SQL Server {version} ({edition})"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        rows = _fetch_all(conn, _LIST_TABLES, {"schema": schema})
        return [
            TableInfo(
                schema=table_schema,
                name=name,
                kind="view" if kind.strip() == "V" else "table",
                # Babelfish 4.2 passes PostgreSQL's -1 ("never analyzed") through: unknown.
                estimated_rows=None
                if kind.strip() == "V" or count is None or count < 0
                else int(count),
            )
            for table_schema, name, kind, count in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = _fetch_all(conn, _DESCRIBE, {"schema": schema or "dbo", "table": table})
        if not rows:
            raise SourceQueryError(
                f"the table {(schema or 'dbo') + '.' + table!r} does not exist in this SQL "
                "Server database, or this user cannot see it"
            )
        return [
            described_column(name, type_name, max_length, precision, scale, nullable, pk)
            for name, type_name, max_length, precision, scale, nullable, pk in rows
        ]

    def procedures(self, conn) -> list[ProcedureInfo]:
        rows = _fetch_all(conn, _PROCEDURES, None)
        found: dict[tuple[str, str], ProcedureInfo] = {}
        for schema, name, parameter, type_name, max_length, precision, scale, output in rows:
            key = (schema, name)
            info = found.setdefault(key, ProcedureInfo(schema=schema, name=name))
            if parameter is None:
                continue
            source = type_text(type_name, max_length, precision, scale)
            found[key] = ProcedureInfo(
                schema,
                name,
                (*info.parameters, ParameterInfo(parameter, source, "inout" if output else "in")),
            )
        return list(found.values())

    # --- reading ----------------------------------------------------------------------------

    def execute_batches(
        self,
        conn,
        sql: str,
        params: Mapping[str, Any] | None,
        batch_size: int,
        columns: list[ColumnInfo] | None = None,
    ) -> RowStream:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        values = dict(params) if params else None
        described = _describe_result(conn, sql, values)
        cursor = conn.cursor()
        try:
            cursor.execute(sql, values)
            first = cursor.fetchmany(batch_size) if cursor.description else []
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            _close_quietly(cursor)
            raise read_error(error) from None
        if cursor.description is None:
            raise SourceQueryError("the SQL Server query returns no rows (is it a SELECT?)")
        names = [description[0] for description in cursor.description]
        if described is not None and len(described) == len(names):
            derived = [SourceColumn.of(column) for column in described]
        else:
            derived = [
                SourceColumn(name, _inferred_type([row[index] for row in first]))
                for index, name in enumerate(names)
            ]
        resolved = resolve_columns(derived, columns)
        return RowStream(
            schema_of(resolved, DB_TYPE),
            cursor.fetchmany,
            batch_size,
            on_error=read_error,
            on_close=lambda: _close_quietly(cursor),
            converters=converters_of(resolved, DB_TYPE),
            first_rows=first,
        )


# --- types ------------------------------------------------------------------------------------


def type_text(
    type_name: str, max_length: int | None, precision: int | None, scale: int | None
) -> str:
    """``nvarchar(50)``, ``decimal(18,2)``, ``datetime2(7)`` from sys.columns' numbers."""
    name = type_name.lower()
    if name in ("varchar", "char", "varbinary", "binary", "nvarchar", "nchar"):
        if max_length == -1:
            return f"{name}(max)"
        length = max_length // 2 if name.startswith("n") and max_length else max_length
        return f"{name}({length})"
    if name in ("decimal", "numeric"):
        return f"{name}({precision},{scale})"
    if name in ("datetime2", "datetimeoffset", "time"):
        return f"{name}({scale})"
    return name


def described_column(
    name: str,
    type_name: str,
    max_length: int | None,
    precision: int | None,
    scale: int | None,
    nullable: Any,
    primary_key: Any,
) -> ColumnInfo:
    base = type_name.lower()
    source = type_text(base, max_length, precision, scale)
    numeric = base in ("decimal", "numeric")
    length = None
    if base in ("varchar", "char", "varbinary", "binary", "nvarchar", "nchar") and max_length:
        length = (
            -1 if max_length == -1 else (max_length // 2 if base.startswith("n") else max_length)
        )
    data_type = arrow_type_for(
        DB_TYPE,
        source,
        precision if numeric else None,
        scale if numeric or base in ("datetime2", "datetimeoffset", "time") else None,
        length,
    )
    return ColumnInfo(
        name=name,
        source_type=source,
        arrow_type=str(data_type),
        nullable=bool(nullable),
        primary_key=bool(primary_key),
        max_length=length,
        precision=precision if numeric else None,
        scale=scale if numeric or base in ("datetime2", "datetimeoffset", "time") else None,
    )


def parse_system_type(text: str) -> tuple[str, int | None, int | None, int | None]:
    """``(type, max_length, precision, scale)`` from sp_describe_first_result_set's
    system_type_name: ``decimal(18,2)``, ``nvarchar(50)``, ``datetime2(7)``, ``varchar(max)``."""
    match = re.match(
        r"^\s*([a-z0-9_ ]+?)\s*(?:\(\s*(max|\d+)\s*(?:,\s*(\d+))?\s*\))?\s*$", text.lower()
    )
    if match is None:
        return text.lower(), None, None, None
    name, first, second = match.groups()
    if first is None:
        return name, None, None, None
    if name in ("decimal", "numeric"):
        return name, None, int(first), int(second or 0)
    if name in ("datetime2", "datetimeoffset", "time"):
        return name, None, None, int(first)
    length = -1 if first == "max" else int(first)
    return name, length * 2 if name.startswith("n") and length > 0 else length, None, None


def _describe_result(conn, sql: str, params: dict[str, Any] | None) -> list[ColumnInfo] | None:
    """The query's columns as SQL Server describes them without running it, or None.

    ``sp_describe_first_result_set`` (Babelfish has it, not the DMV function of the same
    name); its columns are read by name, the sizes from max_length, precision and scale
    (Babelfish's system_type_name is the bare type name)."""
    from pymssql import _mssql

    cursor = conn.cursor()
    try:
        statement = _mssql.substitute_params(sql, params, "utf-8") if params else sql
        if isinstance(statement, bytes):
            statement = statement.decode("utf-8")
        cursor.execute(
            "EXEC sp_describe_first_result_set @tsql = %(statement)s", {"statement": statement}
        )
        names = [description[0] for description in cursor.description or ()]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    except Exception:  # noqa: BLE001 (not describable: the values will decide)
        return None
    finally:
        _close_quietly(cursor)
    columns = []
    for row in rows:
        if row.get("is_hidden"):
            continue
        if row.get("system_type_name") is None:
            return None
        base = parse_system_type(row["system_type_name"])[0]
        columns.append(
            described_column(
                row["name"],
                base,
                row.get("max_length"),
                row.get("precision"),
                row.get("scale"),
                row.get("is_nullable"),
                False,
            )
        )
    return columns or None


def _inferred_type(values: list) -> str:
    """A SQL Server type for a column SQL Server could not describe, from the first batch."""
    kinds = {type(value) for value in values if value is not None}
    if kinds == {bool}:
        return "bit"
    if kinds and kinds <= {int}:
        return "bigint"
    if kinds and kinds <= {int, float}:
        return "float"
    if kinds == {bytes}:
        return "varbinary(max)"
    if kinds == {dt.datetime}:
        aware = any(value.tzinfo for value in values if value is not None)
        return "datetimeoffset(6)" if aware else "datetime2(6)"
    if kinds == {dt.date}:
        return "date"
    if kinds == {dt.time}:
        return "time(6)"
    return "nvarchar(max)"  # text, Decimal of unknown scale, nothing yet: text keeps all


def _probe(address: str, port: int, timeout: float) -> None:
    """Open and close a TCP connection: FreeTDS reports a refused port, an unroutable host
    and a listener that never answers TDS all as "timed out" or "connection failed", the
    operating system tells them apart."""
    import socket

    with socket.create_connection((address, port), timeout=timeout):
        pass


@dataclass(frozen=True)
class _LostMessage:
    number: int  # the number pymssql reported: an earlier message's
    severity: int | None  # the lost message's own, from FreeTDS's 20018 line


def _lost_server_message(error: BaseException) -> _LostMessage | None:
    """pymssql keeps the last server message of a failed connect in module globals and
    fails to reset its number and severity (pymssql 2.3, ``clr_err``): after one failed
    connect in a process, a later one's message is dropped (its severity is not above the
    stale one) and the stale number is reported before FreeTDS's own lines, with no server
    text. FreeTDS's "DB-Lib error message 20018, severity N" line, when there is one, still
    carries the dropped message's severity."""
    if not error.args or not isinstance(error.args[0], tuple) or len(error.args[0]) < 2:
        return None
    number, message = error.args[0][:2]
    if isinstance(message, bytes):
        message = message.decode("utf-8", "replace")
    if not isinstance(number, int) or not str(message).startswith("DB-Lib error message"):
        return None  # the server's text comes first when pymssql kept it
    # (earlier DB-Lib lines of the process may come first: "DBPROCESS is dead", ...)
    found = re.search(r"DB-Lib error message 20018, severity (\d+):", str(message))
    return _LostMessage(number, int(found.group(1)) if found else None)


def _error_codes(error: BaseException, text: str) -> set[int]:
    codes: set[int] = set()
    for arg in error.args:
        if isinstance(arg, tuple) and arg and isinstance(arg[0], int):
            codes.add(arg[0])
        elif isinstance(arg, int):
            codes.add(arg)
    codes.update(int(code) for code in re.findall(r"(?:message|error) (\d{3,5})", text))
    number = getattr(error, "number", None)
    if isinstance(number, int):
        codes.add(number)
    return codes


def read_error(error: BaseException) -> Exception:
    """A pymssql error during a read as FlowForge's: transient when the connection died."""
    if isinstance(error, (SourceQueryError, SourceReadError)):
        return error
    text = error_text(error)
    codes = _error_codes(error, text)
    lowered = text.lower()
    if "timed out" in lowered or codes & {20003}:
        return SourceQueryError(
            "SQL Server did not answer within the connection's queryTimeout; raise the timeout "
            "or read less at a time",
            text,
        )
    if codes & {20004, 20006, 20047, 20017, 20019} or any(
        phrase in lowered
        for phrase in ("connection reset", "broken pipe", "dbprocess is dead", "not connected")
    ):
        return SourceReadError(
            "the connection to SQL Server was lost while reading; the job will be retried", text
        )
    first = text.splitlines()[0] if text else "unknown error"
    return SourceQueryError(f"SQL Server refused the query: {first}", text)


def _close_quietly(cursor) -> None:
    with contextlib.suppress(Exception):  # a dead connection has nothing to close
        cursor.close()


def _fetch_all(conn, sql: str, params: Mapping[str, Any] | None) -> list[tuple]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, dict(params) if params else None)
        return list(cursor.fetchall())
    finally:
        _close_quietly(cursor)


# Severities of a login's refusal, for a message pymssql lost: "Login failed" (18456) and
# its kin (locked, expired: 18486-18488) are 14; "Cannot open database" (4060, 4064) is 11,
# Babelfish's "database does not exist" (911) 16, which SQL Server sends no login.
_LOGIN_SEVERITY, _DATABASE_SEVERITIES = 14, (11, 16)

_LIST_TABLES = """
SELECT s.name, o.name, o.type,
       (SELECT SUM(p.rows) FROM sys.partitions p
        WHERE p.object_id = o.object_id AND p.index_id IN (0, 1))
FROM sys.objects o JOIN sys.schemas s ON s.schema_id = o.schema_id
WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0
  AND (%(schema)s IS NULL OR s.name = %(schema)s)
ORDER BY s.name, o.name
"""

_DESCRIBE = """
SELECT c.name, TYPE_NAME(c.system_type_id), c.max_length, c.precision, c.scale,
       c.is_nullable,
       CASE WHEN EXISTS (
         SELECT 1 FROM sys.indexes i
         JOIN sys.index_columns ic ON ic.object_id = i.object_id AND ic.index_id = i.index_id
         WHERE i.object_id = c.object_id AND i.is_primary_key = 1 AND ic.column_id = c.column_id
       ) THEN 1 ELSE 0 END
FROM sys.columns c
WHERE c.object_id = OBJECT_ID(QUOTENAME(%(schema)s) + N'.' + QUOTENAME(%(table)s))
ORDER BY c.column_id
"""

_PROCEDURES = """
SELECT s.name, p.name, prm.name, TYPE_NAME(prm.system_type_id), prm.max_length,
       prm.precision, prm.scale, prm.is_output
FROM sys.procedures p
JOIN sys.schemas s ON s.schema_id = p.schema_id
LEFT JOIN sys.all_parameters prm ON prm.object_id = p.object_id AND prm.parameter_id > 0
WHERE p.is_ms_shipped = 0
ORDER BY s.name, p.name, prm.parameter_id
"""
