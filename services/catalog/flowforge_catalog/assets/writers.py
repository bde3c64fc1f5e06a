"""Which active runs write a table, asked of the orchestrator (it owns the runs): directly
where it is served by this process, else over its internal API with the service secret. A
table change is refused while the answer is unknown (503), never made blind."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from pydantic import ValidationError

from flowforge_shared.contracts.tables import TABLE_WRITERS, TABLE_WRITERS_PATH, TableWriters
from flowforge_shared.errors import Conflict, ServiceUnavailable
from flowforge_shared.settings import Settings

TIMEOUT = httpx.Timeout(10.0)
WritersOf = Callable[[str], TableWriters]


def writers_of(app) -> WritersOf:
    settings = app.state.settings

    def ask(table: str) -> TableWriters:
        answer = app.state.bus.ask(
            TABLE_WRITERS, {"table": table}, remote=lambda: _remote(settings, table)
        )
        return TableWriters.model_validate(answer)

    return ask


def refuse_while_written(writers: WritersOf, table: str) -> None:
    """Conflict while an active execution has a job that writes ``table``."""
    found = writers(table).writers
    if found:
        writer = found[0]
        raise Conflict(
            f"table {table} is being written by job {writer.job_name!r} of workflow "
            f"{writer.workflow_name!r} (execution {writer.execution_id}, active): wait for it "
            "to end or cancel it"
        )


def _remote(settings: Settings, table: str) -> dict:
    unknown = f"cannot tell whether a run is writing table {table}"
    if not settings.orchestrator_url or settings.service_secret is None:
        raise ServiceUnavailable(
            f"{unknown}: this process does not serve the orchestrator; set "
            "FLOWFORGE_ORCHESTRATOR_URL and FLOWFORGE_SERVICE_SECRET so it can ask"
        )
    url = settings.orchestrator_url.rstrip("/") + TABLE_WRITERS_PATH.format(table=table)
    headers = {"Authorization": f"Bearer {settings.service_secret.get_secret_value()}"}
    try:
        response = httpx.get(url, headers=headers, timeout=TIMEOUT)
        response.raise_for_status()
        return TableWriters.model_validate(response.json()).model_dump(by_alias=True)
    except httpx.HTTPStatusError as error:
        raise ServiceUnavailable(
            f"{unknown}: the orchestrator answered {error.response.status_code}"
        ) from None
    except (httpx.HTTPError, ValueError, ValidationError) as error:
        raise ServiceUnavailable(
            f"{unknown}: the orchestrator at {settings.orchestrator_url} does not answer "
            f"({type(error).__name__}); try again shortly"
        ) from None
