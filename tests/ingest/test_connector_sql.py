"""connectors/sql.py: the exact statements each read mode sends, per dialect and driver, the
read-only query check (flowforge_rules.read_only_query), and (SQLite in memory, the test PostgreSQL) plans actually run."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime, timedelta

import pytest

from flowforge_ingest.connectors.sql import (
    PlanError,
    ReadPlan,
    plan_max,
    plan_preview,
    plan_read,
    quote_identifier,
    read_only_session_sql,
)
from flowforge_ingest.connectors.watermark import Watermark
from flowforge_rules.read_only_query import QueryRefused, check_read_only_query

# --- table mode -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "driver", "expected"),
    [
        ("sql-server", "pymssql", "SELECT * FROM [dbo].[Customers]"),
        ("sql-server", "pyodbc", "SELECT * FROM [dbo].[Customers]"),
        ("postgresql", None, 'SELECT * FROM "dbo"."Customers"'),
        ("mysql", None, "SELECT * FROM `dbo`.`Customers`"),
        ("oracle", None, 'SELECT * FROM "dbo"."Customers"'),
        ("snowflake", None, 'SELECT * FROM "dbo"."Customers"'),
        ("sqlite", None, 'SELECT * FROM "dbo"."Customers"'),
    ],
)
def test_full_table_read_binds_nothing(db_type, driver, expected):
    plan = plan_read(db_type, schema="dbo", table="Customers", driver=driver)
    assert plan.sql == expected
    assert plan.params is None
    assert plan.execute_args() == (expected,)


def test_table_without_schema_is_just_the_quoted_name():
    assert plan_read("sqlite", schema=None, table="t").sql == 'SELECT * FROM "t"'


@pytest.mark.parametrize(
    ("db_type", "driver", "sql", "params"),
    [
        (
            "sql-server",
            "pymssql",
            "SELECT * FROM [dbo].[Customers] WHERE [modified_date] > %(lower)s "
            "AND [modified_date] <= %(upper)s",
            {"lower": 10, "upper": 20},
        ),
        (
            "sql-server",
            "pyodbc",
            "SELECT * FROM [dbo].[Customers] WHERE [modified_date] > ? AND [modified_date] <= ?",
            (10, 20),
        ),
        (
            "postgresql",
            "psycopg",
            'SELECT * FROM "dbo"."Customers" WHERE "modified_date" > %(lower)s '
            'AND "modified_date" <= %(upper)s',
            {"lower": 10, "upper": 20},
        ),
        (
            "mysql",
            "pymysql",
            "SELECT * FROM `dbo`.`Customers` WHERE `modified_date` > %(lower)s "
            "AND `modified_date` <= %(upper)s",
            {"lower": 10, "upper": 20},
        ),
        (
            "oracle",
            "oracledb",
            'SELECT * FROM "dbo"."Customers" WHERE "modified_date" > :lower '
            'AND "modified_date" <= :upper',
            {"lower": 10, "upper": 20},
        ),
        (
            "snowflake",
            "snowflake",
            'SELECT * FROM "dbo"."Customers" WHERE "modified_date" > %(lower)s '
            'AND "modified_date" <= %(upper)s',
            {"lower": 10, "upper": 20},
        ),
        (
            "sqlite",
            "sqlite3",
            'SELECT * FROM "dbo"."Customers" WHERE "modified_date" > :lower '
            'AND "modified_date" <= :upper',
            {"lower": 10, "upper": 20},
        ),
    ],
)
def test_incremental_table_read_per_dialect_and_driver(db_type, driver, sql, params):
    plan = plan_read(
        db_type,
        schema="dbo",
        table="Customers",
        delta_column="modified_date",
        lower=10,
        upper=20,
        driver=driver,
    )
    assert plan == ReadPlan(sql, params, plan.paramstyle, ("lower", "upper"))
    assert plan.bound == {"lower": 10, "upper": 20}


def test_pyodbc_gives_the_values_in_placeholder_order():
    plan = plan_read(
        "sql-server",
        schema="dbo",
        table="t",
        delta_column="d",
        lower=1,
        upper=2,
        driver="pyodbc",
    )
    assert plan.paramstyle == "qmark"
    assert plan.params == (1, 2)
    assert plan.names == ("lower", "upper")
    assert plan.execute_args() == (plan.sql, (1, 2))


def test_include_lower_uses_greater_or_equal():
    plan = plan_read(
        "postgresql", schema="s", table="t", delta_column="d", lower=1, upper=2, include_lower=True
    )
    assert plan.sql == 'SELECT * FROM "s"."t" WHERE "d" >= %(lower)s AND "d" <= %(upper)s'


def test_first_run_has_no_lower_bound_and_reads_null_deltas_once():
    plan = plan_read("sql-server", schema="dbo", table="t", delta_column="d", upper=5)
    assert plan.sql == "SELECT * FROM [dbo].[t] WHERE [d] <= %(upper)s OR [d] IS NULL"
    assert plan.params == {"upper": 5}


def test_lower_bound_alone():
    plan = plan_read("mysql", schema="s", table="t", delta_column="d", lower=5)
    assert plan.sql == "SELECT * FROM `s`.`t` WHERE `d` > %(lower)s"


def test_order_by_delta_then_unique_key():
    plan = plan_read(
        "sql-server",
        schema="dbo",
        table="t",
        delta_column="d",
        lower=1,
        upper=2,
        unique_key=["id", "line no"],
        order=True,
    )
    assert plan.sql == (
        "SELECT * FROM [dbo].[t] WHERE [d] > %(lower)s AND [d] <= %(upper)s "
        "ORDER BY [d], [id], [line no]"
    )


def test_watermarks_bound_as_text_and_cast_to_datetime2_keep_100_ns():
    lower = Watermark("modified_date", "timestamp", "2024-05-06T07:08:09.1234567")
    upper = Watermark("modified_date", "timestamp", "2024-05-07T00:00:00.0000001")
    for driver, placeholder in (("pymssql", "%(lower)s"), ("pyodbc", "?")):
        plan = plan_read(
            "sql-server",
            schema="dbo",
            table="Customers",
            delta_column="modified_date",
            lower=lower,
            upper=upper,
            delta_type="datetime2(7)",
            driver=driver,
        )
        upper_placeholder = placeholder.replace("lower", "upper")
        assert plan.sql == (
            f"SELECT * FROM [dbo].[Customers] WHERE [modified_date] > CAST({placeholder} AS "
            f"datetime2(7)) AND [modified_date] <= CAST({upper_placeholder} AS datetime2(7))"
        )
        assert plan.bound == {
            "lower": "2024-05-06T07:08:09.1234567",
            "upper": "2024-05-07T00:00:00.0000001",
        }


def test_datetimeoffset_bounds_are_utc_text_cast_to_datetimeoffset():
    lower = Watermark("d", "timestamptz", "2024-05-06T09:08:09.1234567+02:00")
    plan = plan_read(
        "sql-server",
        schema="dbo",
        table="t",
        delta_column="d",
        lower=lower,
        upper=lower,
        delta_type="datetimeoffset(7)",
    )
    assert plan.sql == (
        "SELECT * FROM [dbo].[t] WHERE [d] > CAST(%(lower)s AS datetimeoffset(7)) "
        "AND [d] <= CAST(%(upper)s AS datetimeoffset(7))"
    )
    assert plan.bound["lower"] == "2024-05-06T07:08:09.1234567+00:00"


def test_oracle_and_snowflake_nanosecond_bounds_are_converted_in_the_database():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.123456789")
    oracle = plan_read(
        "oracle", schema="S", table="T", delta_column="D", lower=mark, delta_type="TIMESTAMP(9)"
    )
    assert oracle.sql == (
        'SELECT * FROM "S"."T" WHERE "D" > TO_TIMESTAMP(:lower, \'YYYY-MM-DD"T"HH24:MI:SS.FF9\')'
    )
    assert oracle.params == {"lower": "2024-05-06T07:08:09.123456789"}
    snowflake = plan_read(
        "snowflake",
        schema="S",
        table="T",
        delta_column="D",
        lower=mark,
        delta_type="TIMESTAMP_NTZ(9)",
    )
    assert snowflake.sql == 'SELECT * FROM "S"."T" WHERE "D" > CAST(%(lower)s AS TIMESTAMP_NTZ(9))'


def test_postgresql_watermark_bounds_are_datetimes():
    mark = Watermark("d", "timestamptz", "2024-05-06T07:08:09.123456Z")
    plan = plan_read(
        "postgresql",
        schema="s",
        table="t",
        delta_column="d",
        lower=mark,
        delta_type="timestamptz",
    )
    assert plan.sql == 'SELECT * FROM "s"."t" WHERE "d" > %(lower)s'
    assert plan.params == {"lower": datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)}


# --- quoting ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "name", "quoted"),
    [
        ("sql-server", "Order]Lines", "[Order]]Lines]"),
        ("sql-server", "a; DROP TABLE x--", "[a; DROP TABLE x--]"),
        ("sql-server", 'say "hi"', '[say "hi"]'),
        ("sql-server", "Ünïcødé 名前", "[Ünïcødé 名前]"),
        ("postgresql", 'say "hi"', '"say ""hi"""'),
        ("postgresql", "with space", '"with space"'),
        ("postgresql", "x]y", '"x]y"'),
        ("mysql", "back`tick", "`back``tick`"),
        ("mysql", "semi;colon", "`semi;colon`"),
        ("snowflake", 'q"uote', '"q""uote"'),
        ("sqlite", 'q"uote', '"q""uote"'),
        ("oracle", "Mixed Case", '"Mixed Case"'),
        ("oracle", "lower", '"lower"'),
    ],
)
def test_identifiers_are_always_quoted_and_escaped(db_type, name, quoted):
    assert quote_identifier(db_type, name) == quoted


@pytest.mark.parametrize(
    ("db_type", "name"), [("oracle", 'a"b'), ("postgresql", ""), ("sql-server", "a\x00b")]
)
def test_impossible_identifiers_are_refused(db_type, name):
    with pytest.raises(PlanError):
        quote_identifier(db_type, name)


def test_percent_in_a_name_is_doubled_only_for_drivers_that_format_with_it():
    def sql(db_type, driver, **bounds):
        return plan_read(
            db_type, schema="s", table="50%", delta_column="d", driver=driver, **bounds
        ).sql

    assert sql("postgresql", "psycopg", lower=1) == 'SELECT * FROM "s"."50%%" WHERE "d" > %(lower)s'
    assert sql("mysql", "pymysql", lower=1) == "SELECT * FROM `s`.`50%%` WHERE `d` > %(lower)s"
    assert sql("sql-server", "pymssql", lower=1) == (
        "SELECT * FROM [s].[50%] WHERE [d] > %(lower)s"
    )
    assert sql("sql-server", "pyodbc", lower=1) == "SELECT * FROM [s].[50%] WHERE [d] > ?"
    # nothing bound: the driver does not format, so nothing is doubled
    assert sql("postgresql", "psycopg") == 'SELECT * FROM "s"."50%"'


# --- query mode -------------------------------------------------------------------------------


def test_full_query_read_sends_the_query_unchanged_without_trailing_semicolon_or_comment():
    query = "SELECT a, '50%' AS p -- percent\nFROM t WHERE b LIKE 'x%';  -- the end\n"
    plan = plan_read("postgresql", schema="public", query=query)
    assert plan.sql == "SELECT a, '50%' AS p -- percent\nFROM t WHERE b LIKE 'x%'"
    assert plan.params is None


@pytest.mark.parametrize(
    ("db_type", "expected"),
    [
        (
            "postgresql",
            "SELECT * FROM (SELECT a, '50%%' AS p FROM t -- c\nWHERE 1 = 1) AS flowforge_q "
            'WHERE "a" > %(lower)s AND "a" <= %(upper)s',
        ),
        (
            "mysql",
            "SELECT * FROM (SELECT a, '50%%' AS p FROM t -- c\nWHERE 1 = 1) AS flowforge_q "
            "WHERE `a` > %(lower)s AND `a` <= %(upper)s",
        ),
        (
            "sql-server",
            "SELECT * FROM (SELECT a, '50%' AS p FROM t -- c\nWHERE 1 = 1) AS flowforge_q "
            "WHERE [a] > %(lower)s AND [a] <= %(upper)s",
        ),
        (
            "oracle",
            "SELECT * FROM (SELECT a, '50%' AS p FROM t -- c\nWHERE 1 = 1) flowforge_q "
            'WHERE "a" > :lower AND "a" <= :upper',
        ),
        (
            "snowflake",
            "SELECT * FROM (SELECT a, '50%%' AS p FROM t -- c\nWHERE 1 = 1) AS flowforge_q "
            'WHERE "a" > %(lower)s AND "a" <= %(upper)s',
        ),
        (
            "sqlite",
            "SELECT * FROM (SELECT a, '50%' AS p FROM t -- c\nWHERE 1 = 1) AS flowforge_q "
            'WHERE "a" > :lower AND "a" <= :upper',
        ),
    ],
)
def test_incremental_query_is_wrapped_as_a_subquery(db_type, expected):
    query = "SELECT a, '50%' AS p FROM t -- c\nWHERE 1 = 1; -- trailing comment"
    plan = plan_read(db_type, schema=None, query=query, delta_column="a", lower=1, upper=2)
    assert plan.sql == expected


def test_sql_server_lifts_the_ctes_in_front_of_the_wrapper():
    query = (
        ";WITH c (a) AS (SELECT 1), d AS (SELECT [x]]y] AS a FROM c WHERE ')' <> '(') "
        "SELECT a FROM d"
    )
    plan = plan_read("sql-server", schema="dbo", query=query, delta_column="a", lower=0, upper=9)
    assert plan.sql == (
        "WITH c (a) AS (SELECT 1), d AS (SELECT [x]]y] AS a FROM c WHERE ')' <> '(') "
        "SELECT * FROM (SELECT a FROM d) AS flowforge_q WHERE [a] > %(lower)s AND [a] <= %(upper)s"
    )


def test_other_dialects_keep_the_cte_inside_the_subquery():
    plan = plan_read(
        "postgresql",
        schema=None,
        query="WITH c AS (SELECT 1 AS a) SELECT a FROM c",
        delta_column="a",
        lower=0,
    )
    assert plan.sql == (
        'SELECT * FROM (WITH c AS (SELECT 1 AS a) SELECT a FROM c) AS flowforge_q WHERE "a" > '
        "%(lower)s"
    )


def test_sql_server_refuses_order_by_inside_the_wrapper_but_not_with_top():
    with pytest.raises(QueryRefused, match="ORDER BY"):
        plan_read(
            "sql-server", schema=None, query="SELECT a FROM t ORDER BY a", delta_column="a", lower=1
        )
    plan = plan_read(
        "sql-server",
        schema=None,
        query="SELECT TOP (10) a FROM t ORDER BY a",
        delta_column="a",
        lower=1,
    )
    assert plan.sql.startswith("SELECT * FROM (SELECT TOP (10) a FROM t ORDER BY a) AS")


def test_sql_server_refuses_query_text_that_would_be_read_as_a_parameter():
    with pytest.raises(PlanError, match="taken for a parameter"):
        plan_read(
            "sql-server",
            schema=None,
            query="SELECT a, '%(lower)s' AS trap FROM t",
            delta_column="a",
            lower=1,
        )
    # through pyodbc the same text is harmless
    plan = plan_read(
        "sql-server",
        schema=None,
        query="SELECT a, '%(lower)s' AS trap FROM t",
        delta_column="a",
        lower=1,
        driver="pyodbc",
    )
    assert plan.params == (1,)


def test_named_paramstyle_refuses_a_query_using_our_parameter_name():
    with pytest.raises(PlanError, match=":lower"):
        plan_read(
            "oracle",
            schema=None,
            query="SELECT a FROM t WHERE b = :lower",
            delta_column="a",
            lower=1,
        )
    # inside a literal, or as a PostgreSQL-style cast, it is not a parameter
    plan = plan_read(
        "sqlite",
        schema=None,
        query="SELECT a, ':lower' AS text FROM t",
        delta_column="a",
        lower=1,
    )
    assert plan.params == {"lower": 1}


def test_query_mode_checks_the_query_first():
    with pytest.raises(QueryRefused, match="DELETE"):
        plan_read("postgresql", schema=None, query="DELETE FROM t")


# --- procedures -------------------------------------------------------------------------------


def test_sql_server_procedure_binds_parameters_in_the_order_given():
    parameters = {"@From": datetime(2024, 1, 1), "Region": "EU", "Limit": None}
    pymssql = plan_read("sql-server", schema="dbo", procedure="Get Orders", parameters=parameters)
    assert pymssql.sql == (
        "SET NOCOUNT ON; EXEC [dbo].[Get Orders] @From = %(p1)s, @Region = %(p2)s, @Limit = %(p3)s"
    )
    assert pymssql.params == {"p1": datetime(2024, 1, 1), "p2": "EU", "p3": None}
    pyodbc = plan_read(
        "sql-server", schema="dbo", procedure="Get Orders", parameters=parameters, driver="pyodbc"
    )
    assert pyodbc.sql == (
        "SET NOCOUNT ON; EXEC [dbo].[Get Orders] @From = ?, @Region = ?, @Limit = ?"
    )
    assert pyodbc.params == (datetime(2024, 1, 1), "EU", None)


def test_procedure_without_parameters():
    plan = plan_read("sql-server", schema="dbo", procedure="Daily")
    assert plan.sql == "SET NOCOUNT ON; EXEC [dbo].[Daily]"
    assert plan.params is None


def test_postgresql_set_returning_function_and_mysql_call():
    postgres = plan_read(
        "postgresql", schema="api", procedure="orders_since", parameters={"since": 1, "n": 2}
    )
    assert postgres.sql == 'SELECT * FROM "api"."orders_since"(%(p1)s, %(p2)s)'
    assert postgres.params == {"p1": 1, "p2": 2}
    mysql = plan_read("mysql", schema="shop", procedure="orders_since", parameters={"since": 1})
    assert mysql.sql == "CALL `shop`.`orders_since`(%(p1)s)"


@pytest.mark.parametrize("db_type", ["oracle", "snowflake", "sqlite"])
def test_procedures_are_refused_where_they_return_no_rows(db_type):
    with pytest.raises(PlanError, match="read a table, a view or a query instead"):
        plan_read(db_type, schema="s", procedure="p")


def test_sql_server_parameter_names_are_checked_not_quoted():
    with pytest.raises(PlanError, match="parameter name"):
        plan_read("sql-server", schema="dbo", procedure="p", parameters={"a = 1; DROP": 1})


def test_procedure_cannot_be_incremental():
    with pytest.raises(PlanError, match="incrementally"):
        plan_read("sql-server", schema="dbo", procedure="p", delta_column="d", lower=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": "t", "query": "SELECT 1"},
        {},
        {"table": "t", "parameters": {"a": 1}},
        {"table": "t", "lower": 1},
    ],
)
def test_inconsistent_read_requests_are_refused(kwargs):
    with pytest.raises(PlanError):
        plan_read("postgresql", schema="s", **kwargs)


def test_unknown_driver_is_refused():
    with pytest.raises(PlanError, match="pymssql, pyodbc"):
        plan_read("sql-server", schema="dbo", table="t", driver="jdbc")


# --- max and preview --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "delta_type", "expected"),
    [
        ("sql-server", None, "SELECT MAX([d]) FROM [s].[t]"),
        ("sql-server", "datetime2(7)", "SELECT CONVERT(varchar(40), MAX([d]), 121) FROM [s].[t]"),
        ("sql-server", "int", "SELECT MAX([d]) FROM [s].[t]"),
        (
            "sql-server",
            "rowversion",
            "SELECT MAX([d]) FROM [s].[t] WHERE [d] < MIN_ACTIVE_ROWVERSION()",
        ),
        ("postgresql", "timestamptz", 'SELECT MAX("d") FROM "s"."t"'),
        ("mysql", "datetime(6)", "SELECT MAX(`d`) FROM `s`.`t`"),
        (
            "oracle",
            "TIMESTAMP(9)",
            'SELECT TO_CHAR(MAX("d"), \'YYYY-MM-DD"T"HH24:MI:SS.FF9\') FROM "s"."t"',
        ),
        ("oracle", "DATE", 'SELECT MAX("d") FROM "s"."t"'),
        (
            "snowflake",
            "TIMESTAMP_TZ(9)",
            'SELECT TO_VARCHAR(MAX("d"), \'YYYY-MM-DD"T"HH24:MI:SS.FF9TZH:TZM\') FROM "s"."t"',
        ),
        ("sqlite", "DATETIME", 'SELECT MAX("d") FROM "s"."t"'),
    ],
)
def test_plan_max(db_type, delta_type, expected):
    plan = plan_max(db_type, schema="s", table="t", delta_column="d", delta_type=delta_type)
    assert plan.sql == expected
    assert plan.params is None


def test_plan_max_over_a_query():
    plan = plan_max("oracle", schema=None, query="SELECT id FROM t", delta_column="ID")
    assert plan.sql == 'SELECT MAX("ID") FROM (SELECT id FROM t) flowforge_q'


@pytest.mark.parametrize(
    ("db_type", "driver", "sql", "params"),
    [
        ("sql-server", "pymssql", "SELECT TOP (%(limit)s) * FROM [s].[t]", {"limit": 50}),
        ("sql-server", "pyodbc", "SELECT TOP (?) * FROM [s].[t]", (50,)),
        ("postgresql", None, 'SELECT * FROM "s"."t" LIMIT %(limit)s', {"limit": 50}),
        ("mysql", None, "SELECT * FROM `s`.`t` LIMIT %(limit)s", {"limit": 50}),
        ("oracle", None, 'SELECT * FROM "s"."t" FETCH FIRST :limit ROWS ONLY', {"limit": 50}),
        ("snowflake", None, 'SELECT * FROM "s"."t" LIMIT %(limit)s', {"limit": 50}),
        ("sqlite", None, 'SELECT * FROM "s"."t" LIMIT :limit', {"limit": 50}),
    ],
)
def test_plan_preview(db_type, driver, sql, params):
    plan = plan_preview(db_type, schema="s", table="t", limit=50, driver=driver)
    assert (plan.sql, plan.params) == (sql, params)


@pytest.mark.parametrize("limit", [-1, True, "10", 1.5])
def test_preview_limit_must_be_a_count(limit):
    with pytest.raises(PlanError):
        plan_preview("postgresql", schema="s", table="t", limit=limit)


# --- read-only check --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("db_type", "query", "reason"),
    [
        ("sql-server", "INSERT INTO t VALUES (1)", "the query writes: INSERT is not allowed"),
        ("sql-server", "UPDATE t SET a = 1", "the query writes: UPDATE is not allowed"),
        ("postgresql", "DELETE FROM t", "the query writes: DELETE is not allowed"),
        (
            "sql-server",
            "MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE;",
            "MERGE is not allowed",
        ),
        ("sql-server", "DROP TABLE t", "changes the database: DROP"),
        ("postgresql", "CREATE TABLE t (a int)", "changes the database: CREATE"),
        ("mysql", "ALTER TABLE t ADD c int", "changes the database: ALTER"),
        ("sql-server", "TRUNCATE TABLE t", "changes the database: TRUNCATE"),
        ("postgresql", "GRANT SELECT ON t TO u", "changes permissions: GRANT"),
        ("sql-server", "EXEC dbo.p @a = 1", "runs a command: EXEC"),
        ("postgresql", "CALL p(1)", "runs a command: CALL"),
        ("mysql", "CALL p(1)", "runs a command: CALL"),
        ("postgresql", "COPY t TO '/tmp/x'", "runs a command: COPY"),
        ("sql-server", "WAITFOR DELAY '00:00:05'", "not WAITFOR"),
        ("sql-server", "SELECT 1; DROP TABLE x", "more than one statement"),
        ("postgresql", "SELECT 1; SELECT 2", "more than one statement"),
        ("sql-server", "SELECT * INTO #copy FROM t", "SELECT ... INTO"),
        ("postgresql", "SELECT * INTO copy FROM t", "SELECT ... INTO"),
        ("mysql", "SELECT a INTO @v FROM t", "SELECT ... INTO"),
        (
            "postgresql",
            "WITH gone AS (DELETE FROM t RETURNING *) SELECT * FROM gone",
            "the query writes: DELETE is not allowed",
        ),
        ("postgresql", "SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
        ("oracle", "SELECT * FROM t FOR UPDATE", "FOR UPDATE"),
        ("mysql", "SELECT * FROM t LOCK IN SHARE MODE", "LOCK IN SHARE MODE"),
        ("sql-server", "SELECT * FROM t WITH (UPDLOCK, HOLDLOCK)", "UPDLOCK"),
        ("postgresql", "SELECT pg_sleep(10)", "PG_SLEEP"),
        ("postgresql", "SELECT * FROM dblink('host=x', 'select 1') AS r(a int)", "DBLINK"),
        ("postgresql", "SELECT lo_import('/etc/passwd')", "LO_IMPORT"),
        ("postgresql", "SELECT pg_catalog.pg_read_file('postgresql.conf')", "PG_READ_FILE"),
        ("postgresql", "SELECT set_config('transaction_read_only', 'off', false)", "SET_CONFIG"),
        ("postgresql", "SELECT nextval('s')", "NEXTVAL"),
        (
            "sql-server",
            "SELECT * FROM OPENROWSET('SQLNCLI', 'Server=x;', 'select 1')",
            "OPENROWSET",
        ),
        ("sql-server", "SELECT * FROM OPENQUERY(remote, 'select 1')", "OPENQUERY"),
        (
            "sql-server",
            "SELECT * FROM OPENDATASOURCE('SQLNCLI', 'Data Source=x').db.dbo.t",
            "OPENDATASOURCE",
        ),
        ("sql-server", "SELECT master.dbo.xp_cmdshell('dir')", "XP_CMDSHELL"),
        ("sql-server", "SELECT NEXT VALUE FOR dbo.seq", "NEXT VALUE FOR"),
        ("mysql", "SELECT LOAD_FILE('/etc/passwd')", "LOAD_FILE"),
        ("mysql", "SELECT SLEEP(5)", "SLEEP"),
        ("mysql", "SELECT * FROM t INTO OUTFILE '/tmp/x'", "INTO OUTFILE"),
        ("mysql", "SELECT 1 /*!50000 , SLEEP(5) */", "/*!"),
        ("oracle", "SELECT UTL_HTTP.REQUEST('http://x') FROM dual", "UTL_HTTP"),
        ("oracle", "SELECT SYS.DBMS_PIPE.RECEIVE_MESSAGE('x', 10) FROM dual", "DBMS_PIPE"),
        ("snowflake", "SELECT SYSTEM$WAIT(10)", "SYSTEM$WAIT"),
        ("sqlite", "SELECT load_extension('evil')", "LOAD_EXTENSION"),
        ("postgresql", "VALUES (1)", "not VALUES"),
        ("postgresql", "", "the query is empty"),
        ("postgresql", " ; ;", "the query is empty"),
        ("postgresql", "SELECT 'unterminated", "cannot be read"),
    ],
)
def test_refused_queries_say_what_was_found(db_type, query, reason):
    with pytest.raises(QueryRefused) as caught:
        check_read_only_query(db_type, query)
    assert reason in caught.value.reason
    assert str(caught.value) == caught.value.reason


@pytest.mark.parametrize(
    ("db_type", "query"),
    [
        ("sql-server", "WITH c AS (SELECT 1 AS a) SELECT a FROM c"),
        ("sql-server", ";WITH c AS (SELECT 1 AS a) SELECT a FROM c;"),
        ("sql-server", "SELECT TOP (10) * FROM [dbo].[t] WITH (NOLOCK) ORDER BY 1"),
        (
            "sql-server",
            "SELECT a, ROW_NUMBER() OVER (PARTITION BY b ORDER BY c) AS rn FROM t "
            "JOIN u ON t.id = u.id LEFT JOIN v ON v.id = u.id",
        ),
        ("sql-server", "/* leading */ SELECT 1 AS one -- trailing"),
        ("postgresql", "SELECT $$a;b$$ AS x, a::int FROM t -- c\n;"),
        ("postgresql", "SELECT 1 UNION ALL SELECT 2"),
        ("postgresql", "(SELECT 1)"),
        ("postgresql", "SELECT * FROM t WHERE note LIKE '%delete from%'"),
        ("mysql", "SELECT 1 # a comment"),
        ("oracle", "SELECT DBMS_LOB.SUBSTR(c, 10, 1) FROM t"),
        ("oracle", "SELECT * FROM t FETCH FIRST 5 ROWS ONLY"),
        ("snowflake", "SELECT v:name::string FROM t"),
        ("sqlite", "SELECT count(*) FROM t"),
    ],
)
def test_read_only_queries_are_accepted(db_type, query):
    check_read_only_query(db_type, query)


def test_query_refused_pickles_with_its_reason():
    import pickle

    error = pickle.loads(pickle.dumps(QueryRefused("more than one statement")))
    assert error.reason == "more than one statement"


# --- sessions ---------------------------------------------------------------------------------


def test_read_only_session_sql():
    assert read_only_session_sql("postgresql") == [
        "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
        "SET TRANSACTION READ ONLY",
        "SET TIME ZONE 'UTC'",
    ]
    assert read_only_session_sql("mysql") == [
        "SET SESSION TRANSACTION READ ONLY",
        "SET time_zone = '+00:00'",
    ]
    assert read_only_session_sql("sql-server") == []
    assert read_only_session_sql("sqlite") == ["PRAGMA query_only = ON"]
    assert read_only_session_sql("oracle")[-1] == "SET TRANSACTION READ ONLY"
    assert read_only_session_sql("snowflake") == ["ALTER SESSION SET TIMEZONE = 'UTC'"]


# --- plans that run ---------------------------------------------------------------------------


@pytest.fixture
def sqlite_db():
    connection = sqlite3.connect(":memory:")
    connection.execute('CREATE TABLE "Order ""Lines"" 50%" ("id" INTEGER, "mod;date" INTEGER)')
    connection.executemany(
        'INSERT INTO "Order ""Lines"" 50%" VALUES (?, ?)',
        [(1, 10), (2, 20), (3, 30), (4, None)],
    )
    for statement in read_only_session_sql("sqlite"):
        connection.execute(statement)
    yield connection
    connection.close()


def _rows(connection, plan: ReadPlan) -> list[tuple]:
    return connection.execute(*plan.execute_args()).fetchall()


def test_sqlite_plans_run_with_awkward_names(sqlite_db):
    table = 'Order "Lines" 50%'
    first = plan_read("sqlite", schema=None, table=table, delta_column="mod;date", upper=20)
    assert sorted(_rows(sqlite_db, first), key=lambda r: r[0]) == [(1, 10), (2, 20), (4, None)]
    second = plan_read(
        "sqlite", schema=None, table=table, delta_column="mod;date", lower=20, upper=30
    )
    assert _rows(sqlite_db, second) == [(3, 30)]
    top = plan_max("sqlite", schema=None, table=table, delta_column="mod;date")
    assert _rows(sqlite_db, top) == [(30,)]
    preview = plan_preview("sqlite", schema="main", table=table, limit=2)
    assert len(_rows(sqlite_db, preview)) == 2
    query = plan_read(
        "sqlite",
        schema=None,
        query='SELECT id, "mod;date" AS d FROM "Order ""Lines"" 50%" WHERE id <> \':lower\'',
        delta_column="d",
        lower=10,
        upper=30,
        order=True,
    )
    assert _rows(sqlite_db, query) == [(2, 20), (3, 30)]


def test_sqlite_read_only_session_refuses_writes(sqlite_db):
    with pytest.raises(sqlite3.OperationalError, match="readonly"):
        sqlite_db.execute('DELETE FROM "Order ""Lines"" 50%"')


@pytest.mark.postgres
def test_postgresql_plans_run_through_psycopg(postgres_url):
    import psycopg

    dsn = postgres_url.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute('CREATE SCHEMA IF NOT EXISTS "Sales 50%"')
        admin.execute(
            'CREATE TABLE IF NOT EXISTS "Sales 50%"."Order ""Lines""" '
            '(id int, "changed at" timestamptz, note text)'
        )
        admin.execute('TRUNCATE "Sales 50%"."Order ""Lines"""')
        base = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)
        with admin.cursor() as cursor:
            cursor.executemany(
                'INSERT INTO "Sales 50%%"."Order ""Lines""" VALUES (%s, %s, %s)',
                [
                    (1, base, "100% done"),
                    (2, base + timedelta(microseconds=1), "x"),
                    (3, base + timedelta(hours=1), "y"),
                    (4, None, "no delta"),
                ],
            )
    with psycopg.connect(dsn) as connection:
        for statement in read_only_session_sql("postgresql"):
            connection.execute(statement)
        # a session zone other than UTC must not move an aware bound
        connection.execute("SET TIME ZONE 'Asia/Tokyo'")
        lower = Watermark("changed at", "timestamptz", "2024-05-06T09:08:09.123456+02:00")
        plan = plan_read(
            "postgresql",
            schema="Sales 50%",
            table='Order "Lines"',
            delta_column="changed at",
            lower=lower,
            upper=Watermark("changed at", "timestamptz", "2024-05-06T08:08:09.123456Z"),
            delta_type="timestamptz",
            order=True,
        )
        ids = [row[0] for row in connection.execute(*plan.execute_args()).fetchall()]
        assert ids == [2, 3]  # strictly after id 1 (same microsecond), up to id 3 inclusive
        query = plan_read(
            "postgresql",
            schema=None,
            query='SELECT id, note FROM "Sales 50%"."Order ""Lines""" WHERE note LIKE \'%done\'',
            delta_column="id",
            lower=0,
        )
        assert connection.execute(*query.execute_args()).fetchall() == [(1, "100% done")]
        full = plan_read(
            "postgresql",
            schema=None,
            query='SELECT note FROM "Sales 50%"."Order ""Lines""" WHERE note LIKE \'%done\'',
        )
        assert connection.execute(*full.execute_args()).fetchall() == [("100% done",)]
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            connection.execute('DELETE FROM "Sales 50%"."Order ""Lines"""')
    # in autocommit mode the session characteristics do the work
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in read_only_session_sql("postgresql"):
            connection.execute(statement)
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            connection.execute('DELETE FROM "Sales 50%"."Order ""Lines"""')


def test_sql_server_lifts_a_cte_named_like_a_keyword():
    query = "WITH first AS (SELECT 1 AS a) SELECT a FROM first"
    plan = plan_read("sql-server", schema=None, query=query, delta_column="a", lower=0)
    assert plan.sql == (
        "WITH first AS (SELECT 1 AS a) SELECT * FROM (SELECT a FROM first) AS flowforge_q "
        "WHERE [a] > %(lower)s"
    )


def test_a_watermark_without_delta_type_is_bound_and_cast_for_its_kind():
    mark = Watermark("d", "timestamp", "2024-05-06T07:08:09.1234567")
    plan = plan_read("sql-server", schema="dbo", table="t", delta_column="d", lower=mark)
    assert plan.sql == "SELECT * FROM [dbo].[t] WHERE [d] > CAST(%(lower)s AS datetime2(7))"
    assert plan.params == {"lower": "2024-05-06T07:08:09.1234567"}


# --- parallel reads: one key range of a table ---------------------------------------------------


def test_a_key_range_bounds_a_table_read_and_the_first_range_keeps_null_keys():
    from flowforge_ingest.connectors import sql
    from flowforge_ingest.connectors.sql import KeyRange, plan_key_bounds

    first = sql.plan_read(
        "postgresql", schema="public", table="orders", key_range=KeyRange("id", None, 26, True)
    )
    assert (
        first.sql == 'SELECT * FROM "public"."orders" WHERE ("id" < %(key_upper)s OR "id" IS NULL)'
    )
    assert first.params == {"key_upper": 26}
    middle = sql.plan_read("mysql", schema="shop", table="orders", key_range=KeyRange("id", 26, 51))
    assert middle.sql == (
        "SELECT * FROM `shop`.`orders` WHERE (`id` >= %(key_lower)s AND `id` < %(key_upper)s)"
    )
    # the incremental bounds are joined in parentheses: a first run's "OR delta IS NULL" stays
    # inside the range
    last = sql.plan_read(
        "postgresql", schema=None, table="t", key_range=KeyRange("id", 51, None),
        delta_column="m", upper=5,
    )  # fmt: skip
    assert last.sql == (
        'SELECT * FROM "t" WHERE ("id" >= %(key_lower)s) AND ("m" <= %(upper)s OR "m" IS NULL)'
    )
    assert last.params == {"key_lower": 51, "upper": 5}
    # a range over the whole table adds nothing
    whole = sql.plan_read(
        "postgresql", schema=None, table="t", key_range=KeyRange("id", None, None, True)
    )
    assert whole.sql == 'SELECT * FROM "t"'
    assert plan_key_bounds("mysql", schema="s", table="t", column="k`1").sql == (
        "SELECT MIN(`k``1`), MAX(`k``1`) FROM `s`.`t`"
    )
    with pytest.raises(sql.PlanError):
        sql.plan_read("postgresql", schema=None, query="SELECT 1", key_range=KeyRange("id", 1, 2))
