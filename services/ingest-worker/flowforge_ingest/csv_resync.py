"""Finding where a malformed record begins in a CSV file, so reading can go on after it.

pyarrow's reader says which record is bad (by number, or by its values) but not where it is
in the file. The reader needs that place only when a row breaks the rules of
:mod:`flowforge_shared.csv_rules` (a quote still open at the end of the file, or a row longer
than ``MAX_RECORD_BYTES``), which is rare, so these functions may read the file again:

- :func:`open_last_record`: whether the last record of the file ends inside a quoted value,
  from the file's tail only (a bounded read).
- :func:`find_record`: the ``skip``-th record after an offset, by reading the records before
  it with Python's csv module (a pass over that part of the file).

Both return a :class:`Place`: where the record begins and where the line after its first
line begins, which is where reading goes on. They work on encodings that write line breaks,
quotes and delimiters as single ASCII bytes (UTF-8, cp1252, latin-1, …); for others
(UTF-16) they return None and the caller falls back to failing the file.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from flowforge_shared.csv_rules import (
    MAX_RECORD_BYTES,
    ends_inside_quotes,
    lift_field_limit,
    reader_options,
)

_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
_TEXT_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_READ = 1 << 20
# How much of the tail is read to find the last record: a record pyarrow returned spans at
# most two of its 1 MiB blocks.
_TAIL = 2 * MAX_RECORD_BYTES + (64 << 10)

lift_field_limit()


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote: str | None
    escape: str | None
    codec: str


@dataclass(frozen=True)
class Place:
    """A record in the file: its first byte, the first byte of the line after its first line
    (where reading resumes), and its first line as text (what a quarantine row shows)."""

    start: int
    resume: int
    first_line: str


def ascii_compatible(codec: str) -> bool:
    """Whether ``codec`` writes the CSV syntax characters as the same single ASCII bytes."""
    try:
        return ",;\t|\"'\\\r\n".encode(codec) == b",;\t|\"'\\\r\n"
    except (LookupError, UnicodeError):
        return False


def open_last_record(
    path: Path, dialect: Dialect, *, values: list[str | None], size: int
) -> Place | None:
    """The place of the file's last record, whose parsed values are ``values``, if the file
    ends inside one of its quoted values; None if it does not (or it cannot be told).

    The test is exact: if the quote is open at the end, the record's raw text is the file's
    tail holding exactly as many line breaks as its values do, so it begins after the
    (k+1)-th line break from the end; that text must end inside quotes and read back as the
    same last value.
    """
    if dialect.quote is None or not ascii_compatible(dialect.codec):
        return None
    breaks = sum(len(_TEXT_LINE_BREAK.findall(value)) for value in values if value)
    window_start = max(0, size - _TAIL)
    with open(path, "rb") as handle:
        handle.seek(window_start)
        data = handle.read()
    if breaks == 0 and data.endswith((b"\n", b"\r")):
        return None  # a value with no line break cannot have swallowed the file's last one
    ends = [match.end() for match in _LINE_BREAK.finditer(data)]
    if len(ends) > breaks:
        start = ends[-(breaks + 1)]
    elif window_start == 0:
        start = 0
    else:
        return None  # longer than any record pyarrow returns
    text = data[start:].decode(dialect.codec, "replace")
    if start == 0 and window_start == 0:
        text = text.removeprefix("\ufeff")
    if not ends_inside_quotes(
        text, delimiter=dialect.delimiter, quote=dialect.quote, escape=dialect.escape
    ):
        return None
    fields = next(csv.reader([text], **_csv_options(dialect)), [])
    last = values[-1] if values else None
    if last is not None and (not fields or fields[-1] != last):
        return None
    return _place(window_start + start, data[start:], dialect)


def open_ragged_record(path: Path, text: str, dialect: Dialect, *, size: int) -> Place | None:
    """The place of the file's last record, which pyarrow reported as a row with the wrong
    number of fields and whose raw text is ``text``, if it ends inside a quoted value."""
    if dialect.quote is None or not ascii_compatible(dialect.codec):
        return None
    if not ends_inside_quotes(
        text, delimiter=dialect.delimiter, quote=dialect.quote, escape=dialect.escape
    ):
        return None
    raw = text.encode(dialect.codec, "replace")
    # pyarrow leaves the file's last line break out of the text: find where it begins.
    with open(path, "rb") as handle:
        for start in (size - len(raw), size - len(raw) - 1, size - len(raw) - 2):
            handle.seek(max(start, 0))
            if start >= 0 and handle.read(len(raw)) == raw:
                return _place(start, raw, dialect)
    return None


def find_record(path: Path, dialect: Dialect, *, offset: int, skip: int) -> Place | None:
    """The place of the record that follows the first ``skip`` records from ``offset`` (a
    record boundary), blank lines not counted; None if the file ends first."""
    if not ascii_compatible(dialect.codec):
        return None
    lines: list[tuple[int, bytes]] = []  # the lines of the record being read

    def feed() -> Iterator[str]:
        for line_offset, line in _lines(path, offset):
            lines.append((line_offset, line))
            yield line.decode(dialect.codec, "replace")

    seen = 0
    # The csv module pulls exactly the lines of one record before it returns it.
    for record in csv.reader(feed(), **_csv_options(dialect)):
        if record and seen == skip:
            start, first = lines[0]
            return Place(start, start + len(first), _first_line(first, dialect))
        seen += bool(record)
        lines.clear()
    return None


def first_record(path: Path, dialect: Dialect) -> list[str] | None:
    """The file's first record (a header), read with the csv module; None if it is longer
    than ``MAX_RECORD_BYTES`` or the encoding is not one these functions read."""
    records = first_records(path, dialect, 1)
    return records[0] if records else None


def first_records(path: Path, dialect: Dialect, count: int) -> list[list[str]] | None:
    """The file's first ``count`` records (fewer if the file ends first), read with the csv
    module; None if they are longer than ``MAX_RECORD_BYTES`` in all or the encoding is not
    one these functions read."""
    if not ascii_compatible(dialect.codec):
        return None
    read = 0

    def feed() -> Iterator[str]:
        nonlocal read
        for _, line in _lines(path, 0):
            read += len(line)
            if read > MAX_RECORD_BYTES:
                return
            yield line.decode(dialect.codec, "replace")

    records: list[list[str]] = []
    for record in csv.reader(feed(), **_csv_options(dialect)):
        if record:
            if read > MAX_RECORD_BYTES:
                return None
            records.append(record)
            if len(records) == count:
                break
    if records:
        records[0][0] = records[0][0].removeprefix("\ufeff")
    return records


def _place(start: int, raw: bytes, dialect: Dialect) -> Place:
    match = _LINE_BREAK.search(raw)
    first = raw[: match.end()] if match else raw
    return Place(start, start + len(first), _first_line(first, dialect))


def _first_line(line: bytes, dialect: Dialect) -> str:
    return line.decode(dialect.codec, "replace").removeprefix("\ufeff").rstrip("\r\n")


def _lines(path: Path, offset: int) -> Iterator[tuple[int, bytes]]:
    """(offset, line with its line break) from ``offset`` on; "\\r\\n", "\\r" and "\\n" end
    a line, as for pyarrow."""
    with open(path, "rb") as handle:
        handle.seek(offset)
        rest = b""
        position = offset
        while chunk := handle.read(_READ):
            data = rest + chunk
            start = 0
            for match in _LINE_BREAK.finditer(data):
                if match.end() == len(data) and data.endswith(b"\r"):
                    break  # a "\r" at the end may be the start of "\r\n"
                yield position + start, data[start : match.end()]
                start = match.end()
            position += start
            rest = data[start:]
        if rest:
            yield position, rest


def _csv_options(dialect: Dialect) -> dict:
    return reader_options(dialect.delimiter, dialect.quote, dialect.escape)


def codec_name(encoding: str) -> str:
    """The Python codec of ``fileConfig.encoding`` (already checked to exist)."""
    return codecs.lookup(encoding).name
