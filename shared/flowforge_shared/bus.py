"""Messages between services: a named message with a JSON payload, handled by the service
that owns it, so no service calls another's code.

- The owner is served by this process (the embedded default, or several services in one
  process): it registered its handler here (:meth:`Bus.handle`), and :meth:`Bus.send` calls
  it directly, in the caller's thread; its answer or error is the caller's (a refused run
  request is a 409 at once).
- The owner runs elsewhere (services as separate processes, with a broker): the message is
  a Celery task on the owner's queue, and the owner's worker runs the same handler
  (``flowforge worker events`` for the orchestrator's). A message the broker does not take
  is kept in this process's outbox on disk and sent when the broker is back, so a request
  made during an outage is delayed, never lost. Handlers must therefore be idempotent: the
  same message may arrive twice.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flowforge_shared.errors import ServiceUnavailable
from flowforge_shared.settings import Settings

Handler = Callable[[dict[str, Any]], Any]


class Bus:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.handlers: dict[str, Handler] = {}
        self._outbox = None
        self._celery = None

    def handle(self, name: str, handler: Handler) -> None:
        """Handle ``name`` in this process (its owner is served here)."""
        self.handlers[name] = handler

    def serves(self, name: str) -> bool:
        """Whether the owner of ``name`` is served by this process (a direct call)."""
        return name in self.handlers

    def send(self, name: str, payload: dict[str, Any], *, queue: str) -> Any:
        """Deliver ``payload``: to the handler in this process (its answer is returned), else
        to ``queue`` on the broker (None: the owner handles it when its worker takes it)."""
        handler = self.handlers.get(name)
        if handler is not None:
            return handler(payload)
        if self.settings.embedded_tasks:
            raise ServiceUnavailable(
                f"cannot deliver {name}: no service of this process handles it and no broker "
                "is configured (set FLOWFORGE_BROKER_URL, or run every service in one process "
                "with `flowforge serve`)"
            )
        from flowforge_shared.telemetry import carrier

        # The sender's trace context travels with the message (kept with it in the outbox),
        # as the task's headers: the owner's handling continues the sender's trace.
        self._outbox_for().emit(
            {"name": name, "queue": queue, "payload": payload, "trace": carrier()}
        )
        return None

    def _outbox_for(self):
        if self._outbox is None:
            from flowforge_shared.celery_app import client
            from flowforge_shared.outbox import Outbox

            self._celery = client(self.settings)
            directory = self.settings.data_dir / "outbox" / "messages"
            self._outbox = Outbox(directory, self._send_now)
        return self._outbox

    def _send_now(self, message: dict[str, Any]) -> None:
        from flowforge_shared.celery_app import described, summary

        self._celery.send_task(
            message["name"],
            args=[message["payload"]],
            queue=message["queue"],
            headers=message.get("trace") or {},
            **summary(described(message["payload"])),
        )

    def ask(self, name: str, payload: dict[str, Any], *, remote: Callable[[], Any]) -> Any:
        """A question for the service that owns ``name``: answered by its handler in this
        process, else by ``remote()`` (a call to that service's internal API)."""
        handler = self.handlers.get(name)
        return handler(payload) if handler is not None else remote()
