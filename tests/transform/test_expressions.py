"""The SQL expression sandbox: what is allowed evaluates exactly as DuckDB would, the rest is
refused before DuckDB sees it, and the DuckDB it runs in is locked down on its own."""

from __future__ import annotations

import datetime as dt
import pickle
from decimal import Decimal

import duckdb
import pyarrow as pa
import pytest

from flowforge_rules.expressions.checker import MAX_NESTING, compile_expression
from flowforge_transform.expressions import (
    ExpressionError,
    add_derived_columns,
    apply_filters,
    check_expression,
    referenced_columns,
)
from flowforge_transform.expressions.sandbox import RELATION, _sandbox, verify_with_duckdb


def customers() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, 3, 4], pa.int64()),
            "first_name": ["Ada", "Grace", "Alan", None],
            "last_name": ["Lovelace", "Hopper", "Turing", "Nobody"],
            "email": ["  Ada@Example.COM ", "grace@navy.mil", None, "x@y.z"],
            "balance": pa.array([20000.0, 10000.0, -5.0, None], pa.float64()),
            "amount": ["12.5", "7", "0.25", "3"],
            "phone": ["+1 (555) 010-9999", "555.123.4567", "n/a", None],
            "status": ["active", "active", "active", "closed"],
            "account_open_date": pa.array(
                [dt.date(2020, 1, 31), dt.date(2023, 12, 25), dt.date(2024, 2, 29), None]
            ),
        }
    )


def derived(expression: str, table: pa.Table | None = None) -> list[object]:
    result = add_derived_columns(customers() if table is None else table, [("out", expression)])
    return result.column("out").to_pylist()


# ---- the examples from the job templates ----------------------------------------------------


def test_concat_joins_names_as_duckdb_does_with_null_as_empty() -> None:
    assert derived("CONCAT(first_name, ' ', last_name)") == [
        "Ada Lovelace",
        "Grace Hopper",
        "Alan Turing",
        " Nobody",
    ]


def test_datediff_days_against_a_fixed_date() -> None:
    until = dt.date(2024, 3, 1)
    expected = [(until - d).days for d in (dt.date(2020, 1, 31), dt.date(2023, 12, 25))]
    expected += [1, None]
    assert derived("DATEDIFF('day', account_open_date, DATE '2024-03-01')") == expected
    assert expected[:2] == [1491, 67]


def test_datediff_against_current_date_uses_todays_utc_date() -> None:
    opened = [dt.date(2020, 1, 31), dt.date(2023, 12, 25), dt.date(2024, 2, 29)]
    before = dt.datetime.now(dt.UTC).date()
    values = derived("DATEDIFF('day', account_open_date, CURRENT_DATE)")
    after = dt.datetime.now(dt.UTC).date()
    # Two candidates only if the test straddles midnight UTC.
    assert values in ([(day - d).days for d in opened] + [None] for day in {before, after})


def test_current_date_is_one_date_per_row() -> None:
    before = dt.datetime.now(dt.UTC).date()
    values = derived("CURRENT_DATE")
    assert len(values) == 4 and len(set(values)) == 1
    assert values[0] in {before, dt.datetime.now(dt.UTC).date()}


def test_lower_trim_email() -> None:
    assert derived("LOWER(TRIM(email))") == ["ada@example.com", "grace@navy.mil", None, "x@y.z"]


def test_case_when_balance_band() -> None:
    expression = "CASE WHEN balance > 10000 THEN 'high' ELSE 'low' END"
    assert derived(expression) == ["high", "low", "low", "low"]


def test_cast_amount_to_decimal() -> None:
    table = add_derived_columns(customers(), [("out", "CAST(amount AS DECIMAL(18,2))")])
    assert table.schema.field("out").type == pa.decimal128(18, 2)
    assert table.column("out").to_pylist() == [
        Decimal("12.50"),
        Decimal("7.00"),
        Decimal("0.25"),
        Decimal("3.00"),
    ]


def test_regexp_replace_keeps_digits() -> None:
    assert derived("REGEXP_REPLACE(phone, '[^0-9]', '', 'g')") == [
        "15550109999",
        "5551234567",
        "",
        None,
    ]


def test_filter_status_and_balance_keeps_matching_rows_in_order() -> None:
    kept = apply_filters(customers(), ["status = 'active' AND balance >= 0"])
    assert kept.column("id").to_pylist() == [1, 2]
    assert kept.schema == customers().schema


# ---- the rest of the allowlist, with concrete values -----------------------------------------

ONE_ROW = pa.table(
    {
        "s": ["Hello, World"],
        "n": pa.array([7], pa.int64()),
        "x": [-2.5],
        "d": pa.array([dt.date(2024, 1, 15)]),
        "ts": pa.array([dt.datetime(2024, 1, 15, 13, 45, 30)]),
        "nothing": pa.array([None], pa.string()),
    }
)

VALUES = [
    ("n IN (1, 7, 9)", True),
    ("n NOT IN (1, 2)", True),
    ("n BETWEEN 5 AND 7", True),
    ("nothing IS NULL", True),
    ("s IS NOT NULL", True),
    ("s LIKE 'Hello%'", True),
    ("s ILIKE 'hello%'", True),
    ("s NOT LIKE '%x%'", True),
    ("TRY_CAST(s AS INTEGER)", None),
    ("COALESCE(nothing, 'fallback')", "fallback"),
    ("NULLIF(n, 7)", None),
    ("UPPER(s)", "HELLO, WORLD"),
    ("LTRIM('  a ')", "a "),
    ("RTRIM('  a ')", "  a"),
    ("SUBSTRING(s, 1, 5)", "Hello"),
    ("LENGTH(s)", 12),
    ("REPLACE(s, 'World', 'There')", "Hello, There"),
    ("REGEXP_MATCHES(s, 'W.r')", True),
    ("LPAD(CAST(n AS VARCHAR), 3, '0')", "007"),
    ("RPAD('ab', 4, '*')", "ab**"),
    ("LEFT(s, 2)", "He"),
    ("RIGHT(s, 5)", "World"),
    ("SPLIT_PART(s, ', ', 2)", "World"),
    ("STRPOS(s, 'World')", 8),
    ("s || '!'", "Hello, World!"),
    ("DATE_DIFF('month', d, DATE '2024-06-01')", 5),
    ("DATE_TRUNC('month', d)", dt.datetime(2024, 1, 1)),
    ("DATE_PART('year', d)", 2024),
    ("EXTRACT(month FROM d)", 1),
    ("YEAR(d)", 2024),
    ("MONTH(d)", 1),
    ("DAY(d)", 15),
    ("HOUR(ts)", 13),
    ("STRFTIME(ts, '%d/%m/%Y %H:%M')", "15/01/2024 13:45"),
    ("STRPTIME('02/03/2024', '%d/%m/%Y')", dt.datetime(2024, 3, 2)),
    ("d + INTERVAL 3 DAY", dt.datetime(2024, 1, 18)),
    ("CAST(ts AS DATE)", dt.date(2024, 1, 15)),
    ("ROUND(x)", -3.0),
    ("ROUND(1234.5678, 2)", Decimal("1234.57")),
    ("FLOOR(x)", -3.0),
    ("CEIL(x)", -2.0),
    ("ABS(x)", 2.5),
    ("SIGN(x)", -1),
    ("GREATEST(n, 3, 11)", 11),
    ("LEAST(n, 3, 11)", 3),
    ("MOD(n, 4)", 3),
    ("n % 4", 3),
    ("POWER(2, 10)", 1024.0),
    ("SQRT(16)", 4.0),
    ("n / 2", 3.5),
    ("n // 2", 3),
    ("-n", -7),
    ("NOT (n > 1)", False),
    ("n > 1 OR nothing = 'x'", True),
    ("IF(n > 5, 'big', 'small')", "big"),
    ("CASE n WHEN 7 THEN 'seven' ELSE 'other' END", "seven"),
    ("TRUE", True),
    ("NULL", None),
]


@pytest.mark.parametrize(("expression", "expected"), VALUES)
def test_allowed_expression_evaluates(expression: str, expected: object) -> None:
    assert derived(expression, ONE_ROW) == [expected]


@pytest.fixture(scope="module")
def reference() -> duckdb.DuckDBPyConnection:
    # Trusted text in a plain DuckDB is the reference: the re-rendering must not change meaning.
    connection = duckdb.connect()
    connection.execute("SET TimeZone = 'UTC'")
    connection.register("t", ONE_ROW)
    return connection


@pytest.mark.parametrize(("expression", "_expected"), VALUES)
def test_same_value_and_type_as_duckdb_running_the_text_as_written(
    reference: duckdb.DuckDBPyConnection, expression: str, _expected: object
) -> None:
    expected = reference.sql(f"SELECT {expression} FROM t").to_arrow_table().column(0)
    ours = add_derived_columns(ONE_ROW, [("out", expression)]).column("out")
    assert ours.type == expected.type
    assert ours.to_pylist() == expected.to_pylist()


# ---- refused at check time -------------------------------------------------------------------

ATTACKS = [
    ("read_csv('/etc/passwd')", "function read_csv is not allowed"),
    ("read_text('/etc/passwd')", "function read_text is not allowed"),
    ("(SELECT 1)", "subqueries"),
    ("getenv('HOME')", "function getenv is not allowed"),
    ("status; DROP TABLE customers", "without ';'"),
    ("status;", "without ';'"),
    ("PRAGMA version", "SQL statement"),
    ("COPY t TO '/tmp/out.csv'", "SQL statement"),
    ("ATTACH '/tmp/x.db' AS x", "SQL statement"),
    ("INSTALL httpfs", "SQL statement"),
    ("SET enable_external_access = true", "SQL statement"),
    ("CAST(read_parquet('/data/x.parquet') AS VARCHAR)", "function read_parquet is not allowed"),
    ('"col" FROM x', "not valid SQL"),
    ("SELECT email FROM customers", "query"),
    ("list_transform(tags, x -> x || 'a')", "function list_transform is not allowed"),
    ("row_number() OVER (ORDER BY id)", "window functions"),
    ("current_setting('home_directory')", "function current_setting is not allowed"),
    ("glob('/etc/*')", "function glob is not allowed"),
    ("query_table('customers')", "function query_table is not allowed"),
    ("query('SELECT 1')", "function query is not allowed"),
    ("customers.email", "qualified column"),
    ("main.lower(email)", "qualified names"),
    ("*", "* (all columns)"),
    ("sum(balance)", "aggregate function sum"),
    ("count(*)", "aggregate function count"),
    ("email IN (SELECT email FROM read_csv('/etc/passwd'))", "IN takes a list"),
    ("EXISTS (SELECT 1)", "subqueries"),
    ("COALESCE(email, getenv('HOME'))", "function getenv is not allowed"),
    ("random()", "rerun"),
    ("$1", "query parameters"),
    ("tags[1]", "subscripts"),
    ("CAST(email AS BLOB)", "CAST to BLOB"),
    ("TRY_CAST(email AS INT[])", "CAST to INT[]"),
    ("LPAD(email, 1000000000, 'x')", "LPAD/RPAD length"),
    ("email COLLATE nocase", "COLLATE"),
    ("LOWER(email) AS e", "AS (or a name after the expression) is not allowed"),
    ("email IN ()", "IN takes a list"),
    ("E'\\x41'", "special string literals"),
    ("typeof(email)", "function typeof is not allowed"),
    ("'a\\' || getenv('HOME') || '\\b'", "function getenv is not allowed"),
    ("", "empty"),
]


@pytest.mark.parametrize(("attack", "reason"), ATTACKS)
def test_attack_is_refused_at_check_time(attack: str, reason: str) -> None:
    with pytest.raises(ExpressionError) as raised:
        check_expression(attack)
    assert reason in raised.value.reason
    assert raised.value.expression == attack
    assert raised.value.stage == "check"
    assert str(raised.value).startswith(f'expression "{attack}" refused: ')


def test_message_reads_like_the_brief() -> None:
    with pytest.raises(ExpressionError) as raised:
        check_expression("read_csv('/etc/passwd')")
    assert str(raised.value) == (
        "expression \"read_csv('/etc/passwd')\" refused: function read_csv is not allowed"
    )


def test_attack_is_refused_before_evaluation_too(tmp_path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\ncanary-7f3a\n")
    for attack in (f"read_csv('{secret}')", f"(SELECT * FROM '{secret}')"):
        with pytest.raises(ExpressionError, match="not allowed"):
            add_derived_columns(customers(), [("out", attack)])
        with pytest.raises(ExpressionError, match="not allowed"):
            apply_filters(customers(), [attack])


def test_comments_never_reach_duckdb() -> None:
    compiled = compile_expression("email -- */ , getenv('HOME') /*", ["email"])
    assert compiled.sql == '"c0"'
    assert derived("id /* a comment */ + 1") == [2, 3, 4, 5]


def test_deep_nesting_is_refused_with_a_limit() -> None:
    expression = "UPPER(" * (MAX_NESTING + 1) + "email" + ")" * (MAX_NESTING + 1)
    with pytest.raises(ExpressionError, match=f"more than {MAX_NESTING} levels"):
        check_expression(expression)
    ok = "UPPER(" * MAX_NESTING + "email" + ")" * MAX_NESTING
    assert derived(ok)[1] == "GRACE@NAVY.MIL"


# ---- the second and third layers on their own ------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        (f"SELECT getenv('HOME') FROM {RELATION}", "function getenv"),
        (f"SELECT (SELECT 1) FROM {RELATION}", "subquery"),
        ("SELECT lower(c0) FROM other_table", "one expression"),
        (f"SELECT c0 FROM {RELATION} WHERE c0 > 1", "one expression"),
        (f"SELECT c0 FROM {RELATION}; SELECT 1", "one expression"),
        (f"SELECT c1 FROM {RELATION}", "column c1"),
        (f"SELECT CAST(c0 AS INT[]) FROM {RELATION}", "cast to"),
        (f"SELECT main.lower(c0) FROM {RELATION}", "function lower"),
    ],
)
def test_duckdb_parse_check_refuses_what_sqlglot_might_miss(sql: str, reason: str) -> None:
    with _sandbox() as connection, pytest.raises(ExpressionError) as raised:
        verify_with_duckdb(connection, sql, "user text", {"c0"})
    assert reason in raised.value.reason
    assert raised.value.expression == "user text"


def test_sandbox_connection_has_no_file_access_and_is_locked(tmp_path) -> None:
    secret = tmp_path / "secret.csv"
    secret.write_text("token\ncanary-7f3a\n")
    with _sandbox() as connection:
        with pytest.raises(duckdb.Error, match="disabled by configuration"):
            connection.execute(f"SELECT * FROM read_csv('{secret}')").fetchall()
        with pytest.raises(duckdb.Error, match="locked"):
            connection.execute("SET enable_external_access = true")
        with pytest.raises(duckdb.Error, match="locked"):
            connection.execute("SET autoload_known_extensions = true")


# ---- columns ---------------------------------------------------------------------------------


def test_unknown_columns_are_named_with_a_hint() -> None:
    with pytest.raises(ExpressionError) as raised:
        check_expression("CONCAT(frist_name, ' ', Last_Name, ' ', zzz)", customers().column_names)
    reason = raised.value.reason
    assert "frist_name (did you mean first_name?)" in reason
    assert "Last_Name (did you mean last_name?)" in reason
    assert "zzz" in reason
    assert "unknown columns" in reason


def test_unknown_column_refused_at_run_time_before_duckdb() -> None:
    with pytest.raises(ExpressionError, match="unknown column nope"):
        apply_filters(customers(), ["nope > 1"])


def test_columns_match_case_and_spelling_exactly() -> None:
    # DuckDB itself binds "A" to a column a; the sandbox must read the column named exactly.
    table = pa.table({"a": [1, 2], "A": [10, 20], "first name": [" x", "y"]})
    result = add_derived_columns(
        table, [("lower_a", "a + 1"), ("upper_a", '"A" + 1'), ("name", 'TRIM("first name")')]
    )
    assert result.column("lower_a").to_pylist() == [2, 3]
    assert result.column("upper_a").to_pylist() == [11, 21]
    assert result.column("name").to_pylist() == ["x", "y"]


def test_referenced_columns() -> None:
    expression = "CONCAT(first_name, ' ', \"Last Name\") || CAST(CURRENT_DATE AS VARCHAR)"
    assert referenced_columns(expression) == {"first_name", "Last Name"}
    assert referenced_columns("DATEDIFF('day', d, CURRENT_DATE) > 3 AND d IS NOT NULL") == {"d"}
    with pytest.raises(ExpressionError):
        referenced_columns("getenv('HOME')")


def test_check_without_columns_accepts_any_column_name() -> None:
    check_expression("LOWER(TRIM(whatever_column))")
    check_expression("LOWER(TRIM(whatever_column))", ["whatever_column"])


# ---- derived columns -------------------------------------------------------------------------


def test_derived_column_replaces_existing_one_in_place() -> None:
    table = customers()
    result = add_derived_columns(table, [("email", "LOWER(TRIM(email))")])
    assert result.column_names == table.column_names
    assert result.column("email").to_pylist()[0] == "ada@example.com"


def test_derived_columns_can_read_earlier_ones_in_order() -> None:
    result = add_derived_columns(
        customers(),
        [
            ("full_name", "CONCAT(first_name, ' ', last_name)"),
            ("shout", "UPPER(full_name)"),
            ("shout_len", "LENGTH(shout)"),
        ],
    )
    assert result.column_names[-3:] == ["full_name", "shout", "shout_len"]
    assert result.column("shout").to_pylist()[0] == "ADA LOVELACE"
    assert result.column("shout_len").to_pylist() == [12, 12, 11, 7]


def test_derived_column_cannot_read_a_later_one() -> None:
    with pytest.raises(ExpressionError, match="unknown column later"):
        add_derived_columns(customers(), [("first", "UPPER(later)"), ("later", "email")])


def test_other_columns_keep_their_exact_types() -> None:
    table = pa.table(
        {
            "name": pa.array(["a", "b"], pa.large_string()),
            "kind": pa.array(["x", "y"]).dictionary_encode(),
            "at": pa.array([0, 1], pa.timestamp("ns", tz="Europe/Paris")),
        }
    )
    result = add_derived_columns(table, [("upper", "UPPER(name)")])
    assert result.select(["name", "kind", "at"]).equals(table)
    assert result.column("upper").to_pylist() == ["A", "B"]


def test_row_order_is_kept_on_a_large_table() -> None:
    size = 300_000
    table = pa.table({"id": pa.array(range(size), pa.int64())})
    result = add_derived_columns(table, [("twice", "id * 2")])
    assert result.column("twice").to_pylist() == [2 * i for i in range(size)]
    kept = apply_filters(result, ["id % 3 = 0"])
    assert kept.column("id").to_pylist() == list(range(0, size, 3))


def test_empty_table() -> None:
    table = customers().slice(0, 0)
    assert add_derived_columns(table, [("x", "UPPER(email)")]).num_rows == 0
    assert apply_filters(table, ["balance > 0"]).num_rows == 0


def test_runtime_cast_failure_names_expression_and_duckdb_message() -> None:
    with pytest.raises(ExpressionError) as raised:
        add_derived_columns(customers(), [("n", "CAST(phone AS INTEGER)")])
    error = raised.value
    assert error.stage == "evaluation"
    assert error.expression == "CAST(phone AS INTEGER)"
    assert "Conversion Error" in error.reason and "+1 (555) 010-9999" in error.reason
    assert str(error).startswith('expression "CAST(phone AS INTEGER)" failed: ')


# ---- filters ---------------------------------------------------------------------------------


def test_filter_null_counts_as_not_true() -> None:
    assert apply_filters(customers(), ["balance > 0"]).column("id").to_pylist() == [1, 2]
    assert apply_filters(customers(), ["NULL"]).num_rows == 0


def test_filters_apply_in_turn_so_later_ones_see_only_kept_rows() -> None:
    table = pa.table({"code": ["12", "abc", "7"]})
    kept = apply_filters(table, ["REGEXP_FULL_MATCH(code, '[0-9]+')", "CAST(code AS INT) > 10"])
    assert kept.column("code").to_pylist() == ["12"]


def test_filter_must_be_a_condition() -> None:
    with pytest.raises(ExpressionError, match="must be a condition") as raised:
        apply_filters(customers(), ["balance + 1"])
    assert raised.value.stage == "evaluation"


def test_no_filters_and_no_derived_columns_return_the_table() -> None:
    table = customers()
    assert apply_filters(table, []) is table
    assert add_derived_columns(table, []) is table


# ---- the error -------------------------------------------------------------------------------


def test_expression_error_pickles_round_trip() -> None:
    for error in (
        ExpressionError("getenv('HOME')", "function getenv is not allowed"),
        ExpressionError("CAST(a AS INT)", "Conversion Error: ...", stage="evaluation"),
    ):
        restored = pickle.loads(pickle.dumps(error))
        assert type(restored) is ExpressionError
        assert isinstance(restored, ValueError)
        assert (restored.expression, restored.reason, restored.stage) == (
            error.expression,
            error.reason,
            error.stage,
        )
        assert str(restored) == str(error)
        assert restored.terminal is True
