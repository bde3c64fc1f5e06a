"""Issue 15's leftovers, through the API on both databases (the embedded app: the catalog and
the orchestrator in one process, talking through the bus exactly as served apart):

- a workflow's status reads "scheduled" while it is active with an enabled cron trigger (the
  orchestrator tells the catalog, WORKFLOW_SCHEDULE, ordered by a sequence);
- triggers carry a version: a change from a stale read is 409, two changes from the same
  read give one 200 and one 409; the scheduler's firings do not move it;
- deleting a workflow disables the dependency triggers waiting for it (WORKFLOW_DELETED),
  saying why, audited."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from flowforge_orchestrator.triggers import scheduler as sched
from flowforge_orchestrator.triggers.models import Trigger
from flowforge_shared.contracts.tasks import CATALOG_QUEUE, EVENTS_QUEUE
from flowforge_shared.contracts.workflow_events import (
    WORKFLOW_DELETED,
    WORKFLOW_SCHEDULE,
    WorkflowDeleted,
    WorkflowSchedule,
)
from tests.catalog.factories import workflow

EVERY_NIGHT = {"kind": "cron", "settings": {"expression": "30 2 * * *"}}


def make(editor, **fields) -> dict:
    response = editor.post("/api/workflows", json=workflow(**{"status": "active", **fields}))
    assert response.status_code == 201, response.text
    return response.json()


def status(viewer, workflow_id: str) -> str:
    response = viewer.get(f"/api/workflows/{workflow_id}")
    assert response.status_code == 200, response.text
    return response.json()["status"]


def listed(viewer, wanted: str) -> set[str]:
    response = viewer.get("/api/workflows", params={"status": wanted, "limit": 500})
    assert response.status_code == 200, response.text
    return {item["id"] for item in response.json()["data"]}


def add(editor, workflow_id: str, body: dict) -> dict:
    response = editor.post(f"/api/workflows/{workflow_id}/triggers", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def patch(editor, workflow_id: str, trigger: dict, **changes):
    """A change made from ``trigger`` as read (its version)."""
    url = f"/api/workflows/{workflow_id}/triggers/{trigger['id']}"
    return editor.patch(url, json={**changes, "version": trigger["version"]})


def get_trigger(viewer, workflow_id: str, trigger_id: str) -> dict:
    response = viewer.get(f"/api/workflows/{workflow_id}/triggers/{trigger_id}")
    assert response.status_code == 200, response.text
    return response.json()


def race(calls) -> list:
    """Run the calls at the same instant, each in a thread of its own; their answers."""
    barrier = threading.Barrier(len(calls))
    answers: list = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        answers[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers


# --- the status "scheduled" -------------------------------------------------------------


def test_an_active_workflow_reads_scheduled_while_an_enabled_cron_trigger_exists(editor, viewer):
    wf = make(editor)
    wid = wf["id"]
    assert status(viewer, wid) == "active"
    nightly = add(editor, wid, EVERY_NIGHT)
    assert status(viewer, wid) == "scheduled"
    assert wid in listed(viewer, "scheduled") and wid not in listed(viewer, "active")
    # Not a change of the workflow itself: a PATCH from the version read before still goes.
    assert viewer.get(f"/api/workflows/{wid}").json()["version"] == wf["version"]

    disabled = patch(editor, wid, nightly, enabled=False)
    assert disabled.status_code == 200, disabled.text
    assert status(viewer, wid) == "active"
    assert wid in listed(viewer, "active") and wid not in listed(viewer, "scheduled")
    enabled = patch(editor, wid, disabled.json(), enabled=True)
    assert enabled.status_code == 200, enabled.text
    assert status(viewer, wid) == "scheduled"

    # A webhook trigger is no time trigger; a second cron trigger keeps it scheduled when
    # the first goes.
    add(editor, wid, {"kind": "webhook"})
    hourly = add(editor, wid, {"kind": "cron", "settings": {"expression": "0 * * * *"}})
    url = f"/api/workflows/{wid}/triggers"
    assert editor.delete(f"{url}/{enabled.json()['id']}").status_code == 204
    assert status(viewer, wid) == "scheduled"

    # Pause stops every automatic trigger: paused reads paused, and resume brings it back.
    assert editor.post(f"/api/workflows/{wid}/pause").json()["status"] == "paused"
    assert wid in listed(viewer, "paused") and wid not in listed(viewer, "scheduled")
    assert editor.post(f"/api/workflows/{wid}/resume").json()["status"] == "scheduled"

    assert editor.delete(f"{url}/{hourly['id']}").status_code == 204
    assert status(viewer, wid) == "active"


def test_a_draft_stays_a_draft_and_scheduled_cannot_be_set_by_hand(editor, viewer):
    draft = make(editor, status="draft")
    add(editor, draft["id"], EVERY_NIGHT)
    assert status(viewer, draft["id"]) == "draft"
    refused = editor.post("/api/workflows", json=workflow(status="scheduled"))
    assert refused.status_code == 422, refused.text
    assert refused.json()["detail"][0]["field"] == "status"
    wf = make(editor)
    changed = editor.patch(
        f"/api/workflows/{wf['id']}", json={"status": "scheduled", "version": wf["version"]}
    )
    assert changed.status_code == 422, changed.text


def test_a_late_or_repeated_schedule_message_never_overwrites_a_newer_one(backend, editor, viewer):
    bus = backend["app"].state.bus
    wf = make(editor)
    wid = wf["id"]
    nightly = add(editor, wid, EVERY_NIGHT)  # sequence 1: scheduled
    assert patch(editor, wid, nightly, enabled=False).status_code == 200  # 2: not
    assert status(viewer, wid) == "active"

    def deliver(sequence: int, scheduled: bool):
        message = WorkflowSchedule(
            workflowId=wid,
            sequence=sequence,
            scheduled=scheduled,
            timeTriggers=int(scheduled),
            changedAt=datetime.now(UTC),
        )
        return bus.send(WORKFLOW_SCHEDULE, message.to_wire(), queue=CATALOG_QUEUE)

    assert deliver(1, True) is False  # the first message, delivered again late
    assert status(viewer, wid) == "active"
    assert deliver(2, False) is False  # a repeat
    assert status(viewer, wid) == "active"
    assert deliver(3, True) is True  # a newer one (as the next change would send)
    assert status(viewer, wid) == "scheduled"


def test_two_triggers_disabled_at_once_leave_the_workflow_unscheduled(backend, editor, viewer):
    """Each change counts the workflow's enabled cron triggers under the row lock of its
    sequence, so the later message says what is true after both."""
    wid = make(editor)["id"]
    first, second = add(editor, wid, EVERY_NIGHT), add(editor, wid, EVERY_NIGHT)
    for _ in range(5):
        answers = race(
            [
                lambda t=first: patch(editor, wid, t, enabled=False),
                lambda t=second: patch(editor, wid, t, enabled=False),
            ]
        )
        assert [answer.status_code for answer in answers] == [200, 200], answers
        assert status(viewer, wid) == "active"
        first = patch(editor, wid, answers[0].json(), enabled=True).json()
        second = patch(editor, wid, answers[1].json(), enabled=True).json()
        assert status(viewer, wid) == "scheduled"


def test_a_schedule_the_catalog_was_not_told_is_sent_again_by_the_scheduler(
    backend, editor, viewer
):
    app = backend["app"]
    bus = app.state.bus
    wid = make(editor)["id"]
    handler = bus.handlers.pop(WORKFLOW_SCHEDULE)  # the message is lost (catalog not there)
    try:
        add(editor, wid, EVERY_NIGHT)
    finally:
        bus.handlers[WORKFLOW_SCHEDULE] = handler
    assert status(viewer, wid) == "active"
    # A cron trigger saved before workflow_schedules existed (an upgraded database).
    old = make(editor)["id"]
    with app.state.database.session() as session:
        session.add(
            Trigger(
                workflow_id=old,
                kind="cron",
                enabled=True,
                settings={"expression": "0 4 * * *", "timezone": "UTC"},
                created_by="before the upgrade",
            )
        )
    assert status(viewer, old) == "active"
    later = datetime.now(UTC) + timedelta(seconds=30)
    sched.Scheduler(app.state.database, bus, app.state.settings, clock=lambda: later).tick()
    assert status(viewer, wid) == "scheduled" and status(viewer, old) == "scheduled"


# --- a trigger's version ---------------------------------------------------------------


def test_a_trigger_change_names_the_version_it_read(editor, viewer):
    wid = make(editor)["id"]
    trigger = add(editor, wid, EVERY_NIGHT)
    assert trigger["version"] == 1
    url = f"/api/workflows/{wid}/triggers/{trigger['id']}"
    assert viewer.get(url).headers["ETag"] == '"1"'

    unnamed = editor.patch(url, json={"name": "lost"})
    assert unnamed.status_code == 428, unnamed.text
    assert "version" in unnamed.json()["detail"]
    renamed = editor.patch(url, json={"name": "nightly"}, headers={"If-Match": '"1"'})
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["version"] == 2 and renamed.headers["ETag"] == '"2"'

    stale = editor.patch(url, json={"enabled": False, "version": 1})
    assert stale.status_code == 409, stale.text
    detail = stale.json()["detail"]
    assert "version 2" in detail and "version 1" in detail and "reload" in detail
    shown = get_trigger(viewer, wid, trigger["id"])
    assert shown["enabled"] is True and shown["name"] == "nightly" and shown["version"] == 2

    # A refused change (422) takes no version.
    bad = editor.patch(url, json={"settings": {"expression": "nope"}, "version": 2})
    assert bad.status_code == 422
    assert get_trigger(viewer, wid, trigger["id"])["version"] == 2
    # A delete with a stale If-Match is refused too; without one (or fresh) it goes.
    assert editor.delete(url, headers={"If-Match": '"1"'}).status_code == 409
    assert editor.delete(url, headers={"If-Match": '"2"'}).status_code == 204


def test_two_changes_from_the_same_read_one_is_taken_one_is_409(editor, viewer):
    wid = make(editor)["id"]
    trigger = add(editor, wid, EVERY_NIGHT)
    for round_ in range(6):
        answers = race(
            [
                lambda t=trigger, n=f"a{round_}": patch(editor, wid, t, name=n),
                lambda t=trigger, n=f"b{round_}": patch(editor, wid, t, name=n),
            ]
        )
        codes = sorted(answer.status_code for answer in answers)
        assert codes == [200, 409], [answer.text for answer in answers]
        [taken] = [answer.json() for answer in answers if answer.status_code == 200]
        [refused] = [answer.json() for answer in answers if answer.status_code == 409]
        assert "someone changed it since you read it" in refused["detail"]
        shown = get_trigger(viewer, wid, trigger["id"])
        assert shown["name"] == taken["name"] and shown["version"] == trigger["version"] + 1
        trigger = shown


def test_the_scheduler_firing_a_trigger_does_not_move_its_version(backend, editor, viewer):
    app = backend["app"]
    wid = make(editor)["id"]
    trigger = add(editor, wid, EVERY_NIGHT)
    with app.state.database.session() as session:
        due = session.get(Trigger, trigger["id"]).next_fire_at
    clock = due + timedelta(seconds=1)
    scheduler = sched.Scheduler(
        app.state.database, app.state.bus, app.state.settings, clock=lambda: clock
    )
    assert scheduler.tick()["recorded"] >= 1  # other tests' triggers of this app fire too
    fired = viewer.get(f"/api/workflows/{wid}/firings").json()["data"]
    assert len(fired) == 1
    shown = get_trigger(viewer, wid, trigger["id"])
    assert shown["version"] == 1
    assert patch(editor, wid, trigger, name="still mine").status_code == 200


# --- a deleted upstream workflow -------------------------------------------------------


def test_deleting_a_workflow_disables_the_dependency_triggers_waiting_for_it(
    backend, editor, viewer, admin
):
    upstream, other = make(editor, name="Nightly extract"), make(editor)
    downstream, unrelated, third = make(editor), make(editor), make(editor)
    waiting = add(
        editor, downstream["id"], {"kind": "dependency", "settings": {"upstream": [upstream["id"]]}}
    )
    both = add(
        editor,
        unrelated["id"],
        {"kind": "dependency", "settings": {"upstream": [other["id"], upstream["id"]]}},
    )
    untouched = add(
        editor, third["id"], {"kind": "dependency", "settings": {"upstream": [other["id"]]}}
    )

    own = add(editor, upstream["id"], EVERY_NIGHT)

    assert editor.delete(f"/api/workflows/{upstream['id']}").status_code == 204

    for wid, trigger in ((downstream["id"], waiting), (unrelated["id"], both)):
        shown = get_trigger(viewer, wid, trigger["id"])
        assert shown["enabled"] is False, shown
        assert "Nightly extract" in shown["disabledReason"]
        assert upstream["id"] in shown["disabledReason"] and "deleted" in shown["disabledReason"]
        assert shown["version"] == 2
        assert shown["settings"]["upstream"] == trigger["settings"]["upstream"]  # as it was
        log = admin.get("/api/audit", params={"entityType": "trigger", "entityId": trigger["id"]})
        [entry, created] = log.json()["data"]
        assert entry["action"] == "trigger.update" and created["action"] == "trigger.create"
        assert "deleted" in str(entry) and entry["actor"] == created["actor"]
    assert get_trigger(viewer, third["id"], untouched["id"])["enabled"] is True
    with backend["app"].state.database.session() as session:  # its own: gone with it
        stored = session.get(Trigger, own["id"])
        assert stored.enabled is False and stored.next_fire_at is None

    # Enabling it again while it waits for the deleted workflow is refused, naming it.
    shown = get_trigger(viewer, downstream["id"], waiting["id"])
    again = patch(editor, downstream["id"], shown, enabled=True)
    assert again.status_code == 422, again.text
    assert upstream["id"] in again.text and "not found" in again.text
    fixed = patch(
        editor, downstream["id"], shown, enabled=True, settings={"upstream": [other["id"]]}
    )
    assert fixed.status_code == 200, fixed.text
    assert fixed.json()["enabled"] is True and fixed.json()["disabledReason"] is None

    # The message delivered again changes nothing (no second audit entry).
    message = WorkflowDeleted(
        workflowId=upstream["id"], name="Nightly extract", actor="x", deletedAt=datetime.now(UTC)
    )
    assert (
        backend["app"].state.bus.send(WORKFLOW_DELETED, message.to_wire(), queue=EVENTS_QUEUE) == []
    )
    log = admin.get("/api/audit", params={"entityType": "trigger", "entityId": both["id"]})
    assert log.json()["count"] == 2


def test_a_lost_deletion_message_is_made_up_for_by_the_scheduler(backend, editor, viewer):
    app = backend["app"]
    bus = app.state.bus
    upstream, downstream = make(editor), make(editor)
    waiting = add(
        editor, downstream["id"], {"kind": "dependency", "settings": {"upstream": [upstream["id"]]}}
    )
    handler = bus.handlers.pop(WORKFLOW_DELETED)  # the orchestrator never hears of it
    try:
        assert editor.delete(f"/api/workflows/{upstream['id']}").status_code == 204
    finally:
        bus.handlers[WORKFLOW_DELETED] = handler
    assert get_trigger(viewer, downstream["id"], waiting["id"])["enabled"] is True
    sched.Scheduler(app.state.database, bus, app.state.settings).tick()
    shown = get_trigger(viewer, downstream["id"], waiting["id"])
    assert shown["enabled"] is False and shown["version"] == 2
    assert (
        upstream["id"] in shown["disabledReason"] and "no longer exists" in shown["disabledReason"]
    )
