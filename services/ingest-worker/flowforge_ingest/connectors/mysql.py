"""MySQL and MariaDB through PyMySQL (and ConnectorX): connect, introspect, stream as Arrow.

A result whose columns are all numbers, decimals, dates, date-times or plain text is read
by ConnectorX in Rust (mysql_arrow.py) on an unencrypted session. Everything else goes
through PyMySQL, which is pure Python and installs anywhere (mysqlclient and mariadb need
the C client library and headers; the mysql-connector-python wheel has no C extension
here): an unbuffered ``SSCursor`` (rows come off the socket batch by batch) with PyMySQL's
own value converters switched off, values arriving as the server's text and Arrow's C++
casts turning whole columns into numbers, decimals and timestamps, nearly twice as fast as
converting each value in Python. Whatever a cast refuses (zero dates, TIME past 24 hours,
BIT bytes) is converted value by value.

MySQL's "zero" dates (``0000-00-00``, ``2024-00-10``) are not dates: they are read as NULL,
as JDBC's ``zeroDateTimeBehavior=convertToNull`` does.

Sessions run with ``time_zone = '+00:00'`` (TIMESTAMP columns are read as UTC instants),
read-only transactions and, when set, a statement time limit (MariaDB
``max_statement_time``, MySQL ``max_execution_time``). The socket is opened to
``resolved_addresses[0]`` by FlowForge and handed to PyMySQL, which keeps the host name
for TLS verification.

Closing a PyMySQL stream before its end closes the connection: the protocol has no way to
stop an unbuffered result but reading all of it. (A ConnectorX stream KILLs its own reading
connection instead, and this one stays open.)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import socket
import struct
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from flowforge_ingest.connectors import mysql_arrow
from flowforge_ingest.connectors.arrowing import (
    RowStream,
    SourceColumn,
    SourceQueryError,
    arrow_type_for,
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

DB_TYPE = "mysql"
_READ_TIMEOUT_MARGIN = 60  # seconds a socket may stay silent beyond the query timeout
_DEFAULT_READ_TIMEOUT = 3600

# https://dev.mysql.com/doc/dev/mysql-server/latest/field__types_8h.html
_FIELD_TYPES = {
    0: "decimal",
    1: "tinyint",
    2: "smallint",
    3: "int",
    4: "float",
    5: "double",
    6: "null",
    7: "timestamp",
    8: "bigint",
    9: "mediumint",
    10: "date",
    11: "time",
    12: "datetime",
    13: "year",
    14: "date",
    15: "varchar",
    16: "bit",
    245: "json",
    246: "decimal",
    247: "enum",
    248: "set",
    249: "tinyblob",
    250: "mediumblob",
    251: "longblob",
    252: "blob",
    253: "varchar",
    254: "char",
    255: "geometry",
}
_UNSIGNED_FLAG, _ENUM_FLAG, _SET_FLAG = 32, 256, 2048
_BINARY_CHARSET = 63
_ZERO_DATE = re.compile(r"^0000-|^\d{4}-00-|^\d{4}-\d{2}-00")
_TIME = re.compile(r"^(-)?(\d+):(\d{2}):(\d{2})(?:\.(\d{1,6}))?$")


def connect_arguments(params: ConnectionParams) -> dict[str, Any]:
    """Keyword arguments for ``pymysql.connections.Connection`` (no socket opened)."""
    arguments: dict[str, Any] = {
        "host": params.host,
        "port": params.port or 3306,
        "user": params.username or "",
        # PyMySQL would encode a str password as latin-1; servers compare UTF-8 bytes.
        "password": (params.password or "").encode("utf-8"),
        "database": params.database or None,
        "connect_timeout": params.connect_timeout,
        # The handshake must not outlast the connect timeout; the read timeout is raised
        # after connecting (see MySQLConnector.connect).
        "read_timeout": params.connect_timeout,
        "write_timeout": max(params.connect_timeout, 60),
        "charset": "utf8mb4",
        "autocommit": True,
        "local_infile": False,
        "program_name": "FlowForge",
        "init_command": "SET time_zone = '+00:00'",
        "defer_connect": True,
    }
    arguments.update(_tls_arguments(params.options))
    return arguments


def _tls_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    mode = str(options.get("sslmode") or options.get("ssl-mode") or "").upper().replace("-", "_")
    encrypt = str(options.get("encrypt", "")).lower()
    trust = str(options.get("trustServerCertificate", "")).lower() == "true"
    if not mode:
        if encrypt == "strict" or (encrypt == "true" and not trust):
            mode = "VERIFY_IDENTITY"
        elif encrypt == "true":
            mode = "REQUIRED"
        elif encrypt == "false":
            mode = "DISABLED"
        else:
            mode = "PREFERRED"
    if mode == "DISABLED":
        return {"ssl_disabled": True}
    if mode == "PREFERRED":
        return {}  # PyMySQL's default: TLS when the server offers it
    if mode == "REQUIRED":
        return {"ssl": {"check_hostname": False, "verify_mode": False}}
    if mode == "VERIFY_CA":
        return {"ssl": {"check_hostname": False, "verify_mode": True}}
    if mode == "VERIFY_IDENTITY":
        return {"ssl": {"check_hostname": True, "verify_mode": True}}
    raise ConnectError(
        ConnectFailure.OTHER,
        "the MySQL option sslmode must be DISABLED, PREFERRED, REQUIRED, VERIFY_CA or "
        "VERIFY_IDENTITY",
    )


def _system_ca_context(check_hostname: bool):
    import ssl

    context = ssl.create_default_context()  # the system's trusted CAs
    context.check_hostname = check_hostname
    return context


class MySQLConnector:
    db_type = DB_TYPE

    # --- connecting -------------------------------------------------------------------------

    def connect(self, params: ConnectionParams):
        import pymysql

        arguments = connect_arguments(params)
        tls = arguments.get("ssl")
        if isinstance(tls, dict) and tls.get("verify_mode"):
            arguments["ssl"] = _system_ca_context(bool(tls.get("check_hostname")))
        sock = None
        try:
            conn = pymysql.connections.Connection(**arguments)
            if params.resolved_addresses:
                # Connect to the checked address ourselves; PyMySQL keeps ``host`` (the
                # name) for TLS, so the certificate is verified against the name.
                sock = socket.create_connection(
                    (params.resolved_addresses[0], arguments["port"]), params.connect_timeout
                )
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            conn.connect(sock)
            conn._read_timeout = (  # noqa: SLF001 (PyMySQL has no setter; applied per read)
                (params.query_timeout or _DEFAULT_READ_TIMEOUT) + _READ_TIMEOUT_MARGIN
            )
            self._prepare_session(conn, params)
            return conn
        except ConnectError:
            raise
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            if sock is not None:
                sock.close()
            raise self._classify(error, params) from None

    def _prepare_session(self, conn, params: ConnectionParams) -> None:
        mariadb = "mariadb" in conn.get_server_info().lower()
        with conn.cursor() as cursor:
            cursor.execute("SET SESSION TRANSACTION READ ONLY")
            if params.query_timeout:
                if mariadb:
                    cursor.execute("SET SESSION max_statement_time = %s", (params.query_timeout,))
                else:
                    cursor.execute(
                        "SET SESSION max_execution_time = %s", (params.query_timeout * 1000,)
                    )

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        import ssl

        import pymysql

        code = error.args[0] if isinstance(error, pymysql.MySQLError) and error.args else None
        text = error_text(error)
        original = getattr(error, "original_exception", None)
        if code in (1045, 1044, 1698, 1251, 1524) or "access denied" in text.lower():
            kind = ConnectFailure.LOGIN
        elif code in (1049, 1102):
            kind = ConnectFailure.DATABASE
        elif code == 2026 or isinstance(error, ssl.SSLError) or isinstance(original, ssl.SSLError):
            kind = ConnectFailure.TLS
        elif isinstance(error, ConnectionRefusedError) or isinstance(
            original, ConnectionRefusedError
        ):
            kind = ConnectFailure.REFUSED
        elif isinstance(error, (socket.gaierror, TimeoutError)) or isinstance(
            original, (socket.gaierror, TimeoutError)
        ):
            kind = ConnectFailure.UNREACHABLE
        elif code in (2013, 2027, 2012) or isinstance(
            error, (pymysql.err.InternalError, struct.error, UnicodeDecodeError, IndexError)
        ):
            # lost during the handshake, a malformed packet, bytes that are not MySQL's
            kind = ConnectFailure.PROTOCOL
        else:
            kind = generic_kind(text) or ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    # --- introspection ----------------------------------------------------------------------

    def server_version(self, conn) -> str:
        info = conn.get_server_info()
        flavour = "MariaDB" if "mariadb" in info.lower() else "MySQL"
        return f"{flavour} {info.removeprefix('5.5.5-')}"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        rows = _fetch_all(conn, _LIST_TABLES, {"schema": schema})
        return [
            TableInfo(
                schema=table_schema,
                name=name,
                kind="view" if table_type == "VIEW" else "table",
                estimated_rows=None if table_type == "VIEW" or rows_ is None else int(rows_),
            )
            for table_schema, name, table_type, rows_ in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = _fetch_all(conn, _DESCRIBE, {"schema": schema, "table": table})
        if not rows:
            shown = f"{schema}.{table}" if schema else table
            raise SourceQueryError(
                f"the table {shown!r} does not exist in this database, or this user cannot see it"
            )
        columns = []
        for name, column_type, data_type, nullable, key, length, precision, scale in rows:
            data_type = data_type.lower()
            if data_type in ("decimal", "numeric", "bit"):
                precision = int(precision) if precision is not None else None
                scale = int(scale) if scale is not None and data_type != "bit" else None
            else:
                precision = scale = None
            max_length = int(length) if length is not None else None
            arrow = arrow_type_for(DB_TYPE, column_type, precision, scale, max_length)
            columns.append(
                ColumnInfo(
                    name=name,
                    source_type=column_type,
                    arrow_type=str(arrow),
                    nullable=nullable == "YES",
                    primary_key=key == "PRI",
                    max_length=max_length,
                    precision=precision,
                    scale=scale,
                )
            )
        return columns

    def procedures(self, conn) -> list[ProcedureInfo]:
        rows = _fetch_all(conn, _PROCEDURES, {})
        found: dict[tuple[str, str], ProcedureInfo] = {}
        for schema, name, mode, parameter, type_text in rows:
            key = (schema, name)
            info = found.setdefault(key, ProcedureInfo(schema=schema, name=name))
            if parameter is None:
                continue
            direction = (mode or "IN").lower()
            found[key] = ProcedureInfo(
                schema,
                name,
                (*info.parameters, ParameterInfo(parameter, type_text or "", direction)),
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
        import pymysql

        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        fast = _arrow_stream(conn, sql, params, batch_size, columns)
        if fast is not None:
            return fast
        # Raw values: no decoders (text stays text), PyMySQL's encoders kept for the
        # parameters it escapes.
        saved = conn.decoders
        conn.decoders = {}
        cursor = pymysql.cursors.SSCursor(conn)
        try:
            cursor.execute(sql, dict(params) if params else None)
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            conn.decoders = saved
            _abandon(cursor, conn)
            raise read_error(error) from None
        fields = cursor._result.fields  # noqa: SLF001 (flags and charset: not in description)
        resolved = resolve_columns([_source_column(field) for field in fields], columns)
        schema = schema_of(resolved, DB_TYPE)
        converters = [
            _converter(field, column.fixer(DB_TYPE))
            for field, column in zip(schema, resolved, strict=True)
        ]
        finished = {"done": False}

        def fetch(count: int):
            rows = cursor.fetchmany(count)
            if not rows:
                finished["done"] = True
            return rows

        def close() -> None:
            conn.decoders = saved
            if finished["done"]:
                cursor.close()
            else:
                _abandon(cursor, conn)  # see the module docstring

        return RowStream(
            schema, fetch, batch_size, on_error=read_error, on_close=close, converters=converters
        )


def _arrow_stream(conn, sql, params, batch_size, columns) -> mysql_arrow.ArrowStream | None:
    """The ConnectorX stream of the query (mysql_arrow.py), when its columns allow it."""
    import pymysql

    if mysql_arrow.encrypted(conn):
        return None
    statement = mysql_arrow.statement_text(conn, sql.strip().rstrip(";"), params)
    try:
        with conn.cursor() as cursor:  # the result's columns, without reading a row
            cursor.execute(f"SELECT * FROM ({statement}) AS q LIMIT 0")  # noqa: S608
            fields = cursor._result.fields  # noqa: SLF001 (flags and charset)
    except pymysql.MySQLError:
        return None  # not wrappable (or wrong): PyMySQL's path runs it and says why
    resolved = resolve_columns([_source_column(field) for field in fields], columns)
    if not mysql_arrow.plain(resolved):
        return None
    schema = schema_of(resolved, DB_TYPE)
    return mysql_arrow.ArrowStream(
        mysql_arrow.url(conn),
        mysql_arrow.wrapped(statement, resolved),
        mysql_arrow.session_statements(conn),
        schema,
        [
            _converter(field, column.fixer(DB_TYPE))
            for field, column in zip(schema, resolved, strict=True)
        ],
        batch_size,
        lambda tag: _kill_reader(conn, tag),
    )


def _kill_reader(conn, tag: str) -> None:
    """KILL the connection whose running statement carries ``tag`` (mysql_arrow.py)."""
    with contextlib.suppress(Exception), conn.cursor() as cursor:  # a dead session: no reader
        cursor.execute(
            "SELECT ID FROM information_schema.PROCESSLIST "
            "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()",
            (f"%{tag}%",),
        )
        for (thread,) in cursor.fetchall():
            cursor.execute("KILL %s", (thread,))


# --- types and values -------------------------------------------------------------------------


def field_source_type(field) -> str:
    """A result field's type as MySQL names it: ``bigint unsigned``, ``decimal(38,10)``..."""
    name = _FIELD_TYPES.get(field.type_code, "varchar")
    flags = field.flags
    if flags & _ENUM_FLAG:
        return "enum"
    if flags & _SET_FLAG:
        return "set"
    binary = field.charsetnr == _BINARY_CHARSET
    if name in ("varchar", "char") and binary:
        return "varbinary" if name == "varchar" else "binary"
    if name.endswith("blob") and not binary:
        return name.replace("blob", "text")
    if name == "decimal":
        scale = field.scale
        precision = field.length - (1 if scale else 0) - (0 if flags & _UNSIGNED_FLAG else 1)
        return f"decimal({precision},{scale})" + (" unsigned" if flags & _UNSIGNED_FLAG else "")
    if name == "bit":
        return f"bit({field.length})"
    if name in ("datetime", "timestamp", "time") and field.scale:
        return f"{name}({field.scale})"
    if name in ("tinyint", "smallint", "mediumint", "int", "bigint") and flags & _UNSIGNED_FLAG:
        return f"{name} unsigned"
    return name


def _source_column(field) -> SourceColumn:
    source = field_source_type(field)
    match = re.search(r"\((\d+)(?:,(\d+))?\)", source)
    precision = int(match.group(1)) if match and source.startswith(("decimal", "bit")) else None
    scale = int(match.group(2)) if match and match.group(2) else None
    if source.startswith(("datetime", "timestamp", "time")):
        scale = field.scale  # fractional-second digits
    return SourceColumn(field.name, source, precision, scale)


def _converter(field: pa.Field, fix):
    """Whole columns of the server's text cast by Arrow; what a cast refuses (zero dates,
    TIME, BIT bytes) goes value by value through _python_value and types.converter."""
    data_type = field.type
    slow = value_converter(field, fix)

    def one_by_one(values: list) -> pa.Array:
        return slow(
            [None if value is None else _python_value(value, data_type) for value in values]
        )

    def convert(values: list) -> pa.Array:
        if fix is None and (pa.types.is_string(data_type) or pa.types.is_large_string(data_type)):
            # Text arrives decoded: a whole column at once (bytes of a binary collation or
            # anything else unusual fall back to one by one).
            try:
                return pa.array(values, data_type)
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                return one_by_one(values)
        if not (
            pa.types.is_integer(data_type)
            or pa.types.is_floating(data_type)
            or pa.types.is_decimal(data_type)
            or pa.types.is_timestamp(data_type)
            or pa.types.is_date(data_type)
        ):
            return one_by_one(values)
        try:
            text = pa.array(values, pa.string())
            if pa.types.is_timestamp(data_type) and data_type.tz:
                return text.cast(pa.timestamp(data_type.unit)).cast(data_type)
            return text.cast(data_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError, TypeError):
            pass  # zero dates, BIT bytes, out-of-range text: one by one
        return one_by_one(values)

    return convert


def _python_value(value: Any, data_type: pa.DataType) -> Any:
    if isinstance(value, (bytes, bytearray)) and (
        pa.types.is_integer(data_type) or pa.types.is_boolean(data_type)
    ):
        return int.from_bytes(value, "big")  # BIT(n)
    if isinstance(value, str) and (pa.types.is_timestamp(data_type) or pa.types.is_date(data_type)):
        if _ZERO_DATE.match(value):
            return None
        parsed = dt.datetime.fromisoformat(value)
        return parsed.date() if pa.types.is_date(data_type) else parsed
    if isinstance(value, str) and (pa.types.is_time(data_type) or pa.types.is_duration(data_type)):
        return _parse_time(value)
    if isinstance(value, str) and pa.types.is_boolean(data_type):
        return value not in ("0", "")
    return value


def _parse_time(text: str) -> dt.timedelta:
    """MySQL TIME text (``-838:59:59.000000`` .. ``838:59:59``) as a timedelta."""
    match = _TIME.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a MySQL TIME")
    sign, hours, minutes, seconds, fraction = match.groups()
    value = dt.timedelta(
        hours=int(hours),
        minutes=int(minutes),
        seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(6, "0")),
    )
    return -value if sign else value


def read_error(error: BaseException) -> Exception:
    """A PyMySQL error during a read as FlowForge's: transient when the connection died."""
    import pymysql

    if isinstance(error, (SourceQueryError, SourceReadError)) or not isinstance(
        error, (pymysql.MySQLError, OSError)
    ):
        return error if isinstance(error, Exception) else RuntimeError(str(error))
    code = error.args[0] if error.args else None
    text = error_text(error)
    if code in (1969, 3024, 1317):  # max_statement_time / max_execution_time / interrupted
        return SourceQueryError(mysql_arrow.TIMED_OUT, text)
    if isinstance(error, (pymysql.err.OperationalError, pymysql.err.InterfaceError, OSError)) and (
        code in (2006, 2013, 2055, 1927, 1053, 0) or isinstance(error, OSError) or code is None
    ):
        return SourceReadError(mysql_arrow.LOST, text)
    first = text.splitlines()[0] if text else "unknown error"
    return SourceQueryError(f"MySQL refused the query: {first}", text)


def _abandon(cursor, conn) -> None:
    """Close the connection under an unfinished unbuffered result. The cursor and its result
    are detached first: PyMySQL would otherwise try to drain the closed socket when they
    are collected (and report that as an ignored exception)."""
    result = getattr(cursor, "_result", None)
    if result is not None:
        result.unbuffered_active = False
    cursor.connection = None
    _close_quietly(None, conn)


def _close_quietly(cursor, conn) -> None:
    # Either may already be closed or dead: nothing is left to release then.
    if cursor is not None:
        with contextlib.suppress(Exception):
            cursor.close()
    with contextlib.suppress(Exception):
        conn.close()


def _fetch_all(conn, sql: str, params: Mapping[str, Any]) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


_LIST_TABLES = """
SELECT TABLE_SCHEMA, TABLE_NAME, TABLE_TYPE, TABLE_ROWS
FROM information_schema.TABLES
WHERE TABLE_TYPE IN ('BASE TABLE', 'VIEW', 'SYSTEM VERSIONED')
  AND (TABLE_SCHEMA = COALESCE(%(schema)s, DATABASE())
       OR (%(schema)s IS NULL AND DATABASE() IS NULL AND TABLE_SCHEMA NOT IN
           ('mysql', 'information_schema', 'performance_schema', 'sys')))
ORDER BY TABLE_SCHEMA, TABLE_NAME
"""

_DESCRIBE = """
SELECT c.COLUMN_NAME, c.COLUMN_TYPE, c.DATA_TYPE, c.IS_NULLABLE, c.COLUMN_KEY,
       c.CHARACTER_MAXIMUM_LENGTH, c.NUMERIC_PRECISION, c.NUMERIC_SCALE
FROM information_schema.COLUMNS c
WHERE c.TABLE_SCHEMA = COALESCE(%(schema)s, DATABASE()) AND c.TABLE_NAME = %(table)s
ORDER BY c.ORDINAL_POSITION
"""

_PROCEDURES = """
SELECT r.ROUTINE_SCHEMA, r.ROUTINE_NAME, p.PARAMETER_MODE, p.PARAMETER_NAME, p.DTD_IDENTIFIER
FROM information_schema.ROUTINES r
LEFT JOIN information_schema.PARAMETERS p
  ON p.SPECIFIC_SCHEMA = r.ROUTINE_SCHEMA AND p.SPECIFIC_NAME = r.SPECIFIC_NAME
 AND p.ORDINAL_POSITION > 0
WHERE r.ROUTINE_TYPE = 'PROCEDURE' AND r.ROUTINE_SCHEMA = DATABASE()
ORDER BY r.ROUTINE_SCHEMA, r.ROUTINE_NAME, p.ORDINAL_POSITION
"""
