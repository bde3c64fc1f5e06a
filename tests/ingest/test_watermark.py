"""connectors/watermark.py: watermarks keep every digit from the MAX a run read to the bound
the next run sends, offsets are normalised to UTC, rowversions order as the server does, and
lookbacks move back without losing precision."""

from __future__ import annotations

import json
import sqlite3
import struct
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from flowforge_ingest.connectors.sql import plan_max, plan_read
from flowforge_ingest.connectors.watermark import (
    Watermark,
    WatermarkError,
    bound_expression,
    from_value,
    later,
    lookback,
    max_expression,
    to_bound,
    watermark_kind,
)

# --- 100 ns round trip (SQL Server datetime2(7)) ----------------------------------------------


@pytest.mark.parametrize(
    "driver_value",
    [
        "2024-05-06 07:08:09.1234567",  # what plan_max's CONVERT(varchar(40), MAX(d), 121) returns
        struct.pack("<6hI", 2024, 5, 6, 7, 8, 9, 123456700),  # pyodbc SQL_TIMESTAMP_STRUCT
    ],
)
def test_datetime2_7_round_trips_100_ns_from_max_to_bound(driver_value):
    mark = from_value(driver_value, "sql-server", "datetime2(7)", column="modified")
    assert mark == Watermark("modified", "timestamp", "2024-05-06T07:08:09.1234567")
    stored = json.loads(mark.to_json())
    assert stored == {
        "column": "modified",
        "kind": "timestamp",
        "value": "2024-05-06T07:08:09.1234567",
    }
    again = Watermark.from_json(mark.to_json())
    assert again == mark
    assert to_bound(again, "sql-server", "datetime2(7)") == "2024-05-06T07:08:09.1234567"
    assert bound_expression("sql-server", "datetime2(7)", "%(lower)s") == (
        "CAST(%(lower)s AS datetime2(7))"
    )


def test_plan_max_and_plan_read_agree_on_the_text_form():
    top = plan_max(
        "sql-server", schema="dbo", table="t", delta_column="d", delta_type="datetime2(7)"
    )
    assert top.sql == "SELECT CONVERT(varchar(40), MAX([d]), 121) FROM [dbo].[t]"
    mark = from_value("2024-05-06 07:08:09.1234567", "sql-server", "datetime2(7)", column="d")
    read = plan_read(
        "sql-server",
        schema="dbo",
        table="t",
        delta_column="d",
        lower=mark,
        delta_type="datetime2(7)",
        driver="pyodbc",
    )
    assert read.sql == "SELECT * FROM [dbo].[t] WHERE [d] > CAST(? AS datetime2(7))"
    assert read.params == ("2024-05-06T07:08:09.1234567",)


def test_bound_text_follows_the_column_precision():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.123")
    assert to_bound(mark, "sql-server", "datetime2(7)") == "2024-05-06T07:08:09.1230000"
    assert to_bound(mark, "sql-server", "datetime2(3)") == "2024-05-06T07:08:09.123"
    assert to_bound(mark, "sql-server", "datetime") == "2024-05-06T07:08:09.123"
    assert bound_expression("sql-server", "datetime", "?") == "CAST(? AS datetime)"
    whole = Watermark("d", "timestamp", "2024-05-06T07:08:00")
    assert to_bound(whole, "sql-server", "smalldatetime") == "2024-05-06T07:08:00"
    assert to_bound(whole, "sql-server", "datetime2(0)") == "2024-05-06T07:08:00"


def test_the_cast_target_is_rebuilt_not_copied_from_the_catalog():
    assert bound_expression("sql-server", "DATETIME2 (7) ", "?") == "CAST(? AS datetime2(7))"
    assert bound_expression("sql-server", "datetime2(99)", "?") == "CAST(? AS datetime2(7))"
    assert bound_expression("sql-server", "datetime2(7); DROP TABLE t", "?") == "?"
    assert bound_expression("sql-server", "int", "?") == "?"


# --- offsets normalised to UTC ----------------------------------------------------------------


def test_datetimeoffset_maximum_is_stored_in_utc():
    text = "2024-05-06 09:08:09.1234567 +02:00"  # CONVERT(..., 121) of a datetimeoffset(7)
    mark = from_value(text, "sql-server", "datetimeoffset(7)", column="d")
    assert mark.value == "2024-05-06T07:08:09.1234567Z"
    pymssql = datetime(2024, 5, 6, 1, 8, 9, 123456, tzinfo=timezone(timedelta(hours=-6)))
    assert from_value(pymssql, "sql-server", "datetimeoffset(7)", column="d").value == (
        "2024-05-06T07:08:09.123456Z"
    )
    pyodbc = struct.pack("<6hI2h", 2024, 5, 6, 12, 38, 9, 123456700, 5, 30)
    assert from_value(pyodbc, "sql-server", "datetimeoffset(7)", column="d") == mark
    assert to_bound(mark, "sql-server", "datetimeoffset(7)") == "2024-05-06T07:08:09.1234567+00:00"


def test_the_same_instant_in_two_offsets_is_one_watermark():
    east = Watermark("d", "timestamptz", "2024-05-06T09:00:00+02:00")
    west = Watermark("d", "timestamptz", "2024-05-06T02:00:00-05:00")
    assert east == west
    assert east.value == "2024-05-06T07:00:00Z"


def test_timestamp_kinds_refuse_the_wrong_offset_shape():
    with pytest.raises(WatermarkError, match="needs its offset"):
        Watermark("d", "timestamptz", "2024-05-06T07:00:00")
    with pytest.raises(WatermarkError, match="carries an offset"):
        Watermark("d", "timestamp", "2024-05-06T07:00:00Z")
    with pytest.raises(WatermarkError, match="carries an offset"):
        from_value("2024-05-06 07:00:00 +02:00", "sql-server", "datetime2(7)", column="d")


def test_mysql_timestamp_is_utc_and_binds_naive_in_the_utc_session():
    mark = from_value(datetime(2024, 5, 6, 7, 8, 9, 1), "mysql", "timestamp(6)", column="d")
    assert mark == Watermark("d", "timestamptz", "2024-05-06T07:08:09.000001Z")
    assert to_bound(mark, "mysql", "timestamp(6)") == datetime(2024, 5, 6, 7, 8, 9, 1)


# --- microseconds (PostgreSQL) ----------------------------------------------------------------


def test_postgresql_microseconds_round_trip():
    value = datetime(2024, 5, 6, 7, 8, 9, 123456)
    mark = from_value(value, "postgresql", "timestamp without time zone", column="d")
    assert mark.value == "2024-05-06T07:08:09.123456"
    assert to_bound(mark, "postgresql", "timestamp") == value
    aware = datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    mark = from_value(aware, "postgresql", "timestamptz", column="d")
    bound = to_bound(mark, "postgresql", "timestamptz")
    assert bound == aware
    assert bound.tzinfo is UTC


def test_a_finer_watermark_is_cut_down_for_a_microsecond_column_never_rounded_up():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.1234569")
    assert to_bound(mark, "postgresql", "timestamp") == datetime(2024, 5, 6, 7, 8, 9, 123456)


def test_oracle_and_snowflake_nanosecond_bounds():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.123456789")
    assert to_bound(mark, "oracle", "TIMESTAMP(9)") == "2024-05-06T07:08:09.123456789"
    assert bound_expression("oracle", "TIMESTAMP(9)", ":lower") == (
        "TO_TIMESTAMP(:lower, 'YYYY-MM-DD\"T\"HH24:MI:SS.FF9')"
    )
    assert to_bound(mark, "oracle", "TIMESTAMP(6)") == datetime(2024, 5, 6, 7, 8, 9, 123456)
    assert bound_expression("oracle", "TIMESTAMP(6)", ":lower") == ":lower"
    tz = Watermark("d", "timestamptz", "2024-05-06T07:08:09.123456789Z")
    assert to_bound(tz, "oracle", "TIMESTAMP(9) WITH TIME ZONE") == (
        "2024-05-06T07:08:09.123456789+00:00"
    )
    assert bound_expression("oracle", "TIMESTAMP(9) WITH TIME ZONE", ":upper") == (
        "TO_TIMESTAMP_TZ(:upper, 'YYYY-MM-DD\"T\"HH24:MI:SS.FF9TZH:TZM')"
    )
    assert to_bound(tz, "snowflake", "TIMESTAMP_LTZ(9)") == "2024-05-06T07:08:09.123456789+00:00"
    assert bound_expression("snowflake", "TIMESTAMP_LTZ(9)", "%(lower)s") == (
        "CAST(%(lower)s AS TIMESTAMP_LTZ(9))"
    )
    from_text = from_value("2024-05-06T07:08:09.123456789", "oracle", "TIMESTAMP(9)", column="d")
    assert from_text == mark


def test_max_expression_forms():
    assert max_expression("sql-server", "datetimeoffset(7)", "[d]") == (
        "CONVERT(varchar(40), MAX([d]), 121)"
    )
    assert max_expression("postgresql", "timestamptz", '"d"') == 'MAX("d")'
    assert max_expression("oracle", "TIMESTAMP(9)", '"D"') == (
        'TO_CHAR(MAX("D"), \'YYYY-MM-DD"T"HH24:MI:SS.FF9\')'
    )
    assert max_expression("sql-server", None, "[d]") == "MAX([d])"


# --- rowversion -------------------------------------------------------------------------------


def test_rowversion_watermarks_order_as_unsigned_big_endian():
    raw = [
        b"\x80\x00\x00\x00\x00\x00\x00\x00",
        b"\x00\x00\x00\x00\x00\x00\x07\xd1",
        b"\xff\xff\xff\xff\xff\xff\xff\xfe",
        b"\x7f\xff\xff\xff\xff\xff\xff\xff",
    ]
    marks = [from_value(value, "sql-server", "rowversion", column="rv") for value in raw]
    assert [m.value for m in sorted(marks)] == [
        "0x00000000000007D1",
        "0x7FFFFFFFFFFFFFFF",
        "0x8000000000000000",
        "0xFFFFFFFFFFFFFFFE",
    ]
    assert [to_bound(m, "sql-server", "rowversion") for m in sorted(marks)] == sorted(raw)
    assert max(marks).value == "0xFFFFFFFFFFFFFFFE"


def test_rowversion_text_is_canonical_and_checked():
    assert Watermark("rv", "rowversion", "0x7d1").value == "0x00000000000007D1"
    with pytest.raises(WatermarkError, match="16 hex digits"):
        Watermark("rv", "rowversion", "0x" + "1" * 17)
    with pytest.raises(WatermarkError, match="8 bytes"):
        from_value(b"\x01\x02", "sql-server", "rowversion", column="rv")


def test_rowversion_lookback_by_rows():
    mark = Watermark("rv", "rowversion", "0x0000000000000010")
    assert lookback(mark, rows=5).value == "0x000000000000000B"
    assert lookback(mark, rows=100).value == "0x0000000000000000"


# --- other kinds ------------------------------------------------------------------------------


def test_integer_decimal_and_date_watermarks():
    assert from_value(2**64 - 1, "mysql", "bigint unsigned", column="id").value == str(2**64 - 1)
    assert to_bound(Watermark("id", "integer", "+0042"), "postgresql", "bigint") == 42
    assert from_value(Decimal("42"), "oracle", "NUMBER(10)", column="id").kind == "integer"
    price = from_value(Decimal("1.50"), "postgresql", "numeric(10,2)", column="p")
    assert price == Watermark("p", "decimal", "1.5")
    assert to_bound(price, "postgresql", "numeric(10,2)") == Decimal("1.5")
    day = from_value(date(2024, 2, 29), "sql-server", "date", column="d")
    assert day == Watermark("d", "date", "2024-02-29")
    assert to_bound(day, "sql-server", "date") == "2024-02-29"
    assert bound_expression("sql-server", "date", "?") == "CAST(? AS date)"
    assert to_bound(day, "postgresql", "date") == date(2024, 2, 29)


def test_empty_table_has_no_watermark():
    assert from_value(None, "postgresql", "timestamptz", column="d") is None


@pytest.mark.parametrize(
    ("db_type", "source_type", "kind"),
    [
        ("sql-server", "datetime2(7)", "timestamp"),
        ("sql-server", "datetimeoffset", "timestamptz"),
        ("sql-server", "rowversion", "rowversion"),
        ("sql-server", "bigint", "integer"),
        ("sql-server", "decimal(18,0)", "integer"),
        ("sql-server", "decimal(18,4)", "decimal"),
        ("postgresql", "timestamptz", "timestamptz"),
        ("mysql", "timestamp", "timestamptz"),
        ("mysql", "datetime(6)", "timestamp"),
        ("oracle", "DATE", "timestamp"),
        ("oracle", "NUMBER", "decimal"),
        ("sqlite", "TEXT", "string"),
    ],
)
def test_watermark_kind(db_type, source_type, kind):
    assert watermark_kind(db_type, source_type) == kind


@pytest.mark.parametrize(
    ("db_type", "source_type"),
    [
        ("postgresql", "double precision"),
        ("sql-server", "float"),
        ("sql-server", "bit"),
        ("sql-server", "uniqueidentifier"),
        ("postgresql", "jsonb"),
        ("sql-server", "varbinary(8)"),
    ],
)
def test_columns_without_an_exact_order_cannot_be_delta_columns(db_type, source_type):
    with pytest.raises(WatermarkError, match="cannot be the delta column"):
        watermark_kind(db_type, source_type)


def test_sqlite_text_dates_are_bound_back_exactly_as_stored():
    connection = sqlite3.connect(":memory:")
    connection.execute("CREATE TABLE t (id INTEGER, changed DATETIME)")
    connection.executemany(
        "INSERT INTO t VALUES (?, ?)",
        [(1, "2024-01-01 10:00:00"), (2, "2024-01-01 10:00:00.5"), (3, "2024-01-02 00:00:00")],
    )
    top = plan_max("sqlite", schema=None, table="t", delta_column="changed")
    mark = from_value(
        connection.execute(*top.execute_args()).fetchone()[0],
        "sqlite",
        "DATETIME",
        column="changed",
    )
    assert mark == Watermark("changed", "string", "2024-01-02 00:00:00")
    first = Watermark("changed", "string", "2024-01-01 10:00:00")
    read = plan_read(
        "sqlite", schema=None, table="t", delta_column="changed", lower=first, upper=mark
    )
    assert [row[0] for row in connection.execute(*read.execute_args())] == [2, 3]
    connection.close()


# --- lookback and later -----------------------------------------------------------------------


def test_lookback_by_seconds_keeps_100_ns():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.1234567")
    assert lookback(mark, seconds=1.5).value == "2024-05-06T07:08:07.6234567"
    assert lookback(mark, seconds=86400).value == "2024-05-05T07:08:09.1234567"
    tz = Watermark("d", "timestamptz", "2024-01-01T00:00:00.0000001Z")
    assert lookback(tz, seconds=0.0000001).value == "2024-01-01T00:00:00Z"
    assert lookback(Watermark("d", "date", "2024-03-01"), seconds=3600).value == "2024-02-29"
    assert lookback(Watermark("id", "integer", "10"), rows=3).value == "7"


@pytest.mark.parametrize(
    ("mark", "kwargs"),
    [
        (Watermark("d", "timestamp", "2024-01-01T00:00:00"), {"rows": 5}),
        (Watermark("id", "integer", "5"), {"seconds": 5}),
        (Watermark("p", "decimal", "1.5"), {"rows": 1}),
        (Watermark("s", "string", "abc"), {"rows": 1}),
        (Watermark("d", "timestamp", "2024-01-01T00:00:00"), {"seconds": -1}),
    ],
)
def test_impossible_lookbacks_are_refused(mark, kwargs):
    with pytest.raises(WatermarkError):
        lookback(mark, **kwargs)


def test_later_never_moves_backwards():
    old = Watermark("d", "timestamp", "2024-05-06T07:08:09.1234567")
    new = Watermark("d", "timestamp", "2024-05-06T07:08:09.1234568")
    assert later(old, new) is new
    assert later(new, old) is new
    assert later(None, old) is old
    assert later(old, None) is old


def test_watermarks_of_different_columns_do_not_compare():
    with pytest.raises(WatermarkError, match="cannot compare"):
        _ = Watermark("a", "integer", "1") < Watermark("b", "integer", "2")


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[1, 2]",
        '{"column": "d", "kind": "timestamp"}',
        '{"column": "d", "kind": "epoch", "value": "1"}',
        '{"column": "d", "kind": "timestamp", "value": "yesterday"}',
    ],
)
def test_a_broken_stored_watermark_is_refused(text):
    with pytest.raises(WatermarkError):
        Watermark.from_json(text)
