"""``flowforge demo``: the best end-to-end path that exists today, against a real server.

Until the BFSI Customer 360 template lands, it starts the embedded platform (SQLite, local
disk, in-process tasks), drives the REST API the way a user would — token, workflow, the
template's job round-tripping, an impossible job refused, a stale edit refused, pause/resume,
clone — then runs a three-layer CSV pipeline (bronze -> silver -> gold) with live progress,
shows the gold table, changes the source, runs again and shows what changed. It checks every
answer and exits non-zero when anything is off.
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

        _pipeline(client, editor, data_dir, console)

        audit = _expect(client.get("/api/audit", params={"limit": 20}, headers=admin), 200, "audit")
        console.print(f"[green]✓[/] audit log holds {audit['count']} entries; newest first:")
        for entry in audit["data"][:6]:
            console.print(f"    {entry['at'][:19]}  {entry['actor']:<16} {entry['action']}")
    console.rule("[green]demo finished")


def write_transactions(path: Path, rows: int, *, start_id: int = 1, seed: int = 7) -> None:
    """A deterministic card-transactions extract; every 10th row re-sends an earlier id with a
    new amount (the kind of duplicate silver must collapse)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        handle.write("transaction_id,customer_id,amount,merchant\n")
        for index in range(rows):
            identifier = start_id + index - (5 if index % 10 == 9 else 0)
            cents = (index * 7919 + seed) % 100_000
            merchant = ("Grocer", "Fuel", "Airline", "Pharmacy", "Online")[index % 5]
            handle.write(
                f"{identifier},{identifier % 25 + 1000},{cents // 100}.{cents % 100:02d},{merchant}\n"
            )


PIPELINE_JOBS = [
    {
        "name": "Ingest card transactions",
        "type": "file-based",
        "sourceConfig": {
            "type": "csv",
            "fileConfig": {
                "filePath": "cards/transactions.csv",
                "columns": [{"name": "amount", "type": "decimal", "precision": 18, "scale": 2}],
            },
        },
        "destinationConfig": {"bronzeConfig": {"tableName": "bronze_card_transactions"}},
    },
    {
        "name": "Silver card transactions",
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": ["bronze_card_transactions"]},
        "destinationConfig": {
            "silverConfig": {
                "tableName": "silver_card_transactions",
                "primaryKey": "transaction_id",
                "surrogateKey": "transaction_sk",
            }
        },
        "transformationConfig": {
            "derivedColumns": [{"name": "merchant_key", "expression": "UPPER(TRIM(merchant))"}]
        },
    },
    {
        "name": "Gold customer spend",
        "type": "gold-analytics",
        "sourceConfig": {"type": "multi-table", "tables": ["silver_card_transactions"]},
        "destinationConfig": {"goldConfig": {"tableName": "gold_customer_spend"}},
        "transformationConfig": {
            "groupBy": ["customer_id"],
            "aggregations": [
                {"column": "amount", "function": "SUM", "alias": "total_spend"},
                {"column": "transaction_id", "function": "COUNT_DISTINCT", "alias": "transactions"},
                {"column": "amount", "function": "MAX", "alias": "largest"},
            ],
        },
    },
]


def _pipeline(client: httpx.Client, editor: dict, data_dir: Path, console: Console) -> None:
    import polars as pl

    from flowforge.run_client import follow

    landing = data_dir / "landing" / "cards" / "transactions.csv"
    write_transactions(landing, 5_000)
    workflow = _expect(
        client.post("/api/workflows", json={"name": "Card spend (demo)"}, headers=editor),
        201,
        "create the pipeline workflow",
    )
    for job in PIPELINE_JOBS:
        _expect(
            client.post(f"/api/workflows/{workflow['id']}/jobs", json=job, headers=editor),
            201,
            f"add job {job['name']}",
        )
    console.rule("run 1: 5,000 transactions -> bronze -> silver -> gold")
    first = _run(client, workflow["id"], editor, console, follow)
    gold_path = str(data_dir / "lake" / "gold" / "gold_customer_spend")
    gold = pl.read_delta(gold_path).sort("total_spend", descending=True)
    console.print("top customers in gold_customer_spend:")
    console.print(gold.head(5))
    silver_rows = pl.read_delta(
        str(data_dir / "lake" / "silver" / "silver_card_transactions")
    ).height
    console.print(
        f"[green]✓[/] silver holds {silver_rows:,} unique transactions (duplicates collapsed)"
    )

    console.rule("run 2: a new extract with 200 changed and new transactions")
    write_transactions(landing, 200, start_id=4_901, seed=42)
    second = _run(client, workflow["id"], editor, console, follow)
    after = pl.read_delta(gold_path)
    changed = after.join(gold, on="customer_id", suffix="_before").filter(
        pl.col("total_spend") != pl.col("total_spend_before")
    )
    console.print(
        f"[green]✓[/] run 2 read {second['jobs'][0]['rowsRead']:,} rows (run 1: "
        f"{first['jobs'][0]['rowsRead']:,}); gold changed for {changed.height} customers"
    )


def _run(client, workflow_id: str, headers: dict, console: Console, follow) -> dict:
    started = _expect(
        client.post(f"/api/workflows/{workflow_id}/run", headers=headers), 202, "start a run"
    )
    runner = httpx.Client(base_url=str(client.base_url), headers=headers, timeout=30)
    with runner:
        execution = follow(runner, started["executionId"], console)
    if execution["status"] != "succeeded":
        failed = [job for job in execution["jobs"] if job["status"] != "succeeded"]
        reason = failed[0]["error"]["message"] if failed and failed[0].get("error") else "?"
        raise DemoFailed(f"the run {execution['status']}: {reason}")
    return execution
