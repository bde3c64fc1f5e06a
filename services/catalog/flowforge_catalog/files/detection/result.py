"""The answer of detection: :class:`Detection`, a response model (camelCase on the wire,
every field present). Its columns, :class:`~flowforge_rules.csv.columns.DetectedColumn`, live
in :mod:`flowforge_rules.csv.columns` because the ingest worker types files with them too;
they are re-exported here."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flowforge_rules.csv.columns import (
    PII_TYPES,
    SEMANTIC_TYPES,
    ColumnType,
    DetectedColumn,
    NumberFormat,
    Origin,
    SemanticType,
)
from flowforge_shared.contracts.base import ApiOutModel

__all__ = [
    "PII_TYPES",
    "SEMANTIC_TYPES",
    "ColumnType",
    "DetectedColumn",
    "Detection",
    "EmptyFields",
    "LineEnding",
    "NumberFormat",
    "Origin",
    "SemanticType",
]

LineEnding = Literal["lf", "crlf", "cr"]


class EmptyFields(ApiOutModel):
    """How the load reads an empty field (the same for every file: see docs/run-engine.md)."""

    unquoted: Literal["null"] = "null"
    quoted_in_string_columns: Literal["empty-string"] = "empty-string"
    quoted_in_other_columns: Literal["null"] = "null"
    null_values_apply_to_quoted_values: bool = True


class Detection(ApiOutModel):
    encoding: str
    delimiter: str
    quote_char: str | None
    escape_char: str | None
    has_header: bool
    # Physical lines before the table (a title, prose, metadata) and the comment character:
    # the fileConfig.skipRows and commentChar the load needs (see .preamble).
    skip_rows: int = 0
    comment_char: str | None = None
    line_ending: LineEnding
    row_count_estimate: int
    row_count_exact: bool
    columns: list[DetectedColumn]
    candidate_primary_keys: list[str] = Field(default_factory=list)
    suggested_primary_key: str | None = None
    suggested_primary_key_source: Origin | None = None
    warnings: list[str] = Field(default_factory=list)
    # An empty unquoted field is null; a quoted one ("") is an empty string in a string column.
    empty_fields: EmptyFields = Field(default_factory=EmptyFields)
