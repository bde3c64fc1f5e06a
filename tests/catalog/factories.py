"""Builders of valid API payloads; tests change only what they are about."""

from __future__ import annotations

import copy
import uuid

TEMPLATE_JOB = {
    "name": "Build Silver Customer Master",
    "type": "gold-analytics",
    "sourceConfig": {
        "type": "multi-table",
        "tables": ["bronze_core_customers", "bronze_crm_customers"],
    },
    "destinationConfig": {
        "silverConfig": {
            "tableName": "silver_customer_master",
            "mergeStrategy": "merge",
            "primaryKey": "customer_id",
        }
    },
    "transformationConfig": {
        "derivedColumns": [
            {"name": "full_name", "expression": "CONCAT(first_name, ' ', last_name)"},
            {
                "name": "customer_tenure_days",
                "expression": "DATEDIFF('day', account_open_date, CURRENT_DATE)",
            },
        ]
    },
}


def unique_table(prefix: str) -> str:
    """A table name no other test writes: a table has one owner job across the catalog."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def template_job(table: str | None = None) -> dict:
    """The template's job, writing ``table`` (default: a silver table of its own)."""
    job = copy.deepcopy(TEMPLATE_JOB)
    job["destinationConfig"]["silverConfig"]["tableName"] = table or unique_table(
        "silver_customer_master"
    )
    return job


def csv_job(table: str | None = None, name: str = "Ingest CRM CSV") -> dict:
    table = table or unique_table("bronze_crm_customers")
    return {
        "name": name,
        "type": "file-based",
        "sourceConfig": {"type": "csv", "fileConfig": {"filePath": "crm/customers.csv"}},
        "destinationConfig": {"bronzeConfig": {"tableName": table}},
    }


def database_job(table: str | None = None, name: str = "Ingest customers") -> dict:
    table = table or unique_table("bronze_core_customers")
    return {
        "name": name,
        "type": "database",
        "sourceConfig": {
            "type": "sql-server",
            "databaseConfig": {
                "connectionId": "conn-core-banking",
                "tableName": "customers",
                "isIncremental": True,
                "deltaColumn": "modified_date",
            },
        },
        "destinationConfig": {"bronzeConfig": {"tableName": table}},
    }


def gold_job(source: str, table: str, name: str = "Gold") -> dict:
    return {
        "name": name,
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": [source]},
        "destinationConfig": {"goldConfig": {"tableName": table}},
        "transformationConfig": {
            "groupBy": ["customer_id"],
            "aggregations": [{"column": "amount", "function": "SUM", "alias": "total"}],
        },
    }


def workflow(**fields) -> dict:
    return {"name": f"wf-{uuid.uuid4().hex[:8]}", **fields}


# fileConfig.filePath values that leave (or cannot name a file in) the landing area, each
# with a word its refusal must use.
BAD_FILE_PATHS = [
    ("../x.csv", "'..'"),
    ("/etc/passwd", "absolute"),
    ("a/../../b", "'..'"),
    ("a/../b.csv", "'..'"),
    ("bad\x00name.csv", "NUL"),
    ("..\\..\\secret.csv", "backslash"),
    ("sales\\2024.csv", "backslash"),
    ("C:/data/x.csv", "absolute"),
    ("C:x.csv", "absolute"),
    ("//server/share/x.csv", "absolute"),
    ("s3://bucket/x.csv", "URL"),
    ("   ", "empty"),
    ("sales/", "folder"),
    (".", "folder"),
    ("a\nb.csv", "control"),
]
