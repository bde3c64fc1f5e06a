"""The exception tree of FlowForge. Every error carries a message a user can act on.

FlowForgeError
├── ApiError                  mapped to an HTTP status at the API boundary
│   ├── NotFound              404
│   ├── Conflict              409
│   ├── Unprocessable         422, with the field path of each problem
│   ├── PreconditionRequired  428: a change sent without the version it was made from
│   └── ServiceUnavailable    503 with Retry-After: FlowForge's own storage is out (full
│                             disk, database down); see flowforge_shared.outages
├── ConfigurationError        the process is set up so it cannot work: refused at start
└── TaskError                 raised inside workers; picklable, crosses Celery
    ├── PermanentError        bad config or data: fail the job at once
    └── TransientError        connection reset, storage 5xx: retry with backoff
"""

from __future__ import annotations

from collections.abc import Sequence


class FlowForgeError(Exception):
    """Base of FlowForge's own errors."""


class ApiError(FlowForgeError):
    status_code = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotFound(ApiError):
    status_code = 404


class Conflict(ApiError):
    status_code = 409


class Unprocessable(ApiError):
    """422 naming each field path; the same shape FastAPI uses for request validation."""

    status_code = 422

    def __init__(
        self, errors: Sequence[tuple[Sequence[str | int], str]], location: str = "body"
    ) -> None:
        self.errors = [(tuple(path), message) for path, message in errors]
        self.location = location  # body, query or path: where the named fields are
        super().__init__("; ".join(f"{dotted(path)}: {msg}" for path, msg in self.errors))

    def detail(self) -> list[dict]:
        return [
            {
                "loc": [self.location, *path],
                "field": dotted(path),
                "msg": message,
                "type": "value_error",
            }
            for path, message in self.errors
        ]


class PreconditionRequired(ApiError):
    """428: a change that does not say which version it was made from (it could silently
    overwrite a change made by someone else since)."""

    status_code = 428


class ServiceUnavailable(ApiError):
    """FlowForge cannot use its own storage right now; the same request will work later."""

    status_code = 503

    def __init__(self, message: str, retry_after: int = 30) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ConfigurationError(FlowForgeError):
    """The process is set up so it cannot do its work (raised while building it, before it
    serves); the message says what to set."""


def dotted(path: Sequence[str | int]) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


class TaskError(FlowForgeError):
    """An error raised in a worker. ``detail`` keeps the technical part apart from the
    user's message."""

    retryable = False

    def __init__(self, message: str, detail: str | None = None) -> None:
        super().__init__(message, detail)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return self.message


class PermanentError(TaskError):
    retryable = False


class TransientError(TaskError):
    retryable = True


def check_version(current: int, expected: int | None, *, what: str) -> None:
    """Optimistic concurrency: refuse a change made from a stale read."""
    if expected is not None and expected != current:
        raise Conflict(
            f"{what} is at version {current}, you sent version {expected}: "
            "someone changed it since you read it; reload and try again"
        )
