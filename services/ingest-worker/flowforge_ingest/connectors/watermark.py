"""Watermarks of incremental loads, correct by construction.

An incremental run reads ``lower <= delta <= upper``: ``lower`` is the watermark stored by the
last successful run, ``upper`` is fixed by ``SELECT MAX(delta)`` *before* the read (see
:func:`flowforge_ingest.connectors.sql.plan_max`), and ``upper`` becomes the next watermark
only after the bronze commit. The rows at ``lower`` that bronze already holds are dropped by
(key, delta) before the write (:mod:`flowforge_ingest.lookback`). The bugs users report about such loads (``datetime2(7)``
rounded to milliseconds, ``datetimeoffset`` parsed wrong, ``>=`` re-reading a day, session
time zones shifting the bound) all come from the bound changing on its way between the
database, Python and back. So here:

- A :class:`Watermark` stores its value as canonical text, never as a Python ``datetime``:
  ``2024-05-06T07:08:09.1234567`` keeps its 100 ns (Python stops at microseconds); a
  ``timestamptz`` is normalised to UTC (``...Z``); a ``rowversion`` is ``0x`` + 16 hex
  digits; integers and decimals are their exact digits. Construction validates and
  canonicalises, so two equal instants are equal watermarks, and JSON round-trips exactly.
- :func:`from_value` builds the next watermark from the ``MAX`` a run read, in whatever form
  the driver gave it: ``datetime`` (aware ones are converted to UTC), ISO text with up to 9
  fractional digits (what :func:`max_expression` makes SQL Server, Oracle and Snowflake
  return so no digit is lost), pyodbc's timestamp structures, ``Decimal``, ``int``, bytes.
- :func:`to_bound` gives the value to bind for a source column, and :func:`bound_expression`
  the SQL around its placeholder. Where the driver would cut the value, the bound travels as
  text and the database converts it to the column's own type: SQL Server
  ``CAST(%(lower)s AS datetime2(7))`` (pymssql renders a ``datetime`` with milliseconds and
  pyodbc with microseconds; both would re-read or skip rows), Oracle ``TO_TIMESTAMP(:lower,
  '...FF9')`` for ``TIMESTAMP(7..9)``, Snowflake ``CAST(... AS TIMESTAMP_NTZ(9))``. The text is
  ISO 8601 with ``T``, which SQL Server reads the same under every ``DATEFORMAT`` and language.
  ``timestamptz`` bounds are aware UTC datetimes (PostgreSQL) or UTC text with ``+00:00``.
  The cast target is rebuilt from the parsed type, never copied from catalog text.
- Where a target has fewer digits than the watermark (a ``datetime2(7)`` watermark bound to a
  PostgreSQL ``timestamp``), the bound is cut down, never rounded up: a lower bound cut down
  re-reads a few rows (the merge absorbs them); rounding up would skip rows.
- :func:`lookback` moves a watermark back by seconds (timestamps, dates) or by a count
  (integers, rowversions): rows committed late with an earlier delta (a long transaction that
  stamped ``now()`` at its start) are then re-read by the next run instead of lost; what
  bronze already holds is dropped by (key, delta).
- :func:`later` never lets a stored watermark move backwards.

A first incremental run has no lower bound; rows whose delta is NULL are read by that run
only (no later bound can select them).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from functools import total_ordering
from typing import Any

import pyarrow as pa

from flowforge_ingest.connectors.types import (
    EPOCH,
    SourceType,
    arrow_type,
    datetime_ns,
    format_timestamp_ns,
    is_exact_number_text,
    odbc_timestamp_ns,
    parse_source_type,
    parse_timestamp_text,
)

KINDS = ("timestamp", "timestamptz", "integer", "rowversion", "decimal", "date", "string")
"""``string`` is for text cursors, and for SQLite, whose dates are text compared as text."""

_DAY_NS = 86400 * 10**9


class WatermarkError(ValueError):
    """A watermark value, or its use with a column, that cannot be correct."""


@total_ordering
@dataclass(frozen=True)
class Watermark:
    """Where the last successful incremental read of ``column`` stopped (inclusive)."""

    column: str
    kind: str
    value: str

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise WatermarkError(
                f"unknown watermark kind {self.kind!r}; expected one of {', '.join(KINDS)}"
            )
        if not isinstance(self.column, str) or not self.column:
            raise WatermarkError("a watermark needs the name of its delta column")
        if not isinstance(self.value, str):
            raise WatermarkError(f"a watermark value is text, not {type(self.value).__name__}")
        object.__setattr__(self, "value", _canonical(self.kind, self.value))

    # -- reading the value --

    @property
    def ns(self) -> int:
        """ns since 1970-01-01 (UTC for ``timestamptz``, wall time for ``timestamp``)."""
        if self.kind not in ("timestamp", "timestamptz"):
            raise WatermarkError(f"a {self.kind} watermark has no time")
        return parse_timestamp_text(self.value)[0]

    def sort_key(self) -> Any:
        if self.kind in ("timestamp", "timestamptz"):
            return self.ns
        if self.kind == "integer":
            return int(self.value)
        if self.kind == "rowversion":
            return int(self.value, 16)
        if self.kind == "decimal":
            return Decimal(self.value)
        if self.kind == "date":
            return date.fromisoformat(self.value)
        return self.value

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Watermark):
            return NotImplemented
        if (self.column, self.kind) != (other.column, other.kind):
            raise WatermarkError(
                f"cannot compare a {self.kind} watermark of {self.column!r} with a "
                f"{other.kind} watermark of {other.column!r}"
            )
        return self.sort_key() < other.sort_key()

    # -- JSON --

    def to_dict(self) -> dict[str, str]:
        return {"column": self.column, "kind": self.kind, "value": self.value}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Watermark:
        try:
            return cls(column=data["column"], kind=data["kind"], value=data["value"])
        except (KeyError, TypeError):
            raise WatermarkError("a stored watermark needs 'column', 'kind' and 'value'") from None

    @classmethod
    def from_json(cls, text: str) -> Watermark:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise WatermarkError(f"the stored watermark is not JSON ({error})") from None
        if not isinstance(data, dict):
            raise WatermarkError("the stored watermark is not a JSON object")
        return cls.from_dict(data)


def _canonical(kind: str, value: str) -> str:
    text = value.strip()
    try:
        if kind in ("timestamp", "timestamptz"):
            ns, offset = parse_timestamp_text(text)
            if kind == "timestamp":
                if offset is not None:
                    raise WatermarkError(
                        f"the timestamp watermark {value!r} carries an offset; a column "
                        "without time zone has none (use kind 'timestamptz')"
                    )
                return format_timestamp_ns(ns)
            if offset is None:
                raise WatermarkError(
                    f"the timestamptz watermark {value!r} needs its offset (Z or +hh:mm)"
                )
            return format_timestamp_ns(ns - offset * 10**9, suffix="Z")
        if kind == "integer":
            if not re.fullmatch(r"[+-]?\d+", text):
                raise WatermarkError(f"the integer watermark {value!r} is not a whole number")
            return str(int(text))
        if kind == "rowversion":
            match = re.fullmatch(r"0[xX]([0-9a-fA-F]{1,16})", text)
            if not match:
                raise WatermarkError(
                    f"the rowversion watermark {value!r} is not 0x followed by 16 hex digits"
                )
            return f"0x{int(match.group(1), 16):016X}"
        if kind == "decimal":
            number = Decimal(text)
            if not number.is_finite():
                raise WatermarkError(f"the decimal watermark {value!r} is not a finite number")
            return format(number.normalize(), "f") if number else "0"
        if kind == "date":
            return date.fromisoformat(text).isoformat()
        return value  # string: exactly as read
    except (ValueError, InvalidOperation) as error:
        if isinstance(error, WatermarkError):
            raise
        raise WatermarkError(f"the {kind} watermark {value!r} cannot be read ({error})") from None


# --- from a source value ----------------------------------------------------------------------


def watermark_kind(db_type: str, source_type: str) -> str:
    """The kind of watermark a delta column of ``source_type`` keeps; refuses the types
    whose order is not exact (floats, booleans, binary other than rowversion)."""
    parsed = parse_source_type(db_type, source_type)
    if db_type == "sql-server" and parsed.name in ("rowversion", "timestamp"):
        return "rowversion"
    arrow = arrow_type(db_type, source_type)
    if pa.types.is_timestamp(arrow):
        return "timestamptz" if arrow.tz else "timestamp"
    if pa.types.is_date(arrow):
        return "date"
    if pa.types.is_integer(arrow):
        return "integer"
    if pa.types.is_decimal(arrow):
        return "integer" if arrow.scale == 0 else "decimal"
    if is_exact_number_text(db_type, source_type):
        return "decimal"  # a number kept as its exact text still orders as a number
    if pa.types.is_string(arrow) and not parsed.array and parsed.name not in _UNORDERED_TEXT:
        return "string"
    raise WatermarkError(
        f"a {source_type} column cannot be the delta column of an incremental load: its "
        "values do not have an exact order; use a timestamp, date, integer, decimal or "
        "rowversion column"
    )


# Text columns whose database order is not the order of their text (or that have none).
_UNORDERED_TEXT = frozenset(
    {"uniqueidentifier", "uuid", "sql_variant", "xml", "json", "jsonb", "variant", "object"}
    | {"enum", "set", "money", "inet", "cidr", "timetz", "time with time zone", "clob", "nclob"}
)


def from_value(value: Any, db_type: str, source_type: str, *, column: str) -> Watermark | None:
    """The watermark for ``value``, the ``MAX`` of ``column`` a run read (None if empty)."""
    if value is None:
        return None
    kind = watermark_kind(db_type, source_type)
    if db_type == "sqlite" and kind != "integer" and isinstance(value, str):
        kind = "string"  # SQLite compares text as text: keep the bytes it stored
    try:
        text = _value_text(kind, value)
    except (TypeError, ValueError, InvalidOperation) as error:
        if isinstance(error, WatermarkError):
            raise
        raise WatermarkError(
            f"the maximum of {column!r} ({value!r}) cannot be a {kind} watermark ({error})"
        ) from None
    return Watermark(column=column, kind=kind, value=text)


def _value_text(kind: str, value: Any) -> str:
    if kind in ("timestamp", "timestamptz"):
        ns, offset = _value_ns(value)
        if kind == "timestamp":
            if offset is not None:
                raise WatermarkError(
                    f"the value {value!r} carries an offset but its column has no time zone"
                )
            return format_timestamp_ns(ns)
        # a timestamptz value without an offset is UTC: sessions are pinned to UTC
        return format_timestamp_ns(ns - (offset or 0) * 10**9, suffix="Z")
    if kind == "date":
        if isinstance(value, datetime):
            if value.time() != datetime.min.time():
                raise WatermarkError(f"the date value {value!r} has a time of day")
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return date.fromisoformat(str(value).strip()[:10]).isoformat()
    if kind == "integer":
        number = value if isinstance(value, int) else Decimal(str(value).strip())
        if isinstance(number, Decimal) and number != number.to_integral_value():
            raise WatermarkError(f"{value!r} is not a whole number")
        return str(int(number))
    if kind == "rowversion":
        if isinstance(value, int):
            return f"0x{value:016X}"
        if isinstance(value, str):
            return value
        raw = bytes(value)
        if len(raw) != 8:
            raise WatermarkError(f"a rowversion has 8 bytes, this one has {len(raw)}")
        return "0x" + raw.hex().upper()
    if kind == "decimal":
        return str(value if not isinstance(value, float) else repr(value))
    return value if isinstance(value, str) else str(value)


def _value_ns(value: Any) -> tuple[int, int | None]:
    """(wall ns, offset seconds or None) of a driver's date-and-time value."""
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            return datetime_ns(value), 0  # already converted to the UTC instant
        return datetime_ns(value), None
    if isinstance(value, date):
        return datetime_ns(datetime(value.year, value.month, value.day)), None
    if isinstance(value, (bytes, bytearray)):
        return odbc_timestamp_ns(bytes(value)), (0 if len(value) == 20 else None)
    if isinstance(value, str):
        return parse_timestamp_text(value)
    raise WatermarkError(f"{value!r} is not a date and time")


# --- to a bound -------------------------------------------------------------------------------


def to_bound(watermark: Watermark, db_type: str, source_type: str | None = None) -> Any:
    """The Python value to bind for ``watermark`` against a ``source_type`` column.

    Use it with :func:`bound_expression` for the same column: where this returns text, that
    expression converts it to the column's type in the database. ``source_type`` None means
    the dialect's usual type for the watermark's kind (``datetime2(7)`` on SQL Server...).
    """
    kind = watermark.kind
    target = _target(db_type, source_type, kind)
    if kind == "integer":
        return int(watermark.value)
    if kind == "decimal":
        return str(watermark.value) if db_type == "sqlite" else Decimal(watermark.value)
    if kind == "rowversion":
        if db_type != "sql-server":
            raise WatermarkError("rowversion watermarks belong to SQL Server columns")
        return int(watermark.value, 16).to_bytes(8, "big")
    if kind == "string":
        return watermark.value
    if kind == "date":
        day = date.fromisoformat(watermark.value)
        return day.isoformat() if db_type in ("sql-server", "sqlite") else day
    # timestamps
    ns = watermark.ns
    cast = _cast_target(db_type, target)
    if cast is not None:  # bound as text, converted by bound_expression
        digits, with_offset = cast[1], cast[2]
        if kind == "timestamp" and with_offset:
            raise WatermarkError(
                f"a timestamp watermark without time zone cannot bound a {target.name} column"
            )
        return format_timestamp_ns(ns, digits=digits, suffix="+00:00" if with_offset else "")
    if db_type == "sqlite":
        return format_timestamp_ns(ns, digits=6).replace("T", " ")
    moment = EPOCH + timedelta(microseconds=ns // 1000)  # cut down to the driver's microseconds
    if kind == "timestamptz" and db_type in ("postgresql", "snowflake"):
        return moment.replace(tzinfo=UTC)
    return moment  # naive: the wall time, or UTC in a session pinned to UTC


def bound_expression(db_type: str, source_type: str | None, placeholder: str) -> str:
    """The SQL that turns a bound value from :func:`to_bound` into the column's type."""
    if not source_type:
        return placeholder
    target = parse_source_type(db_type, source_type)
    if target.name == "date" and db_type == "sql-server":
        return f"CAST({placeholder} AS date)"
    cast = _cast_target(db_type, target)
    if cast is None:
        return placeholder
    type_sql = cast[0]
    if db_type == "oracle":
        model = _ORACLE_FORMAT + ("TZH:TZM" if cast[2] else "")
        function = "TO_TIMESTAMP_TZ" if cast[2] else "TO_TIMESTAMP"
        return f"{function}({placeholder}, '{model}')"
    return f"CAST({placeholder} AS {type_sql})"


def max_expression(db_type: str, source_type: str | None, column_sql: str) -> str:
    """``MAX(column)`` in the form that keeps every digit through the driver: text for the
    date-and-time types a Python ``datetime`` would cut (or a ``datetime`` would misread)."""
    maximum = f"MAX({column_sql})"
    if not source_type:
        return maximum
    target = parse_source_type(db_type, source_type)
    if db_type == "sql-server" and target.name in _SQLSERVER_TEMPORAL:
        return f"CONVERT(varchar(40), {maximum}, 121)"  # ODBC canonical, every digit
    cast = _cast_target(db_type, target)
    if cast is None:
        return maximum
    model = _ORACLE_FORMAT + ("TZH:TZM" if cast[2] else "")
    function = "TO_CHAR" if db_type == "oracle" else "TO_VARCHAR"
    return f"{function}({maximum}, '{model}')"


_SQLSERVER_TEMPORAL = ("datetime2", "datetimeoffset", "datetime", "smalldatetime", "date")
_ORACLE_FORMAT = 'YYYY-MM-DD"T"HH24:MI:SS.FF9'


def default_source_type(db_type: str, kind: str) -> str | None:
    """The column type a watermark of ``kind`` is bound for when the caller names none."""
    if kind in ("timestamp", "timestamptz"):
        return _DEFAULT_TYPES[db_type][kind]
    return "date" if kind == "date" else None


_DEFAULT_TYPES = {
    "sql-server": {"timestamp": "datetime2(7)", "timestamptz": "datetimeoffset(7)"},
    "postgresql": {"timestamp": "timestamp", "timestamptz": "timestamptz"},
    "mysql": {"timestamp": "datetime(6)", "timestamptz": "timestamp(6)"},
    "oracle": {"timestamp": "timestamp(9)", "timestamptz": "timestamp(9) with time zone"},
    "snowflake": {"timestamp": "timestamp_ntz(9)", "timestamptz": "timestamp_tz(9)"},
    "sqlite": {"timestamp": "datetime", "timestamptz": "datetime"},
}


def _target(db_type: str, source_type: str | None, kind: str) -> SourceType:
    if source_type:
        return parse_source_type(db_type, source_type)
    return parse_source_type(db_type, default_source_type(db_type, kind) or "date")


def _cast_target(db_type: str, target: SourceType) -> tuple[str, int, bool] | None:
    """(type SQL rebuilt from the parse, fractional digits of the text, with an offset) for
    the date-and-time targets bound as text; None where the driver binds exactly."""
    name = target.name
    if db_type == "sql-server":
        if name in ("datetime2", "datetimeoffset"):
            digits = min(_digits(target, 7), 7)
            return f"{name}({digits})", digits, name == "datetimeoffset"
        if name == "datetime":
            return "datetime", 3, False
        if name == "smalldatetime":
            return "smalldatetime", 0, False
        return None
    if db_type == "oracle" and name.startswith("timestamp"):
        digits = _digits(target, 6)
        if "local time zone" in name or ("time zone" not in name and digits <= 6):
            return None  # a datetime binds exactly (LTZ: the session is UTC)
        return "timestamp", 9, "time zone" in name
    if db_type == "snowflake" and name in (
        "timestamp",
        "datetime",
        "timestamp_ntz",
        "timestamp_tz",
        "timestamp_ltz",
    ):
        digits = _digits(target, 9)
        canonical = "timestamp_ntz" if name in ("timestamp", "datetime") else name
        with_offset = canonical != "timestamp_ntz"
        return f"{canonical.upper()}({digits})", 9, with_offset
    return None


def _digits(target: SourceType, default: int) -> int:
    digits = target.int_arg(0)
    return default if digits is None else max(0, min(digits, 9))


# --- moving a watermark -----------------------------------------------------------------------


def lookback(
    watermark: Watermark, *, seconds: float | None = None, rows: int | None = None
) -> Watermark:
    """``watermark`` moved back: by ``seconds`` for timestamps and dates (a date by whole
    days, rounded up), by ``rows`` for integer and rowversion watermarks."""
    kind = watermark.kind
    if kind in ("timestamp", "timestamptz", "date"):
        if seconds is None or rows is not None:
            raise WatermarkError(f"a {kind} watermark looks back by seconds, not rows")
        if seconds < 0:
            raise WatermarkError("a lookback cannot be negative")
        back_ns = round(Decimal(str(seconds)) * 10**9)
        if kind == "date":
            days = -(-back_ns // _DAY_NS)
            value = (date.fromisoformat(watermark.value) - timedelta(days=days)).isoformat()
        else:
            suffix = "Z" if kind == "timestamptz" else ""
            value = format_timestamp_ns(watermark.ns - back_ns, suffix=suffix)
        return Watermark(watermark.column, kind, value)
    if kind in ("integer", "rowversion"):
        if rows is None or seconds is not None:
            raise WatermarkError(f"a {kind} watermark looks back by rows, not seconds")
        if rows < 0:
            raise WatermarkError("a lookback cannot be negative")
        if kind == "integer":
            return Watermark(watermark.column, kind, str(int(watermark.value) - rows))
        return Watermark(watermark.column, kind, f"0x{max(int(watermark.value, 16) - rows, 0):X}")
    raise WatermarkError(
        f"a {kind} watermark has no lookback: its values have no fixed step to move back by"
    )


def later(current: Watermark | None, candidate: Watermark | None) -> Watermark | None:
    """The watermark to store: ``candidate`` unless it would move ``current`` backwards
    (rows deleted at the top of the table must not make the next run re-read everything)."""
    if current is None:
        return candidate
    if candidate is None:
        return current
    return candidate if candidate > current else current
