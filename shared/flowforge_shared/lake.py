"""Where the medallion tables live: ``<root>/<layer>/<table>`` as Delta Lake tables, on the
local disk or an S3-compatible store.

Idempotency is ours, not Delta's (a retried append simply appends again): every write a job
makes carries an application transaction ``(app_id=<job id>, version=<run sequence>)`` and a
writer asks :meth:`Lake.committed_version` before writing.
"""

from __future__ import annotations

import math
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from flowforge_shared.contracts.events import Dataset
from flowforge_shared.errors import PermanentError

if TYPE_CHECKING:  # imported where used: the API process need not load Arrow and delta-rs
    import pyarrow as pa
    from deltalake import CommitProperties, DeltaTable

Layer = Literal["bronze", "silver", "gold"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class Lake:
    root: str
    storage_options: dict[str, str] = field(default_factory=dict)
    # ``delta.checkpointInterval`` of the tables this lake creates: delta-rs's post-commit
    # hook then writes a checkpoint every N commits (flowforge_shared.maintenance).
    checkpoint_interval: int | None = None

    @classmethod
    def from_settings(cls, settings) -> Lake:
        return cls(
            root=settings.lake_root,
            storage_options=settings.storage_options,
            checkpoint_interval=settings.table_checkpoint_interval,
        )

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace of the lake's datasets."""
        if self.root.startswith("s3://"):
            return "s3://" + self.root.removeprefix("s3://").split("/", 1)[0]
        return "file"

    def dataset_name(self, layer: Layer, table: str) -> tuple[str, str]:
        """(namespace, name) of a table by the OpenLineage naming conventions: ``file`` and
        its absolute path, or ``s3://bucket`` and its key."""
        uri = self.uri(layer, table)
        if uri.startswith("s3://"):
            return self.namespace, uri.removeprefix("s3://").split("/", 1)[1]
        return self.namespace, uri

    def uri(self, layer: Layer, table: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return f"{self.root}/{layer}/{table}"

    def load(self, layer: Layer, table: str, version: int | None = None) -> DeltaTable | None:
        """The table, or None when it was never written."""
        from deltalake import DeltaTable

        uri = self.uri(layer, table)
        if not DeltaTable.is_deltatable(uri, storage_options=self.storage_options or None):
            return None
        return DeltaTable(uri, version=version, storage_options=self.storage_options or None)

    def load_or_create(
        self,
        layer: Layer,
        table: str,
        schema: pa.Schema,
        configuration: Mapping[str, str] | None = None,
    ) -> DeltaTable:
        """The table, first created empty with ``schema`` (and the table properties
        ``configuration``, e.g. ``delta.targetFileSize``) when it does not exist.

        Writers never write to a path where no table exists yet: delta-rs checks a commit's
        application transaction only against the snapshot it is handed, so two attempts of a
        run that both found no table would both commit their rows (measured: a frozen worker
        resumed and doubled a table). Creating the empty table is safe under races (the
        version-0 commit is put-if-absent); the data then goes in against a snapshot, where
        a duplicate of the same run is refused as a concurrent transaction.
        """
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        existing = self.load(layer, table)
        if existing is not None:
            return existing
        try:
            return DeltaTable.create(
                self.uri(layer, table),
                schema,
                mode="error",
                storage_options=self.storage_options or None,
                configuration={
                    **(
                        {"delta.checkpointInterval": str(self.checkpoint_interval)}
                        if self.checkpoint_interval
                        else {}
                    ),
                    **(configuration or {}),
                }
                or None,
            )
        except DeltaError:
            created = self.load(layer, table)  # another writer created it first
            if created is None:  # not a lost race: a real failure
                raise
            return created

    def remove_orphans(
        self, layer: Layer, table: str, older_than: float, *, current: DeltaTable | None = None
    ) -> list[str]:
        """Delete the data files no commit of the table references, left by a writer that
        was killed before its commit, once they are older than ``older_than`` seconds.

        The age must exceed the longest write (a file of a live writer is not referenced
        until its commit): callers pass well past the task time limit. Files a later commit
        removed are kept (time travel is VACUUM's business): they are told apart as the files
        a full vacuum would take but a lite one (tombstones only) would not. Returns the
        paths removed, relative to the table. ``current``: the table as its writer just
        committed it (else it is loaded)."""
        if current is None:
            current = self.load(layer, table)
        if current is None:
            return []
        hours = max(1, math.ceil(older_than / 3600))

        def candidates(full: bool) -> set[str]:
            return set(
                current.vacuum(
                    retention_hours=hours,
                    dry_run=True,
                    enforce_retention_duration=False,
                    full=full,
                )
            )

        orphans = sorted(candidates(True) - candidates(False))
        if orphans:
            filesystem, base = self._filesystem(layer, table)
            for relative in orphans:
                filesystem.delete_file(posixpath.join(base, relative))
        return orphans

    def filesystem(self, layer: Layer, table: str):
        """(pyarrow filesystem, path of the table's folder in it)."""
        return self._filesystem(layer, table)

    def _filesystem(self, layer: Layer, table: str):
        uri = self.uri(layer, table)
        if uri.startswith("s3://"):
            from flowforge_shared.objectstore import s3_filesystem_from

            return s3_filesystem_from(self.storage_options), uri.removeprefix("s3://")
        from pyarrow import fs

        return fs.LocalFileSystem(), uri

    def committed_version(self, layer: Layer, table: str, app_id: str) -> int | None:
        """The last run sequence a writer with this app id committed to the table."""
        table_ = self.load(layer, table)
        if table_ is None:
            return None
        return table_.transaction_version(app_id)


def commit_properties(
    app_id: str, run_sequence: int, *, execution_id: str | None, **metadata: str
) -> CommitProperties:
    """What every FlowForge write carries: the application transaction and who wrote it
    (read back by :func:`prior_commit`)."""
    from deltalake import CommitProperties, Transaction

    custom = {**metadata, "flowforge.app_id": app_id, "flowforge.run_sequence": str(run_sequence)}
    if execution_id:
        custom["flowforge.execution_id"] = execution_id
    return CommitProperties(
        app_transactions=[Transaction(app_id=app_id, version=run_sequence)],
        custom_metadata=custom,
    )


ROWS_KEY = "flowforge.rows"
"""Commit metadata: the rows a commit added, for commits whose history entry has no row
metric (a commit of staged files, ``DeltaTable.create_write_transaction``)."""

_HISTORY_SEARCH = 200
"""Commits searched (newest first) for the details of an earlier commit."""


@dataclass(frozen=True)
class PriorCommit:
    """A commit of this job already in the table, at or past the run that asks.

    ``run_sequence`` is the sequence that committed; the rest is read from that commit's
    entry in the table history (None when it is older than the commits searched)."""

    run_sequence: int
    execution_id: str | None
    version: int | None
    rows: int | None
    metadata: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> dict[str, Any]:
        """The ``alreadyApplied`` part of a job's result."""
        return {
            "executionId": self.execution_id,
            "runSequence": self.run_sequence,
            "version": self.version,
            "rowsWritten": self.rows,
        }


class StaleRunError(PermanentError):
    """A later run of the same job already wrote the table: this run is out of date and
    writes nothing (its rows would go in behind the later run's)."""


def prior_commit(table: DeltaTable | None, app_id: str, run_sequence: int) -> PriorCommit | None:
    """The commit of ``app_id`` at or past ``run_sequence`` in ``table``, if there is one.

    Asked on the very snapshot a writer is about to commit against, so a commit landing in
    between surfaces as a commit conflict instead of slipping past."""
    if table is None:
        return None
    committed = table.transaction_version(app_id)
    if committed is None or committed < run_sequence:
        return None
    for entry in table.history(limit=_HISTORY_SEARCH):
        if entry.get("flowforge.app_id") != app_id:
            continue
        sequence = entry.get("flowforge.run_sequence")  # absent in commits of before 0.1
        if sequence is not None and sequence != str(committed):
            continue
        return PriorCommit(
            run_sequence=committed,
            execution_id=entry.get("flowforge.execution_id") or entry.get("execution_id"),
            version=entry.get("version"),
            rows=_rows_of(entry),
            metadata={k: v for k, v in entry.items() if k.startswith("flowforge.")},
        )
    return PriorCommit(run_sequence=committed, execution_id=None, version=None, rows=None)


def _rows_of(entry: dict[str, Any]) -> int | None:
    metrics = entry.get("operationMetrics") or {}
    if "num_target_rows_inserted" in metrics:  # MERGE
        return int(metrics["num_target_rows_inserted"]) + int(
            metrics.get("num_target_rows_updated", 0)
        )
    if "num_added_rows" in metrics:
        return int(metrics["num_added_rows"])
    recorded = entry.get(ROWS_KEY)
    if recorded is not None:
        try:
            return int(recorded)
        except (TypeError, ValueError):
            return None
    return None


def this_runs_commit(
    table: DeltaTable | None, app_id: str, run_sequence: int, label: str
) -> PriorCommit | None:
    """This run's own earlier commit in ``table``, if a retry finds one, else None; a commit
    of a later run raises :class:`StaleRunError`, so a stale run never reports the later
    run's write as its own. ``label`` names the table in that message."""
    prior = prior_commit(table, app_id, run_sequence)
    if prior is not None and prior.run_sequence > run_sequence:
        by = f"execution {prior.execution_id}" if prior.execution_id else "a later execution"
        raise StaleRunError(
            f"not written: {label} already holds the write of a later run ({by}, run "
            f"{prior.run_sequence}); this run (run {run_sequence}) is out of date"
        )
    return prior


def describe_schema(schema: pa.Schema) -> list[dict[str, Any]]:
    """Columns as the catalog and run events show them: name, Arrow type, nullable."""
    return [
        {"name": field_.name, "type": str(field_.type), "nullable": field_.nullable}
        for field_ in schema
    ]


def table_schema(table: DeltaTable) -> pa.Schema:
    import pyarrow as pa

    return pa.schema(table.schema().to_arrow())


def output_dataset(
    lake: Lake,
    layer: Layer,
    table: str,
    row_count: int | None = None,
    *,
    current: DeltaTable | None = None,
) -> Dataset:
    """The run-event description of a table as it is now (or as of ``current``, the
    snapshot a writer just committed, which spares reading the log again): version,
    schema, row count; named by its location (:meth:`Lake.dataset_name`)."""
    namespace, name = lake.dataset_name(layer, table)
    named = {"namespace": namespace, "name": name, "layer": layer, "table": table}
    if current is None:
        current = lake.load(layer, table)
    if current is None:
        return Dataset(**named, row_count=row_count, location=lake.uri(layer, table))
    return Dataset(
        **named,
        schema=describe_schema(table_schema(current)),
        row_count=current.count() if row_count is None else row_count,
        version=current.version(),
        location=lake.uri(layer, table),
    )
