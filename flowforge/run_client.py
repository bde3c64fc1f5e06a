"""``flowforge run``: start a workflow over the REST API and follow its progress live."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

KNOWN_WITHIN = 60.0
"""Seconds a requested run may take to reach the orchestrator before `follow` gives up."""


class RunFailed(Exception):
    pass


def resolve_workflow(client: httpx.Client, id_or_name: str) -> dict:
    response = client.get(f"/api/workflows/{id_or_name}")
    if response.status_code == 200:
        return response.json()
    _raise_for(response, ok=(404,))
    listed = client.get("/api/workflows", params={"q": id_or_name, "limit": 500})
    _raise_for(listed)
    matches = [wf for wf in listed.json()["data"] if wf["name"] == id_or_name]
    if not matches:
        raise RunFailed(f"no workflow with id or name {id_or_name!r}")
    return matches[0]


def start_run(
    client: httpx.Client, workflow_id: str, jobs: list[str] | None, *, force: bool = False
) -> str:
    """A paused workflow is refused (409) unless ``force`` (audited by the catalog)."""
    response = client.post(
        f"/api/workflows/{workflow_id}/run",
        json={"jobs": jobs} if jobs else None,
        params={"force": "true"} if force else None,
    )
    _raise_for(response)
    return response.json()["executionId"]


def wait_until_known(
    client: httpx.Client, execution_id: str, timeout: float = KNOWN_WITHIN
) -> dict:
    """The execution, once the orchestrator has it. Where the catalog and the orchestrator run
    apart, a run request's 202 comes before the events worker has taken the StartRun message,
    and until then the orchestrator answers 404 for the id it was given."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.get(f"/api/executions/{execution_id}")
        if response.status_code != 404:
            _raise_for(response)
            return response.json()
        if time.monotonic() > deadline:
            raise RunFailed(
                f"execution {execution_id} was requested but the orchestrator has not started "
                f"it after {timeout:.0f} s (is the events worker running?)"
            )
        time.sleep(0.2)


def sse_events(client: httpx.Client, execution_id: str) -> Iterator[tuple[str, dict]]:
    with client.stream(
        "GET", f"/api/executions/{execution_id}/events", timeout=httpx.Timeout(10, read=None)
    ) as response:
        if response.status_code >= 400:
            response.read()  # the error's detail, for _raise_for
        _raise_for(response)
        kind, data = None, []
        for line in response.iter_lines():
            if line.startswith("event:"):
                kind = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and kind:
                yield kind, json.loads("".join(data)) if data else {}
                kind, data = None, []


def follow(client: httpx.Client, execution_id: str, console: Console) -> dict:
    """Show a progress line per job until the execution ends; returns the final execution."""
    progress = Progress(
        SpinnerColumn(),
        TextColumn("{task.description:<40}"),
        BarColumn(bar_width=None),
        TextColumn("{task.fields[rows]:>12} rows"),
        TextColumn("{task.fields[state]:<10}"),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    lines: dict[str, int] = {}
    summary: dict = {}
    wait_until_known(client, execution_id)
    with progress:
        for kind, data in sse_events(client, execution_id):
            if kind == "execution.finished":
                summary = data
                break
            job_run = data.get("jobRunId")
            if job_run not in lines:
                lines[job_run] = progress.add_task(
                    data.get("job") or "job", total=None, rows=0, state="running"
                )
            task_id = lines[job_run]
            rows = data.get("rowsWritten") or data.get("rowsRead") or 0
            state = {
                "job.started": "running",
                "batch.written": "running",
                "job.retrying": "retrying",
                "job.finished": "succeeded",
                "job.failed": "failed",
                "job.cancelled": "cancelled",
            }.get(kind, "running")
            done = state not in ("running", "retrying")
            progress.update(
                task_id,
                rows=f"{rows:,}",
                state=state,
                total=1 if done else None,
                completed=1 if done else 0,
            )
    if not summary:
        response = client.get(f"/api/executions/{execution_id}")
        _raise_for(response)
        summary = response.json()
    _print_summary(summary, console)
    return summary


def _print_summary(execution: dict, console: Console) -> None:
    table = Table(title=f"execution {execution['id']}: {execution['status']}")
    for column in ("job", "status", "attempt", "rows read", "rows written", "outputs / error"):
        table.add_column(column)
    for job in execution["jobs"]:
        outputs = ", ".join(
            f"{o['layer']}.{o['table']} v{o['version']}" for o in job["outputs"] if "table" in o
        )
        error = job["error"]["message"] if job.get("error") else ""
        note = f" ({job['note']})" if job.get("note") else ""
        table.add_row(
            job["name"],
            job["status"],
            str(job["attempt"]),
            f"{job['rowsRead']:,}",
            f"{job['rowsWritten']:,}",
            (error or outputs) + note,
        )
    console.print(table)


def _raise_for(response: httpx.Response, ok: tuple[int, ...] = ()) -> None:
    if response.status_code < 400 or response.status_code in ok:
        return
    try:
        detail = response.json().get("detail")
    except ValueError:
        detail = response.text
    raise RunFailed(f"HTTP {response.status_code}: {detail}")
