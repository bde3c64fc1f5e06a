"""Oracle through python-oracledb in thin mode (no Oracle client libraries): connect,
introspect, stream a query as Arrow.

Connections go to ``resolved_addresses[0]`` with a service name (``database``, or the
``service_name`` option) or a SID option; ``tcp_connect_timeout`` bounds the TCP connect,
and the whole connect is bounded by the connect timeout too, because the thin driver waits
for a silent listener's handshake without limit. Over TLS (``protocol=tcps``) the driver
checks the certificate against the address it connects to: give ``ssl_server_cert_dn``
when the certificate names only the host.

Sessions run with ``TIME_ZONE = 'UTC'``, each read inside ``SET TRANSACTION READ ONLY``
(one consistent snapshot), and ``call_timeout`` as the query timeout. NUMBER comes back as
Decimal (never float), CLOB/BLOB as text/bytes, so values convert exactly. Parameters are
oracledb's ``:name`` binds.
"""

from __future__ import annotations

import contextlib
import decimal
import threading
from collections.abc import Callable, Mapping
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

DB_TYPE = "oracle"


def connect_arguments(params: ConnectionParams, address: str) -> dict[str, Any]:
    """Keyword arguments for ``oracledb.connect`` (thin mode), to ``address``."""
    options = params.options
    service = params.database or options.get("service_name") or options.get("serviceName")
    sid = options.get("sid")
    encrypt = str(options.get("encrypt", "")).lower() in ("true", "strict") or (
        str(options.get("protocol", "")).lower() == "tcps"
    )
    arguments: dict[str, Any] = {
        "user": params.username,
        "password": params.password,
        "host": address,
        "port": params.port or (2484 if encrypt else 1521),
        "protocol": "tcps" if encrypt else "tcp",
        "tcp_connect_timeout": float(params.connect_timeout),
        "retry_count": 0,
        "program": "FlowForge",
        "driver_name": "FlowForge : oracledb",
    }
    if sid and not params.database:
        arguments["sid"] = sid
    else:
        arguments["service_name"] = service
    if encrypt:
        arguments["ssl_server_dn_match"] = True
        if options.get("ssl_server_cert_dn"):
            arguments["ssl_server_cert_dn"] = options["ssl_server_cert_dn"]
    return arguments


SESSION_STATEMENTS = ("ALTER SESSION SET TIME_ZONE = 'UTC'",)


class OracleConnector:
    db_type = DB_TYPE

    def connect(self, params: ConnectionParams):
        import oracledb

        try:
            address = first_address(DB_TYPE, params, params.port or 1521)
            arguments = connect_arguments(params, address)
            conn = _within(params.connect_timeout, lambda: oracledb.connect(**arguments))
            with conn.cursor() as cursor:
                for statement in SESSION_STATEMENTS:
                    cursor.execute(statement)
            if params.query_timeout:
                conn.call_timeout = params.query_timeout * 1000
            conn.outputtypehandler = output_type_handler
            return conn
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
        if any(code in text for code in ("ORA-01017", "ORA-28000", "ORA-01005", "ORA-28001")):
            kind = ConnectFailure.LOGIN
        elif any(
            code in text for code in ("ORA-12514", "ORA-12505", "DPY-6001", "DPY-6003", "ORA-01034")
        ):
            kind = ConnectFailure.DATABASE
        elif "DPY-4011" in text and "connection refused" not in text.lower():
            kind = ConnectFailure.PROTOCOL  # accepted, then closed: not an Oracle listener
        else:
            kind = generic_kind(text) or ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    def server_version(self, conn) -> str:
        return f"Oracle {conn.version}"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        rows = _fetch_all(conn, LIST_TABLES, {"owner": schema})
        return [
            TableInfo(
                schema=owner,
                name=name,
                kind=kind,
                estimated_rows=int(count) if count is not None else None,
            )
            for owner, name, kind, count in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = _fetch_all(conn, DESCRIBE, {"owner": schema, "name": table})
        if not rows:
            raise SourceQueryError(
                f"the table {table!r} does not exist in this Oracle schema, or this user "
                "cannot see it"
            )
        return [described_column(*row) for row in rows]

    def procedures(self, conn) -> list[ProcedureInfo]:
        rows = _fetch_all(conn, PROCEDURES, {})
        found: dict[tuple[str, str], ProcedureInfo] = {}
        for owner, name, argument, data_type, direction in rows:
            key = (owner, name)
            info = found.setdefault(key, ProcedureInfo(schema=owner, name=name))
            if argument is None:
                continue
            parameter = ParameterInfo(
                argument, data_type or "", {"IN/OUT": "inout"}.get(direction, direction.lower())
            )
            found[key] = ProcedureInfo(owner, name, (*info.parameters, parameter))
        return list(found.values())

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
        cursor = conn.cursor()
        cursor.arraysize = batch_size
        cursor.prefetchrows = batch_size + 1
        try:
            conn.rollback()
            cursor.execute("SET TRANSACTION READ ONLY")
            cursor.execute(sql, dict(params) if params else {})
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            _close(cursor, conn)
            raise read_error(error) from None
        if cursor.description is None:
            _close(cursor, conn)
            raise SourceQueryError("the Oracle query returns no rows (is it a SELECT?)")
        derived = [description_column(item) for item in cursor.description]
        resolved = resolve_columns(derived, columns)
        return RowStream(
            schema_of(resolved, DB_TYPE),
            cursor.fetchmany,
            batch_size,
            on_error=read_error,
            on_close=lambda: _close(cursor, conn),
            converters=converters_of(resolved, DB_TYPE),
        )


# --- types ------------------------------------------------------------------------------------


def output_type_handler(cursor, metadata):
    """NUMBER as Decimal (never a float), LOBs fetched inline as text and bytes."""
    import oracledb

    if metadata.type_code is oracledb.DB_TYPE_NUMBER and not (
        metadata.scale == 0 and 0 < (metadata.precision or 0) <= 18
    ):
        return cursor.var(decimal.Decimal, arraysize=cursor.arraysize)
    if metadata.type_code is oracledb.DB_TYPE_CLOB:
        return cursor.var(oracledb.DB_TYPE_LONG, arraysize=cursor.arraysize)
    if metadata.type_code is oracledb.DB_TYPE_NCLOB:
        return cursor.var(oracledb.DB_TYPE_LONG_NVARCHAR, arraysize=cursor.arraysize)
    if metadata.type_code is oracledb.DB_TYPE_BLOB:
        return cursor.var(oracledb.DB_TYPE_LONG_RAW, arraysize=cursor.arraysize)
    return None


_DB_TYPE_NAMES = {
    "DB_TYPE_VARCHAR": "varchar2",
    "DB_TYPE_NVARCHAR": "nvarchar2",
    "DB_TYPE_CHAR": "char",
    "DB_TYPE_NCHAR": "nchar",
    "DB_TYPE_LONG": "clob",
    "DB_TYPE_CLOB": "clob",
    "DB_TYPE_NCLOB": "nclob",
    "DB_TYPE_DATE": "date",
    "DB_TYPE_TIMESTAMP": "timestamp",
    "DB_TYPE_TIMESTAMP_TZ": "timestamp with time zone",
    "DB_TYPE_TIMESTAMP_LTZ": "timestamp with local time zone",
    "DB_TYPE_BINARY_FLOAT": "binary_float",
    "DB_TYPE_BINARY_DOUBLE": "binary_double",
    "DB_TYPE_RAW": "raw",
    "DB_TYPE_LONG_RAW": "long raw",
    "DB_TYPE_BLOB": "blob",
    "DB_TYPE_BOOLEAN": "boolean",
    "DB_TYPE_INTERVAL_DS": "interval day to second",
    "DB_TYPE_JSON": "json",
    "DB_TYPE_ROWID": "rowid",
}


def description_source_type(type_name: str, precision: int | None, scale: int | None) -> str:
    """Oracle's name of a result column's type from its DbType name and numbers."""
    if type_name == "DB_TYPE_NUMBER":
        if scale == -127:
            return f"float({precision})" if precision else "number"
        if precision:
            return f"number({precision},{scale or 0})"
        return "number"
    return _DB_TYPE_NAMES.get(type_name, "varchar2")


def description_column(item) -> SourceColumn:
    name, db_type, _display, _internal, precision, scale, nullable = item[:7]
    source = description_source_type(getattr(db_type, "name", str(db_type)), precision, scale)
    numeric = source.startswith("number(")
    return SourceColumn(
        name,
        source,
        precision if numeric else None,
        scale if numeric or source.startswith("timestamp") else None,
        None,
        bool(nullable) if nullable is not None else True,
    )


def described_column(
    name: str,
    data_type: str,
    char_length: int | None,
    precision: int | None,
    scale: int | None,
    nullable: str,
    primary_key: int,
) -> ColumnInfo:
    base = data_type.lower()
    length = int(char_length) if char_length else None
    if base == "number" and precision is not None:
        source = f"number({precision},{scale or 0})"
    elif base == "float":
        source = f"float({precision})" if precision else "float"
    elif base in ("varchar2", "nvarchar2", "char", "nchar", "raw") and length:
        source = f"{base}({length})"
    else:
        source = base
    numeric = base == "number" and precision is not None
    arrow = arrow_type_for(
        DB_TYPE,
        source,
        int(precision) if numeric else None,
        int(scale or 0) if numeric else None,
        length,
    )
    return ColumnInfo(
        name=name,
        source_type=source,
        arrow_type=str(arrow),
        nullable=nullable == "Y",
        primary_key=bool(primary_key),
        max_length=length,
        precision=int(precision) if numeric else None,
        scale=int(scale or 0) if numeric else None,
    )


# --- helpers ----------------------------------------------------------------------------------


def _within(seconds: float, call: Callable[[], Any]) -> Any:
    """``call()`` or a timeout after ``seconds``: the thin driver's handshake has no limit
    of its own. A connection that completes after the deadline is closed by its thread."""
    outcome: dict[str, Any] = {}
    done = threading.Event()
    abandoned = threading.Event()

    def run() -> None:
        try:
            outcome["value"] = call()
            if abandoned.is_set():
                outcome["value"].close()
        except BaseException as error:  # noqa: BLE001 (handed to the waiting thread)
            outcome["error"] = error
        finally:
            done.set()

    threading.Thread(target=run, name="oracle connect", daemon=True).start()
    if not done.wait(seconds + 1):
        abandoned.set()
        raise TimeoutError(f"no Oracle handshake within {seconds:g} s (timed out)")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def read_error(error: BaseException) -> Exception:
    if isinstance(error, (SourceQueryError, SourceReadError)):
        return error
    text = error_text(error)
    timed_out = "timed out" in text and "DPY-4011" not in text
    if "DPY-4024" in text or "ORA-01013" in text or timed_out:
        return SourceQueryError(
            "Oracle stopped the query: it ran longer than the connection's queryTimeout",
            text,
        )
    if any(
        code in text for code in ("DPY-4011", "DPY-1001", "ORA-03113", "ORA-03135", "ORA-00028")
    ):
        return SourceReadError(
            "the connection to Oracle was lost while reading; the job will be retried", text
        )
    first = text.splitlines()[0] if text else "unknown error"
    return SourceQueryError(f"Oracle refused the query: {first}", text)


def _close(cursor, conn) -> None:
    for action in (cursor.close, conn.rollback):
        with contextlib.suppress(Exception):  # a dead connection has nothing to release
            action()


def _fetch_all(conn, sql: str, params: Mapping[str, Any]) -> list[tuple]:
    with conn.cursor() as cursor:
        cursor.execute(sql, dict(params))
        return list(cursor.fetchall())


LIST_TABLES = """
SELECT owner, table_name, 'table', num_rows FROM all_tables
WHERE owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND nested = 'NO'
  AND secondary = 'N'
UNION ALL
SELECT owner, view_name, 'view', NULL FROM all_views
WHERE owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))
ORDER BY 1, 2
"""

DESCRIBE = """
SELECT c.column_name, c.data_type, c.char_length, c.data_precision, c.data_scale, c.nullable,
       CASE WHEN EXISTS (
         SELECT 1 FROM all_constraints k
         JOIN all_cons_columns kc ON kc.owner = k.owner AND kc.constraint_name = k.constraint_name
         WHERE k.owner = c.owner AND k.table_name = c.table_name AND k.constraint_type = 'P'
           AND kc.column_name = c.column_name
       ) THEN 1 ELSE 0 END
FROM all_tab_columns c
WHERE c.owner = NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')) AND c.table_name = :name
ORDER BY c.column_id
"""

PROCEDURES = """
SELECT p.owner, p.object_name, a.argument_name, a.data_type, a.in_out
FROM all_procedures p
LEFT JOIN all_arguments a
  ON a.object_id = p.object_id AND a.subprogram_id = p.subprogram_id AND a.position > 0
 AND a.data_level = 0
WHERE p.object_type = 'PROCEDURE' AND p.owner = SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')
ORDER BY p.owner, p.object_name, a.position
"""
