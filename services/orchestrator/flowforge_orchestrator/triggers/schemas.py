"""Triggers on the wire. A trigger is a ``kind`` and that kind's ``settings``, validated per
kind (:data:`SETTINGS`): manual, cron, webhook and dependency now; event fits the same
shape later (a settings model)."""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError, field_validator

from flowforge_orchestrator.triggers import cron
from flowforge_shared.contracts.base import ApiModel, ApiOutModel
from flowforge_shared.errors import Unprocessable


class TriggerKind(StrEnum):
    MANUAL = "manual"
    CRON = "cron"
    WEBHOOK = "webhook"
    DEPENDENCY = "dependency"


class Misfire(StrEnum):
    """What a firing missed by more than the grace (scheduler down, machine asleep) becomes."""

    SKIP = "skip"  # not run; the next firing on time runs
    RUN_ONCE = "run_once"  # one run stands for every missed firing
    CATCH_UP = "catch_up"  # each missed firing runs, at most maxCatchUp (the latest)


class Concurrency(StrEnum):
    """What a firing becomes while the workflow still has an active run."""

    SKIP = "skip"  # recorded as skipped, with the running execution's id
    QUEUE = "queue"  # waits (recorded "queued") and starts once the run has ended
    ALLOW = "allow"  # asked for anyway: see docs/triggers.md (one active run per workflow)


class ManualSettings(ApiModel):
    """A manual trigger has no settings: it documents that people run the workflow."""


class CronSettings(ApiModel):
    expression: str = Field(
        description="5 fields (minute hour day month weekday), or 6 with seconds last"
    )
    timezone: str = Field(default="UTC", description="IANA time zone, e.g. Europe/Paris")
    misfire: Misfire = Misfire.SKIP
    max_catch_up: int = Field(default=10, ge=1, le=1000)
    concurrency: Concurrency = Concurrency.SKIP

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        try:
            expression = cron.check_expression(value)
            # Whether it ever fires does not depend on the zone ("0 0 30 2 *" never does).
            cron.next_after(expression, cron.zone("UTC"), datetime.now(UTC))
        except cron.CronError as error:
            raise ValueError(str(error)) from None
        return expression

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            cron.zone(value)
        except cron.CronError as error:
            raise ValueError(str(error)) from None
        return value


class WebhookSettings(ApiModel):
    """A webhook trigger fires on each signed ``POST /api/hooks/{triggerId}``; its secret is
    not a setting (settings are shown on every read and kept in the audit log)."""

    concurrency: Concurrency = Concurrency.SKIP


class UpstreamMode(StrEnum):
    ALL = "all"  # every upstream workflow has ended so since this trigger last fired
    ANY = "any"  # each upstream ending fires


class UpstreamStatus(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"
    ENDED = "ended"  # any of the three


class DependencySettings(ApiModel):
    """Fires when the upstream workflows end in ``status``: on each ending (``any``), or once
    each has ended so since the trigger last fired (``all``; with ``windowMinutes``, only
    endings within that many minutes count)."""

    upstream: list[str] = Field(min_length=1, max_length=20, description="workflow ids")
    mode: UpstreamMode = UpstreamMode.ALL
    status: UpstreamStatus = UpstreamStatus.SUCCEEDED
    window_minutes: int | None = Field(default=None, ge=1, le=7 * 24 * 60)
    concurrency: Concurrency = Concurrency.SKIP

    @field_validator("upstream")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("names a workflow twice")
        if any(not item or len(item) > 36 for item in value):
            raise ValueError("each upstream is a workflow id")
        return value


SETTINGS: dict[TriggerKind, type[ApiModel]] = {
    TriggerKind.MANUAL: ManualSettings,
    TriggerKind.CRON: CronSettings,
    TriggerKind.WEBHOOK: WebhookSettings,
    TriggerKind.DEPENDENCY: DependencySettings,
}
TIME_KINDS = {TriggerKind.CRON}


def validate_settings(kind: TriggerKind, settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of ``kind`` in wire form; Unprocessable naming each bad field
    (``settings.<field>``) and why."""
    model = SETTINGS[kind]
    try:
        return model.model_validate(settings).model_dump(mode="json", by_alias=True)
    except ValidationError as error:
        raise Unprocessable(
            [
                (
                    ("settings", *(str(part) for part in problem["loc"])),
                    problem["msg"].removeprefix("Value error, "),
                )
                for problem in error.errors()
            ]
        ) from None


class TriggerCreate(ApiModel):
    kind: TriggerKind
    name: str | None = Field(default=None, max_length=200)
    enabled: bool = True
    settings: dict[str, Any] = Field(default_factory=dict)


class TriggerUpdate(ApiModel):
    name: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None
    settings: dict[str, Any] | None = None
    version: int | None = Field(default=None, description="The version you read; 409 if stale")


class FireTime(ApiOutModel):
    utc: datetime
    local: str  # ISO 8601 with the zone's offset then, e.g. 2026-03-29T03:30:00+02:00


class TriggerPublic(ApiOutModel):
    id: str
    workflow_id: str
    kind: str
    name: str | None
    enabled: bool
    disabled_reason: str | None = None  # why FlowForge disabled it (an upstream was deleted)
    settings: dict[str, Any]
    next_fire_times: list[FireTime]
    version: int
    created_by: str
    created_at: datetime
    updated_at: datetime


class TriggerWithSecret(TriggerPublic):
    """A webhook trigger as created or after its secret was rotated: the only answers that
    show the secret. Keep it: it cannot be read again."""

    secret: str | None = None


class TriggerList(ApiOutModel):
    data: list[TriggerPublic]
    count: int


class FiringPublic(ApiOutModel):
    id: str
    trigger_id: str
    workflow_id: str
    fire_time: datetime
    outcome: str
    reason: str | None
    execution_id: str | None
    cause: dict[str, Any] | None = None  # a dependency firing's upstream executions
    recorded_at: datetime
    updated_at: datetime


class HookAccepted(ApiOutModel):
    """What a webhook request started: its firing, the outcome and the execution's id."""

    firing_id: str
    trigger_id: str
    workflow_id: str
    outcome: str
    reason: str | None
    execution_id: str | None


class FiringList(ApiOutModel):
    data: list[FiringPublic]
    count: int
