"""A gold-analytics job, end to end: read the input tables, build the silver or gold table,
describe what was read and written. A plain function of a :class:`JobContext`, testable
without a broker."""

from __future__ import annotations

import logging

from flowforge_runtime.job import Cancelled, JobContext, JobOutcome
from flowforge_shared.contracts.column_lineage import FACET_NAME
from flowforge_shared.contracts.events import Dataset
from flowforge_shared.contracts.jobs import JobConfig, MultiTableSource, TransformationConfig
from flowforge_shared.lake import output_dataset
from flowforge_shared.telemetry import tracer
from flowforge_transform.column_lineage import column_lineage
from flowforge_transform.gold import build_gold
from flowforge_transform.inputs import absent_columns, find_table, read_union
from flowforge_transform.silver import build_silver

log = logging.getLogger(__name__)


def run_transform_job(context: JobContext) -> JobOutcome:
    task, lake = context.task, context.lake
    job = JobConfig.model_validate(task.job)
    if not isinstance(job.source_config, MultiTableSource):
        raise ValueError(f"job {job.name}: a gold-analytics job reads a multi-table source")
    with tracer.start_as_current_span(f"read {', '.join(job.source_config.tables)}") as span:
        rows = read_union(lake, job.source_config.tables)
        span.set_attribute("flowforge.rows", rows.num_rows)
    context.progress(rows.num_rows)
    if context.should_stop():
        raise Cancelled("the execution was cancelled")
    steps = job.transformation_config or TransformationConfig()
    destination = job.destination_config
    if destination.silver_config is None and destination.gold_config is None:
        raise ValueError(f"job {job.name}: a gold-analytics job writes silverConfig or goldConfig")
    table = (destination.silver_config or destination.gold_config).table_name
    with tracer.start_as_current_span(f"write {table}") as span:
        layer, result = _build(context, job, rows, steps)
        span.set_attribute("flowforge.rows", result.rows_written)
        span.set_attribute(
            "flowforge.skipped_as_already_committed", result.skipped_as_already_committed
        )
    inputs: dict[str, Dataset] = {}
    for name in job.input_tables:
        input_layer, _ = find_table(lake, name)
        inputs[name] = output_dataset(lake, input_layer, name)
    output = output_dataset(lake, layer, table, result.row_count)
    return JobOutcome(
        rows_read=rows.num_rows,
        rows_written=result.rows_written,
        inputs=list(inputs.values()),
        outputs=[_with_column_lineage(job, inputs, output)],
        already_applied=result.already_applied,
        notes=list(getattr(result, "notes", ())),
    )


def _with_column_lineage(job: JobConfig, inputs: dict[str, Dataset], output: Dataset) -> Dataset:
    # The table is committed by now: a lineage problem is logged, never a failed run.
    try:
        facet = column_lineage(job, inputs, output)
    except Exception:
        log.exception("job %s: column lineage of %s not computed", job.name, output.label)
        return output
    if facet is not None:
        # Dataset.extra (facet name -> facet) is the one way in the event contract promises.
        output.extra[FACET_NAME] = facet
    return output


def _build(context: JobContext, job: JobConfig, rows, steps: TransformationConfig):
    task, lake = context.task, context.lake
    destination = job.destination_config
    if destination.silver_config is not None:
        return "silver", build_silver(
            lake,
            rows,
            destination.silver_config,
            steps.derived_columns,
            steps.filters,
            app_id=task.app_id,
            run_sequence=task.run_sequence,
            execution_id=task.execution_id,
            combine_sources=len(job.source_config.tables) > 1,
            absent=absent_columns(lake, job.source_config.tables),
        )
    return "gold", build_gold(
        lake,
        rows,
        steps,
        destination.gold_config,
        app_id=task.app_id,
        run_sequence=task.run_sequence,
        execution_id=task.execution_id,
    )
