"""OpenLineage in and out around a real run of the three-layer workflow, over real HTTP
(the embedded app served by uvicorn):

- in: Airflow-shaped run events posted to /api/v1/lineage join FlowForge's graph where they
  name a dataset FlowForge read or wrote (FlowForge's dataset ids are taken from its own
  lineage answer, never spelt here);
- out: with FLOWFORGE_OPENLINEAGE_URL set, every run event the lineage service applied
  reaches an OpenLineage endpoint (a real HTTP server), also one that is down at first; a
  hanging endpoint does not delay a run."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from sqlalchemy import select

from flowforge_orchestrator.runs.execution_events import ENDINGS
from flowforge_orchestrator.runs.models import Execution
from tests.conftest import free_port, make_settings, served
from tests.lineage.events import POSTGRES, airflow_event, dataset
from tests.system.conftest import Platform, workflow_jobs, write_transactions
from tests.system.test_celery_run import start_cluster
from tests.system.test_lineage import recorded_events

API_KEY = "marquez-api-key-for-the-test"


@contextmanager
def flowforge(tmp_path, **settings) -> Iterator[Platform]:
    from flowforge.app import create_app

    app = create_app(make_settings(tmp_path, **settings))
    with served(app, "the embedded app") as url, httpx.Client(base_url=url, timeout=60) as client:
        platform = Platform(client, app.state.settings.lake_root)
        platform.landing = app.state.settings.landing_root
        platform.app = app
        yield platform


def lineage(platform, path: str, **params) -> dict:
    response = platform.client.get(path, params=params, headers=platform.headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_airflow_events_join_flowforges_graph_into_one(tmp_path):
    with flowforge(tmp_path) as platform:
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        assert platform.run(workflow["id"])["status"] == "succeeded"
        ours = lineage(platform, f"/api/workflows/{workflow['id']}/lineage")
        by_type = {node["type"]: node for node in ours["nodes"]}
        source, gold = by_type["source"], by_type["gold"]

        # Upstream: an Airflow task exports a PostgreSQL table into the file FlowForge reads.
        table = dataset(POSTGRES, "bank.public.transactions", columns=("id", "amount"))
        export = airflow_event(
            inputs=[table],
            outputs=[{"namespace": source["namespace"], "name": source["name"]}],
        )
        # Downstream: another DAG loads FlowForge's gold table into a reporting database.
        report = dataset(POSTGRES, "bank.reporting.customer_totals")
        load = airflow_event(
            dag_id="reporting",
            task_id="load_gold",
            namespace="default",
            inputs=[{"namespace": gold["namespace"], "name": gold["name"]}],
            outputs=[report],
        )
        for event in (
            airflow_event(event_type="START", inputs=[table], run_id=export["run"]["runId"]),
            export,
            load,
        ):
            response = platform.client.post("/api/v1/lineage", json=event, headers=platform.headers)
            assert response.status_code == 201, response.text

        postgres_id = f"{POSTGRES}:bank.public.transactions"
        report_id = f"{POSTGRES}:bank.reporting.customer_totals"
        expected = {node["id"] for node in ours["nodes"]} | {postgres_id, report_id}
        for start in (postgres_id, report_id, source["id"], gold["id"]):
            graph = lineage(platform, "/api/lineage", dataset=start, direction="both", depth=20)
            assert {node["id"] for node in graph["nodes"]} == expected, start
        graph = lineage(platform, "/api/lineage", dataset=postgres_id, direction="downstream")
        edges = {(e["source"], e["target"], e["jobId"]) for e in graph["edges"]}
        assert (postgres_id, source["id"], "airflow://airflow-prod/export_transactions.to_csv") in (
            edges
        )
        assert (gold["id"], report_id, "default/reporting.load_gold") in edges
        assert len(edges) == len(ours["edges"]) + 2
        # FlowForge's own workflow graph keeps its datasets and edges; the file's node now
        # says Airflow's task wrote it last.
        after = lineage(platform, f"/api/workflows/{workflow['id']}/lineage")
        assert {n["id"] for n in after["nodes"]} == {n["id"] for n in ours["nodes"]}
        assert after["edges"] == ours["edges"]


class Endpoint:
    """An OpenLineage HTTP endpoint (as Marquez serves it): a real server on a free port,
    in threads of this process, recording what it is sent; or hanging on every request."""

    def __init__(self, port: int, *, hang: bool = False) -> None:
        self.port = port
        self.events: list[dict] = []
        self.auth: set[str | None] = set()
        self.release = threading.Event()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if hang:
                    endpoint.release.wait(60)
                    return
                if self.path != "/api/v1/lineage":
                    self.send_response(404)
                    self.end_headers()
                    return
                endpoint.auth.add(self.headers.get("Authorization"))
                endpoint.events.append(json.loads(body))
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Endpoint:
        self.thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def event_ids(self) -> set[str]:
        return {e["run"]["facets"]["flowforge_run"]["eventId"] for e in self.events}


def applied_ids(platform) -> set[str]:
    """The eventIds of every run event FlowForge sent: the job runs' (as the orchestrator
    recorded them) and each execution's own START and ending."""
    ids = {e["run"]["facets"]["flowforge_run"]["eventId"] for e in recorded_events(platform)}
    with platform.app.state.database.session() as session:
        for execution in session.scalars(select(Execution)):
            ids.add(f"{execution.id}:START")
            if execution.status in ENDINGS:
                ids.add(f"{execution.id}:{ENDINGS[execution.status]}")
    return ids


def wait_for(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_every_applied_run_event_reaches_the_openlineage_endpoint(tmp_path):
    port = free_port()
    with (
        Endpoint(port) as endpoint,
        flowforge(
            tmp_path,
            openlineage_url=f"http://127.0.0.1:{port}",
            openlineage_api_key=API_KEY,
        ) as platform,
    ):
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        assert platform.run(workflow["id"])["status"] == "succeeded"
        expected = applied_ids(platform)
        assert len(expected) >= 9
        wait_for(lambda: endpoint.event_ids() >= expected, 30, "events not all sent")
        assert endpoint.event_ids() == expected
        assert len(endpoint.events) == len(expected)  # each once
        assert endpoint.auth == {f"Bearer {API_KEY}"}
        # Events other producers post are not forwarded (no loops between two systems).
        posted = airflow_event(inputs=[dataset(POSTGRES, "bank.public.elsewhere")])
        response = platform.client.post("/api/v1/lineage", json=posted, headers=platform.headers)
        assert response.status_code == 201
        time.sleep(1)
        assert all(e["producer"] != posted["producer"] for e in endpoint.events)


def test_an_endpoint_that_is_down_at_first_still_gets_every_event(tmp_path):
    port = free_port()  # nothing listens here yet: connections are refused
    with flowforge(
        tmp_path, openlineage_url=f"http://127.0.0.1:{port}", openlineage_retries=8
    ) as platform:
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        started = time.monotonic()
        assert platform.run(workflow["id"])["status"] == "succeeded"
        expected = applied_ids(platform)
        time.sleep(max(0.0, 2 - (time.monotonic() - started)))
        with Endpoint(port) as endpoint:
            # 8 retries back off 0.3 s doubling (~38 s in all): well within it.
            wait_for(lambda: endpoint.event_ids() >= expected, 60, "events lost while down")
            assert endpoint.event_ids() == expected
        assert platform.app.state.openlineage_outbound.dropped == 0


def test_a_hanging_endpoint_does_not_delay_a_run(tmp_path, caplog):
    port = free_port()
    with (
        Endpoint(port, hang=True) as endpoint,
        flowforge(
            tmp_path,
            openlineage_url=f"http://127.0.0.1:{port}",
            openlineage_timeout=30,
            openlineage_queue_size=3,
        ) as platform,
    ):
        write_transactions(tmp_path / "landing" / "tx.csv", 30)
        workflow = platform.create_workflow(workflow_jobs())
        started = time.monotonic()
        execution = platform.run(workflow["id"])
        took = time.monotonic() - started
        assert execution["status"] == "succeeded", execution
        # One send alone may wait 30 s per attempt: the run did not wait for any.
        assert took < 25, took
        forwarder = platform.app.state.openlineage_outbound
        # One event hangs in the sender, three wait in the queue, the rest were dropped.
        wait_for(
            lambda: forwarder.dropped == len(applied_ids(platform)) - 4,
            5,
            f"dropped {forwarder.dropped}",
        )
        assert forwarder.sent == 0
        assert "OpenLineage event dropped" in caplog.text
        endpoint.release.set()  # so the app's shutdown does not wait on it either


@pytest.fixture(autouse=True)
def _logs(caplog):
    caplog.set_level("WARNING", logger="flowforge.lineage.openlineage")


@pytest.mark.redis
def test_the_lineage_worker_sends_what_it_applies(celery_platform):
    """Served apart, `flowforge worker lineage` applies the events from its queue and sends
    each one on to the OpenLineage endpoint (here started with the worker's settings)."""
    start_cluster(celery_platform)
    celery_platform.app = celery_platform.client.app  # the API in this process
    port = free_port()
    with Endpoint(port) as endpoint:
        celery_platform.cluster.env = {
            **celery_platform.cluster.env,
            "FLOWFORGE_OPENLINEAGE_URL": f"http://127.0.0.1:{port}",
            "FLOWFORGE_OPENLINEAGE_API_KEY": API_KEY,
        }
        celery_platform.cluster.start_worker("lineage")
        write_transactions(celery_platform.landing / "tx.csv", 50)
        workflow = celery_platform.create_workflow(workflow_jobs())
        assert celery_platform.run(workflow["id"])["status"] == "succeeded"
        # The execution's START is handed over by the process that started it: here the API
        # process, which serves the lineage service too and applies it itself (unforwarded:
        # its settings name no endpoint). Every other event went through the worker.
        expected = {
            event_id for event_id in applied_ids(celery_platform) if not event_id.endswith(":START")
        }
        wait_for(
            lambda: endpoint.event_ids() >= expected,
            60,
            f"the worker did not send {expected - endpoint.event_ids()}",
        )
        assert endpoint.event_ids() == expected
        assert len(endpoint.events) == len(expected)
        assert endpoint.auth == {f"Bearer {API_KEY}"}


def test_the_gateway_routes_openlineage_events_to_the_lineage_service(tmp_path):
    """deploy/gateway.conf under Debian's nginx: /api/v1/lineage reaches the lineage service
    (the only upstream that answers here), and a body beyond its limit stops at nginx."""
    import subprocess

    from tests.system.test_stack import nginx_command

    dead = free_port()  # catalog and orchestrator: nothing listens
    with flowforge(tmp_path / "data") as platform:
        lineage_port = int(str(platform.client.base_url).rsplit(":", 1)[1].rstrip("/"))
        listen = free_port()
        command = nginx_command(
            tmp_path / "nginx",
            {"catalog": dead, "orchestrator": dead, "lineage": lineage_port},
            listen,
        )
        gateway = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{listen}"

            def up() -> bool:
                try:
                    return httpx.get(f"{url}/healthz", timeout=2).status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(up, 20, "nginx did not start")
            event = airflow_event(inputs=[dataset(POSTGRES, "bank.public.via_gateway")])
            response = httpx.post(
                f"{url}/api/v1/lineage", json=event, headers=platform.headers, timeout=30
            )
            assert response.status_code == 201, response.text
            assert httpx.get(f"{url}/api/tokens", headers=platform.headers).status_code == 502
            big = b"{" + b" " * (9 * 1024 * 1024) + b"}"
            response = httpx.post(
                f"{url}/api/v1/lineage", content=big, headers=platform.headers, timeout=30
            )
            assert response.status_code == 413
        finally:
            gateway.terminate()
            gateway.wait(10)
