"""Asking an ingest worker to do something with a source database and waiting for the answer
(test a connection, list tables, describe, preview, list procedures). The API process never
opens a source connection itself when a broker is configured.

- :class:`InProcessOperations` (embedded default): the worker function runs in a thread of
  this process, bounded by the timeout. This library does not import the worker: the
  composition root (``flowforge/app.py``) puts the ingest worker's ``perform`` on
  ``app.state.database_operations`` before :func:`install_operations` runs. A catalog
  served alone without a broker has none, and answers each operation with a 503 saying so.
- :class:`CeleryOperations`: a task on the ``ingest`` queue; the worker pushes the JSON answer
  to a Redis list named in the message, and the API waits on it with BLPOP and a timeout.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from flowforge_shared.contracts.tasks import DATABASE_OPERATION, INGEST_QUEUE
from flowforge_shared.errors import ApiError
from flowforge_shared.settings import Settings

REPLY_KEY = "flowforge:reply:{id}"
# Failure kinds of an answer besides the connection failures (unreachable, refused, login...):
QUERY_FAILED = "query"  # connected, but the database refused (no such table, no permission)
REQUEST_FAILED = "request"  # the request itself cannot be carried out as given


Perform = Callable[[str, dict[str, Any], dict[str, Any], Settings], dict]
"""The worker's function: (operation, connection, args, settings) -> JSON-ready answer."""


class OperationTimeout(ApiError):
    status_code = 504


class NoWorker(ApiError):
    status_code = 503


NO_WORKER = (
    "database operations run on an ingest worker, and this catalog has neither a broker "
    "(FLOWFORGE_BROKER_URL) nor the worker in its process: set FLOWFORGE_BROKER_URL and run "
    "`flowforge worker ingest`, or run every service in one process with `flowforge serve`"
)


def _timeout_message(seconds: float) -> str:
    return f"the database operation did not finish within {seconds:.0f} s"


class InProcessOperations:
    def __init__(self, settings: Settings, perform: Perform) -> None:
        self.settings = settings
        self.perform = perform
        self.pool = ThreadPoolExecutor(4, thread_name_prefix="flowforge-db-op")

    def call(self, operation: str, connection: dict[str, Any], args: dict[str, Any]) -> dict:
        future = self.pool.submit(self.perform, operation, connection, args, self.settings)
        try:
            return future.result(timeout=self.settings.operation_timeout)
        except FutureTimeout:
            raise OperationTimeout(_timeout_message(self.settings.operation_timeout)) from None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


class CeleryOperations:
    def __init__(self, settings: Settings) -> None:
        import redis

        from flowforge_shared.celery_app import client

        self.settings = settings
        self.celery = client(settings)
        self.redis = redis.Redis.from_url(
            settings.broker_url, socket_timeout=settings.operation_timeout + 5
        )

    def call(self, operation: str, connection: dict[str, Any], args: dict[str, Any]) -> dict:
        reply = REPLY_KEY.format(id=uuid.uuid4())
        self.celery.send_task(
            DATABASE_OPERATION,
            args=[operation, connection, args, reply],
            queue=INGEST_QUEUE,
            expires=self.settings.operation_timeout,
        )
        answer = self.redis.blpop([reply], timeout=self.settings.operation_timeout)
        if answer is None:
            raise OperationTimeout(_timeout_message(self.settings.operation_timeout))
        return json.loads(answer[1])

    def close(self) -> None:
        pass


class NoWorkerOperations:
    """A catalog served alone without a broker: no worker can answer (503, saying why)."""

    def call(self, operation: str, connection: dict[str, Any], args: dict[str, Any]) -> dict:
        raise NoWorker(NO_WORKER)

    def close(self) -> None:
        pass


def install_operations(app):
    """Put the operations client on ``app.state``: through the broker when one is configured,
    else in process with the worker function the composition root put on
    ``app.state.database_operations``."""
    settings = app.state.settings
    perform = getattr(app.state, "database_operations", None)
    if not settings.embedded_tasks:
        client = CeleryOperations(settings)
    elif perform is not None:
        client = InProcessOperations(settings, perform)
    else:
        client = NoWorkerOperations()
    app.state.operations = client
    return client.close
