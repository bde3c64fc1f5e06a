"""Triggers: create, read, change, delete (the caller commits), and the firings' history.

The orchestrator does not read the catalog's tables: whether a workflow exists is asked of
the catalog (:data:`WORKFLOW_INFO`: a direct call where it is served by this process, else
its internal API with the service secret).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy import update as sql_update
from sqlalchemy.orm import Session

from flowforge_orchestrator.triggers import cron, dependencies
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_orchestrator.triggers.schemas import (
    TIME_KINDS,
    FireTime,
    FiringPublic,
    TriggerCreate,
    TriggerKind,
    TriggerPublic,
    TriggerUpdate,
    validate_settings,
)
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.triggers import WORKFLOW_INFO, WORKFLOW_INFO_PATH, WorkflowInfo
from flowforge_shared.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from flowforge_shared.secrets import SecretBox
from flowforge_shared.settings import Settings

NEXT_COUNT = 5
_TICK = timedelta(microseconds=1)
TIMEOUT = httpx.Timeout(10.0)


def workflow_info(bus: Bus, settings: Settings, *, workflow_id: str) -> WorkflowInfo:
    """What the catalog says the workflow is; NotFound when it has none of that id."""
    answer = bus.ask(
        WORKFLOW_INFO,
        {"workflowId": workflow_id},
        remote=lambda: _remote_info(settings, workflow_id),
    )
    return WorkflowInfo.model_validate(answer)


def _remote_info(settings: Settings, workflow_id: str) -> dict:
    unknown = f"cannot tell whether workflow {workflow_id} exists"
    if not settings.catalog_url or settings.service_secret is None:
        raise ServiceUnavailable(
            f"{unknown}: this process does not serve the catalog; set FLOWFORGE_CATALOG_URL "
            "and FLOWFORGE_SERVICE_SECRET so it can ask"
        )
    url = settings.catalog_url.rstrip("/") + WORKFLOW_INFO_PATH.format(workflow_id=workflow_id)
    headers = {"Authorization": f"Bearer {settings.service_secret.get_secret_value()}"}
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT)
    except httpx.HTTPError as error:
        raise ServiceUnavailable(
            f"{unknown}: the catalog at {settings.catalog_url} does not answer "
            f"({type(error).__name__}); try again shortly"
        ) from None
    if response.status_code == 404:
        raise NotFound(f"workflow {workflow_id} not found")
    if response.status_code != 200:
        raise ServiceUnavailable(f"{unknown}: the catalog answered {response.status_code}")
    try:
        return WorkflowInfo.model_validate(response.json()).model_dump(by_alias=True)
    except (ValueError, ValidationError):
        raise ServiceUnavailable(f"{unknown}: the catalog's answer is not understood") from None


def next_fire_times(trigger: Trigger, *, now: datetime | None = None) -> list[FireTime]:
    """The next firings of an enabled time trigger, in UTC and in its own zone."""
    if trigger.kind not in TIME_KINDS or not trigger.enabled:
        return []
    tz = cron.zone(trigger.settings["timezone"])
    start = now or datetime.now(UTC)
    if trigger.next_fire_at is not None and trigger.next_fire_at > start:
        start = trigger.next_fire_at - _TICK
    times = cron.fire_times(trigger.settings["expression"], tz, start, NEXT_COUNT)
    return [FireTime(utc=time, local=time.astimezone(tz).isoformat()) for time in times]


def first_fire_at(trigger: Trigger, *, now: datetime | None = None) -> datetime | None:
    """When a (re)enabled time trigger is next due: the first firing after now (nothing
    before it is replayed)."""
    if trigger.kind not in TIME_KINDS or not trigger.enabled:
        return None
    return cron.next_after(
        trigger.settings["expression"],
        cron.zone(trigger.settings["timezone"]),
        now or datetime.now(UTC),
    )


def to_public(trigger: Trigger) -> TriggerPublic:
    return TriggerPublic(
        id=trigger.id,
        workflow_id=trigger.workflow_id,
        kind=trigger.kind,
        name=trigger.name,
        enabled=trigger.enabled,
        disabled_reason=trigger.disabled_reason,
        settings=trigger.settings,
        next_fire_times=next_fire_times(trigger),
        version=trigger.version,
        created_by=trigger.created_by,
        created_at=trigger.created_at,
        updated_at=trigger.updated_at,
    )


def snapshot(trigger: Trigger) -> dict[str, Any]:
    """What the audit log keeps of a trigger."""
    return {
        "workflowId": trigger.workflow_id,
        "kind": trigger.kind,
        "name": trigger.name,
        "enabled": trigger.enabled,
        "settings": trigger.settings,
    }


def next_runs(session: Session, *, workflow_ids: list[str]) -> list[dict[str, Any]]:
    """The earliest ``next_fire_at`` of each workflow's enabled cron triggers (an event
    trigger's is its next listing, not a run): one query grouped by workflow."""
    rows = session.execute(
        select(Trigger.workflow_id, func.min(Trigger.next_fire_at))
        .where(
            Trigger.workflow_id.in_(set(workflow_ids)),
            Trigger.kind == TriggerKind.CRON.value,
            Trigger.enabled.is_(True),
            Trigger.next_fire_at.is_not(None),
        )
        .group_by(Trigger.workflow_id)
    )
    return [{"workflow_id": wid, "next_run_at": when} for wid, when in rows]


def get_all(session: Session, *, workflow_id: str) -> list[Trigger]:
    """A workflow's triggers, oldest first."""
    return list(
        session.scalars(
            select(Trigger)
            .where(Trigger.workflow_id == workflow_id)
            .order_by(Trigger.created_at, Trigger.id)
        )
    )


def get_or_raise(session: Session, *, workflow_id: str, trigger_id: str) -> Trigger:
    """The workflow's trigger; NotFound otherwise."""
    trigger = session.get(Trigger, trigger_id)
    if trigger is None or trigger.workflow_id != workflow_id:
        raise NotFound(f"trigger {trigger_id} not found in workflow {workflow_id}")
    return trigger


def create(
    session: Session,
    *,
    workflow_id: str,
    data: TriggerCreate,
    actor: str,
    box: SecretBox | None = None,
    info: Callable[[str], WorkflowInfo] | None = None,
) -> tuple[Trigger, str | None]:
    """A new trigger (its settings validated for its kind) and, for a webhook trigger, its
    new secret in plain text (stored encrypted with ``box``); the caller commits. A
    dependency trigger's upstream workflows must exist (asked with ``info``) and close no
    cycle."""
    trigger = Trigger(
        workflow_id=workflow_id,
        kind=data.kind.value,
        name=data.name,
        enabled=data.enabled,
        settings=validate_settings(data.kind, data.settings),
        created_by=actor,
    )
    if data.kind == TriggerKind.DEPENDENCY:
        _check_dependency(session, trigger, info)
    if data.kind == TriggerKind.EVENT:
        trigger.settings = _event_settings(workflow_id, trigger.settings, info)
        trigger.watch_from = datetime.now(UTC)
    trigger.next_fire_at = first_fire_at(trigger)
    secret = None
    if data.kind == TriggerKind.WEBHOOK:
        secret = _new_secret(trigger, box)
    session.add(trigger)
    session.flush()
    return trigger, secret


def _check_dependency(
    session: Session, trigger: Trigger, info: Callable[[str], WorkflowInfo] | None
) -> None:
    if info is None:  # a wiring bug: every router passes how to ask the catalog
        raise ServiceUnavailable("cannot check a dependency trigger's upstream workflows")
    dependencies.check(
        session,
        workflow_id=trigger.workflow_id,
        settings=trigger.settings,
        info=info,
        trigger_id=trigger.id,
    )


def _event_settings(
    workflow_id: str, settings: dict[str, Any], info: Callable[[str], WorkflowInfo] | None
) -> dict[str, Any]:
    """An event trigger's settings with the CSV job that receives the file: ``jobId``, or
    the workflow's only CSV job (then written into the settings, so a job added later
    changes nothing). Unprocessable (``settings.jobId``) otherwise."""
    if info is None:  # a wiring bug: every router passes how to ask the catalog
        raise ServiceUnavailable("cannot check which job of the workflow receives the file")
    jobs = info(workflow_id).csv_jobs
    wanted = settings.get("jobId")
    if not jobs:
        raise Unprocessable(
            [
                (
                    ("settings", "jobId"),
                    "the workflow has no CSV job to receive the file: add a job whose "
                    "sourceConfig type is csv first",
                )
            ]
        )
    if wanted is None:
        if len(jobs) > 1:
            names = ", ".join(f"{job.name} ({job.id})" for job in jobs)
            raise Unprocessable(
                [
                    (
                        ("settings", "jobId"),
                        f"the workflow has {len(jobs)} CSV jobs ({names}): say which one "
                        "receives the file",
                    )
                ]
            )
        wanted = jobs[0].id
    elif wanted not in {job.id for job in jobs}:
        raise Unprocessable(
            [(("settings", "jobId"), f"{wanted} is not a CSV job of this workflow")]
        )
    return {**settings, "jobId": wanted}


def _new_secret(trigger: Trigger, box: SecretBox | None) -> str:
    if box is None:  # a wiring bug, not the caller's: every orchestrator installs a box
        raise ServiceUnavailable("this process has no secret key to store a webhook secret")
    secret = "whsec_" + secrets.token_urlsafe(32)
    trigger.secret = box.encrypt(secret)
    return secret


def reencrypt_secrets(session: Session, *, box: SecretBox) -> int:
    """Re-encrypt every stored webhook secret with the first configured key (``flowforge
    secrets rotate``); the secrets themselves do not change. The caller commits."""
    count = 0
    for trigger in session.scalars(select(Trigger).where(Trigger.secret.is_not(None))):
        trigger.secret = box.rotate(trigger.secret)
        count += 1
    session.flush()
    return count


def rotate_secret(session: Session, *, trigger: Trigger, box: SecretBox | None) -> str:
    """A new secret for a webhook trigger (the old one stops working at once); the caller
    commits. Unprocessable for any other kind."""
    if trigger.kind != TriggerKind.WEBHOOK:
        raise Unprocessable([(("kind",), f"a {trigger.kind} trigger has no secret to rotate")])
    secret = _new_secret(trigger, box)
    bump(trigger)
    session.flush()
    session.refresh(trigger)
    return secret


def _stale(trigger: Trigger, expected: int) -> Conflict:
    return Conflict(
        f"trigger {trigger.name or trigger.id} is at version {trigger.version}, you sent version "
        f"{expected}: someone changed it since you read it; reload it and try again"
    )


def take_version(session: Session, *, trigger: Trigger, expected: int) -> None:
    """Move the trigger to its next version if it is still at ``expected``; Conflict (409)
    otherwise. One conditional UPDATE (``... WHERE version = expected``): of two changes
    made from the same read, exactly one goes through (on PostgreSQL the second waits for
    the first's commit, then matches no row). The trigger is reloaded: the change applies to
    what is stored now."""
    if trigger.version != expected:
        raise _stale(trigger, expected)
    taken = session.execute(
        sql_update(Trigger)
        .where(Trigger.id == trigger.id, Trigger.version == expected)
        .values(version=Trigger.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(trigger)
    if taken.rowcount != 1:
        raise _stale(trigger, expected)


def bump(trigger: Trigger) -> None:
    """A change FlowForge makes itself (disabling a trigger): the next version, as a SQL
    increment so that it never overwrites a concurrent change's."""
    trigger.version = Trigger.version + 1


def update(
    session: Session,
    *,
    trigger: Trigger,
    data: TriggerUpdate,
    expected_version: int,
    info: Callable[[str], WorkflowInfo] | None = None,
) -> Trigger:
    """Change name, enabled or settings (the whole settings object, validated again), from
    the version the caller read (Conflict when stale). A changed schedule, or a trigger
    enabled again, is next due after now: what it missed meanwhile is not replayed (an event
    trigger: files changed before now do not fire). A dependency trigger enabled again checks
    its upstream workflows again (one deleted meanwhile is a 422)."""
    take_version(session, trigger=trigger, expected=expected_version)
    given = data.model_fields_set
    if "name" in given:
        trigger.name = data.name
    reschedule = False
    check = False
    if "enabled" in given and data.enabled is not None and data.enabled != trigger.enabled:
        trigger.enabled = data.enabled
        reschedule = True
        check = data.enabled
        if data.enabled:
            trigger.disabled_reason = None
    if "settings" in given and data.settings is not None:
        settings = validate_settings(TriggerKind(trigger.kind), data.settings)
        if trigger.kind == TriggerKind.EVENT:
            settings = _event_settings(trigger.workflow_id, settings, info)
        reschedule = reschedule or settings != trigger.settings
        check = True
        trigger.settings = settings
    if check and trigger.kind == TriggerKind.DEPENDENCY:
        _check_dependency(session, trigger, info)
    if reschedule:
        trigger.next_fire_at = first_fire_at(trigger)
        if trigger.kind == TriggerKind.EVENT:  # what arrived meanwhile is not replayed
            trigger.watch_from = datetime.now(UTC)
    session.flush()
    return trigger


def delete(session: Session, *, trigger: Trigger) -> None:
    """Remove the trigger and its firings' history."""
    session.query(TriggerFiring).filter(TriggerFiring.trigger_id == trigger.id).delete()
    session.delete(trigger)
    session.flush()


def firings(
    session: Session, *, workflow_id: str, limit: int, offset: int = 0
) -> list[TriggerFiring]:
    """A workflow's firings, newest first."""
    return list(
        session.scalars(
            select(TriggerFiring)
            .where(TriggerFiring.workflow_id == workflow_id)
            .order_by(TriggerFiring.fire_time.desc(), TriggerFiring.id)
            .limit(limit)
            .offset(offset)
        )
    )


def firing_public(firing: TriggerFiring) -> FiringPublic:
    public = FiringPublic.model_validate(firing)
    if firing.outcome == "skipped":  # no run was asked for: its reserved id means nothing
        public.execution_id = None
    return public
