"""A CSV column as detection describes it: :class:`DetectedColumn` and its vocabulary.

Schema detection (the catalog) answers with these columns, and the ingest worker builds one
from its own inference to type a file the way detection would (:mod:`.overrides`), so they
live here rather than in either service. They are response models (camelCase on the wire,
every field present). Besides the fields the upload API promises, a column carries four that
make the answer usable without parsing prose:

- ``ambiguous`` / ``formatCandidates``: a date column whose values fit both day/month and
  month/day order says so here (type ``date``, ``format`` null, both formats listed).
- ``numberFormat``: how a decimal column writes its numbers when it is not plain ``1234.56``
  (decimal comma, thousands separator, currency symbol); ``format`` then shows the same
  convention as a pattern such as ``#.##0,00 €``.
- ``provenance``: for each semantic field that is set (``semanticType``, ``pii``,
  ``description``, ``suggestedName``) whether the heuristic or the AI filled it; ``source``
  sums it up (``ai`` when the AI filled any of them).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from flowforge_shared.contracts.base import ApiOutModel

ColumnType = Literal["integer", "decimal", "float", "boolean", "date", "timestamp", "string"]
Origin = Literal["heuristic", "ai"]
SemanticType = Literal[
    "email",
    "phone",
    "ssn",
    "ssn_last4",
    "account_number",
    "card_number",
    "currency_amount",
    "postal_code",
    "country_code",
    "state_code",
    "person_name",
    "date_of_birth",
]
SEMANTIC_TYPES: tuple[str, ...] = SemanticType.__args__  # type: ignore[attr-defined]

PII_TYPES = frozenset(
    {
        "email",
        "phone",
        "ssn",
        "ssn_last4",
        "account_number",
        "card_number",
        "postal_code",
        "person_name",
        "date_of_birth",
    }
)
"""Semantic types that identify a person (postal codes as a quasi-identifier, as HIPAA
treats them). Country and state codes and amounts are not PII on their own."""


class NumberFormat(ApiOutModel):
    """How a decimal column writes numbers, when it is not plain ``1234.56``."""

    decimal_separator: str
    thousands_separator: str | None = None
    currency_symbol: str | None = None


class DetectedColumn(ApiOutModel):
    name: str
    type: ColumnType
    precision: int | None = None
    scale: int | None = None
    format: str | None = None
    ambiguous: bool = False
    format_candidates: list[str] = Field(default_factory=list)
    number_format: NumberFormat | None = None
    nullable: bool = True
    null_tokens: list[str] = Field(default_factory=list)
    distinct_ratio: float | None = None
    min: str | None = None
    max: str | None = None
    examples: list[str] = Field(default_factory=list)
    semantic_type: SemanticType | None = None
    pii: bool = False
    description: str | None = None
    suggested_name: str | None = None
    source: Origin = "heuristic"
    provenance: dict[str, Origin] = Field(default_factory=dict)
