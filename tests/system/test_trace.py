"""One OpenTelemetry trace per run, across real processes: a run requested with a W3C
``traceparent`` (as a gateway or a browser sends it) is followed from the API request
through the StartRun handling and the dispatches to each job's worker and to the events
worker recording what the job reported. Spans are exported over OTLP/HTTP to a collector
this test runs, and checked by their parent links, not only by their names."""

from __future__ import annotations

import gzip
import json
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import sqlalchemy as sa

from flowforge.app import upgrade_all
from tests.system.conftest import workflow_jobs, write_transactions
from tests.system.processes import RedisServer, Server, Workers, base_env, wait_for

RUN_SPANS = ("start run", "dispatch", "job ", "record ")
"""Names (prefixes) of the spans a run makes outside the API request."""


@dataclass
class Span:
    trace_id: str
    span_id: str
    parent: str | None
    name: str
    service: str
    attributes: dict = field(default_factory=dict)


class Collector:
    """An OTLP/HTTP trace collector: POST /v1/traces with protobuf bodies, kept in memory."""

    def __init__(self) -> None:
        self.spans: list[Span] = []
        self.lock = threading.Lock()
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the http.server hook
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                    ExportTraceServiceResponse,
                )

                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_response(404)
                    self.end_headers()
                    return
                request = ExportTraceServiceRequest()
                request.ParseFromString(body)
                collector.receive(request)
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def receive(self, request) -> None:
        for resource_spans in request.resource_spans:
            resource = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {}
                    for attribute in span.attributes:
                        value = attribute.value
                        attributes[attribute.key] = getattr(value, value.WhichOneof("value"))
                    with self.lock:
                        self.spans.append(
                            Span(
                                trace_id=span.trace_id.hex(),
                                span_id=span.span_id.hex(),
                                parent=span.parent_span_id.hex() or None,
                                name=span.name,
                                service=resource.get("service.name", ""),
                                attributes=attributes,
                            )
                        )

    def received(self) -> list[Span]:
        with self.lock:
            return list(self.spans)

    def __enter__(self) -> Collector:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def new_traceparent() -> tuple[str, str, str]:
    """A sampled W3C traceparent of the caller's own span: (header, trace id, span id)."""
    trace_id, span_id = uuid.uuid4().hex, uuid.uuid4().hex[:16]
    return f"00-{trace_id}-{span_id}-01", trace_id, span_id


def is_run_span(span: Span) -> bool:
    return span.name.startswith(RUN_SPANS) or span.name == "record outputs"


def run_trace_complete(spans: list[Span], trace_id: str, api_name: str, jobs: int) -> bool:
    """Every span the checks below need has arrived."""
    mine = [s for s in spans if s.trace_id == trace_id]
    names = [s.name for s in mine]
    return (
        api_name in names
        and "start run" in names
        and names.count("dispatch") >= jobs
        and sum(name.startswith("job ") for name in names) >= jobs
        and names.count("record COMPLETE") >= jobs
    )


def check_run_trace(spans: list[Span], trace_id: str, caller_span: str, api_name: str, jobs: int):
    """The run's spans form one tree under the caller's span, parent link by parent link.
    Returns the run's spans by id."""
    stray = [s for s in spans if is_run_span(s) and s.trace_id != trace_id]
    assert not stray, f"spans of the run outside its trace: {stray}"
    mine = {s.span_id: s for s in spans if s.trace_id == trace_id}

    def parent(span: Span) -> Span:
        assert span.parent in mine, f"{span.name} ({span.service}): parent not in the trace"
        return mine[span.parent]

    def ancestors(span: Span) -> list[Span]:
        chain = []
        while span.parent != caller_span:
            span = parent(span)
            chain.append(span)
        return chain

    (api,) = [s for s in mine.values() if s.name == api_name]
    assert api.parent == caller_span  # the API request continues the caller's trace
    for span in mine.values():  # one tree: every span but the API's has its parent here
        if span is not api:
            assert api in ancestors(span), f"{span.name} ({span.service}) not under the API span"

    (start,) = [s for s in mine.values() if s.name == "start run"]
    assert parent(start) is api
    dispatches = [s for s in mine.values() if s.name == "dispatch"]
    job_spans = [s for s in mine.values() if s.name.startswith("job ")]
    records = [
        s
        for s in mine.values()
        if s.name.startswith("record ") and s.name not in ("record outputs", "record audit")
    ]
    assert len(dispatches) == jobs and len(job_spans) == jobs
    for dispatch in dispatches:  # the first by the StartRun handling, the next by a record
        assert parent(dispatch).name in ("start run", "record COMPLETE")
    for job in job_spans:
        assert parent(job).name == "dispatch"
        assert (
            parent(job).attributes["flowforge.job_run_id"] == job.attributes["flowforge.job_run_id"]
        )
    for record in records:  # the events recorded are the children of the job that sent them
        job = parent(record)
        assert job.name.startswith("job "), f"{record.name} under {job.name}"
        assert record.attributes["flowforge.job_run_id"] == job.attributes["flowforge.job_run_id"]
    completes = [s for s in records if s.name == "record COMPLETE"]
    assert {parent(s).span_id for s in completes} == {s.span_id for s in job_spans}
    for outputs in (s for s in mine.values() if s.name == "record outputs"):
        assert parent(outputs).name == "record COMPLETE"
    # The run's start, audited by the orchestrator, recorded by the catalog's worker (served
    # apart) in the trace of the StartRun handling that committed it.
    for audited in (s for s in mine.values() if s.name == "record audit"):
        assert parent(audited).name == "start run"
    return mine


def execution_status(database_url: str, execution_id: str) -> str | None:
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            return connection.execute(
                sa.text("SELECT status FROM executions WHERE id = :id"), {"id": execution_id}
            ).scalar()
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "api_command",
    [("serve",), ("service", "catalog")],
    ids=["serve-with-broker", "catalog-alone"],
)
def test_one_trace_follows_a_run_across_processes(tmp_path: Path, fresh_postgres_url, api_command):
    """``flowforge serve`` hands StartRun to the orchestrator in its own process and
    dispatches from there; a catalog alone sends StartRun over the broker, and the events
    worker starts the run and dispatches. Either way: one trace, every link checked."""
    jobs = workflow_jobs()
    write_transactions(tmp_path / "landing" / "tx.csv", 40)
    # As compose's migrate does first: a catalog alone migrates only its own tables on start,
    # and the events worker never migrates.
    upgrade_all(fresh_postgres_url)
    with Collector() as collector:
        redis = RedisServer(tmp_path).start()
        env = {
            "FLOWFORGE_DATABASE_URL": fresh_postgres_url,
            "FLOWFORGE_BROKER_URL": redis.url,
            "FLOWFORGE_AUTO_MIGRATE": "true",
            "FLOWFORGE_TELEMETRY_EXPORTER": "otlp",
            "FLOWFORGE_OTLP_ENDPOINT": collector.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "100",
            "FLOWFORGE_DISPATCH_GRACE": "60",  # no resend by the reaper under a slow machine
        }
        api = Server(tmp_path, api_command, **env)
        workers = Workers(base_env(tmp_path, **env), tmp_path)
        try:
            api.start()
            for queue in ("events", "ingest", "transform", "catalog"):
                workers.start(queue)
            with api.client() as client:
                workflow = client.post("/api/workflows", json={"name": "traced"}).json()
                for job in jobs:
                    created = client.post(f"/api/workflows/{workflow['id']}/jobs", json=job)
                    assert created.status_code == 201, created.text
                traceparent, trace_id, caller_span = new_traceparent()
                started = client.post(
                    f"/api/workflows/{workflow['id']}/run", headers={"traceparent": traceparent}
                )
                assert started.status_code == 202, started.text
                execution_id = started.json()["executionId"]
            wait_for(
                lambda: (
                    execution_status(fresh_postgres_url, execution_id)
                    in ("succeeded", "failed", "cancelled")
                ),
                120,
                0.3,
                "the run to end",
            )
            assert execution_status(fresh_postgres_url, execution_id) == "succeeded"
            api_name = f"POST /api/workflows/{workflow['id']}/run"
            wait_for(
                lambda: run_trace_complete(collector.received(), trace_id, api_name, len(jobs)),
                60,
                0.2,
                "the run's spans at the collector",
            )
            outputs = lambda: sum(  # noqa: E731 - the catalog worker's spans come last
                s.name == "record outputs" for s in collector.received() if s.trace_id == trace_id
            )
            wait_for(lambda: outputs() >= len(jobs), 30, 0.2, "the catalog's spans")
        finally:
            workers.stop()
            api.stop()
            redis.stop()
        spans = collector.received()

    mine = check_run_trace(spans, trace_id, caller_span, api_name, len(jobs))
    services = {s.name: s.service for s in mine.values()}
    (start,) = [s for s in mine.values() if s.name == "start run"]
    api_service = "flowforge" if api_command == ("serve",) else "flowforge-catalog"
    assert services[api_name] == api_service
    assert start.service == (
        "flowforge" if api_command == ("serve",) else "flowforge-events-worker"
    )  # a catalog alone: StartRun went over the broker, with the request's context
    job_services = sorted(s.service for s in mine.values() if s.name.startswith("job "))
    assert job_services == [
        "flowforge-ingest-worker",
        "flowforge-transform-worker",
        "flowforge-transform-worker",
    ]
    assert {s.service for s in mine.values() if s.name.startswith("record ")} == {
        "flowforge-events-worker",
        "flowforge-catalog-worker",
    }
    assert len({s.service for s in mine.values()}) >= 5
    (tmp_path / "trace.json").write_text(
        json.dumps([s.__dict__ for s in mine.values()], indent=1, default=str)
    )


def test_one_trace_follows_a_run_in_one_process(tmp_path, span_exporter):
    """The embedded default (jobs on threads of the API process): the same tree."""
    from fastapi.testclient import TestClient

    from flowforge.app import create_app
    from tests.conftest import make_settings
    from tests.system.conftest import Platform

    exporter = span_exporter
    settings = make_settings(tmp_path)
    app = create_app(settings)
    traceparent, trace_id, caller_span = new_traceparent()
    with TestClient(app) as client:
        platform = Platform(client, settings.lake_root)
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        started = client.post(
            f"/api/workflows/{workflow['id']}/run",
            headers={**platform.headers, "traceparent": traceparent},
        )
        assert started.status_code == 202, started.text
        execution = platform.wait(started.json()["executionId"])
    app.state.database.dispose()
    assert execution["status"] == "succeeded"
    assert execution["traceId"] == trace_id
    spans = [
        Span(
            trace_id=f"{s.context.trace_id:032x}",
            span_id=f"{s.context.span_id:016x}",
            parent=f"{s.parent.span_id:016x}" if s.parent else None,
            name=s.name,
            service=s.resource.attributes.get("service.name", ""),
            attributes=dict(s.attributes or {}),
        )
        for s in exporter.get_finished_spans()
    ]
    api_name = f"POST /api/workflows/{workflow['id']}/run"
    assert run_trace_complete(spans, trace_id, api_name, 3)
    check_run_trace(
        [s for s in spans if s.trace_id == trace_id or is_run_span(s)],
        trace_id,
        caller_span,
        api_name,
        3,
    )
