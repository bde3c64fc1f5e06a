"""Column lineage of bronze loads: identity of the source columns, renames, audit columns."""

from __future__ import annotations

import pyarrow as pa

from flowforge_ingest.bronze import AuditContext, write_bronze
from flowforge_ingest.column_lineage import (
    INCREMENTAL_READ,
    bronze_column_lineage,
    columns_not_sent,
    csv_renames,
)
from flowforge_shared.contracts.events import PRODUCER, Dataset
from flowforge_shared.contracts.jobs import FileConfig
from flowforge_shared.lake import output_dataset
from tests.ingest.conftest import ArrowSource
from tests.ingest.test_database_retry import attempt
from tests.ingest.test_database_retry import source as source_rows

AUDIT = ["_ingested_at", "_execution_id", "_job_id", "_source", "_source_row"]


def bronze(*columns: str) -> Dataset:
    schema = [{"name": column, "type": "string"} for column in columns]
    return Dataset(namespace="lake", name="bronze.customers", schema=schema)


def edges(facet: dict) -> set[tuple]:
    return {
        (
            column,
            f["namespace"],
            f["name"],
            f["field"],
            t["type"],
            t["subtype"],
            t.get("description"),
        )
        for column, value in facet["fields"].items()
        for f in value["inputFields"]
        for t in f["transformations"]
    }


def test_each_bronze_column_is_the_same_named_source_column_and_audit_columns_have_none():
    source = Dataset(namespace="landing", name="crm/customers.csv")
    facet = bronze_column_lineage(source, bronze("id", "email", *AUDIT))
    assert facet["_producer"] == PRODUCER and "ColumnLineageDatasetFacet" in facet["_schemaURL"]
    assert set(facet["fields"]) == {"id", "email"}
    assert edges(facet) == {
        ("id", "landing", "crm/customers.csv", "id", "DIRECT", "IDENTITY", None),
        ("email", "landing", "crm/customers.csv", "email", "DIRECT", "IDENTITY", None),
    }
    assert facet["dataset"] == []


def test_a_csv_column_renamed_in_the_file_config_is_a_rename_of_the_source_column():
    config = FileConfig.model_validate(
        {
            "filePath": "c.csv",
            "columns": [
                {"name": "E-Mail Address", "rename": "email"},
                {"name": "id", "type": "integer"},
            ],
        }
    )
    assert csv_renames(config) == {"email": "E-Mail Address"}
    source = Dataset(namespace="landing", name="c.csv")
    facet = bronze_column_lineage(source, bronze("id", "email"), renames=csv_renames(config))
    assert edges(facet) == {
        ("id", "landing", "c.csv", "id", "DIRECT", "IDENTITY", None),
        ("email", "landing", "c.csv", "E-Mail Address", "DIRECT", "IDENTITY", "rename"),
    }


def test_an_incremental_read_filters_every_column_on_the_delta_column():
    source = Dataset(namespace="postgres://db:5432", name="bank.public.accounts")
    facet = bronze_column_lineage(
        source, bronze("id", "updated_at", *AUDIT), delta_column="updated_at"
    )
    read = (
        "postgres://db:5432",
        "bank.public.accounts",
        "updated_at",
        "INDIRECT",
        "FILTER",
        INCREMENTAL_READ,
    )
    assert {e for e in edges(facet) if e[4] == "INDIRECT"} == {("id", *read), ("updated_at", *read)}
    assert [(f["field"], f["transformations"][0]["subtype"]) for f in facet["dataset"]] == [
        ("updated_at", "FILTER")
    ]


def test_no_schema_no_lineage():
    source = Dataset(namespace="landing", name="c.csv")
    assert bronze_column_lineage(source, Dataset(namespace="lake", name="bronze.x")) is None


def test_a_table_column_the_source_did_not_send_comes_from_no_source_column(lake):
    def load(data, run):
        write_bronze(
            lake,
            "t",
            ArrowSource(data),
            audit=AuditContext(f"e{run}", "j", "s"),
            app_id="j",
            run_sequence=run,
        )

    load(pa.table({"id": [1], "name": ["Ann"], "city": ["Oslo"]}), 1)
    load(pa.table({"id": [2], "city": ["Rome"]}), 2)
    assert columns_not_sent(lake, "t", "j", 2) == {"name"}
    assert columns_not_sent(lake, "t", "other-job", 1) == set()

    written = output_dataset(lake, "bronze", "t")
    source = Dataset(namespace="landing", name="s.csv")
    facet = bronze_column_lineage(source, written, not_sent=columns_not_sent(lake, "t", "j", 2))
    assert set(facet["fields"]) == {"id", "city"}
    load(pa.table({"id": [3], "name": ["Cy"], "city": ["Lima"]}), 3)
    assert columns_not_sent(lake, "t", "j", 3) == set()


def test_an_incremental_database_load_reports_its_lineage_on_its_bronze_output(tmp_path):
    database = tmp_path / "sources" / "shop.db"
    database.parent.mkdir(parents=True)
    source_rows(database, range(1, 6))
    outcome = attempt(tmp_path, 1)
    [read], [written] = outcome.inputs, outcome.outputs
    facet = written.extra["columnLineage"]
    assert {
        (column, f["namespace"], f["name"], f["field"], t["subtype"])
        for column, value in facet["fields"].items()
        for f in value["inputFields"]
        for t in f["transformations"]
    } == {
        ("id", read.namespace, read.name, "id", "IDENTITY"),
        ("id", read.namespace, read.name, "id", "FILTER"),
        ("amount", read.namespace, read.name, "amount", "IDENTITY"),
        ("amount", read.namespace, read.name, "id", "FILTER"),
    }
    assert [(f["namespace"], f["name"], f["field"]) for f in facet["dataset"]] == [
        (read.namespace, read.name, "id")
    ]
