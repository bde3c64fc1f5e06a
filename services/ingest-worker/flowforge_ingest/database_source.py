"""A database job: read a table, a read-only query or a stored procedure in Arrow batches
into bronze, incrementally when asked.

Incremental reads are correct by construction:
1. the run fixes its upper bound first — the current maximum of the delta column — and reads
   ``watermark <= delta <= upper``, so rows committed while the read runs are taken next time
   and a row committed later with the watermark's own value (a tie) is not lost; the rows
   bronze already holds are dropped by (key, delta) before the write (:mod:`lookback`);
2. bounds are bound as typed parameters (full source precision: datetime2(7), offsets,
   rowversion), never formatted into text, and the session time zone is pinned to UTC;
3. the new watermark (the upper bound) rides in the bronze commit and in the COMPLETE event,
   and is stored only after the commit succeeded; a retry of the same run that finds its own
   commit reports the watermark recorded in that commit (its own bound may lie further).
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from flowforge_ingest import lookback
from flowforge_ingest.bronze import AuditContext, write_bronze
from flowforge_ingest.column_lineage import bronze_column_lineage
from flowforge_ingest.connectors.base import ConnectionParams
from flowforge_ingest.connectors.registry import connector_for
from flowforge_ingest.naming import source_datasets
from flowforge_ingest.operations import connection_params
from flowforge_runtime.job import JobContext, JobOutcome
from flowforge_shared.contracts.column_lineage import FACET_NAME
from flowforge_shared.contracts.jobs import DatabaseConfig, DatabaseSource, JobConfig
from flowforge_shared.contracts.names import NameProblem, resolve_object_name
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import output_dataset
from flowforge_shared.telemetry import tracer

if TYPE_CHECKING:
    from flowforge_ingest.distributed_read import RangeDispatch

log = logging.getLogger("flowforge.ingest")

WATERMARK_KEY = "flowforge.watermark"
"""Commit metadata: the upper bound the committed read went to (JSON)."""


def ingest_database(
    context: JobContext,
    job: JobConfig,
    source: DatabaseSource,
    dispatch: RangeDispatch | None = None,
) -> JobOutcome:
    """``dispatch``: given on a Celery deployment, the key ranges of a parallel read are
    read as tasks on the ingest queue (:mod:`.distributed_read`); else threads of this job."""
    from flowforge_ingest.connectors import sql, watermark

    task, lake = context.task, context.lake
    config = source.database_config
    bronze = job.destination_config.bronze_config
    assert bronze is not None
    if task.connection is None:
        raise PermanentError(
            f"job {job.name}: connection {config.connection_id} does not exist (any more)"
        )
    params = connection_params(task.connection, context.settings)
    connector = connector_for(params.db_type)
    schema, table, procedure = read_target(config, params, job.name)
    # MySQL's schema is a database: other_db.orders, not own_db.other_db.orders
    database = None if params.db_type == "mysql" and schema else params.database
    source_name = (
        ".".join(part for part in (database, schema, table or procedure) if part) or "query"
    )
    read = source_datasets(
        params, schema=schema, table=table, procedure=procedure, query=config.query
    )
    rows_read = 0
    next_mark = None
    notes: list[str] = []

    def on_batch(rows: int) -> None:
        nonlocal rows_read
        rows_read += rows
        context.progress(rows_read, staged=rows_read)

    with (
        connector.connect(params) as conn,
        tracer.start_as_current_span(f"write {bronze.table_name}") as span,
    ):
        columns = connector.describe(conn, schema, table) if table else None
        previous = next_mark = start = None
        source_type = None
        if config.is_incremental:
            source_type = _source_type(columns, config.delta_column)
            if task.watermark:
                previous = watermark.Watermark.from_dict(task.watermark)
                if previous.column != config.delta_column:
                    previous = None  # the delta column changed: start over
            maximum = _scalar(
                connector,
                conn,
                sql.plan_max(
                    params.db_type,
                    schema=schema,
                    table=table,
                    query=config.query,
                    delta_column=config.delta_column,
                    delta_type=source_type,
                ),
            )
            if maximum is None:  # an empty source: nothing to read, keep the watermark
                return _nothing(lake, bronze.table_name, read, previous)
            next_mark = watermark.from_value(
                maximum, params.db_type, source_type, column=config.delta_column
            )
        lower, include_lower, known = previous, False, None
        if previous is not None:
            keys = lookback.key_columns(config.unique_key, columns)
            start = lookback.window_start(previous, context.settings)
            if start is not None:
                lookback.require_key(keys, job.name)
            if not keys and not previous < next_mark:
                # Without a key a row read again cannot be told from a new one: read the
                # rows at the watermark again only together with newer rows.
                return _nothing(lake, bronze.table_name, read, previous)
            # Read from the watermark on, inclusive: a row committed after the last run with
            # the watermark's own value (a tie) is read; with a key, what bronze holds is
            # dropped, so nothing is loaded twice.
            lower, include_lower = start or previous, True
            next_mark = watermark.later(previous, next_mark)
            if keys:
                known = lookback.known_rows(
                    lake, bronze.table_name, keys, config.delta_column, since=lower
                )
        read_arguments = dict(
            schema=schema,
            table=table,
            query=config.query,
            procedure=procedure,
            parameters=config.parameters,
            delta_column=config.delta_column if config.is_incremental else None,
            lower=lower,
            upper=next_mark,
            include_lower=include_lower,
            delta_type=source_type,
        )
        ranges = (
            _key_ranges(connector, conn, params, config, schema, table, columns, job.name)
            if config.partitions > 1 and table
            else []
        )
        if len(ranges) > 1:
            span.set_attribute("flowforge.ranges", len(ranges))
        # ``dispatch`` is given only where ranges may be tasks (tasks._runner: a broker and
        # FLOWFORGE_DISTRIBUTED_RANGES). The lookback's "drop what bronze holds" would run in
        # every range task: such reads stay threads (docs/connectors.md, "Distributed").
        if dispatch is not None and len(ranges) > 1 and known is None:
            notes.append(
                f"read in {len(ranges)} key ranges of {ranges[0].column} as tasks of the "
                "ingest workers, committed once"
            )
            result = _read_distributed(
                context,
                dispatch,
                bronze,
                conn,
                params,
                config,
                columns,
                read_arguments,
                ranges,
                source_name,
                next_mark,
            )
            rows_read = result.rows_written
        else:
            if len(ranges) > 1:
                notes.append(
                    f"read in {len(ranges)} key ranges of {ranges[0].column} in parallel, "
                    "committed once"
                )
                stream = _parallel_stream(
                    connector, conn, params, config, columns, read_arguments, ranges
                )
            else:
                plan = sql.plan_read(params.db_type, **read_arguments)
                stream = connector.execute_batches(
                    conn, plan.sql, plan.params, config.batch_size, columns
                )
            if known is not None:
                stream = lookback.WithoutKnownRows(stream, known)
            try:
                result = write_bronze(
                    lake,
                    bronze.table_name,
                    stream,
                    mode=bronze.write_mode,
                    audit=AuditContext(
                        execution_id=task.execution_id, job_id=task.job_id, source=source_name
                    )
                    if bronze.audit_columns
                    else None,
                    app_id=task.app_id,
                    run_sequence=task.run_sequence,
                    execution_id=task.execution_id,
                    metadata={WATERMARK_KEY: json.dumps(next_mark.to_dict())}
                    if next_mark
                    else None,
                    on_batch=on_batch,
                    should_stop=context.should_stop,
                )
            finally:
                stream.close()
        span.set_attribute("flowforge.rows", result.rows_written)
    if result.already_applied is not None:
        # A retry recomputes its upper bound, which may lie past what the committed attempt
        # read: the watermark to store is the one that commit recorded, or rows in between
        # would never be read.
        committed = result.already_applied.metadata.get(WATERMARK_KEY)
        next_mark = watermark.Watermark.from_dict(json.loads(committed)) if committed else None
    # The table as the write left it: its log is not read again.
    written = output_dataset(lake, "bronze", bronze.table_name, current=result.table)
    delta_column = config.delta_column if config.is_incremental else None
    not_sent = result.absent_columns
    # A query joining several tables names them all; which column came from which is not
    # followed (yet): its bronze columns get no column lineage.
    lineage = (
        bronze_column_lineage(read[0], written, delta_column=delta_column, not_sent=not_sent)
        if len(read) == 1
        else None
    )
    if lineage is not None:
        # Dataset.extra (facet name -> facet) is the one way in the event contract promises.
        written.extra[FACET_NAME] = lineage
    return JobOutcome(
        rows_read=rows_read if not result.skipped_as_already_committed else result.rows_written,
        rows_written=result.rows_written,
        inputs=read,
        outputs=[written],
        already_applied=result.already_applied,
        notes=notes + list(result.notes),
        watermark=next_mark.to_dict() if next_mark else None,
        tables={("bronze", bronze.table_name): result.table} if result.table is not None else {},
    )


def _read_distributed(
    context: JobContext,
    dispatch: RangeDispatch,
    bronze,
    conn,
    params,
    config,
    columns,
    read_arguments,
    ranges,
    source_name,
    next_mark,
):
    """The key ranges as ``read_range`` tasks on the ingest queue, this job coordinating:
    range 0 read here, every range no task took read here too, the staged tables committed
    into bronze once (docs/connectors.md, "Distributed")."""
    from flowforge_ingest.bronze import BronzeResult, _Commit, plan_write
    from flowforge_ingest.connectors import postgresql
    from flowforge_ingest.distributed_read import (
        coordinate,
        encode_schema,
        open_range,
        range_spec,
        read_range,
    )
    from flowforge_ingest.staged import attempt_folder, clean_staged, commit_staged

    task, lake, settings = context.task, context.lake, context.settings
    snapshot = postgresql.export_snapshot(conn) if params.db_type == "postgresql" else None
    audit = (
        AuditContext(
            execution_id=task.execution_id,
            job_id=task.job_id,
            source=source_name,
            ingested_at=datetime.now(UTC),
        )
        if bronze.audit_columns
        else None
    )
    folder = attempt_folder(task.execution_id, task.run_sequence, context.attempt)
    spec = range_spec(
        execution_id=task.execution_id,
        run_sequence=task.run_sequence,
        attempt=context.attempt,
        job_name=str(task.job.get("name", task.job_id)),
        bronze_table=bronze.table_name,
        folder=folder,
        connection=task.connection or {},
        read_arguments=read_arguments,
        ranges=ranges,
        snapshot=snapshot,
        batch_size=config.batch_size,
        columns=columns,
        audit=audit,
        claim_ttl=dispatch.claim_ttl,
    )
    commit = _Commit(
        task.app_id,
        task.run_sequence,
        task.execution_id,
        {WATERMARK_KEY: json.dumps(next_mark.to_dict())} if next_mark else {},
    )
    claims = dispatch.claims(task.execution_id, task.run_sequence, context.attempt)
    holder = f"coordinator:{uuid.uuid4().hex}"
    first = [open_range(spec, 0, settings)]  # its columns plan the write
    try:
        plan = plan_write(
            lake, bronze.table_name, first[0][0].schema, bronze.write_mode, audit, commit
        )
        if isinstance(plan, BronzeResult):
            return plan  # a retry found this run's commit
        spec["source"] = encode_schema(first[0][0].schema)
        spec["target"] = encode_schema(plan.target)
        reported = [0, 0.0]

        def report(force: bool = False) -> None:
            rows, now = claims.rows(), time.monotonic()
            if rows != reported[0] and (force or now - reported[1] >= 1.0):
                reported[:] = [rows, now]
                context.progress(rows, staged=rows)

        def on_batch(rows: int) -> None:
            claims.add_rows(rows)
            report()

        def read_own(index: int):
            opened = first.pop() if index == 0 and first else None
            return read_range(
                spec,
                index,
                lake=lake,
                settings=settings,
                should_stop=context.should_stop,
                on_batch=on_batch,
                opened=opened,
            )

        staged = coordinate(
            len(ranges),
            claims,
            holder,
            read_own=read_own,
            dispatch=lambda indexes: [dispatch.send(spec, index) for index in indexes],
            should_stop=context.should_stop,
            deadline=time.monotonic() + 0.9 * settings.task_time_limit,
            poll=dispatch.poll,
            on_wait=report,
        )
    finally:
        for stream, close_connection in first:  # range 0 never read: close it
            with contextlib.suppress(Exception):
                stream.close()
            with contextlib.suppress(Exception):
                close_connection()
    result = commit_staged(lake, bronze.table_name, plan, staged, bronze.write_mode, commit)
    if result.already_applied is None:
        # Committed: the staged logs go (their files are bronze's now). When the outcome
        # is unknown (a commit found rather than made), nothing is deleted.
        try:
            clean_staged(lake, bronze.table_name, folder, staged)
            claims.forget(len(ranges))
        except Exception:  # noqa: BLE001 - tidying is never worth a failed job
            log.warning("could not clean the staged ranges of %s", folder, exc_info=True)
    return result


def read_target(
    config: DatabaseConfig, params: ConnectionParams, job_name: str
) -> tuple[str | None, str | None, str | None]:
    """(schema, table, procedure) a job reads: a qualified ``tableName`` or
    ``storedProcedure`` (``sales.Orders``, ``[db].[risk].[usp_x]``) split into its parts,
    which the SQL plans quote one by one; the schema is the name's own, else the job's
    ``schema``, else the connection's ``schema`` option. A name that cannot be read, or whose
    database is not the connection's, fails the job (the catalog refuses both on save)."""
    named = config.table_name or config.stored_procedure
    schema = config.schema_name
    if not named:
        return schema or params.options.get("schema"), None, None
    try:
        target = resolve_object_name(params.db_type, named, schema=schema, database=params.database)
    except NameProblem as problem:
        field = "tableName" if config.table_name else "storedProcedure"
        raise PermanentError(f"job {job_name}: {field} {problem}") from None
    schema = target.schema or params.options.get("schema")
    if config.table_name:
        return schema, target.name, None
    return schema, None, target.name


def _key_ranges(connector, conn, params, config, schema, table, columns, job_name):
    """The key ranges of a parallel read (parallel_read.py); one range when the table's key
    span cannot be split (empty, a single value)."""
    from flowforge_ingest.connectors import sql
    from flowforge_ingest.parallel_read import key_column, key_ranges

    where = ".".join(part for part in (schema, table) if part)
    key = key_column(columns or [], config.partition_column, where, job_name)
    plan = sql.plan_key_bounds(params.db_type, schema=schema, table=table, column=key.name)
    stream = connector.execute_batches(conn, plan.sql, plan.params, 1, None)
    lowest = highest = None
    try:
        for batch in stream:
            if batch.num_rows:
                lowest, highest = batch.column(0)[0].as_py(), batch.column(1)[0].as_py()
                break
    finally:
        stream.close()
    return key_ranges(key.name, lowest, highest, config.partitions)


def _parallel_stream(connector, conn, params, config, columns, read_arguments, ranges):
    """One connection and one statement per range, read in threads (parallel_read.py). On
    PostgreSQL every range reads in one snapshot, exported by the job's own connection
    (which then holds it, idle, until the read is over)."""
    from flowforge_ingest.connectors import postgresql, sql
    from flowforge_ingest.parallel_read import ParallelStream

    snapshot = postgresql.export_snapshot(conn) if params.db_type == "postgresql" else None

    def opener(key_range):
        def open_range():
            plan = sql.plan_read(params.db_type, key_range=key_range, **read_arguments)
            range_conn = connector.connect(params)
            try:
                if snapshot is not None:
                    postgresql.use_snapshot(range_conn, snapshot)
                stream = connector.execute_batches(
                    range_conn, plan.sql, plan.params, config.batch_size, columns
                )
            except BaseException:
                range_conn.close()
                raise
            return stream, range_conn.close

        return open_range

    return ParallelStream.open([opener(key_range) for key_range in ranges])


def _source_type(columns, delta_column: str | None) -> str | None:
    for column in columns or []:
        if column.name == delta_column:
            return column.source_type
    return None


def _scalar(connector, conn, plan):
    stream = connector.execute_batches(conn, plan.sql, plan.params, 1, None)
    try:
        for batch in stream:
            if batch.num_rows:
                return batch.column(0)[0].as_py()
    finally:
        stream.close()
    return None


def _nothing(lake, table, read, previous) -> JobOutcome:
    return JobOutcome(
        rows_read=0,
        rows_written=0,
        inputs=read,
        outputs=[output_dataset(lake, "bronze", table)] if lake.load("bronze", table) else [],
        watermark=previous.to_dict() if previous else None,
    )
