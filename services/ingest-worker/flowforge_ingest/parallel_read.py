"""Parallel reads of one table (docs/connectors.md, "Parallel reads").

A table is split into key ranges of an integer column (``partitionColumn``, else the table's
one-column integer primary key) by the span ``MIN(k)..MAX(k)``, in equal widths. The first
range has no lower end and carries the rows whose key is NULL, the last has no upper end, so
every row lies in exactly one range whatever the span was when it was measured.

Each range is read on its own connection (its own ``connector.connect``, and its own
reading session: ADBC's for PostgreSQL, ConnectorX's for MariaDB/MySQL) in a thread of its
own; :class:`ParallelStream` hands the batches of all ranges, as they arrive, to the one
bronze write, which commits once. A range that fails fails the whole stream: the write
raises before its commit, so nothing of the read is visible, and a retry reads every range
again into the same one commit (bronze's application transaction keeps a retry that finds
its commit from writing twice).
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pyarrow as pa

from flowforge_ingest.connectors.base import BatchStream, ColumnInfo
from flowforge_ingest.connectors.sql import KeyRange
from flowforge_shared.errors import PermanentError

_INTEGER_ARROW = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")


def key_column(
    columns: list[ColumnInfo], configured: str | None, table: str, job_name: str
) -> ColumnInfo:
    """The column a parallel read splits: ``partitionColumn``, else the table's primary key
    when it is one integer column. Anything else fails the job saying what to set."""
    if configured:
        found = next((column for column in columns if column.name == configured), None)
        if found is None:
            raise PermanentError(
                f"job {job_name}: partitionColumn {configured!r} is not a column of {table}"
            )
        if found.arrow_type not in _INTEGER_ARROW:
            raise PermanentError(
                f"job {job_name}: partitionColumn {configured!r} is {found.source_type}: a "
                "parallel read splits an integer column into ranges; name an integer column"
            )
        return found
    keys = [column for column in columns if column.primary_key]
    if len(keys) == 1 and keys[0].arrow_type in _INTEGER_ARROW:
        return keys[0]
    raise PermanentError(
        f"job {job_name}: {table} has no primary key of one integer column to split a parallel "
        "read by; set partitionColumn to an integer column (or partitions to 1)"
    )


def key_ranges(column: str, lowest: int | None, highest: int | None, count: int) -> list[KeyRange]:
    """``count`` ranges of equal width over ``lowest..highest`` (fewer when the span holds
    fewer values); open at both outer ends, NULL keys in the first."""
    if lowest is None or highest is None or count < 2 or highest <= lowest:
        return [KeyRange(column, None, None, True)]
    span = highest - lowest + 1
    cuts = sorted({lowest + (span * index) // count for index in range(1, count)})
    cuts = [cut for cut in cuts if lowest < cut <= highest]
    if not cuts:
        return [KeyRange(column, None, None, True)]
    ranges = [KeyRange(column, None, cuts[0], True)]
    ranges += [KeyRange(column, low, high) for low, high in zip(cuts, cuts[1:], strict=False)]
    ranges.append(KeyRange(column, cuts[-1], None))
    return ranges


@dataclass
class _Range:
    stream: BatchStream
    close_connection: Callable[[], None]


_DONE = object()


class ParallelStream:
    """The batches of several range streams, each iterated in a thread of its own, handed
    out in the order they arrive. The first error of any range is raised to the reader (the
    other ranges are stopped); ``close`` stops every range and closes its connection."""

    def __init__(self, ranges: list[_Range], schema: pa.Schema) -> None:
        self.schema = schema
        self._ranges = ranges
        # Two batches per range in flight: the readers stay ahead of the writer without
        # holding more than a few batches.
        self._queue: queue.Queue = queue.Queue(maxsize=2 * len(ranges))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = False

    @classmethod
    def open(
        cls, openers: list[Callable[[], tuple[BatchStream, Callable[[], None]]]]
    ) -> ParallelStream:
        """Open every range (connection and statement; no row is read yet). A failure closes
        those already open."""
        ranges: list[_Range] = []
        try:
            for opener in openers:
                stream, close_connection = opener()
                ranges.append(_Range(stream, close_connection))
            schema = ranges[0].stream.schema
            for part in ranges[1:]:
                if not part.stream.schema.equals(schema):
                    raise PermanentError(
                        "the ranges of a parallel read came back with different columns "
                        "(the table changed while the read started); the job will be run again"
                    )
        except BaseException:
            for part in ranges:
                _close(part)
            raise
        return cls(ranges, schema)

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._started:
            raise RuntimeError("a parallel read is read once")
        self._started = True
        for index, part in enumerate(self._ranges):
            thread = threading.Thread(
                target=self._read, args=(part,), name=f"flowforge-range-{index}", daemon=True
            )
            self._threads.append(thread)
            thread.start()
        return self._batches()

    def _batches(self) -> Iterator[pa.RecordBatch]:
        running = len(self._ranges)
        while running:
            item = self._queue.get()
            if item is _DONE:
                running -= 1
            elif isinstance(item, BaseException):
                self._stop.set()
                raise item
            else:
                yield item

    def _read(self, part: _Range) -> None:
        try:
            for batch in part.stream:
                if self._stop.is_set():
                    return
                self._put(batch)
        except BaseException as error:  # noqa: BLE001 (handed to the reader)
            self._put(error)
        finally:
            _close(part)
            self._put(_DONE)

    def _put(self, item) -> None:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self._stop.set()
        if not self._started:
            for part in self._ranges:
                _close(part)
            return
        for thread in self._threads:
            thread.join(timeout=60)


def _close(part: _Range) -> None:
    with contextlib.suppress(Exception):
        part.stream.close()
    with contextlib.suppress(Exception):
        part.close_connection()
