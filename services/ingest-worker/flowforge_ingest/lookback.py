"""Re-reading a window before the watermark without duplicating what bronze already holds.

A row committed late — after a run read past its delta value, or with the same delta value as
the watermark (a tie) — is skipped by ``lower < delta <= upper``. With a lookback setting the
read starts earlier (``watermark - lookback``), and :class:`WithoutKnownRows` drops every read
row whose (key, delta) bronze already holds, so such a row is loaded once and nothing twice.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.dataset as ds

from flowforge_ingest.bronze import to_delta_storage
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake


def window_start(previous, settings):
    """The watermark moved back by the configured lookback, or None when there is none."""
    from flowforge_ingest.connectors.watermark import lookback

    if (
        previous.kind in ("timestamp", "timestamptz", "date")
        and settings.incremental_lookback_seconds
    ):
        return lookback(previous, seconds=settings.incremental_lookback_seconds)
    if previous.kind in ("integer", "rowversion") and settings.incremental_lookback_rows:
        return lookback(previous, rows=settings.incremental_lookback_rows)
    return None


def key_columns(unique_key: Sequence[str] | None, columns, job_name: str) -> list[str]:
    keys = list(unique_key or [column.name for column in columns or [] if column.primary_key])
    if not keys:
        raise PermanentError(
            f"job {job_name}: a lookback drops rows bronze already holds by their key; the "
            "source has no primary key, so name one in databaseConfig.uniqueKey"
        )
    return keys


def known_rows(lake: Lake, table: str, keys: Sequence[str], delta: str) -> set[tuple]:
    """(key..., delta) of every bronze row, as bronze stores them."""
    current = lake.load("bronze", table)
    if current is None:
        return set()
    names = pa.schema(current.schema().to_arrow()).names
    if any(name not in names for name in (*keys, delta)):
        return set()
    dataset: ds.Dataset = current.to_pyarrow_dataset()
    found = dataset.to_table(columns=[*keys, delta])
    return set(zip(*(found.column(name).to_pylist() for name in (*keys, delta)), strict=True))


class WithoutKnownRows:
    """A batch stream with the rows bronze already holds left out."""

    def __init__(self, stream, known: set[tuple], keys: Sequence[str], delta: str) -> None:
        self.stream = stream
        self.schema = stream.schema
        self.known = known
        self.names = [*keys, delta]
        self.dropped = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.stream:
            if not self.known:
                yield batch
                continue
            stored = to_delta_storage(batch)
            values = zip(*(stored.column(name).to_pylist() for name in self.names), strict=True)
            keep = pa.array([value not in self.known for value in values], pa.bool_())
            kept = batch.filter(keep)
            self.dropped += batch.num_rows - kept.num_rows
            if kept.num_rows:
                yield kept

    def close(self) -> None:
        self.stream.close()
