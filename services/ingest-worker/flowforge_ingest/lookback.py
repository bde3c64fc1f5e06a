"""Re-reading from the watermark on without loading a row twice.

An incremental run reads ``watermark <= delta <= upper``, not ``watermark < delta``: a row
committed after the last run with the same delta value as the watermark (a tie: a clock that
stamped two rows with one value, a row committed while the last run read) would otherwise
never be read. With a lookback setting the read starts earlier still (``watermark -
lookback``), for rows committed late with an older delta value.

What such a read takes again is what bronze already holds. When a key is known (the job's
``databaseConfig.uniqueKey``, else the source table's primary key), :func:`known_rows` reads
from bronze the (key, delta) of the rows whose delta lies at or past the read's lower bound —
a filtered scan, never the whole table — and :class:`WithoutKnownRows` drops every read row
whose (key, delta) is among them, before the bronze write: each source row version is loaded
once. Without a key a re-read row cannot be told from a new one (see
:func:`flowforge_shared.contracts.incremental.incremental_warnings` for what the user is told).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from datetime import UTC, date, timedelta
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from flowforge_ingest.bronze import NANOS_SUFFIX, to_delta_storage
from flowforge_ingest.connectors.types import EPOCH
from flowforge_shared.errors import PermanentError
from flowforge_shared.lake import Lake

log = logging.getLogger(__name__)


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


def key_columns(unique_key: Sequence[str] | None, columns) -> list[str]:
    """``uniqueKey`` as configured, else the source table's primary key; [] when neither."""
    return list(unique_key or [column.name for column in columns or [] if column.primary_key])


def require_key(keys: Sequence[str], job_name: str) -> None:
    if not keys:
        raise PermanentError(
            f"job {job_name}: a lookback drops rows bronze already holds by their key; the "
            "source has no primary key, so name one in databaseConfig.uniqueKey"
        )


class KnownRows:
    """(key..., delta) of the bronze rows at or past a bound, as bronze stores them.

    ``delta`` is compared exactly: a ``timestamp[ns]`` column is stored as microseconds plus
    its ``<name>__ns`` text, and the text is what is compared when bronze has it.
    """

    def __init__(self, rows: set[tuple], keys: Sequence[str], delta: str, exact: str) -> None:
        self.rows = rows
        self.keys = list(keys)
        self.delta = delta
        self.exact = exact
        self.highest = None  # the greatest stored delta among them (a pa.Scalar)

    def __len__(self) -> int:
        return len(self.rows)


def known_rows(lake: Lake, table: str, keys: Sequence[str], delta: str, since=None) -> KnownRows:
    """The (key, delta) of the bronze rows whose delta is ``>= since`` (a Watermark; None:
    every row). Only those rows are read: memory follows the rows at the read's lower bound,
    not the size of the table."""
    current = lake.load("bronze", table)
    empty = KnownRows(set(), keys, delta, delta)
    if current is None:
        return empty
    schema = pa.schema(current.schema().to_arrow())
    if any(name not in schema.names for name in (*keys, delta)):
        return empty
    exact = f"{delta}{NANOS_SUFFIX}" if f"{delta}{NANOS_SUFFIX}" in schema.names else delta
    columns = list(dict.fromkeys([*keys, delta, exact]))
    dataset: ds.Dataset = current.to_pyarrow_dataset()
    bound = _stored_bound(since, schema.field(delta).type) if since is not None else None
    if since is not None and bound is None:
        log.warning(
            "bronze table %s: the watermark %s cannot be compared with its %s column %r; "
            "reading that column whole to find the rows already loaded",
            table,
            since.value,
            schema.field(delta).type,
            delta,
        )
    found = dataset.to_table(
        columns=columns, filter=(ds.field(delta) >= bound) if bound is not None else None
    )
    known = KnownRows(
        set(zip(*(found.column(name).to_pylist() for name in (*keys, exact)), strict=True)),
        keys,
        delta,
        exact,
    )
    if found.num_rows:
        known.highest = pc.max(found.column(delta))
    return known


def _stored_bound(mark, stored: pa.DataType) -> pa.Scalar | None:
    """The watermark as a value of bronze's column type, never above the watermark (a
    timestamp is cut down to bronze's microseconds); None when the types do not meet."""
    kind = mark.kind
    if kind in ("timestamp", "timestamptz"):
        moment = EPOCH + timedelta(microseconds=mark.ns // 1000)
        value = moment.replace(tzinfo=UTC) if kind == "timestamptz" else moment
    elif kind == "date":
        value = date.fromisoformat(mark.value)
    elif kind == "integer":
        value = int(mark.value)
    elif kind == "decimal":
        value = Decimal(mark.value)
    elif kind == "rowversion":
        value = int(mark.value, 16).to_bytes(8, "big")
    else:
        value = mark.value
    try:
        if pa.types.is_string(stored) or pa.types.is_large_string(stored):
            if not isinstance(value, str):
                return None  # text orders differently from the values it spells
        return pa.scalar(value).cast(stored)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError, OverflowError):
        return None


class WithoutKnownRows:
    """A batch stream with the rows bronze already holds left out.

    Only rows whose delta is at most the greatest known delta can be known; the others pass
    without a look (the bulk of a read lies past the watermark)."""

    def __init__(self, stream, known: KnownRows) -> None:
        self.stream = stream
        self.schema = stream.schema
        self.known = known
        self.names = [*known.keys, known.exact]
        self.dropped = 0

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for batch in self.stream:
            if not self.known.rows:
                yield batch
                continue
            stored = to_delta_storage(batch)
            candidates = self._candidates(stored)
            if candidates is None:
                candidates = range(stored.num_rows)
            keep = [True] * stored.num_rows
            if len(candidates):
                picked = stored.take(pa.array(candidates, pa.int64()))
                values = zip(*(picked.column(n).to_pylist() for n in self.names), strict=True)
                for index, value in zip(candidates, values, strict=True):
                    if value in self.known.rows:
                        keep[index] = False
            kept = batch.filter(pa.array(keep, pa.bool_()))
            self.dropped += batch.num_rows - kept.num_rows
            if kept.num_rows:
                yield kept

    def _candidates(self, stored: pa.RecordBatch) -> list[int] | None:
        """Positions of the rows whose delta is not past every known one (None: all)."""
        if self.known.highest is None:
            return None
        column = stored.column(self.known.delta)
        try:
            highest = self.known.highest.cast(column.type)
            near = pc.fill_null(pc.less_equal(column, highest), False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
            return None
        return pc.indices_nonzero(near).to_pylist()

    def close(self) -> None:
        self.stream.close()
