"""What a database job read, named by the OpenLineage naming conventions."""

from __future__ import annotations

from flowforge_ingest.connectors.base import ConnectionParams
from flowforge_ingest.naming import source_datasets


def names(params: ConnectionParams, **read) -> set[tuple[str, str]]:
    return {(d.namespace, d.name) for d in source_datasets(params, **read)}


def test_tables_and_procedures_by_the_conventions_of_each_database():
    pg = ConnectionParams("postgresql", host="DB.internal", port=6543, database="sales")
    assert names(pg, schema="public", table="orders") == {
        ("postgres://db.internal:6543", "sales.public.orders")
    }
    mssql = ConnectionParams("sql-server", host="10.0.0.5", database="core")
    assert names(mssql, schema="dbo", procedure="usp_accounts") == {
        ("sqlserver://10.0.0.5:1433", "core.dbo.usp_accounts")
    }
    mysql = ConnectionParams("mysql", host="127.0.0.1", database="shop")
    assert names(mysql, schema=None, table="orders") == {("mysql://127.0.0.1:3306", "shop.orders")}
    assert names(mysql, schema="other", table="orders") == {
        ("mysql://127.0.0.1:3306", "other.orders")
    }
    oracle = ConnectionParams("oracle", host="ora", database="ORCLPDB1")
    assert names(oracle, schema="HR", table="EMP") == {("oracle://ora:1521", "ORCLPDB1.HR.EMP")}
    snow = ConnectionParams("snowflake", database="DW", options={"account": "Org-Acct"})
    assert names(snow, schema="PUBLIC", table="T") == {("snowflake://org-acct", "DW.PUBLIC.T")}


def test_a_sqlite_table_is_named_by_the_absolute_path_of_its_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    lite = ConnectionParams("sqlite", database="core.db")
    assert names(lite, schema=None, table="accounts") == {
        (f"sqlite://{tmp_path}/core.db", "accounts")
    }


def test_a_query_names_the_tables_it_reads_and_not_its_ctes():
    pg = ConnectionParams("postgresql", host="h", port=5432, database="sales")
    query = """
        WITH recent AS (SELECT * FROM orders WHERE day > now() - interval '1 day')
        SELECT r.id, c.name FROM recent r JOIN crm.customers c ON c.id = r.customer_id
        WHERE r.id IN (SELECT order_id FROM audit.flags)
    """
    assert names(pg, schema="public", query=query) == {
        ("postgres://h:5432", "sales.public.orders"),
        ("postgres://h:5432", "sales.crm.customers"),
        ("postgres://h:5432", "sales.audit.flags"),
    }


def test_a_query_that_cannot_be_read_is_one_dataset_named_query():
    pg = ConnectionParams("postgresql", host="h", port=5432, database="sales")
    assert names(pg, schema=None, query="SELEC nonsense ((") == {
        ("postgres://h:5432", "sales.query")
    }
    assert names(pg, schema=None, query="SELECT 1") == {("postgres://h:5432", "sales.query")}
