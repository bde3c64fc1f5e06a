"""Webhook triggers over real HTTP (the embedded app served by uvicorn): a signed request
starts exactly one run through the scheduler's path; a bad or missing signature, a stale
or future timestamp, an unknown or disabled trigger, a paused workflow and a replay are
clear 4xx answers that start nothing; the secret is shown once and never read back."""

from __future__ import annotations

import json
import time
import uuid

import httpx
import pytest
from sqlalchemy import func, select

from flowforge_orchestrator.runs.models import Execution
from flowforge_orchestrator.triggers.models import Trigger
from flowforge_orchestrator.triggers.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from tests.tiny_platform import HEADERS, make_workflow, served_tiny, wait_ended


@pytest.fixture(params=["sqlite", "postgres"])
def platform(request, tmp_path):
    url = request.getfixturevalue("fresh_postgres_url") if request.param == "postgres" else None
    with served_tiny(tmp_path, url, scheduler_embedded=False) as served_app:
        yield served_app


def add_webhook(client, workflow_id: str) -> dict:
    response = client.post(
        f"/api/workflows/{workflow_id}/triggers", json={"kind": "webhook"}, headers=HEADERS
    )
    assert response.status_code == 201, response.text
    trigger = response.json()
    assert trigger["secret"].startswith("whsec_")
    return trigger


def signed(secret: str, body: bytes, *, at: int | None = None) -> dict:
    timestamp = str(int(time.time()) if at is None else at)
    return {
        TIMESTAMP_HEADER: timestamp,
        SIGNATURE_HEADER: sign(secret, timestamp, body),
        "Content-Type": "application/json",
    }


def hook(client, trigger_id: str, body: bytes, headers: dict) -> httpx.Response:
    return client.post(f"/api/hooks/{trigger_id}", content=body, headers=headers)


def executions(app, workflow_id: str) -> int:
    with app.state.database.session() as session:
        return session.scalar(
            select(func.count()).select_from(Execution).where(Execution.workflow_id == workflow_id)
        )


def firings(client, workflow_id: str) -> list[dict]:
    response = client.get(f"/api/workflows/{workflow_id}/firings", headers=HEADERS)
    assert response.status_code == 200, response.text
    return response.json()["data"]


def test_a_signed_request_starts_exactly_one_run_and_a_replay_starts_none(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_webhook(client, workflow_id)
    body = json.dumps({"event": "export-ready"}).encode()
    headers = signed(trigger["secret"], body)
    response = hook(client, trigger["id"], body, headers)  # no API token at all
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["outcome"] == "started" and accepted["triggerId"] == trigger["id"]
    execution = wait_ended(client, accepted["executionId"])
    assert execution["status"] == "succeeded", execution
    assert execution["trigger"] == "webhook"
    assert execution["cause"]["triggerId"] == trigger["id"]
    assert execution["cause"]["firingId"] == accepted["firingId"]

    replay = hook(client, trigger["id"], body, headers)  # the same request, within 5 minutes
    assert replay.status_code == 409, replay.text
    assert "received already" in replay.json()["detail"]
    assert executions(app, workflow_id) == 1
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "started" and firing["executionId"] == accepted["executionId"]


@pytest.mark.parametrize(
    "case",
    ["bad signature", "no signature", "no timestamp", "stale", "future", "not a number", "body"],
)
def test_a_request_not_signed_now_with_the_secret_is_401_and_starts_nothing(platform, case):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_webhook(client, workflow_id)
    body = b'{"event": "x"}'
    now = int(time.time())
    headers = {
        "bad signature": signed("whsec_wrong", body),
        "no signature": {TIMESTAMP_HEADER: str(now)},
        "no timestamp": {SIGNATURE_HEADER: sign(trigger["secret"], str(now), body)},
        "stale": signed(trigger["secret"], body, at=now - 301),
        "future": signed(trigger["secret"], body, at=now + 301),
        "not a number": {TIMESTAMP_HEADER: "yesterday", SIGNATURE_HEADER: "sha256=00"},
        "body": signed(trigger["secret"], b'{"event": "y"}'),  # signed another body
    }[case]
    response = hook(client, trigger["id"], body, headers)
    assert response.status_code == 401, response.text
    assert response.json()["detail"]
    assert executions(app, workflow_id) == 0
    assert firings(client, workflow_id) == []


def test_unknown_disabled_and_paused_are_clear_4xx_and_start_nothing(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_webhook(client, workflow_id)
    body = b"{}"
    for unknown in (str(uuid.uuid4()), "not-an-id"):
        response = hook(client, unknown, body, signed(trigger["secret"], body))
        assert response.status_code == 404, response.text
    cron = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "cron", "settings": {"expression": "0 0 * * *"}},
        headers=HEADERS,
    ).json()
    assert cron["secret"] is None
    response = hook(client, cron["id"], body, signed(trigger["secret"], body))
    assert response.status_code == 404, response.text  # not a webhook trigger

    path = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"
    off = client.patch(path, json={"enabled": False, "version": 1}, headers=HEADERS)
    assert off.status_code == 200, off.text
    response = hook(client, trigger["id"], body, signed(trigger["secret"], body))
    assert response.status_code == 409 and "disabled" in response.json()["detail"]
    on = client.patch(path, json={"enabled": True, "version": 2}, headers=HEADERS)
    assert on.status_code == 200, on.text

    assert client.post(f"/api/workflows/{workflow_id}/pause", headers=HEADERS).status_code == 200
    response = hook(client, trigger["id"], body, signed(trigger["secret"], body))
    assert response.status_code == 409 and "paused" in response.json()["detail"]
    assert executions(app, workflow_id) == 0
    [firing] = firings(client, workflow_id)  # recorded, with why it started nothing
    assert firing["outcome"] == "skipped" and firing["executionId"] is None


def test_the_secret_is_shown_once_stored_encrypted_and_rotated(platform):
    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_webhook(client, workflow_id)
    secret = trigger["secret"]
    path = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"
    reads = [
        client.get(path, headers=HEADERS).text,
        client.get(f"/api/workflows/{workflow_id}/triggers", headers=HEADERS).text,
        client.patch(path, json={"name": "partner", "version": 1}, headers=HEADERS).text,
        client.get("/api/audit", params={"limit": 100}, headers=HEADERS).text,
    ]
    assert all(secret not in text for text in reads)
    assert '"secret":null' in reads[0].replace(" ", "") or '"secret"' not in reads[0]
    with app.state.database.session() as session:
        stored = session.get(Trigger, trigger["id"]).secret
    assert stored and secret not in stored
    assert app.state.secret_box.decrypt(stored) == secret

    rotated = client.post(f"{path}/rotate-secret", headers=HEADERS)
    assert rotated.status_code == 200, rotated.text
    new_secret = rotated.json()["secret"]
    assert new_secret != secret
    body = b"{}"
    assert hook(client, trigger["id"], body, signed(secret, body)).status_code == 401
    response = hook(client, trigger["id"], body, signed(new_secret, body))
    assert response.status_code == 202, response.text
    wait_ended(client, response.json()["executionId"])
    answer = client.get("/api/audit", params={"limit": 100}, headers=HEADERS)
    assert answer.status_code == 200, answer.text
    audit = answer.text
    assert "trigger.create" in audit
    assert secret not in audit and new_secret not in audit and "trigger.rotate_secret" in audit
    from tests import conftest  # every log line this test session saw

    logged = [text for text in conftest.SEEN_TEXTS if not text.startswith("{")]
    assert logged and not [text for text in logged if secret in text or new_secret in text]
    cron = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "cron", "settings": {"expression": "0 0 * * *"}},
        headers=HEADERS,
    ).json()
    refused = client.post(
        f"/api/workflows/{workflow_id}/triggers/{cron['id']}/rotate-secret", headers=HEADERS
    )
    assert refused.status_code == 422, refused.text


def test_webhook_settings_are_validated(platform):
    _, client = platform
    workflow_id = make_workflow(client)
    response = client.post(
        f"/api/workflows/{workflow_id}/triggers",
        json={"kind": "webhook", "settings": {"secret": "mine"}},
        headers=HEADERS,
    )
    assert response.status_code == 422
    assert "settings" in json.dumps(response.json())


def test_a_signed_request_the_catalog_cannot_confirm_yet_is_accepted_and_runs_later(
    platform, monkeypatch
):
    """The catalog does not answer when a signed request arrives: the firing is recorded, so
    the answer is 202 ``pending`` with the execution id the run will have, never a 5xx that
    has the sender sign and send again (a new signature: a second firing, a second run).
    The scheduler's next pass starts it once the catalog answers; a replay starts nothing."""
    from flowforge_orchestrator.triggers import service
    from flowforge_orchestrator.triggers.scheduler import Scheduler
    from flowforge_shared.errors import ServiceUnavailable

    app, client = platform
    workflow_id = make_workflow(client)
    trigger = add_webhook(client, workflow_id)

    def catalog_down(*_args, **_kwargs):
        raise ServiceUnavailable("the catalog at http://catalog:8000 does not answer")

    monkeypatch.setattr(service, "workflow_info", catalog_down)
    body = b'{"event": "export-ready"}'
    headers = signed(trigger["secret"], body)
    response = hook(client, trigger["id"], body, headers)
    assert response.status_code == 202, response.text
    accepted = response.json()
    assert accepted["outcome"] == "pending" and accepted["executionId"], accepted
    assert "catalog" in accepted["reason"], accepted
    assert executions(app, workflow_id) == 0
    monkeypatch.undo()

    state = app.state
    assert Scheduler(state.database, state.bus, state.settings).run_pass()["settled"] == 1
    execution = wait_ended(client, accepted["executionId"])
    assert execution["status"] == "succeeded" and execution["trigger"] == "webhook", execution
    assert hook(client, trigger["id"], body, headers).status_code == 409
    assert executions(app, workflow_id) == 1
    [firing] = firings(client, workflow_id)
    assert firing["outcome"] == "started" and firing["executionId"] == accepted["executionId"]
