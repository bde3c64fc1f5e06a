"""Dates and times in derived columns and filters are strict: an impossible value fails the
expression (or, with TRY_CAST / try_strptime, gives NULL), never rolls over to another value.

Each lenient case below is what DuckDB itself does with the same text (asserted first, so the
test shows what the sandbox prevents), then what FlowForge does.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import pyarrow as pa
import pytest

from flowforge_rules.expressions.strict_time import format_pattern
from flowforge_transform.expressions import ExpressionError, add_derived_columns, apply_filters


def evaluate(expression: str, values: list[object]) -> list[object]:
    table = pa.table({"v": values})
    return add_derived_columns(table, [("out", expression)]).column("out").to_pylist()


# (expression over the text column v, the impossible text, what plain DuckDB makes of it)
LENIENT = [
    ("CAST(v AS TIMESTAMP)", "2024-01-01 24:00:00", dt.datetime(2024, 1, 2)),
    ("v::TIMESTAMP", "2024-12-31T24:00", dt.datetime(2025, 1, 1)),
    ("CAST(v AS DATE)", "24-01-01", dt.date(24, 1, 1)),
    ("CAST(v AS DATE)", "infinity", dt.date(9999, 12, 31)),
    ("CAST(v AS TIMESTAMP)", "2024-01-01 10:00+01", dt.datetime(2024, 1, 1, 10, 0)),
    ("STRPTIME(v, '%Y-%m-%d')", "24-01-01", dt.datetime(24, 1, 1)),
    ("STRPTIME(v, '%d/%m/%Y')", "01/02/24", dt.datetime(24, 2, 1)),
]


@pytest.mark.parametrize(("expression", "text", "duckdb_value"), LENIENT)
def test_duckdb_rolls_it_over_flowforge_refuses_it(
    expression: str, text: str, duckdb_value: object
) -> None:
    plain = duckdb.connect()
    plain.execute("SET TimeZone = 'UTC'")
    plain.register("t", pa.table({"v": [text]}))
    assert plain.sql(f"SELECT {expression} FROM t").fetchall() == [(duckdb_value,)]

    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, [text])
    assert raised.value.stage == "evaluation"
    assert text in raised.value.reason


IMPOSSIBLE = [
    ("CAST(v AS DATE)", "2024-02-30"),  # Feb 30
    ("CAST(v AS DATE)", "2023-04-31"),  # Apr 31
    ("CAST(v AS DATE)", "2023-02-29"),  # not a leap year
    ("CAST(v AS DATE)", "2024-13-01"),  # month 13
    ("CAST(v AS TIMESTAMP)", "2024-01-01 24:00:00"),
    ("CAST(v AS TIMESTAMP)", "2016-12-31 23:59:60"),  # a leap second
    ("CAST(v AS TIMESTAMPTZ)", "2024-01-01 10:00:00+25"),
    ("CAST(v AS TIME)", "24:00:00"),
    ("CAST(v AS TIME)", "12:60"),
    ("CAST(v AS DATE)", "24-1-1"),  # a two-digit year
    ("STRPTIME(v, '%d/%m/%Y')", "30/02/2024"),
    ("STRPTIME(v, '%d/%m/%Y')", "31/04/2024"),
    ("STRPTIME(v, '%d/%m/%Y')", "01/13/2024"),
    ("STRPTIME(v, '%Y-%m-%d %H:%M')", "2024-01-01 24:00"),
    ("STRPTIME(v, '%Y-%m-%d %H:%M:%S')", "2016-12-31 23:59:60"),
    ("STRPTIME(v, '%d/%m/%Y')", "1/1/24"),  # a two-digit year where %Y wants four
    ("STRPTIME(v, '%Y-%m-%d %H:%M %z')", "2024-01-01 10:00 +2500"),
]


@pytest.mark.parametrize(("expression", "text"), IMPOSSIBLE)
def test_impossible_value_fails_the_expression(expression: str, text: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        evaluate(expression, ["2024-01-01" if "TIME)" not in expression else "10:00", text])
    assert raised.value.stage == "evaluation"


@pytest.mark.parametrize(("expression", "text"), IMPOSSIBLE)
def test_try_forms_give_null_for_the_impossible_value_only(expression: str, text: str) -> None:
    tried = expression.replace("CAST(", "TRY_CAST(").replace("STRPTIME(", "TRY_STRPTIME(")
    good = "10:00" if "TIME)" in expression else "2024-01-05"
    if "STRPTIME" in expression:
        good = {"30/02/2024": "05/01/2024", "31/04/2024": "05/01/2024"}.get(text, None)
    values = evaluate(tried, [good, text, None])
    assert values[1:] == [None, None]
    if good is not None:
        assert values[0] is not None


def test_make_timestamp_refuses_hour_24_instead_of_the_next_day() -> None:
    table = pa.table({"h": [23, 24]})
    assert duckdb.sql("SELECT make_timestamp(2024, 1, 1, 24, 0, 0)").fetchall() == [
        (dt.datetime(2024, 1, 2),)
    ]
    with pytest.raises(ExpressionError, match="hours 0-23"):
        add_derived_columns(table, [("at", "make_timestamp(2024, 1, 1, h, 0, 0)")])
    ok = add_derived_columns(table.slice(0, 1), [("at", "make_timestamp(2024, 1, 1, h, 30, 0)")])
    assert ok.column("at").to_pylist() == [dt.datetime(2024, 1, 1, 23, 30)]


VALID = [
    ("CAST(v AS DATE)", "2024-02-29", dt.date(2024, 2, 29)),
    ("CAST(v AS DATE)", " 2024-1-5 ", dt.date(2024, 1, 5)),
    ("CAST(v AS DATE)", "2024/01/05", dt.date(2024, 1, 5)),
    (
        "CAST(v AS TIMESTAMP)",
        "2024-01-05T23:59:59.123456",
        dt.datetime(2024, 1, 5, 23, 59, 59, 123456),
    ),
    ("CAST(v AS TIMESTAMP)", "2024-01-05", dt.datetime(2024, 1, 5)),
    ("CAST(v AS TIME)", "23:59", dt.time(23, 59)),
    ("STRPTIME(v, '%d/%m/%Y')", "5/1/2024", dt.datetime(2024, 1, 5)),
    ("STRPTIME(v, '%d/%m/%y')", "05/01/24", dt.datetime(2024, 1, 5)),
    (
        "STRPTIME(v, '%d %b %Y %H:%M:%S.%f')",
        "05 Jan 2024 10:00:00.5",
        dt.datetime(2024, 1, 5, 10, 0, 0, 500000),
    ),
]


@pytest.mark.parametrize(("expression", "text", "expected"), VALID)
def test_real_values_still_parse(expression: str, text: str, expected: object) -> None:
    assert evaluate(expression, [text, None]) == [expected, None]


def test_offsets_apply_when_cast_to_timestamptz() -> None:
    [value] = evaluate("CAST(v AS TIMESTAMPTZ)", ["2024-01-01 10:00:00+01:00"])
    assert value == dt.datetime(2024, 1, 1, 9, 0, tzinfo=dt.UTC)


def test_values_that_are_not_text_cast_as_before() -> None:
    table = pa.table({"d": [dt.date(2024, 1, 5)], "ts": [dt.datetime(2024, 1, 5, 13, 45)]})
    out = add_derived_columns(
        table, [("a", "CAST(d AS TIMESTAMP)"), ("b", "CAST(ts AS DATE)"), ("c", "CAST(ts AS TIME)")]
    )
    assert out.column("a").to_pylist() == [dt.datetime(2024, 1, 5)]
    assert out.column("b").to_pylist() == [dt.date(2024, 1, 5)]
    assert out.column("c").to_pylist() == [dt.time(13, 45)]


def test_nested_casts_are_each_strict() -> None:
    with pytest.raises(ExpressionError, match="24:00"):
        evaluate("CAST(CAST(v AS TIMESTAMP) AS DATE)", ["2024-01-01 24:00"])


def test_filters_are_strict_too() -> None:
    table = pa.table({"v": ["2024-01-01 23:00", "2024-01-01 24:00"]})
    with pytest.raises(ExpressionError, match="24:00"):
        apply_filters(table, ["CAST(v AS TIMESTAMP) >= TIMESTAMP '2024-01-02'"])


def test_strptime_format_must_be_written_as_text() -> None:
    with pytest.raises(ExpressionError, match="format of strptime must be written as text"):
        evaluate("STRPTIME(v, v)", ["2024-01-01"])


def test_internal_macros_cannot_be_called_by_name() -> None:
    with pytest.raises(ExpressionError, match="function ff_cast_date is not allowed"):
        evaluate("ff_cast_date(v)", ["2024-01-01"])


def test_format_pattern() -> None:
    assert format_pattern("%d/%m/%Y") == (
        "[[:space:]]*[0-9]{1,2}[/][0-9]{1,2}[/][0-9]{4}[[:space:]]*"
    )
    assert "[0-9]{2}" in format_pattern("%y") and "%" in format_pattern("100%%")
