"""POST /api/v1/lineage over real HTTP (the embedded app served by uvicorn): OpenLineage
events from other producers are validated against the spec, applied once, and anything
else gets a 4xx naming where and what."""

from __future__ import annotations

import copy
import gzip
import json
import uuid
from collections.abc import Iterator

import httpx
import pytest
from openlineage.client.event_v2 import InputDataset, Job, Run, RunEvent, RunState
from openlineage.client.transport.http import ApiKeyTokenProvider, HttpConfig, HttpTransport

from tests.conftest import ADMIN_TOKEN, make_settings, served
from tests.lineage.events import AIRFLOW, POSTGRES, airflow_event, dataset, facet

MAX_BYTES = 64 * 1024


@pytest.fixture(scope="module")
def api(tmp_path_factory) -> Iterator[dict]:
    from flowforge.app import create_app

    app = create_app(
        make_settings(tmp_path_factory.mktemp("inbound"), openlineage_max_bytes=MAX_BYTES)
    )
    with served(app, "the embedded app") as url, httpx.Client(base_url=url, timeout=30) as client:
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        tokens = {}
        for role in ("editor", "viewer"):
            response = client.post("/api/tokens", json={"name": role, "role": role}, headers=admin)
            assert response.status_code == 201, response.text
            tokens[role] = {"Authorization": f"Bearer {response.json()['token']}"}
        yield {"url": url, "client": client, **tokens}


def post(api, body, **kwargs) -> httpx.Response:
    headers = {**api["editor"], **kwargs.pop("headers", {})}
    if isinstance(body, dict | list):
        return api["client"].post("/api/v1/lineage", json=body, headers=headers, **kwargs)
    return api["client"].post("/api/v1/lineage", content=body, headers=headers, **kwargs)


def around(api, dataset_id: str) -> dict:
    response = api["client"].get(
        "/api/lineage", params={"dataset": dataset_id, "direction": "both"}, headers=api["viewer"]
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_an_airflow_run_event_is_applied_once_and_joins_the_graph_by_dataset_name(api):
    source = dataset(POSTGRES, f"bank.public.tx_{uuid.uuid4().hex[:6]}", columns=("id", "amount"))
    target = dataset("s3://exports", f"daily/{uuid.uuid4().hex[:6]}.csv")
    event = airflow_event(inputs=[source], outputs=[target])

    first = post(api, event)
    assert first.status_code == 201, first.text
    job_id = "airflow://airflow-prod/export_transactions.to_csv"
    assert first.json() == {
        "kind": "RunEvent",
        "applied": True,
        "jobId": job_id,
        "runId": event["run"]["runId"],
    }
    again = post(api, event)
    assert again.status_code == 200, again.text
    assert again.json()["applied"] is False and "applied before" in again.json()["detail"]

    graph = around(api, f"{POSTGRES}:{source['name']}")
    assert {node["id"] for node in graph["nodes"]} == {
        f"{POSTGRES}:{source['name']}",
        f"s3://exports:{target['name']}",
    }
    assert [(e["source"], e["target"], e["jobId"], e["jobName"]) for e in graph["edges"]] == [
        (
            f"{POSTGRES}:{source['name']}",
            f"s3://exports:{target['name']}",
            job_id,
            "export_transactions.to_csv",
        )
    ]
    # A second run of the same task over another table joins the same job and target.
    other = dataset(POSTGRES, f"bank.public.acc_{uuid.uuid4().hex[:6]}")
    assert post(api, airflow_event(inputs=[other], outputs=[target])).status_code == 201
    assert len(around(api, f"s3://exports:{target['name']}")["edges"]) == 2


def test_the_openlineage_clients_own_http_transport_posts_to_flowforge(api):
    """What Airflow's or any Python producer's OpenLineage HTTP transport does, pointed at
    FlowForge with an editor's token as its api key (default endpoint api/v1/lineage)."""
    token = api["editor"]["Authorization"].removeprefix("Bearer ")
    transport = HttpTransport(
        HttpConfig(url=api["url"], auth=ApiKeyTokenProvider({"api_key": token}))
    )
    name = f"bank.public.client_{uuid.uuid4().hex[:6]}"
    event = RunEvent(
        eventType=RunState.START,
        eventTime="2026-12-05T03:00:00.000Z",
        run=Run(runId=str(uuid.uuid4())),
        job=Job(namespace="default", name="dag.task"),
        producer=AIRFLOW,
        inputs=[InputDataset(namespace=POSTGRES, name=name)],
    )
    response = transport.emit(event)
    assert response.status_code == 201
    assert around(api, f"{POSTGRES}:{name}")["root"] == f"{POSTGRES}:{name}"
    transport.close()


def test_job_and_dataset_events_are_valid_accepted_and_not_applied(api):
    name = f"bank.public.static_{uuid.uuid4().hex[:6]}"
    event = airflow_event(inputs=[dataset(POSTGRES, name)])
    job_event = {k: v for k, v in event.items() if k not in ("run", "eventType")}
    response = post(api, job_event)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "JobEvent" and response.json()["applied"] is False
    dataset_event = {
        "eventTime": event["eventTime"],
        "producer": AIRFLOW,
        "schemaURL": "https://openlineage.io/spec/2-0-2/OpenLineage.json#/$defs/DatasetEvent",
        "dataset": dataset(POSTGRES, name, columns=("id",)),
    }
    response = post(api, dataset_event)
    assert response.status_code == 202, response.text
    assert response.json()["kind"] == "DatasetEvent"
    # A run event without its run is a JobEvent as the spec reads it: said so.
    response = post(api, {k: v for k, v in event.items() if k != "run"})
    assert response.status_code == 202 and "no run" in response.json()["detail"]
    missing = api["client"].get(
        "/api/lineage", params={"dataset": f"{POSTGRES}:{name}"}, headers=api["viewer"]
    )
    assert missing.status_code == 404


def _without(path: str):
    def change(event: dict) -> None:
        *parents, last = path.split(".")
        for part in parents:
            event = event[int(part)] if part.isdigit() else event[part]
        del event[last]

    return change


def _set(path: str, value):
    def change(event: dict) -> None:
        *parents, last = path.split(".")
        for part in parents:
            event = event[int(part)] if part.isdigit() else event[part]
        event[last] = value

    return change


BROKEN = {
    "missing runId": (_without("run.runId"), "run.runId", "is required"),
    "runId not a uuid": (_set("run.runId", "run-42"), "run.runId", "must be a UUID"),
    "facet without _producer": (
        _without("run.facets.airflow._producer"),
        "run.facets.airflow._producer",
        "is required",
    ),
    "dataset facet without _schemaURL": (
        _without("inputs.0.facets.schema._schemaURL"),
        "inputs[0].facets.schema._schemaURL",
        "is required",
    ),
    "wrong eventType": (_set("eventType", "DONE"), "eventType", "must be one of START"),
    "eventTime without a zone": (
        _set("eventTime", "2026-12-05T03:00:07"),
        "eventTime",
        "RFC 3339",
    ),
    "eventTime beyond the year 9999 in UTC": (
        _set("eventTime", "9999-12-31T23:59:59-01:00"),
        "eventTime",
        "out of range",
    ),
    "eventTime not a date": (_set("eventTime", "2026-02-30T03:00:07Z"), "eventTime", "RFC 3339"),
    "producer not a URI": (_set("producer", "airflow 2.10"), "producer", "absolute URI"),
    "_schemaURL not a URI": (
        _set("run.facets.nominalTime._schemaURL", "NominalTimeRunFacet.json"),
        "run.facets.nominalTime._schemaURL",
        "absolute URI",
    ),
    "standard facet without its required field": (
        _without("run.facets.processing_engine.version"),
        "run.facets.processing_engine.version",
        "is required",
    ),
    "parent facet with a bad runId": (
        _set("run.facets.parent.run.runId", "nope"),
        "run.facets.parent.run.runId",
        "must be a UUID",
    ),
    "facet that is not an object": (
        _set("run.facets.airflow", "yes"),
        "run.facets.airflow",
        "must be an object",
    ),
    "execution parameter with an unknown key (the spec's one closed object)": (
        _set(
            "run.facets.executionParameters",
            facet("ExecutionParametersRunFacet", parameters=[{"key": "k", "colour": "red"}]),
        ),
        "run.facets.executionParameters.parameters[0].colour",
        "Extra inputs are not permitted",
    ),
    "dataset without a name": (_without("inputs.0.name"), "inputs[0].name", "is required"),
    "row count as text": (
        _set("outputs.0.outputFacets", {"outputStatistics": facet("O", rowCount="12")}),
        "outputs[0].outputFacets.outputStatistics.rowCount",
        "must be an integer",
    ),
    "null job name": (_set("job.name", None), "job.name", "must be a string, not null"),
    "job name longer than the graph keeps": (_set("job.name", "x" * 301), "job.name", "300"),
    "a NUL in a name": (_set("job.name", "a\x00b"), "job.name", "NUL"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_an_invalid_event_gets_422_saying_where_and_what_and_changes_nothing(api, case):
    change, field, message = BROKEN[case]
    name = f"bank.public.broken_{uuid.uuid4().hex[:6]}"
    event = copy.deepcopy(
        airflow_event(
            inputs=[dataset(POSTGRES, name, columns=("id",))],
            outputs=[dataset(POSTGRES, f"{name}_out")],
        )
    )
    change(event)
    response = post(api, event)
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert any(item["field"] == field and message in item["msg"] for item in detail), detail
    missing = api["client"].get(
        "/api/lineage", params={"dataset": f"{POSTGRES}:{name}"}, headers=api["viewer"]
    )
    assert missing.status_code == 404


@pytest.mark.parametrize(
    "body",
    [b"", b"{not json", b'{"eventType": "START"', "caf\xe9".encode("latin-1")],
    ids=["empty", "not json", "cut short", "not utf-8"],
)
def test_a_body_that_is_not_json_gets_400_saying_so(api, body):
    response = post(api, body, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["detail"].startswith("the body is not JSON")


def test_not_an_object_gets_422(api):
    response = post(api, [airflow_event()])
    assert response.status_code == 422
    assert response.json()["detail"][0]["msg"] == "an OpenLineage event is a JSON object"


def test_an_event_that_is_two_kinds_at_once_gets_422(api):
    event = airflow_event()
    ambiguous = {
        **{k: v for k, v in event.items() if k != "run"},
        "dataset": dataset(POSTGRES, "bank.public.t"),
    }
    response = post(api, ambiguous)
    assert response.status_code == 422
    assert "both a DatasetEvent and a JobEvent" in response.json()["detail"][0]["msg"] or (
        "both a JobEvent and a DatasetEvent" in response.json()["detail"][0]["msg"]
    )


def test_a_gzipped_event_is_read_and_a_gzip_bomb_is_refused(api):
    name = f"bank.public.gz_{uuid.uuid4().hex[:6]}"
    body = gzip.compress(json.dumps(airflow_event(inputs=[dataset(POSTGRES, name)])).encode())
    response = post(
        api, body, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
    )
    assert response.status_code == 201, response.text
    bomb = gzip.compress(b" " * (MAX_BYTES * 20))
    assert len(bomb) < MAX_BYTES
    response = post(api, bomb, headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413, response.text
    assert "larger than" in response.json()["detail"]
    response = post(api, body, headers={"Content-Encoding": "br"})
    assert response.status_code == 415 and "gzip" in response.json()["detail"]


def test_an_event_larger_than_the_limit_gets_413_declared_or_streamed(api):
    event = airflow_event()
    event["run"]["facets"]["airflow"]["padding"] = "x" * (MAX_BYTES + 1)
    body = json.dumps(event).encode()
    response = post(api, body, headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text
    assert "FLOWFORGE_OPENLINEAGE_MAX_BYTES" in response.json()["detail"]

    def chunks():  # no Content-Length: sent chunked
        for start in range(0, len(body), 8192):
            yield body[start : start + 8192]

    response = post(api, chunks(), headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.text


def test_posting_needs_an_editors_token(api):
    event = airflow_event()
    response = api["client"].post("/api/v1/lineage", json=event)
    assert response.status_code == 401
    response = api["client"].post("/api/v1/lineage", json=event, headers=api["viewer"])
    assert response.status_code == 403 and "editor" in response.json()["detail"]


@pytest.mark.parametrize("depth", [150, 900, 5000])
def test_deeply_nested_json_gets_a_4xx_never_a_500(api, depth):
    event = json.dumps(airflow_event(inputs=[dataset(POSTGRES, f"bank.public.deep_{depth}")]))
    body = event[:-1] + ', "deep": ' + "[" * depth + "]" * depth + "}"
    headers = {"Content-Type": "application/json"}
    response = post(api, body.encode(), headers=headers)
    assert response.status_code in (400, 422), response.text
    if response.status_code == 422:
        assert "nested deeper than 100 levels" in response.json()["detail"][0]["msg"]
    # Any JSON route: the shared check of stored values no longer fails on it either.
    response = api["client"].post(
        "/api/workflows", content=body.encode(), headers={**api["editor"], **headers}
    )
    assert 400 <= response.status_code < 500, response.text
