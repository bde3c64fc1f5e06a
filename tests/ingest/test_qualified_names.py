"""Qualified names (issue 11): ``risk.usp_exposures_since``, ``sales.Orders``,
``[db].[schema].[name]``, ``"schema"."table"``, `` `db`.`t` `` are split into their parts
and each part is quoted on its own in the statement the worker sends, for every dialect
(they used to be quoted as one name: ``EXEC [risk.usp_exposures_since]``)."""

from __future__ import annotations

import sqlite3

import pytest

from flowforge_ingest.connectors.base import ConnectionParams
from flowforge_ingest.connectors.sql import plan_max, plan_preview, plan_read
from flowforge_ingest.database_source import read_target
from flowforge_shared.contracts.jobs import DatabaseConfig
from flowforge_shared.contracts.names import NameProblem, split_name
from flowforge_shared.errors import PermanentError


def target(db_type: str, database: str | None = "core", options=None, **config):
    params = ConnectionParams(db_type=db_type, database=database, options=options or {})
    return read_target(DatabaseConfig(connection_id="c", **config), params, "a job")


def read_sql(db_type: str, name: str, **extra) -> str:
    schema, table, _ = target(db_type, tableName=name, **extra)
    return plan_read(db_type, schema=schema, table=table).sql


@pytest.mark.parametrize(
    ("db_type", "name", "expected"),
    [
        ("sql-server", "sales.Orders", "SELECT * FROM [sales].[Orders]"),
        ("sql-server", "[sales].[Orders]", "SELECT * FROM [sales].[Orders]"),
        ("sql-server", "[core].[sales].[Orders]", "SELECT * FROM [sales].[Orders]"),
        ("sql-server", "CORE.sales.Orders", "SELECT * FROM [sales].[Orders]"),
        ("sql-server", "[odd]]name].[with.dot]", "SELECT * FROM [odd]]name].[with.dot]"),
        ("sql-server", '"sales"."Order Lines"', "SELECT * FROM [sales].[Order Lines]"),
        ("sql-server", "dbo.Order Lines", "SELECT * FROM [dbo].[Order Lines]"),
        ("sql-server", " sales . Orders ", "SELECT * FROM [sales].[Orders]"),
        ("sql-server", "Orders", "SELECT * FROM [Orders]"),
        ("postgresql", "sales.Orders", 'SELECT * FROM "sales"."Orders"'),
        ("postgresql", '"sales"."Orders"', 'SELECT * FROM "sales"."Orders"'),
        ("postgresql", '"we""ird".t', 'SELECT * FROM "we""ird"."t"'),
        ("postgresql", "core.sales.orders", 'SELECT * FROM "sales"."orders"'),
        ("mysql", "shop.orders", "SELECT * FROM `shop`.`orders`"),
        ("mysql", "`shop`.`order``s`", "SELECT * FROM `shop`.`order``s`"),
        ("mysql", '"shop"."orders"', "SELECT * FROM `shop`.`orders`"),
        ("mysql", "`a.b`", "SELECT * FROM `a.b`"),
        ("oracle", 'HR."Employees"', 'SELECT * FROM "HR"."Employees"'),
        ("snowflake", "CORE.SALES.ORDERS", 'SELECT * FROM "SALES"."ORDERS"'),
        ("snowflake", '"core"."Sales"."Orders"', 'SELECT * FROM "Sales"."Orders"'),
        ("sqlite", "aux.orders", 'SELECT * FROM "aux"."orders"'),
        ("sqlite", "[aux].`orders`", 'SELECT * FROM "aux"."orders"'),
    ],
)
def test_each_part_of_a_table_name_is_quoted_on_its_own(db_type, name, expected):
    assert read_sql(db_type, name) == expected


@pytest.mark.parametrize(
    ("db_type", "name", "expected"),
    [
        ("sql-server", "risk.usp_exposures_since", "EXEC [risk].[usp_exposures_since]"),
        ("sql-server", "[core].[risk].[usp x]", "EXEC [risk].[usp x]"),
        ("postgresql", "risk.exposures_since", 'SELECT * FROM "risk"."exposures_since"('),
        ("mysql", "`risk`.exposures_since", "CALL `risk`.`exposures_since`("),
    ],
)
def test_each_part_of_a_procedure_name_is_quoted_on_its_own(db_type, name, expected):
    schema, table, procedure = target(db_type, storedProcedure=name)
    assert table is None
    plan = plan_read(db_type, schema=schema, procedure=procedure, parameters={"since": 1})
    assert expected in plan.sql
    assert plan.bound == {"p1": 1}


def test_the_issue_example_runs_the_procedure_in_its_schema():
    schema, _, procedure = target("sql-server", storedProcedure="risk.usp_exposures_since")
    plan = plan_read(
        "sql-server", schema=schema, procedure=procedure, parameters={"since": "2024-01-01"}
    )
    assert plan.sql == "SET NOCOUNT ON; EXEC [risk].[usp_exposures_since] @since = %(p1)s"


def test_the_incremental_bound_and_the_preview_use_the_parts_too():
    schema, table, _ = target("sql-server", tableName="sales.Orders")
    maximum = plan_max("sql-server", schema=schema, table=table, delta_column="modified")
    assert maximum.sql == "SELECT MAX([modified]) FROM [sales].[Orders]"
    read = plan_read(
        "sql-server", schema=schema, table=table, delta_column="modified", lower=1, upper=2
    )
    assert read.sql.startswith("SELECT * FROM [sales].[Orders] WHERE [modified] > ")
    preview = plan_preview("postgresql", schema="sales", table="Orders", limit=5)
    assert preview.sql == 'SELECT * FROM "sales"."Orders" LIMIT %(limit)s'


def test_the_schema_comes_from_the_name_then_the_job_then_the_connection():
    assert target("sql-server", tableName="sales.Orders", options={"schema": "dbo"})[:2] == (
        "sales",
        "Orders",
    )
    assert target("sql-server", tableName="Orders", schema="sales")[:2] == ("sales", "Orders")
    assert target("sql-server", tableName="Orders", options={"schema": "x"})[:2] == ("x", "Orders")
    assert target("sql-server", tableName="sales.Orders", schema="sales")[:2] == (
        "sales",
        "Orders",
    )


def test_a_name_that_disagrees_fails_the_run_with_the_reason():
    """The catalog refuses these on save; a connection changed afterwards is caught here."""
    with pytest.raises(PermanentError, match=r"tableName .*'other'.*'core'"):
        target("sql-server", tableName="other.dbo.Orders")
    with pytest.raises(PermanentError, match=r"storedProcedure .*'risk'.*'dbo'"):
        target("sql-server", storedProcedure="risk.usp", schema="dbo")
    with pytest.raises(PermanentError, match="empty part"):
        target("postgresql", tableName="a..b")


@pytest.mark.parametrize(
    ("db_type", "name", "parts"),
    [
        ("sql-server", "[a]]b].[c.d]", ("a]b", "c.d")),
        ("sql-server", '[a"b]."c]d"', ('a"b', "c]d")),
        ("sql-server", "[x]]]", ("x]",)),
        ("sql-server", "#tmp", ("#tmp",)),
        ("postgresql", '"a.b"."c""d"', ("a.b", 'c"d')),
        ("mysql", "`a``b`.c", ("a`b", "c")),
        ("sqlite", '"main".[t]', ("main", "t")),
        ("snowflake", "a . b . c", ("a", "b", "c")),
    ],
)
def test_quotes_escapes_and_dots_inside_quotes(db_type, name, parts):
    assert split_name(db_type, name) == parts


@pytest.mark.parametrize(
    ("db_type", "name", "words"),
    [
        ("sql-server", "a..b", "db..name shorthand"),
        ("sql-server", ".a", "empty part"),
        ("sql-server", "a.", "last part is missing"),
        ("sql-server", "[a.b", "never closed with ]"),
        ("sql-server", "[a]]", "never closed with ]"),
        ("sql-server", "a]", "unbalanced ]"),
        ("sql-server", "[a]b", "put a dot between parts"),
        ("sql-server", "[]", "empty quoted name"),
        ("sql-server", "s.d.sch.t", "linked-server"),
        ("postgresql", "a.b.c.d", "at most 3: database.schema.name"),
        ("postgresql", "`a`.b", 'quotes names with ""'),
        ("mysql", "a.b.c", "at most 2: database.name"),
        ("oracle", '"a""b"', "cannot hold a double quote"),
        ("oracle", "a.b.c", "at most 2: schema.name"),
        ("sqlite", "a.b.c", "at most 2"),
        ("snowflake", "a.b.c.d", "at most 3"),
        ("sql-server", "a\x00b", "NUL"),
        ("sql-server", "   ", "empty"),
    ],
)
def test_unreadable_names_say_why(db_type, name, words):
    with pytest.raises(NameProblem) as raised:
        split_name(db_type, name)
    assert words in str(raised.value)


def test_a_table_in_an_attached_sqlite_database_is_read(tmp_path):
    """The statement the worker builds, run: SQLite reads aux.orders from the attached file."""
    aux = tmp_path / "aux.db"
    with sqlite3.connect(aux) as setup:
        setup.execute('CREATE TABLE "Orders" (id INTEGER PRIMARY KEY, amount REAL)')
        setup.execute('INSERT INTO "Orders" VALUES (1, 9.5), (2, 3.25)')
    connection = sqlite3.connect(":memory:")
    connection.execute("ATTACH DATABASE ? AS aux", (str(aux),))
    connection.execute('CREATE TABLE "Orders" (id INTEGER)')  # main's own Orders: empty
    schema, table, _ = target("sqlite", database=str(tmp_path / "main.db"), tableName="aux.Orders")
    plan = plan_read("sqlite", schema=schema, table=table)
    assert connection.execute(*plan.execute_args()).fetchall() == [(1, 9.5), (2, 3.25)]
    connection.close()
