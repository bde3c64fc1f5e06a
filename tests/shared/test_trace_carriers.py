"""The trace context travels with a message, not with the thread that happens to send it: a
run event or a bus message kept in an outbox while the broker is down still goes out in the
trace it was emitted in (issue 13)."""

from __future__ import annotations

import pytest
from opentelemetry import trace

from flowforge_shared.telemetry import task_headers, tracer


@pytest.fixture(autouse=True)
def sdk_provider():
    from opentelemetry.sdk.trace import TracerProvider

    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())


def trace_id_of(headers: dict[str, str]) -> str:
    return headers["traceparent"].split("-")[1]


class FakeCelery:
    def __init__(self, fail: bool = False) -> None:
        self.fail = fail
        self.sent: list[tuple[str, dict, dict]] = []

    def send_task(self, name, args, queue, headers=None, **_options):
        if self.fail:
            raise ConnectionError("broker down")
        self.sent.append((name, args[0], headers or {}))


def test_a_run_event_kept_while_the_broker_is_down_goes_out_in_its_trace(tmp_path, monkeypatch):
    from flowforge_runtime import worker
    from tests.conftest import make_settings

    broker = FakeCelery(fail=True)
    monkeypatch.setattr(worker, "celery", broker)
    sink = worker.CeleryEventSink(make_settings(tmp_path))
    with tracer.start_as_current_span("job") as span:
        sink.emit({"eventType": "COMPLETE", "run": {"runId": "r1"}})
    assert sink.outbox._kept == 1  # noqa: SLF001 - kept on disk, with its context

    broker.fail = False
    assert sink.outbox.flush() == 1  # from a thread outside any span
    ((_, event, headers),) = broker.sent
    assert event == {"eventType": "COMPLETE", "run": {"runId": "r1"}}
    assert trace_id_of(headers) == f"{span.get_span_context().trace_id:032x}"
    assert headers["traceparent"].split("-")[2] == f"{span.get_span_context().span_id:016x}"


def test_an_event_kept_by_an_older_version_goes_out_without_context(monkeypatch):
    from flowforge_runtime import worker

    broker = FakeCelery()
    monkeypatch.setattr(worker, "celery", broker)
    worker._send_event({"eventType": "START", "run": {"runId": "r1"}})
    assert broker.sent == [
        (worker.RECORD_EVENT, {"eventType": "START", "run": {"runId": "r1"}}, {})
    ]


def test_a_bus_message_carries_the_senders_trace(tmp_path):
    from flowforge_shared.bus import Bus
    from tests.conftest import make_settings

    bus = Bus(make_settings(tmp_path, broker_url="redis://127.0.0.1:1/0"))
    broker = FakeCelery(fail=True)
    bus._outbox_for()  # noqa: SLF001
    bus._celery = broker  # noqa: SLF001
    with tracer.start_as_current_span("request") as span:
        bus.send("flowforge.orchestrator.start_run", {"n": 1}, queue="events")
    broker.fail = False
    assert bus._outbox.flush() == 1  # noqa: SLF001
    ((name, payload, headers),) = broker.sent
    assert (name, payload) == ("flowforge.orchestrator.start_run", {"n": 1})
    assert trace_id_of(headers) == f"{span.get_span_context().trace_id:032x}"


def test_task_headers_are_read_from_the_request_or_its_headers():
    class Request(dict):
        headers = None

    direct = Request(traceparent="00-" + "a" * 32 + "-" + "b" * 16 + "-01")
    assert task_headers(direct) == {"traceparent": direct["traceparent"]}
    nested = Request()
    nested.headers = {"traceparent": "x", "tracestate": "k=v"}
    assert task_headers(nested) == {"traceparent": "x", "tracestate": "k=v"}
    assert task_headers(Request()) == {}
