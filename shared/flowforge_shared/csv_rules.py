"""Rules about CSV files that the ingest reader (``flowforge_ingest.csv_source``) and schema
detection and preview (``flowforge_catalog.files.detection``) must apply alike, so that what a
user sees in detection and preview is what the load does.

- :data:`MAX_RECORD_BYTES`: the longest row the load reads. A longer row, and a row whose
  quoted value is still open after that many bytes or at the end of the file, is a malformed
  row; reading goes on at the line after the one where that row began.
- :func:`unique_names`: the column names of a header that repeats a name.
- :func:`untitled_row_names`: a header one field short of the rows (R's row names).
- :func:`collapse_spaces`: with the delimiter ``" "``, fields are separated by runs of
  spaces (columns aligned for the eye), as R's ``read.table`` and pandas' ``sep=r"\\s+"``
  read them.
- :func:`table_lines`: ``fileConfig.skipRows`` (physical lines before the table) and
  ``fileConfig.commentChar`` (lines starting with it, outside quoted values) are left out
  before anything else reads the file.
"""

from __future__ import annotations

import csv
import functools
import re
from collections.abc import Iterable, Iterator

MAX_RECORD_BYTES = 1 << 20
"""1 MiB: the reader's parse block (a row must fit in one; see ``csv_source._BLOCK_SIZE``).
A quoted value that has not closed within this many bytes is taken as an opening quote that
never closes, not as a value: otherwise one stray quote swallows the rest of the file."""


def unique_names(names: list[str]) -> list[str]:
    """``names`` with every repeat of a name renamed ``<name>_2``, ``<name>_3``, … skipping
    suffixes another column already has (``a,a,a_2`` gives ``a, a_3, a_2``)."""
    taken = set(names)
    used: set[str] = set()
    # The smallest free suffix of a name only grows (``used`` only grows): resuming from the
    # last one keeps this linear when a header repeats one name thousands of times.
    next_suffix: dict[str, int] = {}
    result = []
    for name in names:
        if name in used:
            suffix = next_suffix.get(name, 2)
            while f"{name}_{suffix}" in taken or f"{name}_{suffix}" in used:
                suffix += 1
            next_suffix[name] = suffix + 1
            name = f"{name}_{suffix}"
        used.add(name)
        result.append(name)
    return result


ROW_NAME_EVIDENCE = 10
"""How many data records :func:`untitled_row_names` looks at (the first ones of the file)."""


def untitled_row_names(header: list[str], rows: list[list[str]]) -> bool:
    """Whether ``header`` titles all columns but the first, as R writes a table with row
    names (``"a","b"`` over ``"1",0.5,2``): most of ``rows``, the first
    ``ROW_NAME_EVIDENCE`` data records, have one field more. That column is then read as
    untitled (named by its position, as a blank title is). Rows whose extra field is always
    an empty last one end with a delimiter instead (``a,b`` over ``1,2,``): not row names."""
    wider = [row for row in rows[:ROW_NAME_EVIDENCE] if len(row) == len(header) + 1]
    if not any(row[-1] for row in wider):
        return False
    return len(wider) * 2 > min(len(rows), ROW_NAME_EVIDENCE)


def repeated_names(names: list[str]) -> list[str]:
    """The names ``names`` holds more than once, in order of first appearance."""
    seen: set[str] = set()
    repeated: dict[str, None] = {}
    for name in names:
        if name in seen:
            repeated[name] = None
        seen.add(name)
    return list(repeated)


def ends_inside_quotes(
    text: str, *, delimiter: str, quote: str | None, escape: str | None = None
) -> bool:
    """Whether ``text``, read from the start of a record, ends inside a quoted value.

    Quotes are read the way both Python's csv module and pyarrow read them (not strictly):
    a quote opens a quoted value only at the start of a field, two quotes inside one stand
    for one quote character, the escape character (if any) takes the next character as it
    is, and after the closing quote the field goes on unquoted to the next delimiter.
    """
    if quote is None:
        return False
    q, d = re.escape(quote), re.escape(delimiter)
    if escape:
        e = re.escape(escape)
        inside = re.compile(rf"(?:[^{q}{e}]|{q}{q}|{e}[\s\S])*")
        outside = re.compile(rf"(?:[^{d}\r\n{e}]|{e}[\s\S])*")
    else:
        inside = re.compile(rf"(?:[^{q}]|{q}{q})*")
        outside = re.compile(rf"[^{d}\r\n]*")
    position, length = 0, len(text)
    while position < length:
        if text[position] == quote:
            position = inside.match(text, position + 1).end()
            if position >= length:
                return True
            position += 1  # the closing quote
        position = outside.match(text, position).end() + 1  # and the delimiter or line break
    return False


def reader_options(delimiter: str, quote: str | None, escape: str | None) -> dict:
    """Options of Python's csv module that read a file as the load's pyarrow reader does
    (not strictly; two quotes inside a quoted value stand for one)."""
    return {
        "delimiter": delimiter,
        "quotechar": quote or '"',
        "quoting": csv.QUOTE_MINIMAL if quote else csv.QUOTE_NONE,
        "escapechar": escape,
        "doublequote": True,
        "strict": False,
    }


def lift_field_limit() -> None:
    """Let Python's csv module read fields of any length.

    Its default limit (128 kB) is a limit of its own: pyarrow has none below
    :data:`MAX_RECORD_BYTES`, and the text we hand the module is already bounded by what we
    read. The limit is process-wide; lifting it only makes other users of the module accept
    longer fields.
    """
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))


# The reasons a malformed record is given, worded once for the reader, detection and preview.
OPEN_AT_END = "a quote opened in this row never closes (the file ends inside it)"


def too_long_reason(quote_open: bool) -> str:
    limit = f"{MAX_RECORD_BYTES / (1 << 20):g} MiB"
    if quote_open:
        return (
            f"a quote opened in this row is still open after {limit} (the longest row "
            "FlowForge loads): it probably never closes"
        )
    return f"the row is longer than {limit}, the longest row FlowForge loads"


# --------------------------------------------------------------------------- strict dates

_OFFSET_AT_END = r"\s*(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)$"
# A field of one or two digits loses a leading zero ("07" and "7" are the same day); longer
# runs (a year) keep theirs, so "24" never passes for the year "0024".
_LEADING_ZERO_FIELD = r"(^|[^0-9])0([0-9])([^0-9]|$)"


def strict_strptime(values, fmt: str, *, unit: str = "us"):
    """``values`` (an Arrow string array) parsed with the ``strptime`` format ``fmt``,
    refusing every value that is not a real date or time written in that format.

    Arrow's ``strptime`` (like C's) rolls impossible values over without a word:
    ``31/02/2024`` becomes 2 March, ``23:59:60`` the next day's midnight, and ``%Y`` takes
    ``24`` as the year 24. Each parsed value is therefore written back with ``fmt`` and must
    give the text it came from (up to the leading zero of a one- or two-digit field, letter
    case and surrounding blanks); any other value raises ``pyarrow.ArrowInvalid`` — the
    error Arrow raises for a value it cannot parse at all, which the reader turns into a
    malformed row. With ``%z`` at the end of ``fmt`` the offset itself is checked by Arrow
    and the rest of the value is compared as written.
    """
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(values)
    parsed = pc.strptime(text, format=fmt, unit=unit)  # raises for what does not parse
    # The check writes values back, which costs far more than parsing: once per distinct value.
    distinct = pc.drop_null(pc.unique(text))
    _check_written_back(distinct, fmt, unit)
    return parsed


def _check_written_back(text, fmt: str, unit: str) -> None:
    import pyarrow as pa
    import pyarrow.compute as pc

    parsed = pc.strptime(text, format=fmt, unit=unit)
    check_fmt, check_text, wall_clock = fmt, text, parsed
    if "%z" in fmt:
        if not fmt.rstrip().endswith("%z"):
            raise pa.ArrowInvalid(f"a format with %z must end with it: {fmt!r}")
        check_fmt = fmt.rstrip()[:-2].rstrip()
        check_text = pc.replace_substring_regex(text, _OFFSET_AT_END, "")
        wall_clock = pc.strptime(check_text, format=check_fmt, unit=unit)
    # Whole seconds (strptime reads no fractions), or %S would be written with a fraction.
    written = pc.strftime(
        pc.cast(wall_clock, pa.timestamp("s", wall_clock.type.tz)), format=check_fmt
    )
    same = pc.equal(_comparable(written), _comparable(check_text))
    if not pc.all(pc.or_kleene(same, pc.is_null(parsed))).as_py():
        bad = pc.filter(text, pc.invert(pc.fill_null(same, True)))[0].as_py()
        raise pa.ArrowInvalid(f"{bad!r} is not a real date or time in the format {fmt!r}")


def _comparable(text):
    import pyarrow.compute as pc

    text = pc.utf8_lower(pc.utf8_trim_whitespace(text))
    for _ in range(3):  # each pass may skip every other field (the separators are shared)
        text = pc.replace_substring_regex(text, _LEADING_ZERO_FIELD, r"\1\2\3")
    return text


def collapse_spaces(
    lines: Iterable[str], *, quote: str | None, escape: str | None
) -> Iterator[str]:
    """``lines`` (of a file read from its start, line endings kept) with every run of spaces
    between fields made one space and the spaces at the start and end of each record
    dropped: what the delimiter ``" "`` reads (``   1   2.66  20`` is three fields). Spaces
    inside quoted values, which may span lines, are kept. Applying it twice changes nothing.
    """
    unquoted, value_end = _space_patterns(quote, escape)
    special = [char for char in (quote, escape) if char]
    inside = False
    for line in lines:
        body = line.rstrip("\r\n")
        if not inside and not any(char in body for char in special):
            collapsed = _SPACE_RUN.sub(" ", body.strip(" "))  # the usual line, at C speed
        else:
            collapsed, inside = _collapse_line(body, unquoted, value_end, quote, inside)
        yield collapsed + line[len(body) :]


_SPACE_RUN = re.compile(" {2,}")


@functools.cache
def _space_patterns(quote: str | None, escape: str | None) -> tuple[re.Pattern, re.Pattern]:
    """(an unquoted field, or what follows a closing quote; the rest of a quoted value up to
    and with its closing quote)."""
    e = re.escape(escape) if escape else None
    unquoted = re.compile(rf"(?:[^ {e}]|{e}.|{e}$)*" if e else r"[^ ]*")
    q = re.escape(quote or '"')
    value_end = re.compile(rf"(?:[^{q}{e}]|{q}{q}|{e}.)*{q}" if e else rf"(?:[^{q}]|{q}{q})*{q}")
    return unquoted, value_end


def _collapse_line(
    line: str, unquoted: re.Pattern, value_end: re.Pattern, quote: str | None, inside: bool
) -> tuple[str, bool]:
    """(``line`` collapsed, whether it ends inside a quoted value); ``inside`` says whether it
    begins inside one (then its first spaces are data)."""
    out: list[str] = []
    length = len(line)
    position = 0 if inside else length - len(line.lstrip(" "))
    while True:
        start = position
        if inside or (quote is not None and line.startswith(quote, position)):
            match = value_end.match(line, position if inside else position + 1)
            if match is None:  # the quoted value goes on past this line
                out.append(line[start:])
                return "".join(out), True
            inside = False
            position = match.end()
        position = unquoted.match(line, position).end()
        out.append(line[start:position])
        while position < length and line[position] == " ":
            position += 1
        if position >= length:
            return "".join(out), False
        out.append(" ")


def table_lines(
    lines: Iterable[str],
    *,
    skip_rows: int = 0,
    comment: str | None = None,
    delimiter: str,
    quote: str | None,
    escape: str | None,
    blank: bool = False,
) -> Iterator[str]:
    """``lines`` (of a file read from its start, line endings kept) without the first
    ``skip_rows`` physical lines and without the lines that start with ``comment``.

    ``skipRows`` counts physical lines, whatever they hold (a preamble is prose, where a
    stray quote means nothing), comment and blank lines included. A line starting with
    ``comment`` inside a quoted value that spans lines is data, not a comment. With
    ``blank`` the lines left out are given as empty lines (their line ending kept), so that
    line numbers stay those of the file; the reader and a blank line skip them alike.
    """
    open_record = ""  # the record so far, while a quoted value is open across lines
    special = [char for char in (quote, escape) if char]
    for number, line in enumerate(lines):
        if number == 0:
            line = line.removeprefix("\ufeff")  # a byte-order mark read as text is no data
        if number < skip_rows or (comment and not open_record and line.startswith(comment)):
            if blank:
                yield line[len(line.rstrip("\r\n")) :]
            continue
        if open_record or any(char in line for char in special):
            text = open_record + line
            still_open = len(text) <= MAX_RECORD_BYTES and ends_inside_quotes(
                text, delimiter=delimiter, quote=quote, escape=escape
            )
            open_record = text if still_open else ""
        yield line
