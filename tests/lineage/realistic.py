"""A few hundred run events as FlowForge's workers and another producer send them, built
with the real builders (``run_event``, ``execution_event``, ``Dataset``, ``file_dataset``,
the ``columnLineage`` facet): six workflows chained by their gold tables, three executions
each, retries (a FAIL, then a second attempt), RUNNING progress, an aborted execution, a
source shared by every workflow, schemas and column lineage that change between executions,
and Airflow's OTHER and COMPLETE events naming lake tables (once without FlowForge's facet).
Deterministic for a seed."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from flowforge_shared.contracts.column_lineage import FACET_NAME, Source, facet
from flowforge_shared.contracts.events import (
    Dataset,
    execution_event,
    file_dataset,
    run_event,
)
from flowforge_shared.lake import Lake
from tests.lineage.events import airflow_event, dataset

T0 = datetime(2026, 12, 1, 6, 0, tzinfo=UTC)
LAKE = Lake(root="/srv/flowforge/lake")
CORE = "postgres://core.bank.test:5432"
SHARED = Dataset(CORE, "core.public.currencies")


def lake(layer: str, table: str) -> Dataset:
    namespace, name = LAKE.dataset_name(layer, table)
    return Dataset(
        namespace, name, layer=layer, table=table, location=f"{LAKE.root}/{layer}/{table}"
    )


def _columns(execution: int) -> list[str]:
    # The third execution drops `balance` and adds `segment`: its column edges replace them.
    return (
        ["customer_id", "name", "segment"] if execution == 2 else ["customer_id", "name", "balance"]
    )


def _written(
    table: Dataset, inputs: list[Dataset], execution: int, version: int, rows: int
) -> Dataset:
    columns = _columns(execution)
    first = inputs[0]
    lineage = {
        "customer_id": [Source(first.namespace, first.name, "customer_id", "identity")],
        "name": [Source(first.namespace, first.name, "full_name", "rename")],
        columns[2]: [
            Source(i.namespace, i.name, "amount", "aggregation", f"sum over {i.name}")
            for i in inputs
        ]
        + [Source(first.namespace, first.name, "status", "filter")],
    }
    return Dataset(
        table.namespace,
        table.name,
        layer=table.layer,
        table=table.table,
        location=table.location,
        version=version,
        row_count=rows,
        schema=[{"name": c, "type": "string", "nullable": c != "customer_id"} for c in columns],
        extra={FACET_NAME: facet(lineage)},
    )


def _read(source: Dataset, rows: int) -> Dataset:
    return Dataset(
        source.namespace,
        source.name,
        row_count=rows,
        layer=source.layer,
        table=source.table,
        location=source.location,
        extra=source.extra,
    )


def realistic_events(seed: int = 14) -> list[dict[str, Any]]:
    rng = random.Random(seed)

    def uid() -> str:
        return str(uuid.UUID(int=rng.getrandbits(128)))

    events: list[dict[str, Any]] = []
    versions: dict[str, int] = {}
    when = T0
    for w in range(6):
        workflow_id, workflow = uid(), f"customer 360 #{w}"
        accounts = Dataset(CORE, f"core.public.accounts_{w}")
        crm = file_dataset(
            "file",
            f"/srv/flowforge/landing/crm_{w}.csv",
            sha256=f"{w:064d}",
            size=52_000 + w,
            file_path=f"crm_{w}.csv",
        )
        bronze = [lake("bronze", f"accounts_{w}"), lake("bronze", f"crm_{w}")]
        silver, gold = lake("silver", f"customers_{w}"), lake("gold", f"customer_360_{w}")
        upstream = [lake("gold", f"customer_360_{w - 1}")] if w else []
        jobs = [
            ("ingest accounts", [accounts], bronze[0]),
            ("ingest crm", [crm], bronze[1]),
            ("customers", [*bronze, SHARED], silver),
            ("customer 360", [silver, *upstream], gold),
        ]
        job_ids = {name: uid() for name, _, _ in jobs}
        for execution in range(3):
            execution_id = uid()
            when += timedelta(hours=1)
            events.append(
                execution_event(
                    "START",
                    execution_id=execution_id,
                    workflow_id=workflow_id,
                    workflow_name=workflow,
                    event_time=when,
                )
            )
            outcome = "COMPLETE"
            for number, (name, inputs, output) in enumerate(jobs):
                aborted = w == 1 and execution == 1 and number == 3
                attempts = 2 if (w + execution + number) % 4 == 0 else 1
                for attempt in range(1, attempts + 1):
                    common = {
                        "job_run_id": uid(),
                        "execution_id": execution_id,
                        "workflow_id": workflow_id,
                        "workflow_name": workflow,
                        "job_id": job_ids[name],
                        "job_name": name,
                        "attempt": attempt,
                        "owner": "ops@bank.test",
                    }
                    rows = 1_000 * (w + 1) + 10 * execution + attempt
                    # START and the first RUNNING share their eventTime: the type orders them.
                    events.append(
                        run_event(
                            "START", inputs=inputs, outputs=[output], event_time=when, **common
                        )
                    )
                    events.append(
                        run_event(
                            "RUNNING",
                            inputs=inputs,
                            outputs=[output],
                            facets={"flowforge_progress": {"rowsRead": rows // 2, "rowsStaged": 0}},
                            event_time=when,
                            **common,
                        )
                    )
                    when += timedelta(seconds=rng.randint(2, 40))
                    if aborted:
                        events.append(
                            run_event(
                                "ABORT", inputs=inputs, outputs=[output], event_time=when, **common
                            )
                        )
                        outcome = "ABORT"
                        break
                    if attempt < attempts:
                        events.append(
                            run_event(
                                "FAIL",
                                inputs=inputs,
                                outputs=[output],
                                facets={
                                    "flowforge_error": {
                                        "message": f"{name}: the source closed the connection",
                                        "detail": "psycopg.OperationalError: server closed",
                                        "retryable": True,
                                    }
                                },
                                event_time=when,
                                **common,
                            )
                        )
                        continue
                    versions[output.name] = versions.get(output.name, -1) + 1
                    events.append(
                        run_event(
                            "COMPLETE",
                            inputs=[_read(i, rows) for i in inputs],
                            outputs=[
                                _written(output, inputs, execution, versions[output.name], rows - 7)
                            ],
                            facets={
                                "flowforge_result": {"rowsRead": rows, "rowsWritten": rows - 7}
                            },
                            event_time=when,
                            **common,
                        )
                    )
                if outcome == "ABORT":
                    break
            when += timedelta(seconds=1)
            events.append(
                execution_event(
                    outcome if outcome == "ABORT" else "COMPLETE",
                    execution_id=execution_id,
                    workflow_id=workflow_id,
                    workflow_name=workflow,
                    event_time=when,
                )
            )
        if w in (2, 3):
            # An execution still running: its first job's START and RUNNING carry no row
            # counts nor schemas, and must not hide those of the COMPLETE before them.
            execution_id, name, inputs, output = uid(), *jobs[0]
            when += timedelta(minutes=30)
            common = {
                "job_run_id": uid(),
                "execution_id": execution_id,
                "workflow_id": workflow_id,
                "workflow_name": workflow,
                "job_id": job_ids[name],
                "job_name": name,
                "attempt": 1,
            }
            events.append(
                execution_event(
                    "START",
                    execution_id=execution_id,
                    workflow_id=workflow_id,
                    workflow_name=workflow,
                    event_time=when,
                )
            )
            for event_type in ("START", "RUNNING"):
                events.append(
                    run_event(
                        event_type, inputs=inputs, outputs=[output], event_time=when, **common
                    )
                )
        # Another producer exports the gold table: an OTHER event naming it by location only
        # (no flowforge_table facet), then its COMPLETE.
        gold_bare = dataset(gold.namespace, gold.name)
        export = dataset("s3://exports.bank.test", f"customer_360_{w}.parquet", columns=("id",))
        if w == 0:  # and writes a bronze table's location, bare, with a version newer than
            # any of FlowForge's: it stays FlowForge's table, whichever came first
            export = dataset(bronze[1].namespace, bronze[1].name, columns=("id", "fixed"))
            export["facets"]["version"] = {"datasetVersion": "99"}
        export_run = uid()
        for event_type in ("OTHER", "COMPLETE"):
            when += timedelta(seconds=5)
            events.append(
                airflow_event(
                    event_type=event_type,
                    run_id=export_run,
                    dag_id=f"export_{w}",
                    inputs=[gold_bare],
                    outputs=[export],
                    event_time=when.isoformat(),
                )
            )
    return events
