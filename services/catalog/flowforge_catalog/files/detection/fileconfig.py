"""From a :class:`Detection` to the ``fileConfig`` a job should use for the file.

Each column's override comes from :func:`flowforge_rules.csv.overrides.column_override`,
shared with the ingest worker (its docstring says what the reader converts and what it
cannot).
"""

from __future__ import annotations

from typing import Any

from flowforge_catalog.files.detection.result import Detection
from flowforge_rules.csv.overrides import column_override
from flowforge_shared.contracts.jobs import FileConfig


def to_file_config(detection: Detection) -> dict[str, Any]:
    """The wire ``fileConfig`` (camelCase, no filePath/fileId) that loads the file as detected."""
    overrides = [
        override
        for column in detection.columns
        if (override := column_override(column)[0]) is not None
    ]
    null_values = sorted(
        {token for column in detection.columns for token in column.null_tokens if token}
    )
    config = FileConfig(
        delimiter=detection.delimiter,
        encoding=detection.encoding,
        has_header=detection.has_header,
        quote_char=detection.quote_char,
        escape_char=detection.escape_char,
        null_values=null_values,
        columns=overrides or None,
    )
    if detection.skip_rows:
        config.skip_rows = detection.skip_rows
    if detection.comment_char is not None:
        config.comment_char = detection.comment_char
    return config.to_wire()
