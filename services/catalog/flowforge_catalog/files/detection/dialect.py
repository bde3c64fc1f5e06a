"""The CSV dialect (delimiter, quote, escape, line ending), record parsing, and finding a
record boundary in a chunk read from the middle of a file.

Delimiter: each candidate (``,`` ``;`` tab ``|``) parses the head; the one giving the most
rows of one width greater than 1 wins (a ``;`` file with decimal commas has ragged ``,``
widths, and its header has no comma at all). When none splits the lines, a single space is
the delimiter if it splits nine records in ten (after the first) into the same number of
fields (the first record may have one fewer: R's titles over row names) and at least two
columns, and half of them,
are numbers only (``'OBS' 'GPA' 'TUCE'`` over numbers): a column of words ("Ann Smith",
"12 Main St") is never split. With that delimiter a run of spaces is one separator and the
spaces around a record are dropped (:func:`~flowforge_shared.csv_rules.collapse_spaces`),
so columns aligned for the eye (``   1   2.66   20``) read as the reader reads them.

Resync: a chunk read mid-file begins inside some record, perhaps inside a quoted value that
spans lines, where a line break is data, not a record boundary. For each line break of the
chunk in turn we test two hypotheses about the text that follows it: "outside quotes" (the
next records tokenize strictly as RFC 4180 records of the expected width) and "inside a
quoted value" (the text up to the next lone quote is the rest of a value, and what follows
tokenizes). The first break where the first holds and the second is refuted is an
unambiguous boundary; failing that, the first break where the first holds; failing that,
the chunk's first line.
"""

from __future__ import annotations

import csv
import io
import re
from collections import Counter
from dataclasses import dataclass

from flowforge_shared.csv_rules import (
    MAX_RECORD_BYTES,
    OPEN_AT_END,
    collapse_spaces,
    ends_inside_quotes,
    lift_field_limit,
    reader_options,
    too_long_reason,
)

DELIMITERS = (",", ";", "\t", "|")
_SNIFF_CHARS = 256 * 1024
_SNIFF_RECORDS = 200
_RESYNC_CANDIDATES = 32
_RESYNC_FIELDS = 2000  # fields tokenized per hypothesis: bounds the cost on wide files
_RESYNC_WINDOW = 64 * 1024  # how far the "inside a quoted value" hypothesis looks
_LINE_BREAK = re.compile(r"\r\n|\n|\r")
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+")

lift_field_limit()  # fields up to MAX_RECORD_BYTES, as the ingest reader reads them


@dataclass(frozen=True)
class Dialect:
    delimiter: str
    quote_char: str | None
    escape_char: str | None
    line_ending: str  # lf | crlf | cr


def sniff_dialect(text: str) -> Dialect:
    """The dialect of a file whose first whole lines are ``text``."""
    sample = text[:_SNIFF_CHARS]
    quote = _sniff_quote(sample)
    delimiter = _sniff_delimiter(sample, quote)
    escape = _sniff_escape(sample, delimiter, quote)
    return Dialect(delimiter, quote, escape, _line_ending(sample, quote))


def parse(text: str, dialect: Dialect, *, limit: int | None = None) -> list[list[str]]:
    """The records of ``text`` (blank lines skipped, as the ingest reader skips them), read
    leniently: no row is judged malformed (see :func:`read_records` for that).

    Raises :class:`csv.Error` for text the csv module cannot read at all.
    """
    lines = io.StringIO(text, newline="") if dialect.delimiter != " " else lines_of(text, dialect)
    reader = csv.reader(lines, **_csv_options(dialect))
    records: list[list[str]] = []
    for record in reader:
        if record:
            records.append(record)
            if limit is not None and len(records) >= limit:
                break
    return records


@dataclass
class Records:
    """The records of a text, in order. A malformed record (see :func:`read_records`) is
    in ``rows`` as its first line alone, and ``malformed`` maps its index to the reason."""

    rows: list[list[str]]
    malformed: dict[int, str]

    @property
    def good(self) -> int:
        """How many of ``rows`` are not malformed."""
        return len(self.rows) - len(self.malformed)

    def drop_cut_end(self) -> None:
        """Drop the last record unless it is malformed: when the text is not the end of the
        file, that record may go on past it (a value over several lines)."""
        if self.rows and len(self.rows) - 1 not in self.malformed:
            self.rows.pop()


def read_records(text: str, dialect: Dialect, *, at_end: bool, limit: int | None = None) -> Records:
    """The records of ``text`` (whole lines from the start of a record) as the ingest reader
    splits them: blank lines are skipped, and a record longer than ``MAX_RECORD_BYTES``
    (UTF-8), or whose quoted value is still open at the end of the file (``at_end``), is
    malformed; reading goes on at the line after the one where it began, so one stray
    quote costs one row, not the rest of the file. Stops after ``limit`` good records.
    """
    lines = lines_of(text, dialect)
    result = Records([], {})
    start = 0
    while start < len(lines):
        reader = csv.reader(iter(lines[start:]), **_csv_options(dialect))
        restart = None
        consumed = 0
        for record in reader:
            first, consumed = start + consumed, reader.line_num
            end = start + consumed
            if not record:
                continue
            problem = _record_problem(
                record, lines, first, end, dialect, at_end and end == len(lines)
            )
            if problem is not None:
                result.malformed[len(result.rows)] = problem
                result.rows.append([lines[first].rstrip("\r\n")])
                restart = first + 1
                break
            result.rows.append(record)
            if limit is not None and result.good >= limit:
                return result
        if restart is None:
            break
        start = restart
    return result


def _record_problem(
    record: list[str], lines: list[str], first: int, end: int, dialect: Dialect, at_end: bool
) -> str | None:
    """Why ``record``, read from ``lines[first:end]``, is malformed, or None."""
    # A character is at most 4 bytes in UTF-8: encode only the values that may be too long.
    # The reader measures a row by its values' bytes (UTF-8), so the same is measured here.
    if sum(map(len, record)) * 4 > MAX_RECORD_BYTES:
        size = sum(len(value.encode("utf-8", "surrogatepass")) for value in record)
        if size > MAX_RECORD_BYTES:
            opened = end - first > 1 and ends_inside_quotes(
                lines[first],
                delimiter=dialect.delimiter,
                quote=dialect.quote_char,
                escape=dialect.escape_char,
            )
            return too_long_reason(opened)
    if at_end and ends_inside_quotes(
        "".join(lines[first:end]),
        delimiter=dialect.delimiter,
        quote=dialect.quote_char,
        escape=dialect.escape_char,
    ):
        return OPEN_AT_END
    return None


def resync(text: str, dialect: Dialect, width: int) -> tuple[int, bool]:
    """(offset of the first record boundary in ``text``, whether it is unambiguous)."""
    if dialect.quote_char is None and dialect.escape_char is None:
        return 0, True  # without quoting every line break ends a record
    tokenizer = _Tokenizer(dialect)
    records = max(3, min(20, _RESYNC_FIELDS // max(width, 1)))
    starts = [0]
    for match in _LINE_BREAK.finditer(text):
        if len(starts) >= _RESYNC_CANDIDATES:
            break
        starts.append(match.end())
    plausible: int | None = None
    for start in starts:
        if not tokenizer.fits(text, start, width, records, inside=False):
            continue
        if not tokenizer.fits(text, start, width, records, inside=True):
            return start, True
        if plausible is None:
            plausible = start
    return (plausible if plausible is not None else 0), False


def split_lines(text: str) -> list[str]:
    """The physical lines of ``text``, their line endings (``\\n``, ``\\r\\n``, ``\\r``) kept."""
    return _LINE.findall(text)


def lines_of(text: str, dialect: Dialect) -> list[str]:
    """The lines of ``text`` (line endings kept), as the delimiter reads them: with ``" "``,
    runs of spaces between fields are one space (:func:`collapse_spaces`)."""
    lines = _LINE.findall(text)
    if dialect.delimiter != " ":
        return lines
    return list(collapse_spaces(lines, quote=dialect.quote_char, escape=dialect.escape_char))


def _csv_options(dialect: Dialect) -> dict:
    return reader_options(dialect.delimiter, dialect.quote_char, dialect.escape_char)


def _sniff_quote(sample: str) -> str:
    # A quote that opens a field right after a delimiter or a line start. Apostrophes in
    # text (O'Brien) rarely do; a file quoted with ' does it on every quoted field.
    starts = {
        quote: len(re.findall(rf"(?:^|[,;\t|]){quote}", sample, re.MULTILINE))
        for quote in ('"', "'")
    }
    return "'" if starts["'"] > starts['"'] else '"'


def _sniff_delimiter(sample: str, quote: str) -> str:
    best: tuple | None = None
    chosen = ","
    for delimiter in DELIMITERS:
        if delimiter not in sample:
            continue
        dialect = Dialect(delimiter, quote, None, "lf")
        try:
            records = parse(sample, dialect, limit=_SNIFF_RECORDS)
        except csv.Error:
            continue
        if not records:
            continue
        widths = Counter(len(record) for record in records)
        width, count = widths.most_common(1)[0]
        score = (width > 1, count / len(records), len(records[0]) == width, width)
        if best is None or score > best:
            best, chosen = score, delimiter
    if best is None or not best[0]:
        # No delimiter of the usual four splits the lines: a table separated by single
        # spaces ('OBS' 'GPA' 'TUCE' over numbers)? Only when every record has the same
        # number of fields and most columns (two at least) hold numbers only, so that a
        # column of words ("Ann Smith", "12 Main St") is never split.
        if _space_separated(sample, quote):
            return " "
    return chosen


_NUMBER = re.compile(r"^[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?$")
_MISSING = frozenset({"NA", "NaN", "nan", "N/A", ".", "-"})  # how such tables write a gap


def _space_separated(sample: str, quote: str) -> bool:
    if " " not in sample:
        return False
    try:
        records = parse(sample, Dialect(" ", quote, None, "lf"), limit=_SNIFF_RECORDS)
    except csv.Error:
        return False
    if len(records) < 2:
        return False
    # Nine records in ten of one width: a report's line of units under its titles is one
    # ragged row (warned about), not a reason to miss the table.
    width, count = Counter(len(record) for record in records[1:]).most_common(1)[0]
    if count < 0.9 * (len(records) - 1) or width < 2:
        return False
    if len(records[0]) not in (width, width - 1):
        return False
    data = [record for record in records[1:] if len(record) == width]
    if any("" in record for record in records):
        return False
    numeric = sum(_numbers_only(row[i] for row in data) for i in range(width))
    return numeric >= max(2, width / 2)


def _numbers_only(values) -> bool:
    seen = False
    for value in values:
        if _NUMBER.match(value):
            seen = True
        elif value not in _MISSING:
            return False
    return seen


def _sniff_escape(sample: str, delimiter: str, quote: str) -> str | None:
    # A backslash before a quote that does not close the field, and no doubled quote
    # inside a value: the writer escapes quotes with backslashes (MySQL, some PHP).
    ends = re.escape(delimiter) + r"\r\n"
    escaped = re.search(rf"\\{quote}(?![{ends}]|$)", sample)
    doubled = re.search(rf"(?<![\\{ends}{quote}]){quote}{quote}", sample)
    return "\\" if escaped and not doubled else None


def _line_ending(sample: str, quote: str) -> str:
    # Line breaks inside quoted values are data (often "\n" in a "\r\n" file): only the
    # breaks outside quotes end records.
    q = re.escape(quote)
    sample = re.sub(rf"{q}(?:[^{q}]|{q}{q})*{q}", "", sample)
    crlf = sample.count("\r\n")
    counts = {"crlf": crlf, "lf": sample.count("\n") - crlf, "cr": sample.count("\r") - crlf}
    return max(counts, key=lambda name: (counts[name], name == "lf"))


class _Tokenizer:
    """Strict RFC 4180 tokenizing, just enough to test the resync hypotheses."""

    def __init__(self, dialect: Dialect) -> None:
        d = re.escape(dialect.delimiter)
        q = re.escape(dialect.quote_char) if dialect.quote_char else None
        e = re.escape(dialect.escape_char) if dialect.escape_char else None
        unquoted_chars = d + r"\r\n" + (q or "") + (e or "")
        unquoted = rf"(?:[^{unquoted_chars}]|{e}.)*" if e else rf"[^{unquoted_chars}]*"
        if q:
            inner = rf"(?:[^{q}{e}]|{q}{q}|{e}.)*" if e else rf"(?:[^{q}]|{q}{q})*"
            self._field = re.compile(rf"{q}{inner}{q}|{unquoted}", re.DOTALL)
            self._tail = re.compile(rf"{inner}{q}(?={d}|\r|\n|$)", re.DOTALL)
        else:
            self._field = re.compile(unquoted, re.DOTALL)
            self._tail = None
        self._delimiter = dialect.delimiter

    def fits(self, text: str, start: int, width: int, records: int, *, inside: bool) -> bool:
        """Whether ``records`` records of ``width`` fields tokenize from ``start`` (records cut
        by the end of ``text`` count as fitting). With ``inside``, ``start`` is assumed to
        be inside a quoted value."""
        position = start
        first_width_unknown = False
        if inside:
            if self._tail is None:
                return False
            match = self._tail.match(text, position, min(len(text), position + _RESYNC_WINDOW))
            if match is None:
                return False
            position = match.end()
            first_width_unknown = True  # we do not know which field that value was
            if position < len(text) and text[position] == self._delimiter:
                position += 1
            else:
                position = _after_line_break(text, position)
                first_width_unknown = False
        seen = 0
        while seen < records and position < len(text):
            fields = 0
            while True:
                match = self._field.match(text, position)
                if match is None:
                    return False
                position = match.end()
                fields += 1
                if position >= len(text):
                    return seen > 0 or first_width_unknown
                char = text[position]
                if char == self._delimiter:
                    position += 1
                    continue
                if char in "\r\n":
                    position = _after_line_break(text, position)
                    break
                return False  # e.g. a quote inside an unquoted value: not a field start
            if not first_width_unknown and fields != width:
                return False
            first_width_unknown = False
            seen += 1
        return seen > 0


def _after_line_break(text: str, position: int) -> int:
    if text.startswith("\r\n", position):
        return position + 2
    if position < len(text) and text[position] in "\r\n":
        return position + 1
    return position
