"""``flowforge demo``: the best end-to-end path that exists today, against a real server.

Until the run engine and the BFSI template land, it starts the embedded platform, drives the
REST API the way a user would (token, workflow, the template's job, clone, pause/resume,
audit) and checks every answer; it exits non-zero when anything is off.
"""

from __future__ import annotations

import secrets
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console

from flowforge.app import create_app
from flowforge_shared.settings import Settings

TEMPLATE_JOB = {
    "name": "Build Silver Customer Master",
    "type": "gold-analytics",
    "sourceConfig": {
        "type": "multi-table",
        "tables": ["bronze_core_customers", "bronze_crm_customers"],
    },
    "destinationConfig": {
        "silverConfig": {
            "tableName": "silver_customer_master",
            "mergeStrategy": "merge",
            "primaryKey": "customer_id",
        }
    },
    "transformationConfig": {
        "derivedColumns": [
            {"name": "full_name", "expression": "CONCAT(first_name, ' ', last_name)"},
            {
                "name": "customer_tenure_days",
                "expression": "DATEDIFF('day', account_open_date, CURRENT_DATE)",
            },
        ]
    },
}


class DemoFailed(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """The embedded app on a real socket, in a background thread."""

    def __init__(self, settings: Settings) -> None:
        self.port = _free_port()
        config = uvicorn.Config(
            create_app(settings), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise DemoFailed("the embedded server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


def _expect(response: httpx.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise DemoFailed(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text}"
        )
    return response.json() if response.content else {}


def run_demo(data_dir: Path | None = None, console: Console | None = None) -> None:
    console = console or Console()
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="flowforge-demo-"))
    admin_token = "ff_demo_" + secrets.token_urlsafe(24)
    settings = Settings(data_dir=data_dir, admin_token=admin_token, database_url=None)
    console.rule("FlowForge demo (embedded: SQLite + local disk, one process)")
    console.print(f"data dir: {data_dir}")
    with _Server(settings) as base_url, httpx.Client(base_url=base_url, timeout=10) as client:
        _expect(client.get("/healthz"), 200, "health")
        admin = {"Authorization": f"Bearer {admin_token}"}
        editor_token = _expect(
            client.post(
                "/api/tokens", json={"name": "demo editor", "role": "editor"}, headers=admin
            ),
            201,
            "create an editor token",
        )["token"]
        editor = {"Authorization": f"Bearer {editor_token}"}
        console.print(f"[green]✓[/] API up at {base_url}; editor token issued (shown once)")

        workflow = _expect(
            client.post(
                "/api/workflows",
                json={
                    "name": "BFSI Customer 360 (demo)",
                    "team": "data-platform",
                    "environment": "development",
                    "tags": ["bfsi", "demo"],
                    "status": "active",
                },
                headers=editor,
            ),
            201,
            "create a workflow",
        )
        console.print(f"[green]✓[/] workflow {workflow['name']!r} created ({workflow['id']})")
        job = _expect(
            client.post(f"/api/workflows/{workflow['id']}/jobs", json=TEMPLATE_JOB, headers=editor),
            201,
            "add the template's silver job",
        )
        echoed = {key: job[key] for key in TEMPLATE_JOB}
        if echoed != TEMPLATE_JOB:
            raise DemoFailed("the job configuration did not round-trip unchanged")
        console.print("[green]✓[/] the template's job configuration round-trips unchanged")

        invalid = dict(TEMPLATE_JOB, type="database")
        refused = client.post(f"/api/workflows/{workflow['id']}/jobs", json=invalid, headers=editor)
        detail = _expect(refused, 422, "an impossible job is refused")["detail"][0]
        console.print(
            f"[green]✓[/] an impossible job is refused: {detail['field']}: {detail['msg']}"
        )

        stale = client.patch(
            f"/api/workflows/{workflow['id']}",
            json={"description": "x", "version": 0},
            headers=editor,
        )
        _expect(stale, 409, "a stale edit is refused")
        console.print("[green]✓[/] a stale edit gets 409 instead of overwriting")

        _expect(client.post(f"/api/workflows/{workflow['id']}/pause", headers=editor), 200, "pause")
        resumed = _expect(
            client.post(f"/api/workflows/{workflow['id']}/resume", headers=editor), 200, "resume"
        )
        console.print(f"[green]✓[/] paused and resumed (status {resumed['status']})")
        copy = _expect(
            client.post(f"/api/workflows/{workflow['id']}/clone", headers=editor), 201, "clone"
        )
        console.print(f"[green]✓[/] cloned as {copy['name']!r} with {copy['jobCount']} job(s)")

        audit = _expect(client.get("/api/audit", params={"limit": 20}, headers=admin), 200, "audit")
        console.print(f"[green]✓[/] audit log holds {audit['count']} entries; newest first:")
        for entry in audit["data"][:6]:
            console.print(f"    {entry['at'][:19]}  {entry['actor']:<16} {entry['action']}")
    console.rule("[green]demo finished")
