"""The graph around one dataset (``GET /api/lineage``): breadth first from it, upstream,
downstream or both, up to ``depth`` edges away and at most ``limit`` datasets, the nearest
first.

The walk asks for one level's edges at once per direction (``IN`` over the frontier, in
chunks), both directions level by level together, and stops after the level at which it
has found more than ``limit`` datasets: a dataset read by thousands of jobs costs one level,
not half the graph. The answer keeps the ``limit`` nearest (by distance, then id), the
walked edges between them, and says what it left out: ``truncated``, ``omittedNodes`` (the
datasets found and not returned: at least that many more lie within ``depth``, since the
walk went no deeper) and ``completeDepth`` (every dataset up to that many edges away is in
the answer).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from flowforge_lineage.graph.models import LineageDataset, LineageEdge
from flowforge_lineage.graph.query import (
    EDGE_COLUMNS,
    Key,
    dialect_of,
    graph_of,
    keys_in,
    rows_of,
)

Direction = Literal["upstream", "downstream", "both"]
Walk = Literal["upstream", "downstream"]

DEFAULT_LIMIT = 500
MAX_LIMIT = 10_000


# A walked edge: (source key, target key, its row of EDGE_COLUMNS).
Walked = tuple[Key, Key, Any]


def _level(session: Session, walk: Walk, frontier: Sequence[Key]) -> Iterator[Walked]:
    """Every edge leading one step on from ``frontier`` (chunked)."""
    if walk == "upstream":
        columns = (LineageEdge.target_namespace, LineageEdge.target_name)
    else:
        columns = (LineageEdge.source_namespace, LineageEdge.source_name)
    wanted = set(frontier)
    for condition in keys_in(*columns, frontier, dialect_of(session)):
        for row in rows_of(session, select(*EDGE_COLUMNS).where(condition)):
            # By position (EDGE_COLUMNS starts with the source's and the target's keys):
            # on thousands of rows, a row's attributes cost more than the query.
            source, target = (row[0], row[1]), (row[2], row[3])
            if (target if walk == "upstream" else source) in wanted:
                yield source, target, row


def walk(
    session: Session, root: Key, walks: Sequence[Walk], depth: int, limit: int
) -> tuple[dict[Key, int], list[Walked]]:
    """Each dataset found and its distance from ``root`` (its first level in any walk), and
    the edges walked; level by level, until ``depth``, nothing left to walk, or more than
    ``limit`` datasets found. Each direction walks on its own (``both`` does not turn
    around: the other readers of an upstream table are not in it)."""
    distance = {root: 0}
    edges: list[Walked] = []
    frontiers: dict[Walk, list[Key]] = {way: [root] for way in walks}
    seen: dict[Walk, set[Key]] = {way: {root} for way in walks}
    level = 0
    while level < depth and any(frontiers.values()) and len(distance) <= limit:
        level += 1
        for way in walks:
            following: list[Key] = []
            for edge in _level(session, way, frontiers[way]):
                edges.append(edge)
                other = edge[0] if way == "upstream" else edge[1]
                if other not in seen[way]:
                    seen[way].add(other)
                    following.append(other)
                    distance.setdefault(other, level)
            frontiers[way] = following
    return distance, edges


def nearest(distance: dict[Key, int], limit: int) -> list[Key]:
    """The ``limit`` datasets nearest the root: by distance, then by (namespace, name)."""
    return sorted(distance, key=lambda key: (distance[key], key))[:limit]


def neighbourhood(
    session: Session,
    start: LineageDataset,
    direction: Direction,
    depth: int,
    limit: int = DEFAULT_LIMIT,
) -> dict[str, Any]:
    """The datasets within ``depth`` edges of ``start`` (upstream, downstream or both), across
    workflows, at most ``limit`` of them, the nearest first, each with its ``depth``; the
    walked edges between them; and what was left out."""
    root = (start.namespace, start.name)
    walks: tuple[Walk, ...] = ("upstream", "downstream") if direction == "both" else (direction,)
    distance, walked = walk(session, root, walks, depth, limit)
    kept = nearest(distance, limit)
    truncated = len(distance) > limit
    inside = set(kept)
    edges = {
        (source, target, row.job_id): row
        for source, target, row in walked
        if source in inside and target in inside
    }
    graph = graph_of(session, kept, edges.values())
    rank = {key: index for index, key in enumerate(kept)}
    for node in graph["nodes"]:
        node["depth"] = distance[(node["namespace"], node["name"])]
    graph["nodes"].sort(key=lambda node: rank[(node["namespace"], node["name"])])
    return {
        "root": start.node_id,
        **graph,
        "truncated": truncated,
        "limit": limit,
        "omittedNodes": len(distance) - len(kept),
        "completeDepth": _complete_depth(distance, kept, depth, truncated),
    }


def _complete_depth(distance: dict[Key, int], kept: list[Key], depth: int, truncated: bool) -> int:
    """How many edges away the answer holds every dataset: ``depth`` when nothing was left
    out; else one less than the distance of the nearest dataset left out."""
    if not truncated:
        return depth
    left_out = set(distance) - set(kept)
    return min(distance[key] for key in left_out) - 1
