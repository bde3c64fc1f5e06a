"""Where detection's bytes come from: a :class:`SampleSource` and the chunks read from it.

A sample is the head of the file plus chunks at evenly spaced offsets, the last one ending
at the end of the file, so a column whose head is all integers and whose tail has decimals
is seen as decimal. Detection never reads more than ``sample_bytes``; when the file is no
larger than that it is read whole, and counts are then exact.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

MID_CHUNKS = 8
MIN_SAMPLE_BYTES = 4096
_HEAD_SHARE = 4  # the head gets 1/4 of the budget: it decides the dialect and the header


class SampleSource(Protocol):
    """Random access to a file's bytes (a local file, or an S3 object with range GETs)."""

    size: int

    def read_range(self, offset: int, length: int) -> bytes:
        """Up to ``length`` bytes starting at ``offset`` (fewer only at the end)."""
        ...


class LocalFileSource:
    """A file on this machine as a :class:`SampleSource`."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.size = self.path.stat().st_size

    def read_range(self, offset: int, length: int) -> bytes:
        with self.path.open("rb") as handle:
            handle.seek(offset)
            return handle.read(length)

    def __repr__(self) -> str:
        return f"LocalFileSource({str(self.path)!r})"


@dataclass(frozen=True)
class RawChunk:
    """Bytes read at ``offset``; ``at_start``/``at_end``: they begin/end where the file does."""

    offset: int
    data: bytes
    at_start: bool
    at_end: bool


def read_raw_chunks(source: SampleSource, sample_bytes: int, *, unit: int = 1) -> list[RawChunk]:
    """The head and, for a file larger than ``sample_bytes``, ``MID_CHUNKS`` chunks spread
    evenly over the rest, the last one ending at the end of the file. Chunks never overlap
    (overlap would count rows twice and make a unique key look repeated). ``unit`` is the
    code unit size (2 for UTF-16): offsets are kept on unit boundaries."""
    if sample_bytes < MIN_SAMPLE_BYTES:
        raise ValueError(f"sample_bytes must be at least {MIN_SAMPLE_BYTES}")
    size = source.size
    if size <= sample_bytes:
        return [RawChunk(0, source.read_range(0, size), True, True)]
    head_length = _align(sample_bytes // _HEAD_SHARE, unit)
    chunk_length = _align((sample_bytes - head_length) // MID_CHUNKS, unit)
    chunks = [RawChunk(0, source.read_range(0, head_length), True, False)]
    span = size - head_length - chunk_length
    for index in range(MID_CHUNKS):
        # size - head_length >= MID_CHUNKS * chunk_length, so the step is at least one chunk.
        offset = _align(head_length + span * index // (MID_CHUNKS - 1), unit)
        offset = max(offset, chunks[-1].offset + len(chunks[-1].data))
        last = index == MID_CHUNKS - 1
        length = size - offset if last else min(chunk_length, size - offset)
        if length <= 0:
            continue
        chunks.append(
            RawChunk(offset, source.read_range(offset, length), False, offset + length >= size)
        )
    return chunks


def _align(value: int, unit: int) -> int:
    return value - value % unit
