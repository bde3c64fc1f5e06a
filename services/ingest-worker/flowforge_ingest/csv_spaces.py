"""A file whose delimiter is ``" "`` as the reader reads it: runs of spaces between fields are
one separator and the spaces around a record are dropped (columns aligned for the eye, as R's
``read.table`` and pandas' ``sep=r"\\s+"`` read them; the rule is
:func:`flowforge_shared.csv_rules.collapse_spaces`, which detection and preview apply too).

pyarrow's reader has no "run of blanks" delimiter, so it reads a collapsed copy: one pass over
the file, line by line (linear time, memory bounded by a line), written in the file's own
encoding to a temporary file the caller deletes. Rows, offsets and quarantined text then all
refer to the copy, which holds the same records.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flowforge_shared.csv_rules import collapse_spaces


def collapsed_copy(path: Path, *, encoding: str, quote: str | None, escape: str | None) -> Path:
    """A temporary copy of ``path`` with :func:`collapse_spaces` applied (the caller deletes
    it). Raises :class:`UnicodeDecodeError` for text not valid in ``encoding``."""
    handle, name = tempfile.mkstemp(prefix="flowforge-spaces-", suffix=".csv")
    try:
        # newline="": lines split at \n, \r\n and \r, their endings kept as they are.
        with (
            open(path, encoding=encoding, newline="") as source,
            os.fdopen(handle, "w", encoding=encoding, newline="") as target,
        ):
            target.writelines(collapse_spaces(source, quote=quote, escape=escape))
    except BaseException:
        os.unlink(name)
        raise
    return Path(name)
