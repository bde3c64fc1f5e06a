"""PostgreSQL's binary COPY straight into Arrow, through ADBC's libpq driver.

``adbc_driver_postgresql`` runs a query as ``COPY (query) TO STDOUT (FORMAT binary)`` and
decodes it in C++ into Arrow record batches as the bytes arrive: about twice as fast as
the CSV COPY parsed by Arrow (postgresql.py), with the same constant memory. It is the read
path whenever every column of the result has one of the plain types below; any other type
(arrays, intervals, uuid, json, bytea, money, ...) keeps the CSV path and its exact
per-type converters.

ADBC streams only a query without bound parameters (with them it reads the whole result
first), so an incremental read's watermark is merged into the text by psycopg's client-side
adaptation (``ClientCursor.mogrify``): the same quoting psycopg applies to the CSV COPY,
which cannot take server-side parameters either. FlowForge never formats a value itself.

The read runs on a second connection, opened with the first one's libpq parameters (the
pinned ``hostaddr``, TLS mode, UTC, read-only transactions, statement_timeout) and closed
with the stream.

What binary COPY can hold that Arrow cannot is refused, as the CSV path refuses it:
``infinity``/``-infinity`` timestamps and dates (int64/int32 extremes on the wire), the time
``24:00:00``, and numerics that do not fit their column (NaN, too many digits).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from flowforge_ingest.connectors.arrowing import SourceColumn, SourceDataError, SourceQueryError
from flowforge_ingest.connectors.base import SourceReadError
from flowforge_ingest.connectors.registry import error_text, shown
from flowforge_ingest.connectors.types import parse_source_type

# PostgreSQL types (format_type's names) whose binary form ADBC decodes into the very Arrow
# type connectors/types.py gives them; numeric arrives as text and is cast to its decimal.
_PLAIN_TYPES = frozenset(
    {
        "smallint",
        "integer",
        "bigint",
        "real",
        "double precision",
        "boolean",
        "text",
        "character varying",
        "character",
        "date",
        "timestamp without time zone",
        "timestamp with time zone",
        "time without time zone",
        "numeric",
    }
)
# 'infinity' and '-infinity' travel as the int64 (timestamps) and int32 (dates) extremes;
# ADBC shifts them from PostgreSQL's 2000 epoch to 1970's without an overflow check, so
# they arrive wrapped (below PostgreSQL's lowest value, 4714-11-24 BC) or, were that
# fixed, as the extremes themselves.
_EPOCH_US, _EPOCH_DAYS = 946_684_800_000_000, 10_957
_TIMESTAMP_INFINITY = {
    _EPOCH_US - 2**63 - 1: "infinity",
    _EPOCH_US - 2**63: "-infinity",
    2**63 - 1: "infinity",
    -(2**63): "-infinity",
}
_DATE_INFINITY = {
    _EPOCH_DAYS - 2**31 - 1: "infinity",
    _EPOCH_DAYS - 2**31: "-infinity",
    2**31 - 1: "infinity",
    -(2**31): "-infinity",
}
_LOWEST_TIMESTAMP = -210_866_803_200_000_000  # 4714-11-24 00:00 BC in us since 1970
_LOWEST_DATE = -2_440_588  # 4714-11-24 BC in days since 1970
_DAY_US = 86_400_000_000
# A read's failures, as both read paths (and postgresql.py's) tell them.
TIMED_OUT = (
    "PostgreSQL stopped the query: it ran longer than the connection's queryTimeout (or was "
    "cancelled); raise the timeout or read less at a time"
)
LOST = "the connection to PostgreSQL was lost while reading; the job will be retried"
# Batches of about 4 MB, as the CSV path's blocks (ADBC's default is 16 MB): rows reach the
# bronze writer, and a run's progress, as they arrive.
_BATCH_BYTES_OPTION = "adbc.postgresql.batch_size_hint_bytes"
_BATCH_BYTES = 4 << 20
_LOST_PHRASES = (
    "terminating connection",
    "server closed the connection",
    "connection to server",
    "could not receive data",
    "could not send data",
    "no connection to the server",
    "ssl connection has been closed",
    "ssl syscall error",
)


def plain(columns: list[SourceColumn], schema: pa.Schema) -> bool:
    """Whether every column of a result can be read through ADBC."""
    for column, field in zip(columns, schema, strict=True):
        name = parse_source_type("postgresql", column.source_type)
        if name.array or name.name not in _PLAIN_TYPES:
            return False
        if name.name == "numeric" and not (
            pa.types.is_decimal(field.type) or pa.types.is_string(field.type)
        ):
            return False
    return True


def conninfo(conn) -> str:
    """The libpq parameters of psycopg connection ``conn``, its password included."""
    from psycopg.conninfo import make_conninfo

    extra = {"gssencmode": "disable"}  # as postgresql.py connects: no Kerberos probe
    if conn.info.password:
        extra["password"] = conn.info.password
    return make_conninfo(conn.info.dsn, **extra)


def _password(conninfo_text: str) -> str | None:
    from psycopg.conninfo import conninfo_to_dict

    return conninfo_to_dict(conninfo_text).get("password")


def statement_text(conn, statement: str, params: dict[str, Any] | None) -> str:
    """The statement with its parameters merged in by psycopg's client-side adaptation."""
    if not params:
        return statement
    from psycopg import ClientCursor

    with ClientCursor(conn) as cursor:
        return cursor.mogrify(statement, params)


class ArrowReader:
    """One ADBC connection running one query; ``open`` returns the result's batches, or
    None when ADBC's types are not those expected (the caller then uses the CSV path)."""

    def __init__(
        self, conninfo_text: str, sql: str, schema: pa.Schema, setup: list[str] | None = None
    ) -> None:
        self._setup = list(setup or [])  # run first, in the read's transaction
        self._conninfo = conninfo_text
        self._sql = sql
        self._schema = schema
        self._connection = None
        self._cursor = None
        self._reader = None

    def open(self) -> Iterator[pa.RecordBatch] | None:
        import adbc_driver_postgresql.dbapi as adbc

        try:
            self._connection = adbc.connect(self._conninfo)
        except Exception as error:  # noqa: BLE001 (the first connection just succeeded)
            raise SourceReadError(
                "PostgreSQL refused the connection that reads the data; the job will be retried",
                shown(error_text(error), [_password(self._conninfo)]),
            ) from None
        try:
            self._cursor = self._connection.cursor()
            for statement in self._setup:
                self._cursor.execute(statement)
            self._cursor.adbc_statement.set_options(**{_BATCH_BYTES_OPTION: str(_BATCH_BYTES)})
            self._cursor.execute(self._sql)
            self._reader = self._cursor.fetch_record_batch()
        except Exception as error:  # noqa: BLE001 (translated for the caller)
            raise read_error(error) from None
        casts = _casts(self._reader.schema, self._schema)
        if casts is None:
            return None
        return self._batches(casts)

    def _batches(self, casts: list[Callable[[pa.Array], pa.Array]]) -> Iterator[pa.RecordBatch]:
        while True:
            try:
                batch = self._reader.read_next_batch()
            except StopIteration:
                return
            except Exception as error:  # noqa: BLE001 (translated for the caller)
                raise read_error(error) from None
            arrays = [cast(batch.column(index)) for index, cast in enumerate(casts)]
            yield pa.RecordBatch.from_arrays(arrays, schema=self._schema)

    def close(self) -> None:
        for part in (self._reader, self._cursor, self._connection):
            if part is not None:
                with contextlib.suppress(Exception):  # a dead connection closes anyway
                    part.close()
        self._reader = self._cursor = self._connection = None


def _casts(actual: pa.Schema, wanted: pa.Schema) -> list[Callable[[pa.Array], pa.Array]] | None:
    casts = []
    for have, field in zip(actual, wanted, strict=True):
        if isinstance(have.type, pa.BaseExtensionType) and pa.types.is_decimal(field.type):
            if not pa.types.is_string(have.type.storage_type):
                return None
            casts.append(_decimal(field))
        elif isinstance(have.type, pa.BaseExtensionType) and pa.types.is_string(field.type):
            if not pa.types.is_string(have.type.storage_type):
                return None
            casts.append(_numeric_text)  # numeric beyond decimal128: the exact text
        elif have.type != field.type:
            return None
        elif pa.types.is_timestamp(field.type) or pa.types.is_date32(field.type):
            casts.append(_finite(field))
        elif pa.types.is_time64(field.type):
            casts.append(_within_a_day(field))
        else:
            casts.append(_same)
    return casts


def _same(array: pa.Array) -> pa.Array:
    return array


def _decimal(field: pa.Field) -> Callable[[pa.Array], pa.Array]:
    def cast(array: pa.Array) -> pa.Array:
        text = array.storage
        try:
            return pc.cast(text, field.type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            bad = _first_bad_decimal(text, field.type)
            raise _unstorable(field, bad, "NaN, infinity or more digits", error) from None

    return cast


_ADBC_NON_FINITE = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


def _numeric_text(array: pa.Array) -> pa.Array:
    """ADBC's text of a numeric, with NaN and the infinities spelled as PostgreSQL does."""
    text = array.storage
    for spelled_by_adbc, spelled in _ADBC_NON_FINITE.items():
        text = pc.if_else(pc.equal(text, spelled_by_adbc), pa.scalar(spelled), text)
    return text


def _first_bad_decimal(text: pa.Array, data_type: pa.DataType) -> str | None:
    for value in text.to_pylist():
        if value is None:
            continue
        try:
            pc.cast(pa.array([value]), data_type)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return value
    return None


def _finite(field: pa.Field) -> Callable[[pa.Array], pa.Array]:
    storage, lowest, sentinels = (
        (pa.int64(), _LOWEST_TIMESTAMP, _TIMESTAMP_INFINITY)
        if pa.types.is_timestamp(field.type)
        else (pa.int32(), _LOWEST_DATE, _DATE_INFINITY)
    )

    def check(array: pa.Array) -> pa.Array:
        if array.null_count < len(array):
            values = array.view(storage)
            extremes = pc.min_max(values)
            low, high = extremes["min"].as_py(), extremes["max"].as_py()
            if low < lowest or high in sentinels:
                bad = low if low < lowest else high
                raise _unstorable(field, sentinels.get(bad), "infinity", None)
        return array

    return check


def _within_a_day(field: pa.Field) -> Callable[[pa.Array], pa.Array]:
    def check(array: pa.Array) -> pa.Array:
        if array.null_count < len(array):
            largest = pc.max(array.view(pa.int64())).as_py()
            if largest is not None and largest >= _DAY_US:
                raise _unstorable(field, "24:00:00", "24:00:00", None)
        return array

    return check


def _unstorable(field: pa.Field, value: str | None, examples: str, error) -> SourceDataError:
    shown = f" the value {value!r}" if value is not None else " a value"
    return SourceDataError(
        f"column {field.name!r} holds{shown} that cannot be stored as {field.type} "
        f"(PostgreSQL allows values such as {examples} that Arrow cannot hold); CAST or "
        "filter it in the query",
        str(error) if error is not None else "",
    )


def read_error(error: BaseException) -> Exception:
    """An ADBC error during a read as FlowForge's: transient when the connection died."""
    if isinstance(error, (SourceDataError, SourceQueryError, SourceReadError)):
        return error
    text = error_text(error)
    lowered = text.lower()
    state = str(getattr(error, "sqlstate", "") or "")
    if "canceling statement" in lowered or state == "57014":
        return SourceQueryError(TIMED_OUT, text)
    if state.startswith(("08", "57")) or any(phrase in lowered for phrase in _LOST_PHRASES):
        return SourceReadError(LOST, text)
    first = next((part for part in text.splitlines() if part.strip()), text)
    return SourceQueryError(f"PostgreSQL refused the query: {first}", text)
