"""Webhook triggers: ``POST /api/hooks/{triggerId}``, authenticated by its signature alone.

The sender signs ``timestamp + "." + body`` with the trigger's secret (HMAC-SHA256) and
sends ``X-FlowForge-Timestamp`` (Unix seconds) and ``X-FlowForge-Signature``
(``sha256=<hex>``). A request is refused (401, nothing recorded) when either header is
missing, the timestamp is more than 5 minutes old or ahead, or the signature does not
match. An accepted request becomes a firing keyed by its signature
(``unique(trigger_id, firing_key)``), so the same request received twice — a replay within
the 5 minutes, or a sender's retry — records one firing and starts one run. The firing is
settled at once by the scheduler's own :func:`~.scheduler.settle`: the run starts through
the catalog's ``REQUEST_RUN`` and ``StartRun`` exactly like a cron firing's, and a firing
left open by a crash is settled by the scheduler's next pass. When the catalog cannot say
what the workflow is (it does not answer), the recorded firing is answered 202 ``pending``
and left to the scheduler: a 5xx would have the sender send it again, signed anew, and the
retry would be a second firing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, status
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from flowforge_orchestrator.triggers import scheduler
from flowforge_orchestrator.triggers.models import Trigger, TriggerFiring
from flowforge_orchestrator.triggers.schemas import HookAccepted, TriggerKind
from flowforge_shared.bus import Bus
from flowforge_shared.contracts.runs import UUID_PATTERN
from flowforge_shared.contracts.triggers import WorkflowInfo
from flowforge_shared.db.engine import Database
from flowforge_shared.errors import ApiError, Conflict, NotFound, ServiceUnavailable
from flowforge_shared.secrets import SecretBox, SecretKeyError
from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.scheduler")

TIMESTAMP_HEADER = "X-FlowForge-Timestamp"
SIGNATURE_HEADER = "X-FlowForge-Signature"
TOLERANCE = timedelta(minutes=5)
MAX_BODY_BYTES = 1024 * 1024
_UUID = re.compile(UUID_PATTERN)


class Unauthorized(ApiError):
    """401: the request is not signed with the trigger's secret (or no longer may be)."""

    status_code = 401


class TooLarge(ApiError):
    status_code = 413


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp`` (what a sender
    computes)."""
    message = timestamp.encode("utf-8") + b"." + body
    return "sha256=" + hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def verify(
    secret: str, *, timestamp: str | None, signature: str | None, body: bytes, now: datetime
) -> None:
    """Unauthorized, saying why, unless ``signature`` signs ``body`` at a ``timestamp``
    within 5 minutes of ``now``."""
    if not timestamp:
        raise Unauthorized(f"missing {TIMESTAMP_HEADER} header (Unix seconds)")
    try:
        sent = datetime.fromtimestamp(int(timestamp.strip()), UTC)
    except (ValueError, OverflowError, OSError):
        raise Unauthorized(f"{TIMESTAMP_HEADER} must be Unix seconds, e.g. 1764990000") from None
    if now - sent > TOLERANCE:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than 5 minutes old: a late or replayed request is "
            "refused; sign it again with the current time"
        )
    if sent - now > TOLERANCE:
        raise Unauthorized(
            f"{TIMESTAMP_HEADER} is more than 5 minutes ahead: check the sender's clock"
        )
    if not signature:
        raise Unauthorized(f"missing {SIGNATURE_HEADER} header ('sha256=<hex HMAC>')")
    expected = sign(secret, timestamp, body)
    if not hmac.compare_digest(expected.encode("utf-8"), signature.strip().encode("utf-8")):
        raise Unauthorized(
            f"{SIGNATURE_HEADER} does not match: sign '<timestamp>.<body>' with HMAC-SHA256 "
            "and the trigger's secret"
        )


def receive(
    database: Database,
    bus: Bus,
    settings: Settings,
    box: SecretBox,
    *,
    trigger_id: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    info: Callable[[str], WorkflowInfo],
    now: datetime | None = None,
) -> HookAccepted:
    """Check one webhook request, record its firing and settle it (the run starts through
    the scheduler's path). NotFound, Unauthorized, Conflict (disabled trigger, replay,
    paused workflow, a run still going) start nothing."""
    now = now or datetime.now(UTC)
    if len(body) > MAX_BODY_BYTES:
        raise TooLarge(f"the body is larger than {MAX_BODY_BYTES} bytes")
    with database.session() as session:
        trigger = session.get(Trigger, trigger_id) if _UUID.match(trigger_id) else None
        if trigger is None or trigger.kind != TriggerKind.WEBHOOK or not trigger.secret:
            raise NotFound(f"no webhook trigger {trigger_id}")
        try:
            secret = box.decrypt(trigger.secret)
        except SecretKeyError:
            log.error("webhook trigger %s: its secret cannot be decrypted", trigger.id)
            raise ServiceUnavailable(
                "this trigger's secret cannot be read with the configured keys; rotate it"
            ) from None
        verify(secret, timestamp=timestamp, signature=signature, body=body, now=now)
        if not trigger.enabled:
            raise Conflict(f"webhook trigger {trigger.id} is disabled: it starts no runs")
        key = signature.strip()  # verified: sha256=<64 hex>
        firing = TriggerFiring(
            trigger_id=trigger.id,
            workflow_id=trigger.workflow_id,
            fire_time=now,
            outcome="pending",
            reason=f"webhook request signed at {timestamp.strip()}",
            firing_key=key,
        )
        session.add(firing)
        try:
            session.flush()
        except IntegrityError:
            session.rollback()
            earlier = session.scalar(
                select(TriggerFiring.id).where(
                    TriggerFiring.trigger_id == trigger.id, TriggerFiring.firing_key == key
                )
            )
            raise Conflict(
                f"this request was received already (firing {earlier}): a replayed request "
                "starts nothing"
            ) from None
        firing_id = firing.id
    not_yet = None
    try:
        scheduler.settle(database, bus, settings, firing_id, info=info)
    except ServiceUnavailable as error:
        # The firing is committed: the scheduler's next pass settles it once the catalog
        # answers. A 5xx here would have the sender sign the request again and send it (a
        # new signature, so a second firing: a second run); it is accepted, pending.
        log.warning("webhook firing %s left for the scheduler: %s", firing_id, error.message)
        not_yet = f"not started yet ({error.message}); the scheduler starts it once it can"
    with database.session() as session:
        firing = session.get(TriggerFiring, firing_id)
        reason = firing.reason
        if not_yet and firing.outcome in scheduler.OPEN:
            reason = f"{reason}; {not_yet}" if reason else not_yet
        accepted = HookAccepted(
            firing_id=firing.id,
            trigger_id=firing.trigger_id,
            workflow_id=firing.workflow_id,
            outcome=firing.outcome,
            reason=reason,
            execution_id=None if firing.outcome == "skipped" else firing.execution_id,
        )
    if accepted.outcome == "skipped":
        raise Conflict(f"no run started: {accepted.reason}")
    return accepted


async def raw_body(request: Request) -> bytes:
    """The body exactly as sent (the signature covers these bytes)."""
    return await request.body()


hooks_router = APIRouter(prefix="/hooks", tags=["triggers"])


@hooks_router.post(
    "/{trigger_id}", response_model=HookAccepted, status_code=status.HTTP_202_ACCEPTED
)
def post_hook(
    trigger_id: str,
    request: Request,
    body: Annotated[bytes, Depends(raw_body)],
    timestamp: Annotated[str | None, Header(alias=TIMESTAMP_HEADER)] = None,
    signature: Annotated[str | None, Header(alias=SIGNATURE_HEADER)] = None,
) -> HookAccepted:
    """Fire a webhook trigger. No API token: the HMAC-SHA256 signature of
    ``<timestamp>.<body>`` with the trigger's secret authenticates the request."""
    from flowforge_orchestrator.triggers.service import workflow_info

    state = request.app.state
    return receive(
        state.database,
        state.bus,
        state.settings,
        state.secret_box,
        trigger_id=trigger_id,
        timestamp=timestamp,
        signature=signature,
        body=body,
        info=lambda wid: workflow_info(state.bus, state.settings, workflow_id=wid),
    )
