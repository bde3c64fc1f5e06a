"""OpenLineage events as other producers send them, built by hand from the spec (not by
FlowForge's code), for the tests of POST /api/v1/lineage."""

from __future__ import annotations

import uuid
from typing import Any

AIRFLOW = "https://github.com/apache/airflow/tree/providers-openlineage/1.14.0"
RUN_EVENT = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/RunEvent"
POSTGRES = "postgres://127.0.0.1:5432"


def facet(name: str, spec: str = "1-0-1", /, **fields: Any) -> dict[str, Any]:
    return {
        "_producer": AIRFLOW,
        "_schemaURL": f"https://openlineage.io/spec/facets/{spec}/{name}.json#/$defs/{name}",
        **fields,
    }


def airflow_facet(**fields: Any) -> dict[str, Any]:
    """Airflow's own run facet (not a standard one): only the base facet applies."""
    return {
        "_producer": AIRFLOW,
        "_schemaURL": "https://raw.githubusercontent.com/apache/airflow/providers-openlineage/"
        "1.14.0/airflow/providers/openlineage/facets/AirflowRunFacet.json",
        **fields,
    }


def dataset(namespace: str, name: str, *, columns: tuple[str, ...] = ()) -> dict[str, Any]:
    found: dict[str, Any] = {"namespace": namespace, "name": name}
    if columns:
        found["facets"] = {
            "schema": facet(
                "SchemaDatasetFacet",
                "1-1-1",
                fields=[{"name": column, "type": "text"} for column in columns],
            ),
            "dataSource": facet("DatasourceDatasetFacet", name=namespace, uri=namespace),
        }
    return found


def airflow_event(
    *,
    event_type: str = "COMPLETE",
    dag_id: str = "export_transactions",
    task_id: str = "to_csv",
    namespace: str = "airflow://airflow-prod",
    inputs: list[dict] | None = None,
    outputs: list[dict] | None = None,
    run_id: str | None = None,
    event_time: str = "2026-12-05T03:00:07.123456+00:00",
) -> dict[str, Any]:
    """A task's run event as Airflow's OpenLineage provider sends it: job ``dag_id.task_id``,
    the DAG run as its ``parent`` (and root), ``processing_engine``, ``nominalTime`` and
    Airflow's own facets."""
    dag_run = str(uuid.uuid4())
    return {
        "eventType": event_type,
        "eventTime": event_time,
        "producer": AIRFLOW,
        "schemaURL": RUN_EVENT,
        "run": {
            "runId": run_id or str(uuid.uuid4()),
            "facets": {
                "parent": facet(
                    "ParentRunFacet",
                    "1-1-0",
                    run={"runId": dag_run},
                    job={"namespace": namespace, "name": dag_id},
                    root={
                        "run": {"runId": dag_run},
                        "job": {"namespace": namespace, "name": dag_id},
                    },
                ),
                "processing_engine": facet(
                    "ProcessingEngineRunFacet",
                    "1-1-1",
                    version="2.10.4",
                    name="Airflow",
                    openlineageAdapterVersion="1.14.0",
                ),
                "nominalTime": facet(
                    "NominalTimeRunFacet", nominalStartTime="2026-12-05T03:00:00+00:00"
                ),
                "airflow": airflow_facet(
                    dag={"dag_id": dag_id, "schedule_interval": "@daily"},
                    task={"task_id": task_id, "operator_class": "SQLExecuteQueryOperator"},
                    taskInstance={"try_number": 1},
                ),
            },
        },
        "job": {
            "namespace": namespace,
            "name": f"{dag_id}.{task_id}",
            "facets": {
                "jobType": facet(
                    "JobTypeJobFacet",
                    "2-0-2",
                    processingType="BATCH",
                    integration="AIRFLOW",
                    jobType="TASK",
                ),
                "sql": facet("SQLJobFacet", "1-1-0", query="COPY (SELECT * FROM t) TO STDOUT"),
            },
        },
        "inputs": inputs if inputs is not None else [],
        "outputs": outputs if outputs is not None else [],
    }
