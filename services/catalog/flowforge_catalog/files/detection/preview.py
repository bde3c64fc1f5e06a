"""The first rows of a file as the detected dialect reads them, and the one rule for writing
user data to a CSV or Excel export.

:func:`preview` returns values exactly as the file has them: a cell starting with ``=`` is
data, and the API returns it as JSON data. It is only when FlowForge writes a CSV/Excel
file that such a cell could run as a formula, so every export passes its cells through
:func:`neutralise_for_export` (OWASP "CSV injection", CWE-1236).
"""

from __future__ import annotations

import codecs

from flowforge_catalog.files.detection.dialect import Dialect, parse
from flowforge_catalog.files.detection.result import Detection
from flowforge_catalog.files.detection.sampling import SampleSource

_FIRST_READ = 64 * 1024
_MAX_READ = 16 * 1024 * 1024
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\x00")


def preview(
    source: SampleSource, detection: Detection, rows: int = 20
) -> list[dict[str, str | None]]:
    """The first ``rows`` data rows, keyed by column name, values as in the file.

    A short (ragged) row gives None for its missing cells; extra cells are left out. Reads
    the head only: 64 KiB, doubled while more rows are needed, at most 16 MiB.
    """
    if rows <= 0 or source.size == 0:
        return []
    dialect = Dialect(detection.delimiter, detection.quote_char, detection.escape_char, "lf")
    skip = 1 if detection.has_header else 0
    names = _unique_names([column.name for column in detection.columns])
    length = _FIRST_READ
    while True:
        length = min(length, source.size, _MAX_READ)
        at_end = length >= source.size
        decoder = codecs.getincrementaldecoder(detection.encoding)(errors="replace")
        text = decoder.decode(source.read_range(0, length), final=at_end)
        records = parse(text, dialect, limit=skip + rows + 1)
        if not at_end:
            records = records[:-1]  # the last record may continue past what was read
        if len(records) >= skip + rows or at_end or length >= _MAX_READ:
            break
        length *= 2
    return [
        {name: (record[i] if i < len(record) else None) for i, name in enumerate(names)}
        for record in records[skip : skip + rows]
    ]


def neutralise_for_export(value: str) -> str:
    """``value`` made safe for a CSV/Excel export: a leading ``'`` when it begins with a
    character a spreadsheet reads as a formula (``= + - @``) or tab, CR or NUL."""
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def _unique_names(names: list[str]) -> list[str]:
    # The reader refuses duplicate header names; a preview still shows every cell.
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0) + 1
        seen[name] = count
        result.append(name if count == 1 else f"{name}_{count}")
    return result
