"""Where the table starts: the lines before it (``fileConfig.skipRows``) and comment lines
(``fileConfig.commentChar``), found in the head of a file before its dialect is settled.

- Comments: lines starting with ``#``. They are taken as comments unless they look like the
  table's own rows (most of them have the table's width: ``#`` starting a value, such as
  ``#FF0000``), or the only one is the first line with the table's width (a header written
  ``#id,name``, as some tools write it).
- A preamble: records before the table whose field count is not the table's (the width most
  records have), such as a title, a paragraph of prose, a key/value metadata block, or a
  short metadata line over a wide table (``569,30,malignant,benign`` over 31 columns). The
  table starts at the first record of the table's width followed by records of that width
  (else at one a field short of it: a header over row names); ``skipRows`` is its physical
  line. Nothing is skipped when the first record already has the table's width, when the
  table is ragged (fewer than nine in ten of its rows have its width), when a record before
  it has another width the table's rows have or holds mostly numbers, or when half of the
  records before it have the table's width: those are rows of a ragged table (a header
  wider than its rows, a short first row), not a preamble.

The dialect is sniffed from the lines left once the preamble and comments are set aside,
so that prose does not decide the delimiter.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from dataclasses import dataclass
from typing import NamedTuple

from flowforge_catalog.files.detection.dialect import Dialect, sniff_dialect, split_lines
from flowforge_shared.csv_rules import collapse_spaces, reader_options, table_lines

COMMENT = "#"
_LOOKAHEAD = 3  # records of the table's width that must follow its first one
_MAX_LINES = 1000  # the lines of the head looked at
_REGULAR = 0.9
_DIGIT = re.compile(r"\d")
_WORD = re.compile(r"[^\W\d_]{2,}")
_DELIMITERS = (",", ";", "\t", "|", " ")


@dataclass(frozen=True)
class Table:
    dialect: Dialect
    skip_rows: int
    comment_char: str | None


def find_table(text: str, *, at_end: bool) -> Table:
    """The dialect, ``skipRows`` and ``commentChar`` of a file whose head is ``text``."""
    lines = split_lines(text)[:_MAX_LINES]
    if not at_end and len(lines) > 1:
        lines = lines[:-1]  # the last line may be cut
    if any(line.startswith(COMMENT) for line in lines):
        table, width, records = _analyse(lines, COMMENT)
        if _comments_hold(lines, table, width, records):
            return table
    table = _analyse(lines, None)[0]
    if table.skip_rows:
        return table
    # A file that starts with its table: its dialect from its head as it is.
    return Table(sniff_dialect(text), 0, None)


def strip_lines(text: str, *, skip_rows: int, comment: str | None, dialect: Dialect) -> str:
    """``text`` (a file's head) without its skipped and comment lines, as the load reads it."""
    if not skip_rows and comment is None:
        return text
    return "".join(
        table_lines(
            split_lines(text),
            skip_rows=skip_rows,
            comment=comment,
            delimiter=dialect.delimiter,
            quote=dialect.quote_char,
            escape=dialect.escape_char,
        )
    )


def _analyse(lines: list[str], comment: str | None) -> tuple[Table, int, list[_Record]]:
    """(the table, its width, its records)."""
    base = _blanked(lines, 0, comment, Dialect(",", '"', None, "lf"))
    dialect = sniff_dialect("".join(base) or "\n")
    records = _records(base, dialect)
    width, start = _table_start(records)
    if start:
        resniffed = sniff_dialect("".join(base[start:]))
        if resniffed != dialect:
            dialect = resniffed
            records = _records(_blanked(lines, 0, comment, dialect), dialect)
            width, start = _table_start(records)
    elif records and (width < 2 or records[0].fields != width):
        # The first record is not of the table's width and no table was found: prose may
        # have decided the delimiter. A table found with another delimiter, whose lines
        # sniff to that delimiter, wins.
        for delimiter in _DELIMITERS:
            if delimiter == dialect.delimiter:
                continue
            other = Dialect(delimiter, dialect.quote_char, dialect.escape_char, dialect.line_ending)
            other_records = _records(base, other)
            other_width, other_start = _table_start(other_records)
            if other_start and sniff_dialect("".join(base[other_start:])) == other:
                return Table(other, other_start, comment), other_width, other_records
    return Table(dialect, start, comment), width, records


def _blanked(lines: list[str], skip: int, comment: str | None, dialect: Dialect) -> list[str]:
    return list(
        table_lines(
            lines,
            skip_rows=skip,
            comment=comment,
            delimiter=dialect.delimiter,
            quote=dialect.quote_char,
            escape=dialect.escape_char,
            blank=True,
        )
    )


class _Record(NamedTuple):
    line: int  # the physical line it starts on
    fields: int
    data_like: bool  # most of its values are numbers: a row, never prose or metadata


def _records(lines: list[str], dialect: Dialect) -> list[_Record]:
    """The non-blank records of ``lines``."""
    if dialect.delimiter == " ":
        lines = list(collapse_spaces(lines, quote=dialect.quote_char, escape=dialect.escape_char))
    options = reader_options(dialect.delimiter, dialect.quote_char, dialect.escape_char)
    reader = csv.reader(iter(lines), **options)
    records = []
    start = 0
    try:
        for row in reader:
            if row and row != [""]:
                filled = [value for value in row if value.strip()]
                numbers = sum(_number_like(value) for value in filled)
                records.append(_Record(start, len(row), numbers * 2 > len(filled)))
            start = reader.line_num
    except csv.Error:
        return records
    return records


def _number_like(value: str) -> bool:
    """A number, or a date, time or period written with digits (``1950:1``, ``1960Q1``,
    ``-12.5%``): digits and no word of two letters or more."""
    return bool(_DIGIT.search(value)) and not _WORD.search(value)


def _table_start(records: list[_Record]) -> tuple[int, int]:
    """(the table's width, the physical line where it starts: 0 when nothing comes before)."""
    if not records:
        return 0, 0
    width = Counter(record.fields for record in records).most_common(1)[0][0]
    if len(records) < 3 or width < 2:
        return width, 0
    if records[0].fields in (width, width - 1):
        # The table starts the file (a header over row names is one short; so is the first
        # line of a header over two lines, as statsmodels writes results). So a block of
        # key/value pairs is found before a table of four columns or more, not of three.
        return width, 0
    # A first record of the table's width, else one short of it (a header over row names):
    # a line of prose just before the header may be one short by chance.
    for first_width in (width, width - 1):
        for index in range(1, len(records)):
            following = records[index + 1 : index + 1 + _LOOKAHEAD]
            if (
                records[index].fields == first_width
                and following
                and all(record.fields == width for record in following)
            ):
                return width, records[index].line if _a_preamble(records, index, width) else 0
    return width, 0


def _a_preamble(records: list[_Record], start: int, width: int) -> bool:
    """Whether the records before ``start`` are a preamble, not rows of a ragged table: the
    table from ``start`` on is regular (nine in ten of its rows have its width), no record
    before it has one of the other widths its rows have, and fewer than half of them have
    its width."""
    # Its rows of numbers, when it has some: a footnote after the table is not a row.
    body = [record for record in records[start + 1 :] if record.data_like] or records[start + 1 :]
    rows = Counter(record.fields for record in body)
    if rows[width] < _REGULAR * rows.total():
        return False
    if any(record.data_like for record in records[:start]):
        return False  # rows of numbers before the table are its own rows (a ragged start)
    before = [record.fields for record in records[:start]]
    if any(fields in rows and fields != width for fields in before):
        return False
    return sum(fields == width for fields in before) * 2 < len(before)


def _comments_hold(lines: list[str], table: Table, width: int, records: list[_Record]) -> bool:
    """Whether the lines starting with ``#`` are comments, not rows of the table."""
    dialect = table.dialect
    commented = [(number, line) for number, line in enumerate(lines) if line.startswith(COMMENT)]
    widths = [record.fields for record in _records([line for _, line in commented], dialect)]
    if sum(fields == width for fields in widths) * 2 > len(widths) and len(widths) > 1:
        return False  # rows whose first value starts with '#'
    first_line = next((number for number, line in enumerate(lines) if line.strip()), None)
    if (
        len(commented) == 1
        and commented[0][0] == first_line
        and widths
        and widths[0] in (width, width - 1)
    ):
        return False  # a header written '#id,name'
    return True
