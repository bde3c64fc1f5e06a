"""PostgreSQL through psycopg 3: connect, introspect, and stream a query as Arrow.

Two read paths. A result whose columns all have plain types (numbers, numeric, boolean,
text, date, timestamp, timestamptz, time) is read by postgresql_arrow.py: ADBC's binary
COPY decoded in C++ on a second connection, the fastest reader of the benchmark. Any other
result takes ``COPY (query) TO STDOUT (FORMAT CSV)`` parsed by Arrow's C++ CSV reader, block
by block, on this connection. Bound values (an incremental read's watermark) are merged into
the COPY by psycopg's own client-side adaptation on both paths, never formatted by
FlowForge.

The column types are known before the first row: the query is first DECLAREd as a
server-side cursor (planned, not run), whose description gives each column's type oid and
modifier. On the CSV path, columns Arrow parses from text itself (numbers, decimals,
booleans, dates, timestamps, times, text) stay in C++; the others (bytea, arrays,
interval, ...) are read as text and converted by psycopg's loaders, or for interval by an
exact ISO 8601 parser.

Sessions run in UTC, ISO dates, ISO 8601 intervals, read-only transactions and, when set,
a statement_timeout. The connection goes to ``resolved_addresses[0]`` (libpq ``hostaddr``)
while ``host`` keeps naming the server for TLS verification; the ADBC connection is opened
with the same libpq parameters.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import re
import uuid
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv

from flowforge_ingest.connectors import postgresql_arrow
from flowforge_ingest.connectors.arrowing import (
    SourceColumn,
    SourceDataError,
    SourceQueryError,
    arrow_type_for,
    parse_iso_interval,
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

DB_TYPE = "postgresql"
# Parallel reads: the snapshot each range's connection reads in (export_snapshot/use_snapshot).
_SNAPSHOTS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_SNAPSHOT_ID = re.compile(r"[0-9A-F]+(-[0-9A-F]+)+")
_CSV_BLOCK_BYTES = 4 << 20
_INTERVAL_OID = 1186
_TYPE_ARGS = re.compile(r"\((\d+)(?:\s*,\s*(-?\d+))?\)")
_LOGIN_PHRASES = (
    "authentication failed",
    "no password supplied",
    "is not permitted to log in",
    "no pg_hba.conf entry",
    "pg_hba.conf rejects",
    "role does not exist",
)
_LENGTH_TYPES = ("character", "bit", "varchar", "char")


def _native(data_type: pa.DataType) -> bool:
    """Arrow's CSV reader parses PostgreSQL's text of this type exactly by itself."""
    return (
        pa.types.is_integer(data_type)
        or pa.types.is_floating(data_type)
        or pa.types.is_decimal(data_type)
        or pa.types.is_boolean(data_type)
        or pa.types.is_date32(data_type)
        or pa.types.is_timestamp(data_type)
        or pa.types.is_time64(data_type)
        or pa.types.is_string(data_type)
        or pa.types.is_large_string(data_type)
    )


def type_arguments(type_text: str) -> tuple[int | None, int | None, int | None]:
    """``(precision, scale, max_length)`` from format_type's text: numeric(18,2), varchar(40)."""
    match = _TYPE_ARGS.search(type_text)
    if match is None:
        return None, None, None
    first = int(match.group(1))
    if type_text.startswith(_LENGTH_TYPES):
        return None, None, first
    if type_text.startswith(("numeric", "decimal")):
        return first, int(match.group(2) or 0), None
    return first, None, None  # time(3), timestamp(3): fractional digits


class PostgresConnector:
    db_type = DB_TYPE

    # --- connecting -------------------------------------------------------------------------

    def connect_arguments(self, params: ConnectionParams) -> dict[str, Any]:
        """The keyword arguments for ``psycopg.connect`` (psycopg quotes every value)."""
        settings = [
            "TimeZone=UTC",
            "DateStyle=ISO",
            "IntervalStyle=iso_8601",
            "extra_float_digits=3",  # shortest exact text for floats on every version
            "default_transaction_read_only=on",
        ]
        if params.query_timeout:
            settings.append(f"statement_timeout={params.query_timeout * 1000}")
        arguments: dict[str, Any] = {
            "host": params.host,
            "port": params.port or 5432,
            "dbname": params.database,
            "user": params.username,
            "password": params.password,
            "connect_timeout": params.connect_timeout,
            "application_name": "FlowForge",
            "client_encoding": "UTF8",
            "gssencmode": "disable",  # no Kerberos probe before the real connection
            "sslmode": _sslmode(params.options),
            "options": " ".join(f"-c {setting}" for setting in settings),
        }
        if params.resolved_addresses:
            arguments["hostaddr"] = params.resolved_addresses[0]
        if params.options.get("sslrootcert") == "system":
            arguments["sslrootcert"] = "system"
        return {key: value for key, value in arguments.items() if value is not None}

    def connect(self, params: ConnectionParams):
        import psycopg

        try:
            return psycopg.connect(**self.connect_arguments(params), autocommit=False)
        except Exception as error:  # noqa: BLE001 (every failure is classified)
            raise self._classify(error, params) from None

    def classify_error(self, error: BaseException) -> ConnectError:
        return self._classify(error, None)

    def _classify(self, error: BaseException, params: ConnectionParams | None) -> ConnectError:
        if isinstance(error, ConnectError):
            return error
        text = error_text(error)
        state = getattr(error, "sqlstate", None) or ""
        lowered = re.sub(r'role ".*?" does not exist', "role does not exist", text.lower())
        if state.startswith("28") or any(phrase in lowered for phrase in _LOGIN_PHRASES):
            kind = ConnectFailure.LOGIN
        elif state == "3D000" or re.search(r'database ".*" does not exist', text):
            kind = ConnectFailure.DATABASE
        elif (
            "invalid response to ssl negotiation" in lowered
            or "expected authentication request" in lowered
            or "server closed the connection unexpectedly" in lowered
            or "unsupported frontend protocol" in lowered
            or "invalid length of startup packet" in lowered
            or "received invalid response" in lowered
        ):
            kind = ConnectFailure.PROTOCOL
        else:
            kind = generic_kind(text) or ConnectFailure.OTHER
        return connect_failure(kind, error, DB_TYPE, params)

    # --- introspection ----------------------------------------------------------------------

    def server_version(self, conn) -> str:
        return f"PostgreSQL {conn.info.parameter_status('server_version')}"

    def list_tables(self, conn, schema: str | None) -> list[TableInfo]:
        rows = _fetch_all(conn, _LIST_TABLES, {"schema": schema})
        return [
            TableInfo(
                schema=nspname,
                name=relname,
                kind="view" if relkind in ("v", "m") else "table",
                estimated_rows=(int(tuples) if tuples is not None and tuples >= 0 else None)
                if relkind not in ("v",)
                else None,
            )
            for nspname, relname, relkind, tuples in rows
        ]

    def describe(self, conn, schema: str | None, table: str) -> list[ColumnInfo]:
        rows = _fetch_all(conn, _DESCRIBE, {"schema": schema, "table": table})
        if not rows:
            shown = f"{schema}.{table}" if schema else table
            raise SourceQueryError(
                f"the table {shown!r} does not exist in this PostgreSQL database, or this "
                "user cannot see it"
            )
        columns = []
        for name, source_type, base_type, nullable, primary_key in rows:
            precision, scale, max_length = type_arguments(base_type)
            data_type = arrow_type_for(DB_TYPE, base_type, precision, scale, max_length)
            columns.append(
                ColumnInfo(
                    name=name,
                    source_type=source_type,
                    arrow_type=str(data_type),
                    nullable=bool(nullable),
                    primary_key=bool(primary_key),
                    max_length=max_length,
                    precision=precision,
                    scale=scale,
                )
            )
        return columns

    def procedures(self, conn) -> list[ProcedureInfo]:
        rows = _fetch_all(conn, _PROCEDURES, {})
        found: dict[int, ProcedureInfo] = {}
        for oid, schema, name, argument, type_text, mode in rows:
            info = found.setdefault(oid, ProcedureInfo(schema=schema, name=name))
            if type_text is None:
                continue  # a function without parameters
            direction = {"o": "out", "t": "out", "b": "inout"}.get(mode or "i", "in")
            parameter = ParameterInfo(
                name=argument or "", source_type=type_text, direction=direction
            )
            found[oid] = ProcedureInfo(info.schema, info.name, (*info.parameters, parameter))
        return list(found.values())

    # --- reading ----------------------------------------------------------------------------

    def execute_batches(
        self,
        conn,
        sql: str,
        params: Mapping[str, Any] | None,
        batch_size: int,
        columns: list[ColumnInfo] | None = None,
    ) -> _CopyStream:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        statement = sql.strip().rstrip(";").rstrip()
        values = dict(params) if params else None
        try:
            names, type_codes, modifiers = _describe_query(conn, statement, values)
            rows = _fetch_all(conn, _TYPE_TEXTS, {"oids": type_codes, "mods": modifiers})
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            _rollback(conn)
            raise read_error(error) from None
        derived = [
            SourceColumn(name, type_text, *type_arguments(type_text))
            for name, (type_text, _oid) in zip(names, rows, strict=True)
        ]
        resolved = resolve_columns(derived, columns)
        return _CopyStream(conn, statement, values, resolved, type_codes, batch_size)


# --- the COPY stream --------------------------------------------------------------------------


def export_snapshot(conn) -> str:
    """Start a REPEATABLE READ transaction on ``conn`` and export its snapshot: the ranges of a
    parallel read import it (``use_snapshot``) and all see the table as of this moment. It
    can be imported while ``conn``'s transaction lasts: run nothing else on ``conn`` until
    the read is over."""
    _rollback(conn)
    with conn.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        cursor.execute("SELECT pg_export_snapshot()")
        return cursor.fetchone()[0]


def use_snapshot(conn, snapshot_id: str) -> None:
    """Reads through ``conn`` (both read paths) run in snapshot ``snapshot_id``."""
    if not _SNAPSHOT_ID.fullmatch(snapshot_id):
        raise ValueError(f"not a PostgreSQL snapshot id: {snapshot_id!r}")
    _SNAPSHOTS[conn] = snapshot_id


def _snapshot_statements(conn) -> list[str]:
    snapshot_id = _SNAPSHOTS.get(conn)
    if snapshot_id is None:
        return []
    return [
        "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        f"SET TRANSACTION SNAPSHOT '{snapshot_id}'",  # checked: hex digits and dashes
    ]


class _CopyStream:
    """``COPY (query) TO STDOUT (FORMAT CSV)`` read by Arrow, at most batch_size rows a batch."""

    def __init__(
        self,
        conn,
        statement: str,
        params: dict[str, Any] | None,
        columns: list[SourceColumn],
        type_codes: list[int],
        batch_size: int,
    ) -> None:
        self.schema = schema_of(columns, DB_TYPE)
        self._columns = columns
        self._conn = conn
        self._statement = statement
        self._params = params
        self._type_codes = type_codes
        self._batch_size = batch_size
        self._iterator: Iterator[pa.RecordBatch] | None = None
        self._closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._closed:
            return iter(())
        self._iterator = self._read()
        return self._iterator

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # runs the generator's finally: the COPY ends
        self._closed = True

    def _read(self) -> Iterator[pa.RecordBatch]:
        if postgresql_arrow.plain(self._columns, self.schema):
            reader = postgresql_arrow.ArrowReader(
                postgresql_arrow.conninfo(self._conn),
                postgresql_arrow.statement_text(self._conn, self._statement, self._params),
                self.schema,
                setup=_snapshot_statements(self._conn),
            )
            try:
                batches = reader.open()
                if batches is not None:
                    yield from rebatch(batches, self._batch_size)
                    return
            finally:
                reader.close()
        yield from self._copy_csv()

    def _copy_csv(self) -> Iterator[pa.RecordBatch]:
        from psycopg import Error as DriverError

        cursor = self._conn.cursor()
        internal = [f"c{index}" for index in range(len(self.schema))]
        native = [_native(field.type) for field in self.schema]
        column_types = {
            name: (field.type if is_native else pa.string())
            for name, field, is_native in zip(internal, self.schema, native, strict=True)
        }
        converters = [
            None if is_native else _text_converter(self._conn, oid, field, column.fixer(DB_TYPE))
            for field, column, oid, is_native in zip(
                self.schema, self._columns, self._type_codes, native, strict=True
            )
        ]
        try:
            for statement in _snapshot_statements(self._conn):
                cursor.execute(statement)
            with cursor.copy(
                f"COPY ({self._statement}) TO STDOUT (FORMAT CSV)", self._params
            ) as copy:
                source = _CopyReader(copy)
                if not source.has_data():
                    return
                reader = self._open_csv(source, column_types)
                while True:
                    try:
                        batch = reader.read_next_batch()
                    except StopIteration:
                        break
                    except pa.ArrowInvalid as error:
                        raise self._conversion_error(error) from None
                    yield from rebatch([self._finish(batch, converters)], self._batch_size)
        except DriverError as error:
            raise read_error(error) from None
        finally:
            cursor.close()
            _rollback(self._conn)

    def _open_csv(self, source: _CopyReader, column_types: dict[str, pa.DataType]):
        """Arrow's CSV reader over the COPY (opening it parses the first block already)."""
        try:
            return pa_csv.open_csv(
                io.BufferedReader(source, _CSV_BLOCK_BYTES),
                read_options=pa_csv.ReadOptions(
                    column_names=list(column_types),
                    block_size=_CSV_BLOCK_BYTES,
                    use_threads=False,
                ),
                parse_options=pa_csv.ParseOptions(newlines_in_values=True),
                convert_options=pa_csv.ConvertOptions(
                    column_types=column_types,
                    null_values=[""],
                    strings_can_be_null=True,
                    quoted_strings_can_be_null=False,  # "" is an empty string, not NULL
                    true_values=["t"],
                    false_values=["f"],
                ),
            )
        except pa.ArrowInvalid as error:
            raise self._conversion_error(error) from None

    def _finish(self, batch: pa.RecordBatch, converters: list) -> pa.RecordBatch:
        arrays = []
        for index in range(len(self.schema)):
            array = batch.column(index)
            if converters[index] is not None:
                array = converters[index](array.to_pylist())
            arrays.append(array)
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def _conversion_error(self, error: pa.ArrowInvalid) -> SourceDataError:
        text = str(error)
        match = re.search(r"column #(\d+)", text)
        column = self.schema[int(match.group(1))].name if match else None
        value = re.search(r"invalid value '([^']*)'", text)
        shown = f" the value {value.group(1)!r}" if value else " a value"
        where = f"column {column!r}" if column else "a column"
        return SourceDataError(
            f"{where} holds{shown} that cannot be stored as "
            f"{self.schema.field(column).type if column else 'its type'} (PostgreSQL allows "
            "values such as 'infinity', BC dates or NaN that Arrow cannot hold); CAST or "
            "filter it in the query",
            text,
        )


class _CopyReader(io.RawIOBase):
    """The COPY's chunks as a file Arrow's CSV reader reads from."""

    def __init__(self, copy) -> None:
        self._chunks = iter(copy)
        self._pending = b""

    def has_data(self) -> bool:
        self._fill()
        return bool(self._pending)

    def _fill(self) -> None:
        while not self._pending:
            try:
                self._pending = bytes(next(self._chunks))
            except StopIteration:
                return

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        self._fill()
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _text_converter(conn, oid: int, field: pa.Field, fix):
    """PostgreSQL's text of a column Arrow cannot parse itself, converted in Python: by
    psycopg's loader (bytea, arrays, ...), then types.converter's fix, then Arrow."""
    to_arrow_values = value_converter(field, fix)
    if oid == _INTERVAL_OID:

        def interval(values: list) -> pa.Array:
            return to_arrow_values(
                [None if value is None else _interval(value, field) for value in values]
            )

        return interval
    from psycopg.pq import Format

    loader = conn.adapters.get_loader(oid, Format.TEXT)(oid, conn)

    def load(values: list) -> pa.Array:
        return to_arrow_values(
            [None if value is None else loader.load(value.encode("utf-8")) for value in values]
        )

    return load


def _interval(text: str, field: pa.Field) -> Any:
    """ISO 8601 interval text as Arrow's month-day-nano, or as a timedelta for a duration
    column (a month counted as 30 days, as psycopg counts it)."""
    try:
        months, days, nanoseconds = parse_iso_interval(text)
    except ValueError as error:
        raise SourceDataError(
            f"column {field.name!r} holds the interval {text!r}, which FlowForge cannot read",
            str(error),
        ) from None
    if field.type == pa.month_day_nano_interval():
        return pa.MonthDayNano([months, days, nanoseconds])
    return dt.timedelta(days=months * 30 + days, microseconds=nanoseconds // 1000)


def read_error(error: BaseException) -> Exception:
    """A psycopg error during a read as FlowForge's: transient when the connection died."""
    import psycopg

    if isinstance(error, (SourceDataError, SourceQueryError, SourceReadError)):
        return error
    text = error_text(error)
    if isinstance(error, psycopg.errors.QueryCanceled):
        return SourceQueryError(postgresql_arrow.TIMED_OUT, text)
    if isinstance(error, (psycopg.OperationalError, psycopg.InterfaceError)) or (
        getattr(error, "sqlstate", "") or ""
    ).startswith(("08", "57")):
        return SourceReadError(postgresql_arrow.LOST, text)
    return SourceQueryError(f"PostgreSQL refused the query: {text.splitlines()[0]}", text)


# --- SQL --------------------------------------------------------------------------------------


def _describe_query(
    conn, statement: str, params: dict[str, Any] | None
) -> tuple[list[str], list[int], list[int]]:
    """Column names, type oids and modifiers of a query, from a DECLAREd (not run) cursor."""
    cursor = conn.cursor(name=f"flowforge_{uuid.uuid4().hex[:12]}")
    try:
        cursor.execute(statement, params)
        result = cursor.pgresult
        if result is None or cursor.description is None:
            raise SourceQueryError("the query returns no rows (is it a SELECT?)")
        names = [column.name for column in cursor.description]
        type_codes = [result.ftype(index) for index in range(result.nfields)]
        modifiers = [result.fmod(index) for index in range(result.nfields)]
        return names, type_codes, modifiers
    finally:
        cursor.close()


def _fetch_all(conn, sql: str, params: Mapping[str, Any]) -> list[tuple]:
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        _rollback(conn)  # never leave a read-only transaction (and its snapshot) open


def _rollback(conn) -> None:
    with contextlib.suppress(Exception):  # a dead connection has nothing to roll back
        if not conn.closed:
            conn.rollback()


def _sslmode(options: Mapping[str, Any]) -> str:
    if options.get("sslmode"):
        return str(options["sslmode"])
    encrypt = str(options.get("encrypt", "")).lower()
    trust = str(options.get("trustServerCertificate", "")).lower() == "true"
    if encrypt == "strict" or (encrypt == "true" and not trust):
        return "verify-full"
    if encrypt == "true":
        return "require"
    if encrypt == "false":
        return "disable"
    return "prefer"


_LIST_TABLES = """
SELECT n.nspname, c.relname, c.relkind::text, c.reltuples::float8
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
  AND NOT c.relispartition
  AND has_table_privilege(c.oid, 'SELECT')
  AND CASE WHEN %(schema)s::text IS NULL
           THEN n.nspname NOT IN ('pg_catalog', 'information_schema')
                AND n.nspname NOT LIKE 'pg\\_%%'
           ELSE n.nspname = %(schema)s::text END
ORDER BY n.nspname, c.relname
"""

_DESCRIBE = """
SELECT a.attname,
       format_type(a.atttypid, a.atttypmod),
       format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END,
                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END),
       NOT a.attnotnull,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i
               WHERE i.indrelid = c.oid AND i.indisprimary AND a.attnum = ANY (i.indkey))
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE c.relname = %(table)s
  AND n.nspname = coalesce(%(schema)s::text, current_schema())
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_TYPE_TEXTS = """
SELECT format_type(CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE q.oid END,
                   CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE q.mod END),
       q.oid
FROM unnest(%(oids)s::oid[], %(mods)s::int4[]) WITH ORDINALITY AS q(oid, mod, ord)
JOIN pg_catalog.pg_type t ON t.oid = q.oid
ORDER BY q.ord
"""

# Set-returning functions (readable as SELECT * FROM f(...)) and procedures, with their
# parameters in order; RETURNS TABLE columns are listed as "out".
_PROCEDURES = """
SELECT p.oid::int8, n.nspname, p.proname, a.name, format_type(a.type, NULL), a.mode
FROM pg_catalog.pg_proc p
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
LEFT JOIN LATERAL unnest(coalesce(p.proallargtypes, p.proargtypes::oid[]),
                         p.proargnames, p.proargmodes::text[])
          WITH ORDINALITY AS a(type, name, mode, ord) ON a.type IS NOT NULL
WHERE (p.proretset OR p.prokind = 'p')
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND n.nspname NOT LIKE 'pg\\_%%'
ORDER BY n.nspname, p.proname, p.oid, a.ord
"""
