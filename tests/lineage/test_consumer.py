"""Applying run events in batches gives the graph that applying them one by one gives."""

from __future__ import annotations

import random

from flowforge.app import upgrade_all
from flowforge_lineage.graph.consumer import record_event, record_events
from flowforge_lineage.graph.query import workflow_graph
from flowforge_shared.db.engine import Database


def fresh(tmp_path, name: str) -> Database:
    url = f"sqlite:///{tmp_path / f'{name}.db'}"
    upgrade_all(url)
    return Database(url)


def test_a_batch_with_repeats_in_any_order_gives_the_graph_of_one_by_one(tmp_path, database):
    from bench.bench_lineage import workflow_events

    events = [event for index in range(3) for event in workflow_events(index, tag="c")]
    workflow_ids = {e["run"]["facets"]["flowforge_run"]["workflowId"] for e in events}
    # One by one on SQLite; the batch on SQLite and on PostgreSQL.
    one_by_one, batched = fresh(tmp_path, "one"), database
    try:
        assert all(record_event(one_by_one, event) for event in events)
        shuffled = events + events[:5]
        random.Random(14).shuffle(shuffled)
        applied = record_events(batched, shuffled)
        assert applied.count(True) == len(events) and applied.count(False) == 5
        assert record_events(batched, events[:7]) == [False] * 7
        for workflow_id in workflow_ids:
            with one_by_one.session() as a, batched.session() as b:
                expected = workflow_graph(a, workflow_id)
                assert expected["nodes"] and workflow_graph(b, workflow_id) == expected
    finally:
        one_by_one.dispose()
