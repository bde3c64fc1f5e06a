"""The worker's outbox, without a broker: events kept while sending fails, sent in order
when it works again, and what a dead process left behind sent by another."""

from __future__ import annotations

import json
import subprocess
import sys

from flowforge_shared.outbox import Outbox


class Broker:
    def __init__(self) -> None:
        self.up = True
        self.received: list[int] = []

    def send(self, event: dict) -> None:
        if not self.up:
            raise ConnectionError("broker down")
        self.received.append(event["n"])


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_events_wait_on_disk_while_the_broker_is_down_and_go_in_order(tmp_path):
    broker = Broker()
    outbox = Outbox(tmp_path / "outbox", broker.send)
    outbox.emit({"n": 1})
    broker.up = False
    outbox.emit({"n": 2})
    broker.up = True
    outbox.emit({"n": 3})  # behind the kept one, not before it
    assert broker.received == [1]
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 2
    assert outbox.flush() == 2
    assert broker.received == [1, 2, 3]
    assert not list((tmp_path / "outbox").iterdir())
    outbox.emit({"n": 4})  # nothing kept any more: straight to the broker
    assert broker.received == [1, 2, 3, 4]


def test_a_flush_stops_at_the_first_failure_and_keeps_the_rest(tmp_path):
    broker = Broker()
    outbox = Outbox(tmp_path / "outbox", broker.send)
    broker.up = False
    for n in (1, 2):
        outbox.emit({"n": n})
    assert outbox.flush() == 0
    assert len(list((tmp_path / "outbox").glob("*.json"))) == 2


def test_what_a_dead_process_kept_is_sent_by_another(tmp_path):
    directory = tmp_path / "outbox"
    directory.mkdir()
    pid = dead_pid()
    (directory / f"{1:020d}-{pid}-aaaaaaaa.json").write_text(json.dumps({"n": 1}))
    # It died while sending this one: the claim is given back.
    (directory / f".{2:020d}-{pid}-bbbbbbbb.json.sending-{pid}").write_text(json.dumps({"n": 2}))
    broker = Broker()
    outbox = Outbox(directory, broker.send)
    outbox.emit({"n": 3})  # the orphans go first
    assert broker.received == []
    outbox.flush()
    assert broker.received == [1, 2, 3]
    assert not list(directory.iterdir())
