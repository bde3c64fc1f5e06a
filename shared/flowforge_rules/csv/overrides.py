"""From a detected column to the ``fileConfig.columns`` entry that loads it.

Detection (the catalog) suggests these overrides, and the ingest worker applies the same
function to the types it infers itself when a job names no type, so both read a file alike.

The ingest reader (``flowforge_ingest.csv_source``) converts integers, floats, decimals —
also written the local way (decimal comma, thousands separator, currency symbol, through the
``decimalSeparator``/``thousandsSeparator``/``currencySymbol`` of a column) —, booleans (any
spelling, through ``trueValues``/``falseValues``), ISO dates and timestamps by cast, and other
dates and timestamps with a ``strptime`` format (no ``%f``). What it cannot convert, the
suggested config loads as ``string`` and :func:`column_override` says why (detection turns
that into a warning): ambiguous dates and timestamps, where the user must choose the
day/month order first.
"""

from __future__ import annotations

from flowforge_rules.csv.columns import DetectedColumn
from flowforge_shared.contracts.jobs import ColumnOverride

_READER_BOOLEANS = {"true", "false", "1", "0"}
# The spellings detection recognises as booleans (it never mixes them with other words).
TRUE_WORDS = ["true", "t", "yes", "y", "1"]
FALSE_WORDS = ["false", "f", "no", "n", "0"]
_MAX_SOURCE_NAME = 256
# A sample's largest value is not the next file's: a detected decimal gets at least 18 digits
# (Parquet still stores it as INT64); a value wider still widens the table when it arrives
# (flowforge_shared.widening) instead of failing the load.
DETECTED_DECIMAL_PRECISION = 18


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
        spellings = {example.strip().lower() for example in column.examples}
        if spellings <= _READER_BOOLEANS:
            return ColumnOverride(name=name, type="boolean"), None
        return (
            ColumnOverride(
                name=name, type="boolean", true_values=TRUE_WORDS, false_values=FALSE_WORDS
            ),
            None,
        )
    if column.type == "decimal":
        number = column.number_format
        return (
            ColumnOverride(
                name=name,
                type="decimal",
                precision=None
                if column.precision is None
                else max(column.precision, DETECTED_DECIMAL_PRECISION),
                scale=column.scale,
                decimal_separator=number.decimal_separator if number else None,
                thousands_separator=number.thousands_separator if number else None,
                currency_symbol=number.currency_symbol if number else None,
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


def _as_string(name: str, reason: str) -> tuple[ColumnOverride, str]:
    return ColumnOverride(name=name, type="string"), reason
