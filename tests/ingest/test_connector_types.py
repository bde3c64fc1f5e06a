"""connectors/types.py: source types to Arrow per dialect, and driver values (built the way
pymssql, pyodbc, psycopg, pymysql, oracledb, snowflake and sqlite3 return them) landing in
Arrow arrays exactly: 100 ns for SQL Server, microseconds for PostgreSQL, every decimal digit."""

from __future__ import annotations

import ipaddress
import struct
import uuid
from collections import namedtuple
from datetime import UTC, date, datetime, time, timedelta, timezone
from decimal import Decimal

import pyarrow as pa
import pytest

from flowforge_ingest.connectors.types import (
    MYSQL_ZERO_DATE,
    UNCONSTRAINED_DECIMAL,
    ConversionReport,
    SourceType,
    ValueConversionError,
    arrow_type,
    convert_value,
    converter,
    is_exact_number_text,
    parse_source_type,
)

NS = 10**9


def to_arrow(db_type: str, source_type: str, values: list, **kwargs) -> pa.Array:
    """What a reader does: map the type, convert the values that need it, build the array."""
    target = arrow_type(db_type, source_type, **kwargs)
    convert = converter(db_type, source_type, **kwargs)
    return pa.array(values if convert is None else [convert(v) for v in values], type=target)


def epoch_ns(text: str) -> int:
    """Independent of the code under test: whole seconds via datetime, fraction by hand."""
    whole, _, fraction = text.partition(".")
    seconds = int((datetime.fromisoformat(whole).replace(tzinfo=UTC)).timestamp())
    return seconds * NS + int(fraction.ljust(9, "0") or 0)


# --- the type table ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "source_type", "expected"),
    [
        ("sql-server", "bit", pa.bool_()),
        ("sql-server", "tinyint", pa.uint8()),
        ("sql-server", "smallint", pa.int16()),
        ("sql-server", "int", pa.int32()),
        ("sql-server", "bigint", pa.int64()),
        ("sql-server", "decimal(38,6)", pa.decimal128(38, 6)),
        ("sql-server", "NUMERIC(18, 2)", pa.decimal128(18, 2)),
        ("sql-server", "money", pa.decimal128(19, 4)),
        ("sql-server", "smallmoney", pa.decimal128(10, 4)),
        ("sql-server", "float", pa.float64()),
        ("sql-server", "float(24)", pa.float32()),
        ("sql-server", "real", pa.float32()),
        ("sql-server", "date", pa.date32()),
        ("sql-server", "datetime", pa.timestamp("ms")),
        ("sql-server", "smalldatetime", pa.timestamp("s")),
        ("sql-server", "datetime2(7)", pa.timestamp("ns")),
        ("sql-server", "datetime2", pa.timestamp("ns")),
        ("sql-server", "datetime2(3)", pa.timestamp("us")),
        ("sql-server", "datetimeoffset(7)", pa.timestamp("ns", tz="UTC")),
        ("sql-server", "time(7)", pa.time64("ns")),
        ("sql-server", "time(0)", pa.time64("us")),
        ("sql-server", "nvarchar(max)", pa.string()),
        ("sql-server", "varchar(50)", pa.string()),
        ("sql-server", "xml", pa.string()),
        ("sql-server", "uniqueidentifier", pa.string()),
        ("sql-server", "sql_variant", pa.string()),
        ("sql-server", "varbinary(max)", pa.binary()),
        ("sql-server", "rowversion", pa.uint64()),
        ("sql-server", "timestamp", pa.uint64()),
        ("postgresql", "boolean", pa.bool_()),
        ("postgresql", "integer", pa.int32()),
        ("postgresql", "bigint", pa.int64()),
        ("postgresql", "numeric", pa.string()),
        ("postgresql", "numeric(12,2)", pa.decimal128(12, 2)),
        ("postgresql", "numeric(60,4)", pa.string()),
        ("postgresql", "double precision", pa.float64()),
        ("postgresql", "real", pa.float32()),
        ("postgresql", "timestamp without time zone", pa.timestamp("us")),
        ("postgresql", "timestamp(3) with time zone", pa.timestamp("us", tz="UTC")),
        ("postgresql", "timestamptz", pa.timestamp("us", tz="UTC")),
        ("postgresql", "date", pa.date32()),
        ("postgresql", "time", pa.time64("us")),
        ("postgresql", "interval", pa.duration("us")),
        ("postgresql", "uuid", pa.string()),
        ("postgresql", "jsonb", pa.string()),
        ("postgresql", "bytea", pa.binary()),
        ("postgresql", "text[]", pa.list_(pa.string())),
        ("postgresql", "_int4", pa.list_(pa.int32())),
        ("postgresql", "numeric(10,2)[]", pa.list_(pa.decimal128(10, 2))),
        ("postgresql", "character varying(20)", pa.string()),
        ("postgresql", "inet", pa.string()),
        ("postgresql", "geometry", pa.string()),
        ("mysql", "tinyint(1)", pa.int8()),
        ("mysql", "tinyint unsigned", pa.uint8()),
        ("mysql", "int(11) unsigned zerofill", pa.uint32()),
        ("mysql", "bigint", pa.int64()),
        ("mysql", "bigint unsigned", pa.uint64()),
        ("mysql", "decimal(10,2)", pa.decimal128(10, 2)),
        ("mysql", "decimal(65,30)", pa.string()),
        ("mysql", "float", pa.float32()),
        ("mysql", "double", pa.float64()),
        ("mysql", "bit(1)", pa.bool_()),
        ("mysql", "bit(12)", pa.uint64()),
        ("mysql", "date", pa.date32()),
        ("mysql", "datetime(6)", pa.timestamp("us")),
        ("mysql", "timestamp(3)", pa.timestamp("us", tz="UTC")),
        ("mysql", "time", pa.duration("us")),
        ("mysql", "year", pa.int16()),
        ("mysql", "enum('a','b)')", pa.string()),
        ("mysql", "set('x','y')", pa.string()),
        ("mysql", "json", pa.string()),
        ("mysql", "longtext", pa.string()),
        ("mysql", "longblob", pa.binary()),
        ("oracle", "NUMBER", pa.string()),
        ("oracle", "NUMBER(10)", pa.int64()),
        ("oracle", "NUMBER(19)", pa.decimal128(19, 0)),
        ("oracle", "NUMBER(12,2)", pa.decimal128(12, 2)),
        ("oracle", "NUMBER(*,2)", pa.decimal128(38, 2)),
        ("oracle", "NUMBER(5,-2)", pa.decimal128(7, 0)),
        ("oracle", "INTEGER", pa.decimal128(38, 0)),
        ("oracle", "BINARY_DOUBLE", pa.float64()),
        ("oracle", "DATE", pa.timestamp("s")),
        ("oracle", "TIMESTAMP(6)", pa.timestamp("us")),
        ("oracle", "TIMESTAMP(9)", pa.timestamp("ns")),
        ("oracle", "TIMESTAMP(6) WITH TIME ZONE", pa.timestamp("us", tz="UTC")),
        ("oracle", "TIMESTAMP WITH LOCAL TIME ZONE", pa.timestamp("us", tz="UTC")),
        ("oracle", "INTERVAL YEAR(2) TO MONTH", pa.month_day_nano_interval()),
        ("oracle", "INTERVAL DAY(2) TO SECOND(6)", pa.duration("us")),
        ("oracle", "VARCHAR2(100)", pa.string()),
        ("oracle", "CLOB", pa.string()),
        ("oracle", "BLOB", pa.binary()),
        ("oracle", "RAW(16)", pa.binary()),
        ("snowflake", "NUMBER(38,0)", pa.decimal128(38, 0)),
        ("snowflake", "NUMBER(10,0)", pa.int64()),
        ("snowflake", "NUMBER(12,4)", pa.decimal128(12, 4)),
        ("snowflake", "INTEGER", pa.decimal128(38, 0)),
        ("snowflake", "FLOAT", pa.float64()),
        ("snowflake", "TIMESTAMP_NTZ(9)", pa.timestamp("ns")),
        ("snowflake", "TIMESTAMP_LTZ(6)", pa.timestamp("us", tz="UTC")),
        ("snowflake", "TIMESTAMP_TZ", pa.timestamp("ns", tz="UTC")),
        ("snowflake", "VARIANT", pa.string()),
        ("snowflake", "BINARY", pa.binary()),
        ("sqlite", "INTEGER", pa.int64()),
        ("sqlite", "BIGINT", pa.int64()),
        ("sqlite", "VARCHAR(10)", pa.string()),
        ("sqlite", "TEXT", pa.string()),
        ("sqlite", "", pa.string()),
        ("sqlite", "BLOB", pa.binary()),
        ("sqlite", "REAL", pa.float64()),
        ("sqlite", "DECIMAL(10,5)", pa.decimal128(10, 5)),
        ("sqlite", "NUMERIC", UNCONSTRAINED_DECIMAL),
        ("sqlite", "BOOLEAN", pa.bool_()),
        ("sqlite", "DATE", pa.date32()),
        ("sqlite", "DATETIME", pa.timestamp("us")),
    ],
)
def test_arrow_type(db_type, source_type, expected):
    assert arrow_type(db_type, source_type) == expected


def test_catalog_precision_and_scale_complete_a_bare_type_name():
    assert arrow_type("sql-server", "decimal", precision=12, scale=3) == pa.decimal128(12, 3)
    # SQL Server reports datetime2's fractional digits as the scale (precision is 27)
    assert arrow_type("sql-server", "datetime2", precision=27, scale=3) == pa.timestamp("us")
    assert arrow_type("postgresql", "numeric", precision=20, scale=5) == pa.decimal128(20, 5)


def test_parse_source_type():
    assert parse_source_type("postgresql", "timestamp(3) with time zone") == SourceType(
        "timestamp with time zone", ("3",)
    )
    assert parse_source_type("sql-server", "NUMERIC(18, 2)") == SourceType("numeric", ("18", "2"))
    assert parse_source_type("postgresql", "_numeric") == SourceType("numeric", (), array=True)
    assert parse_source_type("mysql", "enum('a)','b')").name == "enum"
    assert parse_source_type("sql-server", "varchar(max)").args == ("max",)


def test_unknown_database_type_is_refused():
    with pytest.raises(ValueError, match="unknown database type"):
        arrow_type("db2", "int")


# --- SQL Server -------------------------------------------------------------------------------


def test_datetime2_7_keeps_100_ns_from_every_driver_form():
    expected = epoch_ns("2024-05-06T07:08:09.1234567")
    odbc_struct = struct.pack("<6hI", 2024, 5, 6, 7, 8, 9, 123456700)
    values = [
        "2024-05-06 07:08:09.1234567",  # CONVERT(varchar, col, 121)
        "2024-05-06T07:08:09.1234567",
        odbc_struct,  # a pyodbc output converter's bytes
        None,
    ]
    array = to_arrow("sql-server", "datetime2(7)", values)
    assert array.type == pa.timestamp("ns")
    assert array.cast(pa.int64()).to_pylist() == [expected, expected, expected, None]
    assert expected % 1000 == 700  # the 100 ns digit really is there


def test_datetime2_from_a_python_datetime_keeps_its_microseconds():
    value = datetime(2024, 5, 6, 7, 8, 9, 123456)
    array = to_arrow("sql-server", "datetime2(7)", [value])
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T07:08:09.123456")]


def test_datetime2_7_sentinel_beyond_2262_says_how_to_read_it():
    with pytest.raises(ValueConversionError, match=r"datetime2\(6\)"):
        convert_value("sql-server", "datetime2(7)", "9999-12-31 23:59:59.9999999")
    # as datetime2(6) it is a microsecond timestamp, which reaches year 9999
    array = to_arrow("sql-server", "datetime2(6)", [datetime(9999, 12, 31, 23, 59, 59, 999999)])
    assert array.to_pylist() == [datetime(9999, 12, 31, 23, 59, 59, 999999)]


def test_datetimeoffset_is_the_utc_instant_from_pymssql_pyodbc_and_text():
    expected = epoch_ns("2024-05-06T05:08:09.1234567")
    pyodbc_struct = struct.pack("<6hI2h", 2024, 5, 6, 7, 8, 9, 123456700, 2, 0)
    west = struct.pack("<6hI2h", 2024, 5, 5, 23, 8, 9, 123456700, -6, 0)
    text = "2024-05-06 07:08:09.1234567 +02:00"
    array = to_arrow("sql-server", "datetimeoffset(7)", [pyodbc_struct, west, text])
    assert array.type == pa.timestamp("ns", tz="UTC")
    assert array.cast(pa.int64()).to_pylist() == [expected] * 3
    pymssql_value = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    array = to_arrow("sql-server", "datetimeoffset(7)", [pymssql_value])
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T05:08:09.123456")]


def test_time7_keeps_100_ns():
    expected = (13 * 3600 + 14 * 60 + 15) * NS + 123456700
    raw = struct.pack("<3H2xI", 13, 14, 15, 123456700)  # SQL_SS_TIME2_STRUCT
    array = to_arrow("sql-server", "time(7)", [raw, "13:14:15.1234567", time(13, 14, 15, 123456)])
    assert array.type == pa.time64("ns")
    assert array.cast(pa.int64()).to_pylist() == [expected, expected, expected - 700]


def test_datetime_ticks_round_to_the_millisecond_sql_server_shows():
    values = [
        datetime(2024, 1, 1, 0, 0, 0, 3333),  # .003
        datetime(2024, 1, 1, 0, 0, 0, 6667),  # .007 (Arrow alone would truncate to .006)
        datetime(2024, 1, 1, 0, 0, 0, 990000),
        "2024-01-01 00:00:00.997",
    ]
    array = to_arrow("sql-server", "datetime", values)
    base = epoch_ns("2024-01-01T00:00:00") // 10**6
    assert array.cast(pa.int64()).to_pylist() == [base + 3, base + 7, base + 990, base + 997]


def test_smalldatetime():
    array = to_arrow("sql-server", "smalldatetime", [datetime(2024, 1, 1, 10, 30)])
    assert array.to_pylist() == [datetime(2024, 1, 1, 10, 30)]


def test_money_and_decimal_keep_every_digit():
    money = to_arrow("sql-server", "money", [Decimal("922337203685477.5807"), Decimal("-0.0001")])
    assert money.to_pylist() == [Decimal("922337203685477.5807"), Decimal("-0.0001")]
    small = to_arrow("sql-server", "smallmoney", [Decimal("214748.3647")])
    assert small.to_pylist() == [Decimal("214748.3647")]
    widest = Decimal("12345678901234567890123456789012.345678")
    assert to_arrow("sql-server", "decimal(38,6)", [widest]).to_pylist() == [widest]


def test_uniqueidentifier_becomes_canonical_text():
    value = uuid.UUID("6f9619ff-8b86-d011-b42d-00c04fc964ff")
    array = to_arrow(
        "sql-server",
        "uniqueidentifier",
        [value, "6F9619FF-8B86-D011-B42D-00C04FC964FF", value.bytes_le],
    )
    assert array.to_pylist() == ["6f9619ff-8b86-d011-b42d-00c04fc964ff"] * 3


def test_sql_variant_values_become_text():
    values = [42, Decimal("1.50"), datetime(2024, 1, 2, 3, 4, 5), b"\x01\xab", "x", None]
    array = to_arrow("sql-server", "sql_variant", values)
    assert array.to_pylist() == ["42", "1.50", "2024-01-02T03:04:05", "0x01AB", "x", None]


def test_rowversion_is_unsigned_big_endian():
    values = [
        b"\x00\x00\x00\x00\x00\x00\x07\xd1",
        b"\x7f\xff\xff\xff\xff\xff\xff\xff",
        b"\x80\x00\x00\x00\x00\x00\x00\x00",
        b"\xff" * 8,
    ]
    array = to_arrow("sql-server", "rowversion", values)
    assert array.type == pa.uint64()
    assert array.to_pylist() == [2001, 2**63 - 1, 2**63, 2**64 - 1]
    assert array.to_pylist() == sorted(array.to_pylist())  # byte order is numeric order
    with pytest.raises(ValueConversionError, match="8 bytes"):
        convert_value("sql-server", "rowversion", b"\x01\x02")


def test_tinyint_bit_and_binary_need_no_conversion():
    assert converter("sql-server", "tinyint") is None
    assert converter("sql-server", "bit") is None
    assert converter("sql-server", "varbinary(max)") is None
    assert to_arrow("sql-server", "tinyint", [0, 255]).to_pylist() == [0, 255]
    assert to_arrow("sql-server", "bit", [True, False, None]).to_pylist() == [True, False, None]


# --- PostgreSQL -------------------------------------------------------------------------------


def test_timestamps_keep_microseconds_and_timestamptz_is_utc():
    naive = datetime(2024, 5, 6, 7, 8, 9, 123456)
    aware = datetime(2024, 5, 6, 9, 8, 9, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert to_arrow("postgresql", "timestamp", [naive]).to_pylist() == [naive]
    array = to_arrow("postgresql", "timestamptz", [aware])
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T07:08:09.123456") // 1000]


def test_unconstrained_numeric_is_its_exact_text_whatever_its_size():
    values = [
        Decimal("12345678901234567890123456.0123456789"),
        Decimal("-1E+3"),
        Decimal("0.1"),
        Decimal("0.12345678901"),  # 11 decimals: no decimal(38, 10) holds it
        Decimal("1E+40"),
        Decimal("1E-21"),
        Decimal("123456789012345678901234567890.123456789"),
        Decimal("1.50"),
        Decimal("NaN"),
        "Infinity",
        "-Infinity",
    ]
    assert to_arrow("postgresql", "numeric", values).to_pylist() == [
        "12345678901234567890123456.0123456789",
        "-1000",
        "0.1",
        "0.12345678901",
        "1" + "0" * 40,
        "0." + "0" * 20 + "1",
        "123456789012345678901234567890.123456789",
        "1.50",
        "NaN",
        "Infinity",
        "-Infinity",
    ]
    assert is_exact_number_text("postgresql", "numeric")
    assert is_exact_number_text("mysql", "decimal(65,30)")
    assert not is_exact_number_text("postgresql", "numeric(18,2)")
    assert not is_exact_number_text("postgresql", "text")


def test_wide_numeric_is_exact_text():
    value = Decimal("123456789012345678901234567890123456789012.3456")
    assert to_arrow("postgresql", "numeric(60,4)", [value]).to_pylist() == [str(value)]
    assert convert_value("postgresql", "numeric(60,4)", Decimal("1E+5")) == "100000"


def test_constrained_numeric_refuses_a_value_that_would_be_rounded():
    with pytest.raises(ValueConversionError, match=r"decimal\(12, 2\)"):
        convert_value("postgresql", "numeric(12,2)", Decimal("1.005"))


def test_interval_arrays_json_uuid_bytea_inet():
    assert to_arrow("postgresql", "interval", [timedelta(days=-1, microseconds=1)]).to_pylist() == [
        timedelta(days=-1, microseconds=1)
    ]
    assert to_arrow("postgresql", "integer[]", [[1, None, 3], []]).to_pylist() == [[1, None, 3], []]
    assert to_arrow("postgresql", "numeric(5,2)[]", [[Decimal("1.5")]]).to_pylist() == [
        [Decimal("1.50")]
    ]
    with pytest.raises(ValueConversionError, match="multi-dimensional"):
        convert_value("postgresql", "integer[]", [[1, 2], [3, 4]])
    assert to_arrow("postgresql", "jsonb", [{"a": [1, "é"]}, "[1]"]).to_pylist() == [
        '{"a": [1, "é"]}',
        "[1]",
    ]
    value = uuid.uuid4()
    assert to_arrow("postgresql", "uuid", [value]).to_pylist() == [str(value)]
    assert to_arrow("postgresql", "bytea", [b"\x00\xff"]).to_pylist() == [b"\x00\xff"]
    assert to_arrow("postgresql", "inet", [ipaddress.ip_address("10.0.0.1")]).to_pylist() == [
        "10.0.0.1"
    ]


# --- MySQL ------------------------------------------------------------------------------------


def test_mysql_zero_dates_become_null_and_are_counted():
    report = ConversionReport()
    convert = converter("mysql", "date", report=report)
    values = [convert(v) for v in ["0000-00-00", "2024-00-15", date(2024, 2, 29), None]]
    assert pa.array(values, type=arrow_type("mysql", "date")).to_pylist() == [
        None,
        None,
        date(2024, 2, 29),
        None,
    ]
    convert = converter("mysql", "datetime", report=report)
    stamps = [convert(v) for v in ["0000-00-00 00:00:00", datetime(2024, 1, 1, 0, 0, 0, 1)]]
    assert pa.array(stamps, type=pa.timestamp("us")).to_pylist() == [
        None,
        datetime(2024, 1, 1, 0, 0, 0, 1),
    ]
    assert report.counts == {MYSQL_ZERO_DATE: 3}


def test_mysql_unsigned_bigint_bits_enum_set_time():
    assert to_arrow("mysql", "bigint unsigned", [2**64 - 1, 0]).to_pylist() == [2**64 - 1, 0]
    assert to_arrow("mysql", "bit(1)", [b"\x01", b"\x00"]).to_pylist() == [True, False]
    assert to_arrow("mysql", "bit(12)", [b"\x0f\xff"]).to_pylist() == [4095]
    assert to_arrow("mysql", "enum('a','b')", ["b"]).to_pylist() == ["b"]
    assert to_arrow("mysql", "set('x','y')", [{"y", "x"}, "x"]).to_pylist() == ["x,y", "x"]
    assert to_arrow("mysql", "time", [timedelta(hours=-838, minutes=-59)]).to_pylist() == [
        timedelta(hours=-838, minutes=-59)
    ]


def test_mysql_timestamp_read_in_a_utc_session_is_utc():
    array = to_arrow("mysql", "timestamp(6)", [datetime(2024, 5, 6, 7, 8, 9, 1)])
    assert array.type == pa.timestamp("us", tz="UTC")
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T07:08:09.000001") // 1000]


# --- Oracle, Snowflake, SQLite ----------------------------------------------------------------


def test_oracle_number_from_floats_ints_and_decimals():
    assert to_arrow(
        "oracle", "NUMBER", [0.1, 3, Decimal("2.50"), Decimal("1E+130")]
    ).to_pylist() == [
        "0.1",
        "3",
        "2.50",
        "1" + "0" * 130,
    ]
    assert to_arrow("oracle", "NUMBER(10)", [Decimal("42"), 7, 1.0]).to_pylist() == [42, 7, 1]
    with pytest.raises(ValueConversionError, match="whole number"):
        convert_value("oracle", "NUMBER(10)", Decimal("4.2"))


def test_oracle_date_timestamp9_interval_and_lobs():
    assert to_arrow("oracle", "DATE", [datetime(2024, 1, 2, 3, 4, 5)]).to_pylist() == [
        datetime(2024, 1, 2, 3, 4, 5)
    ]
    array = to_arrow("oracle", "TIMESTAMP(9)", ["2024-05-06T07:08:09.123456789"])
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T07:08:09.123456789")]
    interval_ym = namedtuple("IntervalYM", "years months")  # oracledb.IntervalYM's shape
    array = to_arrow("oracle", "INTERVAL YEAR TO MONTH", [interval_ym(2, 3)])
    assert array.to_pylist() == [pa.MonthDayNano([27, 0, 0])]

    class Lob:
        def __init__(self, data):
            self.data = data

        def read(self):
            return self.data

    assert to_arrow("oracle", "CLOB", [Lob("long text")]).to_pylist() == ["long text"]
    assert to_arrow("oracle", "BLOB", [Lob(b"\x00\x01")]).to_pylist() == [b"\x00\x01"]


def test_snowflake_timestamp_tz_text_keeps_nanoseconds_in_utc():
    array = to_arrow("snowflake", "TIMESTAMP_TZ(9)", ["2024-05-06T07:08:09.123456789-05:00"])
    assert array.cast(pa.int64()).to_pylist() == [epoch_ns("2024-05-06T12:08:09.123456789")]


def test_sqlite_values_follow_the_declared_type():
    assert to_arrow("sqlite", "BOOLEAN", [0, 1, "true"]).to_pylist() == [False, True, True]
    assert to_arrow("sqlite", "DATE", ["2024-02-29"]).to_pylist() == [date(2024, 2, 29)]
    assert to_arrow(
        "sqlite", "DATETIME", ["2024-02-29 10:11:12.5", "2024-02-29T10:11:12"]
    ).to_pylist() == [
        datetime(2024, 2, 29, 10, 11, 12, 500000),
        datetime(2024, 2, 29, 10, 11, 12),
    ]
    assert to_arrow("sqlite", "", [1, "a", b"\x01", 1.5]).to_pylist() == ["1", "a", "0x01", "1.5"]
    assert to_arrow("sqlite", "DECIMAL(10,5)", [1.25, 3]).to_pylist() == [
        Decimal("1.25000"),
        Decimal("3.00000"),
    ]
    with pytest.raises(ValueConversionError, match="BOOLEAN"):
        convert_value("sqlite", "BOOLEAN", 2)


def test_unknown_types_become_text():
    assert arrow_type("postgresql", "tsvector") == pa.string()
    assert to_arrow("postgresql", "tsvector", ["'a':1", [1, 2], b"\xff"]).to_pylist() == [
        "'a':1",
        "[1, 2]",
        "0xFF",
    ]


def test_none_passes_through_every_converter():
    for db_type, source_type in [
        ("sql-server", "datetime2(7)"),
        ("sql-server", "rowversion"),
        ("postgresql", "numeric"),
        ("mysql", "date"),
        ("oracle", "NUMBER(5)"),
    ]:
        assert convert_value(db_type, source_type, None) is None
