"""Staged range tables and their one commit into bronze (docs/connectors.md, "Distributed").

A range of a distributed parallel read writes a Delta table of its own under the bronze
table's folder::

    <bronze table>/flowforge-ranges/<execution>-<seq>-a<attempt>/range-<i>-<uuid>/

(a new uuid for every delivery). Its version-0 commit is the atomic "range done" mark; a
staged table is invisible to bronze's readers (not in bronze's log). The folder does not
begin with ``_`` or ``.``: delta-rs's vacuum skips such folders, so the orphans of a killed
range there would never be found (``Lake.remove_orphans`` finds them under this one).

The coordinator then commits the add actions of exactly one staged table per range into
bronze in **one** ``DeltaTable.create_write_transaction``, with the run's application
transaction, the watermark and the row count (``flowforge.rows``: this commit's history entry
has no row metric) in its metadata, and deletes the staged logs.
"""

from __future__ import annotations

import json
import posixpath
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Literal

import pyarrow as pa
from deltalake import Field, write_deltalake
from deltalake.transaction import AddAction

from flowforge_ingest.bronze import (
    AuditContext,
    BatchSource,
    BronzeResult,
    WritePlan,
    _after_failed_commit,
    _Commit,
    _committed,
    _earlier_commit,
    _Stream,
    _writer_properties,
)
from flowforge_shared.lake import ROWS_KEY, Lake

RANGES_FOLDER = "flowforge-ranges"
_FIRST_COMMIT = "_delta_log/00000000000000000000.json"


def attempt_folder(execution_id: str, run_sequence: int, attempt: int) -> str:
    """The folder (relative to the bronze table) of one attempt's staged ranges."""
    return f"{RANGES_FOLDER}/{execution_id}-{run_sequence}-a{attempt}"


@dataclass(frozen=True)
class StagedRange:
    """A range's staged table: its index, its folder relative to the bronze table, its rows."""

    index: int
    path: str
    rows: int

    def to_dict(self) -> dict:
        return {"index": self.index, "path": self.path, "rows": self.rows}

    @classmethod
    def from_dict(cls, data: dict) -> StagedRange:
        return cls(int(data["index"]), str(data["path"]), int(data["rows"]))


def stage_range(
    lake: Lake,
    table: str,
    folder: str,
    index: int,
    batches: BatchSource,
    target: pa.Schema,
    audit: AuditContext | None,
    *,
    on_batch: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> StagedRange:
    """Write ``batches``, shaped to bronze's ``target`` schema (audit columns, Delta storage
    types) exactly as a bronze write shapes them, into a new staged table of range
    ``index``. Raises the source's error, or :class:`~flowforge_ingest.errors.Cancelled`
    when ``should_stop`` says so; either way nothing is marked done (no version 0)."""
    path = f"{folder}/range-{index}-{uuid.uuid4().hex}"
    stream = _Stream(batches, target, audit, on_batch, should_stop)
    try:
        properties = _writer_properties(target, stream.first())
        try:
            write_deltalake(
                f"{lake.uri('bronze', table)}/{path}",
                pa.RecordBatchReader.from_batches(target, stream),
                mode="error",
                writer_properties=properties,
                storage_options=lake.storage_options or None,
            )
        except Exception:
            if stream.error is not None:
                raise stream.error from None
            raise
    finally:
        stream.close()
        close = getattr(batches, "close", None)
        if close is not None:
            close()
    return StagedRange(index, path, stream.rows)


def staged_adds(lake: Lake, table: str, staged: StagedRange) -> list[AddAction]:
    """The add actions of a staged table's version 0, their paths made relative to the
    bronze table, their statistics kept verbatim."""
    filesystem, base = lake.filesystem("bronze", table)
    with filesystem.open_input_stream(posixpath.join(base, staged.path, _FIRST_COMMIT)) as log:
        lines = log.read().decode().splitlines()
    adds = []
    for line in lines:
        if not line.strip():
            continue
        action = json.loads(line).get("add")
        if action is None:
            continue
        adds.append(
            AddAction(
                path=f"{staged.path}/{action['path']}",
                size=int(action["size"]),
                partition_values=action.get("partitionValues") or {},
                modification_time=int(action["modificationTime"]),
                data_change=True,
                stats=action.get("stats") or "",
            )
        )
    return adds


def commit_staged(
    lake: Lake,
    table: str,
    plan: WritePlan,
    staged: list[StagedRange],
    mode: Literal["append", "overwrite"],
    commit: _Commit,
) -> BronzeResult:
    """One bronze commit of every staged range's files, against the snapshot the run
    planned with: the run's application transaction, its metadata and ``flowforge.rows``.
    A retry that finds the run's commit writes nothing and reports it; a commit lost to
    another writer raises :class:`~flowforge_ingest.errors.ConcurrentWriteError`."""
    snapshot = plan.snapshot
    earlier = _earlier_commit(snapshot, table, commit)
    if earlier is not None:
        return earlier
    adds = [action for part in staged for action in staged_adds(lake, table, part)]
    rows = sum(part.rows for part in staged)
    commit.metadata[ROWS_KEY] = str(rows)
    if mode == "append" and plan.adds_columns:
        # A commit of files does not change the table's schema in append mode: the new
        # columns are added first (a commit of its own, as a widening is).
        existing = set(snapshot.schema().to_arrow().names)
        new = [field for field in plan.target if field.name not in existing]
        snapshot.alter.add_columns([Field.from_arrow(field) for field in new])
        reloaded = lake.load("bronze", table)
        assert reloaded is not None
        snapshot = reloaded
        earlier = _earlier_commit(snapshot, table, commit)
        if earlier is not None:
            return earlier
    try:
        snapshot.create_write_transaction(
            adds, mode, plan.target, commit_properties=commit.properties()
        )
    except Exception as error:  # noqa: BLE001 - re-raised, or the earlier run reported
        return _after_failed_commit(lake, table, commit, error)
    return replace(_committed(lake, table, commit, rows, snapshot), notes=plan.notes)


def clean_staged(lake: Lake, table: str, folder: str, chosen: list[StagedRange]) -> list[str]:
    """After the commit: delete the staged logs of the ranges committed (their data files
    are now bronze's) and every other complete staged table of the attempt (a redelivered
    range that finished twice). A staged folder without a version 0 may be a write still
    under way: left to the orphan clean-up. Returns the folders touched."""
    from pyarrow import fs

    filesystem, base = lake.filesystem("bronze", table)
    root = posixpath.join(base, folder)
    committed = {posixpath.basename(part.path) for part in chosen}
    touched = []
    try:
        entries = filesystem.get_file_info(fs.FileSelector(root, allow_not_found=True))
    except OSError:
        return touched
    for entry in entries:
        if entry.type != fs.FileType.Directory:
            continue
        name = posixpath.basename(entry.path)
        log = posixpath.join(entry.path, "_delta_log")
        if name in committed:
            filesystem.delete_dir(log)
            touched.append(name)
        elif filesystem.get_file_info(posixpath.join(entry.path, _FIRST_COMMIT)).type == (
            fs.FileType.File
        ):
            filesystem.delete_dir(entry.path)
            touched.append(name)
    return touched
