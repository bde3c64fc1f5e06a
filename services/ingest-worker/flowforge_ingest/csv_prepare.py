"""The file as pyarrow reads it, when the file's own bytes are not that: a prepared copy.

- With ``fileConfig.skipRows`` and ``fileConfig.commentChar``, the lines before the table
  and the comment lines are left out (:func:`flowforge_shared.csv_rules.table_lines`, which
  detection and preview apply too). pyarrow's ``ReadOptions.skip_rows`` counts parsed rows
  (a preamble's stray quote would swallow the table) and its parser has no comment option.
- With the delimiter ``" "``, runs of spaces between fields are one separator and the spaces
  around a record are dropped (columns aligned for the eye, as R's ``read.table`` and pandas'
  ``sep=r"\\s+"`` read them; the rule is :func:`flowforge_shared.csv_rules.collapse_spaces`).
  pyarrow's reader has no "run of blanks" delimiter.

The copy is one pass over the file, line by line (linear time, memory bounded by a line),
written in the file's own encoding to a temporary file the caller deletes. Rows, offsets and
quarantined text then all refer to the copy, which holds the same records; the lines left
out are not counted, as blank lines are not.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path

from flowforge_shared.csv_rules import collapse_spaces, table_lines


class SkipBeyondEnd(ValueError):
    """``skipRows`` leaves nothing of the file: ``lines`` is how many lines it has."""

    def __init__(self, lines: int) -> None:
        super().__init__(lines)
        self.lines = lines


def prepared_copy(
    path: Path,
    *,
    encoding: str,
    delimiter: str,
    quote: str | None,
    escape: str | None,
    skip_rows: int = 0,
    comment: str | None = None,
) -> Path:
    """A temporary copy of ``path`` without its skipped and comment lines and, with the
    delimiter ``" "``, with :func:`collapse_spaces` applied (the caller deletes it). Raises
    :class:`UnicodeDecodeError` for text not valid in ``encoding`` and
    :class:`SkipBeyondEnd` when ``skip_rows`` is not below the file's number of lines."""
    handle, name = tempfile.mkstemp(prefix="flowforge-table-", suffix=".csv")
    counted = [0]

    def count(lines: Iterable[str]) -> Iterator[str]:
        for line in lines:
            counted[0] += 1
            yield line

    try:
        # newline="": lines split at \n, \r\n and \r, their endings kept as they are.
        with (
            open(path, encoding=encoding, newline="") as source,
            os.fdopen(handle, "w", encoding=encoding, newline="") as target,
        ):
            lines: Iterable[str] = table_lines(
                count(source),
                skip_rows=skip_rows,
                comment=comment,
                delimiter=delimiter,
                quote=quote,
                escape=escape,
            )
            if delimiter == " ":
                lines = collapse_spaces(lines, quote=quote, escape=escape)
            target.writelines(lines)
        if skip_rows and counted[0] <= skip_rows:
            raise SkipBeyondEnd(counted[0])
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
