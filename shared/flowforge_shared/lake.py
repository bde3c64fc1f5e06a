"""Where the medallion tables live: ``<root>/<layer>/<table>`` as Delta Lake tables, on the
local disk or an S3-compatible store.

Idempotency is ours, not Delta's (a retried append simply appends again): every write a job
makes carries an application transaction ``(app_id=<job id>, version=<run sequence>)`` and a
writer asks :meth:`Lake.committed_version` before writing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, Transaction

from flowforge_shared.contracts.events import Dataset

Layer = Literal["bronze", "silver", "gold"]
LAYERS: tuple[Layer, ...] = ("bronze", "silver", "gold")


@dataclass(frozen=True)
class Lake:
    root: str
    storage_options: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings) -> Lake:
        return cls(root=settings.lake_root, storage_options=settings.storage_options)

    @property
    def namespace(self) -> str:
        """The OpenLineage namespace of the lake's datasets."""
        if self.root.startswith("s3://"):
            return "s3://" + self.root.removeprefix("s3://").split("/", 1)[0]
        return "file"

    def uri(self, layer: Layer, table: str) -> str:
        if layer not in LAYERS:
            raise ValueError(f"unknown layer {layer!r}")
        return f"{self.root}/{layer}/{table}"

    def load(self, layer: Layer, table: str, version: int | None = None) -> DeltaTable | None:
        """The table, or None when it was never written."""
        uri = self.uri(layer, table)
        if not DeltaTable.is_deltatable(uri, storage_options=self.storage_options or None):
            return None
        return DeltaTable(uri, version=version, storage_options=self.storage_options or None)

    def committed_version(self, layer: Layer, table: str, app_id: str) -> int | None:
        """The last run sequence a writer with this app id committed to the table."""
        table_ = self.load(layer, table)
        if table_ is None:
            return None
        return table_.transaction_version(app_id)


def commit_properties(app_id: str, run_sequence: int, **metadata: str) -> CommitProperties:
    """What every FlowForge write carries: the application transaction and who wrote it."""
    return CommitProperties(
        app_transactions=[Transaction(app_id=app_id, version=run_sequence)],
        custom_metadata={"flowforge.app_id": app_id, **metadata},
    )


def describe_schema(schema: pa.Schema) -> list[dict[str, Any]]:
    """Columns as the catalog and run events show them: name, Arrow type, nullable."""
    return [
        {"name": field_.name, "type": str(field_.type), "nullable": field_.nullable}
        for field_ in schema
    ]


def table_schema(table: DeltaTable) -> pa.Schema:
    return pa.schema(table.schema().to_arrow())


def output_dataset(lake: Lake, layer: Layer, table: str, row_count: int | None = None) -> Dataset:
    """The run-event description of a table as it is now: version, schema, row count."""
    current = lake.load(layer, table)
    if current is None:
        return Dataset(namespace=lake.namespace, name=f"{layer}.{table}", row_count=row_count)
    return Dataset(
        namespace=lake.namespace,
        name=f"{layer}.{table}",
        schema=describe_schema(table_schema(current)),
        row_count=current.count() if row_count is None else row_count,
        version=current.version(),
        location=lake.uri(layer, table),
    )
