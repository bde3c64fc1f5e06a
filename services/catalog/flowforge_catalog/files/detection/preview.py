"""The first rows of a file as the detected dialect reads them, and the one rule for writing
user data to a CSV or Excel export.

:func:`preview` returns values exactly as the file has them: a cell starting with ``=`` is
data, and the API returns it as JSON data. It is only when FlowForge writes a CSV/Excel
file that such a cell could run as a formula, so every export passes its cells through
:func:`neutralise_for_export` (OWASP "CSV injection", CWE-1236).
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass, field

from flowforge_catalog.files.detection.dialect import Dialect, read_records
from flowforge_catalog.files.detection.preamble import strip_lines
from flowforge_catalog.files.detection.result import Detection
from flowforge_catalog.files.detection.sampling import SampleSource
from flowforge_shared.csv_rules import unique_names

_FIRST_READ = 64 * 1024
_MAX_READ = 16 * 1024 * 1024
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\x00")


@dataclass(frozen=True)
class Preview:
    rows: list[dict[str, str | None]]
    # Rows the load treats as malformed, left out of ``rows``, and bytes not valid in the
    # file's encoding (shown as U+FFFD in ``rows``).
    warnings: list[str] = field(default_factory=list)


def preview(
    source: SampleSource, detection: Detection, rows: int = 20
) -> list[dict[str, str | None]]:
    """The first ``rows`` data rows (see :func:`read_preview`)."""
    return read_preview(source, detection, rows).rows


def read_preview(source: SampleSource, detection: Detection, rows: int = 20) -> Preview:
    """The first ``rows`` data rows, keyed by column name, values as in the file, and
    warnings about what the load will not read as it is shown.

    Rows are split as the ingest reader splits them (:func:`.dialect.read_records`): a row
    with a quote that never closes, or longer than the reader reads, is left out with a
    warning and the rows after it are shown. A short (ragged) row gives None for its missing
    cells; extra cells are left out. Reads the head only: 64 KiB, doubled while more rows are
    needed, at most 16 MiB.
    """
    if rows <= 0 or source.size == 0:
        return Preview([])
    dialect = Dialect(detection.delimiter, detection.quote_char, detection.escape_char, "lf")
    skip = 1 if detection.has_header else 0
    names = unique_names([column.name for column in detection.columns])
    length = _FIRST_READ
    while True:
        length = min(length, source.size, _MAX_READ)
        at_end = length >= source.size
        text, replaced = _decode(source.read_range(0, length), detection.encoding, at_end)
        text = strip_lines(
            text, skip_rows=detection.skip_rows, comment=detection.comment_char, dialect=dialect
        )
        records = read_records(text, dialect, at_end=at_end, limit=skip + rows + 1)
        if not at_end and records.good <= skip + rows:
            records.drop_cut_end()  # the last record may continue past what was read
        if records.good >= skip + rows or at_end or length >= _MAX_READ:
            break
        length *= 2
    shown: list[dict[str, str | None]] = []
    warnings: list[str] = []
    for index, record in enumerate(records.rows[skip:], skip):
        if len(shown) == rows:
            break
        where = f"row {index + 1 - skip}" + (" after the header" if skip else "")
        if index in records.malformed:
            warnings.append(
                f"{where} is not shown: {records.malformed[index]}. The load treats it as a "
                "malformed row (it fails, or sets it aside with malformedRows 'quarantine'); "
                "the rows after it load"
            )
            continue
        if replaced and any("\ufffd" in value for value in record):
            warnings.append(
                f"{where} is not valid {detection.encoding} text (shown with \ufffd): the load "
                "treats it as a malformed row"
            )
        shown.append(
            {name: (record[i] if i < len(record) else None) for i, name in enumerate(names)}
        )
    return Preview(shown, warnings)


def neutralise_for_export(value: str) -> str:
    """``value`` made safe for a CSV/Excel export: a leading ``'`` when it begins with a
    character a spreadsheet reads as a formula (``= + - @``) or tab, CR or NUL."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _decode(data: bytes, encoding: str, final: bool) -> tuple[str, bool]:
    """(the text, whether some bytes were not valid in ``encoding`` and became U+FFFD)."""
    try:
        return codecs.getincrementaldecoder(encoding)().decode(data, final=final), False
    except UnicodeDecodeError:
        decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
        return decoder.decode(data, final=final), True
