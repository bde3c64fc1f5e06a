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


TAKE_AND_HANG = """
import sys, time
from celery import Celery
from flowforge_lineage.graph import backlog
from flowforge_shared.celery_app import configure
from flowforge_shared.contracts.tasks import LINEAGE_QUEUE
from flowforge_shared.settings import Settings

app = configure(Settings(), Celery("a-lineage-worker"), queue=LINEAGE_QUEUE)
with app.pool.acquire(block=True) as connection:
    taken = backlog._take(connection, 50)
    print(len(taken), flush=True)
    time.sleep(120)  # killed here: nothing committed, nothing acknowledged
"""


def _configured(url: str, queue: str | None, **settings) -> Celery:
    from flowforge_shared.celery_app import configure
    from flowforge_shared.settings import Settings

    return configure(Settings(broker_url=url, **settings), Celery("restarted"), queue=queue)


def _restore_scan(app: Celery) -> None:
    """What a worker of ``app``'s configuration does when it starts polling (and every
    few seconds after): put back the messages unacknowledged for longer than its
    visibility timeout."""
    with app.connection_for_read() as connection:
        channel = connection.default_channel
        channel.qos.restore_visible(num=channel.unacked_restore_limit, interval=1)


def test_what_a_killed_lineage_worker_held_comes_back_in_seconds(tmp_path):
    """A lineage worker killed (SIGKILL) after taking its backlog leaves the messages
    unacknowledged, under the lineage worker's own keys: a lineage worker started again
    puts them back once its short visibility timeout has passed; the job workers' scans
    (a visibility timeout of hours) never touch them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    import redis

    server = RedisServer(tmp_path).start()
    try:
        sender = _configured(server.url, None)
        for event in realistic_events(seed=11)[:5]:
            sender.send_task(LINEAGE_RECORD_EVENT, args=[event])
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("FLOWFORGE_")},
            "FLOWFORGE_BROKER_URL": server.url,
            "FLOWFORGE_LINEAGE_VISIBILITY_TIMEOUT": "1",
        }
        worker = subprocess.Popen(
            [sys.executable, "-c", TAKE_AND_HANG], env=env, stdout=subprocess.PIPE, text=True
        )
        try:
            assert worker.stdout.readline().strip() == "5"
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        client = redis.Redis.from_url(server.url)
        assert client.llen(LINEAGE_QUEUE) == 0 and client.hlen("unacked_lineage") == 5
        assert client.hlen("unacked") == 0

        time.sleep(1.2)
        _restore_scan(sender)  # a job worker's scan: not its messages
        assert client.llen(LINEAGE_QUEUE) == 0
        _restore_scan(_configured(server.url, LINEAGE_QUEUE, lineage_visibility_timeout=1))
        assert client.llen(LINEAGE_QUEUE) == 5 and client.hlen("unacked_lineage") == 0
        sender.close()
    finally:
        server.kill()
