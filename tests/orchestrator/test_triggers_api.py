"""The triggers API on both databases: kinds and settings validated (422 naming the field
and why), nextFireTimes on every read, audit entries for every change."""

from __future__ import annotations

from datetime import datetime

import pytest

from tests.catalog.factories import workflow


@pytest.fixture
def wf(editor) -> dict:
    response = editor.post("/api/workflows", json=workflow(status="active"))
    assert response.status_code == 201, response.text
    return response.json()


def cron(**settings) -> dict:
    return {"kind": "cron", "settings": {"expression": "30 2 * * *", **settings}}


def test_cron_trigger_round_trip_with_next_fire_times_in_zone_and_utc(editor, viewer, wf):
    url = f"/api/workflows/{wf['id']}/triggers"
    created = editor.post(url, json=cron(timezone="Europe/Paris", misfire="catch_up"))
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["kind"] == "cron" and body["enabled"] is True
    assert body["settings"] == {
        "expression": "30 2 * * *",
        "timezone": "Europe/Paris",
        "misfire": "catch_up",
        "maxCatchUp": 10,
        "concurrency": "skip",
    }
    times = body["nextFireTimes"]
    assert len(times) == 5
    for time in times:
        local = datetime.fromisoformat(time["local"])
        assert (local.hour, local.minute) in {(2, 30), (3, 30)}  # 03:30 on spring-forward day
        assert datetime.fromisoformat(time["utc"].replace("Z", "+00:00")) == local
    assert viewer.get(f"{url}/{body['id']}").json()["nextFireTimes"] == times
    listed = viewer.get(url).json()
    assert listed["count"] == 1 and listed["data"][0]["id"] == body["id"]


@pytest.mark.parametrize(
    ("settings", "field", "words"),
    [
        ({"expression": "61 * * * *"}, "settings.expression", "out of range"),
        ({"expression": "* * *"}, "settings.expression", "5 fields"),
        ({"expression": "0 0 30 2 *"}, "settings.expression", "does not fire"),
        ({"expression": "0 3 * * *", "timezone": "Mars/Olympus"}, "settings.timezone", "IANA"),
        ({"expression": "0 3 * * *", "misfire": "sometimes"}, "settings.misfire", "skip"),
        ({"expression": "0 3 * * *", "maxCatchUp": 0}, "settings.maxCatchUp", "greater"),
        ({"expression": "0 3 * * *", "colour": "red"}, "settings.colour", "not permitted"),
        ({}, "settings.expression", "required"),
    ],
)
def test_bad_cron_settings_are_422_naming_the_field(editor, wf, settings, field, words):
    response = editor.post(
        f"/api/workflows/{wf['id']}/triggers", json={"kind": "cron", "settings": settings}
    )
    assert response.status_code == 422, response.text
    problems = response.json()["detail"]
    assert any(p["field"] == field and words in p["msg"] for p in problems), problems


def test_unknown_kind_and_unknown_workflow(editor, wf):
    response = editor.post(f"/api/workflows/{wf['id']}/triggers", json={"kind": "lunar"})
    assert response.status_code == 422
    missing = editor.post("/api/workflows/nope/triggers", json=cron())
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert editor.get("/api/workflows/nope/triggers").status_code == 404
    assert editor.get("/api/workflows/nope/firings").status_code == 404
    other = editor.get(f"/api/workflows/{wf['id']}/triggers/unknown")
    assert other.status_code == 404


def test_manual_trigger_has_no_settings_and_no_fire_times(editor, wf):
    url = f"/api/workflows/{wf['id']}/triggers"
    created = editor.post(url, json={"kind": "manual", "name": "people press run"})
    assert created.status_code == 201, created.text
    assert created.json()["nextFireTimes"] == []
    refused = editor.post(url, json={"kind": "manual", "settings": {"expression": "* * * * *"}})
    assert refused.status_code == 422


def test_patch_disable_reschedule_delete_are_audited(editor, admin, viewer, wf):
    url = f"/api/workflows/{wf['id']}/triggers"
    trigger = editor.post(url, json=cron()).json()
    item = f"{url}/{trigger['id']}"
    disabled = editor.patch(item, json={"enabled": False, "version": 1})
    assert disabled.status_code == 200 and disabled.json()["nextFireTimes"] == []
    bad = editor.patch(item, json={"settings": {"expression": "0 0 * *"}, "version": 2})
    assert bad.status_code == 422 and bad.json()["detail"][0]["field"] == "settings.expression"
    changed = editor.patch(
        item,
        json={"enabled": True, "settings": {"expression": "15 4 * * 1", "timezone": "UTC"}},
        headers={"If-Match": '"2"'},
    )
    assert changed.status_code == 200, changed.text
    for time in changed.json()["nextFireTimes"]:
        at = datetime.fromisoformat(time["local"])
        assert (at.weekday(), at.hour, at.minute) == (0, 4, 15)
    assert viewer.patch(item, json={"enabled": False, "version": 3}).status_code == 403
    assert editor.delete(item).status_code == 204
    assert editor.get(item).status_code == 404
    log = admin.get("/api/audit", params={"entityType": "trigger", "entityId": trigger["id"]})
    actions = [entry["action"] for entry in log.json()["data"]]
    assert actions == ["trigger.delete", "trigger.update", "trigger.update", "trigger.create"]


def test_firings_of_a_workflow_start_empty(viewer, wf):
    response = viewer.get(f"/api/workflows/{wf['id']}/firings")
    assert response.status_code == 200 and response.json() == {"data": [], "count": 0}


def test_next_runs_of_a_page_of_workflows(editor, viewer, wf):
    """The workflow list's "next run": per workflow the earliest next firing of its enabled
    cron triggers, the first of nextFireTimes; none for a workflow without one."""
    other = editor.post("/api/workflows", json=workflow(status="active")).json()
    url = f"/api/workflows/{wf['id']}/triggers"
    late = editor.post(url, json=cron(expression="0 23 * * *")).json()
    early = editor.post(url, json=cron(expression="0 1 * * *")).json()
    hook = editor.post(url, json={"kind": "webhook", "settings": {}})
    assert hook.status_code == 201
    answer = viewer.get("/api/triggers/next-runs", params={"workflowId": [wf["id"], other["id"]]})
    assert answer.status_code == 200, answer.text
    expected = min(late["nextFireTimes"][0]["utc"], early["nextFireTimes"][0]["utc"])
    [row] = answer.json()["data"]
    assert row["workflowId"] == wf["id"]
    parse = lambda text: datetime.fromisoformat(text.replace("Z", "+00:00"))  # noqa: E731
    assert parse(row["nextRunAt"]) == parse(expected)
    # A disabled trigger does not count; with none left enabled, the workflow has no next run.
    for trigger in (late, early):
        patched = editor.patch(f"{url}/{trigger['id']}", json={"enabled": False, "version": 1})
        assert patched.status_code == 200, patched.text
    answer = viewer.get("/api/triggers/next-runs", params={"workflowId": wf["id"]})
    assert answer.json()["data"] == []
    assert viewer.get("/api/triggers/next-runs").status_code == 422
