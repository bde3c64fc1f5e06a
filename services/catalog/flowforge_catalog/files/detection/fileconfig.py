"""From a :class:`Detection` to the ``fileConfig`` a job should use for the file.

The ingest reader (``flowforge_ingest.csv_source``) converts with Arrow: integers, floats,
plain decimals (``-1234.56``), booleans spelled true/false or 1/0, ISO dates and timestamps
by cast, and other dates and timestamps with a ``strptime`` format (no ``%f``). What it
cannot convert yet, the suggested config loads as ``string`` and :func:`column_override`
says why (detection turns that into a warning):

- decimals with a number format (decimal comma, thousands separator, currency symbol): the
  reader would need ``ColumnOverride.format`` to accept a number format for decimals (e.g.
  the ``numberFormat`` fields) and strip/replace the separators before the cast;
- booleans spelled yes/no, y/n, t/f: it would need per-column true/false spellings;
- ambiguous dates and timestamps: the user must choose the day/month order first.
"""

from __future__ import annotations

from typing import Any

from flowforge_catalog.files.detection.result import DetectedColumn, Detection
from flowforge_shared.contracts.jobs import ColumnOverride, FileConfig

_READER_BOOLEANS = {"true", "false", "1", "0"}
_MAX_SOURCE_NAME = 256


def column_override(column: DetectedColumn) -> tuple[ColumnOverride | None, str | None]:
    """(the override a job should use for ``column``; why it is not the detected type, or
    None when it is). No override when the name is too long for ``fileConfig.columns``."""
    if len(column.name) > _MAX_SOURCE_NAME:
        return None, (
            f"its name is longer than {_MAX_SOURCE_NAME} characters, so fileConfig.columns "
            "cannot name it; the reader will infer its type"
        )
    name = column.name
    if column.type == "boolean":
        spellings = {example.lower() for example in column.examples}
        if spellings <= _READER_BOOLEANS:
            return ColumnOverride(name=name, type="boolean"), None
        shown = "/".join(sorted(spellings, reverse=True))
        return _as_string(name, f"the CSV reader converts true/false and 1/0, not {shown}")
    if column.type == "decimal":
        if column.number_format is not None:
            return _as_string(
                name,
                f"the CSV reader cannot convert numbers written as {column.format!r} "
                "(currency symbol, thousands separator or decimal comma)",
            )
        return (
            ColumnOverride(
                name=name, type="decimal", precision=column.precision, scale=column.scale
            ),
            None,
        )
    if column.type in ("date", "timestamp"):
        if column.ambiguous or column.format is None:
            candidates = " or ".join(column.format_candidates) or "a format"
            return _as_string(name, f"its day/month order is ambiguous: choose {candidates}")
        if column.type == "timestamp" and column.format.startswith("%Y-%m-%d"):
            # ISO timestamps go through Arrow's cast, which reads fractions, 'Z' and offsets
            # (strptime has no %f) and decides naive or UTC from the values, as the reader does.
            return ColumnOverride(name=name, type="timestamp"), None
        return ColumnOverride(name=name, type=column.type, format=column.format), None
    return ColumnOverride(name=name, type=column.type), None


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
    return config.to_wire()


def _as_string(name: str, reason: str) -> tuple[ColumnOverride, str]:
    return ColumnOverride(name=name, type="string"), reason
