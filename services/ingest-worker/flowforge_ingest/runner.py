"""An ingest job, end to end: read the source in batches, write the bronze table in one
idempotent commit, quarantine bad rows, describe what was read and written. A plain function
of a :class:`JobContext`, testable without a broker; database sources plug in here."""

from __future__ import annotations

from flowforge_ingest import errors
from flowforge_ingest.bronze import (
    AuditContext,
    quarantine_table_name,
    write_bronze,
    write_quarantine,
)
from flowforge_ingest.column_lineage import bronze_column_lineage, csv_renames
from flowforge_ingest.csv_source import read_csv_batches
from flowforge_ingest.landing import local_copy
from flowforge_runtime.job import Cancelled, JobContext, JobOutcome
from flowforge_shared.contracts.column_lineage import FACET_NAME
from flowforge_shared.contracts.events import file_dataset
from flowforge_shared.contracts.jobs import CsvSource, JobConfig, uploaded_file_path
from flowforge_shared.lake import output_dataset
from flowforge_shared.objectstore import landing_dataset
from flowforge_shared.telemetry import tracer


def run_ingest_job(context: JobContext, dispatch=None) -> JobOutcome:
    """``dispatch`` (a :class:`~flowforge_ingest.distributed_read.RangeDispatch`, given by
    the Celery task): a parallel read's ranges become tasks; without it, threads."""
    job = JobConfig.model_validate(context.task.job)
    source = job.source_config
    if isinstance(source, CsvSource):
        return _ingest_csv(context, job, source)
    from flowforge_ingest.database_source import ingest_database

    return ingest_database(context, job, source, dispatch)


def _ingest_csv(context: JobContext, job: JobConfig, source: CsvSource) -> JobOutcome:
    task, lake = context.task, context.lake
    file_config = source.file_config
    file_path = file_config.file_path or uploaded_file_path(file_config.file_id)
    bronze = job.destination_config.bronze_config
    assert bronze is not None  # the contract guarantees it for ingest jobs
    rows_read = 0

    def on_batch(rows: int) -> None:
        nonlocal rows_read
        rows_read += rows
        context.progress(rows_read, staged=rows_read)

    with (
        local_copy(context.settings, file_path) as staged,
        tracer.start_as_current_span(f"write {bronze.table_name}") as span,
    ):
        # The digest of the bytes copied (and then read), not of the landing file now.
        namespace, name = landing_dataset(context.settings, file_path)
        read = file_dataset(
            namespace, name, sha256=staged.sha256, size=staged.size, file_path=file_path
        )
        context.reading(read)
        span.set_attribute("flowforge.source", file_path)
        span.set_attribute("flowforge.source_sha256", staged.sha256)
        batches = read_csv_batches(staged.path, file_config, source_name=file_path)
        try:
            result = write_bronze(
                lake,
                bronze.table_name,
                batches,
                mode=bronze.write_mode,
                audit=AuditContext(
                    execution_id=task.execution_id,
                    job_id=task.job_id,
                    source=file_path,
                )
                if bronze.audit_columns
                else None,
                app_id=task.app_id,
                run_sequence=task.run_sequence,
                execution_id=task.execution_id,
                on_batch=on_batch,
                should_stop=context.should_stop,
            )
        except errors.Cancelled as stopped:
            raise Cancelled(str(stopped)) from None
        finally:
            batches.close()  # stops its parsing thread, whatever write_bronze did
        span.set_attribute("flowforge.rows_read", rows_read)
        span.set_attribute("flowforge.rows", result.rows_written)
        span.set_attribute(
            "flowforge.skipped_as_already_committed", result.skipped_as_already_committed
        )
        quarantined = list(getattr(batches, "quarantined", []) or [])
    # The table as the write left it: its log is not read again.
    written = output_dataset(lake, "bronze", bronze.table_name, current=result.table)
    lineage = bronze_column_lineage(
        read, written, renames=csv_renames(file_config), not_sent=result.absent_columns
    )
    if lineage is not None:
        # Dataset.extra (facet name -> facet) is the one way in the event contract promises.
        written.extra[FACET_NAME] = lineage
    outputs = [written]
    tables = {("bronze", bronze.table_name): result.table} if result.table is not None else {}
    if quarantined:
        set_aside = write_quarantine(
            lake,
            bronze.table_name,
            quarantined,
            execution_id=task.execution_id,
            app_id=task.app_id,
            run_sequence=task.run_sequence,
        )
        outputs.append(
            output_dataset(
                lake, "bronze", quarantine_table_name(bronze.table_name), current=set_aside.table
            )
        )
        if set_aside.table is not None:
            tables[("bronze", quarantine_table_name(bronze.table_name))] = set_aside.table
    return JobOutcome(
        rows_read=rows_read if not result.skipped_as_already_committed else result.rows_written,
        rows_written=result.rows_written,
        inputs=[read],
        outputs=outputs,
        quarantined=len(quarantined),
        already_applied=result.already_applied,
        notes=list(result.notes),
        tables=tables,
    )
