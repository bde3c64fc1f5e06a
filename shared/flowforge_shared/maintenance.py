"""Automatic table maintenance: what a worker does to a table after its job's write committed.

    maintain_after_write(lake, layer, table, policy) -> Maintained

The policy (settings ``FLOWFORGE_TABLE_*``, see :class:`MaintenancePolicy`):

- **Checkpoints** are Delta's own: every table carries ``delta.checkpointInterval`` (set when
  FlowForge creates it, and on the first maintenance of a table created before), and
  delta-rs's post-commit hook writes a checkpoint after every N-th commit of any writer.
  A table that gets the property here gets a checkpoint at once.
- **Compaction** when the table holds more than ``compact_min_files`` data files smaller than
  ``small_file_bytes``: one ``OPTIMIZE`` commit (``dataChange=false``) into files of about
  ``target_file_bytes``.
- **Re-clustering** instead, for a table whose writer keeps it clustered on a key (a silver
  table merged on its primaryKey: its commits name the key in ``flowforge.cluster_by``, and
  its files hold ranges of the key so that a merge rewrites only the files its keys fall
  in). Merges blur that layout: a rewritten file takes the new keys of its merge too, and a
  small change leaves small files. When more than ``recluster_min_files`` files overlap
  another file's key range or are small (under a quarter of the largest), one Z-order
  ``OPTIMIZE`` on the first key column (``dataChange=false``) rewrites the table in key
  order, in files of its ``delta.targetFileSize``. Like every OPTIMIZE it removes files
  only from the current version: earlier versions read as before until a vacuum (below).
  A table merged before FlowForge clustered its merge tables (one large file, no
  ``delta.targetFileSize``) adopts the layout on its first maintenance after a merge that
  names the key: it is re-clustered once, whatever its file count, in files of
  ``clustered_file_bytes``, then given that ``delta.targetFileSize`` (a metadata commit). The on-request compaction of the
  catalog calls the same :func:`keep_clustered`, so it never undoes the clustering either.
- **Vacuum** of the files commits removed more than ``vacuum_retention_hours`` ago (never
  less than :func:`min_vacuum_hours`), in Delta's *lite* mode: only files the log names as
  removed, so no file of the current version and no uncommitted file of a writer in flight
  can go. With nothing old enough to remove it writes no commit, so it runs after every write.

Why after the write, in the worker that wrote: one job owns a table and its execution stays
active until the job's COMPLETE, which comes after this; so the table's own writer never runs
concurrently with its maintenance (a compaction committed under a concurrent MERGE makes the
MERGE fail: "a concurrent transaction added new data"), and the on-request maintenance API
is refused while an execution writes the table. Should another writer commit anyway, Delta's
optimistic concurrency decides: a compaction rebased over an append keeps the appended rows,
and one that read files an overwrite removed fails with ``CommitFailedError`` and commits
nothing (both measured on deltalake 1.6.6, ``tests/shared/test_maintenance.py``).

Each step fails alone: a failure is reported as a warning in :class:`Maintained`, never
raised, because the write it follows has committed and succeeded.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from flowforge_shared.lake import Lake, Layer

if TYPE_CHECKING:  # imported where used: the API process need not load Arrow and delta-rs
    from deltalake import DeltaTable

log = logging.getLogger("flowforge.maintenance")

CHECKPOINT_INTERVAL = "delta.checkpointInterval"
TARGET_FILE_SIZE = "delta.targetFileSize"
CLUSTER_KEY = "flowforge.cluster_by"
CLUSTERED_FILE_BYTES = 4 * 1024 * 1024
"""``delta.targetFileSize`` of a clustered (merged) silver table: delta-rs measures it before
compression, so about 2 MB on disk, some 110,000 rows of a narrow table."""
_HISTORY_SCANNED = 50  # commits searched for the writer's latest clustering key
ORPHAN_MIN_HOURS = 6
_MARK = {"flowforge.action": "auto-maintenance"}


def min_vacuum_hours(settings) -> int:
    """The shortest retention a vacuum may use: the longest a write (or a read of an older
    snapshot) may take, as for the orphan-file clean-up after each job."""
    return max(ORPHAN_MIN_HOURS, math.ceil(2.0 * settings.task_time_limit / 3600))


@dataclass(frozen=True)
class MaintenancePolicy:
    checkpoint_interval: int = 10
    compact_min_files: int = 16  # 0: never compact (nor re-cluster) automatically
    recluster_min_files: int = 8
    clustered_file_bytes: int = CLUSTERED_FILE_BYTES  # given to a clustered table that has none
    small_file_bytes: int = 32 * 1024 * 1024
    target_file_bytes: int = 128 * 1024 * 1024
    vacuum_retention_hours: int | None = 168  # None: never vacuum automatically

    @classmethod
    def from_settings(cls, settings) -> MaintenancePolicy:
        retention = settings.table_vacuum_retention_hours
        return cls(
            checkpoint_interval=settings.table_checkpoint_interval,
            compact_min_files=settings.table_compact_min_files,
            small_file_bytes=settings.table_small_file_bytes,
            target_file_bytes=settings.table_target_file_bytes,
            # Never shorter than the minimum, whatever the setting says.
            vacuum_retention_hours=max(retention, min_vacuum_hours(settings))
            if retention
            else None,
        )


@dataclass
class Maintained:
    """What maintenance did to one table, and what it could not do."""

    table: str
    done: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def maintain_after_write(
    lake: Lake,
    layer: Layer,
    table: str,
    policy: MaintenancePolicy,
    *,
    current: DeltaTable | None = None,
) -> Maintained:
    """``current``: the table as the job's write committed it (else it is loaded). The
    table is read again only after a step that changed it (or failed)."""
    result = Maintained(table=f"{layer}.{table}")
    delta = current
    for step in (_checkpoint_policy, _compact, _vacuum):
        try:
            if delta is None:
                delta = lake.load(layer, table)
            if delta is None:
                return result
            done = dict(result.done)
            step(delta, policy, result)
            if result.done != done:
                delta = None  # it committed: the next step reads the table as it is now
        except Exception as error:  # noqa: BLE001 - the write succeeded; maintenance is extra
            delta = None
            log.warning("%s of %s failed", step.__name__.strip("_"), result.table, exc_info=True)
            result.warnings.append(
                f"{step.__name__.strip('_').replace('_', ' ')} of {result.table} failed "
                f"({type(error).__name__}: {_first_line(error)}); the write itself is committed"
            )
    return result


def _checkpoint_policy(delta: DeltaTable, policy: MaintenancePolicy, result: Maintained) -> None:
    """Give the table the checkpoint interval (one metadata commit, only when it differs) and,
    when it had none, a checkpoint now."""
    from deltalake import CommitProperties

    wanted = str(policy.checkpoint_interval)
    if delta.metadata().configuration.get(CHECKPOINT_INTERVAL) == wanted:
        return
    delta.alter.set_table_properties(
        {CHECKPOINT_INTERVAL: wanted}, commit_properties=CommitProperties(custom_metadata=_MARK)
    )
    delta.create_checkpoint()
    result.done["checkpointInterval"] = policy.checkpoint_interval
    result.done["checkpoint"] = delta.version()


def small_files(delta: DeltaTable, below: int) -> int:
    """How many data files of the current version are smaller than ``below`` bytes."""
    import pyarrow as pa

    sizes = pa.table(delta.get_add_actions(flatten=True)).column("size_bytes").to_pylist()
    return sum(1 for size in sizes if size < below)


def _compact(delta: DeltaTable, policy: MaintenancePolicy, result: Maintained) -> None:
    from deltalake import CommitProperties

    if policy.compact_min_files <= 0:
        return
    cluster = clustering_key(delta)
    if cluster:
        _recluster(delta, cluster, policy, result)
        return
    if small_files(delta, policy.small_file_bytes) <= policy.compact_min_files:
        return
    metrics = delta.optimize.compact(
        target_size=policy.target_file_bytes,
        commit_properties=CommitProperties(custom_metadata=_MARK),
    )
    result.done["compact"] = {
        "filesAdded": metrics.get("numFilesAdded"),
        "filesRemoved": metrics.get("numFilesRemoved"),
    }


def clustering_key(delta: DeltaTable) -> list[str]:
    """The key columns the table's writer clusters it on: ``flowforge.cluster_by`` of its
    latest FlowForge commit (maintenance commits skipped), or [] when that commit names none
    or names a column the table no longer has (changed by another writer since): the table
    is then compacted by size, like any other."""
    for commit in delta.history(limit=_HISTORY_SCANNED):
        if commit.get("flowforge.action") == _MARK["flowforge.action"]:
            continue
        if commit.get("flowforge.app_id") is None and commit.get(CLUSTER_KEY) is None:
            continue  # not a FlowForge write (e.g. the empty table's creation)
        value = commit.get(CLUSTER_KEY)
        key = list(json.loads(value)) if value else []
        columns = {field.name for field in delta.schema().fields}
        return key if key and all(column in columns for column in key) else []
    return []


def unclustered_files(delta: DeltaTable, column: str) -> tuple[int, int, int]:
    """(files whose range of ``column`` overlaps another file's, small files, all files) of
    the current version, from the files' statistics. A file without statistics on the column
    counts as overlapping (it may hold any key)."""
    import pyarrow as pa

    actions = pa.table(delta.get_add_actions(flatten=True))
    count = actions.num_rows
    if count < 2:
        return 0, 0, count
    sizes = actions.column("size_bytes").to_pylist()
    small = sum(1 for size in sizes if size * 4 < max(sizes))
    names = actions.column_names
    if f"min.{column}" not in names or f"max.{column}" not in names:
        return count, small, count
    lows = actions.column(f"min.{column}").to_pylist()
    highs = actions.column(f"max.{column}").to_pylist()
    ranges = list(zip(lows, highs, strict=True))
    unknown = [r for r in ranges if r[0] is None or r[1] is None]
    known = sorted(r for r in ranges if r[0] is not None and r[1] is not None)
    overlapping: set[int] = set()
    reach = 0  # sorted by lower bound: the file reaching furthest so far
    for index in range(1, len(known)):
        if known[index][0] <= known[reach][1]:  # starts before an earlier file ends
            overlapping.update((reach, index))
        if known[index][1] > known[reach][1]:
            reach = index
    return len(overlapping) + len(unknown), small, count


def _recluster(
    delta: DeltaTable, key: list[str], policy: MaintenancePolicy, result: Maintained
) -> None:
    done = keep_clustered(
        delta,
        key,
        min_files=policy.recluster_min_files,
        custom_metadata=_MARK,
        file_bytes=policy.clustered_file_bytes,
    )
    if done is not None:
        result.done["zOrder"] = done


def keep_clustered(
    delta: DeltaTable,
    key: list[str],
    *,
    min_files: int,
    custom_metadata: dict[str, str],
    file_bytes: int = CLUSTERED_FILE_BYTES,
) -> dict[str, Any] | None:
    """Re-cluster a table kept clustered on ``key`` (:func:`clustering_key`) when more than
    ``min_files`` of its files overlap another file's range of ``key[0]`` or are small: one
    Z-order ``OPTIMIZE`` on ``key[0]`` (``dataChange=false``) into files of the table's own
    ``delta.targetFileSize``. A table without that property (merged before FlowForge
    clustered merge tables: one large file) is re-clustered in files of ``file_bytes``
    whatever ``min_files`` says, then given the property (a metadata commit, no data
    change): once. Both commits carry ``custom_metadata``.

    The one re-clustering both the automatic maintenance and the catalog's on-request
    compaction use. Returns what was done, or None when the layout was left as it is."""
    from deltalake import CommitProperties

    declared = delta.metadata().configuration.get(TARGET_FILE_SIZE)
    overlapping, small, count = unclustered_files(delta, key[0])
    if count == 0 or (declared and overlapping + small <= min_files):
        return None
    metrics = delta.optimize.z_order(
        [key[0]],
        target_size=int(declared) if declared else file_bytes,
        commit_properties=CommitProperties(custom_metadata=custom_metadata),
    )
    done: dict[str, Any] = {
        "columns": [key[0]],
        "filesOverlapping": overlapping,
        "filesSmall": small,
        "filesAdded": metrics.get("numFilesAdded"),
        "filesRemoved": metrics.get("numFilesRemoved"),
    }
    if not declared:
        # After the re-clustering: should it fail, the table still has no property, and
        # the next maintenance tries the adoption again.
        delta.alter.set_table_properties(
            {TARGET_FILE_SIZE: str(file_bytes)},
            commit_properties=CommitProperties(custom_metadata=custom_metadata),
        )
        done["targetFileSize"] = file_bytes  # adopted now
    return done


def _vacuum(delta: DeltaTable, policy: MaintenancePolicy, result: Maintained) -> None:
    from deltalake import CommitProperties

    if policy.vacuum_retention_hours is None:
        return
    removed = delta.vacuum(
        retention_hours=policy.vacuum_retention_hours,
        dry_run=False,
        # The table's own default (a week) would refuse a shorter, configured retention;
        # the minimum is enforced by MaintenancePolicy instead.
        enforce_retention_duration=False,
        full=False,  # lite: only files the log names as removed
        commit_properties=CommitProperties(custom_metadata=_MARK),
    )
    if removed:
        result.done["vacuum"] = {
            "retentionHours": policy.vacuum_retention_hours,
            "filesRemoved": len(removed),
        }


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0][:300] if text else ""
