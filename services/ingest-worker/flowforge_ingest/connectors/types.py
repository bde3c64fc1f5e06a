"""Source column types to Arrow types, per dialect, without losing a value.

:func:`arrow_type` answers "what Arrow type holds every value this column can hold";
:func:`converter` (and :func:`convert_value` for one value) fixes the Python values the
drivers return where ``pyarrow.array(values, type=arrow_type(...))`` would otherwise lose,
refuse or mangle them. Both come from one resolution (:func:`_resolve`), so a column's type
and its conversion can never disagree. ``converter`` returns ``None`` when the driver's
values go into Arrow as they are: readers skip the per-value Python call for those columns.

The rules, and why
------------------
- **Exact over convenient.** Every source value maps to exactly one Arrow value: SQL Server
  ``tinyint`` is ``uint8`` (0-255), MySQL ``bigint unsigned`` and SQL Server ``rowversion``
  are ``uint64``, ``money`` is ``decimal128(19, 4)``. A value that cannot be stored exactly
  raises :class:`ValueConversionError` (a ``ValueError``) saying what to change; nothing is
  rounded or clipped silently.
- **Sub-microsecond time is kept.** Python's ``datetime`` stops at microseconds, but
  SQL Server ``datetime2(7)``/``datetimeoffset(7)``/``time(7)``, Oracle ``TIMESTAMP(9)`` and
  Snowflake ``TIMESTAMP_*(9)`` have 100 ns or 1 ns. Those map to ``[ns]`` types and their
  converters take the forms that carry the full precision: ISO text with up to 9 fractional
  digits (``CONVERT(varchar(40), col, 121)``, Oracle/Snowflake ``TO_CHAR``) and pyodbc's raw
  ``SQL_TIMESTAMP_STRUCT`` / ``SQL_SS_TIMESTAMPOFFSET_STRUCT`` / ``SQL_SS_TIME2_STRUCT`` bytes
  (what an output converter receives), besides ``datetime``. They return integers in the
  Arrow unit (ns since the epoch, ns since midnight), which Arrow takes without rounding.
  A ``[ns]`` timestamp only spans 1677-09-21 to 2262-04-11: a sentinel like ``9999-12-31``
  in a ``datetime2(7)`` column raises and says to read the column cast to ``datetime2(6)``.
- **Offsets are applied, not kept.** Timestamps with a time zone (``datetimeoffset``,
  ``timestamptz``, ``TIMESTAMP WITH TIME ZONE``, ``TIMESTAMP_TZ``) become the UTC instant in a
  ``timestamp[..., tz=UTC]`` column; the original offset is not stored (a bronze table wants
  one comparable instant; a user who needs the offset selects it as its own column, e.g.
  ``DATEPART(tzoffset, col)``). Naive timestamps stay the wall time the source stored.
- **SQL Server ``datetime``** ticks are 1/300 s; the driver gives ``.003333``: the converter
  rounds to the nearest millisecond (``.003``, ``.007``, as SQL Server itself shows them)
  instead of Arrow's truncation (which would turn ``.006667`` into ``.006``).
- **Decimals.** ``decimal``/``numeric``/``NUMBER`` with a precision up to 38 are
  ``decimal128(p, s)`` (Delta Lake's limit is 38 too); above 38 (PostgreSQL up to 1000, MySQL
  65), and without a declared precision (PostgreSQL ``numeric``, Oracle ``NUMBER``), they are
  strings holding the exact decimal text (``NaN``/``Infinity`` as PostgreSQL spells them):
  no ``decimal128(38, s)`` holds both ``1e40`` and ``1e-21``, and nothing a source legally
  holds may fail the load (docs/connectors.md, "Numbers no Delta decimal holds"). SQLite
  ``NUMERIC`` (int64 or double values) stays :data:`UNCONSTRAINED_DECIMAL` =
  ``decimal128(38, 10)``, and a value with more digits raises rather than being rounded. Oracle ``NUMBER(p)``
  (scale 0) with ``p <= 18`` is ``int64``. A float from a driver that was not asked for
  decimals becomes the decimal of its shortest repr (``0.1`` -> ``0.1``).
- **Text for what Arrow has no type for**: ``uniqueidentifier``/``uuid`` (canonical lower
  case; SQL Server GUID bytes are little-endian in their first three groups), ``json``/``jsonb``
  (decoded objects are re-encoded as JSON), ``xml``, ``sql_variant``, ``enum``/``set``, network
  addresses, PostgreSQL ``money`` and ``timetz``, and any type we do not know (bytes become
  ``0x``-hex, lists and dicts JSON, anything else ``str``).
- **MySQL zero dates** (``0000-00-00``, ``2024-00-00``; pymysql returns them as text) become
  null and are counted in a :class:`ConversionReport` the reader can show.
- Intervals: PostgreSQL ``interval`` arrives from psycopg as ``timedelta`` (months already
  folded as 30 days) and MySQL ``TIME`` is a signed duration: both are ``duration[us]``.
  Oracle ``INTERVAL YEAR TO MONTH`` is ``month_day_nano_interval``.

Delta Lake stores none of ``uint*`` (beyond the signed range), ``time64``, ``duration`` or
intervals, and keeps timestamps in microseconds: mapping these Arrow types onto a bronze
table is the bronze writer's decision, made with the exact values in hand.

For temporal types the fractional-second digits come from the type's argument
(``datetime2(7)``), else from ``scale`` (SQL Server's ``sys.columns.scale``,
``information_schema.datetime_precision``), else the dialect's default; ``precision`` is not
used for them (SQL Server reports 27 there for ``datetime2(7)``).
"""

from __future__ import annotations

import json
import re
import struct
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Context, Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

DB_TYPES = ("sql-server", "postgresql", "mysql", "oracle", "snowflake", "sqlite")

UNCONSTRAINED_DECIMAL = pa.decimal128(38, 10)
"""The type of a decimal column declared without a precision (see the module docstring)."""

MAX_DECIMAL_PRECISION = 38  # decimal128's and Delta Lake's limit

EPOCH = datetime(1970, 1, 1)
_WIDE = Context(prec=4 * MAX_DECIMAL_PRECISION)
_NS_MIN, _NS_MAX = -(2**63), 2**63 - 1

Converter = Callable[[Any], Any]


class ValueConversionError(ValueError):
    """A value the driver returned cannot be stored exactly in its column's Arrow type."""


@dataclass
class ConversionReport:
    """What the converters changed on the way, counted by reason (e.g. MySQL zero dates)."""

    counts: Counter = field(default_factory=Counter)

    def note(self, reason: str) -> None:
        self.counts[reason] += 1


MYSQL_ZERO_DATE = "MySQL zero date (0000-00-00) read as null"


@dataclass(frozen=True)
class SourceType:
    """A source type name taken apart: ``"numeric(18, 2)"`` -> name ``numeric``, args
    ``("18", "2")``; ``"timestamp(3) with time zone"`` -> ``timestamp with time zone``,
    ``("3",)``; ``"integer[]"``/``"_int4"`` -> ``integer``/``int4`` with ``array=True``."""

    name: str
    args: tuple[str, ...] = ()
    array: bool = False

    def int_arg(self, index: int) -> int | None:
        if len(self.args) > index and re.fullmatch(r"[+-]?\d+", self.args[index]):
            return int(self.args[index])
        return None


def parse_source_type(db_type: str, source_type: str) -> SourceType:
    """Split a type as a catalog spells it into a lower-case name and its arguments."""
    _check_db_type(db_type)
    text = " ".join(str(source_type or "").strip().lower().split())
    array = False
    while text.endswith("[]"):
        text, array = text[:-2].rstrip(), True
    if db_type == "postgresql" and text.startswith("_") and len(text) > 1:
        text, array = text[1:], True  # pg_type's name of an array type: _int4
    if db_type == "postgresql" and text.startswith("array"):
        text, array = text[5:].strip() or "text", True
    for head in ("enum", "set"):
        if text.startswith(head + "(") or text.startswith(head + " ("):
            return SourceType(head, (), array)
    groups = re.findall(r"\(([^()]*)\)", text)
    args = tuple(part.strip() for part in groups[0].split(",")) if groups else ()
    name = " ".join(re.sub(r"\([^()]*\)", " ", text).split())
    name = name.replace(" zerofill", "")
    return SourceType(name, args, array)


def arrow_type(
    db_type: str,
    source_type: str,
    precision: int | None = None,
    scale: int | None = None,
    max_length: int | None = None,
) -> pa.DataType:
    """The Arrow type that holds every value of a ``source_type`` column of ``db_type``."""
    return _resolve(db_type, source_type, precision, scale, None)[0]


def converter(
    db_type: str,
    source_type: str,
    precision: int | None = None,
    scale: int | None = None,
    max_length: int | None = None,
    *,
    report: ConversionReport | None = None,
) -> Converter | None:
    """A function fixing one driver value for :func:`arrow_type`'s type, or ``None`` when the
    driver's values go into ``pyarrow.array`` unchanged. ``None`` values are passed through
    by the returned function; ``report`` counts values it turned into nulls."""
    convert = _resolve(db_type, source_type, precision, scale, report)[1]
    if convert is None:
        return None

    def apply(value: Any) -> Any:
        return None if value is None else convert(value)

    return apply


def convert_value(
    db_type: str,
    source_type: str,
    value: Any,
    precision: int | None = None,
    scale: int | None = None,
    max_length: int | None = None,
    *,
    report: ConversionReport | None = None,
) -> Any:
    """One driver value ready for ``pyarrow.array(..., type=arrow_type(...))``."""
    convert = converter(db_type, source_type, precision, scale, max_length, report=report)
    return value if convert is None else convert(value)


# --- resolution -------------------------------------------------------------------------------

_Resolved = tuple[pa.DataType, Converter | None]


def _resolve(
    db_type: str,
    source_type: str,
    precision: int | None,
    scale: int | None,
    report: ConversionReport | None,
) -> _Resolved:
    parsed = parse_source_type(db_type, source_type)
    resolve = _DIALECTS[db_type]
    element = resolve(parsed, precision, scale, report or ConversionReport(), source_type)
    if not parsed.array:
        return element
    element_type, element_convert = element
    return pa.list_(element_type), _list_converter(element_convert, source_type)


def _sqlserver(t: SourceType, precision, scale, report, source) -> _Resolved:
    name = t.name
    if name in ("datetime2", "datetimeoffset", "time"):
        digits = _digits(t, scale, default=7)
        unit = "ns" if digits > 6 else "us"
        if name == "time":
            return pa.time64(unit), _time_converter(unit, source)
        tz = "UTC" if name == "datetimeoffset" else None
        return pa.timestamp(unit, tz=tz), _timestamp_converter(unit, source, sqlserver=True)
    if name == "datetime":
        return pa.timestamp("ms"), _timestamp_converter("ms", source, sqlserver=True)
    if name == "smalldatetime":
        return pa.timestamp("s"), _timestamp_converter("s", source, sqlserver=True)
    if name in ("decimal", "numeric", "dec"):
        return _decimal(_arg_or(t, 0, precision, 18), _arg_or(t, 1, scale, 0), source)
    if name == "float":
        bits = t.int_arg(0) or precision or 53
        return (pa.float32() if bits <= 24 else pa.float64()), None
    if name in ("rowversion", "timestamp"):
        return pa.uint64(), _rowversion
    if name == "uniqueidentifier":
        return pa.string(), _uuid_converter(little_endian=True)
    if name in ("sql_variant", "xml", "json"):
        return pa.string(), _text
    if name in _SQLSERVER_SIMPLE:
        return _SQLSERVER_SIMPLE[name], None
    return _fallback(name)


_SQLSERVER_SIMPLE: dict[str, pa.DataType] = {
    "bit": pa.bool_(),
    "tinyint": pa.uint8(),
    "smallint": pa.int16(),
    "int": pa.int32(),
    "bigint": pa.int64(),
    "real": pa.float32(),
    "money": pa.decimal128(19, 4),
    "smallmoney": pa.decimal128(10, 4),
    "date": pa.date32(),
    "char": pa.string(),
    "varchar": pa.string(),
    "nchar": pa.string(),
    "nvarchar": pa.string(),
    "text": pa.string(),
    "ntext": pa.string(),
    "sysname": pa.string(),
    "binary": pa.binary(),
    "varbinary": pa.binary(),
    "image": pa.binary(),
    "hierarchyid": pa.binary(),
    "geometry": pa.binary(),
    "geography": pa.binary(),
}


def _postgresql(t: SourceType, precision, scale, report, source) -> _Resolved:
    name = t.name
    if name in ("numeric", "decimal"):
        p = _arg_or(t, 0, precision, None)
        if p is None:
            return pa.string(), _exact_number_text
        return _decimal(p, _arg_or(t, 1, scale, 0), source)
    if name in ("timestamp", "timestamp without time zone", "timestamptz"):
        tz = "UTC" if name == "timestamptz" else None
        return pa.timestamp("us", tz=tz), None
    if name == "timestamp with time zone":
        return pa.timestamp("us", tz="UTC"), None
    if name in ("time", "time without time zone"):
        return pa.time64("us"), None
    if name in ("timetz", "time with time zone"):
        return pa.string(), _text
    if name == "interval" or name.startswith("interval "):
        return pa.duration("us"), None
    if name in ("float", "float4", "real", "float8", "double precision"):
        single = name in ("float4", "real") or (name == "float" and (t.int_arg(0) or 53) <= 24)
        return (pa.float32() if single else pa.float64()), None
    if name in ("uuid", "json", "jsonb", "xml", "money", "inet", "cidr", "macaddr", "macaddr8"):
        return pa.string(), _text
    if name in _POSTGRESQL_SIMPLE:
        return _POSTGRESQL_SIMPLE[name], None
    return _fallback(name)


_POSTGRESQL_SIMPLE: dict[str, pa.DataType] = {
    "boolean": pa.bool_(),
    "bool": pa.bool_(),
    "smallint": pa.int16(),
    "int2": pa.int16(),
    "smallserial": pa.int16(),
    "integer": pa.int32(),
    "int": pa.int32(),
    "int4": pa.int32(),
    "serial": pa.int32(),
    "bigint": pa.int64(),
    "int8": pa.int64(),
    "bigserial": pa.int64(),
    "oid": pa.int64(),
    "date": pa.date32(),
    "text": pa.string(),
    "varchar": pa.string(),
    "character varying": pa.string(),
    "char": pa.string(),
    "character": pa.string(),
    "bpchar": pa.string(),
    "name": pa.string(),
    "citext": pa.string(),
    "bit": pa.string(),
    "varbit": pa.string(),
    "bit varying": pa.string(),
    "bytea": pa.binary(),
}


def _mysql(t: SourceType, precision, scale, report, source) -> _Resolved:
    name = t.name
    unsigned = name.endswith(" unsigned")
    base = name.removesuffix(" unsigned").removesuffix(" signed")
    if base in _MYSQL_INTEGERS:
        signed, wide = _MYSQL_INTEGERS[base]
        return (wide if unsigned else signed), None
    if base in ("decimal", "numeric", "dec", "fixed"):
        return _decimal(_arg_or(t, 0, precision, 10), _arg_or(t, 1, scale, 0), source)
    if base in ("float", "double", "real", "double precision"):
        single = base == "float" and (t.int_arg(0) or 0) <= 24
        return (pa.float32() if single else pa.float64()), None
    if base == "bit":
        width = t.int_arg(0) or 1
        return (pa.bool_(), _bit_bool) if width == 1 else (pa.uint64(), _big_endian)
    if base == "date":
        return pa.date32(), _mysql_date_converter(report)
    if base in ("datetime", "timestamp"):
        tz = "UTC" if base == "timestamp" else None  # session time_zone is pinned to +00:00
        return pa.timestamp("us", tz=tz), _mysql_timestamp_converter(report, source)
    if base == "time":
        return pa.duration("us"), None
    if base == "year":
        return pa.int16(), None
    if base in ("enum", "set"):
        return pa.string(), _text
    if base in ("json", "uuid", "inet4", "inet6"):
        return pa.string(), _text
    if base in ("char", "varchar", "tinytext", "text", "mediumtext", "longtext", "nchar"):
        return pa.string(), None
    if base in ("nvarchar", "national varchar", "national char"):
        return pa.string(), None
    if base in ("binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"):
        return pa.binary(), None
    if base in ("geometry", "point", "linestring", "polygon", "geometrycollection"):
        return pa.binary(), None
    return _fallback(name)


_MYSQL_INTEGERS: dict[str, tuple[pa.DataType, pa.DataType]] = {
    "tinyint": (pa.int8(), pa.uint8()),
    "bool": (pa.int8(), pa.uint8()),
    "boolean": (pa.int8(), pa.uint8()),
    "smallint": (pa.int16(), pa.uint16()),
    "mediumint": (pa.int32(), pa.uint32()),
    "int": (pa.int32(), pa.uint32()),
    "integer": (pa.int32(), pa.uint32()),
    "bigint": (pa.int64(), pa.uint64()),
    "serial": (pa.uint64(), pa.uint64()),  # BIGINT UNSIGNED NOT NULL AUTO_INCREMENT
}


def _oracle(t: SourceType, precision, scale, report, source) -> _Resolved:
    name = t.name
    if name in ("number", "numeric", "decimal", "dec"):
        return _number(t, precision, scale, source)
    if name in ("integer", "int", "smallint"):
        return _decimal(38, 0, source)  # Oracle's INTEGER is NUMBER(38)
    if name == "date":
        return pa.timestamp("s"), _timestamp_converter("s", source)
    if name.startswith("timestamp"):
        digits = _digits(t, scale, default=6)
        unit = "ns" if digits > 6 else "us"
        tz = "UTC" if "time zone" in name else None
        return pa.timestamp(unit, tz=tz), _timestamp_converter(unit, source)
    if name == "interval year to month":
        return pa.month_day_nano_interval(), _year_month_interval
    if name == "interval day to second":
        return pa.duration("us"), None
    if name == "binary_float":
        return pa.float32(), None
    if name in ("binary_double", "float", "double precision", "real"):
        return pa.float64(), _float
    if name in ("boolean", "bool"):
        return pa.bool_(), None
    if name in ("char", "nchar", "varchar", "varchar2", "nvarchar2", "long", "rowid", "urowid"):
        return pa.string(), None
    if name in ("clob", "nclob", "xmltype", "json", "sys.xmltype"):
        return pa.string(), _text
    if name in ("raw", "long raw", "blob", "bfile"):
        return pa.binary(), _bytes
    return _fallback(name)


def _snowflake(t: SourceType, precision, scale, report, source) -> _Resolved:
    name = t.name
    if name in ("number", "numeric", "decimal", "dec"):
        p = _arg_or(t, 0, precision, 38)
        return _number(SourceType(name, (str(p), str(_arg_or(t, 1, scale, 0)))), None, None, source)
    if name in ("int", "integer", "bigint", "smallint", "tinyint", "byteint"):
        return _decimal(38, 0, source)  # all NUMBER(38, 0) in Snowflake
    if name in ("float", "float4", "float8", "double", "double precision", "real"):
        return pa.float64(), None
    if name in ("timestamp", "datetime", "timestamp_ntz", "timestamp_tz", "timestamp_ltz"):
        digits = _digits(t, scale, default=9)
        unit = "ns" if digits > 6 else "us"
        tz = "UTC" if name in ("timestamp_tz", "timestamp_ltz") else None
        return pa.timestamp(unit, tz=tz), _timestamp_converter(unit, source)
    if name == "time":
        digits = _digits(t, scale, default=9)
        unit = "ns" if digits > 6 else "us"
        return pa.time64(unit), _time_converter(unit, source)
    if name == "date":
        return pa.date32(), None
    if name == "boolean":
        return pa.bool_(), None
    if name in ("varchar", "string", "text", "char", "character", "nchar", "nvarchar"):
        return pa.string(), None
    if name in ("variant", "object", "array", "geography", "geometry"):
        return pa.string(), _text
    if name in ("binary", "varbinary"):
        return pa.binary(), _bytes
    return _fallback(name)


def _sqlite(t: SourceType, precision, scale, report, source) -> _Resolved:
    # SQLite has type affinities, not types: a column holds whatever was stored. We read the
    # declared name the way SQLite derives affinity, plus the names people use for dates.
    name = t.name
    if name in ("boolean", "bool"):
        return pa.bool_(), _sqlite_bool
    if name == "date":
        return pa.date32(), _sqlite_date
    if name in ("datetime", "timestamp"):
        return pa.timestamp("us"), _timestamp_converter("us", source)
    if "int" in name:
        return pa.int64(), _sqlite_int
    if any(part in name for part in ("char", "clob", "text")):
        return pa.string(), _text
    if name == "":  # no declared type: any value; text keeps every one of them
        return pa.string(), _text
    if name == "blob":
        return pa.binary(), _sqlite_blob
    if any(part in name for part in ("real", "floa", "doub")):
        return pa.float64(), _float
    if name in ("decimal", "numeric") and t.int_arg(0) is not None:
        return _decimal(t.int_arg(0), t.int_arg(1) or 0, source)
    return UNCONSTRAINED_DECIMAL, _decimal_converter(UNCONSTRAINED_DECIMAL, source)


_DIALECTS = {
    "sql-server": _sqlserver,
    "postgresql": _postgresql,
    "mysql": _mysql,
    "oracle": _oracle,
    "snowflake": _snowflake,
    "sqlite": _sqlite,
}


def _check_db_type(db_type: str) -> None:
    if db_type not in DB_TYPES:
        raise ValueError(
            f"unknown database type {db_type!r}; expected one of {', '.join(DB_TYPES)}"
        )


def _digits(t: SourceType, scale: int | None, default: int) -> int:
    digits = t.int_arg(0)
    if digits is None:
        digits = scale if scale is not None else default
    return max(0, min(int(digits), 9))


def _arg_or(t: SourceType, index: int, given: int | None, default: int | None) -> int | None:
    parsed = t.int_arg(index)
    if parsed is not None:
        return parsed
    return given if given is not None else default


def _fallback(name: str) -> _Resolved:
    # An unknown type (PostGIS, a user enum, a new built-in): keep the value as text rather
    # than refuse the whole table.
    return pa.string(), _text


# --- decimals ---------------------------------------------------------------------------------


def _decimal(precision: int, scale: int, source: str) -> _Resolved:
    if scale < 0:  # Oracle NUMBER(5, -2): whole hundreds, up to 7 digits
        precision, scale = precision - scale, 0
    precision = max(precision, scale, 1)
    if precision > MAX_DECIMAL_PRECISION:
        return pa.string(), _exact_number_text
    arrow = pa.decimal128(precision, scale)
    return arrow, _decimal_converter(arrow, source)


def _number(t: SourceType, precision, scale, source) -> _Resolved:
    """Oracle/Snowflake NUMBER: NUMBER(p) with p <= 18 is an int64, NUMBER alone unconstrained."""
    p = None if t.args[:1] == ("*",) else _arg_or(t, 0, precision, None)
    s = _arg_or(t, 1, scale, None)
    if p is None and s is None:
        return pa.string(), _exact_number_text
    p = MAX_DECIMAL_PRECISION if p is None else p
    s = 0 if s is None else s
    if s == 0 and p <= 18:
        return pa.int64(), _integral(source)
    return _decimal(p, s, source)


def _to_decimal(value: Any, source: str) -> Decimal:
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, bool):
        number = Decimal(int(value))
    elif isinstance(value, int):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))  # the shortest text that reads back as this float
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise ValueConversionError(f"the {source} value {value!r} is not a number") from None
    else:
        raise ValueConversionError(f"the {source} value {value!r} is not a number")
    if not number.is_finite():
        raise ValueConversionError(
            f"the {source} value {number} cannot be stored in a decimal column; filter it out "
            "or cast the column to text in a query"
        )
    return number


def _decimal_converter(arrow: pa.Decimal128Type, source: str) -> Converter:
    precision, scale = arrow.precision, arrow.scale
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)

    def convert(value: Any) -> Decimal:
        number = _to_decimal(value, source)
        try:
            # decimal's default context keeps 28 digits; a decimal128 has up to 38
            exact = number.quantize(quantum, context=_WIDE)
        except InvalidOperation:
            exact = None
        if exact is None or exact != number or abs(exact) >= limit:
            raise ValueConversionError(
                f"the {source} value {number} does not fit decimal({precision}, {scale}) "
                "exactly; declare the column with a precision and scale that hold it, or cast "
                "it to text in a query"
            )
        return exact

    return convert


def _decimal_text(value: Any) -> str:
    return format(_to_decimal(value, "decimal"), "f")  # never exponent notation


_NON_FINITE = {"nan": "NaN", "infinity": "Infinity", "-infinity": "-Infinity", "inf": "Infinity"}


def _exact_number_text(value: Any) -> str:
    """A number of arbitrary precision as its exact decimal text (never exponent notation);
    ``NaN`` and +/-``Infinity``, which PostgreSQL's ``numeric`` holds, as PostgreSQL spells
    them. Nothing a source legally holds is refused."""
    if isinstance(value, str):
        spelled = _NON_FINITE.get(value.strip().lower().lstrip("+"))
        if spelled is not None:
            return spelled
    elif isinstance(value, (Decimal, float)) and not Decimal(value).is_finite():
        number = Decimal(value)
        return "NaN" if number.is_nan() else ("-Infinity" if number < 0 else "Infinity")
    return format(_to_decimal(value, "decimal"), "f")


def is_exact_number_text(db_type: str, source_type: str, precision=None, scale=None) -> bool:
    """Whether a column of ``source_type`` is read as the exact text of its numbers (a
    decimal Delta Lake cannot hold: no declared precision, or more than 38 digits)."""
    try:
        _, convert = _resolve(db_type, source_type, precision, scale, None)
    except Exception:  # noqa: BLE001 - not a type we can place: not a number either
        return False
    return convert is _exact_number_text


def _integral(source: str) -> Converter:
    def convert(value: Any) -> int:
        number = _to_decimal(value, source)
        if number != number.to_integral_value():
            raise ValueConversionError(f"the {source} value {number} is not a whole number")
        return int(number)

    return convert


def _float(value: Any) -> float:
    return float(value)


# --- time -------------------------------------------------------------------------------------

_ISO = re.compile(
    r"^\s*(?P<y>\d{4})-(?P<mo>\d{2})-(?P<d>\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"\s*(?P<tz>[Zz]|[+-]\d{2}(?::?\d{2})?)?\s*$"
)
_TIME = re.compile(r"^\s*(?P<h>\d{1,2}):(?P<mi>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<f>\d{1,9}))?)?\s*$")


def parse_timestamp_text(text: str) -> tuple[int, int | None]:
    """ISO-like text -> (wall-clock ns since 1970-01-01, UTC offset in seconds or None).

    Takes ``T`` or a space between date and time, 0-9 fractional digits, and ``Z``,
    ``+hh:mm``, ``+hhmm`` or ``+hh`` (SQL Server's style 121 puts a space before it).
    """
    match = _ISO.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a date and time (expected YYYY-MM-DD hh:mm:ss.fffffff)")
    parts = {
        key: int(value)
        for key, value in match.groupdict(default="0").items()
        if key not in ("f", "tz")
    }
    try:
        whole = datetime(parts["y"], parts["mo"], parts["d"], parts["h"], parts["mi"], parts["s"])
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date and time ({error})") from None
    fraction = (match.group("f") or "").ljust(9, "0")
    ns = (whole - EPOCH) // timedelta(microseconds=1) * 1000 + int(fraction)
    tz = match.group("tz")
    if tz is None:
        return ns, None
    if tz in ("Z", "z"):
        return ns, 0
    digits = tz[1:].replace(":", "")
    offset = int(digits[:2]) * 3600 + int(digits[2:4] or 0) * 60
    return ns, -offset if tz[0] == "-" else offset


def datetime_ns(value: datetime) -> int:
    """ns since the epoch: the UTC instant of an aware datetime, the wall time of a naive one."""
    if value.tzinfo is not None and value.utcoffset() is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    else:
        value = value.replace(tzinfo=None)
    return (value - EPOCH) // timedelta(microseconds=1) * 1000


def format_timestamp_ns(ns: int, *, digits: int | None = None, suffix: str = "") -> str:
    """``YYYY-MM-DDThh:mm:ss[.f]`` + suffix; ``digits`` None trims trailing zeros, else
    exactly that many fractional digits (cut, never rounded up)."""
    seconds, fraction = divmod(ns, 10**9)
    whole = EPOCH + timedelta(seconds=seconds)
    text = whole.strftime("%Y-%m-%dT%H:%M:%S")
    if whole.year < 1000:  # strftime does not pad the year on every platform
        text = f"{whole.year:04d}" + text[text.index("-") :]
    if digits is None:
        tail = f"{fraction:09d}".rstrip("0")
    else:
        tail = f"{fraction:09d}"[:digits]
    return text + ("." + tail if tail else "") + suffix


def odbc_timestamp_ns(raw: bytes) -> int:
    """pyodbc output-converter bytes: SQL_TIMESTAMP_STRUCT (16) or
    SQL_SS_TIMESTAMPOFFSET_STRUCT (20); fraction in ns, offset applied."""
    if len(raw) == 20:
        year, month, day, hour, minute, second, fraction, tz_h, tz_m = struct.unpack("<6hI2h", raw)
    elif len(raw) == 16:
        year, month, day, hour, minute, second, fraction = struct.unpack("<6hI", raw)
        tz_h = tz_m = 0
    else:
        raise ValueConversionError(f"{len(raw)} bytes are not an ODBC timestamp structure")
    wall = datetime(year, month, day, hour, minute, second)
    ns = (wall - EPOCH) // timedelta(microseconds=1) * 1000 + fraction
    return ns - (tz_h * 3600 + tz_m * 60) * 10**9


def _timestamp_converter(unit: str, source: str, *, sqlserver: bool = False) -> Converter:
    """Driver value -> an int in ``unit`` since the epoch (UTC instant when it has an offset)."""
    per_unit = {"s": 10**9, "ms": 10**6, "us": 10**3, "ns": 1}[unit]

    def convert(value: Any) -> int:
        if isinstance(value, datetime):
            ns = datetime_ns(value)
        elif isinstance(value, date):
            ns = datetime_ns(datetime(value.year, value.month, value.day))
        elif isinstance(value, (bytes, bytearray)) and sqlserver and len(value) in (16, 20):
            ns = odbc_timestamp_ns(bytes(value))
        elif isinstance(value, str):
            try:
                wall, offset = parse_timestamp_text(value)
            except ValueError as error:
                raise ValueConversionError(f"the {source} value {error}") from None
            ns = wall - (offset or 0) * 10**9
        else:
            raise ValueConversionError(f"the {source} value {value!r} is not a date and time")
        if per_unit == 1:
            if not _NS_MIN <= ns <= _NS_MAX:
                raise ValueConversionError(
                    f"the {source} value {format_timestamp_ns(ns)} is outside what a "
                    "nanosecond timestamp holds (1677-09-21 to 2262-04-11); read the column "
                    "through a query that casts it to a microsecond type (datetime2(6), "
                    "TIMESTAMP(6)) or filters such sentinel values"
                )
            return ns
        if unit == "ms" and sqlserver:
            # datetime ticks are 1/300 s: round half to even to the millisecond SQL Server shows
            quotient, remainder = divmod(ns, per_unit)
            if remainder * 2 > per_unit or (remainder * 2 == per_unit and quotient % 2):
                quotient += 1
            return quotient
        if ns % per_unit:
            raise ValueConversionError(
                f"the {source} value {format_timestamp_ns(ns)} has more fractional digits "
                f"than its column type ({unit})"
            )
        return ns // per_unit

    return convert


def _time_converter(unit: str, source: str) -> Converter:
    """Driver value -> an int in ``unit`` since midnight (time, text, or SQL_SS_TIME2_STRUCT)."""
    per_unit = 1 if unit == "ns" else 1000

    def convert(value: Any) -> int:
        if isinstance(value, time):
            ns = ((value.hour * 60 + value.minute) * 60 + value.second) * 10**9
            ns += value.microsecond * 1000
        elif isinstance(value, (bytes, bytearray)) and len(value) == 12:
            hour, minute, second, fraction = struct.unpack("<3H2xI", bytes(value))
            ns = ((hour * 60 + minute) * 60 + second) * 10**9 + fraction
        elif isinstance(value, timedelta):
            ns = value // timedelta(microseconds=1) * 1000
        elif isinstance(value, str) and (match := _TIME.match(value)):
            ns = (int(match["h"]) * 3600 + int(match["mi"]) * 60 + int(match["s"] or 0)) * 10**9
            ns += int((match["f"] or "").ljust(9, "0"))
        else:
            raise ValueConversionError(f"the {source} value {value!r} is not a time of day")
        if ns % per_unit:
            raise ValueConversionError(f"the {source} value {value!r} has more digits than {unit}")
        return ns // per_unit

    return convert


def _mysql_zero(text: str) -> bool:
    """``0000-00-00``, ``2024-00-00``, ``0000-00-00 00:00:00``: dates MySQL lets through."""
    head = text.strip()[:10]
    return bool(re.fullmatch(r"\d{4}-\d{2}-\d{2}", head)) and (
        head.startswith("0000") or head[5:7] == "00" or head[8:10] == "00"
    )


def _mysql_date_converter(report: ConversionReport) -> Converter:
    def convert(value: Any) -> date | None:
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        text = value.decode() if isinstance(value, (bytes, bytearray)) else str(value)
        if _mysql_zero(text):
            report.note(MYSQL_ZERO_DATE)
            return None
        return date.fromisoformat(text.strip()[:10])

    return convert


def _mysql_timestamp_converter(report: ConversionReport, source: str) -> Converter:
    to_us = _timestamp_converter("us", source)

    def convert(value: Any) -> int | datetime | None:
        if isinstance(value, (str, bytes, bytearray)):
            text = value.decode() if isinstance(value, (bytes, bytearray)) else value
            if _mysql_zero(text):
                report.note(MYSQL_ZERO_DATE)
                return None
            return to_us(text)
        return to_us(value)

    return convert


def _year_month_interval(value: Any) -> pa.MonthDayNano:
    years, months = getattr(value, "years", None), getattr(value, "months", None)
    if years is None and isinstance(value, tuple) and len(value) == 2:
        years, months = value
    if years is None:
        raise ValueConversionError(f"the INTERVAL YEAR TO MONTH value {value!r} is not an interval")
    return pa.MonthDayNano([int(years) * 12 + int(months or 0), 0, 0])


# --- everything else --------------------------------------------------------------------------


def _rowversion(value: Any) -> int:
    """SQL Server rowversion: 8 bytes, big-endian, unsigned."""
    if isinstance(value, int):
        return value
    raw = bytes(value)
    if len(raw) != 8:
        raise ValueConversionError(f"a rowversion has 8 bytes, this one has {len(raw)}")
    return int.from_bytes(raw, "big", signed=False)


def _big_endian(value: Any) -> int:
    if isinstance(value, int):
        return value
    return int.from_bytes(bytes(value), "big", signed=False)


def _bit_bool(value: Any) -> bool:
    if isinstance(value, (bytes, bytearray)):
        return any(value)
    return bool(value)


def _bytes(value: Any) -> bytes:
    if hasattr(value, "read"):  # an Oracle LOB
        value = value.read()
    return bytes(value)


def _uuid_converter(*, little_endian: bool) -> Converter:
    def convert(value: Any) -> str:
        if isinstance(value, uuid.UUID):
            return str(value)
        if isinstance(value, (bytes, bytearray)) and len(value) == 16:
            raw = bytes(value)
            return str(uuid.UUID(bytes_le=raw) if little_endian else uuid.UUID(bytes=raw))
        return str(uuid.UUID(str(value)))

    return convert


def _text(value: Any) -> str:
    """Any value as text: JSON for decoded JSON, 0x-hex for bytes, ISO for times."""
    if isinstance(value, str):
        return value
    if hasattr(value, "read"):  # an Oracle CLOB
        return _text(value.read())
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "0x" + bytes(value).hex().upper()
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, default=str)
    if isinstance(value, (set, frozenset)):  # a MySQL SET, when the driver splits it
        return ",".join(sorted(str(item) for item in value))
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (datetime, date, time)):
        return value.isoformat()
    return str(value)


def _list_converter(element: Converter | None, source: str) -> Converter:
    def convert(value: Any) -> list:
        items = list(value)
        if any(isinstance(item, (list, tuple)) for item in items):
            raise ValueConversionError(
                f"the {source} value is a multi-dimensional array; cast the column to text in "
                "a query (array_to_json(col)::text)"
            )
        if element is None:
            return items
        return [None if item is None else element(item) for item in items]

    return convert


def _sqlite_bool(value: Any) -> bool:
    if isinstance(value, bool) or value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "t", "1"):
        return True
    if text in ("false", "f", "0"):
        return False
    raise ValueConversionError(f"the SQLite BOOLEAN value {value!r} is neither 0/1 nor true/false")


def _sqlite_date(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        wall, _offset = parse_timestamp_text(str(value))
    except ValueError as error:
        raise ValueConversionError(f"the SQLite DATE value {error}") from None
    if wall % (86400 * 10**9):
        raise ValueConversionError(f"the SQLite DATE value {value!r} has a time of day")
    return date(1970, 1, 1) + timedelta(days=wall // (86400 * 10**9))


def _sqlite_int(value: Any) -> int:
    if isinstance(value, int):
        return value
    return _integral("SQLite INTEGER")(value)


def _sqlite_blob(value: Any) -> bytes:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise ValueConversionError(
        f"the SQLite value {value!r} sits in a column without a declared type; declare one or "
        "cast it in a query"
    )
