"""``flowforge demo``: the BFSI Customer 360 pipeline, end to end, against a real server.

It generates the demo data (a core-banking SQLite database and a CRM CSV), starts the
platform on a free port (embedded: SQLite catalog, local disk, in-process tasks — or, with
``--stack``, whatever the settings name: PostgreSQL, Redis workers, S3), uploads the CRM
export, instantiates the BFSI Customer 360 template against both sources, runs it with live
progress, shows each job and the top rows of ``gold_customer_360``, then changes the source
(one customer updated, one new transaction), runs again and shows that only those rows were
read and how gold changed. Every answer is checked; anything off exits non-zero.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import tempfile
import threading
import time
from pathlib import Path

import httpx
import uvicorn
from rich.console import Console
from rich.table import Table

from flowforge import KEEP_ALIVE_SECONDS
from flowforge.app import create_app
from flowforge_shared.settings import Settings

TEMPLATE = "bfsi-customer-360"
SHOWN = [
    "customer_id",
    "full_name",
    "loyalty_tier",
    "segment",
    "account_count",
    "total_balance",
    "transaction_count",
    "total_transaction_volume",
    "last_transaction_date",
]


class DemoFailed(Exception):
    pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class _Server:
    """The embedded app on a real socket, in a background thread."""

    def __init__(self, settings: Settings, port: int | None = None) -> None:
        self.port = port or _free_port()
        config = uvicorn.Config(
            create_app(settings),
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise DemoFailed("the embedded server did not start")
            time.sleep(0.05)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def _expect(response: httpx.Response, status: int, what: str) -> dict:
    if response.status_code != status:
        raise DemoFailed(
            f"{what}: expected HTTP {status}, got {response.status_code}: {response.text}"
        )
    return response.json() if response.content else {}


def demo_settings(stack: bool, data_dir: Path | None) -> tuple[Settings, str]:
    """The settings the demo runs with, and its admin token."""
    token = "ff_demo_" + secrets.token_urlsafe(24)
    if stack:
        settings = Settings()
        configured = settings.admin_token.get_secret_value() if settings.admin_token else None
        return Settings(admin_token=configured or token), configured or token
    data_dir = data_dir or Path(tempfile.mkdtemp(prefix="flowforge-demo-"))
    return Settings(
        data_dir=data_dir, admin_token=token, database_url=None, broker_url=None, storage_url=None
    ), token


def run_demo(
    *,
    data_dir: Path | None = None,
    stack: bool = False,
    serve: bool = False,
    port: int | None = None,
    console: Console | None = None,
    base_url: str | None = None,
) -> dict:
    """The demo; with ``base_url`` against a FlowForge that is already running there (a
    gateway in front of separate services) instead of a server of its own. The core-banking
    database goes to the settings' SQLite sources directory, which the workers must share."""
    from flowforge.demo_data import apply_changes, generate

    console = console or Console()
    settings, admin_token = demo_settings(stack, data_dir)
    mode = "stack (settings)" if stack else "embedded: SQLite + local disk + in-process tasks"
    console.rule(f"FlowForge demo: BFSI Customer 360 — {mode}")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    generated = generate(settings.data_dir / "demo-data")
    sources = settings.sqlite_root
    sources.mkdir(parents=True, exist_ok=True)
    core_db = sources / "bfsi_core_banking.db"
    shutil.copyfile(generated.sqlite, core_db)
    console.print(
        f"demo data: {generated.counts['customers']} customers, {generated.counts['accounts']} "
        f"accounts, {generated.counts['transactions']} transactions (SQLite core banking), "
        f"{generated.counts['crm_customers']} CRM rows (CSV)"
    )
    server = contextlib.nullcontext(base_url) if base_url else _Server(settings, port)
    with server as base_url, httpx.Client(base_url=base_url, timeout=60) as client:
        admin = {"Authorization": f"Bearer {admin_token}"}
        editor_token = _expect(
            client.post(
                "/api/tokens",
                json={"name": f"demo editor {secrets.token_hex(3)}", "role": "editor"},
                headers=admin,
            ),
            201,
            "create an editor token",
        )["token"]
        editor = {"Authorization": f"Bearer {editor_token}"}
        console.print(f"[green]✓[/] FlowForge API at {base_url}")

        with open(generated.crm_csv, "rb") as handle:
            upload = _expect(
                client.post(
                    "/api/files",
                    files={"file": ("crm_customers.csv", handle, "text/csv")},
                    headers=editor,
                ),
                201,
                "upload the CRM export",
            )
        schema = _expect(
            client.get(f"/api/files/{upload['id']}/schema", headers=editor), 200, "detect"
        )
        pii = [c["name"] for c in schema["columns"] if c.get("pii")]
        console.print(
            f"[green]✓[/] CRM export uploaded ({upload['size']:,} bytes), "
            f"{len(schema['columns'])} columns detected, key candidates "
            f"{schema['candidatePrimaryKeys']}, PII: {pii or 'none'}"
        )

        workflow = _expect(
            client.post(
                f"/api/templates/{TEMPLATE}/instantiate",
                json={
                    "workflowName": f"BFSI Customer 360 demo {secrets.token_hex(2)}",
                    "connections": {
                        "coreBanking": {
                            "name": f"core banking (SQLite demo) {secrets.token_hex(2)}",
                            "connection": {"type": "sqlite", "database": core_db.name},
                        }
                    },
                    "files": {"crmCustomers": {"fileId": upload["id"]}},
                },
                headers=editor,
            ),
            201,
            "instantiate the BFSI Customer 360 template",
        )
        console.print(
            f"[green]✓[/] template instantiated: workflow {workflow['name']!r} with "
            f"{len(workflow['jobs'])} jobs"
        )

        console.rule("run 1: full load")
        first = _run(client, workflow["id"], editor, console)
        gold_before = _gold(client, editor, settings)
        _show_gold(gold_before, console)

        console.rule("run 2: after one customer update and one new transaction")
        change = apply_changes(core_db)
        console.print(
            f"changed in core banking: customer {change.customer_id} e-mail "
            f"{change.old_email!r} -> {change.new_email!r}; new transaction "
            f"{change.transaction.transaction_id} of {change.transaction.amount}"
        )
        second = _run(client, workflow["id"], editor, console)
        read = {job["name"]: job["rowsRead"] for job in second["jobs"]}
        expected = {
            "Ingest Core Banking Customers": 1,
            "Ingest Accounts": 0,
            "Ingest Transactions": 1,
        }
        for name, rows in expected.items():
            if read.get(name) != rows:
                raise DemoFailed(f"run 2: {name} read {read.get(name)} rows, expected {rows}")
        console.print(
            "[green]✓[/] run 2 read only the changes: "
            + ", ".join(f"{name} {rows}" for name, rows in expected.items())
            + f" (run 1: {', '.join(str(j['rowsRead']) for j in first['jobs'][:3])})"
        )
        gold_after = _gold(client, editor, settings)
        after = {row["customer_id"]: row for row in gold_after}
        before = {row["customer_id"]: row for row in gold_before}
        changed = [cid for cid in after if after[cid] != before.get(cid)]
        row = after.get(change.customer_id)
        if row is None or row.get("email") != change.new_email.strip().lower():
            raise DemoFailed("gold_customer_360 does not show the customer's new e-mail")
        console.print(
            f"[green]✓[/] gold_customer_360 changed for {len(changed)} customer(s): "
            f"{changed[:5]}; customer {change.customer_id} now has "
            f"{row['transaction_count']} transactions, e-mail {row['email']}"
        )
        console.print(f"finished in {time.monotonic() - started:.1f} s")
        console.rule("[green]demo finished")
        if serve:
            console.print(_serve_message(settings, base_url, admin_token, workflow["id"]))
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return {
        "first": first,
        "second": second,
        "gold_first": gold_before,
        "gold": gold_after,
        "change": change,
        "data_dir": str(settings.data_dir),
    }


def _serve_message(settings: Settings, base_url: str, admin_token: str, workflow_id: str) -> str:
    """What `flowforge demo --serve` prints: the web UI's URL to open (or how to build it)."""
    from flowforge_shared.web import BUILD_HINT, web_bundle

    lines = [f"the API keeps running at {base_url} — admin token: {admin_token}"]
    if web_bundle(settings) is not None:
        lines.append(
            f"open the web UI: {base_url}/ (sign in with the admin token); this run's "
            f"workflow: {base_url}/workflows/{workflow_id}?tab=lineage"
        )
    else:
        lines.append(BUILD_HINT)
    lines.append("press Ctrl+C to stop")
    return "\n".join(lines)


def _run(client: httpx.Client, workflow_id: str, headers: dict, console: Console) -> dict:
    from flowforge.run_client import follow

    started = _expect(
        client.post(f"/api/workflows/{workflow_id}/run", headers=headers), 202, "start a run"
    )
    runner = httpx.Client(base_url=str(client.base_url), headers=headers, timeout=60)
    with runner:
        execution = follow(runner, started["executionId"], console)
    if execution["status"] != "succeeded":
        failed = [job for job in execution["jobs"] if job["status"] == "failed"]
        reason = failed[0]["error"]["message"] if failed and failed[0].get("error") else "?"
        raise DemoFailed(f"the run {execution['status']}: {reason}")
    return execution


def _gold(client: httpx.Client, headers: dict, settings: Settings) -> list[dict]:
    import polars as pl

    # With separate workers the catalog takes the run's outputs from its own queue, so the
    # asset may appear a moment after the run shows success.
    deadline = time.monotonic() + 30
    while True:
        response = client.get("/api/catalog/assets/gold_customer_360", headers=headers)
        if response.status_code != 404 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    asset = _expect(response, 200, "catalog")
    table = pl.read_delta(asset["location"], storage_options=settings.storage_options or None)
    return table.sort("customer_id").to_dicts()


def _show_gold(rows: list[dict], console: Console) -> None:
    top = sorted(rows, key=lambda row: row["total_balance"] or 0, reverse=True)[:5]
    table = Table(title=f"gold_customer_360: {len(rows)} customers, top 5 by balance")
    for column in SHOWN:
        table.add_column(column, overflow="fold")
    for row in top:
        table.add_row(*(str(row.get(column)) for column in SHOWN))
    console.print(table)
