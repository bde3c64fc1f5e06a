"""The lineage worker's backlog: apply what waits in the ``lineage`` queue in batches.

Every task carries one run event. When events come faster than one transaction each can
apply them, the task that runs also takes up to ``limit - 1`` of the messages waiting
behind it (``basic_get``, not acknowledged), applies them with its own event in one
transaction (:func:`.consumer.record_events`) and acknowledges them only after the commit.

Delivery stays at least once, and the effect exactly once: a message taken but not
acknowledged — the transaction failed, or the process died — goes back to the queue (at
once when the connection closes, after the broker's visibility timeout when the process
died), and the applied-once ledger makes its second delivery change nothing. A message that
is not a lineage event is put back as it came, and taking stops there.
"""

from __future__ import annotations

import logging
from typing import Any

from flowforge_lineage.graph.consumer import record_events
from flowforge_shared.contracts.tasks import LINEAGE_QUEUE, LINEAGE_RECORD_EVENT
from flowforge_shared.db.engine import Database

log = logging.getLogger(__name__)
BATCH = 200  # events per transaction at most: a fraction of a second of work


def record_with_backlog(
    database: Database, event: dict[str, Any], app, forwarder=None, *, limit: int = BATCH
) -> int:
    """Apply ``event`` and up to ``limit - 1`` events waiting in the lineage queue of
    ``app``'s broker in one transaction; queue each event applied for the first time for
    the OpenLineage endpoint (``forwarder``, or None). How many were applied first here.
    When the broker does not answer, ``event`` alone is applied: the task's own event never
    waits on the backlog."""
    with app.pool.acquire(block=True) as connection:  # this process's, kept between tasks
        taken = _take(connection, limit - 1)
        events = [event, *(_event_of(message) for message in taken)]
        try:
            applied = record_events(database, events)
        except BaseException:
            _settle(taken, done=False)
            raise
        _settle(taken, done=True)
    if forwarder is not None:
        for one, first in zip(events, applied, strict=True):
            if first:
                forwarder.submit(one)
    return sum(applied)


def _take(connection, limit: int) -> list:
    """Up to ``limit`` lineage messages waiting in the queue, not acknowledged (what was
    taken before the broker failed, if it does)."""
    taken: list = []
    try:
        connection.ensure_connection(max_retries=1)
        channel = connection.default_channel
        while len(taken) < limit:
            message = channel.basic_get(LINEAGE_QUEUE, no_ack=False)
            if message is None:
                break
            if (message.headers or {}).get("task") != LINEAGE_RECORD_EVENT or not _is_event(
                message
            ):
                message.reject(requeue=True)
                break
            taken.append(message)
    except Exception:  # noqa: BLE001 - any transport's error: the backlog waits for later
        log.warning("lineage backlog not taken: the broker did not answer", exc_info=True)
    return taken


def _settle(taken: list, *, done: bool) -> None:
    """Acknowledge what was applied, put back what was not. A message the broker does not
    hear about comes back after the visibility timeout; the ledger makes that harmless."""
    for message in taken:
        try:
            message.ack() if done else message.reject(requeue=True)
        except Exception:  # noqa: BLE001 - see the docstring
            log.warning("lineage message not settled: it comes back later", exc_info=True)


def _is_event(message) -> bool:
    try:
        return isinstance(_event_of(message), dict)
    except (TypeError, ValueError, IndexError, KeyError):
        return False


def _event_of(message) -> dict[str, Any]:
    """The event of a task message (Celery's protocol 2: ``[args, kwargs, embed]``)."""
    args, kwargs, _embed = message.decode()
    return args[0] if args else kwargs["event"]
