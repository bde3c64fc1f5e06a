"""Every run event the lineage service applies, also sent to an OpenLineage HTTP endpoint
(Marquez, DataHub, OpenMetadata) when ``FLOWFORGE_OPENLINEAGE_URL`` is set.

Sending never blocks or fails a run. In the embedded default the bus calls the lineage
consumer inline, in the thread that handles a run's events, so :meth:`Forwarder.submit` only
puts the event on a bounded queue (it never waits, never raises); one daemon thread sends
from it with the openlineage-python client's HTTP transport (``HttpTransport``), whose
urllib3 retry re-sends on a refused connection, a timeout or a 5xx with exponential backoff
(``FLOWFORGE_OPENLINEAGE_RETRIES`` retries, 0.3 s doubling). An event still unsent after
them, or that finds the queue full (``FLOWFORGE_OPENLINEAGE_QUEUE_SIZE``: a dead or slow
endpoint), is dropped and counted; the log says how many, at most once a minute, and at
shutdown how many were left unsent. Delivery is at most once: the graph, not the endpoint,
is FlowForge's record.

Why a queue and a thread of our own rather than the client's ``AsyncHttpTransport``: its
queue holds up to a million events by default and re-orders completions behind their START,
and it runs an asyncio loop per process; one thread over the plain transport is a few lines
whose memory bound, retry budget and drop count are ours to state and test.

Only events FlowForge applied for the first time are sent (a replay is not sent twice);
events other producers post to ``/api/v1/lineage`` are not (see
:mod:`flowforge_lineage.openlineage.service`)."""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Any
from urllib.parse import urljoin, urlsplit

from openlineage.client.transport.http import (
    ApiKeyTokenProvider,
    HttpConfig,
    HttpTransport,
    TokenProvider,
)
from openlineage.client.transport.http_common import DEFAULT_RETRY_CONFIG

from flowforge_shared.settings import Settings

log = logging.getLogger("flowforge.lineage.openlineage")
REPORT_EVERY = 60.0  # seconds between two log lines about dropped events
_STOP = object()


class Forwarder:
    """A bounded queue of events and the thread that sends them (started on first use)."""

    def __init__(
        self,
        transport: HttpTransport,
        *,
        queue_size: int,
        where: str,
        report_every: float = REPORT_EVERY,
    ) -> None:
        self.transport = transport
        self.where = where
        self.report_every = report_every
        self.sent = 0
        self.dropped = 0
        self._reported_dropped = 0
        self._reported_at = 0.0
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    def submit(self, event: dict[str, Any]) -> bool:
        """Queue one event to send; False (counted, logged) when the queue is full or the
        forwarder is closed. Never blocks, never raises."""
        try:
            if self._closed:
                return self._drop("the forwarder is closed")
            self._start()
            self._queue.put_nowait(event)
            return True
        except queue.Full:
            return self._drop("its queue is full (the endpoint is down or slow)")
        except Exception:  # noqa: BLE001 - forwarding must never fail a run
            log.exception("OpenLineage event not queued for %s", self.where)
            return self._drop("it could not be queued")

    def close(self, timeout: float = 5.0) -> None:
        """Stop after sending what is queued, waiting at most ``timeout`` seconds; what is
        left is counted as dropped."""
        self._closed = True
        deadline = time.monotonic() + timeout
        thread = self._thread
        stop_queued = False
        if thread is not None:
            try:
                self._queue.put(_STOP, timeout=timeout)
                stop_queued = True
            except queue.Full:
                pass
            thread.join(max(0.0, deadline - time.monotonic()))
        still_running = thread is not None and thread.is_alive()
        left = self._queue.qsize() - (1 if stop_queued and still_running else 0)
        if left > 0:
            with self._lock:
                self.dropped += left
            log.warning("%d OpenLineage event(s) left unsent to %s at shutdown", left, self.where)
        self._report(force=True)
        self.transport.close()

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(
                    target=self._run, name="openlineage-outbound", daemon=True
                )
                thread.start()
                self._thread = thread

    def _run(self) -> None:
        while True:
            event = self._queue.get()
            if event is _STOP:
                return
            try:
                self.transport.emit(event)
            except Exception as error:  # noqa: BLE001 - retried by the transport already
                self._drop(f"the endpoint did not take it after the retries ({error})")
            else:
                self.sent += 1
            self._report()

    def _drop(self, why: str) -> bool:
        with self._lock:
            self.dropped += 1
            first = self.dropped == 1
        if first:
            log.warning("OpenLineage event dropped, not sent to %s: %s", self.where, why)
        self._report()
        return False

    def _report(self, force: bool = False) -> None:
        now = time.monotonic()
        with self._lock:
            new = self.dropped - self._reported_dropped
            if new <= 0 or (not force and now - self._reported_at < self.report_every):
                return
            self._reported_dropped = self.dropped
            self._reported_at = now
        log.warning(
            "%d OpenLineage event(s) dropped, not sent to %s (%d in all, %d sent)",
            new,
            self.where,
            self.dropped,
            self.sent,
        )


def transport_for(settings: Settings) -> HttpTransport:
    """The openlineage-python HTTP transport to ``FLOWFORGE_OPENLINEAGE_URL``."""
    key = settings.openlineage_api_key
    return HttpTransport(
        HttpConfig(
            url=str(settings.openlineage_url),
            endpoint=settings.openlineage_endpoint,
            timeout=settings.openlineage_timeout,
            auth=ApiKeyTokenProvider({"api_key": key.get_secret_value()})
            if key is not None and key.get_secret_value()
            else TokenProvider({}),
            retry={
                **DEFAULT_RETRY_CONFIG,
                "total": settings.openlineage_retries,
                "read": settings.openlineage_retries,
                "connect": settings.openlineage_retries,
            },
        )
    )


def forwarder_for(settings: Settings) -> Forwarder | None:
    """A forwarder to ``FLOWFORGE_OPENLINEAGE_URL``, or None when it is not set."""
    if not settings.openlineage_url:
        return None
    transport = transport_for(settings)
    # Where it goes, as the transport joins it; without a user or password in the URL.
    where = urlsplit(urljoin(transport.url, transport.endpoint))
    where = where._replace(netloc=where.netloc.rpartition("@")[2]).geturl()
    return Forwarder(transport, queue_size=settings.openlineage_queue_size, where=where)


def install_outbound(app) -> Any:
    """Put the forwarder (or None) on ``app.state.openlineage_outbound`` for the lineage
    consumer; it is closed with the app."""
    forwarder = forwarder_for(app.state.settings)
    app.state.openlineage_outbound = forwarder
    return forwarder.close if forwarder is not None else None
