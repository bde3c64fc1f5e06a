"""Triggers on the wire. A trigger is a ``kind`` and that kind's ``settings``, validated per
kind (:data:`SETTINGS`): manual, cron, webhook, dependency and event."""

from __future__ import annotations

import fnmatch
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import PurePosixPath, PureWindowsPath
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
    EVENT = "event"


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


class EventSettings(ApiModel):
    """Fires once for each file that arrives under ``prefix`` (a folder of the landing area:
    the local landing directory, or ``<storage root>/landing`` on S3) whose name matches
    ``pattern``; the run's CSV job ``jobId`` reads that file (``fileConfig.filePath``). A
    file counts once its last change is ``settleSeconds`` old (it is no longer being
    written). Files already there when the trigger is created (or enabled again, or its
    settings changed) do not fire unless ``includeExisting``."""

    prefix: str = Field(
        default="",
        max_length=512,
        description="folder inside the landing area, e.g. 'incoming/' ('' = all of it)",
    )
    pattern: str = Field(
        default="*", min_length=1, max_length=200, description="glob on the file name, e.g. *.csv"
    )
    recursive: bool = Field(default=False, description="also look in the prefix's subfolders")
    job_id: str | None = Field(
        default=None,
        max_length=36,
        description="the CSV job that reads the file; needed when the workflow has several",
    )
    include_existing: bool = False
    settle_seconds: int = Field(default=10, ge=0, le=3600)
    poll_seconds: int = Field(
        default=5, ge=0, le=3600, description="list the prefix at most this often (0: every pass)"
    )
    # A file is data, not a tick: by default each one waits its turn rather than being skipped.
    concurrency: Concurrency = Concurrency.QUEUE

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        value = value.strip()
        problem = prefix_problem(value)
        if problem:
            raise ValueError(problem)
        return "" if value in ("", ".", "./") else value.strip("/") + "/"

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        if "/" in value or "\\" in value:
            raise ValueError("matches file names only: put folders in prefix")
        if any(ord(char) < 32 for char in value):
            raise ValueError("contains a control character")
        fnmatch.translate(value)
        return value


def prefix_problem(prefix: str) -> str | None:
    """Why ``prefix`` cannot name a folder inside the landing area, or None."""
    if any(ord(char) < 32 or ord(char) == 127 for char in prefix):
        return "contains a control character"
    if "\\" in prefix:
        return "contains a backslash: use '/' between folders"
    if "://" in prefix:
        return "is a URL: give a folder relative to the landing area, e.g. 'incoming/'"
    if PurePosixPath(prefix).is_absolute() or PureWindowsPath(prefix).drive:
        return "is absolute: give a folder relative to the landing area, e.g. 'incoming/'"
    if ".." in PurePosixPath(prefix).parts:
        return "contains '..': the prefix must stay inside the landing area"
    return None


SETTINGS: dict[TriggerKind, type[ApiModel]] = {
    TriggerKind.MANUAL: ManualSettings,
    TriggerKind.CRON: CronSettings,
    TriggerKind.WEBHOOK: WebhookSettings,
    TriggerKind.DEPENDENCY: DependencySettings,
    TriggerKind.EVENT: EventSettings,
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


def _settings_doc() -> str:
    """What the OpenAPI document says of ``settings``: each kind's fields (the models that
    validate them, :data:`SETTINGS`)."""
    kinds = []
    for kind, model in SETTINGS.items():
        fields = ", ".join(
            f"{info.alias or name}{'' if info.is_required() else '?'}"
            for name, info in model.model_fields.items()
        )
        kinds.append(f"{kind.value}: {{{fields}}}" if fields else f"{kind.value}: {{}}")
    return "The settings of the trigger's kind (see docs/triggers.md) — " + "; ".join(kinds)


class TriggerCreate(ApiModel):
    kind: TriggerKind
    name: str | None = Field(default=None, max_length=200)
    enabled: bool = True
    # No OpenAPI examples: the fuzz test (schemathesis) cannot combine its own requests
    # with a schema's examples; the description names each kind's fields.
    settings: dict[str, Any] = Field(default_factory=dict, description=_settings_doc())


class TriggerUpdate(ApiModel):
    name: str | None = Field(default=None, max_length=200)
    enabled: bool | None = None
    settings: dict[str, Any] | None = Field(
        default=None, description="the whole settings object, validated again: " + _settings_doc()
    )
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
    # a dependency firing's upstream executions; an event firing's file (path, size,
    # modified, jobId)
    cause: dict[str, Any] | None = None
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


class NextRun(ApiOutModel):
    workflow_id: str
    next_run_at: datetime = Field(
        description="the earliest next firing of its enabled cron triggers"
    )


class NextRunList(ApiOutModel):
    data: list[NextRun]
