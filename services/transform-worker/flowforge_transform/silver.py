"""Silver tables: the cleaned, deduplicated, keyed copy of bronze data.

:func:`build_silver` runs these steps, in this order:

1. derived columns, then filters (the expression sandbox). They see the whole input, audit
   columns included, and a filter may use a derived column.
2. rows with a null in any ``primaryKey`` column are rejected and counted in
   ``SilverResult.rejected_rows`` (a key that is unknown cannot be merged or given a surrogate
   key, and SQL's NULL = NULL would insert it again on every run).
3. rows are put in ingestion order: ``_ingested_at``, then ``_source_row``, then input position
   (a missing or null value sorts first, as the oldest).
4. with ``dedupe``: one row per key, the latest wins — the greatest ``deltaColumn`` (null is
   the oldest; ties go to the later ingested row) or, without a ``deltaColumn``, the last row
   in ingestion order. The result stays in ingestion order. Without a ``primaryKey`` there
   is nothing to dedupe on and every row is kept.
5. bronze's load bookkeeping (``_execution_id``, ``_job_id``, ``_source_row``) is dropped:
   it describes the bronze run, and the silver commit records its own ``execution_id``.
   ``_ingested_at`` and ``_source`` stay, so each silver row says which load it came from.
   No wall-clock column is added: the same input always gives the same rows.
6. ``surrogateKey``: an int64 assigned once per natural key, a function of the data, never of
   timing. Keys already in the silver table keep their number; the keys new in this build
   get high-water + 1, + 2, ... in ascending order of the natural key (column by column, as
   Arrow sorts: numbers by value, text by UTF-8 bytes). Not by ingestion order: across input
   tables that is the order in which their ingest jobs happened to run, and within a
   database load the order the server returned rows in — neither is the data. So the same
   data gives the same numbers, whichever job finished first and whichever database served
   it. The high-water mark is also recorded in each commit
   (``flowforge.surrogate_key_high_water``), so an overwrite that drops a key never lets its
   number be given to another key. Limit: a key dropped by an overwrite and seen again later
   gets a new number (the silver table is the only record of the mapping).
7. the write, by ``mergeStrategy``: ``merge`` upserts on the key (a table column missing
   from the input keeps its stored value on update; an empty input makes no commit, as
   delta-rs writes nothing). A column a bronze load's source did not have (bronze holds
   nulls there and names the column in its commit) is "not sent", not null: the row takes
   the key's latest earlier value from the input (before dedupe), else the stored value on
   a merge update, else null (an insert, overwrite or append); the job's note says how many
   rows each case covered, ``overwrite`` replaces the rows in one commit, ``append`` adds
   them; the first write creates the table. New columns are added to the table; a column
   cannot change type (a widening, e.g. int32 into int64, is cast to the table's type).
   A ``merge`` table is created with ``delta.targetFileSize`` = :data:`CLUSTERED_FILE_BYTES`
   and its first rows are written in key order, so each file holds one range of the key and
   a merge rewrites only the files its keys fall in; its commits name the key
   (``flowforge.cluster_by``) for maintenance, which re-clusters the table on it once merges
   have blurred the ranges (:mod:`flowforge_shared.maintenance`).

Retry safety: every write carries ``commit_properties(app_id, run_sequence, ...)``. A retry
that finds this run's own commit reports it (``already_applied``) and writes nothing again; a
commit of a later run makes this one stale (``StaleRunError``: it fails, never succeeds).
A concurrent commit (``CommitFailedError``) reloads the table and redoes steps 6-7; after
:data:`MAX_ATTEMPTS` the error propagates as transient (the run may be retried as a whole).
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import CommitFailedError

from flowforge_shared import maintenance
from flowforge_shared.contracts.jobs import DerivedColumn, SilverConfig
from flowforge_shared.lake import Lake, PriorCommit, commit_properties, this_runs_commit
from flowforge_shared.widening import widen_table, wider_type
from flowforge_transform.inputs import TransformError

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
HIGH_WATER_KEY = "flowforge.surrogate_key_high_water"
# CLUSTER_KEY: commit metadata, the JSON list of the merge key columns. CLUSTERED_FILE_BYTES:
# ``delta.targetFileSize`` of a merged silver table (shared with maintenance, which gives it
# to a merge table created before). Files of a bounded size, each holding a range of the key,
# let a merge rewrite only the files its keys fall in (and, with the key range in its
# predicate, read only those); one large file would be rewritten by every merge.
CLUSTER_KEY = maintenance.CLUSTER_KEY
CLUSTERED_FILE_BYTES = maintenance.CLUSTERED_FILE_BYTES
DROPPED_AUDIT_COLUMNS = ("_execution_id", "_job_id", "_source_row")
INGESTION_ORDER = ("_ingested_at", "_source_row")
_POSITION = "__flowforge_position"
_RANK = "__flowforge_rank"
_ABSENT = "__flowforge_absent_"  # + n: per row, _CARRIED, _FILLED or _MISSING for a column
_CARRIED, _FILLED, _MISSING = 0, 1, 2
_STORED_ROW = "__flowforge_stored_row"
_HISTORY_SCANNED = 50  # commits searched for the last recorded high-water mark


@dataclass(frozen=True)
class SilverResult:
    rows_written: int
    """Rows inserted or updated (merge), or written (overwrite, append); 0 when skipped."""
    version: int | None
    """The table version after the build (None: nothing was ever written)."""
    row_count: int
    """Rows in the table after the build."""
    rejected_rows: int = 0
    """Input rows dropped because a primaryKey column was null."""
    already_applied: PriorCommit | None = None
    """This run's own earlier commit, found by a retry (nothing was written again)."""
    notes: tuple[str, ...] = ()
    """What the build did that a user should know (columns a load did not carry)."""

    @property
    def skipped_as_already_committed(self) -> bool:
        return self.already_applied is not None


def build_silver(
    lake: Lake,
    input: pa.Table,
    config: SilverConfig,
    derived: Sequence[DerivedColumn] | None,
    filters: Sequence[str] | None,
    *,
    app_id: str,
    run_sequence: int,
    execution_id: str,
    combine_sources: bool = False,
    absent: Mapping[tuple[str, str], Collection[str]] | None = None,
) -> SilverResult:
    """Build (or update) the silver table ``config.table_name`` from ``input``.

    ``combine_sources`` (a multi-table source: several systems describe the same entity)
    first merges the rows of each key into one — per column the latest non-null value in
    ingestion order — so a CRM row adds its attributes to the core-banking row instead of
    replacing it; derived columns and filters then see the combined record.

    ``absent`` names, per bronze load ``(_execution_id, _job_id)``, the columns that load's
    source did not have (:func:`flowforge_transform.inputs.absent_columns`). In the rows of
    such a load the column is "not sent", not null: it takes the value of the key's latest
    earlier row that carried it, else on a merge the table's stored value (Delta's rule for
    ``UPDATE SET *``: a column the source lacks is left unchanged), else null."""
    keys = primary_key_columns(config)
    if combine_sources and keys:
        _require_columns(input, keys, "primaryKey", config.table_name)
        input = combine_per_key(in_ingestion_order(input), keys).drop_columns([_POSITION])
    rows = apply_expressions(input, derived, filters)
    _require_columns(rows, keys, "primaryKey", config.table_name)
    if config.dedupe and config.delta_column:
        _require_columns(rows, [config.delta_column], "deltaColumn", config.table_name)

    rows, rejected = drop_null_keys(rows, keys)
    rows = in_ingestion_order(rows)
    rows, flags = mark_absent(rows, None if combine_sources else absent)
    if keys and config.dedupe:
        if flags:
            rows = fill_from_earlier_rows(rows, keys, config.delta_column, flags)
        rows = latest_per_key(rows, keys, config.delta_column)
    elif keys and config.merge_strategy == "merge":
        _refuse_duplicate_keys(rows, keys, config.table_name)
    rows = rows.drop_columns([c for c in DROPPED_AUDIT_COLUMNS if c in rows.column_names])

    attempt = 0
    while attempt < MAX_ATTEMPTS:
        attempt += 1
        target = lake.load("silver", config.table_name)
        prior = this_runs_commit(
            target, app_id, run_sequence, f"silver table {config.table_name!r}"
        )
        if prior is not None:
            assert target is not None
            return SilverResult(
                prior.rows or 0, prior.version, target.count(), rejected, already_applied=prior
            )
        try:
            return _attempt(
                lake,
                target,
                rows,
                config,
                keys,
                rejected,
                app_id,
                run_sequence,
                execution_id,
                flags,
            )
        except _Created:
            attempt -= 1  # not a conflict: the table exists now
            continue
        except _Conflict as conflict:
            if attempt == MAX_ATTEMPTS:
                raise conflict.error from None
            log.info(
                "silver table %s changed while writing (attempt %d): reloading and retrying",
                config.table_name,
                attempt,
            )
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # desynchronise the writers
    raise AssertionError("unreachable")


class _Created(Exception):
    """The table was just created empty: build again against it."""


class _Conflict(Exception):
    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


def _attempt(
    lake: Lake,
    target: DeltaTable | None,
    rows: pa.Table,
    config: SilverConfig,
    keys: list[str],
    rejected: int,
    app_id: str,
    run_sequence: int,
    execution_id: str,
    flags: Mapping[str, str],
) -> SilverResult:
    metadata = {}
    if config.surrogate_key:
        rows, high_water = assign_surrogate_keys(rows, target, keys, config.surrogate_key)
        metadata[HIGH_WATER_KEY] = str(high_water)
    rows = rows.drop_columns([_POSITION])
    clustered = config.merge_strategy == "merge" and bool(keys)
    if clustered:
        metadata[CLUSTER_KEY] = json.dumps(keys)
    notes: tuple[str, ...] = ()
    if target is not None:
        rows, widen = conform_to_table(rows, target, config.table_name)
        if widen:
            try:
                notes += (
                    widen_table(
                        target,
                        widen,
                        execution_id=execution_id,
                        what=f"silver table {config.table_name!r}",
                    ),
                )
            except CommitFailedError as error:
                raise _Conflict(error) from error
            target = lake.load("silver", config.table_name)
            assert target is not None
    if flags:
        merging = config.merge_strategy == "merge" and target is not None and target.file_uris()
        rows, kept_notes = keep_stored_values(rows, target if merging else None, keys, flags)
        notes += kept_notes
    properties = commit_properties(app_id, run_sequence, execution_id=execution_id, **metadata)

    if target is None:
        # Create the table empty, then build again against its snapshot: a commit to a path
        # with no table escapes delta-rs's duplicate check (see Lake.load_or_create).
        lake.load_or_create(
            "silver",
            config.table_name,
            rows.schema,
            {"delta.targetFileSize": str(CLUSTERED_FILE_BYTES)} if clustered else None,
        )
        raise _Created

    try:
        # Into a table that holds no data file yet, a merge is a plain write (cheaper).
        if config.merge_strategy == "merge" and target.file_uris():
            metrics = (
                target.merge(
                    rows,
                    predicate=merge_predicate(rows, keys, target),
                    source_alias="source",
                    target_alias="target",
                    merge_schema=True,
                    commit_properties=properties,
                )
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute()
            )
            written = metrics["num_target_rows_inserted"] + metrics["num_target_rows_updated"]
        else:
            if clustered:
                # The first rows of a merged table go in key order, in files of a bounded
                # size: each file then holds one range of the key.
                rows = rows.take(pc.sort_indices(rows, sort_keys=[(k, "ascending") for k in keys]))
            write_deltalake(
                target,
                rows,
                mode="append" if config.merge_strategy == "merge" else config.merge_strategy,
                schema_mode="merge",
                target_file_size=CLUSTERED_FILE_BYTES if clustered else None,
                commit_properties=properties,
            )
            written = rows.num_rows
    except CommitFailedError as error:
        raise _Conflict(error) from error
    return SilverResult(written, target.version(), target.count(), rejected, notes=notes)


def merge_predicate(rows: pa.Table, keys: Sequence[str], target: DeltaTable | None = None) -> str:
    """The merge's join on the key, and the range of each key column the rows hold.

    The range is implied by the join (a target row matching a source row has a key within
    the source's range), so the result is the same; but it names the target alone, so
    delta-rs skips the files whose statistics lie outside it before reading them. Without
    it a streamed merge reads the whole table to find the few rows that match (measured on
    deltalake 1.6.6: 1,000 clustered keys into 1M rows in 9 files, 0.87 s -> 0.17 s). Given
    for integer, text, date and timestamp (UTC or without a zone) key columns
    (:func:`range_literals`; not decimals), and, when ``target`` is given, only where its files'
    statistics show a file outside the range (otherwise there is nothing to skip)."""
    terms = [f"target.{quote_identifier(key)} = source.{quote_identifier(key)}" for key in keys]
    stats = pa.table(target.get_add_actions(flatten=True)) if target is not None else None
    for key in keys:
        column = rows.column(key)
        if not rows.num_rows or column.null_count:
            continue
        bounds = pc.min_max(column)
        low, high = bounds["min"], bounds["max"]
        literals = range_literals(low, high)
        if literals is None:
            continue
        if stats is not None and not _some_file_outside(stats, key, low, high):
            continue
        target_key = f"target.{quote_identifier(key)}"
        terms.append(f"{target_key} >= {literals[0]} AND {target_key} <= {literals[1]}")
    return " AND ".join(terms)


_TIME_UNITS = {  # Arrow's unit: (its name in an Arrow type, digits of a second)
    "s": ("Second", 0),
    "ms": ("Millisecond", 3),
    "us": ("Microsecond", 6),
    "ns": ("Nanosecond", 9),
}
_UTC = ("UTC", "+00:00", "Z", "Etc/UTC")


def range_literals(low: pa.Scalar, high: pa.Scalar) -> tuple[str, str] | None:
    """SQL literals of the key range [low, high] in the column's own type, so that neither
    the join nor the file pruning casts the column (or rounds the bound); None for a type
    whose range is not given (the merge is then the plain join: correct, unpruned).

    - integers as they are; text quoted (``'`` doubled);
    - ``date32``: ``CAST('2024-05-01' AS DATE)``;
    - timestamps, without a zone or in UTC (Delta's two), in the column's unit, written
      from the stored integer (no rounding through a float or a datetime), in the form
      delta-rs itself writes predicates in:
      ``arrow_cast('2024-05-01T08:00:00.123456', 'Timestamp(Microsecond, Some("UTC"))')``
      (text without a zone is read in the type's zone, UTC).

    Not for decimals, whatever the literal (``CAST('1000.500' AS DECIMAL(12, 3))`` prunes
    correctly): delta-rs 1.6.6 records the range in the commit's read predicate with the
    bound's unscaled digits (``id >= '1000500'::decimal(12, 3)``), and checks a concurrent
    writer's files against that wrong range, so a key another writer inserted meanwhile
    goes unnoticed and the merge inserts it a second time (measured; with no range the
    merge reads the whole table and any concurrent insert makes it fail and retry). Their
    file statistics also pass through a double, rounded past 15 digits."""
    kind = low.type
    if pa.types.is_integer(kind):
        return str(low.as_py()), str(high.as_py())
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        return _sql_text(low.as_py()), _sql_text(high.as_py())
    if pa.types.is_date32(kind):
        return (
            f"CAST('{low.as_py().isoformat()}' AS DATE)",
            f"CAST('{high.as_py().isoformat()}' AS DATE)",
        )
    if pa.types.is_timestamp(kind) and kind.unit in _TIME_UNITS:
        if kind.tz is not None and kind.tz not in _UTC:
            return None
        first = _timestamp_text(low.cast(pa.int64()).as_py(), kind.unit)
        last = _timestamp_text(high.cast(pa.int64()).as_py(), kind.unit)
        if first is None or last is None:
            return None
        arrow_type = f"Timestamp({_TIME_UNITS[kind.unit][0]}, "
        arrow_type += f'Some("{kind.tz}"))' if kind.tz is not None else "None)"
        return f"arrow_cast('{first}', '{arrow_type}')", f"arrow_cast('{last}', '{arrow_type}')"
    return None  # decimals included: see the note above


def _timestamp_text(value: int, unit: str) -> str | None:
    """``value`` (units since the epoch, UTC) as ISO text with every digit of its unit;
    None outside years 1-9999."""
    digits = _TIME_UNITS[unit][1]
    seconds, fraction = divmod(value, 10**digits)
    try:
        moment = datetime(1970, 1, 1) + timedelta(seconds=seconds)
    except OverflowError:
        return None
    text = moment.isoformat(timespec="seconds")
    return f"{text}.{fraction:0{digits}d}" if digits else text


def _some_file_outside(stats: pa.Table, key: str, low: pa.Scalar, high: pa.Scalar) -> bool:
    """Whether a data file's statistics put all its ``key`` values outside [low, high]
    (compared in the rows' type; statistics that do not cast to it count as unknown)."""
    if f"min.{key}" not in stats.column_names or f"max.{key}" not in stats.column_names:
        return False
    try:
        lows = stats.column(f"min.{key}").cast(low.type)
        highs = stats.column(f"max.{key}").cast(high.type)
        outside = pc.or_(pc.less(highs, low), pc.greater(lows, high))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return False
    return bool(pc.any(pc.fill_null(outside, False)).as_py())


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def primary_key_columns(config: SilverConfig) -> list[str]:
    key = config.primary_key
    if key is None:
        return []
    return [key] if isinstance(key, str) else list(key)


def apply_expressions(
    table: pa.Table, derived: Sequence[DerivedColumn] | None, filters: Sequence[str] | None
) -> pa.Table:
    """Derived columns, then filters, through the expression sandbox."""
    if not derived and not filters:
        return table
    # Imported here: the sandbox loads sqlglot and DuckDB, which plain builds do not need.
    from flowforge_transform.expressions import add_derived_columns, apply_filters

    if derived:
        table = add_derived_columns(table, [(column.name, column.expression) for column in derived])
    if filters:
        table = apply_filters(table, list(filters))
    return table


def drop_null_keys(table: pa.Table, keys: Sequence[str]) -> tuple[pa.Table, int]:
    """The rows whose key columns are all set, and how many rows were dropped."""
    if not keys or not any(table.column(key).null_count for key in keys):
        return table, 0
    valid = pc.is_valid(table.column(keys[0]))
    for key in keys[1:]:
        valid = pc.and_(valid, pc.is_valid(table.column(key)))
    kept = table.filter(valid)
    return kept, table.num_rows - kept.num_rows


def in_ingestion_order(table: pa.Table) -> pa.Table:
    """The rows sorted by ingestion (stable), with a ``_POSITION`` column 0, 1, 2, ..."""
    sort_keys = [(c, "ascending", "at_start") for c in INGESTION_ORDER if c in table.column_names]
    if sort_keys and not _in_order(table, [name for name, _, _ in sort_keys]):
        table = table.append_column(_POSITION, positions(table.num_rows))
        order = pc.sort_indices(table, sort_keys=[*sort_keys, (_POSITION, "ascending", "at_start")])
        table = table.take(order).drop_columns([_POSITION])
    return table.append_column(_POSITION, positions(table.num_rows))


def positions(count: int) -> pa.Array:
    """``0, 1, ..., count - 1`` as int64, made by numpy: ``pa.array(range(count))`` converts
    value by value in Python, with the GIL held (about 0.15 us a row)."""
    return pa.array(np.arange(count, dtype=np.int64))


def _in_order(table: pa.Table, columns: Sequence[str]) -> bool:
    """Whether the rows are already sorted (ascending, lexicographically) on ``columns``,
    none of which holds a null: a bronze load arrives so, and then needs no sort."""
    if table.num_rows < 2:
        return True
    if any(table.column(name).null_count for name in columns):
        return False
    undecided = None  # per pair of neighbours: every earlier column equal
    for name in columns:
        column = table.column(name)
        later, earlier = column[1:], column[:-1]
        descending = pc.greater(earlier, later)
        if undecided is not None:
            descending = pc.and_(undecided, descending)
        if pc.any(descending).as_py():
            return False
        equal = pc.equal(earlier, later)
        undecided = equal if undecided is None else pc.and_(undecided, equal)
        if not pc.any(undecided).as_py():
            break
    return True  # ties on every column keep input order, which is the order wanted


def combine_per_key(table: pa.Table, keys: Sequence[str]) -> pa.Table:
    """One row per key holding, per column, the latest non-null value (``table`` comes from
    :func:`in_ingestion_order`); keys keep the order of their first appearance. Computed in
    DuckDB (Arrow's group-by has no "last" for decimals) with identifiers we quote ourselves."""
    from flowforge_transform.gold import _run

    position = quote_identifier(_POSITION)
    key_list = ", ".join(quote_identifier(key) for key in keys)
    columns = []
    for name in table.column_names:
        quoted = quote_identifier(name)
        if name in keys:
            columns.append(quoted)
        elif name == _POSITION:
            columns.append(f"min({position}) AS {position}")
        else:
            columns.append(
                f"arg_max({quoted}, {position}) FILTER (WHERE {quoted} IS NOT NULL) AS {quoted}"
            )
    # Only identifiers we quote ourselves go into this text, never a user's expression.
    select = ", ".join(columns)
    sql = f"SELECT {select} FROM flowforge_rows GROUP BY {key_list} ORDER BY {position}"  # noqa: S608
    combined = _run(sql, {"flowforge_rows": table}, "combining sources")
    return combined.cast(table.schema)


def latest_per_key(table: pa.Table, keys: Sequence[str], delta_column: str | None) -> pa.Table:
    """One row per key, the latest winning; ``table`` comes from :func:`in_ingestion_order`."""
    if _unique(table, keys):
        return table  # one row per key already: nothing to choose between
    if delta_column:
        order = pc.sort_indices(
            table,
            sort_keys=[(delta_column, "ascending", "at_start"), (_POSITION, "ascending")],
        )
        table = table.take(order)
    ranked = table.append_column(_RANK, positions(table.num_rows))
    winners = ranked.group_by(list(keys), use_threads=False).aggregate([(_RANK, "max")])
    latest = ranked.take(winners.column(f"{_RANK}_max")).drop_columns([_RANK])
    return latest.take(pc.sort_indices(latest, sort_keys=[(_POSITION, "ascending")]))


def _unique(table: pa.Table, keys: Sequence[str]) -> bool:
    """Whether no key occurs twice (null keys were dropped before)."""
    if table.num_rows < 2:
        return True
    first = table.column(keys[0])
    if pc.all(pc.greater(first[1:], first[:-1])).as_py():
        return True  # strictly ascending (a load in key order): ~0.1 ms at 100,000 rows
    if len(keys) == 1:
        return len(pc.unique(first)) == table.num_rows
    groups = table.select(list(keys)).group_by(list(keys), use_threads=False).aggregate([])
    return groups.num_rows == table.num_rows


def mark_absent(
    rows: pa.Table, absent: Mapping[tuple[str, str], Collection[str]] | None
) -> tuple[pa.Table, dict[str, str]]:
    """``rows`` with one int8 column per column some load did not carry (``_MISSING`` in
    that load's rows, else ``_CARRIED``), and {column: flag column}. Rows without load ids
    count as carrying every column."""
    names = set(rows.column_names)
    if not absent or not {"_execution_id", "_job_id"} <= names:
        return rows, {}
    columns = sorted({c for cols in absent.values() for c in cols if c in names})
    if not columns:
        return rows, {}
    load = pc.binary_join_element_wise(
        pc.cast(rows.column("_execution_id"), pa.string()),
        pc.cast(rows.column("_job_id"), pa.string()),
        "\x1f",
    )
    flags: dict[str, str] = {}
    for number, column in enumerate(columns):
        loads = [f"{e}\x1f{j}" for (e, j), cols in absent.items() if column in cols]
        mask = pc.fill_null(pc.is_in(load, value_set=pa.array(loads, pa.string())), False)
        if not pc.any(mask).as_py():
            continue
        flags[column] = f"{_ABSENT}{number}"
        state = pc.if_else(mask, pa.scalar(_MISSING, pa.int8()), pa.scalar(_CARRIED, pa.int8()))
        rows = rows.append_column(flags[column], state)
    return rows, flags


def fill_from_earlier_rows(
    rows: pa.Table, keys: Sequence[str], delta_column: str | None, flags: Mapping[str, str]
) -> pa.Table:
    """Each value a row's load did not carry taken from the same key's latest earlier row
    that carried it, in the order dedupe uses (``deltaColumn``, then ingestion); where no
    such row exists the flag stays ``_MISSING`` (else ``_FILLED``). ``rows`` comes from
    :func:`in_ingestion_order`."""
    sort_keys = [(key, "ascending", "at_start") for key in keys]
    if delta_column:
        sort_keys.append((delta_column, "ascending", "at_start"))
    sort_keys.append((_POSITION, "ascending", "at_start"))
    rows = rows.take(pc.sort_indices(rows, sort_keys=sort_keys))
    count = rows.num_rows
    index = np.arange(count)
    new_group = np.zeros(count, dtype=bool)
    if count:
        new_group[0] = True
    for key in keys:
        column = rows.column(key)
        if count > 1:
            differs = pc.fill_null(pc.not_equal(column[1:], column[:-1]), True)
            new_group[1:] |= np.asarray(differs.to_numpy(zero_copy_only=False), dtype=bool)
    group_start = np.maximum.accumulate(np.where(new_group, index, 0)) if count else index
    for column, flag in flags.items():
        state = np.asarray(rows.column(flag).to_numpy(zero_copy_only=False))
        missing = state == _MISSING
        last_carried = np.maximum.accumulate(np.where(~missing, index, -1)) if count else index
        found = missing & (last_carried >= group_start)
        if not found.any():
            continue
        source = pa.array(np.where(found, last_carried, index), pa.int64())
        position = rows.column_names.index(column)
        rows = rows.set_column(position, column, rows.column(column).take(source))
        rows = rows.set_column(
            rows.column_names.index(flag),
            flag,
            pa.array(np.where(found, _FILLED, state).astype(np.int8), pa.int8()),
        )
    return rows.take(pc.sort_indices(rows, sort_keys=[(_POSITION, "ascending")]))


def keep_stored_values(
    rows: pa.Table, target: DeltaTable | None, keys: Sequence[str], flags: Mapping[str, str]
) -> tuple[pa.Table, tuple[str, ...]]:
    """``rows`` without the flag columns, each value its load did not carry replaced by the
    ``target`` table's stored value for the key (a merge: the row is left as it is), or null
    (a new key, or no ``target``); and a note per column saying what was done."""
    notes = []
    stored: pa.Table | None = None
    lookup: pa.ChunkedArray | None = None
    for column, flag in flags.items():
        missing = pc.equal(rows.column(flag), pa.scalar(_MISSING, pa.int8()))
        lacked = pc.sum(pc.cast(pc.not_equal(rows.column(flag), _CARRIED), pa.int64())).as_py()
        if not lacked:
            continue
        count = pc.sum(pc.cast(missing, pa.int64())).as_py() or 0
        kept = 0
        if count and target is not None and keys and column in target.schema().to_arrow().names:
            if lookup is None:
                wanted = [c for c in flags if c in target.schema().to_arrow().names]
                stored, lookup = _stored_rows(rows, target, keys, wanted)
            values = stored.column(column).take(lookup)
            have = rows.column(column).type
            if values.type != have:
                values = values.cast(have)
            replace = pc.and_(missing, pc.is_valid(lookup))
            kept = pc.sum(pc.cast(replace, pa.int64())).as_py() or 0
            rows = rows.set_column(
                rows.column_names.index(column),
                column,
                pc.if_else(replace, values, rows.column(column)),
            )
        notes.append(
            f"column {column!r} was not in the latest load of {lacked} row(s): "
            f"{lacked - count + kept} kept the value they had, {count - kept} (new) have it null"
        )
    return rows.drop_columns(list(flags.values())), tuple(notes)


def _stored_rows(
    rows: pa.Table, target: DeltaTable, keys: Sequence[str], columns: Sequence[str]
) -> tuple[pa.Table, pa.ChunkedArray]:
    """The table's rows and, per row of ``rows``, the index of its key's stored row (null:
    a new key). Only keys and indexes go through the join (it cannot carry every type)."""
    stored = target.to_pyarrow_table(columns=list(dict.fromkeys([*keys, *columns])))
    stored_keys = [
        stored.column(key).cast(rows.column(key).type)
        if stored.column(key).type != rows.column(key).type
        else stored.column(key)
        for key in keys
    ]
    right = pa.Table.from_arrays(
        [*stored_keys, positions(stored.num_rows)], names=[*keys, _STORED_ROW]
    )
    left = rows.select(list(keys)).append_column(_POSITION, positions(rows.num_rows))
    joined = left.join(right, list(keys), join_type="left outer", use_threads=False)
    joined = joined.take(pc.sort_indices(joined, sort_keys=[(_POSITION, "ascending")]))
    return stored, joined.column(_STORED_ROW)


def _refuse_duplicate_keys(table: pa.Table, keys: Sequence[str], table_name: str) -> None:
    counts = table.group_by(list(keys), use_threads=False).aggregate([(_POSITION, "count")])
    repeated = counts.filter(pc.greater(counts.column(f"{_POSITION}_count"), 1))
    if repeated.num_rows:
        example = {key: repeated.column(key)[0].as_py() for key in keys}
        raise TransformError(
            f"silver table {table_name!r}: {repeated.num_rows} primaryKey value(s) occur more "
            f"than once in the input (for example {example}) and dedupe is off; a merge needs "
            "one row per key: turn dedupe on or choose a key that is unique"
        )


def assign_surrogate_keys(
    rows: pa.Table, target: DeltaTable | None, keys: Sequence[str], column: str
) -> tuple[pa.Table, int]:
    """``rows`` with ``column`` (int64, first) filled in, and the new high-water mark.

    ``rows`` comes from :func:`in_ingestion_order`; an input column named ``column`` is
    replaced, since the number belongs to silver, not to the source.
    """
    keys = list(keys)
    if column in rows.column_names:
        rows = rows.drop_columns([column])
    # New numbers go in business-key order: the rows' order (ingestion times of several
    # jobs, the order a database returned rows in) is timing, not data.
    by_key = [(key, "ascending") for key in keys]
    distinct = rows.select(keys).group_by(keys, use_threads=False).aggregate([])
    distinct = distinct.take(pc.sort_indices(distinct, sort_keys=by_key))
    known, high_water = _known_surrogate_keys(target, rows.select(keys).schema, column)
    if known is None:
        existing = pa.nulls(distinct.num_rows, pa.int64())
    else:
        # A join does not keep row order; sorting by the key again puts it back.
        distinct = distinct.join(known, keys, join_type="left outer", use_threads=False)
        distinct = distinct.take(pc.sort_indices(distinct, sort_keys=by_key))
        existing = distinct.column(column)
    missing = pc.is_null(existing)
    numbers = pc.add(pc.cumulative_sum(pc.cast(missing, pa.int64())), high_water)
    assigned = pc.if_else(missing, numbers, existing)
    new_count = pc.sum(pc.cast(missing, pa.int64())).as_py() or 0
    mapping = distinct.select(keys).append_column(column, assigned)

    # Only keys and positions go through the join (it cannot carry every column type, nested
    # ones included); ``rows`` is sorted by position, so the looked-up numbers line up.
    looked_up = rows.select([*keys, _POSITION]).join(
        mapping, keys, join_type="left outer", use_threads=False
    )
    looked_up = looked_up.take(pc.sort_indices(looked_up, sort_keys=[(_POSITION, "ascending")]))
    return rows.add_column(0, column, looked_up.column(column)), high_water + new_count


def _known_surrogate_keys(
    target: DeltaTable | None, key_schema: pa.Schema, column: str
) -> tuple[pa.Table | None, int]:
    """The silver table's (key..., surrogate) pairs, one per key, and its high-water mark."""
    if target is None:
        return None, 0
    recorded = _recorded_high_water(target)
    stored = pa.schema(target.schema().to_arrow())
    keys = key_schema.names
    if column not in stored.names or any(key not in stored.names for key in keys):
        return None, recorded
    pairs = target.to_pyarrow_table(columns=[*keys, column])
    valid = pc.is_valid(pairs.column(column))
    for key in keys:
        valid = pc.and_(valid, pc.is_valid(pairs.column(key)))
    pairs = pairs.filter(valid)
    if pairs.num_rows == 0:
        return None, recorded
    pairs = pairs.group_by(keys, use_threads=False).aggregate([(column, "min")])
    columns = []
    for field in key_schema:
        stored_key = pairs.column(field.name)
        if stored_key.type != field.type:
            try:
                stored_key = stored_key.cast(field.type)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                raise TransformError(
                    f"primaryKey column {field.name!r} is {stored_key.type} in the silver "
                    f"table but {field.type} in the input; a key cannot change type"
                ) from None
        columns.append(stored_key)
    columns.append(pc.cast(pairs.column(f"{column}_min"), pa.int64()))
    known = pa.Table.from_arrays(columns, names=[*keys, column])
    highest = pc.max(known.column(column)).as_py() or 0
    return known, max(recorded, highest)


def _recorded_high_water(target: DeltaTable) -> int:
    # Maintenance commits (optimize, vacuum) carry no mark: look back past a few of them.
    for commit in target.history(limit=_HISTORY_SCANNED):
        value = commit.get(HIGH_WATER_KEY)
        if value is not None:
            return int(value)
    return 0


def conform_to_table(
    rows: pa.Table, target: DeltaTable, table_name: str
) -> tuple[pa.Table, dict[str, pa.DataType]]:
    """``rows`` with each column the table already has cast to the table's type, and the
    table columns to widen first ({name: wider type}).

    Only a widening cast is made (the type both meet at is the table's). Where the input's
    type is wider than the table's in a safe way (more decimal digits, a wider integer,
    float64; :func:`flowforge_shared.widening.wider_type`) the table's column is widened
    and the rows cast to the wider type. Anything else is a TransformError naming the
    column, rather than a cast error from deep in the writer.
    """
    stored = pa.schema(target.schema().to_arrow())
    widen: dict[str, pa.DataType] = {}
    for index, name in enumerate(rows.column_names):
        if name not in stored.names:
            continue
        want, have = stored.field(name).type, rows.schema.field(index).type
        if want == have or (pa.types.is_string(want) and pa.types.is_large_string(have)):
            continue
        wider = wider_type(want, rows.schema.field(index))
        if wider is not None and wider != want:
            widen[name] = want = wider
        try:
            met = (
                pa.unify_schemas(
                    [pa.schema([pa.field(name, want)]), pa.schema([pa.field(name, have)])],
                    promote_options="permissive",
                )
                .field(name)
                .type
            )
        except (pa.ArrowTypeError, pa.ArrowInvalid, pa.ArrowNotImplementedError):
            met = None
        if met != want:
            raise TransformError(
                f"silver table {table_name!r}: column {name!r} is {have} in the input but "
                f"{want} in the table; a silver column cannot change type: cast it back with "
                "a derived column, or write to a new table"
            )
        try:
            rows = rows.set_column(index, name, rows.column(index).cast(want))
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
            raise TransformError(
                f"silver table {table_name!r}: column {name!r} does not fit the table's type "
                f"{want}: {error}"
            ) from None
    return rows, widen


def quote_identifier(name: str) -> str:
    """A column name as a quoted SQL identifier (DataFusion and DuckDB share the rule)."""
    return '"' + name.replace('"', '""') + '"'


def _require_columns(
    table: pa.Table, columns: Sequence[str], setting: str, table_name: str
) -> None:
    missing = [column for column in columns if column not in table.column_names]
    if missing:
        raise TransformError(
            f"silver table {table_name!r}: {setting} column(s) {', '.join(missing)} not in the "
            f"input; its columns are {', '.join(table.column_names)}"
        )
