"""Column lineage of silver and gold builds, from the job configuration (no lake, no broker)."""

from __future__ import annotations

import pytest

from flowforge_shared.contracts.events import PRODUCER, Dataset
from flowforge_shared.contracts.jobs import JobConfig
from flowforge_transform.column_lineage import column_lineage, expression_columns

AUDIT = ["_ingested_at", "_execution_id", "_job_id", "_source", "_source_row"]


def table(name: str, *columns: str) -> Dataset:
    return Dataset(
        namespace="lake", name=name, schema=[{"name": c, "type": "string"} for c in columns]
    )


def job(source: list[str], destination: dict, steps: dict | None = None) -> JobConfig:
    return JobConfig.model_validate(
        {
            "name": "t",
            "type": "gold-analytics",
            "sourceConfig": {"type": "multi-table", "tables": source},
            "destinationConfig": destination,
            "transformationConfig": steps,
        }
    )


def edges(facet: dict) -> set[tuple]:
    """(output column, input dataset, input column, type, subtype, description)"""
    return {
        (column, f["name"], f["field"], t["type"], t["subtype"], t.get("description"))
        for column, value in facet["fields"].items()
        for f in value["inputFields"]
        for t in f["transformations"]
    }


def direct(facet: dict) -> set[tuple]:
    return {edge for edge in edges(facet) if edge[3] == "DIRECT"}


def indirect(facet: dict, column: str) -> set[tuple]:
    return {edge[1:] for edge in edges(facet) if edge[3] == "INDIRECT" and edge[0] == column}


def dataset_wide(facet: dict) -> set[tuple]:
    return {
        (f["name"], f["field"], t["type"], t["subtype"], t.get("description"))
        for f in facet["dataset"]
        for t in f["transformations"]
    }


def test_facet_is_the_openlineage_1_2_0_facet_of_our_producer():
    bronze = table("bronze.b", "id", *AUDIT)
    silver = table("silver.s", "id", "_ingested_at", "_source")
    facet = column_lineage(
        job(["b"], {"silverConfig": {"tableName": "s", "mergeStrategy": "overwrite"}}),
        {"b": bronze},
        silver,
    )
    assert facet["_producer"] == PRODUCER
    assert facet["_schemaURL"].endswith(
        "1-2-0/ColumnLineageDatasetFacet.json#/$defs/ColumnLineageDatasetFacet"
    )
    assert direct(facet) == {
        ("id", "bronze.b", "id", "DIRECT", "IDENTITY", None),
        ("_ingested_at", "bronze.b", "_ingested_at", "DIRECT", "IDENTITY", None),
        ("_source", "bronze.b", "_source", "DIRECT", "IDENTITY", None),
    }
    assert facet["dataset"] == []


def test_silver_derived_columns_filters_keys_dedupe_and_surrogate_key():
    bronze = table("bronze.b", "id", "Email", "first", "last", "updated", *AUDIT)
    steps = {
        "derivedColumns": [
            {"name": "email", "expression": "LOWER(TRIM(email))"},
            {"name": "full_name", "expression": "first || ' ' || last"},
            {"name": "shout", "expression": "UPPER(full_name)"},
            {"name": "country", "expression": "'BE'"},
        ],
        "filters": ["updated IS NOT NULL"],
    }
    destination = {
        "silverConfig": {
            "tableName": "s",
            "primaryKey": "id",
            "surrogateKey": "sk",
            "deltaColumn": "updated",
        }
    }
    written = table(
        "silver.s",
        "sk",
        "id",
        "Email",
        "first",
        "last",
        "updated",
        "_ingested_at",
        "_source",
        "email",
        "full_name",
        "shout",
        "country",
    )
    facet = column_lineage(job(["b"], destination, steps), {"b": bronze}, written)

    assert "_execution_id" not in facet["fields"] and "_source_row" not in facet["fields"]
    derived = {e for e in direct(facet) if e[4] == "TRANSFORMATION"}
    assert derived == {
        ("email", "bronze.b", "Email", "DIRECT", "TRANSFORMATION", "LOWER(TRIM(email))"),
        ("full_name", "bronze.b", "first", "DIRECT", "TRANSFORMATION", "first || ' ' || last"),
        ("full_name", "bronze.b", "last", "DIRECT", "TRANSFORMATION", "first || ' ' || last"),
        # a derived column reading a derived column comes from what that one read
        ("shout", "bronze.b", "first", "DIRECT", "TRANSFORMATION", "UPPER(full_name)"),
        ("shout", "bronze.b", "last", "DIRECT", "TRANSFORMATION", "UPPER(full_name)"),
        (
            "sk",
            "bronze.b",
            "id",
            "DIRECT",
            "TRANSFORMATION",
            "surrogate key: one number per primaryKey",
        ),
    }
    # a constant reads no column: only what decides its rows
    assert "country" in facet["fields"] and not {e for e in direct(facet) if e[0] == "country"}
    expected_indirect = {
        ("bronze.b", "updated", "INDIRECT", "FILTER", "updated IS NOT NULL"),
        ("bronze.b", "id", "INDIRECT", "FILTER", "rows with a null primaryKey are rejected"),
        ("bronze.b", "id", "INDIRECT", "GROUP_BY", "dedupe: one row per primaryKey"),
        ("bronze.b", "updated", "INDIRECT", "SORT", "dedupe keeps the latest row by this"),
        ("bronze.b", "_ingested_at", "INDIRECT", "SORT", "dedupe keeps the latest row by this"),
        ("bronze.b", "_source_row", "INDIRECT", "SORT", "dedupe keeps the latest row by this"),
        ("bronze.b", "id", "INDIRECT", "JOIN", "merge key: rows are upserted on it"),
    }
    assert dataset_wide(facet) == expected_indirect
    assert all(indirect(facet, column) == expected_indirect for column in facet["fields"])


def test_multi_input_silver_takes_each_column_from_every_table_that_has_it():
    core = table("bronze.core", "customer_id", "name", "balance", *AUDIT)
    crm = table("bronze.crm", "customer_id", "name", "segment", *AUDIT)
    destination = {
        "silverConfig": {
            "tableName": "customers",
            "primaryKey": "customer_id",
            "dedupe": False,
            "mergeStrategy": "overwrite",
        }
    }
    written = table(
        "silver.customers", "customer_id", "name", "balance", "segment", "_ingested_at", "_source"
    )
    facet = column_lineage(job(["core", "crm"], destination), {"core": core, "crm": crm}, written)

    assert {(e[0], e[1], e[2]) for e in direct(facet)} == {
        ("customer_id", "bronze.core", "customer_id"),
        ("customer_id", "bronze.crm", "customer_id"),
        ("name", "bronze.core", "name"),
        ("name", "bronze.crm", "name"),
        ("balance", "bronze.core", "balance"),
        ("segment", "bronze.crm", "segment"),
        ("_ingested_at", "bronze.core", "_ingested_at"),
        ("_ingested_at", "bronze.crm", "_ingested_at"),
        ("_source", "bronze.core", "_source"),
        ("_source", "bronze.crm", "_source"),
    }
    assert {e[4] for e in direct(facet)} == {"IDENTITY"}
    assert dataset_wide(facet) == {
        (name, "customer_id", "INDIRECT", "GROUP_BY", "combine key: one record per primaryKey")
        for name in ("bronze.core", "bronze.crm")
    } | {
        (name, "customer_id", "INDIRECT", "FILTER", "rows with a null primaryKey are rejected")
        for name in ("bronze.core", "bronze.crm")
    }


def test_gold_join_renames_a_clashing_column_and_records_both_keys():
    tx = table("silver.tx", "tx_id", "customer_id", "amount", "name", "_ingested_at")
    customers = table("silver.customers", "customer_id", "Name", "segment", "_source")
    steps = {"joins": [{"table": "customers", "on": "customer_id"}]}
    written = table("gold.g", "tx_id", "customer_id", "amount", "name", "Name_customers", "segment")
    facet = column_lineage(
        job(["tx"], {"goldConfig": {"tableName": "g"}}, steps),
        {"tx": tx, "customers": customers},
        written,
    )
    assert direct(facet) == {
        ("tx_id", "silver.tx", "tx_id", "DIRECT", "IDENTITY", None),
        ("customer_id", "silver.tx", "customer_id", "DIRECT", "IDENTITY", None),
        ("amount", "silver.tx", "amount", "DIRECT", "IDENTITY", None),
        ("name", "silver.tx", "name", "DIRECT", "IDENTITY", None),
        ("Name_customers", "silver.customers", "Name", "DIRECT", "IDENTITY", "rename"),
        ("segment", "silver.customers", "segment", "DIRECT", "IDENTITY", None),
    }
    join = "join with customers on customer_id"
    assert dataset_wide(facet) == {
        ("silver.tx", "customer_id", "INDIRECT", "JOIN", join),
        ("silver.customers", "customer_id", "INDIRECT", "JOIN", join),
    }
    assert indirect(facet, "segment") == dataset_wide(facet)


def test_gold_full_join_key_comes_from_both_sides():
    left = table("silver.a", "k", "x")
    right = table("silver.b", "k", "y")
    steps = {"joins": [{"table": "b", "on": ["k"], "type": "full"}]}
    facet = column_lineage(
        job(["a"], {"goldConfig": {"tableName": "g"}}, steps),
        {"a": left, "b": right},
        table("gold.g", "k", "x", "y"),
    )
    assert {(e[0], e[1], e[2]) for e in direct(facet)} == {
        ("k", "silver.a", "k"),
        ("k", "silver.b", "k"),
        ("x", "silver.a", "x"),
        ("y", "silver.b", "y"),
    }


def test_gold_aggregations_group_by_and_derived_before_them():
    tx = table("silver.tx", "customer_id", "amount", "fee", "status")
    steps = {
        "derivedColumns": [{"name": "total", "expression": "amount + fee"}],
        "filters": ["status = 'booked'"],
        "groupBy": ["customer_id"],
        "aggregations": [
            {"column": "total", "function": "SUM", "alias": "total_sum"},
            {"column": "*", "function": "COUNT", "alias": "n"},
        ],
    }
    facet = column_lineage(
        job(["tx"], {"goldConfig": {"tableName": "g"}}, steps),
        {"tx": tx},
        table("gold.g", "customer_id", "total_sum", "n"),
    )
    assert direct(facet) == {
        ("customer_id", "silver.tx", "customer_id", "DIRECT", "IDENTITY", None),
        ("total_sum", "silver.tx", "amount", "DIRECT", "AGGREGATION", "SUM(total)"),
        ("total_sum", "silver.tx", "fee", "DIRECT", "AGGREGATION", "SUM(total)"),
    }
    assert dataset_wide(facet) == {
        ("silver.tx", "status", "INDIRECT", "FILTER", "status = 'booked'"),
        ("silver.tx", "customer_id", "INDIRECT", "GROUP_BY", "groupBy"),
    }
    assert indirect(facet, "n") == dataset_wide(facet)


def test_gold_with_aggregation_disabled_keeps_the_columns():
    tx = table("silver.tx", "customer_id", "amount")
    steps = {
        "groupBy": ["customer_id"],
        "aggregations": [{"column": "amount", "function": "SUM", "alias": "s"}],
    }
    facet = column_lineage(
        job(["tx"], {"goldConfig": {"tableName": "g", "aggregationEnabled": False}}, steps),
        {"tx": tx},
        table("gold.g", "customer_id", "amount"),
    )
    assert set(facet["fields"]) == {"customer_id", "amount"} and facet["dataset"] == []


def test_a_table_column_this_build_did_not_make_has_no_lineage():
    facet = column_lineage(
        job(["b"], {"silverConfig": {"tableName": "s", "mergeStrategy": "append"}}),
        {"b": table("bronze.b", "id")},
        table("silver.s", "id", "dropped_from_the_config_since"),
    )
    assert set(facet["fields"]) == {"id"}


@pytest.mark.parametrize(
    ("expression", "columns"),
    [
        ("LOWER(TRIM(EMAIL))", ["Email"]),
        ("\"First Name\" || ' ' || last", ["First Name", "last"]),
        ("CASE WHEN x > 1 THEN amount ELSE 0 END", ["x", "amount"]),
        ("COALESCE(a, b, a)", ["a", "b"]),
        ("42", []),
    ],
)
def test_expression_columns_are_what_sqlglot_lineage_reads(expression, columns):
    available = ["Email", "First Name", "last", "x", "amount", "a", "b", "unused"]
    assert sorted(expression_columns(expression, available)) == sorted(columns)
