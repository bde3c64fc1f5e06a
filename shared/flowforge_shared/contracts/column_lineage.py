"""Column lineage on the wire: the OpenLineage ``columnLineage`` dataset facet (1-2-0).

The workers say, per output column, which input columns it comes from and how; the lineage
service stores it. Both speak FlowForge's ``how`` words, which map one-to-one onto
OpenLineage's transformation ``type``/``subtype`` (a rename is an IDENTITY whose input field
has another name than the output column):

=============  ==========  ==============  =============================================
how            type        subtype         FlowForge
=============  ==========  ==============  =============================================
identity       DIRECT      IDENTITY        a column copied unchanged
rename         DIRECT      IDENTITY        copied under another name (CSV rename, join clash)
derived        DIRECT      TRANSFORMATION  a derived column's expression, a surrogate key
aggregation    DIRECT      AGGREGATION     SUM, COUNT, AVG, MIN, MAX, COUNT_DISTINCT
join           INDIRECT    JOIN            a join key, a silver merge key
filter         INDIRECT    FILTER          a filter, a null-key rejection, an incremental read
group_by       INDIRECT    GROUP_BY        gold groupBy, silver dedupe / combine key
sort           INDIRECT    SORT            what decides which row dedupe keeps
=============  ==========  ==============  =============================================

The facet is built with openlineage-python's generated classes, so ``_producer`` and
``_schemaURL`` are right by construction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from openlineage.client.generated import column_lineage_dataset as facet_classes
from openlineage.client.serde import Serde

from flowforge_shared.contracts.events import PRODUCER

FACET_NAME = "columnLineage"

TRANSFORMATIONS: dict[str, tuple[str, str]] = {
    "identity": ("DIRECT", "IDENTITY"),
    "rename": ("DIRECT", "IDENTITY"),
    "derived": ("DIRECT", "TRANSFORMATION"),
    "aggregation": ("DIRECT", "AGGREGATION"),
    "join": ("INDIRECT", "JOIN"),
    "filter": ("INDIRECT", "FILTER"),
    "group_by": ("INDIRECT", "GROUP_BY"),
    "sort": ("INDIRECT", "SORT"),
}
_HOW = {pair: how for how, pair in TRANSFORMATIONS.items() if how != "rename"}
INDIRECT = frozenset(how for how, (kind, _) in TRANSFORMATIONS.items() if kind == "INDIRECT")


def how_of(type_: str | None, subtype: str | None, renamed: bool = False) -> str:
    """FlowForge's word for an OpenLineage transformation (another producer's unknown subtype
    is its subtype in lower case, or the type's)."""
    kind, sub = str(type_ or "DIRECT").upper(), str(subtype or "").upper()
    how = _HOW.get((kind, sub)) or (sub or kind).lower()
    return "rename" if how == "identity" and renamed else how


@dataclass(frozen=True)
class Source:
    """One input column an output column depends on, and how."""

    namespace: str
    name: str
    field: str
    how: str
    description: str | None = None


def facet(fields: Mapping[str, Iterable[Source]], dataset: Iterable[Source] = ()) -> dict[str, Any]:
    """The ``columnLineage`` facet as JSON-ready data: ``fields`` maps each output column to
    its sources, ``dataset`` lists what affects the whole dataset (INDIRECT only)."""
    return Serde.to_dict(
        facet_classes.ColumnLineageDatasetFacet(
            fields={
                column: facet_classes.Fields(inputFields=_input_fields(sources))
                for column, sources in fields.items()
            },
            dataset=_input_fields(dataset),
            producer=PRODUCER,
        )
    )


def _input_fields(sources: Iterable[Source]) -> list[facet_classes.InputField]:
    # One InputField per input column, carrying every way it is used (in first-seen order).
    grouped: dict[tuple[str, str, str], list[facet_classes.Transformation]] = {}
    for source in sources:
        if source.how not in TRANSFORMATIONS:
            raise ValueError(f"unknown column lineage how {source.how!r}")
        kind, subtype = TRANSFORMATIONS[source.how]
        transformation = facet_classes.Transformation(
            type=kind, subtype=subtype, description=source.description
        )
        known = grouped.setdefault((source.namespace, source.name, source.field), [])
        if transformation not in known:
            known.append(transformation)
    return [
        facet_classes.InputField(
            namespace=namespace, name=name, field=field, transformations=transformations
        )
        for (namespace, name, field), transformations in grouped.items()
    ]
