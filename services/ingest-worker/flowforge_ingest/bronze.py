"""Writing a stream of record batches into a bronze Delta table.

This module owns :func:`write_bronze` and :func:`write_quarantine`, the audit columns and
the schema-drift rules of bronze tables.

One call, one commit
    The batches are streamed into ``deltalake.write_deltalake`` (a RecordBatchReader over a
    generator, never a materialised table) and land in a single atomic commit. A source
    error, a schema problem or a cancellation before the commit leaves the table unchanged
    (at most orphan Parquet files that readers ignore and VACUUM removes).

Idempotency
    Every commit carries the application transaction ``(app_id, run_sequence)``. Before
    writing, the table's snapshot is asked for the app id's last committed sequence
    (:func:`flowforge_shared.lake.prior_commit`). At ``run_sequence`` the run's own earlier
    commit is reported (``already_applied``: which execution, version and rows) and nothing
    is written again; beyond it, a later run already wrote the table and this one is stale:
    :class:`~flowforge_shared.lake.StaleRunError`, never a success. The write is made
    against that same snapshot, so a duplicate delivery racing us is refused by delta-rs's
    conflict check (it compares application transactions) and reported the same way rather
    than appending the rows twice.

Audit columns (when an :class:`AuditContext` is given)
    ``_ingested_at`` (timestamp, UTC; one value per call), ``_execution_id``, ``_job_id``,
    ``_source`` (the file path as configured, or ``db.table``) and ``_source_row`` (the
    source's row number when the batches carry a ``_source_row`` column, else the 1-based
    position of the row in the stream).

Delta storage (:func:`delta_storage_schema`, :func:`to_delta_storage`)
    delta-rs 1.6 stores unsigned integers in the signed type of the same width (and fails
    on values beyond it), cuts ``timestamp[ns]`` to microseconds without a word, and
    refuses ``time``, ``duration`` and interval types. Every batch is therefore converted
    before it is written, exactly, by type alone (never by the values of one run, so every
    run of a job stores the same columns):

    ===========================  ================================================
    Arrow type from the source   stored as
    ===========================  ================================================
    uint8 / uint16 / uint32      int16 / int32 / int64
    uint64                       decimal128(20, 0)
    timestamp[s|ms|us]           timestamp[us] (zoned: the UTC instant)
    timestamp[ns] (column ``c``) ``c`` timestamp[us], rounded down to the
                                 microsecond, plus ``c__ns``: the exact value as
                                 ISO 8601 text with 9 fractional digits
                                 (``2024-05-06T07:08:09.123456700``, ``Z`` when zoned)
    time32 / time64              string ``HH:MM:SS[.fff|.ffffff|.fffffffff]``
    duration                     int64 microseconds, same column name
    month_day_nano_interval      string, ISO 8601 duration (``P1Y2M3DT4H5M6.5S``)
    ===========================  ================================================

    Inside lists and structs the same rules apply, except that a ``timestamp[ns]`` there
    is stored as its ISO text (a list has no room for a sibling column). Converted columns
    carry a Delta column comment (field metadata ``comment``) saying what they hold. The
    conversion runs before the drift check, so the check compares stored types.

Schema drift (append to an existing table)
    A new source column is added to the table; a table column missing from the source is
    written as nulls and named in the commit (``flowforge.absent_columns``, with the load's
    execution and job ids, so silver tells "not sent" from "null"); a type that differs is cast when that is lossless or a well-known
    widening (a narrower integer to a wider one or to float64, float32 to float64, a
    decimal to a wider decimal, an integer to a decimal that holds it, any number, boolean,
    date or timestamp to a string column, a timestamp of another unit or zone to the
    table's timestamp; lists and structs item by item, whatever their item is named);
    anything else fails *before* writing with :class:`SchemaDriftError`
    naming the column and both types. ``overwrite`` replaces the data and the schema.

Throughput and memory
    The source is pulled on a helper thread (:func:`prefetch`, a queue of two batches), so
    producing batches (pyarrow, GIL released) overlaps Parquet encoding (delta-rs), which
    is the slower stage. Parquet files use dictionary encoding for string columns only (on
    numbers and timestamps it rarely pays, and writing took twice as long with it) and row
    groups of 128Ki rows (the writer buffers a row group: smaller groups, lower peak RSS).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Literal, Protocol, TypeVar

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import ColumnProperties, DeltaTable, WriterProperties, write_deltalake
from deltalake.exceptions import CommitFailedError, DeltaError

from flowforge_ingest.errors import Cancelled, ConcurrentWriteError, SchemaDriftError
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import (
    Lake,
    PriorCommit,
    commit_properties,
    prior_commit,
    this_runs_commit,
)
from flowforge_shared.widening import is_exact_number_text, widen_table, wider_type

SOURCE_ROW_COLUMN = "_source_row"
INGESTED_AT_COLUMN = "_ingested_at"
EXECUTION_ID_COLUMN = "_execution_id"
JOB_ID_COLUMN = "_job_id"
SOURCE_COLUMN = "_source"
AUDIT_COLUMNS = (
    INGESTED_AT_COLUMN,
    EXECUTION_ID_COLUMN,
    JOB_ID_COLUMN,
    SOURCE_COLUMN,
    SOURCE_ROW_COLUMN,
)
QUARANTINE_SUFFIX = "__quarantine"
ABSENT_COLUMNS_KEY = "flowforge.absent_columns"
"""Commit metadata of an append whose source lacked some of the table's columns (written as
nulls): ``{"executionId", "jobId", "columns"}``, so silver can leave those columns alone."""
NANOS_SUFFIX = "__ns"
"""The sibling of a ``timestamp[ns]`` column holding its exact value as text."""

_UTC_MICROS = pa.timestamp("us", "UTC")
_PREFETCH_DEPTH = 2
_ROW_GROUP_ROWS = 128 * 1024
_DICTIONARY_SAMPLE = 10_000
_DICTIONARY_MAX_DISTINCT = 0.5

T = TypeVar("T")


class BatchSource(Protocol):
    """What write_bronze reads: a schema known up front and one pass of record batches.

    A ``_source_row`` (int64) column, when present, is taken as the source's row numbers.
    """

    schema: pa.Schema

    def __iter__(self) -> Iterator[pa.RecordBatch]: ...


class QuarantineRecord(Protocol):
    source_row: int | None
    raw_line: str
    reason: str


@dataclass(frozen=True)
class AuditContext:
    """Who wrote the rows and from where; ``ingested_at`` defaults to the call's start."""

    execution_id: str
    job_id: str
    source: str
    ingested_at: datetime | None = None


@dataclass(frozen=True)
class BronzeResult:
    """The outcome of one write.

    ``rows_written`` and ``version`` describe the commit this call made or, when
    ``already_applied``, the earlier commit of the same run (``version`` is None if that
    commit is no longer in the recent history, or when nothing was written).
    """

    rows_written: int
    version: int | None
    schema: pa.Schema | None
    already_applied: PriorCommit | None = None
    notes: tuple[str, ...] = ()
    """What the write changed beyond rows (a column widened), for the job's note."""
    table: DeltaTable | None = None
    """The table as of that commit (the snapshot the write updated, or the one the earlier
    commit was found in), so the job describes it without reading its log again."""
    absent_columns: frozenset[str] = frozenset()
    """The table's columns the load did not carry (written as nulls), as its commit names
    them (``flowforge.absent_columns``)."""

    @property
    def skipped_as_already_committed(self) -> bool:
        return self.already_applied is not None


def quarantine_table_name(table: str) -> str:
    return f"{table}{QUARANTINE_SUFFIX}"


def write_bronze(
    lake: Lake,
    table: str,
    batches: BatchSource,
    *,
    mode: Literal["append", "overwrite"] = "append",
    audit: AuditContext | None,
    app_id: str,
    run_sequence: int,
    on_batch: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    execution_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> BronzeResult:
    """Stream ``batches`` into bronze table ``table`` as one idempotent commit.

    ``on_batch(rows)`` is called with each batch's row count once the writer has taken it;
    ``should_stop()`` is asked before every batch and once more before the commit, and a
    true answer raises :class:`Cancelled` with nothing committed. Both may be called from
    a thread other than the caller's. ``metadata`` (``flowforge.*`` keys) rides in the
    commit and comes back in ``already_applied.metadata`` when a retry finds the commit.
    """
    if mode not in ("append", "overwrite"):
        raise ValueError(f"mode must be 'append' or 'overwrite', not {mode!r}")
    commit = _Commit(
        app_id,
        run_sequence,
        execution_id or (audit.execution_id if audit else None),
        dict(metadata or {}),
    )
    try:
        return _write(lake, table, batches, mode, audit, commit, on_batch, should_stop)
    finally:
        # A skipped or refused write never iterates the source: release its file now.
        close = getattr(batches, "close", None)
        if close is not None:
            close()


@dataclass(frozen=True)
class _Commit:
    """Who writes: the application transaction and what rides in the commit."""

    app_id: str
    run_sequence: int
    execution_id: str | None
    metadata: dict[str, str]

    def properties(self):
        return commit_properties(
            self.app_id,
            self.run_sequence,
            execution_id=self.execution_id,
            **{"flowforge.layer": "bronze", **self.metadata},
        )


@dataclass
class WritePlan:
    """What a write goes against: the snapshot (created, widened), the schema to write
    (``target``), whether it adds table columns, and what the write changed beyond rows."""

    snapshot: DeltaTable
    target: pa.Schema
    incoming: pa.Schema
    adds_columns: bool
    notes: tuple[str, ...] = ()


def plan_write(
    lake: Lake,
    table: str,
    source: pa.Schema,
    mode: Literal["append", "overwrite"],
    audit: AuditContext | None,
    commit: _Commit,
) -> WritePlan | BronzeResult:
    """The snapshot and schema a write of ``source``'s columns goes against (the table
    created empty first if new, widened first when a column needs it), or the run's own
    earlier commit (a :class:`BronzeResult` with ``already_applied``) when a retry finds it.
    Records the table's columns the source lacks in ``commit.metadata``."""
    incoming = _incoming_schema(table, source, audit)
    # Created empty first if new, then written against a snapshot (Lake.load_or_create).
    snapshot = lake.load_or_create("bronze", table, _plan_schema(table, None, incoming)[0])
    earlier = _earlier_commit(snapshot, table, commit)
    if earlier is not None:
        return earlier

    existing = _table_schema(snapshot) if mode == "append" else None
    target, adds_columns, widen = _plan_schema(table, existing, incoming)
    notes: tuple[str, ...] = ()
    if widen:
        snapshot, notes = _widen(lake, table, snapshot, widen, commit)
    if existing is not None and audit is not None:
        absent = [name for name in existing.names if name not in incoming.names]
        if absent:
            # Silver reads this to tell "the load did not carry the column" from "null".
            commit.metadata[ABSENT_COLUMNS_KEY] = json.dumps(
                {"executionId": audit.execution_id, "jobId": audit.job_id, "columns": absent}
            )
    return WritePlan(snapshot, target, incoming, adds_columns, notes)


def _write(
    lake: Lake,
    table: str,
    batches: BatchSource,
    mode: Literal["append", "overwrite"],
    audit: AuditContext | None,
    commit: _Commit,
    on_batch: Callable[[int], None] | None,
    should_stop: Callable[[], bool] | None,
) -> BronzeResult:
    plan = plan_write(lake, table, batches.schema, mode, audit, commit)
    if isinstance(plan, BronzeResult):
        return plan
    snapshot, target = plan.snapshot, plan.target
    stream = _Stream(batches, target, audit, on_batch, should_stop)
    try:
        # The first batch is read before the write starts: it tells which string columns
        # are worth a dictionary. Its errors (source, cancellation) surface as they are.
        properties = _writer_properties(target, stream.first())
        try:
            write_deltalake(
                snapshot,
                pa.RecordBatchReader.from_batches(target, stream),
                mode=mode,
                schema_mode=_schema_mode(mode, plan.adds_columns),
                writer_properties=properties,
                commit_properties=commit.properties(),
            )
        except Exception as error:  # noqa: BLE001 - every path re-raises or reports the earlier run
            if stream.error is not None:
                # The source or should_stop failed inside delta-rs's pull; give the caller
                # that error, not delta-rs's wrapper around it.
                raise stream.error from None
            return _after_failed_commit(lake, table, commit, error)
    finally:
        stream.close()
    return replace(_committed(lake, table, commit, stream.rows, snapshot), notes=plan.notes)


def _widen(
    lake: Lake,
    table: str,
    snapshot: DeltaTable,
    widen: dict[str, pa.DataType | pa.Field],
    commit: _Commit,
) -> tuple[DeltaTable, tuple[str, ...]]:
    """The table rewritten with wider column types (one commit of its own, see
    :mod:`flowforge_shared.widening`), reloaded for the write that follows."""
    try:
        note = widen_table(
            snapshot, widen, execution_id=commit.execution_id, what=f"bronze table {table!r}"
        )
    except CommitFailedError as error:
        raise ConcurrentWriteError(
            f"another write to bronze table {table!r} committed first; the load will be retried"
        ) from error
    widened = lake.load("bronze", table)
    assert widened is not None
    return widened, (note,)


def write_quarantine(
    lake: Lake,
    table: str,
    records: Sequence[QuarantineRecord],
    *,
    execution_id: str,
    app_id: str,
    run_sequence: int,
) -> BronzeResult:
    """Append ``records`` to bronze table ``<table>__quarantine``, idempotently.

    Columns: raw_line, source_row, reason, execution_id, quarantined_at (UTC). With no
    records nothing is written.
    """
    name = quarantine_table_name(table)
    commit = _Commit(app_id, run_sequence, execution_id, {})
    snapshot = lake.load("bronze", name)
    earlier = _earlier_commit(snapshot, name, commit)
    if earlier is not None:
        return earlier
    if not records:
        return BronzeResult(0, None, None)
    now = datetime.now(UTC)
    data = pa.table(
        {
            "raw_line": pa.array([r.raw_line for r in records], pa.string()),
            "source_row": pa.array([r.source_row for r in records], pa.int64()),
            "reason": pa.array([r.reason for r in records], pa.string()),
            "execution_id": pa.repeat(pa.scalar(execution_id, pa.string()), len(records)),
            "quarantined_at": pa.repeat(pa.scalar(now, _UTC_MICROS), len(records)),
        }
    )
    if snapshot is None:  # create it empty, then look again: a duplicate may have written
        snapshot = lake.load_or_create("bronze", name, data.schema)
        earlier = _earlier_commit(snapshot, name, commit)
        if earlier is not None:
            return earlier
    try:
        write_deltalake(
            snapshot,
            data,
            mode="append",
            schema_mode="merge",
            commit_properties=commit.properties(),
        )
    except DeltaError as error:
        return _after_failed_commit(lake, name, commit, error)
    return _committed(lake, name, commit, len(records), snapshot)


# --------------------------------------------------------------------------- idempotency


def _earlier_commit(
    snapshot: DeltaTable | None, table: str, commit: _Commit
) -> BronzeResult | None:
    """This run's own earlier commit, reported instead of writing again; a later run's
    commit raises StaleRunError (this run is out of date)."""
    prior = this_runs_commit(
        snapshot, commit.app_id, commit.run_sequence, f"bronze table {table!r}"
    )
    if prior is None:
        return None
    assert snapshot is not None
    return BronzeResult(
        rows_written=prior.rows or 0,
        version=prior.version,
        schema=_table_schema(snapshot),
        already_applied=prior,
        table=snapshot,
        absent_columns=absent_columns(prior.metadata),
    )


def _committed(
    lake: Lake, table: str, commit: _Commit, rows: int, snapshot: DeltaTable
) -> BronzeResult:
    """The result of the commit this call just made. ``write_deltalake`` brings the
    snapshot it wrote against to the version it committed (after any commits of others it
    was rebased over), so the log is not read again; should the snapshot not show this
    run's transaction, the table is loaded and the commit looked up in its history."""
    version: int | None
    if snapshot.transaction_version(commit.app_id) == commit.run_sequence:
        version = snapshot.version()
    else:
        reloaded = lake.load("bronze", table)
        assert reloaded is not None
        snapshot = reloaded
        own = prior_commit(snapshot, commit.app_id, commit.run_sequence)
        version = own.version if own and own.version is not None else snapshot.version()
    return BronzeResult(
        rows_written=rows,
        version=version,
        schema=_table_schema(snapshot),
        table=snapshot,
        absent_columns=absent_columns(commit.metadata),
    )


def absent_columns(metadata: dict) -> frozenset[str]:
    """The columns a commit's ``flowforge.absent_columns`` names (none when absent, or
    not in the form write_bronze writes: then every column counts as sent)."""
    recorded = metadata.get(ABSENT_COLUMNS_KEY)
    if not recorded:
        return frozenset()
    try:
        return frozenset(str(column) for column in json.loads(recorded)["columns"])
    except (ValueError, KeyError, TypeError):
        return frozenset()


def _after_failed_commit(lake: Lake, table: str, commit: _Commit, error: Exception) -> BronzeResult:
    """A commit that lost a race may have lost it to a duplicate of this very run."""
    earlier = _earlier_commit(lake.load("bronze", table), table, commit)
    if earlier is not None:
        return earlier
    if isinstance(error, CommitFailedError) or (
        isinstance(error, DeltaError) and "already exists" in str(error)
    ):
        raise ConcurrentWriteError(
            f"another write to bronze table {table!r} committed first; the load will be retried"
        ) from error
    raise error


# --------------------------------------------------------------------------- schemas


def _schema_mode(mode: str, adds_columns: bool) -> Literal["merge", "overwrite"] | None:
    if mode == "overwrite":
        return "overwrite"
    return "merge" if adds_columns else None


def _table_schema(snapshot: DeltaTable) -> pa.Schema:
    return pa.schema(snapshot.schema().to_arrow())


def _incoming_schema(table: str, source: pa.Schema, audit: AuditContext | None) -> pa.Schema:
    """The source's columns as Delta stores them, followed by the audit columns."""
    _refuse_sibling_clash(table, source)
    fields = []
    for field in delta_storage_schema(source):
        if field.name == SOURCE_ROW_COLUMN:
            continue
        if audit is not None and field.name in AUDIT_COLUMNS:
            raise SchemaDriftError(
                f"the source has a column named {field.name!r}, which FlowForge adds as an "
                f"audit column to bronze table {table!r}: rename the source column",
                table=table,
                column=field.name,
            )
        fields.append(pa.field(field.name, field.type, metadata=field.metadata))
    if audit is not None:
        fields += [
            pa.field(INGESTED_AT_COLUMN, _UTC_MICROS),
            pa.field(EXECUTION_ID_COLUMN, pa.string()),
            pa.field(JOB_ID_COLUMN, pa.string()),
            pa.field(SOURCE_COLUMN, pa.string()),
            pa.field(SOURCE_ROW_COLUMN, pa.int64()),
        ]
    return pa.schema(fields)


def _plan_schema(
    table: str, existing: pa.Schema | None, incoming: pa.Schema
) -> tuple[pa.Schema, bool, dict[str, pa.DataType | pa.Field]]:
    """The schema to write (table columns first, then new ones), whether it adds any, and
    the table columns to widen first ({name: wider type}).

    A column the source only knows as nulls (Arrow's null type) is created as a string
    column: Delta has no null type worth keeping. A source type the table's column cannot
    hold, but a wider one of it can (more decimal digits, a wider integer, float64), widens
    the table's column (:func:`flowforge_shared.widening.wider_type`).
    """
    if existing is None:
        return pa.schema([_storable(field) for field in incoming]), False, {}
    incoming_names = set(incoming.names)
    widen: dict[str, pa.DataType] = {}
    widen_fields: dict[str, pa.Field] = {}
    for field in incoming:
        if field.name in existing.names:
            table_type = existing.field(field.name).type
            wider = None if _castable(field.type, table_type) else wider_type(table_type, field)
            if wider is not None and _castable(field.type, wider):
                widen[field.name] = wider
                if is_exact_number_text(field):  # the table records the source type too
                    widen_fields[field.name] = field
            elif not _castable(field.type, table_type):
                raise SchemaDriftError(
                    f"column {field.name!r} is {_describe(table_type)} in bronze table "
                    f"{table!r} but {_describe(field.type)} in the source, which cannot be "
                    "stored without losing data: make the source send "
                    f"{_describe(table_type)} (for a CSV file, set the column's type in "
                    "fileConfig.columns), or load with writeMode 'overwrite' to replace "
                    "the table's schema",
                    table=table,
                    column=field.name,
                    table_type=_describe(table_type),
                    source_type=_describe(field.type),
                )
    for field in existing:
        if field.name not in incoming_names and not field.nullable:
            raise SchemaDriftError(
                f"column {field.name!r} of bronze table {table!r} cannot be empty, but the "
                "source does not have it",
                table=table,
                column=field.name,
            )
    new = [_storable(f) for f in incoming if f.name not in existing.names]
    fields = [pa.field(f.name, widen.get(f.name, f.type)) for f in existing] + new
    return pa.schema(fields), bool(new), {**widen, **widen_fields}


def _storable(field: pa.Field) -> pa.Field:
    data_type = pa.string() if pa.types.is_null(field.type) else field.type
    return pa.field(field.name, data_type, metadata=field.metadata)


def _refuse_sibling_clash(table: str, source: pa.Schema) -> None:
    names = set(source.names)
    for field in source:
        sibling = field.name + NANOS_SUFFIX
        if _is_nanos_timestamp(field.type) and sibling in names:
            raise SchemaDriftError(
                f"the source has a column named {sibling!r}, which FlowForge adds to bronze "
                f"table {table!r} to keep the exact nanoseconds of timestamp column "
                f"{field.name!r}: rename the source column",
                table=table,
                column=sibling,
            )


_INTEGER_DIGITS = {8: 3, 16: 5, 32: 10, 64: 20}


def _kind(data_type: pa.DataType) -> str:
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "string"
    if pa.types.is_string_view(data_type):
        return "string"
    if pa.types.is_binary(data_type) or pa.types.is_large_binary(data_type):
        return "binary"
    if pa.types.is_binary_view(data_type):
        return "binary"
    return str(data_type)


def _castable(source: pa.DataType, table: pa.DataType) -> bool:
    """Whether every value of type ``source`` has a faithful value of type ``table``."""
    if _kind(source) == _kind(table) or pa.types.is_null(source):
        return True
    if _is_list(source) and _is_list(table):
        # Delta names a list's item "element", Arrow "item": the names do not matter.
        return _castable(source.value_type, table.value_type)
    if pa.types.is_struct(source) and pa.types.is_struct(table):
        fields = {table.field(i).name: table.field(i).type for i in range(table.num_fields)}
        return all(
            source.field(i).name in fields
            and _castable(source.field(i).type, fields[source.field(i).name])
            for i in range(source.num_fields)
        )
    if _kind(table) == "string":
        return (
            pa.types.is_integer(source)
            or pa.types.is_floating(source)
            or pa.types.is_decimal(source)
            or pa.types.is_boolean(source)
            or pa.types.is_temporal(source)
        )
    if pa.types.is_integer(source):
        if pa.types.is_integer(table):
            source_signed = pa.types.is_signed_integer(source)
            table_signed = pa.types.is_signed_integer(table)
            if source_signed == table_signed:
                return table.bit_width >= source.bit_width
            # unsigned fits a signed type only when it is wider; signed never fits unsigned
            return table_signed and table.bit_width > source.bit_width
        if pa.types.is_floating(table):
            return table.bit_width == 64
        if pa.types.is_decimal(table):
            return table.precision - table.scale >= _INTEGER_DIGITS[source.bit_width]
    if pa.types.is_floating(source) and pa.types.is_floating(table):
        return table.bit_width >= source.bit_width
    if pa.types.is_decimal(source) and pa.types.is_decimal(table):
        return table.scale >= source.scale and (
            table.precision - table.scale >= source.precision - source.scale
        )
    if pa.types.is_timestamp(source) and pa.types.is_timestamp(table):
        return (source.tz is None) == (table.tz is None)
    return False


def _is_list(data_type: pa.DataType) -> bool:
    return pa.types.is_list(data_type) or pa.types.is_large_list(data_type)


def _describe(data_type: pa.DataType) -> str:
    if pa.types.is_integer(data_type):
        return f"integer ({data_type})"
    if pa.types.is_floating(data_type):
        return f"float ({data_type})"
    if pa.types.is_timestamp(data_type):
        zone = f"time zone {data_type.tz}" if data_type.tz else "no time zone"
        return f"timestamp ({zone})"
    if pa.types.is_date(data_type):
        return "date"
    if pa.types.is_boolean(data_type):
        return "boolean"
    if pa.types.is_decimal(data_type):
        return f"decimal({data_type.precision},{data_type.scale})"
    return _kind(data_type)


# --------------------------------------------------------------------------- Delta storage


_UNSIGNED_STORAGE = {8: pa.int16(), 16: pa.int32(), 32: pa.int64(), 64: pa.decimal128(20, 0)}


def delta_storage_schema(schema: pa.Schema) -> pa.Schema:
    """The columns Delta Lake stores for ``schema`` (the table in the module docstring).

    Columns of types Delta holds exactly come back as they are; a ``timestamp[ns]`` column
    ``c`` becomes two, ``c`` and ``c__ns``. Converted columns carry a ``comment``.
    """
    fields: list[pa.Field] = []
    for field in schema:
        data_type = field.type
        if _is_nanos_timestamp(data_type):
            fields.append(
                _noted(
                    pa.field(field.name, _micros_timestamp(data_type), field.nullable),
                    f"source type {data_type}: rounded down to the microsecond; the exact "
                    f"value is in {field.name + NANOS_SUFFIX}",
                    field.metadata,
                )
            )
            fields.append(
                _noted(
                    pa.field(field.name + NANOS_SUFFIX, pa.string(), field.nullable),
                    f"the exact value of {field.name} ({data_type}) as ISO 8601 text with "
                    "9 fractional digits",
                )
            )
            continue
        stored = _storage_type(data_type)
        if stored == data_type:
            fields.append(field)
        elif pa.types.is_timestamp(data_type):  # a unit or zone Delta normalises anyway
            fields.append(pa.field(field.name, stored, field.nullable, metadata=field.metadata))
        else:
            note = _STORAGE_NOTES.get(_storage_kind(data_type), "stored as {stored}")
            fields.append(
                _noted(
                    pa.field(field.name, stored, field.nullable),
                    f"source type {data_type}: " + note.format(stored=stored),
                    field.metadata,
                )
            )
    return pa.schema(fields, metadata=schema.metadata)


def to_delta_storage(batch: pa.RecordBatch) -> pa.RecordBatch:
    """``batch`` in :func:`delta_storage_schema`'s columns, every value kept exactly.

    A batch that needs no conversion is returned as it is (the CSV path pays nothing).
    Raises PermanentError for a ``duration[ns]`` value that is not a whole microsecond.
    """
    schema = delta_storage_schema(batch.schema)
    if schema.equals(batch.schema, check_metadata=True):
        return batch
    arrays: list[pa.Array] = []
    for field, values in zip(batch.schema, batch.columns, strict=True):
        if _is_nanos_timestamp(field.type):
            arrays.append(_floor_to_micros(values))
            arrays.append(_iso_timestamps(values))
        else:
            arrays.append(_stored(values, field.name))
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


_STORAGE_NOTES = {
    "unsigned": "stored as {stored}; Delta Lake has no unsigned integers",
    "time": "a time of day as text HH:MM:SS with the source's fractional digits",
    "duration": "a duration as int64 microseconds",
    "interval": "an ISO 8601 duration as text (PnYnMnDTnHnMnS)",
}


def _storage_kind(data_type: pa.DataType) -> str:
    if pa.types.is_unsigned_integer(data_type):
        return "unsigned"
    if pa.types.is_time(data_type):
        return "time"
    if pa.types.is_duration(data_type):
        return "duration"
    if pa.types.is_interval(data_type):
        return "interval"
    return "nested"


def _noted(field: pa.Field, note: str, metadata: dict | None = None) -> pa.Field:
    return field.with_metadata({**(metadata or {}), b"comment": note.encode()})


def _is_nanos_timestamp(data_type: pa.DataType) -> bool:
    return pa.types.is_timestamp(data_type) and data_type.unit == "ns"


def _micros_timestamp(data_type: pa.TimestampType) -> pa.DataType:
    return pa.timestamp("us", tz="UTC" if data_type.tz else None)


def _storage_type(data_type: pa.DataType, nested: bool = False) -> pa.DataType:
    """The stored type of a value of ``data_type`` (inside a list or struct when nested)."""
    if pa.types.is_unsigned_integer(data_type):
        return _UNSIGNED_STORAGE[data_type.bit_width]
    if pa.types.is_timestamp(data_type):
        if data_type.unit == "ns" and nested:
            return pa.string()
        return _micros_timestamp(data_type)
    if pa.types.is_time(data_type):
        return pa.string()
    if pa.types.is_duration(data_type):
        return pa.int64()
    if data_type == pa.month_day_nano_interval():
        return pa.string()
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        item = data_type.value_field
        stored = _storage_type(item.type, nested=True)
        if stored == item.type:
            return data_type
        make = pa.list_ if pa.types.is_list(data_type) else pa.large_list
        return make(pa.field(item.name, stored, item.nullable))
    if pa.types.is_struct(data_type):
        children = [data_type.field(index) for index in range(data_type.num_fields)]
        stored_children = [
            pa.field(child.name, _storage_type(child.type, nested=True), child.nullable)
            for child in children
        ]
        if all(a.type == b.type for a, b in zip(children, stored_children, strict=True)):
            return data_type
        return pa.struct(stored_children)
    return data_type


def _stored(values: pa.Array, column: str, nested: bool = False) -> pa.Array:
    """``values`` as :func:`_storage_type` says (``column`` names it in errors)."""
    data_type = values.type
    stored = _storage_type(data_type, nested)
    if stored == data_type:
        return values
    if pa.types.is_unsigned_integer(data_type):
        return values.cast(stored)  # every unsigned value fits the wider signed type
    if pa.types.is_timestamp(data_type):
        if data_type.unit == "ns":
            return _iso_timestamps(values)  # nested: no room for a sibling
        return values.cast(stored)  # s/ms to us multiplies; a zone change keeps the instant
    if pa.types.is_time(data_type):
        # Arrow's text: zero-padded, as many fractional digits as the unit, so it sorts.
        return values.cast(pa.string())
    if pa.types.is_duration(data_type):
        return _duration_micros(values, column)
    if pa.types.is_interval(data_type):
        return pa.array(
            [None if value is None else iso_interval(*value) for value in values.to_pylist()],
            pa.string(),
        )
    if pa.types.is_list(data_type) or pa.types.is_large_list(data_type):
        # A sliced list's offsets point into its whole child; from_arrays wants them from 0.
        offsets = values.offsets
        start, end = offsets[0].as_py(), offsets[-1].as_py()
        items = _stored(values.values.slice(start, end - start), column, nested=True)
        make = pa.ListArray if pa.types.is_list(data_type) else pa.LargeListArray
        mask = values.is_null() if values.null_count else None
        return make.from_arrays(pc.subtract(offsets, start), items, type=stored, mask=mask)
    if pa.types.is_struct(data_type):
        children = [_stored(child, column, nested=True) for child in values.flatten()]
        mask = values.is_null() if values.null_count else None
        return pa.StructArray.from_arrays(
            children, fields=[stored.field(i) for i in range(stored.num_fields)], mask=mask
        )
    raise AssertionError(f"no storage conversion for {data_type}")  # _storage_type said one


def _floor_to_micros(values: pa.Array) -> pa.Array:
    """A ``timestamp[ns]`` column as ``timestamp[us]``, rounded down (Arrow's cast rounds
    toward zero: 1969-12-31 23:59:59.999999999 would become 1970-01-01 00:00:00)."""
    data_type = values.type
    if data_type.tz:
        values = values.cast(pa.timestamp("ns", tz="UTC"))  # same instants, a zone we know
    floored = pc.floor_temporal(values, unit="microsecond")
    return floored.cast(_micros_timestamp(data_type))


def _iso_timestamps(values: pa.Array) -> pa.Array:
    """ISO 8601 text with 9 fractional digits (``Z`` for zoned columns): fixed width, so
    the text sorts in time order (a ``[ns]`` timestamp's years are 1677..2262)."""
    if values.type.tz:
        values = values.cast(pa.timestamp("ns", tz="UTC"))
        return pc.strftime(values, format="%Y-%m-%dT%H:%M:%SZ")
    return pc.strftime(values, format="%Y-%m-%dT%H:%M:%S")


def _duration_micros(values: pa.Array, column: str) -> pa.Array:
    try:
        micros = values.cast(pa.duration("us"))
    except pa.ArrowInvalid:
        raise PermanentError(
            f"column {column!r} holds a duration with digits below the microsecond, which "
            "bronze tables store in microseconds: round it in the query (or cast it to text)"
        ) from None
    return micros.cast(pa.int64())


def iso_interval(months: int, days: int, nanoseconds: int) -> str:
    """An Arrow month-day-nano interval as an ISO 8601 duration: ``P1Y2M3DT4H5M6.5S``.

    Months, days and time are kept apart (a month is not 30 days); a negative part carries
    its own sign (``P-1M2D``, PostgreSQL's iso_8601 style); zero is ``PT0S``.
    """
    years, months = int(months / 12), months - 12 * int(months / 12)
    sign = "-" if nanoseconds < 0 else ""
    rest = abs(nanoseconds)
    hours, rest = divmod(rest, 3600 * 10**9)
    minutes, rest = divmod(rest, 60 * 10**9)
    seconds, fraction = divmod(rest, 10**9)
    date_part = "".join(
        f"{amount}{unit}" for amount, unit in ((years, "Y"), (months, "M"), (days, "D")) if amount
    )
    second_text = f"{seconds}.{fraction:09d}".rstrip("0").rstrip(".") if fraction else str(seconds)
    time_part = "".join(
        f"{sign}{amount}{unit}"
        for amount, unit in ((hours, "H"), (minutes, "M"), (second_text, "S"))
        if amount not in (0, "0")
    )
    if not date_part and not time_part:
        return "PT0S"
    return "P" + date_part + ("T" + time_part if time_part else "")


def _writer_properties(schema: pa.Schema, first: pa.RecordBatch | None) -> WriterProperties:
    return WriterProperties(
        compression="SNAPPY",
        # Row groups of 128Ki rows (DuckDB uses 122,880) keep the writer's buffer small:
        # peak RSS on 5,000,000 rows went from 595 MB to 439 MB at the same speed.
        max_row_group_size=_ROW_GROUP_ROWS,
        default_column_properties=ColumnProperties(dictionary_enabled=False),
        column_properties={
            name: ColumnProperties(dictionary_enabled=True)
            for name in _dictionary_columns(schema, first)
        }
        or None,
    )


def _dictionary_columns(schema: pa.Schema, first: pa.RecordBatch | None) -> list[str]:
    """String columns that repeat their values (codes, cities, the audit constants).

    A dictionary makes those small and costs nothing; on mostly distinct strings (names,
    ids) the writer builds one only to abandon it: plain encoding was 45% faster there.
    """
    names = [field.name for field in schema if _kind(field.type) == "string"]
    if first is None or not first.num_rows:
        return names
    sample = first.slice(0, _DICTIONARY_SAMPLE)
    repeated = []
    for name in names:
        values = sample.column(name)
        present = len(values) - values.null_count
        if not present or pc.count_distinct(values).as_py() <= present * _DICTIONARY_MAX_DISTINCT:
            repeated.append(name)
    return repeated


class _Stream:
    """The generator delta-rs pulls from: shapes each batch to the target schema.

    An exception raised here reaches the caller of ``write_deltalake`` only as a DeltaError
    wrapping its text; ``error`` keeps the original so write_bronze can re-raise it.
    """

    def __init__(
        self,
        batches: BatchSource,
        target: pa.Schema,
        audit: AuditContext | None,
        on_batch: Callable[[int], None] | None,
        should_stop: Callable[[], bool] | None,
    ) -> None:
        self.rows = 0
        self.error: BaseException | None = None
        self._target = target
        self._audit = audit
        self._on_batch = on_batch
        self._should_stop = should_stop
        self._ingested_at = (audit.ingested_at if audit else None) or datetime.now(UTC)
        self._source = prefetch(batches, _PREFETCH_DEPTH)
        self._first: pa.RecordBatch | None = None
        self._constants: dict[str, pa.Array] = {}
        self._constant_rows = 0

    def first(self) -> pa.RecordBatch | None:
        """Read the first batch ahead; the iteration yields it first."""
        self._check_stop()
        batch = next(self._source, None)
        self._first = self._shape(batch) if batch is not None else None
        return self._first

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        try:
            if self._first is not None:
                first, self._first = self._first, None
                yield from self._pass(first)
            for batch in self._source:
                self._check_stop()
                yield from self._pass(self._shape(batch))
            self._check_stop()
        except Exception as error:
            self.error = error
            raise

    def _pass(self, shaped: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        self.rows += shaped.num_rows
        yield shaped
        if self._on_batch is not None:
            self._on_batch(shaped.num_rows)

    def close(self) -> None:
        self._source.close()

    def _check_stop(self) -> None:
        if self._should_stop is not None and self._should_stop():
            raise Cancelled("the load was cancelled before its commit; nothing was written")

    def _shape(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        batch = to_delta_storage(batch)
        rows = batch.num_rows
        audit = self._audit_values(batch) if self._audit is not None else {}
        names = batch.schema.names
        arrays = []
        for field in self._target:
            if field.name in audit:
                arrays.append(audit[field.name])
            elif field.name in names:
                values = batch.column(names.index(field.name))
                if values.type != field.type:
                    # Timestamps may need truncation to microseconds (Delta's unit).
                    safe = not pa.types.is_timestamp(field.type)
                    values = pc.cast(values, field.type, safe=safe)
                arrays.append(values)
            else:
                arrays.append(pa.nulls(rows, field.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self._target)

    def _audit_values(self, batch: pa.RecordBatch) -> dict[str, pa.Array]:
        audit = self._audit
        assert audit is not None
        rows = batch.num_rows
        names = batch.schema.names
        if SOURCE_ROW_COLUMN in names:
            source_rows = pc.cast(batch.column(names.index(SOURCE_ROW_COLUMN)), pa.int64())
        else:
            ones = pa.repeat(pa.scalar(1, pa.int64()), rows)  # self.rows + 1, + 2, ...
            source_rows = pc.cumulative_sum(ones, start=pa.scalar(self.rows, pa.int64()))
        if rows > self._constant_rows:
            # The four constant columns are built once, for the largest batch yet, and
            # sliced for each batch (no copy): building them per batch was a few MB of
            # fresh memory to fill every 100,000 rows.
            self._constant_rows = rows
            self._constants = {
                INGESTED_AT_COLUMN: pa.repeat(pa.scalar(self._ingested_at, _UTC_MICROS), rows),
                EXECUTION_ID_COLUMN: pa.repeat(pa.scalar(audit.execution_id, pa.string()), rows),
                JOB_ID_COLUMN: pa.repeat(pa.scalar(audit.job_id, pa.string()), rows),
                SOURCE_COLUMN: pa.repeat(pa.scalar(audit.source, pa.string()), rows),
            }
        values = {name: constant.slice(0, rows) for name, constant in self._constants.items()}
        values[SOURCE_ROW_COLUMN] = source_rows
        return values


def prefetch(source: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``source`` on a helper thread, at most ``depth`` items ahead of the consumer.

    Parsing and conversion (pyarrow) and Parquet encoding (delta-rs) release the GIL, so
    the stages of a load run in parallel; the bounded queue keeps memory to a few batches.
    An error of the source is re-raised in the consumer. Closing the returned generator
    (or leaving its loop) stops the helper thread and closes ``source``'s iterator. The
    thread starts at the first item asked for; :class:`Prefetch` can start it at once.
    """
    ahead = Prefetch(source, depth)
    try:
        yield from ahead
    finally:
        ahead.close()


class Prefetch(Iterator[T]):
    """``source`` iterated on a helper thread, at most ``depth`` items ahead (see
    :func:`prefetch`). The thread starts with :meth:`start` or the first ``next``;
    :meth:`close` stops it (and closes ``source``'s iterator if it was not exhausted):
    call it whatever happens."""

    def __init__(self, source: Iterable[T], depth: int) -> None:
        self._source = source
        self._items: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._done = False

    def start(self) -> Prefetch[T]:
        if self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._produce,
                args=(iter(self._source),),
                name="flowforge-prefetch",
                daemon=True,
            )
            self._thread.start()
        return self

    def __next__(self) -> T:
        if self._done or self._stop.is_set():  # ended, or closed
            raise StopIteration
        self.start()
        item = self._items.get()
        if item is _END:
            self._done = True
            raise StopIteration
        if isinstance(item, _Failure):
            self._done = True
            raise item.error
        return item

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._items.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, iterator: Iterator[T]) -> None:
        try:
            for item in iterator:
                if not self._put(item):
                    break
            else:
                self._put(_END)
        except BaseException as error:  # noqa: BLE001 - handed to the consuming thread
            self._put(_Failure(error))
        finally:
            close = getattr(iterator, "close", None)
            if self._stop.is_set() and close is not None:
                close()


_END = object()


@dataclass(frozen=True)
class _Failure:
    error: BaseException
