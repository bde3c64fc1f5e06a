"""SQL Server through Microsoft's driver, ``mssql-python`` (it carries the ODBC Driver 18 for
SQL Server in its wheel: no system ODBC set-up), reading results as Arrow batches.

Connecting
  The connection string goes to ``resolved_addresses[0]`` (the address the network guard
  checked) with ``HostNameInCertificate`` set to the host name the user gave, so the
  certificate is checked against that name while the connection stays pinned. A named
  instance without a port goes through the SQL Browser. The driver's pool keeps a closed
  session for the next connect with the same string (reset in between; an idle one closes
  after a minute): a new session's first catalog query is slow (0.4-0.7 s on Babelfish).

  TLS (``options.encrypt``): ``mandatory`` (the default, also ``true``/``yes``) and ``strict``
  (TDS 8.0, TLS before the first TDS byte) verify the server's certificate and host name;
  ``optional`` (``false``/``no``) sends data in the clear. Trust comes from the system CA
  store and ``SSL_CERT_FILE``/``SSL_CERT_DIR`` as with any OpenSSL client, plus
  ``options.caFile`` (PEM, on the worker) for this connection only. Only
  ``trustServerCertificate=true`` skips the check (``mandatory`` only; the API shows a
  warning on such a connection). TLS failures are told apart: ``tls-unsupported`` (the server
  offers no TLS, or no TDS 8.0 for ``strict``), ``tls-untrusted`` (certificate not trusted)
  and ``tls-hostname`` (certificate for another name).

  Sign-in: SQL logins; Microsoft Entra ID (service principal, managed identity, an access
  token, password) with a token FlowForge obtains (connectors/entra.py); Windows
  (Kerberos: ``Trusted_Connection``) when the worker holds a ticket.

Reading
  ``cursor.arrow_batch`` streams typed Arrow record batches of ``batch_size`` rows; each
  column is then cast to the type docs/connectors.md gives it (connectors/types.py), exact
  or refused. Column names come from the result set; the source types from
  ``sp_describe_first_result_set`` (datetime vs datetime2, money, uniqueidentifier and
  rowversion look alike in Arrow), else from the Arrow types. ``datetime2(7)``,
  ``datetimeoffset(7)`` and ``time(7)`` columns of a table read travel as ISO text so the
  100 ns digit is kept (the driver's Arrow timestamps stop at microseconds). Results the
  Arrow path cannot read (``sql_variant``, CLR types) are read row by row.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import socket
import ssl
import threading
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowforge_ingest.connectors import entra
from flowforge_ingest.connectors.arrowing import (
    RowStream,
    SourceColumn,
    SourceDataError,
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
_DEFAULT_QUERY_WAIT = 3600  # seconds the driver waits for a statement when none is set
ENCRYPT_MODES = ("optional", "mandatory", "strict")
_ENCRYPT_VALUES = {
    "true": "mandatory",
    "yes": "mandatory",
    "mandatory": "mandatory",
    "strict": "strict",
    "false": "optional",
    "no": "optional",
    "optional": "optional",
}
# SSL_CERT_FILE is read by OpenSSL when the driver builds its TLS context, at each connect:
# a connection's own CA file is added by pointing it at a bundle for the length of the
# connect, one connect at a time.
_TRUST_LOCK = threading.Lock()
# Sessions kept by the driver's pool per connection string (and access token), and how long
# an idle one stays open on the server.
POOL_SIZE = 8
POOL_IDLE_SECONDS = 60


def encrypt_mode(options: Mapping[str, Any]) -> str:
    """``optional``, ``mandatory`` (the default) or ``strict`` from options.encrypt."""
    value = options.get("encrypt")
    if value is None or value == "":
        return "mandatory"
    text = str(value).strip().lower()
    if text not in _ENCRYPT_VALUES:
        raise ConnectError(
            ConnectFailure.OTHER,
            f"encrypt must be one of {', '.join(ENCRYPT_MODES)} (or true/false), not {value!r}",
        )
    return _ENCRYPT_VALUES[text]


def _flag(options: Mapping[str, Any], key: str) -> bool:
    return str(options.get(key, "")).strip().lower() in ("true", "yes", "1")


def connection_string(params: ConnectionParams, address: str, trust: str | None = None) -> str:
    """The driver's connection string for ``params``, to ``address`` (the checked IP);
    ``trust`` is :func:`trust_tag`'s digest of what the certificate check trusts."""
    from flowforge_rules.connstrings import odbc_value

    options = params.options
    mode = encrypt_mode(options)
    trust_any = _flag(options, "trustServerCertificate")
    instance = options.get("instance")
    server = (
        f"{address}\\{instance}"
        if instance and not params.port
        else f"tcp:{address},{params.port or 1433}"
    )
    parts: list[tuple[str, str]] = [("Server", server)]
    if params.database:
        parts.append(("Database", params.database))
    parts.extend(_credentials(params))
    parts.append(("Encrypt", {"optional": "no", "mandatory": "yes", "strict": "strict"}[mode]))
    if mode == "mandatory" and trust_any:
        parts.append(("TrustServerCertificate", "yes"))
    elif mode != "optional":
        name = options.get("hostNameInCertificate") or params.host or address
        parts.append(("HostNameInCertificate", str(name)))
    if options.get("applicationIntent") == "ReadOnly":
        parts.append(("ApplicationIntent", "ReadOnly"))
    if _flag(options, "multiSubnetFailover"):
        parts.append(("MultiSubnetFailover", "yes"))
    # one attempt: a failed login is retried by the job's own retries, not inside a connect
    parts.append(("ConnectRetryCount", "0"))
    if trust and params.authentication != "windows":
        # Only Kerberos reads the server's SPN: elsewhere it is a free label, and the pool
        # key (the whole string) then differs for every trust (see trust_tag).
        parts.append(("ServerSPN", f"flowforge-trust-{trust}"))
    return ";".join(f"{key}={odbc_value(key, value)}" for key, value in parts)


def _credentials(params: ConnectionParams) -> list[tuple[str, str]]:
    method = params.authentication
    if method == "sql":
        return [("UID", params.username or ""), ("PWD", params.password or "")]
    if method == "windows":
        if params.password is not None:
            raise ConnectError(
                ConnectFailure.LOGIN,
                "Windows authentication here is Kerberos: the worker signs in with the ticket "
                "in its credential cache (kinit), never with a stored password; remove the "
                "password, or use a SQL login or Microsoft Entra ID",
            )
        if not _kerberos_ticket():
            raise ConnectError(
                ConnectFailure.LOGIN,
                "Windows authentication needs a Kerberos ticket in the worker's credential "
                "cache (KRB5CCNAME, from kinit or a keytab) and none was found; SQL Server "
                "on Linux workers cannot sign in with NTLM user names and passwords",
            )
        return [("Trusted_Connection", "yes")]
    if entra.is_entra(method):
        return []  # the token goes in a connection attribute
    raise ConnectError(
        ConnectFailure.LOGIN,
        f"authentication {method!r} is not one SQL Server knows here; use sql, windows or "
        + ", ".join(entra.METHODS),
    )


def _kerberos_ticket() -> bool:
    """Whether the worker's Kerberos credential cache (a FILE: cache) exists."""
    cache = os.environ.get("KRB5CCNAME") or f"FILE:/tmp/krb5cc_{os.getuid()}"
    if ":" in cache and not cache.startswith("FILE:"):
        return True  # KEYRING:, KCM:, DIR: ... the driver's GSSAPI will tell
    return os.path.isfile(cache.removeprefix("FILE:"))


class SQLServerConnector:
    db_type = DB_TYPE

    # --- connecting -------------------------------------------------------------------------

    def connect(self, params: ConnectionParams):
        import mssql_python

        # The driver's pool keeps sessions for reuse (sp_reset_connection between users):
        # a new session's first catalog query costs Babelfish 0.4-0.7 s, SQL Server less.
        mssql_python.pooling(max_size=POOL_SIZE, idle_timeout=POOL_IDLE_SECONDS)
        try:
            address = first_address(DB_TYPE, params, params.port or 1433)
            ca_text = _ca_text(params.options.get("caFile"))
            text = connection_string(params, address, trust_tag(params, ca_text))
            named_instance = bool(params.options.get("instance")) and not params.port
            if not named_instance:
                _probe(address, params.port or 1433, params.connect_timeout)
                if encrypt_mode(params.options) == "strict":
                    _probe_strict(address, params.port or 1433, params.connect_timeout)
            attributes = (
                entra.token_attribute(entra.access_token(params))
                if entra.is_entra(params.authentication)
                else None
            )
        except ConnectError:
            raise
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            raise self._classify(error, params) from None
        try:
            with _trusting(ca_text):
                conn = mssql_python.connect(
                    text,
                    autocommit=True,
                    attrs_before=attributes,
                    timeout=params.connect_timeout,
                )
        except ConnectError:
            raise
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            failure = self._classify(error, params)
            broken_off = failure.kind is ConnectFailure.PROTOCOL or (
                failure.kind is ConnectFailure.OTHER
                and re.search(r"communication link failure|0x2746", str(failure.detail), re.I)
            )
            if entra.is_entra(params.authentication) and broken_off:
                # a server without Entra ID sign-in (FEDAUTH) breaks off the login: it
                # answers outside the protocol, or resets the connection under TLS
                failure = ConnectError(
                    ConnectFailure.LOGIN,
                    f"the SQL Server at {params.host}:{params.port or 1433} did not accept a "
                    "Microsoft Entra ID token: it broke off the login (a server without Entra "
                    "ID sign-in does); check that it is an Azure SQL database or a SQL Server "
                    "with Microsoft Entra authentication set up",
                    failure.detail,
                )
            raise failure from None
        conn.timeout = params.query_timeout or _DEFAULT_QUERY_WAIT
        return conn

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        text = error_text(error)
        lowered = text.lower()
        if re.search(r"login failed|18456|token-identified principal|untrusted domain", lowered):
            kind = ConnectFailure.LOGIN
        elif re.search(r"cannot open database|database .* does not exist|\b4060\b", lowered):
            kind = ConnectFailure.DATABASE
        elif "encryption not supported" in lowered or "does not support tds 8" in lowered:
            kind = ConnectFailure.TLS_UNSUPPORTED
        elif re.search(r"does not match host ?name|hostname mismatch|ip address mismatch", lowered):
            kind = ConnectFailure.TLS_HOSTNAME
        elif re.search(
            r"certificate verify failed|self[- ]signed certificate|unable to get local issuer|"
            r"certificate chain|certificate has expired|untrusted root",
            lowered,
        ):
            kind = ConnectFailure.TLS_UNTRUSTED
        elif "connection refused" in lowered or "0x274d" in lowered:
            kind = ConnectFailure.REFUSED
        elif re.search(r"ssl provider|\btls\b|\bssl\b", lowered):
            kind = ConnectFailure.TLS
        elif re.search(r"handshakes before login|protocol error in tds|unexpected eof", lowered):
            kind = ConnectFailure.PROTOCOL  # something answered that is not SQL Server
        elif "timeout error" in lowered or "timed out" in lowered or "hyt00" in lowered:
            kind = ConnectFailure.UNREACHABLE
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
    ) -> Any:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        described = (
            _describe_result(conn, _without_markers(sql, params or {})) if not columns else None
        )
        known = columns or described
        exact = _exact_time_columns(known) if columns and sql.startswith(_PLAIN_SELECT) else []
        if exact:
            sql = _with_time_as_text(sql, columns, exact)
        sql, values = _qmark(sql, params)
        cursor = conn.cursor()
        try:
            cursor.execute(sql, values) if values else cursor.execute(sql)
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            _close_quietly(cursor)
            raise read_error(error) from None
        if cursor.description is None:
            _close_quietly(cursor)
            raise SourceQueryError("the SQL Server query returns no rows (is it a SELECT?)")
        # the result set's own names: sys.columns and sp_describe_first_result_set may spell
        # them otherwise (Babelfish lower-cases them)
        names = [description[0] for description in cursor.description]
        try:
            first = cursor.arrow_batch(batch_size)
        except RuntimeError as error:
            if "unsupported data type" not in str(error).lower():
                _close_quietly(cursor)
                raise read_error(error) from None
            # sql_variant, CLR types: no Arrow path in the driver; read the rows instead
            _close_quietly(cursor)
            return _row_stream(conn, sql, values, batch_size, names, known, columns)
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            _close_quietly(cursor)
            raise read_error(error) from None
        resolved = _resolved_columns(names, known, columns, first.schema)
        return ArrowStream(
            cursor, first, resolved, batch_size, text_columns={name for name in exact}
        )


class ArrowStream:
    """A BatchStream over ``cursor.arrow_batch``: each driver batch cast to the schema
    FlowForge gives the result's source types, exactly or not at all."""

    def __init__(
        self,
        cursor,
        first: pa.RecordBatch,
        columns: Sequence[SourceColumn],
        batch_size: int,
        text_columns: set[str],
    ) -> None:
        self.schema = schema_of(columns, DB_TYPE)
        self._cursor = cursor
        self._first: pa.RecordBatch | None = first
        self._columns = list(columns)
        self._batch_size = batch_size
        self._text_columns = text_columns
        self._fixers = {
            index: converters_of([column], DB_TYPE)[0]
            for index, column in enumerate(self._columns)
            if _needs_values(column)
        }
        self._closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            batch = self._first
            self._first = None
            while batch is not None and batch.num_rows and not self._closed:
                yield self._typed(batch)
                # Only an empty batch ends the result: when the connection dies the driver
                # first hands over the rows it holds (a short batch), and the next fetch
                # raises. Stopping at a short batch would end a broken read as a success.
                try:
                    batch = self._cursor.arrow_batch(self._batch_size)
                except Exception as error:  # noqa: BLE001 (translated for the caller)
                    raise read_error(error) from None
            if not self._closed:
                _verify_complete(self._cursor)
        finally:
            self.close()

    def _typed(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for index, field in enumerate(self.schema):
            column = batch.column(index)
            if index in self._fixers:
                arrays.append(self._fixers[index](column.to_pylist()))
                continue
            try:
                arrays.append(_cast(column, field.type, field.name in self._text_columns))
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise SourceDataError(
                    f"column {field.name!r}: a value does not fit {field.type} "
                    f"({self._columns[index].source_type}): {error}"
                ) from None
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            _close_quietly(self._cursor)


def _verify_complete(cursor) -> None:
    """Whether a result that just ended really ended. mssql-python 1.16 can end a result
    whose connection was reset (a KILLed session) as if it were complete, after a short
    batch and without an error (its Arrow fetch in 2 of 5 tries against Babelfish 4.2; its
    row fetch then leaves an 08S01 message). A trivial statement on the same connection
    tells: a lost connection fails it, and the read is then not a success."""
    lost = [message for message in cursor.messages if "08S01" in str(message)]
    probe = None
    try:
        probe = cursor.connection.cursor()
        probe.execute("SELECT 1")
        probe.fetchall()
    except Exception as error:  # noqa: BLE001 (translated for the caller)
        raise read_error(error) from None
    finally:
        if probe is not None:
            _close_quietly(probe)
    if lost:
        raise SourceReadError(
            "the connection to SQL Server was lost while reading; the job will be retried",
            str(lost[0]),
        )


def _cast(column: pa.Array, target: pa.DataType, from_text: bool) -> pa.Array:
    if column.type == target:
        return column
    if from_text:
        # 'yyyy-mm-dd hh:mi:ss.fffffff' (121) and '...+hh:mm' (127): ISO 8601 Arrow reads;
        # a time of day is read as that time on 1970-01-01 (Arrow casts no text to time64)
        text = pc.cast(column, pa.string())
        if pa.types.is_time(target):
            stamp = pc.cast(
                pc.binary_join_element_wise("1970-01-01 ", text, ""), pa.timestamp("ns")
            )
            return pc.cast(stamp, target)
        return pc.cast(text, target)
    if pa.types.is_timestamp(target) and pa.types.is_timestamp(column.type):
        if target.tz is not None and column.type.tz is not None:
            column = column.cast(pa.timestamp(column.type.unit, tz=target.tz))
    return pc.cast(column, target, safe=True)


def _needs_values(column: SourceColumn) -> bool:
    """Types the driver's Arrow gives in another form than FlowForge keeps: a
    uniqueidentifier in upper case, a rowversion as 8 bytes, sql_variant and CLR values."""
    name = column.source_type.split("(", 1)[0].strip().lower()
    return name in ("uniqueidentifier", "rowversion", "timestamp", "sql_variant")


def _resolved_columns(
    names: list[str],
    known: list[ColumnInfo] | None,
    columns: list[ColumnInfo] | None,
    arrow_schema: pa.Schema,
) -> list[SourceColumn]:
    if known is not None and len(known) == len(names):
        derived = [_named(column, name) for name, column in zip(names, known, strict=True)]
    else:
        derived = [
            SourceColumn(name, _type_from_arrow(field.type))
            for name, field in zip(names, arrow_schema, strict=True)
        ]
    return resolve_columns(derived, columns)


def _named(column: ColumnInfo, name: str) -> SourceColumn:
    return SourceColumn(
        name, column.source_type, column.precision, column.scale, column.max_length, column.nullable
    )


def _type_from_arrow(data_type: pa.DataType) -> str:
    """A SQL Server type for a result column SQL Server could not describe (an EXEC on
    Babelfish, a temporary table), from the driver's Arrow type."""
    if pa.types.is_boolean(data_type):
        return "bit"
    if pa.types.is_uint8(data_type):
        return "tinyint"
    if pa.types.is_int16(data_type):
        return "smallint"
    if pa.types.is_int32(data_type):
        return "int"
    if pa.types.is_integer(data_type):
        return "bigint"
    if pa.types.is_float32(data_type):
        return "real"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_timestamp(data_type):
        return "datetimeoffset(6)" if data_type.tz else "datetime2(6)"
    if pa.types.is_time(data_type):
        return "time(7)" if data_type.unit == "ns" else "time(6)"
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return "varbinary(max)"
    return "nvarchar(max)"


# A read FlowForge planned for a table: its select list can be spelled out.
_PLAIN_SELECT = "SELECT * FROM "
_EXACT_TIME = re.compile(r"^\s*(datetime2|datetimeoffset|time)\s*(\(\s*7\s*\))?\s*$", re.I)


def _exact_time_columns(columns: Sequence[ColumnInfo] | None) -> list[str]:
    """Columns whose 100 ns digit the driver's Arrow timestamps would drop."""
    found = []
    for column in columns or ():
        match = _EXACT_TIME.match(column.source_type)
        if (
            match
            and (column.scale in (None, 7))
            and ("(" not in column.source_type or match.group(2))
        ):
            found.append(column.name)
    return found


def _with_time_as_text(sql: str, columns: Sequence[ColumnInfo], exact: list[str]) -> str:
    """``SELECT * FROM x ...`` with the columns listed, the exact ones as ISO text."""
    from flowforge_ingest.connectors.sql import quote_identifier

    listed = []
    for column in columns:
        quoted = quote_identifier(DB_TYPE, column.name)
        if column.name in exact:
            style = 127 if column.source_type.lower().startswith("datetimeoffset") else 121
            listed.append(f"CONVERT(varchar(40), {quoted}, {style}) AS {quoted}")
        else:
            listed.append(quoted)
    return "SELECT " + ", ".join(listed) + " FROM " + sql[len(_PLAIN_SELECT) :]  # noqa: S608


def _row_stream(conn, sql, values, batch_size, names, known, columns) -> RowStream:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, values) if values else cursor.execute(sql)
        first = cursor.fetchmany(batch_size)
    except Exception as error:  # noqa: BLE001 (translated for the caller)
        _close_quietly(cursor)
        raise read_error(error) from None
    if known is not None and len(known) == len(names):
        derived = [_named(column, name) for name, column in zip(names, known, strict=True)]
    else:
        derived = [
            SourceColumn(name, _inferred_type([row[index] for row in first]))
            for index, name in enumerate(names)
        ]
    resolved = resolve_columns(derived, columns)
    return RowStream(
        schema_of(resolved, DB_TYPE),
        lambda size: _fetch_rows(cursor, size),
        batch_size,
        on_error=read_error,
        on_close=lambda: _close_quietly(cursor),
        converters=converters_of(resolved, DB_TYPE),
        first_rows=[tuple(row) for row in first],
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


def _describe_result(conn, sql: str) -> list[ColumnInfo] | None:
    """The query's columns as SQL Server describes them without running it, or None.

    ``sp_describe_first_result_set`` (Babelfish has it, not the DMV function of the same
    name), given the statement with NULL for its values (the types do not depend on them);
    its columns are read by name, the sizes from max_length, precision and scale (Babelfish's
    system_type_name is the bare type name)."""
    cursor = conn.cursor()
    try:
        cursor.execute("EXEC sp_describe_first_result_set @tsql = ?", (sql,))
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


def _without_markers(sql: str, names: Sequence[str]) -> str:
    """``sql`` with the plan's ``%(name)s`` placeholders replaced by NULL."""
    for name in names:
        sql = sql.replace(f"%({name})s", "NULL")
    return sql


def _fetch_rows(cursor, size: int) -> list[tuple]:
    rows = [tuple(row) for row in cursor.fetchmany(size)]
    if not rows:
        _verify_complete(cursor)
    return rows


def _qmark(sql: str, params: Mapping[str, Any] | None) -> tuple[str, tuple | None]:
    """A plan's ``%(name)s`` placeholders (pyformat, connectors/sql.py) as the driver's ``?``
    markers with the values in their order. The plan refuses user text that looks like a
    placeholder, so only FlowForge's own are replaced; nothing else in the text changes
    (the driver's own pyformat path would turn every ``%%`` into ``%``, even in literals)."""
    if not params:
        return sql, None
    pattern = re.compile("|".join(re.escape(f"%({name})s") for name in params))
    values: list[Any] = []

    def marker(match: re.Match[str]) -> str:
        values.append(params[match.group(0)[2:-2]])
        return "?"

    return pattern.sub(marker, sql), tuple(values)


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
    """Open and close a TCP connection: the driver reports a refused port by retrying until
    its login timeout; the operating system tells a refused port at once."""
    with socket.create_connection((address, port), timeout=timeout):
        pass


def _probe_strict(address: str, port: int, timeout: float) -> None:
    """Whether the server speaks TLS first (TDS 8.0, ``encrypt=strict``). A server that does
    not waits for a TDS pre-login packet, and the driver then waits 60 seconds whatever its
    timeout; here a TLS ClientHello is sent and the answer (or silence) awaited for
    ``timeout`` seconds. The certificate is checked by the driver, not here."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # only "does it answer in TLS" is asked here
    context.set_alpn_protocols(["tds/8.0"])
    try:
        with (
            socket.create_connection((address, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=None),
        ):
            return
    except (TimeoutError, ssl.SSLError, ConnectionResetError) as error:
        raise ConnectError(
            ConnectFailure.TLS_UNSUPPORTED,
            f"the SQL Server at {address}:{port} did not answer a TLS handshake in "
            f"{timeout:g} s: it does not support strict encryption (TDS 8.0, SQL Server 2022 "
            "and later); use encrypt=mandatory",
            str(error) or type(error).__name__,
        ) from None


def _ca_text(ca_file: str | None) -> str | None:
    """The PEM text of a connection's CA file, read on the worker, or None."""
    if not ca_file:
        return None
    try:
        with open(ca_file, encoding="ascii") as handle:
            text = handle.read()
    except (OSError, UnicodeError) as error:
        raise ConnectError(
            ConnectFailure.TLS_UNTRUSTED,
            f"the connection's CA file {ca_file!r} cannot be read on the worker: {error}",
        ) from None
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise ConnectError(
            ConnectFailure.TLS_UNTRUSTED,
            f"the connection's CA file {ca_file!r} holds no PEM certificate "
            "(-----BEGIN CERTIFICATE-----)",
        )
    return text


def trust_tag(params: ConnectionParams, ca_text: str | None) -> str | None:
    """What the certificate check of this connect trusts, as a short digest (None when the
    certificate is not checked). Pooled sessions are keyed by the connection string: the
    digest in it keeps a session verified under one trust from serving a connect that
    trusts otherwise (another CA file, another SSL_CERT_FILE)."""
    mode = encrypt_mode(params.options)
    if mode == "optional" or (
        mode == "mandatory" and _flag(params.options, "trustServerCertificate")
    ):
        return None
    import hashlib

    trust = "\x00".join(
        (
            ca_text or "",
            os.environ.get("SSL_CERT_FILE", ""),
            os.environ.get("SSL_CERT_DIR", ""),
        )
    )
    return hashlib.sha256(trust.encode()).hexdigest()[:16]


@contextlib.contextmanager
def _trusting(ca_text: str | None) -> Iterator[None]:
    """OpenSSL's trust for one connect: the system store and SSL_CERT_FILE as always, plus
    the connection's own CA certificates when it names a CA file."""
    if not ca_text:
        yield
        return
    import tempfile

    paths = ssl.get_default_verify_paths()
    bundle = [ca_text]
    for path in {os.environ.get("SSL_CERT_FILE"), paths.cafile, paths.openssl_cafile}:
        if path and os.path.isfile(path):
            with open(path, encoding="ascii", errors="replace") as handle:
                bundle.append(handle.read())
    with _TRUST_LOCK, tempfile.NamedTemporaryFile("w", suffix=".pem") as combined:
        combined.write("\n".join(bundle))
        combined.flush()
        before = os.environ.get("SSL_CERT_FILE")
        os.environ["SSL_CERT_FILE"] = combined.name
        try:
            yield
        finally:
            if before is None:
                os.environ.pop("SSL_CERT_FILE", None)
            else:
                os.environ["SSL_CERT_FILE"] = before


def read_error(error: BaseException) -> Exception:
    """A driver error during a read as FlowForge's: transient when the connection died."""
    if isinstance(error, (SourceQueryError, SourceReadError, SourceDataError)):
        return error
    text = error_text(error)
    lowered = text.lower()
    if "hyt00" in lowered or "query timeout expired" in lowered or "timeout expired" in lowered:
        return SourceQueryError(
            "SQL Server did not answer within the connection's queryTimeout; raise the timeout "
            "or read less at a time",
            text,
        )
    if any(
        phrase in lowered
        for phrase in (
            "communication link failure",
            "connection reset",
            "broken pipe",
            "tcp provider",
            "08s01",
            "connection is closed",
            "session is killed",
            "terminating connection",
        )
    ):
        return SourceReadError(
            "the connection to SQL Server was lost while reading; the job will be retried", text
        )
    return SourceQueryError(f"SQL Server refused the query: {_server_words(text)}", text)


def _server_words(text: str) -> str:
    """The server's own sentence from a driver error ("Driver Error: ...; DDBC Error:
    [Microsoft][SQL Server]Invalid object name 'x'.")."""
    found = re.search(r"DDBC Error:\s*(?:\[[^\]]*\])*\s*(.+)", text) or re.search(
        r"\[SQL Server\]\s*(.+)", text
    )
    line = (found.group(1) if found else text).strip().splitlines()
    return line[0] if line else "unknown error"


def _close_quietly(cursor) -> None:
    with contextlib.suppress(Exception):  # a dead connection has nothing to close
        cursor.close()


def _fetch_all(conn, sql: str, params: Mapping[str, Any] | None) -> list[tuple]:
    statement, values = _qmark(sql, params)
    cursor = conn.cursor()
    try:
        cursor.execute(statement, values) if values else cursor.execute(statement)
        return [tuple(row) for row in cursor.fetchall()]
    finally:
        _close_quietly(cursor)


_LIST_TABLES = """
SELECT s.name, o.name, o.type,
       (SELECT SUM(p.rows) FROM sys.partitions p
        WHERE p.object_id = o.object_id AND p.index_id IN (0, 1))
FROM sys.objects o JOIN sys.schemas s ON s.schema_id = o.schema_id
WHERE o.type IN ('U', 'V') AND o.is_ms_shipped = 0
  AND (%(schema)s IS NULL OR s.name = %(schema)s)
ORDER BY s.name, o.name
"""

# The name as created: Babelfish lower-cases sys.columns.name, INFORMATION_SCHEMA keeps it
# (matched by name: ORDINAL_POSITION is not column_id on SQL Server once a column is dropped).
_DESCRIBE = """
SELECT COALESCE(
         (SELECT isc.COLUMN_NAME FROM INFORMATION_SCHEMA.COLUMNS isc
          WHERE isc.TABLE_SCHEMA = %(schema)s AND isc.TABLE_NAME = %(table)s
            AND isc.COLUMN_NAME = c.name),
         c.name),
       TYPE_NAME(c.system_type_id), c.max_length, c.precision, c.scale,
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
