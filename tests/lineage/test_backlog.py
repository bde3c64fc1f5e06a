"""The lineage worker takes the events waiting in its queue in batches, on a real Redis
broker: every message is applied once and acknowledged after the commit; a failed batch
leaves every message it took in the queue; a message of another task is put back."""

from __future__ import annotations

import pytest
from celery import Celery

from flowforge_lineage.graph import backlog
from flowforge_lineage.graph.backlog import record_with_backlog
from flowforge_shared.contracts.tasks import LINEAGE_QUEUE, LINEAGE_RECORD_EVENT
from tests.lineage.realistic import realistic_events
from tests.system.processes import RedisServer


@pytest.fixture
def broker(tmp_path):
    server = RedisServer(tmp_path).start()
    app = Celery("lineage-backlog-test", broker=server.url)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        task_routes={LINEAGE_RECORD_EVENT: {"queue": LINEAGE_QUEUE}},
    )
    yield app
    app.close()
    server.kill()


def _waiting(app) -> int:
    with app.connection_for_read() as connection:
        return connection.default_channel.client.llen(LINEAGE_QUEUE)


def _unacknowledged(app) -> int:
    with app.connection_for_read() as connection:
        return connection.default_channel.client.hlen("unacked")


def test_the_worker_applies_what_waits_in_batches_each_once(broker, database):
    events = realistic_events(seed=7)[:60]
    for event in events[1:]:
        broker.send_task(LINEAGE_RECORD_EVENT, args=[event])
    broker.send_task(LINEAGE_RECORD_EVENT, args=[events[5]])  # a redelivery
    assert _waiting(broker) == 60

    class Forwarder:
        sent: list = []

        def submit(self, event):
            self.sent.append(event)

    forwarder = Forwarder()
    assert record_with_backlog(database, events[0], broker, forwarder, limit=25) == 25
    assert _waiting(broker) == 36 and _unacknowledged(broker) == 0
    applied = 25
    while _waiting(broker):
        applied += record_with_backlog(database, events[0], broker, forwarder, limit=25)
    assert applied == len(events) and len(forwarder.sent) == len(events)
    assert _unacknowledged(broker) == 0


def test_a_failed_batch_leaves_every_message_it_took_in_the_queue(broker, database, monkeypatch):
    events = realistic_events(seed=8)[:10]
    for event in events[1:]:
        broker.send_task(LINEAGE_RECORD_EVENT, args=[event])

    def broken(*_args):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(backlog, "record_events", broken)
    with pytest.raises(RuntimeError):
        record_with_backlog(database, events[0], broker, limit=50)
    assert _waiting(broker) == 9 and _unacknowledged(broker) == 0
    monkeypatch.undo()
    assert record_with_backlog(database, events[0], broker, limit=50) == 10
    assert _waiting(broker) == 0


def test_a_message_of_another_task_is_put_back(broker, database):
    events = realistic_events(seed=9)[:4]
    broker.send_task(LINEAGE_RECORD_EVENT, args=[events[1]])
    broker.send_task("flowforge.somebody.else", args=[1], queue=LINEAGE_QUEUE)
    broker.send_task(LINEAGE_RECORD_EVENT, args=[events[2]])
    assert record_with_backlog(database, events[0], broker, limit=50) == 2
    assert _waiting(broker) == 2  # the other task's message, and the event behind it
    assert _unacknowledged(broker) == 0


def test_the_own_event_is_applied_when_the_broker_does_not_answer(database, tmp_path):
    from tests.conftest import free_port

    app = Celery("lineage-backlog-down", broker=f"redis://127.0.0.1:{free_port()}/0")
    app.conf.broker_connection_timeout = 1
    try:
        assert record_with_backlog(database, realistic_events(seed=10)[0], app) == 1
    finally:
        app.close()
