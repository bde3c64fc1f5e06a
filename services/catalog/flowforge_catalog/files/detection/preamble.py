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
  line. Nothing is
  skipped when the first record already has the table's width, or when most records before
  the table have its width too (a ragged row is not a preamble).

The dialect is sniffed from the lines left once the preamble and comments are set aside,
so that prose does not decide the delimiter.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass

from flowforge_catalog.files.detection.dialect import _LINE, Dialect, sniff_dialect
from flowforge_shared.csv_rules import collapse_spaces, reader_options, table_lines

COMMENT = "#"
_LOOKAHEAD = 3  # records of the table's width that must follow its first one
_MAX_LINES = 5000  # the lines of the head looked at
_DELIMITERS = (",", ";", "\t", "|", " ")


@dataclass(frozen=True)
class Table:
    dialect: Dialect
    skip_rows: int
    comment_char: str | None


def find_table(text: str, *, at_end: bool) -> Table:
    """The dialect, ``skipRows`` and ``commentChar`` of a file whose head is ``text``."""
    lines = _LINE.findall(text)[:_MAX_LINES]
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
            _LINE.findall(text),
            skip_rows=skip_rows,
            comment=comment,
            delimiter=dialect.delimiter,
            quote=dialect.quote_char,
            escape=dialect.escape_char,
        )
    )


def _analyse(lines: list[str], comment: str | None) -> tuple[Table, int, list[tuple[int, int]]]:
    """(the table, its width, the records as (first line, field count))."""
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
    elif records and (width < 2 or records[0][1] not in (width, width - 1)):
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


def _records(lines: list[str], dialect: Dialect) -> list[tuple[int, int]]:
    """The non-blank records of ``lines``: (the physical line each starts on, its fields)."""
    if dialect.delimiter == " ":
        lines = list(collapse_spaces(lines, quote=dialect.quote_char, escape=dialect.escape_char))
    options = reader_options(dialect.delimiter, dialect.quote_char, dialect.escape_char)
    reader = csv.reader(iter(lines), **options)
    records = []
    start = 0
    try:
        for row in reader:
            if row and row != [""]:
                records.append((start, len(row)))
            start = reader.line_num
    except csv.Error:
        return records
    return records


def _table_start(records: list[tuple[int, int]]) -> tuple[int, int]:
    """(the table's width, the physical line where it starts: 0 when nothing comes before)."""
    if not records:
        return 0, 0
    width = Counter(fields for _, fields in records).most_common(1)[0][0]
    if len(records) < 3 or width < 2 or records[0][1] in (width, width - 1):
        return width, 0
    # A first record of the table's width, else one short of it (a header over row names):
    # a line of prose just before the header may be one short by chance.
    for first_width in (width, width - 1):
        for index in range(1, len(records)):
            following = records[index + 1 : index + 1 + _LOOKAHEAD]
            if (
                records[index][1] == first_width
                and following
                and all(fields == width for _, fields in following)
            ):
                before = records[:index]
                table_shaped = sum(fields == width for _, fields in before)
                return width, records[index][0] if table_shaped * 2 < len(before) else 0
    return width, 0


def _comments_hold(
    lines: list[str], table: Table, width: int, records: list[tuple[int, int]]
) -> bool:
    """Whether the lines starting with ``#`` are comments, not rows of the table."""
    dialect = table.dialect
    commented = [(number, line) for number, line in enumerate(lines) if line.startswith(COMMENT)]
    widths = [fields for _, fields in _records([line for _, line in commented], dialect)]
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
