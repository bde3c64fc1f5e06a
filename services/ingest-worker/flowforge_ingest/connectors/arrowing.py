"""DB-API rows to Arrow record batches, shared by every database connector.

    SourceColumn(name, source_type, precision, scale, max_length, nullable)
        .field(db_type) -> pa.Field     its Arrow type (types.arrow_type)
        .fixer(db_type) -> fn | None    its per-value fix (types.converter)
    resolve_columns(derived, columns)   description columns, replaced by described ones
    schema_of / converters_of           the schema and per-column converters of a result
    to_arrow(values, type, column)      one column of Python values -> pa.Array, exactly
    RowStream(schema, fetch, ...)       a BatchStream over a cursor's fetchmany
    rebatch(batches, batch_size)        slices bigger batches to at most batch_size rows

Types and per-value fixes come from connectors/types.py (``arrow_type``, ``converter``): a
column's Arrow type and its conversion are decided there, once for every driver.

Conversions never lose a value silently: a Decimal that does not fit the column's scale,
a time past midnight or an integer out of range raises :class:`SourceDataError` naming the
column, instead of being rounded or wrapped.

Errors of a read: :class:`SourceDataError` (a value cannot be stored: permanent),
:class:`SourceQueryError` (the database refused the query: permanent) and base.SourceReadError
(the connection dropped mid-read: transient, the job is retried).
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import re
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from flowforge_ingest.connectors.base import ColumnInfo
from flowforge_ingest.connectors.types import arrow_type, converter, is_exact_number_text
from flowforge_shared.errors import PermanentError

ColumnConverter = Callable[[list], pa.Array]


class SourceDataError(PermanentError):
    """A value read from the source cannot be stored in its column's Arrow type."""


class SourceQueryError(PermanentError):
    """The database refused the query (syntax, permissions, timeout): retrying cannot help."""


# --- types ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceColumn:
    """A result column as the source types it: what decides its Arrow type and conversion."""

    name: str
    source_type: str
    precision: int | None = None
    scale: int | None = None
    max_length: int | None = None
    nullable: bool = True

    @classmethod
    def of(cls, column: ColumnInfo) -> SourceColumn:
        return cls(
            column.name,
            column.source_type,
            column.precision,
            column.scale,
            column.max_length,
            column.nullable,
        )

    def field(self, db_type: str) -> pa.Field:
        data_type = arrow_type_for(
            db_type, self.source_type, self.precision, self.scale, self.max_length
        )
        metadata = None
        if is_exact_number_text(db_type, self.source_type, self.precision, self.scale):
            # The type recorded next to the text (a Delta column comment, shown by DESCRIBE).
            metadata = {
                "comment": f"source type {self.source_type}: the exact number as decimal text "
                "(Delta Lake decimals stop at 38 digits)",
                "flowforge.source_type": self.source_type,
            }
        return pa.field(self.name, data_type, nullable=self.nullable, metadata=metadata)

    def fixer(self, db_type: str) -> Callable[[Any], Any] | None:
        """types.converter: fixes one driver value for the Arrow type (None: not needed)."""
        return converter(db_type, self.source_type, self.precision, self.scale, self.max_length)


def arrow_type_for(
    db_type: str,
    source_type: str,
    precision: int | None = None,
    scale: int | None = None,
    max_length: int | None = None,
) -> pa.DataType:
    """The Arrow type a column of ``source_type`` is read as (connectors/types.py decides)."""
    return arrow_type(db_type, source_type, precision, scale, max_length)


def resolve_columns(
    derived: Sequence[SourceColumn], columns: Sequence[ColumnInfo] | None
) -> list[SourceColumn]:
    """The result's columns from the cursor description, each replaced by the described
    column of the same name when ``columns`` has one: the catalog knows nullability and
    exact types (a driver's description may only say "number")."""
    known = {column.name: column for column in columns or ()}
    return [
        SourceColumn.of(known[column.name]) if column.name in known else column
        for column in derived
    ]


def schema_of(columns: Sequence[SourceColumn], db_type: str) -> pa.Schema:
    return pa.schema([column.field(db_type) for column in columns])


def converters_of(columns: Sequence[SourceColumn], db_type: str) -> list[ColumnConverter]:
    """One converter per column: types.converter on each value, then Arrow."""
    return [value_converter(column.field(db_type), column.fixer(db_type)) for column in columns]


def value_converter(field: pa.Field, fix: Callable[[Any], Any] | None) -> ColumnConverter:
    def convert(values: list) -> pa.Array:
        if fix is not None:
            values = [_fixed(fix, value, field) for value in values]
        return to_arrow(values, field.type, field.name)

    return convert


def _fixed(fix: Callable[[Any], Any], value: Any, field: pa.Field) -> Any:
    if value is None:
        return None
    try:
        return fix(value)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise SourceDataError(
            f"column {field.name!r} holds {_show(value)}, which cannot be stored as "
            f"{field.type}: {error}",
            str(error),
        ) from None


# --- values -----------------------------------------------------------------------------------


def to_arrow(values: list, data_type: pa.DataType, column: str) -> pa.Array:
    """``values`` as an Arrow array of ``data_type``, exactly, or SourceDataError."""
    try:
        return pa.array(values, type=data_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
        pass  # the values need a hand first (UUID to text, timedelta to interval, ...)
    coerced = [None if value is None else _coerce(value, data_type, column) for value in values]
    try:
        return pa.array(coerced, type=data_type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError) as error:
        bad = _first_bad(coerced, data_type)
        raise SourceDataError(
            f"column {column!r} holds a value that cannot be stored as {data_type}"
            + (f" ({_show(bad)})" if bad is not None else "")
            + "; change the column's type in the query (CAST) or in the job",
            str(error),
        ) from None


def _first_bad(values: list, data_type: pa.DataType) -> Any:
    for value in values:
        try:
            pa.array([value], type=data_type)
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError):
            return value
    return None


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _coerce(value: Any, data_type: pa.DataType, column: str) -> Any:
    try:
        return _coerce_value(value, data_type)
    except (ValueError, TypeError, ArithmeticError) as error:
        raise SourceDataError(
            f"column {column!r} holds {_show(value)}, which cannot be stored as {data_type}; "
            "change the column's type in the query (CAST) or in the job",
            str(error),
        ) from None


def _coerce_value(value: Any, data_type: pa.DataType) -> Any:
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return _as_text(value)
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if pa.types.is_boolean(data_type):
        if isinstance(value, (bytes, bytearray)):
            return int.from_bytes(value, "big") != 0
        if isinstance(value, str):
            return {"1": True, "0": False, "t": True, "f": False}.get(value.lower(), value)
        return bool(value) if isinstance(value, (int, decimal.Decimal)) else value
    if pa.types.is_integer(data_type):
        if isinstance(value, (bytes, bytearray)):
            return int.from_bytes(value, "big")
        if isinstance(value, (decimal.Decimal, float)) and value == int(value):
            return int(value)
        return int(value) if isinstance(value, str) else value
    if pa.types.is_floating(data_type):
        return float(value)
    if pa.types.is_decimal(data_type):
        return value if isinstance(value, decimal.Decimal) else decimal.Decimal(str(value))
    if pa.types.is_timestamp(data_type):
        if isinstance(value, str):
            value = dt.datetime.fromisoformat(value)
        elif isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            value = dt.datetime(value.year, value.month, value.day)
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
            return value if data_type.tz else value.replace(tzinfo=None)
        return value
    if pa.types.is_date(data_type):
        if isinstance(value, dt.datetime):
            return value.date()
        return dt.date.fromisoformat(value) if isinstance(value, str) else value
    if pa.types.is_time(data_type):
        if isinstance(value, dt.timedelta):
            if not dt.timedelta(0) <= value < dt.timedelta(days=1):
                raise ValueError("a time of day lies between 00:00 and 24:00")
            return (dt.datetime.min + value).time()
        return dt.time.fromisoformat(value) if isinstance(value, str) else value
    if pa.types.is_duration(data_type) and isinstance(value, dt.time):
        return dt.timedelta(
            hours=value.hour,
            minutes=value.minute,
            seconds=value.second,
            microseconds=value.microsecond,
        )
    if data_type == pa.month_day_nano_interval():
        if isinstance(value, dt.timedelta):
            nanoseconds = (value.seconds * 1_000_000 + value.microseconds) * 1000
            return pa.MonthDayNano([0, value.days, nanoseconds])
        if isinstance(value, str):
            return parse_iso_interval(value)
        return value
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        element = data_type.value_type
        return [None if item is None else _coerce_value(item, element) for item in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).decode("utf-8")
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, (uuid.UUID, decimal.Decimal, int, float)):
        return str(value)
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return ",".join(sorted(str(item) for item in value))
    return str(value)


_ISO_INTERVAL = re.compile(
    r"^P(?:(?P<years>-?\d+)Y)?(?:(?P<months>-?\d+)M)?(?:(?P<weeks>-?\d+)W)?(?:(?P<days>-?\d+)D)?"
    r"(?:T(?:(?P<hours>-?\d+)H)?(?:(?P<minutes>-?\d+)M)?(?:(?P<seconds>-?\d+(?:\.\d+)?)S)?)?$"
)


def parse_iso_interval(text: str) -> pa.MonthDayNano:
    """An ISO 8601 duration (PostgreSQL's IntervalStyle iso_8601) as months, days and
    nanoseconds, each kept apart as PostgreSQL keeps them (a month is not 30 days)."""
    match = _ISO_INTERVAL.match(text.strip())
    if match is None or text.strip() in {"P", "PT"}:
        raise ValueError(f"{text!r} is not an ISO 8601 duration")
    parts = {key: value or "0" for key, value in match.groupdict().items()}
    months = int(parts["years"]) * 12 + int(parts["months"])
    days = int(parts["weeks"]) * 7 + int(parts["days"])
    seconds = decimal.Decimal(parts["seconds"])
    nanoseconds = (int(parts["hours"]) * 3600 + int(parts["minutes"]) * 60) * 10**9 + int(
        seconds * 10**9
    )
    return pa.MonthDayNano([months, days, nanoseconds])


# --- streams ----------------------------------------------------------------------------------


def rows_to_batch(
    rows: Sequence[Sequence[Any]],
    schema: pa.Schema,
    converters: Sequence[ColumnConverter | None] | None = None,
) -> pa.RecordBatch:
    """A record batch from DB-API row tuples, column by column."""
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    arrays = []
    for index, field in enumerate(schema):
        values = list(columns[index])
        converter = converters[index] if converters else None
        arrays.append(converter(values) if converter else to_arrow(values, field.type, field.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


class RowStream:
    """A BatchStream over ``fetch(n)`` (a server-side cursor's fetchmany).

    ``on_error`` turns a driver error raised while fetching into FlowForge's error (a
    dropped connection into SourceReadError); ``on_close`` releases the cursor.
    """

    def __init__(
        self,
        schema: pa.Schema,
        fetch: Callable[[int], Sequence[Sequence[Any]]],
        batch_size: int,
        *,
        on_error: Callable[[BaseException], Exception],
        on_close: Callable[[], None] = lambda: None,
        converters: Sequence[ColumnConverter | None] | None = None,
        first_rows: Sequence[Sequence[Any]] | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.schema = schema
        self._fetch = fetch
        self._batch_size = batch_size
        self._on_error = on_error
        self._on_close = on_close
        self._converters = converters
        self._first_rows = first_rows
        self._closed = False

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            if self._first_rows:
                yield rows_to_batch(self._first_rows, self.schema, self._converters)
                self._first_rows = None
            while not self._closed:
                try:
                    rows = self._fetch(self._batch_size)
                except Exception as error:  # noqa: BLE001 (translated for the caller)
                    raise self._on_error(error) from None
                if not rows:
                    break
                yield rows_to_batch(rows, self.schema, self._converters)
        finally:
            self.close()

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._on_close()


def rebatch(batches: Iterable[pa.RecordBatch], batch_size: int) -> Iterator[pa.RecordBatch]:
    """Each batch sliced (zero-copy) into pieces of at most ``batch_size`` rows."""
    for batch in batches:
        for start in range(0, batch.num_rows, batch_size):
            yield batch.slice(start, batch_size)
