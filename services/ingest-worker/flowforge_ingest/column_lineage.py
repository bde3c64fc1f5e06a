"""Column lineage of a bronze load: each bronze column is the same-named source column, as
read (a CSV column renamed by ``fileConfig.columns`` is a rename); the audit columns come
from no source column. An incremental database read filters on its delta column.

The source dataset is the one the run reports; its namespace and name are never built here.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from flowforge_ingest.bronze import AUDIT_COLUMNS, absent_columns
from flowforge_shared.contracts.column_lineage import Source, facet
from flowforge_shared.contracts.events import Dataset
from flowforge_shared.contracts.jobs import FileConfig
from flowforge_shared.lake import Lake, prior_commit

INCREMENTAL_READ = "incremental read: only rows whose delta column passed the watermark"


def bronze_column_lineage(
    source: Dataset,
    output: Dataset,
    *,
    renames: Mapping[str, str] | None = None,
    delta_column: str | None = None,
    not_sent: Collection[str] = (),
) -> dict[str, Any] | None:
    """The ``columnLineage`` facet of the bronze table ``output`` loaded from ``source``;
    ``renames`` maps a bronze column to the source column it was read from, ``delta_column``
    is the source column an incremental read filtered on, ``not_sent`` the table columns the
    source did not have (:func:`columns_not_sent`). None without the table's schema."""
    if output.schema is None:
        return None
    renames = renames or {}
    indirect = (
        [Source(source.namespace, source.name, delta_column, "filter", INCREMENTAL_READ)]
        if delta_column
        else []
    )
    fields = {}
    for column in (field["name"] for field in output.schema):
        if column in AUDIT_COLUMNS or column in not_sent:
            continue
        read_as = renames.get(column, column)
        how, description = ("rename", "rename") if read_as != column else ("identity", None)
        copied = Source(source.namespace, source.name, read_as, how, description)
        fields[column] = [copied, *indirect]
    return facet(fields, indirect)


def csv_renames(config: FileConfig) -> dict[str, str]:
    """Bronze column -> the CSV column it was read from, for the columns renamed."""
    return {column.rename: column.name for column in config.columns or [] if column.rename}


def columns_not_sent(lake: Lake, table: str, app_id: str, run_sequence: int) -> frozenset[str]:
    """The bronze table's columns this run's load did not carry, as its commit names them
    (a job has them from its write: ``BronzeResult.absent_columns``)."""
    own = prior_commit(lake.load("bronze", table), app_id, run_sequence)
    return absent_columns(own.metadata) if own else frozenset()
